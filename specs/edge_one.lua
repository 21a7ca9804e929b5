-- edge_one: every dimension at its smallest: one of everything (head_dim 2: one rotation pair).
return {
  name = "edge_one",
  description = "smallest sizes: 1 wherever allowed",
  model = {
    hidden = 1, intermediate = 1, q_heads = 1, kv_heads = 1, head_dim = 2,
    layers = 1, vocab = 1, rms_eps = 1e-6, rope_theta = 10000,
  },
  dtype = "bf16",
  fp8 = { format = "e4m3" },
  limits = { max_tokens = 1, max_batch = 1, max_context = 1 },
  kernels = {
    { family = "rmsnorm_quant", quantization_type = "ROW" },
    { family = "rmsnorm_quant", quantization_type = "STATIC", norm_type = "NO_NORM" },
    { family = "rope", layout = "BNSd", N = 1 },
    { family = "rope_hf", backward = true },
    { family = "cumsum" },
    -- qkv (H must be a multiple of 128: one actual column of a padded H)
    { family = "qkv", H = 128, hidden_actual = 1, norm_type = "RMS_NORM", fused_rope = true,
      kv_cache = "FLAT" },
    { family = "qkv", variant = "TKG", H = 512, hidden_actual = 1, quantization_type = "MX",
      is_input_swizzled = true, norm_type = "RMS_NORM", fused_residual_add = true },
    -- end qkv
    -- mlp
    -- the smallest legal sizes: H = 128 (512 for MX and STATIC_MX swizzles)
    { family = "mlp", variant = "TKG", H = 128, I = 1 },
    { family = "mlp", variant = "CTE", H = 128, I = 1, quantization_type = "ROW",
      quant_clipping_bound = 0.5 },
    { family = "mlp", variant = "TKG", H = 512, I = 32, quantization_type = "MX",
      weight_dtype = "e5m2" },
    { family = "mlp", variant = "CTE", H = 512, I = 512, quantization_type = "STATIC_MX",
      weight_layout = "swizzled" },
    -- end mlp
    -- output_projection
    { family = "output_projection", variant = "CTE", quantization_type = "STATIC", bias = true },
    { family = "output_projection", variant = "TKG" },
    -- end output_projection
    -- attention_tkg
    { family = "attention_tkg" },
    -- end attention_tkg
    -- attention_block_tkg
    { family = "attention_block_tkg" },
    -- end attention_block_tkg
    -- attention_cte
    { family = "attention_cte" },
    { family = "attention_cte", causal_mask = false, sliding_window = 1 },
    { family = "attention_cte", tp_q = false, tp_k = true, tp_out = true },
    -- end attention_cte
    -- router_topk
    { family = "router_topk", E = 1, k = 1, return_eager_affi = true },
    -- end router_topk
    -- blockwise_mm_backward (one expert, blocks of one slot, overwriting hidden gradients)
    { family = "blockwise_mm_backward", E = 1, block_size = 1,
      is_tensor_update_accumulating = false },
    -- end blockwise_mm_backward
    -- moe_tkg
    { family = "moe_tkg", E = 1, K = 1, is_all_expert = true },
    -- end moe_tkg
    -- moe_cte
    { family = "moe_cte", E = 1, K = 1, B = 1 },
    -- end moe_cte
    -- training kernels
    { family = "cross_entropy_fwd", dtype = "f32" },
    { family = "cross_entropy_bwd", dtype = "f32", reduction = "sum" },
    { family = "depthwise_conv1d", C = 1, W = 1, S = 1 },
    -- end training
  },
}
