-- output_projection: the attention output projection out = concat_heads(attention) @ W (+ bias),
-- feature n*D + d, with the CTE (prefill) and TKG (decode) variants' quantizations and layouts.
-- Semantics: shared/reference/output_projection.md.
--
-- Reference constraints that are hardware limits, not semantics, are not checked here: B*S <=
-- 131072, H <= 20705, N <= 17 and D <= 128 (SBUF tiling), H % LNC == 0 outside TRANSPOSE_OUT
-- (LNC shards H over cores), STATIC's "N or D even" (the double-row matmul), N*D % 128 == 0
-- for STATIC_MX / MX (128-partition tiles: what the math needs is N*D % 4 for x4 words and
-- N*D % 32 for MX blocks, checked below), TKG's N*H <= 163840 / 81920 and B*S <= 128.

local ctypes = require "ctypes"
local scratch = require "scratch"

local format = string.format

local F = {
  family = "output_projection",
  template = "output_projection.c.in",
  doc = "attention [heads, head_dim per token] @ W [N*D, H] (+ bias) -> out [B, S, H]",
  calls = { "B", "S" },
  tokens = { B = "batch", S = "seq" },
  signature_doc = [[
out [B, S, H] (TKG: [B*S, H], or TRANSPOSE_OUT); attention in the
variant's layout (CTE [B, N, D, S], TKG [D, B, N, S]); weight W [N*D, H]; w_scale, in_scale
(STATIC element 0; ROW per column; MX pre-quantized input: the uint8 activation scales
[B, N*D/32, S]); bias [H]. Variant CTE or TKG.]],
}

---------------------------------------------------------------------------------------------
-- What each variant and quantization accepts
---------------------------------------------------------------------------------------------

local function set(list)
  local t = {}
  for _, v in ipairs(list) do t[v] = true end
  return t
end

local VARIANT_QUANTS = {
  CTE = { set { "NONE", "STATIC", "STATIC_MX", "MX" }, "NONE, STATIC, STATIC_MX, MX" },
  TKG = { set { "NONE", "STATIC", "ROW" }, "NONE, STATIC, ROW" },
}

-- Weight element formats per quantization (the reference's, plus any float format for NONE,
-- which the GEMM reads as well as the activation dtype).
local QUANT_WEIGHTS = {
  NONE = { set { "bf16", "fp16", "f32" }, "bf16, fp16 or f32" },
  STATIC = { set { "e4m3", "e4m3fn" }, "fp8 e4m3 or e4m3fn" },
  ROW = { set { "e4m3", "e4m3fn" }, "fp8 e4m3 or e4m3fn" },
  STATIC_MX = { set { "e4m3fn" }, "e4m3fn (STATIC_MX needs e4m3fn weights)" },
  MX = { set { "e2m1", "e4m3fn" }, "fp4 e2m1 or fp8 e4m3fn (MX weights)" },
}

-- Quantizations that quantize activations per tensor with a clamp (quant_max applies).
local CLAMPED = set { "STATIC", "STATIC_MX" }

---------------------------------------------------------------------------------------------
-- Keys
---------------------------------------------------------------------------------------------

