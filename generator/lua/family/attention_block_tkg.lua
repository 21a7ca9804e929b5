-- attention_block_tkg: one decode step of a whole attention block for one KV head and its
-- q_heads query heads (a tensor-parallel rank's share): optional RMSNorm of X, the fused QKV
-- projection, RoPE, attention over the KV cache plus the new tokens (the attention_tkg core,
-- templates/attn_tkg_core.c.in), the cache write and the output projection.
-- Semantics: shared/reference/attention_block_tkg.md. Keys carry upstream's argument names.

local ctypes = require "ctypes"
local scratch = require "scratch"
local attn = require "attn_tkg"
local f32 = require "f32"
local format = string.format

-- the default epsilons (as the keys hold them: rounded to float32)
local EPS = f32.round(1e-6)

local F = {
  family = "attention_block_tkg",
  template = "attention_block_tkg.c.in",
  doc = "decode attention block: X [B,S_tkg,H] -> RMSNorm, QKV, RoPE, attention over the KV "
        .. "cache, cache write, output projection",
  calls = { "B", "S_ctx", "n_cache" },
  -- a decode call's tokens are its sequences (S_tkg is fixed): at T tokens, B = T
  tokens = { B = "seq" },
  signature_doc = [[
X_out [B, S_tkg, H] (W_out) or [B, q_heads, d_head, S_tkg];
K_tkg [d_head, B, S_tkg], V_tkg [B, 1, S_tkg, d_head] (the new K and V without
update_cache); K_cache, V_cache [n_cache >= B, 1, S_max, d_head] (K_cache_transposed:
K [n_cache, 1, d_head, S_max]; block_len: [n_cache blocks, block_len, d_head]), written in
place with update_cache; X [B, S_tkg, H]; rmsnorm_X_gamma [H]; W_qkv
[H, (q_heads + 2) * d_head] (columns: the Q heads, K, V); bias_qkv [(q_heads + 2) * d_head];
W_rmsnorm_QK_{pre,post}_rope [2, d_head] (upstream's W_rmsnorm_Q_*, W_rmsnorm_K_*, each
optional: an absent one scales by nothing, so its row is passed as ones);
cos, sin [d_head / 2, B, S_tkg]; attention_mask uint8 [S_ctx, B, q_heads, S_tkg]
(1: attend); sink [q_heads, 1] fp32; active_blocks_table [B, S_max / block_len] uint32;
kv_scale [2] fp32 (upstream's k_scale, v_scale); weight_dequant_scale_qkv [3],
input_dequant_scale_qkv, weight_dequant_scale_out, input_dequant_scale_out (element 0)
fp32 (STATIC); kv_cache_update_idx [B, 1] uint32 (the write position, or the block pool's
row; 0xFFFFFFFF: no write); W_out [q_heads * d_head, H]; bias_out [H]. The new tokens
occupy the last S_tkg of the S_ctx window slots. With kvdp > 1 (a KV-data-parallel group,
the calling thread's communicator kgp_coll()) the caches, the table, kv_cache_update_idx,
K_tkg and V_tkg hold the rank's B / kvdp sequences, the mask is [S_ctx, B / kvdp,
kvdp * q_heads, S_tkg] and sink [kvdp * q_heads, 1] (the group's heads, rank-major).]],
}

F.keys = {
  { key = "dtype", kind = "enum", values = ctypes.ACT, from = "dtype", default = "bf16",
    name = "dtype", doc = "dtype of X, X_out, the gammas, biases and RoPE tables" },
  { key = "weight_dtype", kind = "enum", values = { "bf16", "fp16", "f32" },
    default = function(k) return k.dtype end, omit_default = true,
    name = { bf16 = "wbf16", fp16 = "wfp16", f32 = "wf32" },
    doc = "format of the plain (not STATIC) W_qkv and W_out, default dtype (the GEMM reads "
          .. "any: f32 activations with bf16 weights as the model runner's)" },
  { key = "kv_dtype", kind = "enum", values = { "bf16", "fp16", "f32", "e4m3", "e5m2" },
    default = function(k) return k.dtype end, omit_default = true,
    name = { bf16 = "kvbf16", fp16 = "kvfp16", f32 = "kvf32", e4m3 = "kve4m3", e5m2 = "kve5m2" },
    doc = "dtype of the caches and K_tkg, V_tkg: dtype, or e4m3 (fp8 KV: K, V times kv_scale[0], "
          .. "kv_scale[1], clamped to +-240; e5m2 refused)" },
  { key = "H", kind = "int", min = 1, from = "model.hidden", default = 4096, name = "h",
    doc = "hidden size" },
  { key = "q_heads", kind = "int", min = 1, default = 4, name = "nq",
    from = function(s) return s.model.q_heads // s.model.kv_heads end,
    from_doc = "model.q_heads / model.kv_heads",
    doc = "query heads of the call's one KV head (upstream's name)" },
  { key = "d_head", kind = "int", min = 2, max = 128, from = "model.head_dim", default = 128,
    name = "d", doc = "head dimension (upstream's name), even, at most 128" },
  { key = "S_tkg", kind = "int", min = 1, max = 8, default = 1, name = "s",
    doc = "new tokens per sequence, 1 to 8" },
  { key = "S_max", kind = "int", min = 1, from = "limits.max_context", default = 8192,
    name = "smax", doc = "cache slots per sequence (the flat cache's row stride)" },
  { key = "rmsnorm_X_enabled", kind = "bool", default = false, name = "norm",
    doc = "RMSNorm of X with rmsnorm_X_gamma before the projection (upstream's name)" },
  { key = "rmsnorm_X_eps", kind = "float", min = 0, default = 1e-6, name = "eps",
    omit_default = true, doc = "its epsilon (upstream's name)" },
  { key = "X_hidden_dim_actual", kind = "int", min = 1, name = "ha", omit_default = true,
    default = function(k) return k.H end,
    doc = "the RMSNorm divisor: X's unpadded hidden size (columns past it are zero; upstream's "
          .. "name)" },
  { key = "bias_qkv", kind = "bool", default = false, name = "bq",
    doc = "add bias_qkv [(q_heads + 2) * d_head] after the projection (upstream: given)" },
  { key = "quantization_type_qkv", kind = "enum", values = { "NONE", "STATIC" },
    default = "NONE", name = { NONE = "noq", STATIC = "sq" }, omit_default = true,
    doc = "STATIC: W_qkv fp8 e4m3, x quantized as e4m3(clamp(x / s_in, +-240)), the Q, K, V "
          .. "columns times weight_dequant_scale_qkv[0|1|2] * s_in (upstream's name)" },
  { key = "rmsnorm_QK_enabled", kind = "bool", default = false, name = "qkpre",
    doc = "RMSNorm of each Q head and K over d_head before RoPE, gammas W_rmsnorm_QK_pre_rope "
          .. "[Q's, K's] (upstream's name)" },
  { key = "rmsnorm_QK_gamma", kind = "bool", default = true, name = "qkg",
    doc = "the pre-RoPE norm multiplies by W_rmsnorm_QK_pre_rope (upstream: the gammas given)" },
  { key = "rmsnorm_QK_eps", kind = "float", min = 0, default = 1e-6, name = "qkeps",
    omit_default = true, doc = "its epsilon (upstream's name)" },
  { key = "rope", kind = "bool", default = true, name = "rope",
    doc = "rotate the Q heads and K with cos, sin (upstream: cos and sin given)" },
  { key = "rope_contiguous_layout", kind = "bool", default = true, name = "ctg",
    doc = "RoPE pairs (i, i + d/2) (true) or (2i, 2i + 1) (upstream's name)" },
  { key = "rmsnorm_QK_post_rope_enabled", kind = "bool", default = false, name = "qkpost",
    doc = "the same after RoPE, gammas W_rmsnorm_QK_post_rope [Q's, K's] (upstream's name)" },
  { key = "rmsnorm_QK_post_rope_gamma", kind = "bool", default = true, name = "qkpg",
    doc = "the post-RoPE norm multiplies by W_rmsnorm_QK_post_rope (upstream: the gammas given)" },
  { key = "rmsnorm_QK_post_rope_eps", kind = "float", min = 0, default = 1e-6, name = "qkpeps",
    omit_default = true, doc = "its epsilon (upstream's name)" },
  { key = "softmax_scale", kind = "float", name = "sc", omit_default = true,
    default = function(k) return f32.round(1 / math.sqrt(k.d_head)) end,
    doc = "q = Q * softmax_scale (upstream's name; default 1/sqrt(d_head))" },
  { key = "sink", kind = "bool", default = false, name = "sink",
    doc = "a per-head sink logit sink [q_heads, 1] joins the softmax, not the value sum" },
  { key = "K_cache_transposed", kind = "bool", default = false, name = "kt",
    doc = "K_cache stored [n_cache, 1, d_head, S_max] (upstream's name)" },
  { key = "block_len", kind = "int", min = 0, default = 0, name = "blk", omit_default = true,
    doc = "0: flat caches; else caches of n_cache blocks [block_len, d_head] through "
          .. "active_blocks_table, S_max the most window slots (upstream's name)" },
  { key = "skip_attention", kind = "bool", default = false, name = "skip",
    doc = "no attention: the unscaled, rotated (and normed) Q replaces its output (upstream's "
          .. "name)" },
  { key = "update_cache", kind = "bool", default = true, name = "upd",
    doc = "write the new K, V into the caches at kv_cache_update_idx after attention, else "
          .. "return them as K_tkg, V_tkg (upstream's name)" },
  { key = "W_out", kind = "bool", default = true, name = "wo",
    doc = "project the attention with W_out (upstream: W_out given)" },
  { key = "quantization_type_out", kind = "enum", values = { "NONE", "STATIC" },
    default = "NONE", name = { NONE = "noqo", STATIC = "sqo" }, omit_default = true,
    doc = "STATIC: W_out fp8 e4m3, the attention quantized as e4m3(clamp(a / s_in, +-240)), "
          .. "times weight_dequant_scale_out * s_in (upstream's name)" },
  { key = "bias_out", kind = "bool", default = false, name = "bo",
    doc = "add bias_out after W_out (upstream: bias_out given)" },
  { key = "kvdp", kind = "int", min = 1, max = 256, default = 1, name = "kvdp",
    omit_default = true,
    doc = "KV data parallelism (upstream's KVDP): a group of kvdp ranks (the calling thread's "
          .. "communicator) each holding the caches of B / kvdp sequences; each attends its own "
          .. "for the group's kvdp * q_heads query heads (gathered), and projects its own heads "
          .. "of all B" },
  { key = "B", kind = "int", min = 1, from = "limits.max_batch", default = 1,
    doc = "nominal batch per call, for the cost block" },
  { key = "S_ctx", kind = "int", min = 1, default = function(k) return k.S_max end,
    doc = "nominal context window per call (<= S_max), for the cost block" },
  { key = "n_cache", kind = "int", min = 1,
    default = function(k)
      local b = math.max(k.B // k.kvdp, 1)
      return k.block_len > 0 and b * (k.S_max // math.max(k.block_len, 1)) or b
    end,
    doc = "nominal leading dimension of the caches: sequences (flat, >= B / kvdp) or blocks" },
}

function F.check(k, fail)
  if k.kv_dtype == "e5m2" then
    fail("kv_dtype", "an e5m2 KV cache is refused (upstream: float8_e4m3 only)")
  end
  if k.kv_dtype ~= "e4m3" and k.kv_dtype ~= k.dtype then
    fail("kv_dtype", format("kv_dtype %s: the caches are dtype (%s) or e4m3", k.kv_dtype,
                            k.dtype))
  end
  if k.d_head % 2 ~= 0 then
    fail("d_head", format("d_head must be even (upstream), got %d", k.d_head))
  end
  if not k.rmsnorm_X_enabled and k.rmsnorm_X_eps ~= EPS then
    fail("rmsnorm_X_eps", "only rmsnorm_X_enabled reads an epsilon")
  end
  if not k.rope and not k.rope_contiguous_layout then
    fail("rope_contiguous_layout", "a RoPE layout needs rope")
  end
  if k.X_hidden_dim_actual > k.H then
    fail("X_hidden_dim_actual", format("%d exceeds H = %d", k.X_hidden_dim_actual, k.H))
  end
  if k.X_hidden_dim_actual ~= k.H and not k.rmsnorm_X_enabled then
    fail("X_hidden_dim_actual", "only rmsnorm_X_enabled reads the actual hidden size")
  end
  if not k.rmsnorm_QK_enabled and not k.rmsnorm_QK_gamma then
    fail("rmsnorm_QK_gamma", "a gamma of the pre-RoPE norm needs rmsnorm_QK_enabled")
  end
  if not k.rmsnorm_QK_post_rope_enabled and not k.rmsnorm_QK_post_rope_gamma then
    fail("rmsnorm_QK_post_rope_gamma", "a gamma of the post-RoPE norm needs "
         .. "rmsnorm_QK_post_rope_enabled")
  end
  if not k.rmsnorm_QK_enabled and k.rmsnorm_QK_eps ~= EPS then
    fail("rmsnorm_QK_eps", "only rmsnorm_QK_enabled reads an epsilon")
  end
  if not k.rmsnorm_QK_post_rope_enabled and k.rmsnorm_QK_post_rope_eps ~= EPS then
    fail("rmsnorm_QK_post_rope_eps", "only rmsnorm_QK_post_rope_enabled reads an epsilon")
  end
  if k.block_len > 0 and k.K_cache_transposed then
    fail("K_cache_transposed", "a block KV cache stores K as [block_len, d_head] (upstream)")
  end
  if k.block_len > 0 and k.S_max % k.block_len ~= 0 then
    fail("block_len", format("S_max %d is not a multiple of block_len %d", k.S_max,
                             k.block_len))
  end
  if k.skip_attention and k.sink then fail("sink", "skip_attention reads no sink") end
  if k.quantization_type_out ~= "NONE" and not k.W_out then
    fail("quantization_type_out", "quantizing the output projection needs W_out")
  end
  if k.bias_out and not k.W_out then fail("bias_out", "bias_out goes with W_out") end
  if k.S_ctx > k.S_max then
    fail("S_ctx", format("%d exceeds S_max %d", k.S_ctx, k.S_max))
  end
  if k.S_ctx < k.S_tkg then
    fail("S_ctx", format("%d slots cannot hold the %d new tokens", k.S_ctx, k.S_tkg))
  end
  if k.B % k.kvdp ~= 0 then
    fail("kvdp", format("B = %d is not a multiple of kvdp = %d (each rank owns B / kvdp "
                        .. "sequences)", k.B, k.kvdp))
  end
end

function F.call_check(k, n)
  if n.S_ctx > k.S_max then return format("S_ctx = %d exceeds S_max = %d", n.S_ctx, k.S_max) end
  if n.S_ctx < k.S_tkg then return format("S_ctx = %d < S_tkg = %d", n.S_ctx, k.S_tkg) end
  if n.B % k.kvdp ~= 0 then
    return format("B = %d is not a multiple of kvdp = %d", n.B, k.kvdp)
  end
  if k.block_len == 0 and n.n_cache < n.B // k.kvdp then
    return format("n_cache = %d < B / kvdp = %d: the flat cache holds a row per sequence",
                  n.n_cache, n.B // k.kvdp)
  end
  return nil
end

local function dims(k)
  return (k.q_heads + 2) * k.d_head, k.q_heads * k.d_head
end

-- Tensors in signature order (kgen/kernels.h's kg_attention_block_tkg_fn is made from them).
-- With kvdp > 1 the per-rank tensors (caches, table, indices, mask, K_tkg, V_tkg) hold B / kvdp
-- sequences; a shape names per-call sizes only, so theirs say B, a bound.
function F.args(k)
  local d, n, s, H = k.d_head, k.q_heads, k.S_tkg, k.H
  local I, nd = dims(k)
  local blk = k.block_len > 0
  local vcache = blk and { "n_cache", k.block_len, d } or { "n_cache", 1, k.S_max, d }
  local kcache = k.K_cache_transposed and { "n_cache", 1, d, k.S_max } or vcache
  local pre = k.rmsnorm_QK_enabled and k.rmsnorm_QK_gamma
  local post = k.rmsnorm_QK_post_rope_enabled and k.rmsnorm_QK_post_rope_gamma
  local fp8 = k.kv_dtype == "e4m3"
  local sq, so = k.quantization_type_qkv == "STATIC", k.quantization_type_out == "STATIC"
  return {
    { name = "X_out", dir = "out", dtype = k.dtype,
      shape = k.W_out and { "B", s, H } or { "B", n, d, s } },
    { name = "K_tkg", dir = "out", dtype = k.kv_dtype, shape = { d, "B", s },
      used = not k.update_cache },
    { name = "V_tkg", dir = "out", dtype = k.kv_dtype, shape = { "B", 1, s, d },
      used = not k.update_cache },
    { name = "K_cache", dir = "inout", dtype = k.kv_dtype, shape = kcache },
    { name = "V_cache", dir = "inout", dtype = k.kv_dtype, shape = vcache },
    { name = "X", dir = "in", dtype = k.dtype, shape = { "B", s, H } },
    { name = "rmsnorm_X_gamma", dir = "in", dtype = k.dtype, shape = { H },
      used = k.rmsnorm_X_enabled },
    { name = "W_qkv", dir = "in", dtype = sq and "e4m3" or k.weight_dtype, shape = { H, I },
      weight = { layout = "kn", mx = false } },
    { name = "weight_dequant_scale_qkv", dir = "in", dtype = "f32", shape = { 3 },
      init = "scale", used = sq },
    { name = "input_dequant_scale_qkv", dir = "in", dtype = "f32", shape = { 1 }, scalar = true,
      init = "scale", used = sq },
    { name = "bias_qkv", dir = "in", dtype = k.dtype, shape = { I }, used = k.bias_qkv },
    { name = "W_rmsnorm_QK_pre_rope", dir = "in", dtype = k.dtype, shape = { 2, d },
      used = pre },
    { name = "cos", dir = "in", dtype = k.dtype, shape = { d // 2, "B", s }, used = k.rope },
    { name = "sin", dir = "in", dtype = k.dtype, shape = { d // 2, "B", s }, used = k.rope },
    { name = "W_rmsnorm_QK_post_rope", dir = "in", dtype = k.dtype, shape = { 2, d },
      used = post },
    { name = "attention_mask", dir = "in", dtype = "u8", init = "ones",
      shape = { "S_ctx", "B", k.kvdp * n, s }, used = not k.skip_attention },
    { name = "sink", dir = "in", dtype = "f32", shape = { k.kvdp * n, 1 }, used = k.sink },
    { name = "active_blocks_table", dir = "in", dtype = "u32", init = "slots",
      shape = { "B", blk and k.S_max // k.block_len or 1 }, used = blk and not k.skip_attention },
    { name = "kv_scale", dir = "in", dtype = "f32", shape = { 2 }, init = "scale", used = fp8 },
    { name = "kv_cache_update_idx", dir = "in", dtype = "u32", init = "slots",
      shape = { "B", 1 }, used = k.update_cache },
    { name = "W_out", dir = "in", dtype = so and "e4m3" or k.weight_dtype, shape = { nd, H },
      weight = { layout = "kn", mx = false }, used = k.W_out },
    { name = "weight_dequant_scale_out", dir = "in", dtype = "f32", shape = { 1 }, scalar = true,
      init = "scale", used = so },
    { name = "input_dequant_scale_out", dir = "in", dtype = "f32", shape = { 1 }, scalar = true,
      init = "scale", used = so },
    { name = "bias_out", dir = "in", dtype = k.dtype, shape = { H }, used = k.bias_out },
  }
end

local function bytes_of(dt) return ctypes.wt_bytes(dt, 1) end

-- What a call reads and computes: X, both weights once, the K and V cache rows of its window
-- once, the mask; the two GEMMs, QK^T and PV (2 flops per product each).
function F.cost(k, n)
  local d, N, s, H = k.d_head, k.q_heads, k.S_tkg, k.H
  local I, nd = dims(k)
  local T, b, kb = n.B * s, bytes_of(k.dtype), bytes_of(k.kv_dtype)
  local att = k.skip_attention and 0 or 1
  -- a KVDP rank attends B / kvdp sequences for kvdp * N heads: the same products as B for N;
  -- it reads and writes B / kvdp sequences' K and V (costs are integer polynomials in B: where
  -- kvdp does not divide a sequence's bytes, they count as B's, a bound)
  local function own(bytes)
    return bytes % k.kvdp == 0 and n.B * (bytes // k.kvdp) or n.B * bytes
  end
  local flops = 2 * T * H * I + att * 4 * n.B * N * s * n.S_ctx * d
                + (k.W_out and 2 * T * nd * H or 0)
  local wb = bytes_of(k.weight_dtype)
  local wq = k.quantization_type_qkv == "STATIC" and 1 or wb
  local wo = k.quantization_type_out == "STATIC" and 1 or wb
  local read = T * H * b + H * I * wq + (k.W_out and nd * H * wo or 0)
               + att * (own(2 * n.S_ctx * d * kb) + n.S_ctx * n.B * N * s)
  local written = (k.W_out and T * H or T * nd) * b + own(2 * s * d * kb)
  return { flops = flops, read = read, written = written }
end

function F.params(k)
  local d, N, s, H = k.d_head, k.q_heads, k.S_tkg, k.H
  local I, nd = dims(k)
  local p = attn.params {
    d = d, qh = k.kvdp * N, nkv = 1, sa = s, S = k.S_max, blk = k.block_len,
    tpk = not k.K_cache_transposed, kv_dtype = k.kv_dtype,
    -- the new K and V rows, rounded to the cache dtype, stay fp32 in the pair's scratch
    ka_pair = true, va_pair = true,
    q_doc = " (scaled), then the attention output", k_doc = " (rounded to the cache dtype)",
  }
  p.POS, p.SWA, p.SINK, p.SKIP = false, false, k.sink, k.skip_attention
  p.H, p.N, p.I, p.ND, p.HALF = H, N, I, nd, d // 2
  p.KVDP = k.kvdp
  p.DTYPE, p.CT = k.dtype, attn.ctype(k.dtype)
  p.WIDEN = attn.widen(k.dtype)
  p.NARROW = k.dtype == "f32" and "copy_f32" or ctypes.info(k.dtype).from_f32
  p.ROUND = k.dtype ~= "f32" and ctypes.info(k.dtype).round or nil
  p.SQKV, p.SOUT = k.quantization_type_qkv == "STATIC", k.quantization_type_out == "STATIC"
  p.WT_FMT = ctypes.WT[p.SQKV and "e4m3" or k.weight_dtype].fmt
  p.WT_FMT_OUT = ctypes.WT[p.SOUT and "e4m3" or k.weight_dtype].fmt
  p.NORM, p.EPS, p.HACT = k.rmsnorm_X_enabled, k.rmsnorm_X_eps, k.X_hidden_dim_actual
  p.QK_PRE_G = k.rmsnorm_QK_enabled and k.rmsnorm_QK_gamma
  p.QK_POST_G = k.rmsnorm_QK_post_rope_enabled and k.rmsnorm_QK_post_rope_gamma
  p.ROPE, p.CONTIG = k.rope, k.rope_contiguous_layout
  p.BQKV, p.QK_PRE, p.QK_POST = k.bias_qkv, k.rmsnorm_QK_enabled, k.rmsnorm_QK_post_rope_enabled
  p.QK_PRE_EPS, p.QK_POST_EPS = k.rmsnorm_QK_eps, k.rmsnorm_QK_post_rope_eps
  p.SCALE, p.UPDATE, p.WOUT, p.BOUT = k.softmax_scale, k.update_cache, k.W_out, k.bias_out
  p.FP8 = k.kv_dtype == "e4m3"
  p.FP8_MAX = ctypes.FP8.e4m3.max
  p.KV_NARROW = p.FP8 and "kv_narrow" or p.NARROW
  p.NEED_COPY = p.WIDEN == "copy_f32"
  -- token rows per GEMM block: A [MB, max(H, N*D)] and C [MB, max(I, H)] in fp32 take at
  -- most about 16 MiB
  local wa, wc = math.max(H, nd), math.max(I, H)
  p.MB = math.max(1, math.min(128, (4 * 1024 * 1024) // (wa + wc)))
  p.WA, p.WC = wa, wc
  -- per call (the GEMM blocks A [m, WA] and C [m, WC], m = min(B * S_tkg, MB), follow them)
  p.SCRATCH = scratch.layout {
    { "GAMMA", p.NORM and H or 0, format("rmsnorm_X_gamma [%d] in fp32", H) },
    { "BIAS_QKV", p.BQKV and I or 0, format("bias_qkv [%d] in fp32", I) },
    { "QK_PRE", p.QK_PRE_G and 2 * d or 0,
      format("[2, %d]: the Q and K gammas before RoPE", d) },
    { "QK_POST", p.QK_POST_G and 2 * d or 0,
      format("[2, %d]: the Q and K gammas after RoPE", d) },
    { "BIAS_OUT", p.BOUT and H or 0, format("bias_out [%d] in fp32", H) },
    { "CS", p.ROPE and d or 0, format("[%d]: a token's cos and sin", d) },
  }
  return p
end

return F
