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
  kernels = {
    { family = "rmsnorm_quant", quantization_type = "ROW" },
    { family = "rmsnorm_quant", quantization_type = "STATIC" },
    { family = "rope", layout = "BNSd", N = 4 },
    { family = "rope", layout = "dBNS", N = 2, contiguous_layout = false },
    { family = "rope_hf" },
    { family = "cumsum" },
    -- qkv
    { family = "qkv", norm_type = "RMS_NORM", fused_rope = true },
    { family = "qkv", norm_type = "RMS_NORM", quantization_type = "STATIC", kv_cache = "FLAT" },
    { family = "qkv", variant = "TKG", S = 64, norm_type = "RMS_NORM", fused_residual_add = true },
    -- end qkv
    -- mlp
    { family = "mlp", variant = "TKG", normalization_type = "RMS_NORM", fused_residual_add = true,
      store_fused_add_result = true },
    { family = "mlp", variant = "CTE", normalization_type = "RMS_NORM" },
    { family = "mlp", variant = "CTE", quantization_type = "ROW" },
    -- end mlp
    -- output_projection
    { family = "output_projection", variant = "CTE" },
    { family = "output_projection", variant = "CTE", quantization_type = "STATIC", bias = true },
    { family = "output_projection", variant = "CTE", quantization_type = "STATIC_MX" },
    { family = "output_projection", variant = "CTE", quantization_type = "MX", attn_layout = "BSND" },
    { family = "output_projection", variant = "CTE", quantization_type = "MX", mx_prequant = true,
      weight_dtype = "e4m3fn" },
    { family = "output_projection", variant = "TKG", quantization_type = "ROW", transpose_out = true,
      lnc = 2, bias = true },
    -- end output_projection
    -- attention_tkg
    { family = "attention_tkg", n_kv = 2, s_active = 3, use_pos_id = true, fuse_rope = true,
      sink = true },
    { family = "attention_tkg", block_len = 16, use_pos_id = true, sliding_window = true },
    { family = "gen_mask_tkg", s_active = 3, sliding_window = true },
    { family = "gen_mask_tkg", active_mask = false },
    -- end attention_tkg
    -- attention_block_tkg (one KV head of 2 query heads, as the golden model's GQA ratio)
    { family = "attention_block_tkg", S_tkg = 2, rmsnorm_X_enabled = true, rmsnorm_X_eps = 1e-5,
      softmax_scale = 0.1 },
    { family = "attention_block_tkg", bias_qkv = true, rmsnorm_QK_enabled = true,
      rmsnorm_QK_post_rope_enabled = true, sink = true, K_cache_transposed = true },
    { family = "attention_block_tkg", skip_attention = true, update_cache = false,
      rope_contiguous_layout = false },
    { family = "attention_block_tkg", block_len = 16, S_tkg = 3 },
    { family = "attention_block_tkg", kv_dtype = "e4m3", update_cache = false },
    { family = "attention_block_tkg", quantization_type_qkv = "STATIC",
      quantization_type_out = "STATIC", bias_out = true },
    -- end attention_block_tkg
    -- transformer_tkg (the decode megakernel: 2 layers; 3 layers of 2 KV heads, layer 1's MLP
    -- ROW fp8, 2 new tokens, the caches only read)
    { family = "transformer_tkg", num_layers = 2 },
    { family = "transformer_tkg", num_layers = 3, kv_heads = 2, fp8_layers = 2, S_tkg = 2,
      update_cache = false },
    -- end transformer_tkg
    -- attention_cte
    { family = "attention_cte", scale = 0.125 },
    { family = "attention_cte", causal_mask = false, scale = 0.125, sink = true },
    { family = "attention_cte", sliding_window = 64, sink = true },
    { family = "attention_cte", scale = 0.125, cache_softmax = true, softmax_dtype = "bf16" },
    -- end attention_cte
    -- lm_head
    { family = "lm_head", weight_dtype = "f32", store_normed = true },
    { family = "lm_head", weight_dtype = "e4m3" },
    -- end lm_head
    -- router_topk (8 and 6 experts: softmax ACT1 with the norm, sigmoid ACT2 on x [H, T])
    { family = "router_topk", E = 8, k = 2, norm_topk_prob = true, bias = true,
      return_eager_affi = true },
    { family = "router_topk", E = 6, k = 3, act_fn = "SIGMOID", router_pre_norm = false,
      x_layout = "HT", out_dtype = "bf16" },
    -- end router_topk
    -- moe_tkg (4 experts of I 688, selective with biases and a clamp; 8 experts in two ranks,
    -- all-expert masked, fp8 ROW weights; MX fp4 weights)
    { family = "moe_tkg", E = 4, K = 2, gate_up_bias = true, down_bias = true,
      gate_clamp_upper_limit = 7 },
    { family = "moe_tkg", E = 8, E_L = 4, K = 2, is_all_expert = true,
      mask_unselected_experts = true, quantization_type = "ROW", affinity_dtype = "bf16",
      activation_fn = "Swish" },
    -- MX experts (fp4, upstream's MX layouts need H % 512 == 0: H 512 here)
    { family = "moe_tkg", H = 512, I = 96, E = 4, K = 2, quantization_type = "MX",
      weight_dtype = "e2m1", gate_up_bias = true },
    -- MX all-expert on pre-quantized input (upstream's hidden_input_scale)
    { family = "moe_tkg", H = 512, I = 64, E = 4, K = 2, quantization_type = "MX",
      is_all_expert = true, mask_unselected_experts = true, mx_prequant = true,
      activation_fn = "Swish" },
    -- end moe_tkg
    -- moe_cte (8 experts top-2 in blocks of 16, SiLU POST_SCALE; 4 experts dropping, fp8
    -- weights, Swish PRE_SCALE with biases, clamps and the checkpoints; MX fp8)
    { family = "moe_cte", E = 8, K = 2, B = 16, conditions = true },
    { family = "moe_cte", E = 4, K = 2, B = 8, capacity_dropping = true, weight_dtype = "e4m3",
      activation_function = "Swish", expert_affinities_scaling_mode = "PRE_SCALE", bias = true,
      gate_clamp_upper_limit = 7, up_clamp_lower_limit = -7, checkpoint_activation = true },
    -- MX fp8 experts (upstream's MX layouts: H 512), multiply_on_I with the checkpoints
    { family = "moe_cte", H = 512, I = 96, E = 4, K = 2, B = 8, quantization_type = "MX",
      weight_dtype = "e4m3fn", bias = true, expert_affinity_multiply_on_I = true,
      checkpoint_activation = true },
    -- end moe_cte
    -- training kernels (cross entropy over the vocabulary, depthwise conv1d)
    { family = "cross_entropy_fwd", chunk_size = 200 },
    { family = "cross_entropy_bwd" },
    { family = "cross_entropy_bwd", reduction = "sum", inplace = false },
    { family = "depthwise_conv1d", C = 16, W = 64, S = 4, pad_l = 3 },
    -- end training
  },
}
