-- megakernel: the kernels behind issue #14's megakernel speed figures, at Llama-3-8B's layer
-- shapes (32 query / 8 KV heads, d 128, H 4096, I 14336) on one rank, B = 1: the decode
-- megakernel transformer_tkg over 1 and 2 layers at context 1024 (S_ctx = 1024: each call
-- reads every layer's weights and 1024 KV rows of each KV head). `kgen bench` times each
-- against the chain of single-op kernels on the same layers. A bench spec only: not bundled,
-- nothing generated from it is checked in (the bench_spec_megakernel CTest keeps it valid).
local model = {
  hidden = 4096, intermediate = 14336, q_heads = 32, kv_heads = 8, head_dim = 128,
  layers = 32, vocab = 128256, rms_eps = 1e-5, rope_theta = 500000,
}

local kernels = {}
for _, layers in ipairs { 1, 2 } do
  kernels[#kernels + 1] = { family = "transformer_tkg", num_layers = layers,
                            kv_heads = model.kv_heads, B = 1, S_ctx = 1024 }
end

return {
  name = "bench_megakernel",
  description = "Llama-3-8B decode layers through the megakernel at context 1024",
  model = model,
  dtype = "bf16",
  fp8 = { format = "e4m3", max = 240 },
  limits = { max_tokens = 1, max_batch = 1, max_context = 1024 },
  kernels = kernels,
}
