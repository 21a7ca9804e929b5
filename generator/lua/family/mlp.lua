-- mlp: the transformer feed-forward block, prefill (CTE) or decode (TKG): optional residual add,
-- norm, gate and up projections, activation, product, down projection, biases, clamps and the
-- fp8 / MX quantization schemes. Semantics: shared/reference/mlp.md (and common.md).

local ctypes = require "ctypes"
local f32 = require "f32"
local scratch = require "scratch"

local format = string.format

local F = {
  family = "mlp",
  template = "mlp.c.in",
  doc = "gated MLP: out = (act(x@Wg) * (x@Wu)) @ Wd per token of hidden [..., H]",
  calls = { "T" },
  tokens = { T = "seq" },
  signature_doc = [[
out [T, H] in the output dtype; add_out [T, H] (the fused-add sum, when stored); hidden
[T, H] (CTE ROW: [T, H+4] fp8 with the packed row scale); add [T, H]; gate_w, up_w W [H, I],
down_w W [I, H]; gate/up/down_scale (STATIC: element 0; ROW: per column); gate_up_in_scale,
down_in_scale (element 0); gamma, beta [H]; gate_bias, up_bias [I], down_bias [H].
T = B*S tokens. Variant CTE or TKG.]],
}

---------------------------------------------------------------------------------------------
-- Tables
---------------------------------------------------------------------------------------------

local WEIGHT_DTYPES = { "bf16", "fp16", "f32", "e4m3", "e4m3fn", "e5m2", "e2m1" }

-- Which weight formats each quantization type takes.
local ALLOWED_W = {
  NONE = { bf16 = true, fp16 = true, f32 = true },
  STATIC = { e4m3 = true, e4m3fn = true }, ROW = { e4m3 = true, e4m3fn = true },
  STATIC_MX = { e4m3 = true, e4m3fn = true },
  MX = { e2m1 = true, e4m3fn = true, e5m2 = true },
}

local ACT_PRIM = { SiLU = "kgp_silu_f32", GELU = "kgp_gelu_f32",
                   GELU_Tanh_Approx = "kgp_gelu_tanh_f32", Swish = "kgp_swish_f32" }

-- "No clamp": the clamp keys' default, the largest float32 (a clamp there changes no finite g).
local FLT_MAX = f32.round(3.4028234663852886e38)

local function fp8_quant(q) return q == "STATIC" or q == "ROW" or q == "STATIC_MX" end

---------------------------------------------------------------------------------------------
-- Keys
---------------------------------------------------------------------------------------------

