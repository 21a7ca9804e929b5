-- moe_tkg: the routed experts of an MoE layer for a decode batch: each token's expert MLPs
-- (gate and up projections, bias, clamps, activation, product, down projection, bias),
-- weighted by the router's affinities and summed. Selective (each token's K chosen experts)
-- or all-expert (every local expert of this rank, affinity-weighted and masked) give the same
-- math; either way an expert no token routes to is never read. Semantics:
-- shared/reference/moe_tkg.md (and common.md).
--
-- Expert weights: one packed kg_wt per projection holding every local expert side by side
-- along N, each expert's columns padded to a multiple of 64 (EXPERT_ALIGN, a multiple of every
-- ISA's panel width), so the kernel cuts a view of whole panels per expert:
--   gate/up W [H, E_L * GP], GP = roundup(2I, 64): expert e's gate columns e*GP .. + I, its up
--   columns e*GP + I .. + I (upstream's [E_L, H, 2, I] with the pad columns zero);
--   down W [I, E_L * DP], DP = roundup(H, 64): expert e's columns e*DP .. + H.
-- kg_wt_pack_experts packs them from each expert's stored weights. MX weights (upstream's MX
-- layouts, moe_cte.md "MX variants") carry E8M0 scales over runs of 8 consecutive rows (kb 8):
-- gate/up stored moe_mx_gate_up, down mlp_mx_down; the activations are quantized to MXFP8
-- e4m3fn over the same 32-element blocks before each GEMM, as upstream does.

local ctypes = require "ctypes"
local f32 = require "f32"
local scratch = require "scratch"

local format = string.format

local F = {
  family = "moe_tkg",
  template = "moe_tkg.c.in",
  doc = "MoE experts (decode): out[t] = sum over t's experts e of c * MLP_e(hidden[t])",
  calls = { "T" },
  tokens = { T = "seq" },
  signature_doc = [[
output [T, H] in the output dtype; hidden_input [T, H];
expert_gate_up_weights W [H, E_L * GP], expert_down_weights W [I, E_L * DP] (every local
expert side by side, each padded to a multiple of 64 columns: GP = roundup(2I, 64),
DP = roundup(H, 64)); expert_affinities [T, E]; expert_index [T, K] uint32; rank_id [1]
uint32; expert_gate_up_bias [E_L, 2, I]; expert_down_bias [E_L, H];
expert_gate_up_weights_scale [E_L, 2, I] and expert_down_weights_scale [E_L, H] fp32 (ROW);
expert_affinities_eager [T, K] fp32.]],
}

-- Each expert's columns in a packed expert weight start on a multiple of this.
local EXPERT_ALIGN = 64

local ACT_PRIM = { SiLU = "kgp_silu_f32", GELU = "kgp_gelu_f32",
                   GELU_Tanh_Approx = "kgp_gelu_tanh_f32", Swish = "kgp_swish_f32" }

-- "No clamp": the clamp keys' default, the largest float32 (as mlp's).
local FLT_MAX = f32.round(3.4028234663852886e38)

-- Tokens per block: a block's rows share one pass over each expert's weights.
local MB = 64

local function roundup(n, m) return (n + m - 1) // m * m end

-- The MX element formats (upstream's MX weights).
local MX_FMT = { e4m3fn = true, e5m2 = true, e2m1 = true }

-- MX's down-projection geometry (mlp's): P rows of x4 words per 512-row tile of I, T5 tiles.
local function mx_geometry(I)
  if I >= 512 then return 128, I // 512 end
  return I // 4, 1
end

---------------------------------------------------------------------------------------------
-- Keys
---------------------------------------------------------------------------------------------

