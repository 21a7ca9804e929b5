-- edge_one: every dimension at its smallest: one of everything (head_dim 2: one rotation pair).
return {
  name = "edge_one",
  description = "smallest sizes: 1 wherever allowed",
  model = {
    hidden = 1, intermediate = 1, q_heads = 1, kv_heads = 1, head_dim = 2,
    layers = 1, vocab = 1, rms_eps = 1e-6, rope_theta = 10000,
  },
  dtype = "bf16",
  fp8 = { format = "e4m3" },
  limits = { max_tokens = 1, max_batch = 1, max_context = 1 },
  isa = "avx512",
  kernels = {
    { family = "rmsnorm_quant", quantization_type = "ROW" },
    { family = "rmsnorm_quant", quantization_type = "STATIC", norm_type = "NO_NORM" },
    { family = "rope", layout = "BNSd", N = 1 },
    { family = "rope_hf", backward = true },
    { family = "cumsum" },
  },
}
