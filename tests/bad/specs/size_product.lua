-- A bad-input case (tests/bad/run.sh): a small valid spec but for the line marked BAD.
return {
  name = "bad",
  model = {
    -- BAD: hidden and max_tokens at 2^31-1 each: rmsnorm_quant's output is 2^64 bytes
    hidden = 2147483647, intermediate = 128, q_heads = 2, kv_heads = 1, head_dim = 32,
    layers = 1, vocab = 16, rms_eps = 1e-5, rope_theta = 10000,
  },
  dtype = "f32",
  fp8 = { format = "e4m3" },
  limits = { max_tokens = 2147483647, max_batch = 1, max_context = 16 },
  kernels = { { family = "rmsnorm_quant" } },
}
