-- kgen.ctypes: how each activation dtype looks in generated C: its storage type, its size, and
-- the primitives that widen it to fp32 rows and narrow fp32 rows back.

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

-- fp8 formats: the quantizing primitive and the largest finite value.
M.FP8 = {
  e4m3   = { quant = "kgp_quant_e4m3_f32", max = 240 },
  e4m3fn = { quant = "kgp_quant_e4m3fn_f32", max = 448 },
}

return M
