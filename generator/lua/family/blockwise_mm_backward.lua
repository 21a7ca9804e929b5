-- blockwise_mm_backward: the backward pass of the blockwise (dropless MoE) expert MLP, MoE CTE's
-- POST_SCALE forward with the affinity on the hidden dimension: from the upstream gradient and
-- the checkpointed gate / up pre-activations and down outputs, the gradients of the hidden
-- states, the affinities, both expert weights and (bias) both biases. Blocks of B slots, one
-- expert a block, as moe_cte (padding slots: token T, or -1 with skip_token). Semantics:
-- shared/reference/blockwise_mm_backward.md (and moe_cte.md for the block layout).
--
-- The kernel works expert by expert over all the slots of its blocks at once: the two
-- backward products dM = dD W_down^T and dX = dGU W_gu^T are GEMMs over packed weights, so the
-- weights come packed TRANSPOSED, every expert side by side along N (each padded to a multiple
-- of 64 columns, as moe_tkg's):
--   gate_up_proj_weight W [2I, E * HP], HP = roundup(H, 64): expert e's W_gu[e] transposed,
--     row i < I its gate column i, row I + i its up column i (upstream's [E, H, 2, I] read as
--     [H, 2I] per expert and transposed);
--   down_proj_weight W [H, E * IP], IP = roundup(I, 64): expert e's W_down[e] ([I, H]) transposed.
-- The weight gradients dW = A^T B over the expert's slots are GEMMs too: B (dD, dGU) packed as
-- a weight by kgp_pack_act_f32, A^T (the slots' M and X) by kgp_transpose_f32; each weight
-- gradient element is one GEMM sum over all the expert's slots, in fp32, rounded once.

local ctypes = require "ctypes"
local f32 = require "f32"
local scratch = require "scratch"

local format = string.format

local F = {
  family = "blockwise_mm_backward",
  template = "blockwise_mm_backward.c.in",
  doc = "blockwise MoE expert MLP backward: gradients of hidden states, affinities, weights, biases",
  calls = { "rows", "N" },
  tokens = { rows = "seq" },
  signature_doc = [[
rows = T + 1 token rows (row T: zero padding;
T with skip_token), N blocks of B slots. Gradients out: hidden_states_grad [rows, H],
expert_affinities_masked_grad [rows, E], gate_up_proj_weight_grad [E, H, 2, I] and
down_proj_weight_grad [E, I, H] (weight_dtype), gate_and_up_proj_bias_grad [E, 2, I] and
down_proj_bias_grad [E, H] (f32, bias). In: hidden_states [rows, H];
expert_affinities_masked [rows, E]; gate_up_proj_weight W [2I, E * HP] and down_proj_weight
W [H, E * IP] (each expert's weight transposed, side by side, padded to HP = roundup(H, 64),
IP = roundup(I, 64) columns); gate_up_proj_act_checkpoint_T [N, 2, I, B];
down_proj_act_checkpoint [N, B, H]; token_position_to_id [N, B] and block_to_expert [N]
int32; output_hidden_states_grad [rows, H].]],
}

-- Each expert's columns in a packed expert weight start on a multiple of this (moe_tkg's).
local EXPERT_ALIGN = 64

-- "No clamp": the clamp keys' default, the largest float32 (as moe_tkg's).
local FLT_MAX = f32.round(3.4028234663852886e38)

local function roundup(n, m) return (n + m - 1) // m * m end

---------------------------------------------------------------------------------------------
-- Keys
---------------------------------------------------------------------------------------------