F.keys = {
  { key = "variant", kind = "enum", values = { "CTE", "TKG" }, default = "CTE",
    name = { CTE = "cte", TKG = "tkg" },
    doc = "CTE (prefill: fp8 quantization of activations) or TKG (decode: weight-only fp8)" },
  { key = "dtype", kind = "enum", values = ctypes.ACT, from = "dtype", default = "bf16",
    name = "dtype", doc = "dtype of hidden, add, gamma, beta and the biases" },
  { key = "fp8", kind = "enum", values = { "e4m3", "e4m3fn" }, from = "fp8.format",
    default = "e4m3", doc = "fp8 format of STATIC / ROW / STATIC_MX weights (their default)" },
  { key = "H", kind = "int", min = 1, from = "model.hidden", default = 4096, name = "h",
    doc = "hidden size (a multiple of 128)" },
  { key = "I", kind = "int", min = 1, from = "model.intermediate", default = 14336, name = "i",
    doc = "intermediate size" },
  { key = "quantization_type", kind = "enum",
    values = { "NONE", "STATIC", "ROW", "MX", "STATIC_MX" },
    default = "NONE",
    name = { NONE = "none", STATIC = "static", ROW = "row", MX = "mx", STATIC_MX = "smx" },
    doc = "NONE, STATIC (per-tensor), ROW (per-row / per-column), MX (TKG), STATIC_MX (CTE)" },
  { key = "weight_dtype", kind = "enum", values = WEIGHT_DTYPES, name = "dtype",
    default = function(k)
      if k.quantization_type == "NONE" then return k.dtype end
      if k.quantization_type == "MX" then return "e4m3fn" end
      return k.fp8
    end,
    doc = "stored format of the three weights (quantized: their fp8 / fp4 format)" },
  { key = "weight_layout", kind = "enum", values = { "kn", "swizzled" },
    default = function(k) return k.quantization_type == "MX" and "swizzled" or "kn" end,
    name = { kn = "kn", swizzled = "wswz" }, omit_default = true,
    doc = "kn: logical [K, N]; swizzled: upstream's layouts (STATIC_MX swizzles; MX: always)" },
  { key = "is_input_swizzled", kind = "bool", default = false, name = "swz",
    doc = "MX: hidden/gamma/beta 4H-swizzled and gate/up bias [P_I, ceil(I/512), 4] "
          .. "(upstream's MX layouts; qkv's name, upstream's there)" },
  { key = "out_dtype", kind = "enum", values = ctypes.ACT, name = "dtype",
    default = function(k) return k.dtype end, doc = "dtype of out and add_out" },
  { key = "activation_fn", kind = "enum", values = { "SiLU", "GELU", "GELU_Tanh_Approx", "Swish" },
    default = "SiLU",
    name = { SiLU = "silu", GELU = "gelu", GELU_Tanh_Approx = "gelutanh", Swish = "swish" },
    doc = "activation (Swish = x*sigmoid(1.702x))" },
  { key = "skip_gate_proj", kind = "bool", default = false, name = "nogate",
    doc = "no gate projection: h = act(x@Wu)" },
  { key = "normalization_type", kind = "enum",
    values = { "NO_NORM", "RMS_NORM", "RMS_NORM_SKIP_GAMMA", "LAYER_NORM" }, default = "NO_NORM",
    name = { NO_NORM = "nonorm", RMS_NORM = "rms", RMS_NORM_SKIP_GAMMA = "rmsnogamma",
             LAYER_NORM = "layer" },
    doc = "norm of x before the projections (upstream mlp's name; norm_type elsewhere)" },
  { key = "eps", kind = "float", min = 0, from = "model.rms_eps", default = 1e-6, name = "eps",
    doc = "norm epsilon" },
  { key = "layer_norm_bias", kind = "bool", default = false, name = "beta",
    doc = "LAYER_NORM adds beta (qkv's name, upstream's there)" },
  { key = "fused_residual_add", kind = "bool", default = false, name = "add",
    doc = "x = hidden + add, the residual (qkv's name, upstream's there)" },
  { key = "store_fused_add_result", kind = "bool", default = false, name = "store",
    doc = "also write hidden + add to add_out (upstream's name)" },
  { key = "gate_bias", kind = "bool", default = false, name = "gb", doc = "gate bias [I]" },
  { key = "up_bias", kind = "bool", default = false, name = "ub", doc = "up bias [I]" },
  { key = "down_bias", kind = "bool", default = false, name = "db", doc = "down bias [H]" },
  { key = "gate_clamp_lower_limit", kind = "float", default = -FLT_MAX, name = "gclo",
    doc = "TKG: g = max(g, limit) (default: no clamp)" },
  { key = "gate_clamp_upper_limit", kind = "float", default = FLT_MAX, name = "gchi",
    doc = "TKG: g = min(g, limit) (default: no clamp)" },
  { key = "up_clamp_lower_limit", kind = "float", default = -FLT_MAX, name = "uclo",
    doc = "TKG: u = max(u, limit) (default: no clamp)" },
  { key = "up_clamp_upper_limit", kind = "float", default = FLT_MAX, name = "uchi",
    doc = "TKG: u = min(u, limit) (default: no clamp)" },
  { key = "quant_clipping_bound", kind = "float", min = 0, default = 0, name = "clip",
    doc = "CTE ROW: clip h to +-bound before its row quantization (0 = off; upstream's name)" },
  { key = "quant_max", kind = "float", min = 1, from = "fp8.max", name = "qmax",
    default = function(k) return ctypes.quant_max(k.weight_dtype) end,
    doc = "CTE activation quantization range +-quant_max (default: the fp8 format's max)" },
  { key = "T", kind = "int", min = 1, from = "limits.max_tokens", default = 128,
    doc = "nominal tokens (B*S) per call, for the cost block (a call may pass any count)" },
}

