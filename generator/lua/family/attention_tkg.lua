-- attention_tkg: decode attention of s_active new tokens per sequence against a KV cache, for
-- n_kv KV heads per call (q_head query heads each). Semantics: shared/reference/attention_tkg.md.
-- n_kv = 1 is upstream's layout (one call per KV head); a CPU call covers a layer's n_kv heads.

local ctypes = require "ctypes"
local attn = require "attn_tkg"
local format = string.format

local F = {
  family = "attention_tkg",
  template = "attention_tkg.c.in",
  doc = "decode attention: q [B,n_kv*q_head,s_active,d] against KV cache [B,n_kv,S,d]",
  calls = { "B", "curr_sprior", "n_cache" },
  -- a decode call's tokens are its sequences (s_active is fixed): at T tokens, B = T; the
  -- context and the cache stay nominal
  tokens = { B = "seq" },
  signature_doc = [[
out [B, Hq, d, s_active] (d before s_active), Hq = n_kv * q_head;
k_out [B, n_kv, d, s_active] (fuse_rope); q [B, Hq, s_active, d];
k_active, v_active [B, n_kv, s_active, d]; flat cache: k_prior [n_cache, n_kv, full_sprior, d]
([n_cache, n_kv, d, full_sprior] without tp_k_prior), v_prior [n_cache, n_kv, full_sprior, d];
block cache: k_prior, v_prior [n_cache blocks, n_kv, block_len, d]; mask uint8
[curr_sprior, B, Hq, s_active] (use_pos_id: its active part [s_active, B, Hq, s_active]);
rope_pos_ids, start_pos_ids [B, s_active] fp32; inv_freqs [d/2, 1]; sink [Hq, 1];
active_blocks_table [B, full_sprior / block_len] uint32. The active tokens are the last
s_active of the curr_sprior slots; the cache is not written.]],
}

local KV = { "bf16", "fp16", "f32", "e4m3", "e5m2" }