F.keys = {
  { key = "dtype", kind = "enum", values = ctypes.ACT, from = "dtype", default = "bf16",
    name = "dtype", doc = "dtype of hidden_states, the checkpoints, the output gradient and "
                         .. "hidden_states_grad" },
  { key = "affinity_dtype", kind = "enum", values = ctypes.ACT, name = "dtype",
    default = function(k) return k.dtype end,
    doc = "dtype of expert_affinities_masked and its gradient" },
  { key = "weight_dtype", kind = "enum", values = { "bf16", "f32" }, name = "dtype",
    default = function(k) return k.dtype == "f32" and "f32" or "bf16" end,
    doc = "the expert weights and their gradients (bf16: every product on bf16 operands with "
          .. "fp32 sums, as upstream; f32: fp32 throughout)" },
  { key = "H", kind = "int", min = 1, max = 65536, from = "model.hidden", default = 4096,
    name = "h", doc = "hidden size" },
  { key = "I", kind = "int", min = 1, max = 65536, from = "model.intermediate", default = 14336,
    name = "i", doc = "each expert's intermediate size" },
  { key = "E", kind = "int", min = 1, max = 4096, default = 8, name = "e", doc = "experts" },
  { key = "block_size", kind = "int", min = 1, max = 4096, default = 512, name = "b",
    doc = "B, slots per block (upstream's tiling wants 128, 256, 512 or 1024; any is taken)" },
  { key = "activation_type", kind = "enum",
    values = { "SiLU", "GELU", "GELU_Tanh_Approx", "Swish" }, default = "SiLU",
    name = { SiLU = "silu", GELU = "gelu", GELU_Tanh_Approx = "gelutanh", Swish = "swish" },
    doc = "SiLU or Swish (x*sigmoid(1.702x)); the others are refused" },
  { key = "gate_clamp_lower_limit", kind = "float", default = -FLT_MAX, name = "gclo",
    doc = "the forward's gate clamp (non_linear_lower): no gradient at or below it" },
  { key = "gate_clamp_upper_limit", kind = "float", default = FLT_MAX, name = "gchi",
    doc = "the forward's gate clamp (non_linear_upper): no gradient at or above it" },
  { key = "up_clamp_lower_limit", kind = "float", default = -FLT_MAX, name = "uclo",
    doc = "the forward's up clamp (linear_lower): no gradient at or below it" },
  { key = "up_clamp_upper_limit", kind = "float", default = FLT_MAX, name = "uchi",
    doc = "the forward's up clamp (linear_upper): no gradient at or above it" },
  { key = "bias", kind = "bool", default = false, name = "bias",
    doc = "also write the bias gradients (f32)" },
  { key = "skip_token", kind = "bool", default = false, name = "skip",
    doc = "skip_dma.skip_token: padding slots are -1 (skipped), no padding row (rows = T)" },
  { key = "is_tensor_update_accumulating", kind = "bool", default = true, name = "acc",
    doc = "hidden_states_grad rows add up over a token's blocks (false: each visit "
          .. "overwrites; top-1 only)" },
  { key = "rows", kind = "int", min = 1, from = "limits.max_tokens", default = 513,
    doc = "nominal token rows per call (T + 1), for the cost block" },
  { key = "N", kind = "int", min = 1, default = 1, doc = "nominal blocks per call, for the cost block" },
}

---------------------------------------------------------------------------------------------
-- Rejected combinations
---------------------------------------------------------------------------------------------

function F.check(k, fail)
  local a = k.activation_type
  if a ~= "SiLU" and a ~= "Swish" then
    fail("activation_type", a .. " has no backward here (upstream falls back to SiLU "
         .. "silently); use SiLU or Swish")
  end
  if k.gate_clamp_lower_limit >= k.gate_clamp_upper_limit then
    fail("gate_clamp_lower_limit", "the gate clamp's lower limit is not below its upper limit")
  end
  if k.up_clamp_lower_limit >= k.up_clamp_upper_limit then
    fail("up_clamp_lower_limit", "the up clamp's lower limit is not below its upper limit")
  end
end

-- Per-call bounds the kernel checks (so its sizes stay far from overflowing a long).
local MAX_ROWS, MAX_SLOTS = 1 << 24, 1 << 24

function F.call_check(k, n)
  if n.rows > MAX_ROWS then return format("rows = %d: at most %d", n.rows, MAX_ROWS) end
  if n.N * k.block_size > MAX_SLOTS then
    return format("N = %d blocks of %d: at most %d slots", n.N, k.block_size, MAX_SLOTS)
  end
end

---------------------------------------------------------------------------------------------
-- Arguments, cost, template parameters
---------------------------------------------------------------------------------------------

local function geometry(k)
  return roundup(k.H, EXPERT_ALIGN), roundup(k.I, EXPERT_ALIGN)
end

function F.args(k)
  local HP, IP = geometry(k)
  local H, I, E, B = k.H, k.I, k.E, k.block_size
  return {
    { name = "hidden_states_grad", dir = "out", dtype = k.dtype, shape = { "rows", H } },
    { name = "expert_affinities_masked_grad", dir = "out", dtype = k.affinity_dtype,
      shape = { "rows", E } },
    { name = "gate_up_proj_weight_grad", dir = "out", dtype = k.weight_dtype,
      shape = { E, H, 2, I } },
    { name = "down_proj_weight_grad", dir = "out", dtype = k.weight_dtype, shape = { E, I, H } },
    { name = "gate_and_up_proj_bias_grad", dir = "out", dtype = "f32", shape = { E, 2, I },
      used = k.bias },
    { name = "down_proj_bias_grad", dir = "out", dtype = "f32", shape = { E, H },
      used = k.bias },
    { name = "hidden_states", dir = "in", dtype = k.dtype, shape = { "rows", H } },
    { name = "expert_affinities_masked", dir = "in", dtype = k.affinity_dtype,
      shape = { "rows", E } },
    { name = "gate_up_proj_weight", dir = "in", dtype = k.weight_dtype, shape = { 2 * I, E * HP },
      weight = { layout = "kn" } },
    { name = "down_proj_weight", dir = "in", dtype = k.weight_dtype, shape = { H, E * IP },
      weight = { layout = "kn" } },
    { name = "gate_up_proj_act_checkpoint_T", dir = "in", dtype = k.dtype,
      shape = { "N", 2, I, B } },
    { name = "down_proj_act_checkpoint", dir = "in", dtype = k.dtype, shape = { "N", B, H } },
    { name = "token_position_to_id", dir = "in", dtype = "i32", shape = { "N", B },
      init = "slots" },
    { name = "block_to_expert", dir = "in", dtype = "i32", shape = { "N" }, init = "slots" },
    { name = "output_hidden_states_grad", dir = "in", dtype = k.dtype, shape = { "rows", H } },
  }