---------------------------------------------------------------------------------------------
-- Rejected combinations (shared/reference/mlp.md "Constraints / asserts")
---------------------------------------------------------------------------------------------

-- The first of a projection's clamp keys ("gate" or "up") that is set, or nil.
local function clamp_set(k, proj)
  if k[proj .. "_clamp_lower_limit"] ~= -FLT_MAX then return proj .. "_clamp_lower_limit" end
  if k[proj .. "_clamp_upper_limit"] ~= FLT_MAX then return proj .. "_clamp_upper_limit" end
  return nil
end

-- Keys an option makes irrelevant are put back to their defaults, so kernels that do the same
-- thing get one name and one canonical problem (e.g. a NO_NORM kernel under a spec whose
-- model.rms_eps is 1e-5, or a TKG kernel under a spec's fp8.max).
local function canonicalize(k)
  local q = k.quantization_type
  if k.normalization_type == "NO_NORM" then k.eps = f32.round(1e-6) end
  if not (k.variant == "CTE" and fp8_quant(q)) then
    k.quant_max = ctypes.quant_max(k.weight_dtype)
  end
  if fp8_quant(q) and ctypes.FP8[k.weight_dtype] then k.fp8 = k.weight_dtype end
end

-- Which variant takes which scheme and clamps; the weight formats of each scheme.
local function check_variant(k, fail)
  local q, cte = k.quantization_type, k.variant == "CTE"
  if not ALLOWED_W[q][k.weight_dtype] then
    fail("weight_dtype", format("%s weights are not %s", q, k.weight_dtype))
  end
  if cte and q == "MX" then fail("quantization_type", "MX is TKG only (variant=TKG)") end
  if not cte and q == "STATIC_MX" then
    fail("quantization_type", "STATIC_MX is CTE only (variant=CTE)")
  end
  local clamp = clamp_set(k, "gate") or clamp_set(k, "up")
  if cte and clamp then fail(clamp, "clamps are TKG only (variant=TKG)") end
  if k.quant_clipping_bound > 0 and not (cte and q == "ROW") then
    fail("quant_clipping_bound", "only CTE ROW quantizes h per row")
  end
end

-- Options that need another one: a gate to clamp or bias, LAYER_NORM for beta, the add to store.
local function check_options(k, fail)
  if k.skip_gate_proj then
    local clamp = clamp_set(k, "gate")
    if clamp then fail(clamp, "skip_gate_proj has no gate projection to clamp") end
    if k.gate_bias then fail("gate_bias", "skip_gate_proj has no gate projection") end
  end
  if k.layer_norm_bias and k.normalization_type ~= "LAYER_NORM" then
    fail("layer_norm_bias", "beta needs normalization_type=LAYER_NORM")
  end
  if k.store_fused_add_result and not k.fused_residual_add then
    fail("store_fused_add_result", "needs fused_residual_add=true")
  end
end

-- CTE STATIC / ROW / STATIC_MX read fp8 rows already normalized and quantized (rmsnorm_quant).
local function check_fp8_input(k, fail)
  local why = format("CTE %s reads fp8 input, already normalized and quantized",
                     k.quantization_type)
  if k.fused_residual_add then fail("fused_residual_add", why) end
  if k.normalization_type ~= "NO_NORM" then fail("normalization_type", why .. ": use NO_NORM") end
  if k.down_bias then fail("down_bias", "CTE has no down bias with quantization") end
  local limit = ctypes.FP8[k.weight_dtype].max
  if k.quant_max > limit then
    fail("quant_max", format("%s exceeds the largest finite %s (%d)", f32.shortest(k.quant_max),
                             k.weight_dtype, limit))
  end
end

-- MX sizes and layouts; the STATIC_MX swizzles.
local function check_layouts(k, fail)
  local mx = k.quantization_type == "MX"
  if mx then
    if k.fused_residual_add then fail("fused_residual_add", "MX has no fused add") end
    if k.H % 512 ~= 0 then fail("H", format("MX needs H %% 512 == 0, got %d", k.H)) end
    if not (k.I % 512 == 0 or (k.I < 512 and k.I % 32 == 0)) then
      fail("I", format("MX needs I %% 512 == 0, or I < 512 and I %% 32 == 0; got %d", k.I))
    end
    if k.weight_layout ~= "swizzled" then
      fail("weight_layout", "MX weights come in upstream's MX layouts (swizzled)")
    end
  elseif k.is_input_swizzled then
    fail("is_input_swizzled", "the MX tensor layouts need quantization_type=MX")
  elseif k.weight_layout == "swizzled" then
    if k.quantization_type ~= "STATIC_MX" then
      fail("weight_layout", "swizzled weights are STATIC_MX or MX only")
    end
    if k.H % 512 ~= 0 or k.I % 512 ~= 0 then
      fail("weight_layout", format("the STATIC_MX swizzles need H and I multiples of 512, "
                                   .. "got H %d, I %d", k.H, k.I))
    end
  end
end

function F.check(k, fail)
  if k.H % 128 ~= 0 then fail("H", format("%d is not a multiple of 128", k.H)) end
  check_variant(k, fail)
  check_options(k, fail)
  if k.variant == "CTE" and fp8_quant(k.quantization_type) then check_fp8_input(k, fail) end
  check_layouts(k, fail)
  canonicalize(k)
end

---------------------------------------------------------------------------------------------
-- Arguments, cost, template parameters
---------------------------------------------------------------------------------------------

local function weight_layouts(k)
  if k.quantization_type == "MX" then return "mlp_mx_gate_up", "mlp_mx_down" end
  if k.weight_layout == "swizzled" then return "mlp_smx_gate_up", "mlp_smx_down" end
  return "kn", "kn"
end

-- MX's down-projection geometry: P rows of x4 words per 512-row tile of I, T5 tiles.
local function mx_geometry(I)
  if I >= 512 then return 128, I // 512 end
  return I // 4, 1
end

-- Tensors in signature order (kgen/kernels.h's kg_mlp_fn is made from them).
function F.args(k)
  local q, cte = k.quantization_type, k.variant == "CTE"
  local xq = cte and fp8_quant(q)
  local gated, mx = not k.skip_gate_proj, q == "MX"
  local lgu, ld = weight_layouts(k)
  local wmx = { mx = mx }
  local static, row = q == "STATIC" or q == "STATIC_MX", q == "ROW"
  local norm = k.normalization_type
  local in_dt, in_cols = k.dtype, k.H
  if xq then in_dt = row and k.weight_dtype .. "_rowscaled" or k.weight_dtype end
  if xq and row then in_cols = k.H + 4 end
  local ibias = { k.I }
  if mx and k.is_input_swizzled then
    local P, T5 = mx_geometry(k.I)
    ibias = { P, T5, 4 }
  end
  local function scale(n) return static and { 1 } or { n } end
  return {
    { name = "out", dir = "out", dtype = k.out_dtype, shape = { "...T", k.H } },
    { name = "add_out", dir = "out", dtype = k.out_dtype, shape = { "...T", k.H },
      used = k.store_fused_add_result },
    { name = "hidden", dir = "in", dtype = in_dt, shape = { "...T", in_cols } },
    { name = "add", dir = "in", dtype = k.dtype, shape = { "...T", k.H },
      used = k.fused_residual_add },
    { name = "gate_w", dir = "in", dtype = k.weight_dtype, shape = { k.H, k.I },
      weight = { layout = lgu, mx = mx }, used = gated },
    { name = "up_w", dir = "in", dtype = k.weight_dtype, shape = { k.H, k.I },
      weight = { layout = lgu, mx = mx } },
    { name = "down_w", dir = "in", dtype = k.weight_dtype, shape = { k.I, k.H },
      weight = { layout = ld, mx = mx } },
    { name = "gate_scale", dir = "in", dtype = "f32", shape = scale(k.I), scalar = static,
      used = gated and (static or row), init = "scale" },
    { name = "up_scale", dir = "in", dtype = "f32", shape = scale(k.I), scalar = static,
      used = static or row, init = "scale" },
    { name = "down_scale", dir = "in", dtype = "f32", shape = scale(k.H), scalar = static,
      used = static or row, init = "scale" },
    { name = "gate_up_in_scale", dir = "in", dtype = "f32", shape = { 1 }, scalar = true,
      used = cte and static, init = "scale" },
    { name = "down_in_scale", dir = "in", dtype = "f32", shape = { 1 }, scalar = true,
      used = cte and static, init = "scale" },
    { name = "gamma", dir = "in", dtype = k.dtype, shape = { k.H },
      used = norm == "RMS_NORM" or norm == "LAYER_NORM" },
    { name = "beta", dir = "in", dtype = k.dtype, shape = { k.H }, used = k.layer_norm_bias },
    { name = "gate_bias", dir = "in", dtype = k.dtype, shape = ibias, used = k.gate_bias },
    { name = "up_bias", dir = "in", dtype = k.dtype, shape = ibias, used = k.up_bias },
    { name = "down_bias", dir = "in", dtype = k.dtype, shape = { k.H }, used = k.down_bias },
  }
end

-- Bytes of a [K, N] weight as stored, with its MX scales (one per kb rows of a column).
local function weight_bytes(k, K, N, kb)
  local b = ctypes.wt_bytes(k.weight_dtype, K * N)
  if k.quantization_type == "MX" then b = b + (K // kb) * N end
  return b
end

function F.cost(k, n)
  local T, H, I = n.T, k.H, k.I
  local gated = not k.skip_gate_proj
  local projs = gated and 2 or 1
  local in_b = ctypes.info(k.dtype).bytes
  local out_b = ctypes.info(k.out_dtype).bytes
  local xq = k.variant == "CTE" and fp8_quant(k.quantization_type)
  local x_read = xq and T * (H + (k.quantization_type == "ROW" and 4 or 0)) or T * H * in_b
  local w = projs * weight_bytes(k, H, I, 32) + weight_bytes(k, I, H, 8)
  return {
    flops = T * (2 * H * I * (projs + 1) + I * (gated and 12 or 10) + H * 6),
    read = x_read + (k.fused_residual_add and T * H * in_b or 0) + w,
    written = T * H * out_b * (k.store_fused_add_result and 2 or 1),
  }
end

-- Tokens per block: a block's rows share one pass over each weight.
local MB = 64

-- The scratch of one call, in floats: parts with one row per token of a block (m rows, so a
-- short call takes little), then parts converted once per call.
local function scratch_layout(p)
  local xrow_doc = p.ADD and "the add row" or "the row in stored (swizzled) order"
  local rows = scratch.layout {
    { "A", p.H, format("A [m, %d]: x, then the down projection's result", p.H) },
    { "XR", p.XROW and p.H or 0, format("[m, %d]: %s", p.H, xrow_doc) },
    { "G", p.GATED and p.I or 0, format("G [m, %d]: g", p.I) },
    { "U", p.I, format("U [m, %d]: u, then h", p.I) },
    { "DX", (p.XQ and p.ROW) and 1 or 0, "[m]: each row's dequant scale of x" },
    { "DH", (p.XQ and p.ROW) and 1 or 0, "[m]: each row's dequant scale of h" },
  }
  local once = scratch.layout {
    { "GAMMA", p.GAMMA and p.H or 0, format("gamma [%d] in fp32", p.H) },
    { "BETA", p.BETA and p.H or 0, format("beta [%d] in fp32", p.H) },
    { "GB", p.GB and p.I or 0, format("gate bias [%d] in fp32, logical order", p.I) },
    { "UB", p.UB and p.I or 0, format("up bias [%d] in fp32, logical order", p.I) },
    { "DB", p.DB and p.H or 0, format("down bias [%d] in fp32", p.H) },
  }
  return rows, once
end

function F.params(k)
  local q, cte = k.quantization_type, k.variant == "CTE"
  local dt, odt = ctypes.info(k.dtype), ctypes.info(k.out_dtype)
  local P, T5 = mx_geometry(k.I)
  local function clamp(v, off) if v == off then return nil end return v end
  local xq = cte and fp8_quant(q)
  local norm, row = k.normalization_type, q == "ROW"
  local fp8 = ctypes.FP8[k.weight_dtype]
  local p = {
    H = k.H, I = k.I, MB = MB, TKG = not cte,
    DTYPE = k.dtype, CT = dt.c, TO_F32 = dt.to_f32,
    ODTYPE = k.out_dtype, OCT = odt.c, FROM_F32 = odt.from_f32,
    WDTYPE = k.weight_dtype, WT_FMT = ctypes.WT[k.weight_dtype].fmt,
    GATED = not k.skip_gate_proj, ACT = ACT_PRIM[k.activation_fn], ACT_NAME = k.activation_fn,
    NORM = norm, EPS = k.eps, BETA = k.layer_norm_bias,
    GAMMA = norm == "RMS_NORM" or norm == "LAYER_NORM",
    RMS = norm == "RMS_NORM" or norm == "RMS_NORM_SKIP_GAMMA", LAYER = norm == "LAYER_NORM",
    ADD = k.fused_residual_add, STORE = k.store_fused_add_result,
    GB = k.gate_bias, UB = k.up_bias, DB = k.down_bias,
    GLO = clamp(k.gate_clamp_lower_limit, -FLT_MAX), GHI = clamp(k.gate_clamp_upper_limit, FLT_MAX),
    ULO = clamp(k.up_clamp_lower_limit, -FLT_MAX), UHI = clamp(k.up_clamp_upper_limit, FLT_MAX),
    QUANT = q, XQ = xq, MX = q == "MX",
    STATIC = q == "STATIC" or q == "STATIC_MX", ROW = row,
    FP8 = k.weight_dtype, QUANT_MAX = k.quant_max,
    FP8_ROUND = fp8 and fp8.round, FP8_TO_F32 = fp8 and fp8.to_f32,
    CLIP = k.quant_clipping_bound > 0 and k.quant_clipping_bound or nil,
    SWZ = k.is_input_swizzled,
    P = P, T5 = T5,
  }
  -- a second fp32 row of H per token: the residual being added, or the row in stored order
  p.XROW = p.ADD or p.SWZ
  -- CTE fp8 input: codes, ROW's with the row's fp32 dequant scale in 4 more bytes
  p.IN_COLS = (xq and row) and k.H + 4 or k.H
  p.IN_CT = xq and "kg_u8" or dt.c
  -- to_f32 widens the input rows, or (fp8 input) only the per-call tensors
  p.NEED_TO_F32 = not xq or p.GAMMA or p.BETA or p.GB or p.UB or p.DB
  p.SCRATCH_ROWS, p.SCRATCH = scratch_layout(p)
  return p
end

return F
