-- transformer_tkg: the decode megakernel, num_layers Llama-style layers of one tensor-parallel
-- rank in one kernel: per layer the attention block (attention_block_tkg's code: RMSNorm, QKV,
-- RoPE, attention over the transposed KV cache, cache write, output projection), an all-reduce
-- of its partial over the replica group, the residual add and RMSNorm, the MLP (mlp's TKG code,
-- plain or ROW fp8 per layer), a second all-reduce and residual add.
-- Semantics: shared/reference/transformer_tkg.md. The attention and MLP parameters are those
-- families' own (F.params of attention_block_tkg and mlp on keys derived from these), so the
-- megakernel runs the same code as the chain of single-op kernels.

local ctypes = require "ctypes"
local kernel = require "kernel"
local format = string.format

local F = {
  family = "transformer_tkg",
  template = "transformer_tkg.c.in",
  doc = "decode megakernel: num_layers of attention block + all-reduce + residual + MLP + "
        .. "all-reduce + residual on one tensor-parallel rank",
  calls = { "B", "S_ctx" },
  tokens = { B = "seq" },
  signature_doc = [[
out [B, S_tkg, H]; K_caches[lg] [B, 1, d_head, S_max] (transposed),
V_caches[lg] [B, 1, S_max, d_head], written in place with update_cache; X [B, S_tkg, H];
W_qkvs[l] [H, kv_heads * (q_heads + 2) * d_head] (the kv_heads * q_heads Q heads, KV head g's
query heads g * q_heads.., then the kv_heads K heads, then the V heads); W_outs[l]
[kv_heads * q_heads * d_head, H] (rows n * d_head + d of query head n);
W_gates[l], W_ups[l] [H, I], W_downs[l] [I, H] (e4m3 on fp8
layers); W_gamma_qkvs[l], W_gamma_mlps[l] [H]; RoPE_cos, RoPE_sin [d_head / 2, B, S_tkg];
mask_cache uint8 [S_ctx, B, kv_heads * q_heads, S_tkg] (1: attend; the new tokens are the
last S_tkg slots); position_ids [B, 1] uint32 (the write position); W_gate_scales[l],
W_up_scales[l] [I], W_down_scales[l] [H] fp32 (fp8 layers; NULL on the others). A list is
an array of pointers: [l] num_layers of them, [lg] num_layers * kv_heads (layer l's KV
head g at l * kv_heads + g). With tp > 1 the calling thread's kgp_coll() is the group.]],
}

F.keys = {
  { key = "dtype", kind = "enum", values = ctypes.ACT, from = "dtype", default = "bf16",
    name = "dtype", doc = "dtype of X, out, the caches, gammas, RoPE tables and plain weights" },
  { key = "weight_dtype", kind = "enum", values = { "bf16", "fp16", "f32" },
    default = function(k) return k.dtype end, omit_default = true,
    name = { bf16 = "wbf16", fp16 = "wfp16", f32 = "wf32" },
    doc = "format of the plain weights (not the fp8 layers' MLP), default dtype: f32 "
          .. "activations with bf16 weights as the model runner's" },
  { key = "H", kind = "int", min = 1, from = "model.hidden", default = 4096, name = "h",
    doc = "hidden size (a multiple of 128)" },
  { key = "I", kind = "int", min = 1, from = "model.intermediate", default = 14336, name = "i",
    doc = "MLP intermediate size of this rank (I_r)" },
  { key = "q_heads", kind = "int", min = 1, default = 4, name = "nq",
    from = function(s) return s.model.q_heads // s.model.kv_heads end,
    from_doc = "model.q_heads / model.kv_heads",
    doc = "query heads of the rank's one KV head (q_heads_per_rank)" },
  { key = "kv_heads", kind = "int", min = 1, max = 64, default = 1, name = "kv",
    omit_default = true,
    doc = "KV heads of the rank (upstream: 1), each with its q_heads query heads and its "
          .. "caches: one QKV and one output projection over all of them a layer, the "
          .. "attention per KV head" },
  { key = "d_head", kind = "int", min = 2, max = 128, from = "model.head_dim", default = 128,
    name = "d", doc = "head dimension, even, at most 128" },
  { key = "S_tkg", kind = "int", min = 1, max = 8, default = 1, name = "s",
    doc = "new tokens per sequence, 1 to 8" },
  { key = "S_max", kind = "int", min = 1, from = "limits.max_context", default = 8192,
    name = "smax", doc = "cache slots per sequence" },
  { key = "num_layers", kind = "int", min = 1, max = 32, default = 2, name = "l",
    doc = "layers in the kernel (upstream's name), at most 32" },
  { key = "eps", kind = "float", min = 0, from = "model.rms_eps", default = 1e-6, name = "eps",
    omit_default = true, doc = "epsilon of both RMSNorms (upstream's name)" },
  { key = "fp8_layers", kind = "int", min = 0, default = 0, name = "fp8l", omit_default = true,
    doc = "bit l set: layer l's MLP is ROW fp8 (e4m3 weights, per-column dequant scales), e.g. "
          .. "6 = layers 1 and 2 (upstream: the layers whose W_gate_scale is given)" },
  { key = "clamp_bound", kind = "float", min = 0, default = 0, name = "cb", omit_default = true,
    doc = "fp8 layers: the MLP's normed input and its down projection's input clipped to "
          .. "+-clamp_bound (0: none; upstream's name)" },
  { key = "tp", kind = "int", min = 1, max = 256, default = 1, name = "tp", omit_default = true,
    doc = "replica group size: > 1 all-reduces (sum) each layer's attention and MLP partials "
          .. "over the calling thread's communicator, in fp32, rounded once to dtype" },
  { key = "update_cache", kind = "bool", default = true, name = "upd",
    doc = "write each layer's new K, V into its caches at position_ids (upstream: "
          .. "position_ids given)" },
  { key = "B", kind = "int", min = 1, from = "limits.max_batch", default = 1,
    doc = "nominal batch per call, for the cost block" },
  { key = "S_ctx", kind = "int", min = 1, default = function(k) return k.S_max end,
    doc = "nominal context window per call (<= S_max), for the cost block" },
}

-- The attention_block_tkg keys of the layers' attention (reference: RMSNorm on, RoPE in
-- contiguous halves, transposed K cache, W_out, 1/sqrt(d_head)).
local function attn_keys(k)
  return {
    dtype = k.dtype, H = k.H, q_heads = k.q_heads, d_head = k.d_head, S_tkg = k.S_tkg,
    S_max = k.S_max, rmsnorm_X_enabled = true, rmsnorm_X_eps = k.eps,
    K_cache_transposed = true, update_cache = k.update_cache, B = k.B, S_ctx = k.S_ctx,
    weight_dtype = k.weight_dtype,
  }
end

-- The mlp keys of a layer's MLP: TKG, the residual add fused (hidden = the attention, add = the
-- residual, add_out = their sum), RMSNorm; ROW fp8 on fp8 layers.
local function mlp_keys(k, fp8)
  return {
    variant = "TKG", dtype = k.dtype, H = k.H, I = k.I, normalization_type = "RMS_NORM",
    eps = k.eps, fused_residual_add = true, store_fused_add_result = true,
    quantization_type = fp8 and "ROW" or "NONE", T = k.B * k.S_tkg,
    weight_dtype = not fp8 and k.weight_dtype or nil,
  }
