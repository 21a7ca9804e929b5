-- lm_head: a causal LM's last step: the final RMSNorm of each token's hidden state, then the
-- projection onto the vocabulary, logits in fp32 (kgp_matmul_f32). Not an upstream kernel: the
-- model library (model/) calls it, and a plain-loop reference (tests/ref/lm_head_ref.c)
-- defines it.

local ctypes = require "ctypes"
local scratch = require "scratch"
local format = string.format

local F = {
  family = "lm_head",
  template = "lm_head.c.in",
  doc = "final RMSNorm of hidden [T,H], then logits [T,V] = x @ W [H,V] in fp32",
  calls = { "T" },
  tokens = { T = "seq" },
  signature_doc = [[
logits [T, V] fp32; normed [T, H] (the normed rows, store_normed); hidden [T, H];
weight W [H, V]; w_scale [V] fp32 (fp8 weights: per-column dequant scales); gamma [H].]],
}

F.keys = {
  { key = "dtype", kind = "enum", values = ctypes.ACT, from = "dtype", default = "bf16",
    name = "dtype", doc = "dtype of hidden, normed and gamma" },
  { key = "weight_dtype", kind = "enum", values = { "bf16", "fp16", "f32", "e4m3", "e4m3fn" },
    default = "bf16", name = "dtype",
    doc = "weight format (fp8: per-column scales w_scale, as ROW projections)" },
  { key = "H", kind = "int", min = 1, from = "model.hidden", default = 4096, name = "h",
    doc = "hidden size" },
  { key = "V", kind = "int", min = 1, from = "model.vocab", default = 128256, name = "v",
    doc = "vocabulary size (logit columns)" },
  { key = "norm", kind = "bool", default = true, name = "rms",
    doc = "RMS-normalise each row with gamma before the projection" },
  { key = "eps", kind = "float", min = 0, from = "model.rms_eps", default = 1e-6, name = "eps",
    doc = "added to mean(x^2) under the square root" },
  { key = "store_normed", kind = "bool", default = false, name = "stnorm",
    doc = "also write the normed rows to normed (a model's last hidden state)" },
  { key = "T", kind = "int", min = 1, from = "limits.max_tokens", default = 128,
    doc = "nominal tokens per call, for the cost block (a call may pass any count)" },
}

function F.check(k, fail)
  if k.store_normed and not k.norm then
    fail("store_normed", "needs norm = true (there is nothing else to store)")
  end
end

local function fp8(k) return ctypes.FP8[k.weight_dtype] ~= nil end

-- Tensors in signature order (outputs first).
function F.args(k)
  return {
    { name = "logits", dir = "out", dtype = "f32", shape = { "...T", k.V } },
    { name = "normed", dir = "out", dtype = k.dtype, shape = { "...T", k.H },
      used = k.store_normed },
    { name = "hidden", dir = "in", dtype = k.dtype, shape = { "...T", k.H } },
    { name = "weight", dir = "in", dtype = k.weight_dtype, shape = { k.H, k.V },
      weight = { layout = "kn" } },
    { name = "w_scale", dir = "in", dtype = "f32", shape = { k.V }, used = fp8(k),
      init = "scale" },
    { name = "gamma", dir = "in", dtype = k.dtype, shape = { k.H }, used = k.norm },
  }
end

function F.cost(k, n)
  local T, H, V = n.T, k.H, k.V
  local b = ctypes.info(k.dtype).bytes
  return {
    flops = T * (2 * H * V + (k.norm and 4 * H or 0) + (fp8(k) and V or 0)),
    read = T * H * b + ctypes.wt_bytes(k.weight_dtype, H * V) + (k.norm and H * b or 0)
           + (fp8(k) and 4 * V or 0),
    written = T * V * 4 + (k.store_normed and T * H * b or 0),
  }
end

-- Tokens per block: a block's rows share one pass over the weight.
local MB = 64

function F.params(k)
  local dt = ctypes.info(k.dtype)
  local p = {
    H = k.H, V = k.V, MB = MB, DTYPE = k.dtype, CT = dt.c, TO_F32 = dt.to_f32,
    FROM_F32 = dt.from_f32, NORM = k.norm, EPS = k.eps, STORE = k.store_normed,
    FP8 = fp8(k), WDTYPE = k.weight_dtype, WT_FMT = ctypes.WT[k.weight_dtype].fmt,
  }
  p.SCRATCH_ROWS = scratch.layout {
    { "A", k.H, format("A [m, %d]: the block's rows in fp32, normed", k.H) },
  }
  p.SCRATCH = scratch.layout {
    { "GAMMA", k.norm and k.H or 0, format("gamma [%d] in fp32", k.H) },
  }
  return p
end

return F
