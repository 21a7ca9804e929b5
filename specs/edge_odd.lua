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
  kernels = {
    { family = "rmsnorm_quant", quantization_type = "ROW", lower_bound = 0.75 },
    { family = "rmsnorm_quant", quantization_type = "STATIC", norm_type = "NO_NORM" },
    { family = "rope", layout = "dBNS", N = 3 },
    { family = "rope", layout = "BNSd", N = 1, contiguous_layout = false },
    { family = "rope_hf", tables = "cache", table_batch = false, backward = true },
    { family = "cumsum", tile_carry_round = true },
    -- qkv (H must be a multiple of 128: the odd hidden size is hidden_actual of a padded H)
    { family = "qkv", H = 2176, hidden_actual = 2063, norm_type = "RMS_NORM", bias = true,
      fused_rope = true, kv_cache = "BLOCK", block_size = 5, fp8_min = -100 },
    { family = "qkv", variant = "TKG", H = 2176, quantization_type = "STATIC",
      weight_dtype = "e4m3fn", norm_type = "LAYER_NORM", layer_norm_bias = true,
      fused_residual_add = true, output_layout = "NBSd" },
    { family = "qkv", H = 2560, quantization_type = "MX", weight_layout = "MX_INTERLEAVED",
      mx_static_dequant = true, norm_type = "RMS_NORM_SKIP_GAMMA", hidden_actual = 2063 },
    -- end qkv
    -- mlp
    -- H must be a multiple of 128 (512 for MX); I = 5003 and I = 96 leave remainders
    { family = "mlp", variant = "CTE", H = 384, normalization_type = "LAYER_NORM",
      layer_norm_bias = true, skip_gate_proj = true, activation_fn = "GELU", up_bias = true,
      down_bias = true },
    { family = "mlp", variant = "TKG", H = 384, quantization_type = "ROW",
      gate_clamp_upper_limit = 0.5, up_clamp_lower_limit = -0.5, activation_fn = "Swish" },
    { family = "mlp", variant = "CTE", H = 384, quantization_type = "STATIC",
      activation_fn = "GELU_Tanh_Approx", gate_bias = true },
    { family = "mlp", variant = "TKG", H = 512, I = 96, quantization_type = "MX",
      weight_dtype = "e2m1", is_input_swizzled = true, normalization_type = "RMS_NORM",
      gate_bias = true, up_bias = true },
    -- end mlp
    -- output_projection
    -- N*D = 102: no MX (needs N*D % 32) and no x4 words, so STATIC_MX reads the kn layout
    { family = "output_projection", variant = "CTE", bias = true, out_dtype = "f32" },
    { family = "output_projection", variant = "CTE", quantization_type = "STATIC_MX",
      weight_layout = "kn", attn_layout = "DBNS" },
    { family = "output_projection", variant = "TKG", quantization_type = "STATIC",
      weight_dtype = "e4m3fn", attn_layout = "BSND" },
    { family = "output_projection", variant = "TKG", quantization_type = "ROW", bias = true },
    -- end output_projection
    -- attention_tkg
    { family = "attention_tkg", s_active = 7, tp_k_prior = false, use_pos_id = true,
      sliding_window = true, sink = true },
    { family = "attention_tkg", s_active = 2, fuse_rope = true, use_pos_id = true },
    -- end attention_tkg
    -- attention_block_tkg (hidden 2063, 3 query heads of 34)
    { family = "attention_block_tkg", S_tkg = 3, rope_contiguous_layout = false,
      update_cache = false, bias_out = true },
    { family = "attention_block_tkg", S_tkg = 2, W_out = false, rmsnorm_X_enabled = true,
      X_hidden_dim_actual = 2001, rmsnorm_QK_enabled = true, rmsnorm_QK_gamma = false },
    -- end attention_block_tkg
    -- attention_cte (G = 3 query heads per kv head, d = 34, 17 queries: tile remainders)
    { family = "attention_cte", scale = 0.25, sink = true },
    { family = "attention_cte", sliding_window = 5, sequence_packing = true },
    -- end attention_cte
    -- router_topk (k = E = 7; indices not stored)
    { family = "router_topk", E = 7, k = 7, act_fn = "SIGMOID", router_pre_norm = false,
      skip_store_expert_index = true, return_eager_affi = true },
    { family = "router_topk", E = 13, k = 5, bias = true, x_layout = "HT" },
    -- end router_topk
    -- moe_tkg (K = E = 3, I = 17)
    { family = "moe_tkg", I = 17, E = 3, K = 3, expert_affinities_scaling_mode = "NO_SCALE",
      activation_fn = "GELU_Tanh_Approx", out_dtype = "f32" },
    -- end moe_tkg
    -- moe_cte (E = 3, K = 3, I = 17, blocks of 5, skip_token, overwriting updates)
    { family = "moe_cte", I = 17, E = 3, K = 3, B = 5, skip_token = true,
      is_tensor_update_accumulating = false, expert_affinities_scaling_mode = "NO_SCALE",
      activation_function = "GELU_Tanh_Approx", dtype = "f32" },
    -- end moe_cte
    -- training kernels (vocabulary 1001 in chunks of 333: a remainder of 2; a stride past
    -- the filter and asymmetric padding)
    { family = "cross_entropy_fwd", dtype = "bf16", chunk_size = 333 },
    { family = "cross_entropy_bwd", dtype = "bf16", lse_dtype = "f32" },
    { family = "depthwise_conv1d", C = 5, W = 37, S = 3, stride = 4, pad_l = 2, pad_r = 1 },
    -- end training
    -- blockwise_mm_backward (H 37, I 19, 3 experts, blocks of 5, Swish with all four clamps,
    -- biases, fp16 activations and f32 weights; -1 padding)
    { family = "blockwise_mm_backward", H = 37, I = 19, E = 3, block_size = 5,
      activation_type = "Swish", gate_clamp_lower_limit = -2, gate_clamp_upper_limit = 2.5,
      up_clamp_lower_limit = -1.5, up_clamp_upper_limit = 3, bias = true, skip_token = true,
      weight_dtype = "f32" },
    -- end blockwise_mm_backward
  },
}
