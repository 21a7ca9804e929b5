-- cross_entropy_fwd: per-position softmax cross entropy over a large vocabulary, streamed: each
-- row of logits goes through an online log-sum-exp chunk by chunk (running max and rescaled
-- running sum), giving loss = lse - logits[target] and the lse the backward pass reuses. No
-- [T, V] buffer: the logits are read in place. Semantics: shared/reference/cross_entropy.md.

local format = string.format

local F = {
  family = "cross_entropy_fwd",
  template = "cross_entropy_fwd.c.in",
  doc = "cross entropy forward: per-position loss and log-sum-exp of logits [T, V]",
  calls = { "T" },
  tokens = { T = "seq" },
  signature_doc = [[
loss, lse [T] in dtype; logits [T, V] in dtype; targets [T] int32, each in
[0, V) (a target outside it: KG_EARG before anything is written).]],
}

-- The reference's dtypes: bf16 or fp32 logits, intermediates and outputs alike.
local DTYPES = { "bf16", "f32" }

F.keys = {
  { key = "dtype", kind = "enum", values = DTYPES, from = "dtype", default = "bf16",
    name = "dtype", doc = "dtype of logits, loss and lse and of the running max and sum" },
  { key = "V", kind = "int", min = 1, max = 262144, from = "model.vocab", default = 128256,
    name = "v", doc = "vocabulary (at most 256K)" },
  { key = "chunk_size", kind = "int", min = 1, max = 65536, name = "cs",
    default = function(k) return math.min(k.V, 32768) end,
    doc = "vocabulary chunk of the online log-sum-exp (at most 65536 and V); with bf16 the "
          .. "running max and sum are rounded to bf16 after each chunk" },
  { key = "T", kind = "int", min = 1, from = "limits.max_tokens", default = 128,
    doc = "nominal positions per call, for the cost block (a call may pass any count)" },
}

function F.check(k, fail)
  if k.chunk_size > k.V then
    fail("chunk_size", format("%d is larger than the vocabulary V = %d", k.chunk_size, k.V))
  end
end

function F.args(k)
  return {
    { name = "loss", dir = "out", dtype = k.dtype, shape = { "T" } },
    { name = "lse", dir = "out", dtype = k.dtype, shape = { "T" } },
    { name = "logits", dir = "in", dtype = k.dtype, shape = { "T", k.V } },
    { name = "targets", dir = "in", dtype = "i32", shape = { "T" }, init = "zeros" },
  }
end

local BYTES = { bf16 = 2, f32 = 4 }

function F.cost(k, n)
  local b = BYTES[k.dtype]
  return { flops = n.T * k.V * 4, read = n.T * (k.V * b + 4), written = n.T * 2 * b }
end

function F.params(k)
  return {
    V = k.V, CS = k.chunk_size, DTYPE = k.dtype, BF16 = k.dtype == "bf16",
    CT = k.dtype == "bf16" and "kg_u16" or "float",
    NCHUNK = (k.V + k.chunk_size - 1) // k.chunk_size,
    -- rows per parallel task: a row is V values streamed once
    GRAIN = math.max(1, (256 * 1024) // (k.V * BYTES[k.dtype])),
  }
end

return F