end

-- The output projection of a layer as output_projection computes it: the attention rows of
-- every KV head's query heads [B, S_tkg, kv_heads * q_heads, d_head] in dtype @ W_outs[l].
local function oproj_keys(k)
  return {
    variant = "CTE", dtype = k.dtype, weight_dtype = k.weight_dtype, N = k.kv_heads * k.q_heads,
    D = k.d_head, H = k.H, attn_layout = "BSND", B = k.B, S = k.S_tkg,
  }
end

-- The other family's normalized keys; a key it refuses is reported under this family's key of
-- the same name (H, I, d_head, S_tkg, S_ctx, eps...).
local OWN = { rmsnorm_X_eps = "eps", T = "B", N = "q_heads", D = "d_head", S = "S_tkg" }
local function sub_keys(name, given, fail)
  local fam = kernel.family(name)
  return fam, kernel.normalize(fam, given, nil, false, function(key, msg)
    local own = OWN[key] or (F.key_index[key] and key) or "dtype"
    fail(own, format("%s (as %s's %s)", msg, name, key))
  end)
end

local function layer_is_fp8(k, l) return (k.fp8_layers >> l) & 1 == 1 end

function F.check(k, fail)
  if k.num_layers * k.kv_heads > 63 then
    fail("kv_heads", format("num_layers * kv_heads = %d: a list holds at most 63 elements",
                            k.num_layers * k.kv_heads))
  end
  if k.fp8_layers >= (1 << k.num_layers) then
    fail("fp8_layers", format("bit set past layer %d (num_layers = %d)", k.num_layers - 1,
                              k.num_layers))
  end
  if k.clamp_bound > 0 and k.fp8_layers == 0 then
    fail("clamp_bound", "only fp8 layers clip (set fp8_layers)")
  end
  if k.S_ctx > k.S_max then fail("S_ctx", format("%d exceeds S_max %d", k.S_ctx, k.S_max)) end
  sub_keys("attention_block_tkg", attn_keys(k), fail)
  sub_keys("mlp", mlp_keys(k, false), fail)
  if k.fp8_layers ~= 0 then sub_keys("mlp", mlp_keys(k, true), fail) end
  sub_keys("output_projection", oproj_keys(k), fail) -- the chain's
