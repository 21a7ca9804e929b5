-- A bad-input case (tests/bad/run.sh): a small valid spec but for the line marked BAD.
return {
  name = "bad",
  model = {
    hidden = 64, intermediate = 128, q_heads = 2, kv_heads = 1, head_dim = 32,
    layers = 1, vocab = 16, rms_eps = 1e-5, rope_theta = 10000,
  },
  dtype = "f32",
  fp8 = { format = "e4m3", max = 1 / 0 --[[ BAD: inf ]] },
  limits = { max_tokens = 8, max_batch = 1, max_context = 16 },
  kernels = { { family = "rmsnorm_quant" } },
}
