-- tiny: the dimensions of shared/golden/llama_gqa (a small random Llama, HF transformers run in
-- fp32): hidden 256, intermediate 688 (not a multiple of 8), 4 query heads, 2 KV heads.
return {
  name = "tiny",
  description = "the golden llama_gqa model's dimensions, fp32",
  model = {
    hidden = 256, intermediate = 688, q_heads = 4, kv_heads = 2, head_dim = 64,
    layers = 3, vocab = 512, rms_eps = 1e-5, rope_theta = 500000,
  },
  dtype = "f32",
  fp8 = { format = "e4m3" },
  limits = { max_tokens = 256, max_batch = 2, max_context = 256 },
  isa = "avx512",
  kernels = {
    { family = "rmsnorm_quant", quantization_type = "ROW" },
    { family = "rmsnorm_quant", quantization_type = "STATIC" },
    { family = "rope", layout = "BNSd", N = 4 },
    { family = "rope", layout = "dBNS", N = 2, contiguous_layout = false },
    { family = "rope_hf" },
    { family = "cumsum" },
  },
}
