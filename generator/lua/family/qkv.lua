-- qkv: the fused pre-attention projection. Per token row: optional residual add, optional
-- RMS/Layer norm, activation quantization, one matmul against the fused Q|K|V weight [H, I],
-- dequant scales, bias, optional RoPE on the Q and K heads, optional fp8 KV-cache write, and
-- the output layout. `variant` (CTE: prefill, TKG: decode) gates the options, as upstream's
-- two kernels do; the math is the same. Semantics: shared/reference/qkv.md.

local ctypes = require "ctypes"
local scratch = require "scratch"

local format = string.format

local F = {
  family = "qkv",
  template = "qkv.c.in",
  doc = "QKV projection of input [B,S,H] against the fused weight [H,(nq+2nkv)*d]",
  calls = { "B", "S", "cache_len" },
  -- cache_len is no token axis: a run at T tokens keeps the nominal cache
  tokens = { B = "batch", S = "seq" },
  signature_doc = [[
out [B, S, I] (BSD) or [nq+2nkv, B, S, d] (NBSd), or with the fp8 KV-cache write
[B, S, nq*d] (the Q part; K and V go to k_cache / v_cache, updated in place: flat
[B, cache_len, nkv*d] or block [cache_len = num_blocks, block_size, nkv*d]); fused_hidden
[B, S, H] (TKG fused add); input [B, S, H]; weight W [H, I]; w_scale, in_scale, bias [I],
mlp_prev, attention_prev [B, S, H], gamma, beta [H], cos, sin [B, S, d], k_scale, v_scale
(element 0), slot_mapping [B, S] int32. Variant CTE or TKG.]],
}

---------------------------------------------------------------------------------------------
-- Formats
---------------------------------------------------------------------------------------------

local FLOAT = { bf16 = true, fp16 = true, f32 = true }
local FP8 = ctypes.FP8
-- The KV cache's format (kv_dtype) is e4m3 (e5m2 is rejected, as upstream): its largest finite
-- value bounds the clamp and is the clamp's default.
local KV_FMT_MAX = FP8.e4m3.max

