-- training: the kernels behind issue #16's speed figures: cross entropy forward and backward
-- over T = 4096 positions of Llama-3's 128256-word vocabulary in bf16 (the backward in place,
-- reduction mean), and a Mamba-style depthwise conv1d (C 4096, width 4, T 4096, bf16). A
-- bench spec only: not bundled, nothing generated from it is checked in (the
-- bench_spec_training CTest keeps it valid). Run: kgen bench bench/specs/training.lua --threads 1
return {
  name = "bench_training",
  description = "cross entropy at V 128256 and a Mamba-style depthwise conv1d, T 4096, bf16",
  model = {
    hidden = 4096, intermediate = 14336, q_heads = 32, kv_heads = 8, head_dim = 128,
    layers = 1, vocab = 128256, rms_eps = 1e-5, rope_theta = 500000,
  },
  dtype = "bf16",
  fp8 = { format = "e4m3", max = 240 },
  limits = { max_tokens = 4096, max_batch = 1, max_context = 4096 },
  kernels = {
    { family = "cross_entropy_fwd" },
    { family = "cross_entropy_bwd" },
    { family = "depthwise_conv1d", C = 4096, W = 4096, S = 4, pad_l = 3 },
  },
}