F.keys = {
  { key = "dtype", kind = "enum", values = ctypes.ACT, from = "dtype", default = "bf16",
    name = "dtype", doc = "dtype of q, out and k_out" },
  { key = "kv_dtype", kind = "enum", values = KV, default = function(k) return k.dtype end,
    name = { bf16 = "kvbf16", fp16 = "kvfp16", f32 = "kvf32", e4m3 = "kve4m3", e5m2 = "kve5m2" },
    omit_default = true,
    doc = "dtype of k_active, v_active and the cache: dtype, or e4m3 (fp8 KV; e5m2 refused)" },
  { key = "d_head", kind = "int", min = 1, max = 128, from = "model.head_dim", default = 128,
    name = "d", doc = "head dimension (upstream's name), at most 128" },
  { key = "q_head", kind = "int", min = 1, default = 4, name = "qh",
    from = function(s) return s.model.q_heads // s.model.kv_heads end,
    from_doc = "model.q_heads / model.kv_heads",
    doc = "query heads per KV head (upstream's name)" },
  { key = "n_kv", kind = "int", min = 1, default = 1, name = "kvh",
    doc = "KV heads per call (1: upstream's layout, one call per KV head)" },
  { key = "s_active", kind = "int", min = 1, max = 8, default = 1, name = "sa",
    doc = "new tokens per sequence (upstream's name), 1 to 8" },
  { key = "full_sprior", kind = "int", min = 1, from = "limits.max_context", default = 8192,
    name = "s", doc = "cache slots per sequence (upstream's name; the flat cache's row stride)" },
  { key = "block_len", kind = "int", min = 0, default = 0, name = "blk", omit_default = true,
    doc = "0: flat cache; else paged blocks of block_len slots (upstream's name)" },
  { key = "tp_k_prior", kind = "bool", default = true, name = "tpk",
    doc = "K cache stored [S, d] (true) or [d, S] (upstream's name)" },
  { key = "use_pos_id", kind = "bool", default = false, name = "pos",
    doc = "prior mask from rope_pos_ids (slot < pos[b,0]), the mask tensor its active part only "
          .. "(upstream's name)" },
  { key = "sliding_window", kind = "bool", default = false, name = "swa",
    doc = "use_pos_id with start_pos_ids: window [start, pos), wrapping when start > pos" },
  { key = "sink", kind = "bool", default = false, name = "sink",
    doc = "a per-head sink logit joins the softmax (not the value sum)" },
  { key = "fuse_rope", kind = "bool", default = false, name = "rope",
    doc = "rotate q and k_active (rotate-half, angle inv_freqs * rope_pos_ids), q / sqrt(d); "
          .. "k_out = rotated k_active (upstream's name)" },
  { key = "B", kind = "int", min = 1, from = "limits.max_batch", default = 1,
    doc = "nominal batch per call, for the cost block" },
  { key = "curr_sprior", kind = "int", min = 1, default = function(k) return k.full_sprior end,
    doc = "nominal context slots per call (<= full_sprior), for the cost block" },
  { key = "n_cache", kind = "int", min = 1,
    default = function(k)
      return k.block_len > 0 and k.B * ((k.full_sprior + k.block_len - 1) // k.block_len) or k.B
    end,
    doc = "nominal leading dimension of the cache: sequences (flat, >= B) or blocks" },
}

function F.check(k, fail)
  if k.kv_dtype == "e5m2" then
    fail("kv_dtype", "an e5m2 KV cache is refused (upstream: float8_e4m3 only)")
  end
  local fp8 = k.kv_dtype == "e4m3"
  if not fp8 and k.kv_dtype ~= k.dtype then
    fail("kv_dtype", format("kv_dtype %s: the KV cache is dtype (%s) or e4m3", k.kv_dtype,
                            k.dtype))
  end
  if fp8 and k.dtype == "f32" then fail("kv_dtype", "an fp8 KV cache needs q in bf16 or fp16") end
  if fp8 and k.fuse_rope then fail("fuse_rope", "fused RoPE with an fp8 KV cache is refused") end
  if k.fuse_rope and k.d_head % 2 ~= 0 then
    fail("fuse_rope", format("fused RoPE rotates halves: d_head must be even, got %d", k.d_head))
  end
  if k.sliding_window and not k.use_pos_id then
    fail("sliding_window", "the sliding window is generated from positions: needs use_pos_id")
  end
  if k.block_len > 0 and not k.tp_k_prior then
    fail("tp_k_prior", "a block KV cache stores K as [block_len, d]: needs tp_k_prior")
  end
  if k.block_len > 0 and k.full_sprior % k.block_len ~= 0 then
    fail("block_len", format("full_sprior %d is not a multiple of block_len %d", k.full_sprior,
                             k.block_len))
  end
  if k.curr_sprior > k.full_sprior then
    fail("curr_sprior", format("%d exceeds full_sprior %d", k.curr_sprior, k.full_sprior))
  end
  if k.curr_sprior < k.s_active then
    fail("curr_sprior", format("%d slots cannot hold the %d active tokens", k.curr_sprior,
                               k.s_active))
  end
end

function F.call_check(k, n)
  if n.curr_sprior > k.full_sprior then
    return format("curr_sprior = %d exceeds full_sprior = %d", n.curr_sprior, k.full_sprior)
  end
  if n.curr_sprior < k.s_active then
    return format("curr_sprior = %d < s_active = %d", n.curr_sprior, k.s_active)
  end
  if k.block_len == 0 and n.n_cache < n.B then
    return format("n_cache = %d < B = %d: the flat cache holds a row per sequence", n.n_cache,
                  n.B)
  end
  return nil
end

local function heads(k) return k.n_kv * k.q_head end

-- Tensors in signature order (kgen/kernels.h's kg_attention_tkg_fn is made from them).
function F.args(k)
  local d, nkv, sa, S, hq = k.d_head, k.n_kv, k.s_active, k.full_sprior, heads(k)
  local blk = k.block_len > 0
  local kshape = blk and { "n_cache", nkv, k.block_len, d }
                 or (k.tp_k_prior and { "n_cache", nkv, S, d } or { "n_cache", nkv, d, S })
  local vshape = blk and { "n_cache", nkv, k.block_len, d } or { "n_cache", nkv, S, d }
  local pos = k.use_pos_id or k.fuse_rope
  return {
    { name = "out", dir = "out", dtype = k.dtype, shape = { "B", hq, d, sa } },
    { name = "k_out", dir = "out", dtype = k.dtype, shape = { "B", nkv, d, sa },
      used = k.fuse_rope },
    { name = "q", dir = "in", dtype = k.dtype, shape = { "B", hq, sa, d } },
    { name = "k_active", dir = "in", dtype = k.kv_dtype, shape = { "B", nkv, sa, d } },
    { name = "v_active", dir = "in", dtype = k.kv_dtype, shape = { "B", nkv, sa, d } },
    { name = "k_prior", dir = "in", dtype = k.kv_dtype, shape = kshape },
    { name = "v_prior", dir = "in", dtype = k.kv_dtype, shape = vshape },
    { name = "mask", dir = "in", dtype = "u8", init = "ones",
      shape = k.use_pos_id and { sa, "B", hq, sa } or { "curr_sprior", "B", hq, sa } },
    { name = "rope_pos_ids", dir = "in", dtype = "f32", shape = { "B", sa }, init = "positions",
      used = pos },
    { name = "start_pos_ids", dir = "in", dtype = "f32", shape = { "B", sa }, init = "zeros",
      used = k.sliding_window },
    { name = "inv_freqs", dir = "in", dtype = "f32", shape = { d // 2, 1 }, init = "scale",
      used = k.fuse_rope },
    { name = "sink", dir = "in", dtype = "f32", shape = { hq, 1 }, used = k.sink },
    { name = "active_blocks_table", dir = "in", dtype = "u32", init = "slots",
      shape = { "B", blk and S // k.block_len or 1 }, used = blk },
  }
end

local function bytes_of(dt) return ctypes.wt_bytes(dt, 1) end

-- What a call reads and computes: the K and V cache rows of its context once (the kernel
-- streams them), q, the active rows and the mask; QK^T and PV are 2 flops per product each.
function F.cost(k, n)
  local d, hq, sa = k.d_head, heads(k), k.s_active
  local qb, kvb = bytes_of(k.dtype), bytes_of(k.kv_dtype)
  local ctx = n.B * k.n_kv * n.curr_sprior * d
  local mask = k.use_pos_id and sa * n.B * hq * sa or n.curr_sprior * n.B * hq * sa
  local read = 2 * ctx * kvb + n.B * hq * sa * d * qb + mask
               + (k.block_len > 0 and n.B * (k.full_sprior // k.block_len) * 4 or 0)
  return { flops = 4 * n.B * hq * sa * n.curr_sprior * d, read = read,
           written = n.B * hq * sa * d * qb + (k.fuse_rope and n.B * k.n_kv * sa * d * qb or 0) }
end

function F.params(k)
  local p = attn.params {
    d = k.d_head, qh = k.q_head, nkv = k.n_kv, sa = k.s_active, S = k.full_sprior,
    blk = k.block_len, tpk = k.tp_k_prior, kv_dtype = k.kv_dtype,
    -- the active K rows are read from the pair's scratch only once rotated; the active V
    -- rows always from v_active as stored
    ka_pair = k.fuse_rope, va_pair = false,
    q_doc = " (rotated and scaled with fuse_rope)", k_doc = ", rotated",
  }
  p.HALF = k.d_head // 2
  p.POS, p.SWA, p.SINK, p.ROPE = k.use_pos_id, k.sliding_window, k.sink, k.fuse_rope
  p.DTYPE, p.CT, p.Q_WIDEN = k.dtype, attn.ctype(k.dtype), attn.widen(k.dtype)
  p.O_NARROW = k.dtype == "f32" and "copy_f32" or ctypes.info(k.dtype).from_f32
  p.QSCALE = 1 / math.sqrt(k.d_head)
  p.NEED_COPY = p.Q_WIDEN == "copy_f32" or p.KV_WIDEN == "copy_f32"
  return p
end

return F
