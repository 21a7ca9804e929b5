-- moe: the kernels behind issue #15's Mixture-of-Experts speed figures: the router of a
-- Mixtral-8x7B layer (H 4096, 8 experts, top-2, softmax then the top-2 renormalised) and of a
-- 64-expert model (top-8), each at T = 512 tokens (the nominal size, limits.max_tokens); the
-- Mixtral layer's experts (I 14336) for one decode token (limits.max_batch), bf16 and fp8 (ROW)
-- weights; and the layer's experts for a prefill of T = 512 tokens (MoE CTE, bf16, blocks of 128
-- slots, the dropless static block count). A bench spec only: not bundled, nothing generated from it is checked in (the
-- bench_spec_moe CTest keeps it valid).
local model = {
  hidden = 4096, intermediate = 14336, q_heads = 32, kv_heads = 8, head_dim = 128,
  layers = 32, vocab = 32000, rms_eps = 1e-5, rope_theta = 1000000,
}

return {
  name = "bench_moe",
  description = "Mixtral-8x7B and a 64-expert router at the issue's speed-figure shapes",
  model = model,
  dtype = "bf16",
  fp8 = { format = "e4m3", max = 240 },
  limits = { max_tokens = 512, max_batch = 1, max_context = 4096 },
  kernels = {
    { family = "router_topk", E = 8, k = 2, norm_topk_prob = true },
    { family = "router_topk", E = 64, k = 8, norm_topk_prob = true },
    { family = "moe_tkg", E = 8, K = 2 },
    { family = "moe_tkg", E = 8, K = 2, quantization_type = "ROW" },
    { family = "moe_cte", E = 8, K = 2, B = 128 },
  },
}
