-- A bad-input case (tests/bad/run.sh): a valid spec whose nominal sizes pass kgen's cap on
-- argument memory (8 GiB unless KGEN_MAX_ARG_BYTES says otherwise), though not the spec
-- validator's 2^53 bytes a tensor: `kgen run` and `kgen bench` must refuse it before they
-- allocate, not be killed by the OOM killer.
return {
  name = "over_cap",
  model = {
    hidden = 4096, intermediate = 128, q_heads = 2, kv_heads = 1, head_dim = 32,
    layers = 1, vocab = 16, rms_eps = 1e-5, rope_theta = 10000,
  },
  dtype = "f32",
  fp8 = { format = "e4m3" },
  -- BAD: 2^21 tokens of hidden 4096 in f32: the input alone is 32 GiB
  limits = { max_tokens = 2097152, max_batch = 1, max_context = 16 },
  kernels = { { family = "rmsnorm_quant" } },
}
