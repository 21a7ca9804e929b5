-- depthwise_conv1d: per-channel 1-D cross-correlation (groups = C) with zero width padding
-- (asymmetric too) and any width stride, fp32 accumulation rounded once to the dtype.
-- Semantics: shared/reference/depthwise_conv1d.md; the 3-D logical form x [N, C, W],
-- f [C, S] -> y [N, C, Q] (upstream's singleton height axes carry no data).

local ctypes = require "ctypes"

local format = string.format

local F = {
  family = "depthwise_conv1d",
  template = "depthwise_conv1d.c.in",
  doc = "depthwise conv1d: output [N, C, Q] = img_ref [N, C, W] (*) filter_ref [C, S] per channel",
  calls = { "N" },
  -- N is the one per-call size (W, the sequence of a Mamba-style block, is a shape key), so it
  -- is the axis `--tokens` moves
  tokens = { N = "seq" },
  signature_doc = [[
output [N, C, Q], Q = (W + pad_l + pad_r - S) / stride + 1;
img_ref [N, C, W]; filter_ref [C, S]; all in dtype.]],
}

-- Stack floats of a task's window (the padded input span, its phases, the outputs): the
-- largest S and stride keep one output's window within it.
local BUDGET = 16384

F.keys = {
  { key = "dtype", kind = "enum", values = ctypes.ACT, from = "dtype", default = "bf16",
    name = "dtype", doc = "dtype of img_ref, filter_ref and output" },
  { key = "C", kind = "int", min = 1, from = "model.hidden", default = 4096, name = "c",
    doc = "channels" },
  { key = "W", kind = "int", min = 1, default = 4096, name = "w", doc = "input width" },
  { key = "S", kind = "int", min = 1, max = 4096, default = 4, name = "s",
    doc = "filter width (at most 4096)" },
  { key = "stride", kind = "int", min = 1, max = 4096, default = 1, name = "st",
    doc = "width stride (at most 4096)" },
  { key = "pad_l", kind = "int", min = 0, max = 4096, default = 0, name = "pl",
    doc = "zeros before the row" },
  { key = "pad_r", kind = "int", min = 0, max = 4096, default = 0, name = "pr",
    doc = "zeros after the row" },
  { key = "stride_h", kind = "int", min = 1, default = 1,
    doc = "height stride: must be 1 (refused otherwise)" },
  { key = "rhs_dilation", kind = "int", min = 1, default = 1,
    doc = "filter dilation: must be 1 (refused otherwise)" },
  { key = "lhs_dilation", kind = "int", min = 1, default = 1,
    doc = "input dilation: must be 1 (refused otherwise)" },
  { key = "feature_group_count", kind = "int", min = 1, default = function(k) return k.C end,
    doc = "must equal C (depthwise; refused otherwise)" },
  { key = "batch_group_count", kind = "int", min = 1, default = 1,
    doc = "must be 1 (refused otherwise)" },
  { key = "N", kind = "int", min = 1, default = 1,
    doc = "nominal batch per call, for the cost block (a call may pass any count)" },
}

function F.check(k, fail)
  for _, key in ipairs { "stride_h", "rhs_dilation", "lhs_dilation", "batch_group_count" } do
    if k[key] ~= 1 then fail(key, format("%d is not supported (must be 1)", k[key])) end
  end
  if k.feature_group_count ~= k.C then
    fail("feature_group_count", format("%d is not C = %d: only the depthwise grouping "
                                       .. "(one group a channel) is supported",
                                       k.feature_group_count, k.C))
  end
  if k.W + k.pad_l + k.pad_r < k.S then
    fail("S", format("filter width %d exceeds the padded width %d (no output)", k.S,
                     k.W + k.pad_l + k.pad_r))
  end
end

local function Q(k) return (k.W + k.pad_l + k.pad_r - k.S) // k.stride + 1 end

function F.args(k)
  return {
    { name = "output", dir = "out", dtype = k.dtype, shape = { "N", k.C, Q(k) } },
    { name = "img_ref", dir = "in", dtype = k.dtype, shape = { "N", k.C, k.W } },
    { name = "filter_ref", dir = "in", dtype = k.dtype, shape = { k.C, k.S } },
  }
end

function F.cost(k, n)
  local b = ctypes.info(k.dtype).bytes
  return { flops = 2 * n.N * k.C * Q(k) * k.S, read = (n.N * k.W + k.S) * k.C * b,
           written = n.N * k.C * Q(k) * b }
end

-- Window floats for a block of qb outputs: the padded span, its phases (stride > 1), the
-- outputs.
local function window(k, qb)
  local span = (qb - 1) * k.stride + k.S
  local ph = k.stride > 1 and k.stride * (qb + (k.S - 1) // k.stride) or 0
  return span, ph, span + ph + qb
end

function F.params(k)
  local dt = ctypes.info(k.dtype)
  local q = Q(k)
  -- the largest block of outputs whose window fits the budget
  local lo, hi = 1, q
  while lo < hi do
    local mid = (lo + hi + 1) // 2
    local _, _, tot = window(k, mid)
    if tot <= BUDGET then lo = mid else hi = mid - 1 end
  end
  local span, ph = window(k, lo)
  return {
    DTYPE = k.dtype, CT = dt.c, TO_F32 = dt.to_f32, FROM_F32 = dt.from_f32,
    F32 = k.dtype == "f32", C = k.C, W = k.W, S = k.S, STRIDE = k.stride, PL = k.pad_l,
    PR = k.pad_r, Q = q, QB = lo, SPAN = span, LDP = lo + (k.S - 1) // k.stride,
    PHASES = ph, BUDGET = BUDGET,
    -- bf16 at stride 1: one primitive call a row (kgp_dwconv_bf16), no stack window
    FUSED = k.dtype == "bf16" and k.stride == 1,
    -- rows (one channel of one batch) per task: about 256 KiB of input and output
    GRAIN = math.max(1, (256 * 1024) // ((k.W + q) * dt.bytes)),
  }
end

return F
