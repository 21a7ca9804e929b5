-- moe_cte: the routed experts of an MoE layer for prefill ("blockwise matmul"): the caller has
-- grouped the (token, expert) routings into N blocks of B slots, one expert a block
-- (token_position_to_id, block_to_expert; runtime/src/moe_blocks.c builds them from the
-- router's output); per block the kernel gathers its tokens, runs the expert's gated MLP on
-- them, scales by the affinities and updates the tokens' output rows. The dropless layout
-- (padding slots, the `conditions` early stop) and the capacity-dropping one (block e is
-- expert e). Semantics: shared/reference/moe_cte.md (and common.md).
--
-- Expert weights are packed as moe_tkg's (generator/lua/family/moe_tkg.lua): one kg_wt per
-- projection, every expert side by side along N, each padded to a multiple of 64 columns:
--   gate/up W [H, E * GP], GP = roundup(2I, 64); down W [I, E * DP], DP = roundup(H, 64).
-- Upstream's down_proj_weight [E, I_pad, H] is packed from its first I rows. MX weights
-- (quantization_type MX) come in upstream's MX layouts, as moe_tkg's: gate/up stored
-- moe_mx_gate_up, down mlp_mx_down, E8M0 scales over runs of 8 consecutive rows (kb 8); the
-- activations are quantized to MXFP8 e4m3fn over the same 32-element blocks before each GEMM.
--
-- Row T: upstream's hidden_states, affinities and output carry a padding row T that padding
-- slots point at. The kernel never computes a padding slot: its per-call T counts the real
-- tokens (hidden_states [T, H] may be upstream's [T + 1, H] buffer), the padding id is T (or
-- -1 with skip_token) and row T of output is not touched (moe_cte.md: "Row T is scratch").

local ctypes = require "ctypes"
local f32 = require "f32"
local scratch = require "scratch"
local moe_tkg = require "family.moe_tkg"

local format = string.format

local F = {
  family = "moe_cte",
  template = "moe_cte.c.in",
  doc = "MoE experts (prefill, blockwise): output[token] (+)= c * MLP_e(hidden[token]) per slot",
  calls = { "T", "N" },
  tokens = { T = "seq" },
  signature_doc = [[
output [T, H] (updated in place; row T of upstream's [T + 1, H] is not touched);
hidden_states [T, H]; expert_affinities_masked [T, E]; gate_up_proj_weight W [H, E * GP],
down_proj_weight W [I, E * DP] (every expert side by side, each padded to a multiple of 64
columns: GP = roundup(2I, 64), DP = roundup(H, 64)); token_position_to_id [N, B] int32 (padding:
T, or -1 with skip_token); block_to_expert [N] int32; conditions [N] int32 (upstream's [N + 1]:
the last entry is not read); gate_and_up_proj_bias [E, 2, I]; down_proj_bias [E, H];
gate_up_proj_scale [E, 2I] and down_proj_scale [E, H] fp32 ([1, .] with shared_scales);
gate_up_activations_T [N, 2, I, B] and down_activations [N, B, H] (checkpoint_activation).]],
}

-- Each expert's columns in a packed expert weight start on a multiple of this (moe_tkg's).
local EXPERT_ALIGN = 64

local ACT_PRIM = { SiLU = "kgp_silu_f32", GELU = "kgp_gelu_f32",
                   GELU_Tanh_Approx = "kgp_gelu_tanh_f32", Swish = "kgp_swish_f32" }

-- "No clamp": the clamp keys' default, the largest float32 (as moe_tkg's and mlp's).
local FLT_MAX = f32.round(3.4028234663852886e38)

-- Rows of one GEMM pass: consecutive blocks of one expert share a pass over its weights up to
-- this many slots (at least one block).
local MR = 256

local function roundup(n, m) return (n + m - 1) // m * m end
local function cdiv(a, b) return (a + b - 1) // b end

-- moe_cte.md "Block assignment convention": the static worst case of the dropless layout.
local function dropless_blocks(k)
  return math.max(cdiv(math.max(k.T * k.K - (k.E - 1), 0), k.B) + k.E - 1, 1)
end

---------------------------------------------------------------------------------------------
-- Keys
---------------------------------------------------------------------------------------------

F.keys = {
  { key = "dtype", kind = "enum", values = ctypes.ACT, from = "dtype", default = "bf16",
    name = "dtype", doc = "dtype of hidden_states, output, the affinities, biases and checkpoints" },
  { key = "weight_dtype", kind = "enum",
    values = { "bf16", "fp16", "f32", "e4m3", "e4m3fn", "e5m2", "e2m1" }, name = "dtype",
    default = function(k) return k.dtype end,
    doc = "stored format of the expert weights (ROW: e4m3 / e4m3fn; MX: e4m3fn, e5m2, e2m1)" },
  { key = "quantization_type", kind = "enum", values = { "NONE", "ROW", "MX" },
    default = function(k) return ctypes.FP8[k.weight_dtype] and "ROW" or "NONE" end,
    omit_default = true, name = { NONE = "none", ROW = "row", MX = "mx" },
    doc = "NONE, ROW (fp8 weights, per-column fp32 scales: the default for fp8 weights), MX "
          .. "(fp8 / fp4 weights in upstream's MX layouts, E8M0 block scales)" },
  { key = "H", kind = "int", min = 1, from = "model.hidden", default = 4096, name = "h",
    doc = "hidden size" },
  { key = "I", kind = "int", min = 1, from = "model.intermediate", default = 14336, name = "i",
    doc = "each expert's intermediate size" },
  { key = "E", kind = "int", min = 1, max = 4096, default = 8, name = "e",
    doc = "experts (expert_affinities_masked's columns)" },
  { key = "K", kind = "int", min = 1, max = 64, default = 2, name = "k",
    doc = "experts per token (top_k: the nominal block count and the cost)" },
  { key = "B", kind = "int", min = 1, max = 65536, default = 128, name = "b",
    doc = "slots per block (upstream's block_size; the dropping variant's capacity)" },
  { key = "capacity_dropping", kind = "bool", default = false, name = "drop",
    doc = "the dropping variant: N = E blocks, block e is expert e (block_to_expert not read)" },
  { key = "T", kind = "int", min = 1, from = "limits.max_tokens", default = 512,
    doc = "nominal tokens per call, for the cost block (a call may pass any count)" },
  { key = "N", kind = "int", min = 1, max = 1 << 24,
    default = function(k) return k.capacity_dropping and k.E or dropless_blocks(k) end,
    doc = "nominal blocks per call (default: the dropless static worst case "
          .. "ceil((T K - (E - 1)) / B) + E - 1, or E dropping)" },
  { key = "activation_function", kind = "enum",
    values = { "SiLU", "GELU", "GELU_Tanh_Approx", "Swish" }, default = "SiLU",
    name = { SiLU = "silu", GELU = "gelu", GELU_Tanh_Approx = "gelutanh", Swish = "swish" },
    doc = "activation of the gate (upstream's name; Swish = x*sigmoid(1.702x))" },
  { key = "expert_affinities_scaling_mode", kind = "enum",
    values = { "NO_SCALE", "POST_SCALE", "PRE_SCALE", "PRE_SCALE_DELAYED" },
    default = "POST_SCALE",
    name = { NO_SCALE = "noscale", POST_SCALE = "post", PRE_SCALE = "pre",
             PRE_SCALE_DELAYED = "predel" },
    doc = "POST_SCALE (the down output times the affinity), PRE_SCALE (the input rows), "
          .. "PRE_SCALE_DELAYED (as PRE_SCALE), NO_SCALE" },
  { key = "bias", kind = "bool", default = false, name = "bias",
    doc = "gate_and_up_proj_bias [E, 2, I] and down_proj_bias [E, H] (both, as upstream)" },
  { key = "gate_clamp_lower_limit", kind = "float", default = -FLT_MAX, name = "gclo",
    doc = "g = max(g, limit) (default: no clamp)" },
  { key = "gate_clamp_upper_limit", kind = "float", default = FLT_MAX, name = "gchi",
    doc = "g = min(g, limit) (default: no clamp)" },
  { key = "up_clamp_lower_limit", kind = "float", default = -FLT_MAX, name = "uclo",
    doc = "u = max(u, limit) (default: no clamp)" },
  { key = "up_clamp_upper_limit", kind = "float", default = FLT_MAX, name = "uchi",
    doc = "u = min(u, limit) (default: no clamp)" },
  { key = "shared_scales", kind = "bool", default = false, name = "shsc",
    doc = "fp8: one scale row for every expert (upstream's leading 1: [1, 2I], [1, H])" },
  { key = "is_tensor_update_accumulating", kind = "bool", default = true, name = "acc",
    doc = "output[token] += the slot's result (false: output[token] = it)" },
  { key = "checkpoint_activation", kind = "bool", default = false, name = "ckpt",
    doc = "also store gate_up_activations_T and down_activations" },
  { key = "expert_affinity_multiply_on_I", kind = "bool", default = false, name = "moi",
    doc = "scale act(g)*u by the affinity instead of the down output (POST_SCALE)" },
  { key = "skip_token", kind = "bool", default = false, name = "skiptok",
    doc = "padding slots hold -1 (upstream's skip_dma.skip_token) instead of T" },
  { key = "conditions", kind = "bool", default = false, name = "cond",
    doc = "read conditions [N]: stop at the first block whose flag is 0" },
}

---------------------------------------------------------------------------------------------
-- Rejected combinations (moe_cte.md "Options")
---------------------------------------------------------------------------------------------

local MX_FMT = { e4m3fn = true, e5m2 = true, e2m1 = true }

local function check_quant(k, fail)
  local q, wd = k.quantization_type, k.weight_dtype
  if q == "MX" then
    if not MX_FMT[wd] then
      fail("weight_dtype", format("MX weights are e4m3fn, e5m2 or e2m1, not %s", wd))
    end
    if k.H % 512 ~= 0 then fail("H", format("MX needs H %% 512 == 0, got %d", k.H)) end
    if not (k.I % 512 == 0 or (k.I < 512 and k.I % 32 == 0)) then
      fail("I", format("MX needs I %% 512 == 0, or I < 512 and I %% 32 == 0; got %d", k.I))
    end
  elseif MX_FMT[wd] and not ctypes.FP8[wd] then
    fail("weight_dtype", format("%s weights are MX only (quantization_type MX)", wd))
  elseif (q == "ROW") ~= (ctypes.FP8[wd] ~= nil) then
    fail("quantization_type", format("%s weights are not %s (ROW is fp8 weights' scales)", wd, q))
  end
  if k.shared_scales and q ~= "ROW" then
    fail("shared_scales", "scales go with ROW fp8 weights; " .. wd .. " " .. q .. " has none")
  end
end

function F.check(k, fail)
  check_quant(k, fail)
  if k.K > k.E then fail("K", format("%d experts per token of E = %d", k.K, k.E)) end
  if k.capacity_dropping and k.conditions then
    fail("conditions", "the dropping variant runs every one of its E blocks")
  end
  if k.capacity_dropping and k.N ~= k.E then
    fail("N", format("the dropping variant has N = E = %d blocks", k.E))
  end
  if k.expert_affinity_multiply_on_I and k.expert_affinities_scaling_mode ~= "POST_SCALE" then
    fail("expert_affinity_multiply_on_I", "moves POST_SCALE's multiply; the mode is "
         .. k.expert_affinities_scaling_mode)
  end
end

---------------------------------------------------------------------------------------------
-- Arguments, cost, template parameters
---------------------------------------------------------------------------------------------

local function geometry(k)
  return roundup(2 * k.I, EXPERT_ALIGN), roundup(k.H, EXPERT_ALIGN)
end

-- How kgen bench fills the block tables (cli/tensor.c): the nominal T K routings in
-- consecutive blocks spread evenly over the experts, the remaining slots padding.
local function table_inits(k)
  local used = k.T * k.K
  local pad = k.skip_token and -1 or k.T
  local nb = math.max(math.min(cdiv(used, k.B), k.N), 1)
  local tok = format("cycle:%d:%d:%d", used, k.T, pad)
  local exp = k.capacity_dropping and "slots" or format("spread:%d:%d", nb, k.E)
  if #tok > 31 then tok = "zeros" end
  return tok, exp
end

function F.args(k)
  local GP, DP = geometry(k)
  local fp8, mx = k.quantization_type == "ROW", k.quantization_type == "MX"
  local sr = k.shared_scales and 1 or k.E
  local tok, exp = table_inits(k)
  return {
    { name = "output", dir = "inout", dtype = k.dtype, shape = { "T", k.H }, init = "zeros" },
    { name = "hidden_states", dir = "in", dtype = k.dtype, shape = { "T", k.H } },
    { name = "expert_affinities_masked", dir = "in", dtype = k.dtype, shape = { "T", k.E },
      used = k.expert_affinities_scaling_mode ~= "NO_SCALE" },
    { name = "gate_up_proj_weight", dir = "in", dtype = k.weight_dtype,
      shape = { k.H, k.E * GP },
      weight = { layout = mx and "moe_mx_gate_up" or "kn", mx = mx } },
    { name = "down_proj_weight", dir = "in", dtype = k.weight_dtype,
      shape = { k.I, k.E * DP }, weight = { layout = mx and "mlp_mx_down" or "kn", mx = mx } },
    { name = "token_position_to_id", dir = "in", dtype = "i32", shape = { "N", k.B },
      init = tok },
    { name = "block_to_expert", dir = "in", dtype = "i32", shape = { "N" }, init = exp,
      used = not k.capacity_dropping },
    { name = "conditions", dir = "in", dtype = "i32", shape = { "N" }, init = "ones",
      used = k.conditions },
    { name = "gate_and_up_proj_bias", dir = "in", dtype = k.dtype, shape = { k.E, 2, k.I },
      used = k.bias },
    { name = "down_proj_bias", dir = "in", dtype = k.dtype, shape = { k.E, k.H },
      used = k.bias },
    { name = "gate_up_proj_scale", dir = "in", dtype = "f32", shape = { sr, 2 * k.I },
      used = fp8, init = "scale" },
    { name = "down_proj_scale", dir = "in", dtype = "f32", shape = { sr, k.H }, used = fp8,
      init = "scale" },
    { name = "gate_up_activations_T", dir = "out", dtype = k.dtype,
      shape = { "N", 2, k.I, k.B }, used = k.checkpoint_activation },
    { name = "down_activations", dir = "out", dtype = k.dtype, shape = { "N", k.B, k.H },
      used = k.checkpoint_activation and not k.expert_affinity_multiply_on_I },
  }
end

-- The T K routed slots (dropping: the E B slots of capacity; padding slots are never
-- computed); every expert's weights read once.
function F.cost(k, n)
  local T, H, I, E = n.T, k.H, k.I, k.E
  local pairs = k.capacity_dropping and E * k.B or T * k.K
  local b = ctypes.info(k.dtype).bytes
  local fp8, mx = k.quantization_type == "ROW", k.quantization_type == "MX"
  local ckpt = k.checkpoint_activation and pairs * (2 * I + H) * b or 0
  return {
    flops = pairs * (6 * H * I + 4 * I + 2 * H),
    read = pairs * H * b + T * H * b + E * ctypes.wt_bytes(k.weight_dtype, 3 * H * I)
           + n.N * k.B * 4 + (fp8 and E * (2 * I + H) * 4 or 0)
           + (mx and E * 3 * H * I // 8 or 0),
    written = T * H * b + ckpt,
  }
end

function F.params(k)
  local GP, DP = geometry(k)
  local dt = ctypes.info(k.dtype)
  local mode = k.expert_affinities_scaling_mode
  local mr = math.max(MR // k.B, 1) * k.B
  local p = {
    H = k.H, I = k.I, E = k.E, B = k.B, GP = GP, DP = DP, MR = mr,
    DTYPE = k.dtype, CT = dt.c, TO_F32 = dt.to_f32, FROM_F32 = dt.from_f32, ROUND = dt.round,
    WDTYPE = k.weight_dtype, WT_FMT = ctypes.WT[k.weight_dtype].fmt,
    WBITS = ctypes.WT[k.weight_dtype].bits,
    ROW = k.quantization_type == "ROW", MX = k.quantization_type == "MX",
    SHARED = k.shared_scales,
    ACT = ACT_PRIM[k.activation_function], ACT_NAME = k.activation_function,
    PRE = mode == "PRE_SCALE" or mode == "PRE_SCALE_DELAYED", MODE = mode,
    POST = mode == "POST_SCALE" and not k.expert_affinity_multiply_on_I,
    MOI = k.expert_affinity_multiply_on_I, AFF = mode ~= "NO_SCALE",
    GUB = k.bias, DB = k.bias,
    GLO = k.gate_clamp_lower_limit, GHI = k.gate_clamp_upper_limit,
    ULO = k.up_clamp_lower_limit, UHI = k.up_clamp_upper_limit,
    GCLAMP = k.gate_clamp_lower_limit ~= -FLT_MAX or k.gate_clamp_upper_limit ~= FLT_MAX,
    UCLAMP = k.up_clamp_lower_limit ~= -FLT_MAX or k.up_clamp_upper_limit ~= FLT_MAX,
    ACC = k.is_tensor_update_accumulating, CKPT = k.checkpoint_activation,
    CKPT_DOWN = k.checkpoint_activation and not k.expert_affinity_multiply_on_I,
    SKIP = k.skip_token, COND = k.conditions, DROP = k.capacity_dropping,
  }
  if p.MX then p.P, p.T5 = moe_tkg.mx_geometry(k.I) end
  -- Scratch: per slot of a pass, its gathered row, gate | up (then the product) and the down
  -- output; per call, one expert's biases and the pass's slot list.
  p.SCRATCH_ROWS = scratch.layout({
    { "X", k.H, format("X [m, %d]: the pass's token rows in fp32", k.H) },
    { "G", GP, format("G [m, %d]: their gate | up, then the product in the first %d", GP, k.I) },
    { "Y", k.H, format("Y [m, %d]: the expert's outputs", k.H) },
  }, 16)
  p.SCRATCH = scratch.layout({
    { "BGU", k.bias and 2 * k.I or 0, format("one expert's gate | up bias [%d]", 2 * k.I) },
    { "BD", k.bias and k.H or 0, format("one expert's down bias [%d]", k.H) },
  }, 16)
  return p
end

return F