F.keys = {
  { key = "dtype", kind = "enum", values = ctypes.ACT, from = "dtype", default = "bf16",
    name = "dtype", doc = "dtype of hidden_input and the biases" },
  { key = "quantization_type", kind = "enum", values = { "NONE", "ROW", "MX", "STATIC" },
    default = "NONE", name = { NONE = "none", ROW = "row", MX = "mx", STATIC = "static" },
    doc = "NONE, ROW (fp8 weights, per-column fp32 scales), MX (fp8/fp4 weights, E8M0 block "
          .. "scales); STATIC is refused" },
  { key = "weight_dtype", kind = "enum",
    values = { "bf16", "fp16", "f32", "e4m3", "e4m3fn", "e5m2", "e2m1" }, name = "dtype",
    default = function(k)
      local q = k.quantization_type
      return q == "NONE" and k.dtype or q == "MX" and "e4m3fn" or "e4m3"
    end,
    doc = "stored format of the expert weights (ROW: e4m3 / e4m3fn; MX: e4m3fn, e5m2, e2m1)" },
  { key = "affinity_dtype", kind = "enum", values = ctypes.ACT, default = "f32", name = "dtype",
    doc = "dtype of expert_affinities (upstream: bf16 all-expert, fp32 selective)" },
  { key = "out_dtype", kind = "enum", values = ctypes.ACT, name = "dtype",
    default = function(k) return k.dtype end, doc = "dtype of output (upstream's output_dtype)" },
  { key = "H", kind = "int", min = 1, from = "model.hidden", default = 4096, name = "h",
    doc = "hidden size" },
  { key = "I", kind = "int", min = 1, from = "model.intermediate", default = 14336, name = "i",
    doc = "each expert's intermediate size" },
  { key = "E", kind = "int", min = 1, max = 4096, default = 8, name = "e",
    doc = "experts in all (expert_affinities' columns)" },
  { key = "E_L", kind = "int", min = 1, max = 4096, name = "el",
    default = function(k) return k.E end, omit_default = true,
    doc = "local experts, those of this rank: [rank_id * E_L, (rank_id + 1) * E_L)" },
  { key = "K", kind = "int", min = 1, max = 16, default = 2, name = "k",
    doc = "experts per token (expert_index's columns)" },
  { key = "is_all_expert", kind = "bool", default = false, name = "all",
    doc = "all-expert (every local expert, weighted by its affinity) instead of selective" },
  { key = "expert_affinities_scaling_mode", kind = "enum",
    values = { "NO_SCALE", "POST_SCALE", "PRE_SCALE", "PRE_SCALE_DELAYED" },
    default = "POST_SCALE",
    name = { NO_SCALE = "noscale", POST_SCALE = "post", PRE_SCALE = "pre",
             PRE_SCALE_DELAYED = "predel" },
    doc = "POST_SCALE (the expert's output times its affinity) or NO_SCALE; PRE_SCALE* refused" },
  { key = "mask_unselected_experts", kind = "bool", default = false, name = "mask",
    doc = "all-expert: zero a local expert's affinity for a token unless expert_index names it" },
  { key = "use_eager_affinities", kind = "bool", default = false, name = "eager",
    doc = "selective POST_SCALE: read expert_affinities_eager [T, K] (top-K order) instead of "
          .. "gathering from expert_affinities" },
  { key = "activation_fn", kind = "enum", values = { "SiLU", "GELU", "GELU_Tanh_Approx", "Swish" },
    default = "SiLU",
    name = { SiLU = "silu", GELU = "gelu", GELU_Tanh_Approx = "gelutanh", Swish = "swish" },
    doc = "activation of the gate (Swish = x*sigmoid(1.702x))" },
  { key = "gate_up_bias", kind = "bool", default = false, name = "gub",
    doc = "expert_gate_up_bias [E_L, 2, I]" },
  { key = "down_bias", kind = "bool", default = false, name = "db",
    doc = "expert_down_bias [E_L, H]" },
  { key = "gate_clamp_lower_limit", kind = "float", default = -FLT_MAX, name = "gclo",
    doc = "g = max(g, limit) (default: no clamp)" },
  { key = "gate_clamp_upper_limit", kind = "float", default = FLT_MAX, name = "gchi",
    doc = "g = min(g, limit) (default: no clamp)" },
  { key = "up_clamp_lower_limit", kind = "float", default = -FLT_MAX, name = "uclo",
    doc = "u = max(u, limit) (default: no clamp)" },
  { key = "up_clamp_upper_limit", kind = "float", default = FLT_MAX, name = "uchi",
    doc = "u = min(u, limit) (default: no clamp)" },
  { key = "mx_prequant", kind = "bool", default = false, name = "preq",
    doc = "MX all-expert: hidden_input arrives quantized (upstream's hidden_input_scale): "
          .. "e4m3fn codes [T, H] with E8M0 scales hidden_input_scale [T, H/512, 16]" },
  { key = "T", kind = "int", min = 1, from = "limits.max_batch", default = 1,
    doc = "nominal tokens per call, for the cost block (a call may pass any count)" },
}

---------------------------------------------------------------------------------------------
-- Rejected combinations (moe_tkg.md "Options", "Constraints")
---------------------------------------------------------------------------------------------

local function check_quant(k, fail)
  local q = k.quantization_type
  if q == "STATIC" then
    fail("quantization_type", "STATIC (gate_up_input_scale / down_input_scale) is not "
         .. "supported by moe_tkg upstream; use NONE, ROW or MX")
  end
  local wd = k.weight_dtype
  if q == "MX" then
    if not MX_FMT[wd] then
      fail("weight_dtype", format("MX weights are e4m3fn, e5m2 or e2m1, not %s", wd))
    end
    if k.H % 512 ~= 0 then fail("H", format("MX needs H %% 512 == 0, got %d", k.H)) end
    if not (k.I % 512 == 0 or (k.I < 512 and k.I % 32 == 0)) then
      fail("I", format("MX needs I %% 512 == 0, or I < 512 and I %% 32 == 0; got %d", k.I))
    end
    return
  end
  local fp8 = wd == "e4m3" or wd == "e4m3fn"
  if (q == "ROW") ~= fp8 then
    fail("weight_dtype", format("%s weights are not %s", q, wd))
  end
