-- attention_cte: softmax attention for prefill (context encoding), flash-attention style: tiles
-- of queries x keys with an online softmax, so memory is bounded by the tiles and no Sq x Sk
-- score matrix ever exists. Heads are a key (nq query heads, nkv key/value heads per call, any
-- ratio: GQA); upstream folds batch x heads into one axis bs, which is B = 1, nq = bs here.
-- Semantics: shared/reference/attention_cte.md.

local ctypes = require "ctypes"
local scratch = require "scratch"

local format = string.format

local F = {
  family = "attention_cte",
  template = "attention_cte.c.in",
  doc = "softmax attention of q [B,nq,Sq,d] over k [B,nkv,d,Sk], v [B,nkv,Sk,d]",
  calls = { "B", "Sq", "Sk", "Sp" },
  -- prefill attends the call's own tokens: at T tokens both the queries and the keys are T;
  -- the prefix cache's length Sp is no token axis (it stays nominal)
  tokens = { B = "batch", Sq = "seq", Sk = "seq" },
  signature_doc = [[
out [B, nq, Sq, d]; neg_max, recip [B, nq, Sq] in softmax_dtype (cache_softmax:
-max and 1 / sum of each row's softmax, the sink included); q [B, nq, Sq, d];
k [B, nkv, d, Sk]; v [B, nkv, Sk, d] (upstream's layouts with bs = B*nq,
bs_kv = B*nkv); k_prior [B, nkv, d, Sp], v_prior [B, nkv, Sp, d] (the prefix cache,
rows 0..prior_used_len[0]-1 used, ahead of k and v), prior_used_len [1] int32;
cp_offset [1, 1] int32 (the position of this rank's first query); sink [B, nq] fp32
(one extra logit per head); bound_min, bound_max [Sq, 1] int32 (per-query key range
[min, max), sequence packing).]],
}

---------------------------------------------------------------------------------------------
-- Keys
---------------------------------------------------------------------------------------------

F.keys = {
  { key = "dtype", kind = "enum", values = ctypes.ACT, from = "dtype", default = "bf16",
    name = "dtype", doc = "dtype of q, k, v and out" },
  { key = "d", kind = "int", min = 1, max = 128, from = "model.head_dim", default = 128,
    name = "d", doc = "head dimension (at most 128, as upstream)" },
  { key = "nq", kind = "int", min = 1, from = "model.q_heads", default = 32, name = "nq",
    doc = "query heads per call (upstream's bs is B * nq)" },
  { key = "nkv", kind = "int", min = 1, from = "model.kv_heads", default = 8, name = "nkv",
    doc = "key/value heads (nq a multiple of it; query head h reads kv head h / (nq / nkv))" },
  { key = "scale", kind = "float", default = 1.0, name = "sc",
    doc = "s = scale * q.k (upstream's name; it must be 1 with sliding_window: pre-scale q)" },
  { key = "causal_mask", kind = "bool", default = true, name = "causal",
    doc = "query i sees keys j <= i (upstream's name)" },
  { key = "sliding_window", kind = "int", min = 0, max = 131072, default = 0, name = "swa",
    omit_default = true,
    doc = "W > 0: query i sees keys j with i - W < j, W keys with itself (upstream's name)" },
  { key = "prefix_caching", kind = "bool", default = false, name = "prior",
    doc = "prior keys k_prior, v_prior (the first prior_used_len[0] of Sp) before k, v: "
          .. "never hidden by the causal mask, positions -P..-1 for the window" },
  { key = "context_parallel", kind = "bool", default = false, name = "cp",
    doc = "query i is at position cp_offset[0] + i (strided: + i * global_cp_deg), for the "
          .. "causal mask and the window (upstream's cp_offset)" },
  { key = "global_cp_deg", kind = "int", min = 1, max = 32, default = 1, name = "cpdeg",
    omit_default = true, doc = "ranks of the context-parallel group (upstream's name)" },
  { key = "cp_strided_q_slicing", kind = "bool", default = false, name = "cpstrided",
    doc = "this rank's queries are every global_cp_deg-th position (upstream's name)" },
  { key = "sink", kind = "bool", default = false, name = "sink",
    doc = "one extra logit per head, sink [B, nq], in every row's softmax (upstream's name)" },
  { key = "sequence_packing", kind = "bool", default = false, name = "pack",
    doc = "query i sees keys bound_min[i] <= j < bound_max[i] (upstream's bound_min/max)" },
  { key = "cache_softmax", kind = "bool", default = false, name = "stats",
    doc = "also return each row's -max (neg_max) and 1 / sum (recip), [B, nq, Sq] (upstream's "
          .. "name; its [bs, 128, Sq/128] packing is the hardware's)" },
  { key = "softmax_dtype", kind = "enum", values = ctypes.ACT, default = "f32",
    name = { f32 = "smf32", bf16 = "smbf16", fp16 = "smfp16" }, omit_default = true,
    doc = "dtype of neg_max and recip (upstream's name)" },
  { key = "tp_q", kind = "bool", default = true, name = "tpq",
    doc = "q [B, nq, Sq, d]; false: [B, nq, d, Sq] (upstream's name)" },
  { key = "tp_k", kind = "bool", default = false, name = "tpk",
    doc = "k, k_prior [B, nkv, Sk, d]; false: [B, nkv, d, Sk] (upstream's name)" },
  { key = "tp_out", kind = "bool", default = false, name = "tpout",
    doc = "out [B, nq, d, Sq]; false: [B, nq, Sq, d] (upstream's name)" },
  { key = "B", kind = "int", min = 1, from = "limits.max_batch", default = 1,
    doc = "nominal batch per call, for the cost block (a call may pass any B)" },
  { key = "Sq", kind = "int", min = 1, from = "limits.max_tokens", default = 512,
    doc = "nominal queries per head per call, for the cost block" },
  { key = "Sk", kind = "int", min = 1, from = "limits.max_tokens", default = 512,
    doc = "nominal keys per head per call, for the cost block" },
  { key = "Sp", kind = "int", min = 1,
    default = function(k) return k.prefix_caching and k.Sk or 1 end,
    doc = "nominal prior keys stored (and used) per call, for the cost block; without a "
          .. "prefix cache 1, unused (a call passes any Sp then)" },
}

---------------------------------------------------------------------------------------------
-- Rejected combinations (shared/reference/attention_cte.md "Options", "Constraints")
---------------------------------------------------------------------------------------------

function F.check(k, fail)
  if k.nq % k.nkv ~= 0 then
    fail("nkv", format("nq = %d must be a multiple of nkv = %d", k.nq, k.nkv))
  end
  if k.scale ~= 1.0 and (k.sliding_window > 0 or k.prefix_caching or k.context_parallel) then
    fail("scale", "must be 1 with sliding_window, prefix_caching or context_parallel "
         .. "(upstream's rule): pre-scale q instead")
  end
  if not k.context_parallel and k.global_cp_deg ~= 1 then
    fail("global_cp_deg", "only context_parallel has a context-parallel group")
  end
  if not k.context_parallel and k.cp_strided_q_slicing then
    fail("cp_strided_q_slicing", "only context_parallel slices the queries")
  end
  if k.sequence_packing and k.global_cp_deg > 1 then
    fail("sequence_packing", "packing bounds do not go with global_cp_deg > 1 (upstream's "
         .. "rule)")
  end
  if k.sequence_packing and k.prefix_caching then
    fail("sequence_packing", "packing bounds do not go with prefix_caching (upstream's rule)")
  end
  if k.softmax_dtype ~= "f32" and not k.cache_softmax then
    fail("softmax_dtype", "only cache_softmax returns the statistics")
  end
  if k.Sp ~= 1 and not k.prefix_caching then
    fail("Sp", "only prefix_caching has prior keys")
  end
end

---------------------------------------------------------------------------------------------
-- Arguments
---------------------------------------------------------------------------------------------

-- Tensors in signature order (kgen/kernels.h's kg_attention_cte_fn is made from them).
function F.args(k)
  local dt = k.dtype
  return {
    { name = "out", dir = "out", dtype = dt,
      shape = k.tp_out and { "B", k.nq, k.d, "Sq" } or { "B", k.nq, "Sq", k.d } },
    { name = "neg_max", dir = "out", dtype = k.softmax_dtype, shape = { "B", k.nq, "Sq" },
      used = k.cache_softmax },
    { name = "recip", dir = "out", dtype = k.softmax_dtype, shape = { "B", k.nq, "Sq" },
      used = k.cache_softmax },
    { name = "q", dir = "in", dtype = dt,
      shape = k.tp_q and { "B", k.nq, "Sq", k.d } or { "B", k.nq, k.d, "Sq" } },
    { name = "k", dir = "in", dtype = dt,
      shape = k.tp_k and { "B", k.nkv, "Sk", k.d } or { "B", k.nkv, k.d, "Sk" } },
    { name = "v", dir = "in", dtype = dt, shape = { "B", k.nkv, "Sk", k.d } },
    { name = "k_prior", dir = "in", dtype = dt,
      shape = k.tp_k and { "B", k.nkv, "Sp", k.d } or { "B", k.nkv, k.d, "Sp" },
      used = k.prefix_caching },
    { name = "v_prior", dir = "in", dtype = dt, shape = { "B", k.nkv, "Sp", k.d },
      used = k.prefix_caching },
    { name = "prior_used_len", dir = "in", dtype = "i32", shape = { 1 }, scalar = true,
      used = k.prefix_caching },
    { name = "cp_offset", dir = "in", dtype = "i32", shape = { 1, 1 }, scalar = true,
      used = k.context_parallel },
    { name = "sink", dir = "in", dtype = "f32", shape = { "B", k.nq }, used = k.sink },
    { name = "bound_min", dir = "in", dtype = "i32", shape = { "Sq", 1 },
      used = k.sequence_packing },
    { name = "bound_max", dir = "in", dtype = "i32", shape = { "Sq", 1 },
      used = k.sequence_packing },
  }
end

---------------------------------------------------------------------------------------------
-- Cost
---------------------------------------------------------------------------------------------

-- The (query, key) pairs one head computes: with the causal mask query i sees active keys
-- j <= i, so at Sq = Sk = T that is T (T + 1) / 2, the causal half, and all P prior keys (P:
-- the nominal Sp, all used). The sliding window and the packing bounds are not counted (they
-- depend on W against the call's length, or on run-time values): the figure is then an upper
-- bound. With context parallelism the pairs are counted at cp_offset 0.
local function pairs(k, Sq, Sk, P)
  if not k.causal_mask then return Sq * (P + Sk) end
  local full = math.min(Sq, Sk) -- rows i < Sk see i + 1 keys, the rest all Sk
  return Sq * P + full * (full + 1) // 2 + (Sq - full) * Sk -- prior keys: never masked
end

-- Per pair: the q.k dot product and the p * v update, 2 d flops each.
function F.cost(k, n)
  local b = ctypes.info(k.dtype).bytes
  local heads = n.B * k.nq
  local P = k.prefix_caching and n.Sp or 0
  local read = (heads * n.Sq + 2 * n.B * k.nkv * (n.Sk + P)) * k.d * b
               + (k.sink and heads * 4 or 0) + (k.sequence_packing and 2 * n.Sq * 4 or 0)
               + (k.prefix_caching and 4 or 0) + (k.context_parallel and 4 or 0)
  return {
    flops = 4 * k.d * heads * pairs(k, n.Sq, n.Sk, P),
    read = read,
    written = heads * n.Sq * (k.d * b
                              + (k.cache_softmax and 2 * ctypes.info(k.softmax_dtype).bytes or 0)),
  }
end

---------------------------------------------------------------------------------------------
-- Template parameters
---------------------------------------------------------------------------------------------

-- The rows of a task: the G = nq / nkv query heads that share one kv head, MQ queries of each
-- (about 128 rows in all, so one K and V tile serves all of a group's heads and is widened
-- once per 128 rows); NT keys a tile.
local ROWS, NT = 128, 64

-- One task's working memory, in floats (a function of the tile sizes only).
local function scratch_layout(p)
  local MT, D = p.MT, p.D
  return scratch.layout({
    { "Q", MT * D, format("Q [%d, %d]: the task's query rows (G heads x MQ), times scale",
                          MT, D) },
    -- f32 tiles are read in place
    { "K", (p.F32 and not p.TPK) and 0 or D * NT,
      format("K [%d, %d]: a key tile in fp32, upstream's [d, keys] layout", D, NT) },
    { "V", p.F32 and 0 or NT * D, format("V [%d, %d]: its value rows in fp32", NT, D) },
    { "S", MT * NT, format("S [%d, %d]: scores q.k, then their exp (P)", MT, NT) },
    { "O", MT * D, format("O [%d, %d]: the unnormalized output rows", MT, D) },
    { "M", MT, format("[%d]: each row's running max", MT) },
    { "L", MT, format("[%d]: each row's running sum of exp(s - max)", MT) },
  }, 16)
end

function F.params(k)
  local dt = ctypes.info(k.dtype)
  local G = k.nq // k.nkv
  local p = {
    DTYPE = k.dtype, CT = dt.c, TO_F32 = dt.to_f32, FROM_F32 = dt.from_f32,
    F32 = k.dtype == "f32", D = k.d, NQ = k.nq, NKV = k.nkv, G = G, SCALE = k.scale,
    CAUSAL = k.causal_mask, W = k.sliding_window, SINK = k.sink, PACK = k.sequence_packing,
    PRIOR = k.prefix_caching, CP = k.context_parallel, STATS = k.cache_softmax,
    TPQ = k.tp_q, TPK = k.tp_k, TPOUT = k.tp_out,
    SM_DTYPE = k.softmax_dtype, SM_CT = ctypes.info(k.softmax_dtype).c,
    SM_FROM_F32 = ctypes.info(k.softmax_dtype).from_f32,
    CP_STRIDE = k.cp_strided_q_slicing and k.global_cp_deg or 1,
    MQ = math.max(1, ROWS // G), NT = NT,
  }
  p.MT = G * p.MQ
  p.SCRATCH = scratch_layout(p)
  return p
end

return F
