-- kgen.ctypes: the formats' one vocabulary, shared by every family: how each activation dtype
-- looks in generated C (storage type, size, the primitives that widen it to fp32 rows and
-- narrow fp32 rows back), the weight formats a kg_wt holds, and the fp8 formats' primitives
-- and largest finite values.

local M = {}

M.ACT = { "bf16", "fp16", "f32" }

local INFO = {
  bf16 = { c = "kg_u16", bytes = 2, to_f32 = "kgp_cvt_bf16_f32", from_f32 = "kgp_cvt_f32_bf16",
           round = "kgp_round_bf16_f32" },
  fp16 = { c = "kg_u16", bytes = 2, to_f32 = "kgp_cvt_f16_f32", from_f32 = "kgp_cvt_f32_f16",
           round = "kgp_round_f16_f32" },
  f32  = { c = "float", bytes = 4 },
}

function M.info(dt) return INFO[dt] end

-- Whether dt is an activation (float) dtype rather than an fp8 / fp4 code.
function M.is_float(dt) return INFO[dt] ~= nil end

-- Weight element formats (kgen/abi.h enum kg_wt_fmt): the C constant and bits per element.
M.WT = {
  f32 = { fmt = "KG_WT_F32", bits = 32 }, bf16 = { fmt = "KG_WT_BF16", bits = 16 },
  fp16 = { fmt = "KG_WT_F16", bits = 16 }, e4m3 = { fmt = "KG_WT_E4M3", bits = 8 },
  e4m3fn = { fmt = "KG_WT_E4M3FN", bits = 8 }, e5m2 = { fmt = "KG_WT_E5M2", bits = 8 },
  e2m1 = { fmt = "KG_WT_E2M1", bits = 4 },
}

-- Bytes of n elements of weight format dt (fp4: two to a byte).
function M.wt_bytes(dt, n) return n * M.WT[dt].bits // 8 end

-- fp8 formats: the primitives that quantize fp32 to codes (quant), quantize-dequantize in fp32
-- (round) and decode codes (to_f32), and the largest finite value.
M.FP8 = {
  e4m3   = { quant = "kgp_quant_e4m3_f32", round = "kgp_round_e4m3_f32",
             to_f32 = "kgp_cvt_e4m3_f32", max = 240 },
  e4m3fn = { quant = "kgp_quant_e4m3fn_f32", round = "kgp_round_e4m3fn_f32",
             to_f32 = "kgp_cvt_e4m3fn_f32", max = 448 },
}

-- The default activation quantization range for weights of format dt: the fp8 format's largest
-- finite value, e4m3's (240, the upstream tests' range) for any other format.
function M.quant_max(dt) return (M.FP8[dt] or M.FP8.e4m3).max end

return M