F.keys = {
  { key = "variant", kind = "enum", values = { "CTE", "TKG" }, default = "CTE",
    name = { CTE = "cte", TKG = "tkg" },
    doc = "CTE (prefill) or TKG (decode): which options are accepted, default layouts" },
  { key = "quantization_type", kind = "enum",
    values = { "NONE", "STATIC", "ROW", "STATIC_MX", "MX" }, default = "NONE",
    name = { NONE = "none", STATIC = "static", ROW = "row", STATIC_MX = "smx", MX = "mx" },
    doc = "CTE: NONE, STATIC, STATIC_MX, MX; TKG: NONE, STATIC, ROW" },
  { key = "dtype", kind = "enum", values = ctypes.ACT, from = "dtype", default = "bf16",
    name = "dtype", doc = "dtype of attention (unless MX pre-quantized) and bias" },
  { key = "weight_dtype", kind = "enum",
    values = { "bf16", "fp16", "f32", "e4m3", "e4m3fn", "e2m1" }, name = "dtype",
    default = function(k)
      return ({ NONE = k.dtype, STATIC = "e4m3", ROW = "e4m3", STATIC_MX = "e4m3fn",
                MX = "e2m1" })[k.quantization_type]
    end,
    doc = "stored weight format, read as is by the GEMM (STATIC/ROW fp8; MX e2m1 or e4m3fn)" },
  { key = "out_dtype", kind = "enum", values = ctypes.ACT, name = "dtype",
    default = function(k) return k.quantization_type == "MX" and "bf16" or k.dtype end,
    doc = "output dtype (CTE; TKG writes dtype, MX writes bf16)" },
  { key = "N", kind = "int", min = 1, from = "model.q_heads", default = 32, name = "n",
    doc = "attention heads (per rank)" },
  { key = "D", kind = "int", min = 1, from = "model.head_dim", default = 128, name = "d",
    doc = "head dimension" },
  { key = "H", kind = "int", min = 1, from = "model.hidden", default = 4096, name = "h",
    doc = "hidden size (output columns)" },
  { key = "bias", kind = "bool", default = false, name = "bias", doc = "add bias [H]" },
  { key = "attn_layout", kind = "enum", values = { "BNDS", "DBNS", "BSND" },
    name = { BNDS = "bnds", DBNS = "dbns", BSND = "bsnd" },
    default = function(k) return k.variant == "TKG" and "DBNS" or "BNDS" end,
    omit_default = true,
    doc = "attention axes: BNDS (CTE upstream), DBNS (TKG upstream), BSND (logical)" },
  { key = "mx_prequant", kind = "bool", default = false, name = "preq",
    doc = "MX: attention arrives quantized (e4m3fn x4 words + E8M0 scales in in_scale)" },
  { key = "weight_layout", kind = "enum", values = { "kn", "x4" },
    default = function(k)
      return (k.quantization_type == "MX" or k.quantization_type == "STATIC_MX") and "x4" or "kn"
    end,
    doc = "stored weight layout for the packer: kn [N*D, H]; x4 [N*D/4, H] words (MX and "
          .. "STATIC_MX's pre-swizzle); the kernel reads the packed handle, so not named" },
  { key = "transpose_out", kind = "bool", default = false, name = "tout",
    doc = "TKG TRANSPOSE_OUT: out [128, lnc, H/(128*lnc), B*S]" },
  { key = "lnc", kind = "int", min = 1, max = 2, default = 1, name = "lnc",
    omit_default = true,
    doc = "logical core count the TRANSPOSE_OUT layout is cut for" },
  { key = "quant_max", kind = "float", min = 1, name = "qmax",
    default = function(k) return ctypes.quant_max(k.weight_dtype) end,
    doc = "STATIC / STATIC_MX activation clamp +-quant_max (default: the weight format's max)" },
  { key = "B", kind = "int", min = 1, from = "limits.max_batch", default = 1,
    doc = "nominal batch per call, for the cost block" },
  { key = "S", kind = "int", min = 1, from = "limits.max_tokens", default = 128,
    doc = "nominal tokens per sequence per call, for the cost block" },
}

---------------------------------------------------------------------------------------------
-- Combinations
---------------------------------------------------------------------------------------------

