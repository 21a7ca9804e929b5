-- cumsum: inclusive prefix sum along the last axis, fp32 running total, outputs in the input
-- dtype; optionally rounds the total the way upstream's 2048-column tiles do.
-- Semantics: shared/reference/cumsum.md.

local ctypes = require "ctypes"

local F = {
  family = "cumsum",
  template = "cumsum.c.in",
  doc = "inclusive prefix sum of x [..., H] along H",
  calls = { "rows" },
  tokens = { rows = "seq" },
  signature_doc = [[
out, x [rows, H]; inclusive prefix sum along H.]],
}

F.keys = {
  { key = "dtype", kind = "enum", values = ctypes.ACT, from = "dtype", default = "bf16",
    name = "dtype", doc = "dtype of x and out" },
  { key = "H", kind = "int", min = 1, from = "model.hidden", default = 4096, name = "h",
    doc = "length of the summed (last) axis" },
  { key = "tile_carry_round", kind = "bool", default = false, name = "tilernd",
    doc = "round the running total to dtype after every 2048 columns, as upstream does" },
  { key = "rows", kind = "int", min = 1, from = "limits.max_tokens", default = 128,
    doc = "nominal rows per call, for the cost block (a call may pass any count)" },
}

-- Tensors in signature order (kgen/kernels.h's kg_cumsum_fn is made from them).
function F.args(k)
  return {
    { name = "out", dir = "out", dtype = k.dtype, shape = { "...rows", k.H } },
    { name = "x", dir = "in", dtype = k.dtype, shape = { "...rows", k.H } },
  }
end

function F.cost(k, n)
  local bytes = ctypes.info(k.dtype).bytes
  return { flops = n.rows * k.H, read = n.rows * k.H * bytes, written = n.rows * k.H * bytes }
end

-- Upstream's free-axis tile: the carry crosses a tile boundary every 2048 columns.
local TILE = 2048

function F.params(k)
  local dt = ctypes.info(k.dtype)
  return {
    H = k.H, DTYPE = k.dtype, CT = dt.c, TO_F32 = dt.to_f32, FROM_F32 = dt.from_f32,
    ROUND = dt.round, F32 = k.dtype == "f32", TILE = math.min(k.H, TILE),
    TCR = k.tile_carry_round and k.dtype ~= "f32",
    -- rows per parallel task: about 32k elements, so a task outweighs its dispatch
    GRAIN = math.max(1, 32768 // k.H),
    -- blocks of RB rows go to kgp_cumsum_rows_f32, which runs their chains side by side
    -- (groups of 8 rows on avx2 and avx512); other dtypes pass through fp32 stack scratch CB
    -- columns at a time (2 x 16 KiB); CB divides TILE whenever a row has more than one tile,
    -- so tile ends are chunk ends
    RB = 16, CB = math.min(k.H, TILE, 256),
  }
end

return F
