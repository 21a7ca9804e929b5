-- cross_entropy_bwd: the gradient of cross entropy over logits from the forward's saved lse:
-- grad = g * (softmax - one_hot(target)), g = 1/T ("mean") or 1 ("sum"), softmax recomputed as
-- exp(logits - lse), written in place over the logits (or into grad_logits). No extra buffer.
-- Semantics: shared/reference/cross_entropy.md.

local F = {
  family = "cross_entropy_bwd",
  template = "cross_entropy_bwd.c.in",
  doc = "cross entropy backward: d loss / d logits [T, V] from the saved lse, in place",
  calls = { "T" },
  tokens = { T = "seq" },
  signature_doc = [[
grad_logits [T, V] in dtype (unused when inplace: the gradient overwrites
logits); logits [T, V] in dtype (only read unless inplace); targets [T] int32, each in
[0, V) (one outside: KG_EARG before anything is written); lse [T] in lse_dtype.]],
}

local DTYPES = { "bf16", "f32" }

F.keys = {
  { key = "dtype", kind = "enum", values = DTYPES, from = "dtype", default = "bf16",
    name = "dtype", doc = "dtype of logits and the gradient, and of the exp, scale and subtraction" },
  { key = "lse_dtype", kind = "enum", values = DTYPES, name = "dtype",
    default = function(k) return k.dtype end, doc = "dtype of the saved lse (read as fp32)" },
  { key = "V", kind = "int", min = 1, max = 262144, from = "model.vocab", default = 128256,
    name = "v", doc = "vocabulary (at most 256K)" },
  { key = "reduction", kind = "enum", values = { "mean", "sum" }, default = "mean",
    name = { mean = "mean", sum = "sum" },
    doc = "the forward loss's reduction: mean (g = 1/T) or sum (g = 1)" },
  { key = "inplace", kind = "bool", default = true, name = "inplace",
    doc = "the gradient overwrites logits (true) or goes to grad_logits" },
  { key = "T", kind = "int", min = 1, from = "limits.max_tokens", default = 128,
    doc = "nominal positions per call, for the cost block (a call may pass any count)" },
}

function F.args(k)
  return {
    { name = "grad_logits", dir = "out", dtype = k.dtype, shape = { "T", k.V },
      used = not k.inplace },
    { name = "logits", dir = "inout", dtype = k.dtype,
      shape = { "T", k.V } },
    { name = "targets", dir = "in", dtype = "i32", shape = { "T" }, init = "zeros" },
    { name = "lse", dir = "in", dtype = k.lse_dtype, shape = { "T" } },
  }
end

local BYTES = { bf16 = 2, f32 = 4 }

function F.cost(k, n)
  local b = BYTES[k.dtype]
  return { flops = n.T * k.V * 4, read = n.T * (k.V * b + 4 + BYTES[k.lse_dtype]),
           written = n.T * k.V * b }
end

function F.params(k)
  return {
    V = k.V, DTYPE = k.dtype, BF16 = k.dtype == "bf16", LSE_BF16 = k.lse_dtype == "bf16",
    CT = k.dtype == "bf16" and "kg_u16" or "float",
    LCT = k.lse_dtype == "bf16" and "kg_u16" or "float",
    MEAN = k.reduction == "mean", INPLACE = k.inplace,
    GRAIN = math.max(1, (256 * 1024) // (k.V * BYTES[k.dtype])),
  }
end

return F
