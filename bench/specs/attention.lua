-- attention: the kernels behind issue #12's attention speed figures (scripts/bench-targets.sh),
-- at Llama-3-8B's shapes (32 query / 8 KV heads, d 128): decode attention of a whole layer in
-- one call, B = 1, at context 1024, 4096 and 8192 (full_sprior = the context, so each kernel's
-- nominal call reads exactly that many KV rows) with a bf16 and an fp8 (e4m3) KV cache; and
-- causal prefill attention at S = 2048. A bench spec only: not bundled, nothing generated from
-- it is checked in (the bench_spec CTest keeps it valid).
local model = {
  hidden = 4096, intermediate = 14336, q_heads = 32, kv_heads = 8, head_dim = 128,
  layers = 32, vocab = 128256, rms_eps = 1e-5, rope_theta = 500000,
}

local kernels = {}
for _, kv in ipairs { "bf16", "e4m3" } do
  for _, ctx in ipairs { 1024, 4096, 8192 } do
    kernels[#kernels + 1] = { family = "attention_tkg", n_kv = model.kv_heads, B = 1,
                              use_pos_id = true, kv_dtype = kv, full_sprior = ctx }
  end
end
kernels[#kernels + 1] = { family = "attention_cte", scale = model.head_dim ^ -0.5, B = 1,
                          Sq = 2048, Sk = 2048 }

return {
  name = "bench_attention",
  description = "Llama-3-8B attention at the issue's speed-figure shapes",
  model = model,
  dtype = "bf16",
  fp8 = { format = "e4m3", max = 240 },
  limits = { max_tokens = 2048, max_batch = 1, max_context = 8192 },
  kernels = kernels,
}
