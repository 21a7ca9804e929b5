-- bwmm: the kernel behind issue #16's blockwise MM backward speed figure, at Mixtral-8x7B's
-- expert shapes (H 4096, I 14336), 512 tokens: four experts of 128 tokens each (N = 4 blocks of
-- B = 128, every slot a token: `kgen bench`'s seeded token_position_to_id are 0, 1, ... and
-- block_to_expert 0, 1, ...), bf16 activations, weights and weight gradients. Per expert the
-- four products (dM, dX, dW_down, dW_gu) are 12 * 128 * H * I flops: 361 GFLOP a call. A bench
-- spec only: not bundled, nothing generated from it is checked in (the bench_spec_bwmm CTest
-- keeps it valid).
return {
  name = "bench_bwmm",
  description = "blockwise MoE MLP backward at Mixtral-8x7B expert shapes, 512 tokens",
  model = {
    hidden = 4096, intermediate = 14336, q_heads = 32, kv_heads = 8, head_dim = 128,
    layers = 32, vocab = 32000, rms_eps = 1e-5, rope_theta = 1000000,
  },
  dtype = "bf16",
  fp8 = { format = "e4m3", max = 240 },
  limits = { max_tokens = 513, max_batch = 1, max_context = 1024 },
  kernels = {
    { family = "blockwise_mm_backward", E = 4, block_size = 128, N = 4, rows = 513 },
  },
}
