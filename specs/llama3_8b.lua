-- Llama-3-8B (meta-llama/Meta-Llama-3-8B config), bf16: the bundled default spec.
local model = {
  hidden = 4096, intermediate = 14336, q_heads = 32, kv_heads = 8, head_dim = 128,
  layers = 32, vocab = 128256, rms_eps = 1e-5, rope_theta = 500000,
}

return {
  name = "llama3_8b",
  description = "Llama-3-8B, bf16 activations, fp8 e4m3 quantization",
  model = model,
  dtype = "bf16",
  fp8 = { format = "e4m3", max = 240 },
  limits = { max_tokens = 2048, max_batch = 4, max_context = 8192 },
  isa = "avx512",
  kernels = {
    -- the input norm of every layer, feeding fp8 ROW projections
    { family = "rmsnorm_quant", quantization_type = "ROW" },
    { family = "rmsnorm_quant", quantization_type = "STATIC" },
    -- rotary embedding of the q and the k heads, [B, heads, S, head_dim]
    { family = "rope", layout = "BNSd", N = model.q_heads },
    { family = "rope", layout = "BNSd", N = model.kv_heads },
    { family = "rope_hf" },
    { family = "cumsum" },
  },
}