end

-- Every slot counted as a token (padding slots are skipped, so this is an upper bound), every
-- block's expert read once: four products of 2 H I (dM, dW_down) and 4 H I (dX, dW_gu) flops
-- a slot.
function F.cost(k, n)
  local H, I, E, B = k.H, k.I, k.E, k.block_size
  local slots, experts = n.N * B, math.min(E, n.N)
  local b = ctypes.info(k.dtype).bytes
  local ab = ctypes.info(k.affinity_dtype).bytes
  local wb = ctypes.info(k.weight_dtype).bytes
  return {
    flops = slots * (12 * H * I + 10 * I + 4 * H),
    read = n.rows * (2 * H * b + E * ab) + slots * (2 * I + H) * b + n.N * (B + 1) * 4
           + experts * 3 * H * I * wb,
    written = n.rows * (H * b + E * ab) + E * 3 * H * I * wb
              + (k.bias and E * (2 * I + H) * 4 or 0),
  }
end

function F.params(k)
  local HP, IP = geometry(k)
  local dt, at, wt = ctypes.info(k.dtype), ctypes.info(k.affinity_dtype),
                     ctypes.info(k.weight_dtype)
  local p = {
    H = k.H, I = k.I, E = k.E, B = k.block_size, HP = HP, IP = IP,
    DTYPE = k.dtype, CT = dt.c, TO_F32 = dt.to_f32, FROM_F32 = dt.from_f32,
    ADTYPE = k.affinity_dtype, ACT_C = at.c, A_TO_F32 = at.to_f32, A_FROM_F32 = at.from_f32,
    WDTYPE = k.weight_dtype, WCT = wt.c,
    WT_FMT = ctypes.WT[k.weight_dtype].fmt,
    SWISH = k.activation_type == "Swish", ACT_NAME = k.activation_type,
    BIAS = k.bias, SKIP = k.skip_token, ACC = k.is_tensor_update_accumulating,
    GLO = k.gate_clamp_lower_limit, GHI = k.gate_clamp_upper_limit,
    ULO = k.up_clamp_lower_limit, UHI = k.up_clamp_upper_limit,
    GLO_SET = k.gate_clamp_lower_limit ~= -FLT_MAX, GHI_SET = k.gate_clamp_upper_limit ~= FLT_MAX,
    ULO_SET = k.up_clamp_lower_limit ~= -FLT_MAX, UHI_SET = k.up_clamp_upper_limit ~= FLT_MAX,
    MAX_ROWS = MAX_ROWS, MAX_SLOTS = MAX_SLOTS,
    NMAX = math.max(2 * k.I, k.H),
  }
  -- Scratch: per slot of the current expert (n of them), its rows; per call, a block's
  -- checkpoint transposed; then, sized per call, the fp32 hidden
  -- gradient (unless it is f32 already) and the packed B operand of the weight gradients.
  local H, I = k.H, k.I
  p.SCRATCH_ROWS = scratch.layout({
    { "X", H, format("X [n, %d]: the slots' hidden rows (fp32)", H) },
    { "DY", H, format("DY [n, %d]: their output gradient, then dD = dY * a", H) },
    { "DX", H, format("DX [n, %d]: their down checkpoint, then dX = dGU W_gu^T", H) },
    { "GU", 2 * I, format("GU [n, %d]: their gate | up checkpoint", 2 * I) },
    { "DGU", 2 * I, format("DGU [n, %d]: dG | dU", 2 * I) },
    { "HM", I, format("HM [n, %d]: M = act(G) * U", I) },
    { "DM", I, format("DM [n, %d]: dM = dD W_down^T", I) },
    { "XT", H, format("XT [%d, n]: X transposed", H) },
    { "MT", I, format("MT [%d, n]: M transposed", I) },
    { "ID", 1, "ID [n]: the slot's token (as an int)" },
    { "DA", 1, "DA [n]: a block's slots' affinity gradients" },
  }, 1)
  p.SCRATCH = scratch.layout({
    { "BT", 4 * I * k.block_size,
      format("BT [2, %d x %d]: a block's gate | up checkpoint in fp32, then transposed",
             2 * I, k.block_size) },
  }, 16)
  return p
end

return F