function F.check(k, fail)
  local q, K = k.quantization_type, k.N * k.D
  local vq = VARIANT_QUANTS[k.variant]
  if not vq[1][q] then
    fail("quantization_type", format("%s is not a %s quantization (%s: %s)", q, k.variant,
                                     k.variant, vq[2]))
  end
  local qw = QUANT_WEIGHTS[q]
  if not qw[1][k.weight_dtype] then
    fail("weight_dtype", format("%s weights must be %s, not %s", q, qw[2], k.weight_dtype))
  end
  if k.out_dtype ~= k.dtype and k.variant == "TKG" then
    fail("out_dtype", format("TKG writes the input dtype (%s), not %s", k.dtype, k.out_dtype))
  end
  if q == "MX" and k.out_dtype ~= "bf16" then
    fail("out_dtype", format("MX writes bf16, not %s", k.out_dtype))
  end
  if k.mx_prequant and q ~= "MX" then
    fail("mx_prequant", "pre-quantized input is an MX option (quantization_type=MX)")
  end
  if q == "MX" and K % 32 ~= 0 then
    fail("D", format("MX needs N*D %% 32 == 0 (whole blocks of 32 features), N*D = %d", K))
  end
  if k.mx_prequant and k.attn_layout == "DBNS" then
    fail("attn_layout", "pre-quantized MX attention packs features in words: BNDS "
                        .. "([B, 1, N*D/4, S]) or BSND ([B, S, N*D/4]), not DBNS")
  end
  if k.weight_layout == "x4" then
    if q ~= "MX" and q ~= "STATIC_MX" then
      fail("weight_layout", format("x4 is the MX / STATIC_MX stored layout, not %s's", q))
    end
    if K % 4 ~= 0 then
      fail("weight_layout", format("x4 words need N*D %% 4 == 0, N*D = %d", K))
    end
  end
  if k.transpose_out and k.variant ~= "TKG" then
    fail("transpose_out", "TRANSPOSE_OUT is a TKG output layout")
  end
  if k.lnc ~= 1 and not k.transpose_out then
    fail("lnc", "the core count only shapes the TRANSPOSE_OUT layout (transpose_out=true)")
  end
  if k.transpose_out and k.H % (128 * k.lnc) ~= 0 then
    fail("H", format("TRANSPOSE_OUT needs H %% (128*lnc) == 0, H = %d, lnc = %d", k.H, k.lnc))
  end
  local fmax = ctypes.quant_max(k.weight_dtype)
  if CLAMPED[q] and k.quant_max > fmax then
    fail("quant_max", format("%s exceeds the largest finite %s (%d)", format("%g", k.quant_max),
                             k.weight_dtype, fmax))
  end
  if not CLAMPED[q] and k.quant_max ~= fmax then
    fail("quant_max", format("only STATIC and STATIC_MX clamp activations, not %s", q))
  end
end

---------------------------------------------------------------------------------------------
-- Arguments (kgen/kernels.h kg_output_projection_fn) and cost
---------------------------------------------------------------------------------------------

