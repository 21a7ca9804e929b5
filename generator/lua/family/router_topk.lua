-- router_topk: the MoE router of a batch of tokens: logits = x @ W + bias (the packed-weight
-- GEMM), the K best experts of each token (ranked by the fp32 logits, ties to the lower expert
-- index), their activation (softmax or sigmoid, of all E logits before the selection or of the
-- K selected ones) and the dense [T, E] affinity matrix. Semantics: shared/reference/
-- router_topk.md (and common.md).

local ctypes = require "ctypes"
local scratch = require "scratch"

local format = string.format

local F = {
  family = "router_topk",
  template = "router_topk.c.in",
  doc = "MoE router: logits = x @ W [H,E] + bias, top-K experts, softmax/sigmoid affinities",
  calls = { "T" },
  tokens = { T = "seq" },
  signature_doc = [[
router_logits, expert_affinities [T, E] in the output dtype; expert_index [T, K]
uint32 (column 0 the best expert); eager_affinities [T, K] fp32 (the selected experts'
affinities in selection order); x [T, H] (x_layout HT: [H, T]); w W [H, E];
w_bias [E].]],
}

---------------------------------------------------------------------------------------------
-- Keys
---------------------------------------------------------------------------------------------

F.keys = {
  { key = "dtype", kind = "enum", values = ctypes.ACT, from = "dtype", default = "bf16",
    name = "dtype", doc = "dtype of x, the weight (its stored format) and w_bias" },
  { key = "out_dtype", kind = "enum", values = ctypes.ACT, name = "dtype",
    default = function(k) return k.dtype end,
    doc = "dtype of router_logits and expert_affinities" },
  { key = "H", kind = "int", min = 1, from = "model.hidden", default = 4096, name = "h",
    doc = "hidden size (upstream needs a multiple of 128; any size here)" },
  { key = "E", kind = "int", min = 1, max = 512, default = 8, name = "e",
    doc = "experts (at most 512, upstream's bound)" },
  { key = "k", kind = "int", min = 1, max = 8, default = 2, name = "k",
    doc = "experts selected per token, 1 to 8 and at most E" },
  { key = "act_fn", kind = "enum", values = { "SIGMOID", "SOFTMAX" }, default = "SOFTMAX",
    name = { SIGMOID = "sigmoid", SOFTMAX = "softmax" },
    doc = "RouterActFnType: SIGMOID or SOFTMAX" },
  { key = "router_pre_norm", kind = "bool", default = true, name = "pre",
    doc = "true: activate all E logits before the top-K (ACT1); false: only the K selected "
          .. "ones (ACT2)" },
  { key = "norm_topk_prob", kind = "bool", default = false, name = "norm",
    doc = "ACT1: divide the selected affinities by their sum (ignored with ACT2, as upstream)" },
  { key = "bias", kind = "bool", default = false, name = "bias", doc = "router bias w_bias [E]" },
  { key = "x_layout", kind = "enum", values = { "TH", "HT" }, default = "TH",
    name = { TH = "xth", HT = "xht" }, omit_default = true,
    doc = "x stored [T, H], or [H, T] (upstream's x_hbm_layout = 0)" },
  { key = "return_eager_affi", kind = "bool", default = false, name = "eager",
    doc = "also write eager_affinities [T, K] fp32" },
  { key = "skip_store_expert_index", kind = "bool", default = false, name = "skipidx",
    doc = "do not write expert_index (it may be NULL)" },
  { key = "skip_store_router_logits", kind = "bool", default = false,
    doc = "refused when true, as upstream (the logits are always written)" },
  { key = "T", kind = "int", min = 1, from = "limits.max_tokens", default = 128,
    doc = "nominal tokens per call, for the cost block (a call may pass any count)" },
}

---------------------------------------------------------------------------------------------
-- Rejected combinations (router_topk.md "Constraints")
---------------------------------------------------------------------------------------------

function F.check(k, fail)
  if k.k > k.E then
    fail("k", format("%d experts selected of E = %d (k must be at most E)", k.k, k.E))
  end
  if k.skip_store_router_logits then
    fail("skip_store_router_logits", "must be false (upstream rejects it: the logits are "
         .. "always stored)")
  end
  -- norm_topk_prob is only honoured with router_pre_norm: put it back to its default so the
  -- kernels that do the same thing get one name
  if not k.router_pre_norm then k.norm_topk_prob = false end
end

---------------------------------------------------------------------------------------------
-- Signature, cost, template values
---------------------------------------------------------------------------------------------

-- Tensors in signature order (outputs first).
function F.args(k)
  local xshape = k.x_layout == "HT" and { k.H, "T" } or { "...T", k.H }
  return {
    { name = "router_logits", dir = "out", dtype = k.out_dtype, shape = { "...T", k.E } },
    { name = "expert_index", dir = "out", dtype = "u32", shape = { "...T", k.k },
      used = not k.skip_store_expert_index },
    { name = "expert_affinities", dir = "out", dtype = k.out_dtype, shape = { "...T", k.E } },
    { name = "eager_affinities", dir = "out", dtype = "f32", shape = { "...T", k.k },
      used = k.return_eager_affi },
    { name = "x", dir = "in", dtype = k.dtype, shape = xshape },
    { name = "w", dir = "in", dtype = k.dtype, shape = { k.H, k.E },
      weight = { layout = "kn" } },
    { name = "w_bias", dir = "in", dtype = k.dtype, shape = { k.E }, used = k.bias },
  }
end

function F.cost(k, n)
  local T, H, E, K = n.T, k.H, k.E, k.k
  local b, ob = ctypes.info(k.dtype).bytes, ctypes.info(k.out_dtype).bytes
  return {
    flops = T * (2 * H * E + (k.bias and E or 0) + 4 * (k.router_pre_norm and E or K)),
    read = T * H * b + ctypes.wt_bytes(k.dtype, H * E) + (k.bias and E * b or 0),
    written = T * (2 * E * ob + (k.skip_store_expert_index and 0 or 4 * K)
                   + (k.return_eager_affi and 4 * K or 0)),
  }
end

-- Tokens per block: a block's rows share one pass over the weight.
local MB = 64

function F.params(k)
  local dt, ot = ctypes.info(k.dtype), ctypes.info(k.out_dtype)
  local p = {
    H = k.H, E = k.E, K = k.k, MB = MB, DTYPE = k.dtype, CT = dt.c, TO_F32 = dt.to_f32,
    ODTYPE = k.out_dtype, OCT = ot.c, O_FROM_F32 = ot.from_f32,
    SOFTMAX = k.act_fn == "SOFTMAX", PRE = k.router_pre_norm, NORM = k.norm_topk_prob,
    BIAS = k.bias, XHT = k.x_layout == "HT", EAGER = k.return_eager_affi,
    STORE_IDX = not k.skip_store_expert_index, WT_FMT = ctypes.WT[k.dtype].fmt,
  }
  p.SCRATCH_ROWS = scratch.layout {
    { "A", k.H, format("A [m, %d]: the block's rows of x in fp32", k.H) },
    { "L", k.E, format("L [m, %d]: their fp32 logits", k.E) },
    { "P", k.E, format("P [m, %d]: their affinities in fp32", k.E) },
  }
  p.SCRATCH = scratch.layout {
    { "BIAS", k.bias and k.E or 0, format("w_bias [%d] in fp32", k.E) },
    { "XT", k.x_layout == "HT" and MB or 0, format("one row of x [H, T], %d tokens, in fp32", MB) },
  }
  return p
end

return F
