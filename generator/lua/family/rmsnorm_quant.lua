-- rmsnorm_quant: RMS-normalise each row (or not), then quantise it to fp8; ROW packs each
-- row's fp32 dequant scale after it. Semantics: shared/reference/rmsnorm_quant.md.

local ctypes = require "ctypes"

local F = {
  family = "rmsnorm_quant",
  template = "rmsnorm_quant.c.in",
  doc = "RMSNorm (or none) then fp8 quantization of each row of hidden [..., H]",
  calls = { "rows" },
  tokens = { rows = "seq" },
  signature_doc = [[
out [rows, H+4] (ROW: fp8 values then the fp32 dequant scale's 4 bytes) or
[rows, H] (STATIC) fp8; hidden [rows, H]; gamma [H] (RMS_NORM; else may be NULL);
input_dequant_scale: fp32, element 0 read (STATIC; else may be NULL).]],
}

F.keys = {
  { key = "dtype", kind = "enum", values = ctypes.ACT, from = "dtype", default = "bf16",
    name = "dtype", doc = "dtype of hidden and gamma" },
  { key = "fp8", kind = "enum", values = { "e4m3", "e4m3fn" }, from = "fp8.format",
    default = "e4m3", name = "dtype", doc = "fp8 format of the output" },
  { key = "H", kind = "int", min = 1, from = "model.hidden", default = 4096, name = "h",
    doc = "hidden size (last axis)" },
  { key = "norm_type", kind = "enum", values = { "RMS_NORM", "NO_NORM" }, default = "RMS_NORM",
    name = { RMS_NORM = "rms", NO_NORM = "nonorm" },
    doc = "normalisation before quantization (upstream's name)" },
  { key = "quantization_type", kind = "enum", values = { "ROW", "STATIC" }, default = "ROW",
    name = { ROW = "row", STATIC = "static" },
    doc = "ROW: per-row scale packed after the row; STATIC: one given dequant scale" },
  { key = "lower_bound", kind = "float", min = 0, default = 0, name = "lb",
    doc = "ROW only: clip bound c on |y|, active when c > 1e-6 (upstream's name)" },
  { key = "eps", kind = "float", min = 0, from = "model.rms_eps", default = 1e-6, name = "eps",
    doc = "added to mean(x^2) under the square root" },
  { key = "quant_max", kind = "float", min = 1, from = "fp8.max", name = "qmax",
    default = function(k) return ctypes.FP8[k.fp8].max end,
    doc = "quantization range +-quant_max (at most the format's largest finite value)" },
  { key = "rows", kind = "int", min = 1, from = "limits.max_tokens", default = 128,
    doc = "nominal rows per call, for the cost block (a call may pass any count)" },
}

function F.check(k, fail)
  local limit = ctypes.FP8[k.fp8].max
  if k.quant_max > limit then
    fail("quant_max", string.format("%s exceeds the largest finite %s (%d)",
                                    string.format("%g", k.quant_max), k.fp8, limit))
  end
end

-- Tensors in signature order (outputs first). "...rows": any leading axes, flattened to rows.
function F.args(k)
  local row = k.quantization_type == "ROW"
  return {
    { name = "out", dir = "out", dtype = row and (k.fp8 .. "_rowscaled") or k.fp8,
      shape = { "...rows", row and k.H + 4 or k.H } },
    { name = "hidden", dir = "in", dtype = k.dtype, shape = { "...rows", k.H } },
    { name = "gamma", dir = "in", dtype = k.dtype, shape = { k.H },
      used = k.norm_type == "RMS_NORM" },
    { name = "input_dequant_scale", dir = "in", dtype = "f32", shape = { 1 }, scalar = true,
      used = not row, init = "scale" },
  }
end

function F.cost(k, n)
  local bytes = ctypes.info(k.dtype).bytes
  local per_elem = (k.norm_type == "RMS_NORM" and 4 or 0) + 3
  local rms = k.norm_type == "RMS_NORM"
  return {
    flops = n.rows * k.H * per_elem,
    read = n.rows * k.H * bytes + (rms and k.H * bytes or 0)
           + (k.quantization_type == "STATIC" and 4 or 0),
    written = n.rows * (k.H + (k.quantization_type == "ROW" and 4 or 0)),
  }
end

function F.params(k)
  local dt = ctypes.info(k.dtype)
  return {
    H = k.H, DTYPE = k.dtype, CT = dt.c, TO_F32 = dt.to_f32,
    RMS = k.norm_type == "RMS_NORM", ROW = k.quantization_type == "ROW",
    -- ROW's clip bound on |y| (upstream's lower_bound), or nil: upstream clips above 1e-6
    CLIP = (k.quantization_type == "ROW" and k.lower_bound > 1e-6) and k.lower_bound or nil,
    EPS = k.eps, FP8 = k.fp8, QUANT_MAX = k.quant_max, FP8_QUANT = ctypes.FP8[k.fp8].quant,
    OUT_COLS = k.quantization_type == "ROW" and k.H + 4 or k.H,
    -- rows per parallel task: about 32k elements, so a task outweighs its dispatch
    GRAIN = math.max(1, 32768 // k.H),
  }
end

return F
