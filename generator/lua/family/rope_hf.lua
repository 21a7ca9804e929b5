-- rope_hf: HuggingFace-style rotary embedding of q and k together, with full-width cos/sin
-- tables (or one packed rope_cache), forward or backward. Semantics: shared/reference/rope.md
-- ("rope_hf").

local ctypes = require "ctypes"

local F = {
  family = "rope_hf",
  template = "rope_hf.c.in",
  doc = "HF rotate-half of q [B,Hq,S,d] and k [B,Hk,S,d] with tables [B,T,d] / [T,d] (T >= S)",
  calls = { "B", "S", "T" },
  -- table rows follow the positions: at T tokens both S and T are T (the tables cover them)
  tokens = { B = "batch", S = "seq", T = "seq" },
  signature_doc = [[
q_out, q [B, Hq, S, d]; k_out, k [B, Hk, S, d]; tables of T >= S rows:
cos, sin [B, T, d] (or [T, d] without table_batch); with tables=cache, `cos` is the packed
rope_cache [B, T, 2d] (cos then sin in each row) and `sin` is ignored.]],
}

F.keys = {
  { key = "dtype", kind = "enum", values = ctypes.ACT, from = "dtype", default = "bf16",
    name = "dtype", doc = "dtype of q, k, their outputs and the tables" },
  { key = "d", kind = "int", min = 2, multiple_of = 2, from = "model.head_dim", default = 128,
    name = "d", doc = "head dimension (even)" },
  { key = "Hq", kind = "int", min = 1, from = "model.q_heads", default = 32, name = "hq",
    doc = "query heads" },
  { key = "Hk", kind = "int", min = 1, from = "model.kv_heads", default = 8, name = "hk",
    doc = "key heads" },
  { key = "tables", kind = "enum", values = { "cos_sin", "cache" }, default = "cos_sin",
    name = { cos_sin = "cossin", cache = "cache" },
    doc = "cos_sin: two tables [.., d]; cache: one rope_cache [.., 2d], cos then sin per row" },
  { key = "table_batch", kind = "bool", default = true, name = "tbatch",
    doc = "true: tables [B,T,..]; false: [T,..] shared by the batch" },
  { key = "backward", kind = "bool", default = false, name = "bwd",
    doc = "apply the gradient of the rotation instead of the rotation" },
  { key = "B", kind = "int", min = 1, from = "limits.max_batch", default = 1,
    doc = "nominal batch per call, for the cost block" },
  { key = "S", kind = "int", min = 1, from = "limits.max_tokens", default = 128,
    doc = "nominal positions per call, for the cost block" },
  { key = "T", kind = "int", min = 1, default = function(k) return k.S end,
    doc = "nominal table rows per call (>= S; the first S are used)" },
}

function F.check(k, fail)
  if k.T < k.S then
    fail("T", string.format("T = %d (table rows) is less than S = %d (positions)", k.T, k.S))
  end
end

-- Per-call sizes a kernel cannot accept (main.lua's bind() reports the message).
function F.call_check(k, n)
  if n.T < n.S then
    return string.format("table rows T = %d < positions S = %d: rope_hf reads the first S rows "
                         .. "of the tables", n.T, n.S)
  end
  return nil
end

-- Tensors in signature order (kgen/kernels.h's kg_rope_hf_fn is made from them). In cache mode
-- the packed rope_cache fills the signature's `cos` slot and `sin` is ignored.
function F.args(k)
  local cache = k.tables == "cache"
  local w = cache and 2 * k.d or k.d
  local t = k.table_batch and { "B", "T", w } or { "T", w }
  return {
    { name = "q_out", dir = "out", dtype = k.dtype, shape = { "B", k.Hq, "S", k.d } },
    { name = "k_out", dir = "out", dtype = k.dtype, shape = { "B", k.Hk, "S", k.d } },
    { name = "q", dir = "in", dtype = k.dtype, shape = { "B", k.Hq, "S", k.d } },
    { name = "k", dir = "in", dtype = k.dtype, shape = { "B", k.Hk, "S", k.d } },
    { name = cache and "rope_cache" or "cos", slot = "cos", dir = "in", dtype = k.dtype,
      shape = t },
    { name = "sin", dir = "in", dtype = k.dtype, shape = t, used = not cache },
  }
end

-- 3 flops per element of q and k; only the first S rows of the tables are read.
function F.cost(k, n)
  local bytes = ctypes.info(k.dtype).bytes
  local elems = n.B * (k.Hq + k.Hk) * n.S * k.d
  local tb = k.table_batch and n.B or 1
  return {
    flops = 3 * elems,
    read = elems * bytes + tb * n.S * 2 * k.d * bytes,
    written = elems * bytes,
  }
end

function F.params(k)
  local dt = ctypes.info(k.dtype)
  local cache = k.tables == "cache"
  local p = {
    D = k.d, HALF = k.d // 2, HQ = k.Hq, HK = k.Hk, DTYPE = k.dtype, CT = dt.c,
    TO_F32 = dt.to_f32, FROM_F32 = dt.from_f32, F32 = k.dtype == "f32",
    CACHE = cache, TBATCH = k.table_batch, BWD = k.backward,
    -- positions per task: scratch of about 8k floats per tensor on the worker's stack
    CH = math.max(1, 8192 // k.d),
    ROW_BYTES = 2 * (k.Hq + k.Hk) * k.d * dt.bytes, -- a position's heads read and written
    -- table rows are TW floats wide: d (cos, sin) or 2d (rope_cache: cos then sin)
    TW = cache and 2 * k.d or k.d,
    -- the forward pass in bf16 rotates straight from the inputs to the outputs (one primitive
    -- widens, rotates and rounds); the backward pass and fp16 work on fp32 rows
    FUSED = k.dtype == "bf16" and not k.backward,
  }
  p.F32_ROWS = not p.F32 and not p.FUSED
  return p
end

return F
