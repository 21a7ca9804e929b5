-- rope: rotary position embedding with half-size cos/sin tables, in upstream's head-dim-major
-- layout [d, B, N, S] or the logical [B, N, S, d]; rotate-half or interleaved pairing.
-- Semantics: shared/reference/rope.md ("RoPE").

local ctypes = require "ctypes"

local F = {
  family = "rope",
  template = "rope.c.in",
  doc = "rotary embedding of x [d,B,N,S] or [B,N,S,d] with tables cos, sin [d/2,B,S] or [B,S,d/2]",
  calls = { "B", "S" },
  tokens = { B = "batch", S = "seq" },
  signature_doc = [[
layout dBNS: x_out, x_in [d, B, N, S], cos, sin [d/2, B, S];
layout BNSd: x_out, x_in [B, N, S, d], cos, sin [B, S, d/2].]],
}

F.keys = {
  { key = "dtype", kind = "enum", values = ctypes.ACT, from = "dtype", default = "bf16",
    name = "dtype", doc = "dtype of x_in, x_out, cos and sin" },
  { key = "d", kind = "int", min = 2, multiple_of = 2, from = "model.head_dim", default = 128,
    name = "d", doc = "head dimension (even)" },
  { key = "N", kind = "int", min = 1, from = "model.q_heads", default = 32, name = "n",
    doc = "heads" },
  { key = "layout", kind = "enum", values = { "dBNS", "BNSd" }, default = "dBNS",
    name = { dBNS = "dbns", BNSd = "bnsd" },
    doc = "dBNS: x [d,B,N,S], tables [d/2,B,S] (upstream); BNSd: x [B,N,S,d], tables [B,S,d/2]" },
  { key = "contiguous_layout", kind = "bool", default = true, name = "contig",
    doc = "true: element j pairs with j+d/2; false: 2j pairs with 2j+1" },
  { key = "B", kind = "int", min = 1, from = "limits.max_batch", default = 1,
    doc = "nominal batch per call, for the cost block (a call may pass any B)" },
  { key = "S", kind = "int", min = 1, from = "limits.max_tokens", default = 128,
    doc = "nominal positions per call, for the cost block (a call may pass any S)" },
}

-- Tensors in signature order (kgen/kernels.h's kg_rope_fn is made from them).
function F.args(k)
  local h = k.d // 2
  local x, t
  if k.layout == "dBNS" then
    x, t = { k.d, "B", k.N, "S" }, { h, "B", "S" }
  else
    x, t = { "B", k.N, "S", k.d }, { "B", "S", h }
  end
  return {
    { name = "x_out", dir = "out", dtype = k.dtype, shape = x },
    { name = "x_in", dir = "in", dtype = k.dtype, shape = x },
    { name = "cos", dir = "in", dtype = k.dtype, shape = t },
    { name = "sin", dir = "in", dtype = k.dtype, shape = t },
  }
end

-- Per pair: 4 multiplies and 2 adds, i.e. 3 flops per element of x.
function F.cost(k, n)
  local bytes = ctypes.info(k.dtype).bytes
  local elems = n.B * k.N * n.S * k.d
  return {
    flops = 3 * elems,
    read = elems * bytes + 2 * n.B * n.S * (k.d // 2) * bytes,
    written = elems * bytes,
  }
end

function F.params(k)
  local dt = ctypes.info(k.dtype)
  -- positions per task: scratch of about 8k floats per tensor on the worker's stack
  local ch = math.max(1, 8192 // k.d)
  local p = {
    D = k.d, HALF = k.d // 2, N = k.N, DTYPE = k.dtype, CT = dt.c,
    TO_F32 = dt.to_f32, FROM_F32 = dt.from_f32, F32 = k.dtype == "f32",
    BNSD = k.layout == "BNSd", CONTIG = k.contiguous_layout, CH = ch,
    ROW_BYTES = 2 * k.N * k.d * dt.bytes, -- a position's heads read and written
    -- BNSd with contiguous pairing in bf16 rotates straight from x_in to x_out (one primitive
    -- widens, rotates and rounds); the other narrow dtypes and layouts work on fp32 rows
    FUSED = k.layout == "BNSd" and k.contiguous_layout and k.dtype == "bf16",
  }
  p.F32_ROWS = not p.F32 and not p.FUSED
  return p
end

return F