end

function F.check(k, fail)
  check_quant(k, fail)
  local mode = k.expert_affinities_scaling_mode
  if mode == "PRE_SCALE" or mode == "PRE_SCALE_DELAYED" then
    fail("expert_affinities_scaling_mode", mode .. " is rejected by moe_tkg upstream; use "
         .. "NO_SCALE or POST_SCALE")
  end
  if k.E_L > k.E then
    fail("E_L", format("%d local experts of E = %d", k.E_L, k.E))
  end
  if k.E % k.E_L ~= 0 then
    fail("E_L", format("E = %d is not a whole number of ranks of %d experts", k.E, k.E_L))
  end
  if k.K > k.E then fail("K", format("%d experts per token of E = %d", k.K, k.E)) end
  if not k.is_all_expert and k.E_L ~= k.E then
    fail("E_L", "selective mode indexes every expert's weights (E_L = E); use is_all_expert "
         .. "for a rank's share")
  end
  if k.mask_unselected_experts and not k.is_all_expert then
    fail("mask_unselected_experts", "needs is_all_expert (selective reads expert_index only)")
  end
  if k.use_eager_affinities then
    if k.is_all_expert then
      fail("use_eager_affinities", "eager affinities are not allowed in all-expert mode")
    end
    if mode ~= "POST_SCALE" then
      fail("use_eager_affinities", "NO_SCALE reads no affinity")
    end
  end
  if k.mx_prequant and not (k.quantization_type == "MX" and k.is_all_expert) then
    fail("mx_prequant", "pre-quantized input (hidden_input_scale) is MX all-expert only "
         .. "(quantization_type=MX, is_all_expert=true)")
  end
  -- NO_SCALE reads no affinity: its dtype goes back to the default (one name per kernel)
  if mode == "NO_SCALE" then k.affinity_dtype = "f32" end
end

---------------------------------------------------------------------------------------------
-- Arguments, cost, template parameters
---------------------------------------------------------------------------------------------

local function geometry(k)
  return roundup(2 * k.I, EXPERT_ALIGN), roundup(k.H, EXPERT_ALIGN)
end

-- Whether a call reads expert_index / expert_affinities / rank_id.
local function reads(k)
  local post = k.expert_affinities_scaling_mode == "POST_SCALE"
  local all = k.is_all_expert
  return {
    index = not all or k.mask_unselected_experts,
    aff = post and not k.use_eager_affinities,
    rank = all,
  }
end

