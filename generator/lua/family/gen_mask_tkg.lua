-- gen_mask_tkg: the decode attention mask attention_tkg generates from position ids, as a
-- kernel of its own (upstream's gen_mask_tkg). Semantics: shared/reference/attention_tkg.md
-- ("gen_mask_tkg" and "Math" step 4). The mask is in natural slot order (upstream's block-KV
-- tile order is a hardware layout), so upstream's block_len does not change it and is no key.

local format = string.format

local F = {
  family = "gen_mask_tkg",
  template = "gen_mask_tkg.c.in",
  doc = "decode attention mask [s_prior, B, q_head, s_active] from position ids",
  calls = { "B", "s_prior" },
  -- a decode call's tokens are its sequences: at T tokens, B = T
  tokens = { B = "seq" },
  signature_doc = [[
mask uint8 [s_prior, B, q_head, s_active] (1 = attend);
pos_ids, start_pos [B, s_active] fp32;
active_mask uint8 [s_active, B, q_head, s_active] (the last s_active slots).]],
}

F.keys = {
  { key = "q_head", kind = "int", min = 1, from = "model.q_heads", default = 32, name = "qh",
    doc = "query heads (upstream's name)" },
  { key = "s_active", kind = "int", min = 1, max = 8, default = 1, name = "sa",
    doc = "new tokens per sequence (upstream's name), 1 to 8" },
  { key = "sliding_window", kind = "bool", default = false, name = "swa",
    doc = "start_pos given: window [start, pos), wrapping when start > pos" },
  { key = "active_mask", kind = "bool", default = true, name = "act",
    doc = "the last s_active slots from active_mask (else the prior rule; upstream's name)" },
  { key = "B", kind = "int", min = 1, from = "limits.max_batch", default = 1,
    doc = "nominal batch per call, for the cost block" },
  { key = "s_prior", kind = "int", min = 1, from = "limits.max_context", default = 8192,
    doc = "nominal context slots per call (upstream's name), for the cost block" },
}

function F.check(k, fail)
  if k.active_mask and k.s_prior < k.s_active then
    fail("s_prior", format("%d slots cannot hold the %d active tokens", k.s_prior, k.s_active))
  end
end

function F.call_check(k, n)
  if k.active_mask and n.s_prior < k.s_active then
    return format("s_prior = %d < s_active = %d", n.s_prior, k.s_active)
  end
  return nil
end

function F.args(k)
  local sa, hq = k.s_active, k.q_head
  return {
    { name = "mask", dir = "out", dtype = "u8", shape = { "s_prior", "B", hq, sa } },
    { name = "pos_ids", dir = "in", dtype = "f32", shape = { "B", sa }, init = "positions" },
    { name = "start_pos", dir = "in", dtype = "f32", shape = { "B", sa }, init = "zeros",
      used = k.sliding_window },
    { name = "active_mask", dir = "in", dtype = "u8", shape = { sa, "B", hq, sa }, init = "ones",
      used = k.active_mask },
  }
end

function F.cost(k, n)
  local sa, hq = k.s_active, k.q_head
  return { flops = n.s_prior * n.B * hq * sa,
           read = n.B * sa * 4 * (k.sliding_window and 2 or 1)
                  + (k.active_mask and sa * n.B * hq * sa or 0),
           written = n.s_prior * n.B * hq * sa }
end

function F.params(k)
  return { QH = k.q_head, SA = k.s_active, SWA = k.sliding_window, ACT = k.active_mask,
           -- slots per parallel task: about 32k mask bytes
           GRAIN = math.max(1, 32768 // (k.q_head * k.s_active)) }
end

return F