local function attention_shape(k, K)
  if k.mx_prequant then -- x4 words as their 4 bytes (element q of a word = byte q)
    return k.attn_layout == "BNDS" and { "B", 1, K // 4, "S", 4 } or { "B", "S", K }
  end
  return ({ BNDS = { "B", k.N, k.D, "S" }, DBNS = { k.D, "B", k.N, "S" },
            BSND = { "B", "S", k.N, k.D } })[k.attn_layout]
end

function F.args(k)
  local q, K = k.quantization_type, k.N * k.D
  local static = CLAMPED[q] ~= nil
  local out = k.transpose_out and { 128, k.lnc, k.H // (128 * k.lnc), "B", "S" }
              or { "B", "S", k.H }
  local in_scale = { name = "in_scale", dir = "in", dtype = "f32", shape = { 1 }, scalar = true,
                     init = "scale", used = static }
  if k.mx_prequant then
    in_scale = { name = "in_scale", dir = "in", dtype = "e8m0", init = "scale",
                 shape = k.attn_layout == "BNDS" and { "B", K // 32, "S" }
                         or { "B", "S", K // 32 } }
  end
  return {
    { name = "out", dir = "out", dtype = k.out_dtype, shape = out },
    { name = "attention", dir = "in", dtype = k.mx_prequant and "e4m3fn" or k.dtype,
      shape = attention_shape(k, K) },
    { name = "weight", dir = "in", dtype = k.weight_dtype, shape = { K, k.H },
      weight = { layout = k.weight_layout, mx = q == "MX" } },
    { name = "w_scale", dir = "in", dtype = "f32", init = "scale",
      shape = q == "ROW" and { k.H } or { 1 }, scalar = static, first_row = q == "ROW",
      used = static or q == "ROW" },
    in_scale,
    { name = "bias", dir = "in", dtype = k.dtype, shape = { k.H }, used = k.bias },
  }
end

function F.cost(k, n)
  local q, K, H, T = k.quantization_type, k.N * k.D, k.H, n.B * n.S
  local act = k.mx_prequant and (K + K // 32) or K * ctypes.info(k.dtype).bytes
  local wbytes = ctypes.wt_bytes(k.weight_dtype, K * H) + (q == "MX" and K // 32 * H or 0)
  local epi = (q == "NONE" and 0 or 1) + (k.bias and 1 or 0)
  return {
    flops = 2 * T * K * H + T * H * epi,
    read = T * act + wbytes + (k.bias and H * ctypes.info(k.dtype).bytes or 0)
           + (q == "ROW" and H * 4 or 0) + (CLAMPED[q] and 8 or 0),
    written = T * H * ctypes.info(k.out_dtype).bytes,
  }
end

---------------------------------------------------------------------------------------------
-- Template parameters
---------------------------------------------------------------------------------------------

-- Rows of A per block: the A and C blocks take at most about 4 MiB of scratch, and one block
-- is many rows so each weight panel is streamed once for as many tokens as possible.
local function rows_per_block(K, H)
  return math.max(1, math.min(256, (1 << 20) // (K + H)))
end

-- The scratch of one call, in floats, each part on a 64-byte boundary (16 floats).
local function scratch_layout(p)
  local K, H, MB = p.K, p.H, p.MB
  return scratch.layout({
    { "A", p.A_DIRECT and 0 or MB * K, format("A [%d, %d]: a block's rows of attention", MB, K) },
    { "C", p.C_DIRECT and 0 or MB * H, format("C [%d, %d]: A @ W", MB, H) },
    { "BIAS", p.BIAS and H or 0, format("bias [%d] in fp32", H) },
    { "RUN", p.RUNS and MB or 0, format("[%d]: one (b, n, d)'s run of tokens in fp32", MB) },
    { "OROW", (p.TOUT and not p.F32_OUT) and H or 0,
      format("[%d] %s: a row of y before TRANSPOSE_OUT's scatter", H, p.ODTYPE) },
    { "CODES", (p.PREQ and p.LAYOUT == "BNDS") and K // 4 or 0,
      format("[%d] bytes: one token's fp8 codes, gathered from the words", K) },
  }, 16)
end

function F.params(k)
  local q, K = k.quantization_type, k.N * k.D
  local at, ot = ctypes.info(k.dtype), ctypes.info(k.out_dtype)
  local MB = rows_per_block(K, k.H)
  local tout = k.transpose_out
  local fp8 = ctypes.FP8[k.weight_dtype]
  local p = {
    VARIANT = k.variant, QUANT = q, N = k.N, D = k.D, K = K, H = k.H,
    DTYPE = k.dtype, CT = at.c, TO_F32 = at.to_f32, F32_IN = k.dtype == "f32",
    WDTYPE = k.weight_dtype, WT_FMT = ctypes.WT[k.weight_dtype].fmt,
    ODTYPE = k.out_dtype, OCT = ot.c, FROM_F32 = ot.from_f32, F32_OUT = k.out_dtype == "f32",
    LAYOUT = k.attn_layout, PREQ = k.mx_prequant, BIAS = k.bias,
    STATIC = CLAMPED[q] ~= nil, ROW = q == "ROW", MX = q == "MX",
    FP8_ROUND = fp8 and fp8.round, QUANT_MAX = k.quant_max, WLAYOUT = k.weight_layout,
    TOUT = tout, LNC = k.lnc, R = tout and k.H // (128 * k.lnc) or 0,
    MB = MB,
    -- the most tokens per call for which T * ROW_MAX, the largest index into A, C and the
    -- tensors, stays inside a long (with a factor 2 to spare)
    ROW_MAX = math.max(K, k.H), TMAX = (1 << 62) // math.max(K, k.H),
  }
  -- A and C can live in the caller's tensors: A when fp32 attention rows are A's rows as they
  -- are (BSND, no activation quantization), C when the output is fp32 [T, H].
  p.A_DIRECT = p.F32_IN and p.LAYOUT == "BSND" and not p.PREQ and not p.STATIC and not p.MX
  p.C_DIRECT = p.F32_OUT and not tout
  -- a run of up to MB tokens of one (b, n, d), widened to fp32, for the strided layouts
  p.RUNS = not p.PREQ and not p.F32_IN and p.LAYOUT ~= "BSND"
  p.SCRATCH = scratch_layout(p)
  return p
end

return F