end

function F.call_check(k, n)
  if n.S_ctx > k.S_max then return format("S_ctx = %d exceeds S_max = %d", n.S_ctx, k.S_max) end
  if n.S_ctx < k.S_tkg then return format("S_ctx = %d < S_tkg = %d", n.S_ctx, k.S_tkg) end
  return nil
end

-- Tensors in signature order. `list = "num_layers"`: the slot holds num_layers pointers, one a
-- layer; `list_alt` gives the dtype of the elements of the layers in its mask (fp8 weights),
-- `list_mask` which elements are given (the others are NULL).
function F.args(k)
  local d, n, s, H, I, L = k.d_head, k.q_heads, k.S_tkg, k.H, k.I, k.num_layers
  local dt, all = k.dtype, (1 << L) - 1
  local f8 = k.fp8_layers
  local mixed = f8 ~= 0 and { dtype = "e4m3", mask = f8 } or nil
  local wd = k.weight_dtype
  local mlp_dt = f8 == all and "e4m3" or wd
  if f8 == all then mixed = nil end
  -- the caches' lists have an element per (layer, KV head): l * kv_heads + g
  local LG = { "num_layers", "kv_heads" }
  local function wt(name, K, N, fp8able)
    return { name = name, dir = "in", dtype = fp8able and mlp_dt or wd, shape = { K, N },
             weight = { layout = "kn", mx = false }, list = "num_layers",
             list_alt = fp8able and mixed or nil }
  end
  local G = k.kv_heads
  local function scale(name, N)
    return { name = name, dir = "in", dtype = "f32", shape = { 128, N }, first_row = true,
             init = "scale", list = "num_layers", list_mask = f8, used = f8 ~= 0 }
  end
  return {
    { name = "out", dir = "out", dtype = dt, shape = { "B", s, H } },
    { name = "K_caches", dir = "inout", dtype = dt, shape = { "B", 1, d, k.S_max }, list = LG },
    { name = "V_caches", dir = "inout", dtype = dt, shape = { "B", 1, k.S_max, d }, list = LG },
    { name = "X", dir = "in", dtype = dt, shape = { "B", s, H } },
    wt("W_qkvs", H, G * (n + 2) * d, false),
    wt("W_outs", G * n * d, H, false),
    wt("W_gates", H, I, true),
    wt("W_ups", H, I, true),
    wt("W_downs", I, H, true),
    { name = "W_gamma_qkvs", dir = "in", dtype = dt, shape = { 1, H }, list = "num_layers" },
    { name = "W_gamma_mlps", dir = "in", dtype = dt, shape = { 1, H }, list = "num_layers" },
    { name = "RoPE_cos", dir = "in", dtype = dt, shape = { d // 2, "B", s } },
    { name = "RoPE_sin", dir = "in", dtype = dt, shape = { d // 2, "B", s } },
    { name = "mask_cache", dir = "in", dtype = "u8", init = "ones",
      shape = { "S_ctx", "B", k.kv_heads * n, s } },
    { name = "position_ids", dir = "in", dtype = "u32", init = "slots", shape = { "B", 1 },
      used = k.update_cache },
    scale("W_gate_scales", I),
    scale("W_up_scales", I),
    scale("W_down_scales", H),
  }
end

-- Each layer's attention block and MLP as those families count them (the megakernel reads the
-- same weights and cache rows; its activations stay in scratch between stages).
function F.cost(k, n)
  local fa, ka = kernel.family("attention_block_tkg"), nil
  local flops, read, written = 0, 0, 0
  local kag = attn_keys(k)
  ka = kernel.normalize(fa, kag, nil, false, error)
  local fm = kernel.family("mlp")
  for l = 0, k.num_layers - 1 do
    local a = fa.cost(ka, { B = n.B, S_ctx = n.S_ctx, n_cache = n.B })
    for _, f in ipairs({ "flops", "read", "written" }) do a[f] = a[f] * k.kv_heads end
    local km = kernel.normalize(fm, mlp_keys(k, layer_is_fp8(k, l)), nil, false, error)
    local m = fm.cost(km, { T = n.B * k.S_tkg })
    local act = n.B * k.S_tkg * k.H * ctypes.info(k.dtype).bytes
    flops = flops + a.flops + m.flops
    -- the attention's X and the MLP's two inputs are the kernel's scratch, not read again
    read = read + a.read - k.kv_heads * act + m.read - 2 * act
    written = written + a.written - k.kv_heads * act
  end
  local act = n.B * k.S_tkg * k.H * ctypes.info(k.dtype).bytes
  return { flops = flops, read = read + act, written = written + act }
end

-- The chain of single-op kernels that computes the same layers (what kgen bench times the
-- megakernel against, and the tests compare bit for bit): per layer, kv_heads calls of the
-- attention block without its output projection (each reads its KV head's W_qkvs columns),
-- one output projection over all the heads, then the MLP (the residual add after it is the
-- caller's). A list of { calls, problem string }.
function F.chain(k)
  local out = {}
  local ak = attn_keys(k)
  ak.W_out = false
  local fa, ka = sub_keys("attention_block_tkg", ak, error)
  local fo, ko = sub_keys("output_projection", oproj_keys(k), error)
  for l = 0, k.num_layers - 1 do
    local fm, km = sub_keys("mlp", mlp_keys(k, layer_is_fp8(k, l)), error)
    out[#out + 1] = { calls = k.kv_heads, problem = kernel.problem_string(fa, ka) }
    out[#out + 1] = { calls = 1, problem = kernel.problem_string(fo, ko) }
    out[#out + 1] = { calls = 1, problem = kernel.problem_string(fm, km) }
  end
  return out
end

function F.params(k)
  local fa, ka = sub_keys("attention_block_tkg", attn_keys(k), error)
  local fm, km = sub_keys("mlp", mlp_keys(k, false), error)
  local A = fa.params(ka)
  -- each KV head's attention reads its query heads' rows of the whole mask in place
  A.MASK_HQ = k.kv_heads * k.q_heads
  local M = fm.params(km)
  M.PFX = "mlp_"
  local M8
  if k.fp8_layers ~= 0 then
    local _, km8 = sub_keys("mlp", mlp_keys(k, true), error)
    M8 = fm.params(km8)
    M8.PFX = "mlp8_"
    M8.TKG_CLIP = k.clamp_bound > 0 and k.clamp_bound or nil
  end
  local dt = ctypes.info(k.dtype)
  local fp8, init = {}, {}
  for l = 0, k.num_layers - 1 do
    fp8[#fp8 + 1] = layer_is_fp8(k, l)
    init[#init + 1] = fp8[#fp8] and "1" or "0"
  end
  return {
    ATTN = A, MLP = M, MLP8 = M8,
    H = k.H, I = k.I, N = k.q_heads, KV = k.kv_heads, D = k.d_head, SA = k.S_tkg, S = k.S_max,
    QKVW = k.kv_heads * (k.q_heads + 2) * k.d_head, KVND = k.kv_heads * k.q_heads * k.d_head,
    L = k.num_layers, FP8 = fp8, FP8_INIT = table.concat(init, ", "),
    ANY_FP8 = k.fp8_layers ~= 0, TP = k.tp,
    UPDATE = k.update_cache, EPS = k.eps, CB = k.clamp_bound,
    DTYPE = k.dtype, CT = dt.c, BYTES = dt.bytes,
    WIDEN = k.dtype == "f32" and "tk_copy" or dt.to_f32,
    NARROW = k.dtype == "f32" and "tk_copy" or dt.from_f32,
    WT_FMT = ctypes.WT[k.weight_dtype].fmt, WT_FMT8 = ctypes.WT.e4m3.fmt,
    COLL = ({ f32 = "KG_COLL_F32", bf16 = "KG_COLL_BF16", fp16 = "KG_COLL_F16" })[k.dtype],
    MB = M.MB, CHUNK = A.CHUNK, ROUND = A.ROUND,
    -- bytes of a weight's first panels prefetched ahead of its stage: enough for the first
    -- panels' streams to start. Not more: a prefetch loop stalls its thread once the miss
    -- buffers are full, so it does not run beside the attention; 256 KiB cost tiny.lua's
    -- megakernels 2-3% against their chains (alternating samples, one Zen 5 thread), 16 KiB
    -- and none did not, and at Llama-3-8B shapes no size moved the ratio beyond the noise.
    PREFETCH = 16 * 1024,
  }
end

return F