-- The stored layouts (upstream's QKVWeightLayout) as the packer names them.
local WT_LAYOUT = { CONTIGUOUS = "kn", MX_CONTIGUOUS = "x4", MX_INTERLEAVED = "x4_interleaved" }

local function is_mx(k) return k.quantization_type == "MX" end

---------------------------------------------------------------------------------------------
-- Keys
---------------------------------------------------------------------------------------------

F.keys = {
  { key = "variant", kind = "enum", values = { "CTE", "TKG" }, default = "CTE",
    name = { CTE = "cte", TKG = "tkg" },
    doc = "CTE (prefill: RoPE, KV cache, SKIP_GAMMA, fp8 input) or TKG (decode: fused_hidden)" },
  { key = "dtype", kind = "enum", values = { "bf16", "fp16", "f32", "e4m3", "e4m3fn" },
    from = "dtype", default = "bf16", name = "dtype",
    doc = "input dtype (fp8: CTE MX only), also of residuals, gamma, beta, bias, cos, sin" },
  { key = "quantization_type", kind = "enum", values = { "NONE", "STATIC", "ROW", "MX" },
    default = "NONE", name = { NONE = "noquant", STATIC = "static", ROW = "row", MX = "mx" },
    doc = "NONE; STATIC fp8 (per-tensor scales); ROW fp8 weights, per-column scales; MX MXFP8" },
  { key = "weight_dtype", kind = "enum", values = { "bf16", "fp16", "f32", "e4m3", "e4m3fn" },
    name = "dtype",
    default = function(k)
      if k.quantization_type == "NONE" then return FLOAT[k.dtype] and k.dtype or "bf16" end
      return is_mx(k) and "e4m3fn" or "e4m3"
    end,
    doc = "weight format (NONE: bf16/fp16/f32; STATIC, ROW: e4m3 or e4m3fn; MX: e4m3fn)" },
  { key = "H", kind = "int", min = 128, multiple_of = 128, from = "model.hidden", default = 4096,
    name = "h", doc = "hidden size (a multiple of 128)" },
  { key = "nq", kind = "int", min = 1, from = "model.q_heads", default = 32, name = "nq",
    doc = "query heads" },
  { key = "nkv", kind = "int", min = 1, from = "model.kv_heads", default = 8, name = "nkv",
    doc = "key/value heads" },
  { key = "d", kind = "int", min = 1, from = "model.head_dim", default = 128, name = "d",
    doc = "head dimension; I = (nq + 2 nkv) d" },
  { key = "hidden_actual", kind = "int", min = 1, default = function(k) return k.H end,
    name = "ha", omit_default = true,
    doc = "RMS divisor: the unpadded hidden size (columns past it are zero)" },
  { key = "output_layout", kind = "enum", values = { "BSD", "NBSd", "NBdS" }, default = "BSD",
    name = { BSD = "bsd", NBSd = "nbsd", NBdS = "nbds" },
    omit_default = true,
    doc = "BSD: out [B,S,I]; NBSd: out [nq+2nkv,B,S,d] (NBdS is rejected, as upstream)" },
  { key = "norm_type", kind = "enum",
    values = { "NO_NORM", "RMS_NORM", "LAYER_NORM", "RMS_NORM_SKIP_GAMMA" }, default = "NO_NORM",
    name = { NO_NORM = "nonorm", RMS_NORM = "rms", LAYER_NORM = "ln",
             RMS_NORM_SKIP_GAMMA = "rmsskip" },
    doc = "normalisation of each row before the matmul (rmsnorm_quant's name; upstream qkv's "
          .. "is fused_norm_type)" },
  { key = "layer_norm_bias", kind = "bool", default = false, name = "beta",
    doc = "LAYER_NORM adds beta (upstream's name)" },
  { key = "eps", kind = "float", min = 0, from = "model.rms_eps", default = 1e-6, name = "eps",
    doc = "norm epsilon" },
  { key = "bias", kind = "bool", default = false, name = "bias", doc = "add bias [I]" },
  { key = "fused_residual_add", kind = "bool", default = false, name = "add",
    doc = "x = input + mlp_prev + attention_prev (TKG also returns it as fused_hidden; "
          .. "upstream's name)" },
  { key = "weight_layout", kind = "enum",
    values = { "CONTIGUOUS", "MX_CONTIGUOUS", "MX_INTERLEAVED" },
    default = function(k) return is_mx(k) and "MX_CONTIGUOUS" or "CONTIGUOUS" end,
    name = { CONTIGUOUS = "kn", MX_CONTIGUOUS = "x4", MX_INTERLEAVED = "x4i" },
    omit_default = true,
    doc = "stored weight layout the handle is packed from (common.md QKVWeightLayout)" },
  { key = "is_input_swizzled", kind = "bool", default = false, name = "swz",
    doc = "MX: input (and gamma, beta, residuals) stored with h = 512j+4p+q at q*H/4+128j+p "
          .. "(upstream's name)" },
  { key = "mx_static_dequant", kind = "bool", default = false, name = "mxs",
    doc = "MX_INTERLEAVED + in_scale: x / s_in, MX quantize, y *= w_scale[Q|K|V] * s_in" },
  { key = "quant_max", kind = "float", min = 1, name = "qmax",
    default = function(k) return ctypes.quant_max(k.weight_dtype) end,
    doc = "STATIC (and MX static dequant) activation clamp +-quant_max" },
  { key = "fused_rope", kind = "bool", default = false, name = "rope",
    doc = "CTE: rotate the Q and K heads with cos, sin [B,S,d] (first halves used)" },
  { key = "kv_cache", kind = "enum", values = { "NONE", "FLAT", "BLOCK" }, default = "NONE",
    name = { NONE = "nokv", FLAT = "kvflat", BLOCK = "kvblock" },
    omit_default = true,
    doc = "CTE fp8 KV-cache write: FLAT [B,cache_len,nkv*d] rows 0..S-1; BLOCK via slot_mapping" },
  { key = "block_size", kind = "int", min = 0, default = 0, name = "bs",
    omit_default = true,
    doc = "BLOCK: rows per cache block (cache [cache_len blocks, block_size, nkv*d]); else 0" },
  { key = "kv_dtype", kind = "enum", values = { "e4m3", "e5m2" }, default = "e4m3",
    doc = "KV-cache element format (e5m2 is rejected, as upstream)" },
  { key = "fp8_max", kind = "float", default = KV_FMT_MAX, name = "kvmax",
    doc = "KV-cache clamp upper bound (upstream's name; not the activation range, quant_max)" },
  { key = "fp8_min", kind = "float", default = function(k) return -k.fp8_max end, name = "kvmin",
    doc = "KV-cache clamp lower bound (upstream's name)" },
  { key = "B", kind = "int", min = 1, from = "limits.max_batch", default = 1,
    doc = "nominal batch per call, for the cost block (a call may pass any B)" },
  { key = "S", kind = "int", min = 1, from = "limits.max_tokens", default = 128,
    doc = "nominal tokens per sequence per call, for the cost block" },
  { key = "cache_len", kind = "int", min = 1, from = "limits.max_context", default = 1024,
    doc = "nominal KV-cache length (FLAT: positions; BLOCK: blocks), for the cost block" },
}

---------------------------------------------------------------------------------------------
-- Rejected combinations (shared/reference/qkv.md "Constraints / asserts")
---------------------------------------------------------------------------------------------

local function check_variant(k, fail)
  if k.variant ~= "TKG" then return end
  if k.fused_rope then fail("fused_rope", "fused RoPE is CTE only (variant=TKG)") end
  if k.kv_cache ~= "NONE" then fail("kv_cache", "the fp8 KV-cache write is CTE only") end
  if k.norm_type == "RMS_NORM_SKIP_GAMMA" then
    fail("norm_type", "RMS_NORM_SKIP_GAMMA is CTE only (TKG has no SKIP_GAMMA)")
  end
  if not FLOAT[k.dtype] then fail("dtype", "fp8 input is CTE (MX) only") end
end

local function check_shapes(k, fail)
  if k.output_layout == "NBdS" then
    fail("output_layout", "NBdS exists only in the torch reference; both QKV kernels reject it")
  end
  if k.output_layout == "NBSd" and k.variant == "CTE" and k.d ~= 128 then
    fail("d", format("CTE with output_layout=NBSd requires d == 128, got %d", k.d))
  end
  if k.hidden_actual > k.H then
    fail("hidden_actual", format("%d exceeds H = %d", k.hidden_actual, k.H))
  end
  if k.layer_norm_bias and k.norm_type ~= "LAYER_NORM" then
    fail("layer_norm_bias", "beta only goes with norm_type=LAYER_NORM")
  end
  if k.fused_rope and k.d % 2 ~= 0 then
    fail("d", format("fused RoPE rotates halves: d must be even, got %d", k.d))
  end
end

local function check_quant(k, fail)
  local q, w = k.quantization_type, k.weight_dtype
  if q == "NONE" and not FLOAT[w] then
    fail("weight_dtype", "quantization_type=NONE takes a bf16, fp16 or f32 weight, not " .. w)
  elseif (q == "STATIC" or q == "ROW") and not FP8[w] then
    fail("weight_dtype", q .. " takes an fp8 weight (e4m3 or e4m3fn), not " .. w)
  elseif q == "MX" and w ~= "e4m3fn" then
    fail("weight_dtype", "MX weights are MXFP8 e4m3fn, not " .. w)
  end
  if q == "MX" then
    if k.weight_layout == "CONTIGUOUS" then
      fail("weight_layout", "MX weights are [H/4, I] x4: MX_CONTIGUOUS or MX_INTERLEAVED")
    end
    if k.H % 512 ~= 0 then fail("H", format("MX needs H %% 512 == 0, got %d", k.H)) end
  elseif k.weight_layout ~= "CONTIGUOUS" then
    fail("weight_layout", k.weight_layout .. " is an MX layout (quantization_type=MX)")
  end
  if k.is_input_swizzled then
    if q ~= "MX" then fail("is_input_swizzled", "a swizzled input needs quantization_type=MX") end
    if k.variant == "CTE" and (k.norm_type ~= "NO_NORM" or k.fused_residual_add) then
      fail("is_input_swizzled", "CTE forbids a norm or the fused add with a swizzled input")
    end
  end
  if k.mx_static_dequant then
    if q ~= "MX" or k.weight_layout ~= "MX_INTERLEAVED" then
      fail("mx_static_dequant", "needs quantization_type=MX and weight_layout=MX_INTERLEAVED")
    end
    if not FLOAT[k.dtype] then
      fail("mx_static_dequant", "fp8 input is already quantized (neutral scales)")
    end
  end
  local static = q == "STATIC" or k.mx_static_dequant
  if not static and k.quant_max ~= ctypes.quant_max(w) then
    fail("quant_max", "only STATIC and mx_static_dequant clamp the activations")
  end
  if FP8[w] and k.quant_max > FP8[w].max then
    fail("quant_max", format("%g exceeds the largest finite %s (%d)", k.quant_max, w,
                             FP8[w].max))
  end
  if not FLOAT[k.dtype] then
    if q ~= "MX" then fail("dtype", "fp8 input needs quantization_type=MX") end
    if k.norm_type ~= "NO_NORM" or k.fused_residual_add then
      fail("dtype", "fp8 input takes no norm and no fused add")
    end
  end
end

local function check_kv(k, fail)
  local kv = k.kv_cache
  if kv == "NONE" then
    if k.block_size ~= 0 then fail("block_size", "only kv_cache=BLOCK takes a block size") end
    if k.fp8_max ~= KV_FMT_MAX then
      fail("fp8_max", "only the KV-cache write (kv_cache) clamps")
    end
    if k.fp8_min ~= -KV_FMT_MAX then
      fail("fp8_min", "only the KV-cache write (kv_cache) clamps")
    end
    return
  end
  if k.output_layout ~= "BSD" then fail("output_layout", "the KV-cache write needs BSD") end
  if k.kv_dtype ~= "e4m3" then fail("kv_dtype", k.kv_dtype .. " KV caches are rejected") end
  if not FLOAT[k.dtype] then fail("dtype", "the KV-cache write returns q in the input dtype") end
  if kv == "BLOCK" and k.block_size < 1 then
    fail("block_size", "kv_cache=BLOCK needs block_size >= 1")
  elseif kv == "FLAT" and k.block_size ~= 0 then
    fail("block_size", "only kv_cache=BLOCK takes a block size")
  end
  if k.fp8_max <= 0 or k.fp8_max > KV_FMT_MAX then
    fail("fp8_max", format("%g is outside (0, %d] (float8_e4m3)", k.fp8_max, KV_FMT_MAX))
  end
  if k.fp8_min >= k.fp8_max or k.fp8_min < -KV_FMT_MAX then
    fail("fp8_min", format("%g is outside [-%d, fp8_max)", k.fp8_min, KV_FMT_MAX))
  end
end

function F.check(k, fail)
  check_variant(k, fail)
  check_shapes(k, fail)
  check_quant(k, fail)
  check_kv(k, fail)
end

---------------------------------------------------------------------------------------------
-- Arguments
---------------------------------------------------------------------------------------------

local function dims(k)
  local nh = k.nq + 2 * k.nkv
  return nh, nh * k.d, k.nq * k.d, k.nkv * k.d
end

-- The dtype of the output, as upstream: bf16 for fp8 input and for CTE STATIC (but the KV-cache
-- write returns q in the input dtype), else the input's.
local function out_dtype(k)
  if not FLOAT[k.dtype] then return "bf16" end
  if k.variant == "CTE" and k.quantization_type == "STATIC" and k.kv_cache == "NONE" then
    return "bf16"
  end
  return k.dtype
end

-- The dtype of bias, gamma, beta, residuals and tables: the input's, or bf16 for fp8 input.
local function side_dtype(k) return FLOAT[k.dtype] and k.dtype or "bf16" end

-- Tensors in signature order (kgen/kernels.h's kg_qkv_fn is made from them).
function F.args(k)
  local nh, I, qd, kvd = dims(k)
  local kv, static = k.kv_cache ~= "NONE", k.quantization_type == "STATIC" or k.mx_static_dequant
  local norm, sd = k.norm_type, side_dtype(k)
  local out_shape = kv and { "B", "S", qd }
                    or k.output_layout == "NBSd" and { nh, "B", "S", k.d } or { "B", "S", I }
  local cache = k.kv_cache == "BLOCK" and { "cache_len", k.block_size, kvd }
                or { "B", "cache_len", kvd }
  local ws = static and { 3 } or { I }
  return {
    { name = "out", dir = "out", dtype = out_dtype(k), shape = out_shape },
    { name = "fused_hidden", dir = "out", dtype = k.dtype, shape = { "B", "S", k.H },
      used = k.variant == "TKG" and k.fused_residual_add },
    { name = "k_cache", dir = "inout", dtype = k.kv_dtype, shape = cache, used = kv },
    { name = "v_cache", dir = "inout", dtype = k.kv_dtype, shape = cache, used = kv },
    { name = "input", dir = "in", dtype = k.dtype, shape = { "B", "S", k.H } },
    { name = "weight", dir = "in", dtype = k.weight_dtype, shape = { k.H, I },
      weight = { layout = WT_LAYOUT[k.weight_layout], mx = is_mx(k) and not k.mx_static_dequant } },
    { name = "w_scale", dir = "in", dtype = "f32", shape = ws, init = "scale",
      used = static or k.quantization_type == "ROW" },
    { name = "in_scale", dir = "in", dtype = "f32", shape = { 1 }, scalar = true, init = "scale",
      used = static },
    { name = "bias", dir = "in", dtype = sd, shape = { I }, used = k.bias },
    { name = "mlp_prev", dir = "in", dtype = k.dtype, shape = { "B", "S", k.H },
      used = k.fused_residual_add },
    { name = "attention_prev", dir = "in", dtype = k.dtype, shape = { "B", "S", k.H },
      used = k.fused_residual_add },
    { name = "gamma", dir = "in", dtype = sd, shape = { k.H },
      used = norm == "RMS_NORM" or norm == "LAYER_NORM" },
    { name = "beta", dir = "in", dtype = sd, shape = { k.H }, used = k.layer_norm_bias },
    { name = "cos", dir = "in", dtype = sd, shape = { "B", "S", k.d }, used = k.fused_rope },
    { name = "sin", dir = "in", dtype = sd, shape = { "B", "S", k.d }, used = k.fused_rope },
    { name = "k_scale", dir = "in", dtype = "f32", shape = { 1 }, scalar = true, init = "scale",
      used = kv },
    { name = "v_scale", dir = "in", dtype = "f32", shape = { 1 }, scalar = true, init = "scale",
      used = kv },
    { name = "slot_mapping", dir = "in", dtype = "i32", shape = { "B", "S" }, init = "slots",
      used = k.kv_cache == "BLOCK" },
  }
end

---------------------------------------------------------------------------------------------
-- Cost
---------------------------------------------------------------------------------------------

local function bytes_of(dt) return ctypes.wt_bytes(dt, 1) end

function F.cost(k, n)
  local nh, I, qd, kvd = dims(k)
  local T = n.B * n.S
  local ib, sb, ob = bytes_of(k.dtype), bytes_of(side_dtype(k)), bytes_of(out_dtype(k))
  local add, kv = k.fused_residual_add, k.kv_cache ~= "NONE"
  local norm = k.norm_type ~= "NO_NORM"
  local flops = 2 * T * k.H * I + T * k.H * ((add and 2 or 0) + (norm and 4 or 0))
                + T * I * 2 + (k.fused_rope and T * (k.nq + k.nkv) * k.d * 3 or 0)
  local read = T * k.H * ib * (add and 3 or 1) + k.H * I * bytes_of(k.weight_dtype)
               + (is_mx(k) and not k.mx_static_dequant and (k.H // 32) * I or 0)
               + (k.bias and I * sb or 0) + (norm and k.H * sb or 0)
               + (k.layer_norm_bias and k.H * sb or 0)
               + (k.fused_rope and 2 * T * k.d * sb or 0)
               + (k.quantization_type == "ROW" and I * 4 or 0)
               + (k.kv_cache == "BLOCK" and T * 4 or 0)
  local written = (kv and T * qd or T * I) * ob + (kv and 2 * T * kvd or 0)
                  + ((k.variant == "TKG" and add) and T * k.H * ib or 0)
  return { flops = flops, read = read, written = written }
end

---------------------------------------------------------------------------------------------
-- Template parameters
---------------------------------------------------------------------------------------------

-- How a row of dtype dt becomes fp32 (and back): the runtime's primitives (fp8 input too), or
-- the template's plain copy for f32.
local function widen(dt)
  if dt == "f32" then return "copy_f32" end
  if not FLOAT[dt] then return FP8[dt].to_f32 end
  return ctypes.info(dt).to_f32
end

local function narrow(dt) return dt == "f32" and "copy_f32" or ctypes.info(dt).from_f32 end

local function ctype(dt) return FLOAT[dt] and ctypes.info(dt).c or "kg_u8" end

-- The scratch of one call, in floats: the block's A and C, then per-call rows.
local function scratch_layout(p)
  local H, I, MB = p.H, p.I, p.MB
  local xrow_doc = p.ADD and "the residual being added" or "the row in stored (swizzled) order"
  return scratch.layout {
    { "A", MB * H, format("A [%d, %d]: the block's rows of x", MB, H) },
    { "C", MB * I, format("C [%d, %d]: A @ W", MB, I) },
    { "X", p.XROW and H or 0, format("[%d]: %s", H, xrow_doc) },
    { "GAMMA", p.GAMMA and H or 0, format("gamma [%d] in fp32, logical order", H) },
    { "BETA", p.BETA and H or 0, format("beta [%d] in fp32, logical order", H) },
    { "BIAS", p.BIAS and I or 0, format("bias [%d] in fp32", I) },
    { "CS", p.ROPE and p.D or 0, format("[%d]: a row's cos and sin halves", p.D) },
    { "KV_TMP", (p.KVW and not p.KV_SYM) and p.KVD or 0,
      format("[%d]: a K or V row scaled, before the asymmetric clamp", p.KVD) },
  }
end

function F.params(k)
  local nh, I, qd, kvd = dims(k)
  local sd, od = side_dtype(k), out_dtype(k)
  local norm, fp8w = k.norm_type, FP8[k.weight_dtype]
  local p = {
    TKG = k.variant == "TKG", VARIANT = k.variant,
    H = k.H, NQ = k.nq, NKV = k.nkv, D = k.d, HALF = k.d // 2, NH = nh, I = I, QD = qd,
    KVD = kvd, HACT = k.hidden_actual,
    -- the most tokens a call may pass: T * max(H, I), the largest index into input, out and A/C
    -- rows, must fit in a long
    TMAX = (1 << 62) // math.max(k.H, I),
    DTYPE = k.dtype, FP8_IN = not FLOAT[k.dtype],
    SDTYPE = sd, ODTYPE = od, WDTYPE = k.weight_dtype,
    WT_FMT = ctypes.WT[k.weight_dtype].fmt,
    WT_MX = is_mx(k) and not k.mx_static_dequant, WLAYOUT = k.weight_layout,
    QUANT = k.quantization_type, MXS = k.mx_static_dequant, QUANT_MAX = k.quant_max,
    -- STATIC: per-tensor activation scale and clamp (so does MX static dequant)
    STATIC = k.quantization_type == "STATIC" or k.mx_static_dequant,
    FP8_ROUND = fp8w and fp8w.round,
    NORM = norm, BETA = k.layer_norm_bias, EPS = k.eps,
    GAMMA = norm == "RMS_NORM" or norm == "LAYER_NORM",
    RMS = norm == "RMS_NORM" or norm == "RMS_NORM_SKIP_GAMMA",
    BIAS = k.bias, ADD = k.fused_residual_add, SWZ = k.is_input_swizzled,
    ROPE = k.fused_rope, NBSD = k.output_layout == "NBSd",
    KV = k.kv_cache, KVW = k.kv_cache ~= "NONE", BS = k.block_size,
    KV_MAX = k.fp8_max, KV_MIN = k.fp8_min, KV_SYM = k.fp8_min == -k.fp8_max,
    KV_QUANT = FP8.e4m3.quant, KV_FMT_MAX = KV_FMT_MAX,
    CT = ctype(k.dtype), SCT = ctype(sd), OCT = ctype(od),
    IN_WIDEN = widen(k.dtype), S_WIDEN = widen(sd), O_NARROW = narrow(od),
    IN_NARROW = FLOAT[k.dtype] and narrow(k.dtype) or nil,
    IN_ROUND = FLOAT[k.dtype] and ctypes.info(k.dtype).round or nil,
  }
  p.NEED_COPY = p.IN_WIDEN == "copy_f32" or p.S_WIDEN == "copy_f32" or p.O_NARROW == "copy_f32"
  -- a second fp32 row of H: the residual being added, or the row in its stored (swizzled) order
  p.XROW = p.ADD or p.SWZ
  -- token rows per block: A [MB, H] and C [MB, I] in fp32 take at most about 16 MiB
  p.MB = math.max(1, math.min(128, (4 * 1024 * 1024) // (k.H + I)))
  p.SCRATCH = scratch_layout(p)
  return p
end

return F