function F.args(k)
  local GP, DP = geometry(k)
  local row, mx = k.quantization_type == "ROW", k.quantization_type == "MX"
  local r = reads(k)
  -- the stored layout of one expert's weight (kg_wt_pack_experts packs them side by side)
  return {
    { name = "output", dir = "out", dtype = k.out_dtype, shape = { "...T", k.H } },
    { name = "hidden_input", dir = "in", dtype = k.mx_prequant and "e4m3fn" or k.dtype,
      shape = { "...T", k.H } },
    { name = "expert_gate_up_weights", dir = "in", dtype = k.weight_dtype,
      shape = { k.H, k.E_L * GP },
      weight = { layout = mx and "moe_mx_gate_up" or "kn", mx = mx } },
    { name = "expert_down_weights", dir = "in", dtype = k.weight_dtype,
      shape = { k.I, k.E_L * DP }, weight = { layout = mx and "mlp_mx_down" or "kn", mx = mx } },
    { name = "expert_affinities", dir = "in", dtype = k.affinity_dtype, shape = { "...T", k.E },
      used = r.aff },
    { name = "expert_index", dir = "in", dtype = "u32", shape = { "...T", k.K }, init = "slots",
      used = r.index },
    { name = "rank_id", dir = "in", dtype = "u32", shape = { 1 }, init = "zeros",
      used = r.rank },
    { name = "expert_gate_up_bias", dir = "in", dtype = k.dtype, shape = { k.E_L, 2, k.I },
      used = k.gate_up_bias },
    { name = "expert_down_bias", dir = "in", dtype = k.dtype, shape = { k.E_L, k.H },
      used = k.down_bias },
    { name = "expert_gate_up_weights_scale", dir = "in", dtype = "f32",
      shape = { k.E_L, 2, k.I }, used = row, init = "scale" },
    { name = "expert_down_weights_scale", dir = "in", dtype = "f32", shape = { k.E_L, k.H },
      used = row, init = "scale" },
    -- upstream's [16, H/512, T] token-major: block (j, p8) holds rows q*H/4 + j*128 + 8*p8 + r
    { name = "hidden_input_scale", dir = "in", dtype = "e8m0", init = "scale",
      shape = k.mx_prequant and { "...T", k.H // 512, 16 } or { 1 }, used = k.mx_prequant },
    { name = "expert_affinities_eager", dir = "in", dtype = "f32", shape = { "...T", k.K },
      used = k.use_eager_affinities },
  }
end

-- Selective reads its tokens' K experts (at most T*K distinct, counted at the nominal T so the
-- cost stays a polynomial in the tokens of a call), all-expert every local expert.
function F.cost(k, n)
  local T, H, I = n.T, k.H, k.I
  local experts = k.is_all_expert and k.E_L or math.min(k.E_L, k.T * k.K)
  local pairs = k.is_all_expert and T * k.E_L or T * k.K
  local b = ctypes.info(k.dtype).bytes
  local w = ctypes.wt_bytes(k.weight_dtype, 3 * H * I)
  local xb = k.mx_prequant and T * (H + H // 32) or T * H * b
  return {
    flops = pairs * (6 * H * I + 4 * I + 2 * H),
    read = xb + experts * w + T * (k.E * 4 + k.K * 4)
           + (k.quantization_type == "ROW" and experts * (2 * I + H) * 4 or 0)
           + (k.quantization_type == "MX" and experts * 3 * H * I // 8 or 0),
    written = T * H * ctypes.info(k.out_dtype).bytes,
  }
end

-- moe_cte's MX shares the geometry.
F.mx_geometry = mx_geometry

function F.params(k)
  local GP, DP = geometry(k)
  local dt = ctypes.info(k.dtype)
  local p = {
    H = k.H, I = k.I, E = k.E, EL = k.E_L, K = k.K, GP = GP, DP = DP,
    DTYPE = k.dtype, CT = dt.c, TO_F32 = dt.to_f32,
    ADTYPE = k.affinity_dtype, ACT_C = ctypes.info(k.affinity_dtype).c,
    A_TO_F32 = ctypes.info(k.affinity_dtype).to_f32,
    ODTYPE = k.out_dtype, OCT = ctypes.info(k.out_dtype).c,
    O_FROM_F32 = ctypes.info(k.out_dtype).from_f32,
    WDTYPE = k.weight_dtype, WT_FMT = ctypes.WT[k.weight_dtype].fmt,
    WBITS = ctypes.WT[k.weight_dtype].bits,
    ROW = k.quantization_type == "ROW", MX = k.quantization_type == "MX",
    ALL = k.is_all_expert,
    POST = k.expert_affinities_scaling_mode == "POST_SCALE",
    MASK = k.mask_unselected_experts, EAGER = k.use_eager_affinities,
    ACT = ACT_PRIM[k.activation_fn], ACT_NAME = k.activation_fn,
    GUB = k.gate_up_bias, DB = k.down_bias,
    GLO = k.gate_clamp_lower_limit, GHI = k.gate_clamp_upper_limit,
    ULO = k.up_clamp_lower_limit, UHI = k.up_clamp_upper_limit,
    GCLAMP = k.gate_clamp_lower_limit ~= -FLT_MAX or k.gate_clamp_upper_limit ~= FLT_MAX,
    UCLAMP = k.up_clamp_lower_limit ~= -FLT_MAX or k.up_clamp_upper_limit ~= FLT_MAX,
    READS = reads(k), PREQ = k.mx_prequant,
  }
  -- Scratch: per token of a block, its widened hidden row and fp32 sum, and (one expert at a
  -- time) its gathered row, gate | up and expert output; per call, one expert's biases.
  p.MB = MB
  if p.MX then p.P, p.T5 = mx_geometry(k.I) end
  p.SCRATCH_ROWS = scratch.layout({
    { "X", k.H, format("X [m, %d]: the block's hidden rows in fp32", k.H) },
    { "ACC", k.H, format("ACC [m, %d]: their fp32 sums over the experts", k.H) },
    { "XG", k.H, format("XG [m, %d]: the rows one expert takes, gathered", k.H) },
    { "G", GP, format("G [m, %d]: their gate | up, then the product in the first %d", GP, k.I) },
    { "Y", k.H, format("Y [m, %d]: the expert's outputs", k.H) },
  }, 16)
  p.SCRATCH = scratch.layout({
    { "BGU", k.gate_up_bias and 2 * k.I or 0, format("one expert's gate | up bias [%d]", 2 * k.I) },
    { "BD", k.down_bias and k.H or 0, format("one expert's down bias [%d]", k.H) },
  }, 16)
  return p
end

return F
