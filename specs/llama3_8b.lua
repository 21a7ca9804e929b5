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
  kernels = {
    -- the input norm of every layer, feeding fp8 ROW projections
    { family = "rmsnorm_quant", quantization_type = "ROW" },
    { family = "rmsnorm_quant", quantization_type = "STATIC" },
    -- rotary embedding of the q and the k heads, [B, heads, S, head_dim]
    { family = "rope", layout = "BNSd", N = model.q_heads },
    { family = "rope", layout = "BNSd", N = model.kv_heads },
    { family = "rope_hf" },
    { family = "cumsum" },
    -- qkv
    -- prefill (CTE, nominal T = 128): the RMS input norm fused; bf16 weights, or fp8 ROW
    -- weights with the RoPE fused
    { family = "qkv", B = 1, S = 128, norm_type = "RMS_NORM" },
    { family = "qkv", B = 1, S = 128, quantization_type = "ROW", norm_type = "RMS_NORM",
      fused_rope = true },
    -- decode (TKG): nominal B*S = 4*32 = 128 tokens, the most upstream's dispatcher sends it
    { family = "qkv", variant = "TKG", S = 32, norm_type = "RMS_NORM" },
    { family = "qkv", variant = "TKG", S = 32, quantization_type = "ROW", norm_type = "RMS_NORM" },
    -- end qkv
    -- mlp
    -- the feed-forward block, 128 nominal tokens (kgen run --tokens 1 / 128 times decode and
    -- prefill); CTE ROW reads the packed rows of rmsnorm_quant ROW above
    { family = "mlp", variant = "CTE", normalization_type = "RMS_NORM", T = 128 },
    { family = "mlp", variant = "CTE", quantization_type = "ROW", T = 128 },
    { family = "mlp", variant = "TKG", normalization_type = "RMS_NORM", T = 128 },
    { family = "mlp", variant = "TKG", quantization_type = "ROW", normalization_type = "RMS_NORM",
      T = 128 },
    -- end mlp
    -- output_projection
    -- attention output projection; nominal sizes: prefill T = 128; decode B*S = 4*32 = 128
    -- tokens, the most upstream's dispatcher sends it
    { family = "output_projection", variant = "CTE", B = 1, S = 128 },
    { family = "output_projection", variant = "CTE", quantization_type = "STATIC", B = 1, S = 128 },
    { family = "output_projection", variant = "TKG", B = 4, S = 32 },
    { family = "output_projection", variant = "TKG", quantization_type = "ROW", B = 4, S = 32 },
    -- end output_projection
    -- attention_tkg
    -- decode attention of a whole layer in one call (8 KV heads of 4 query heads), s_active 1,
    -- nominal context 8192 (the cost block counts the KV bytes streamed)
    { family = "attention_tkg", n_kv = model.kv_heads, B = 1, use_pos_id = true },
    { family = "gen_mask_tkg", B = 1 },
    -- end attention_tkg
    -- attention_block_tkg
    -- a whole decode attention block of one KV head and its 4 query heads (a TP-8 rank's
    -- share): input RMSNorm, QKV, RoPE, attention, cache write, output projection
    { family = "attention_block_tkg", S_tkg = 1, rmsnorm_X_enabled = true,
      rmsnorm_X_eps = model.rms_eps },
    -- the same over an fp8 e4m3 KV cache in blocks of 32 slots
    { family = "attention_block_tkg", S_tkg = 1, rmsnorm_X_enabled = true,
      rmsnorm_X_eps = model.rms_eps, kv_dtype = "e4m3", block_len = 32 },
    -- end attention_block_tkg
    -- transformer_tkg
    -- the decode megakernel: 2 whole layers on one rank (8 KV heads of 4 query heads each,
    -- the full MLP), batch 1, 8192 context slots; kgen bench times it against the chain of
    -- its attention_block_tkg and mlp kernels on the same layers
    { family = "transformer_tkg", num_layers = 2, kv_heads = model.kv_heads, B = 1 },
    -- end transformer_tkg
    -- attention_cte
    -- prefill attention: causal, GQA 32 q / 8 kv heads, scale 1/sqrt(128), nominal S = 512
    { family = "attention_cte", scale = model.head_dim ^ -0.5, B = 1, Sq = 512,
      Sk = 512 },
    -- end attention_cte
  },
}
