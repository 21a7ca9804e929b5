-- edge_odd: sizes that leave a remainder in every tile a kernel or primitive may use (16-wide
-- vectors, 2048-column scan tiles, 8-row blocks): odd hidden size, 3 heads, odd head counts.
return {
  name = "edge_odd",
  description = "odd sizes: remainders in every tile",
  model = {
    hidden = 2063, intermediate = 5003, q_heads = 3, kv_heads = 1, head_dim = 34,
    layers = 1, vocab = 1001, rms_eps = 1e-6, rope_theta = 10000,
  },
  dtype = "fp16",
  fp8 = { format = "e4m3fn" },
  limits = { max_tokens = 17, max_batch = 3, max_context = 33 },
  isa = "avx512",
  kernels = {
    { family = "rmsnorm_quant", quantization_type = "ROW", lower_bound = 0.75 },
    { family = "rmsnorm_quant", quantization_type = "STATIC", norm_type = "NO_NORM" },
    { family = "rope", layout = "dBNS", N = 3 },
    { family = "rope", layout = "BNSd", N = 1, contiguous_layout = false },
    { family = "rope_hf", tables = "cache", table_batch = false, backward = true },
    { family = "cumsum", tile_carry_round = true },
  },
}
