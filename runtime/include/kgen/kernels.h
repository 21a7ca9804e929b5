/* kgen/kernels.h: the typed signature of each kernel family, the one place they are written.
 * Tensors come first (outputs, then inputs and weights, in reference order), then the per-call
 * sizes. Dtypes and model dimensions are fixed by the kernel's name, so tensors are untyped
 * pointers here. A generated kernel returns KG_OK or KG_EARG. The AOT build checks every
 * generated kernel against these typedefs. */
#ifndef KGEN_KERNELS_H
#define KGEN_KERNELS_H

#include "kgen/abi.h" /* kg_wt: weights are packed handles (kg_wt_pack), never raw arrays */

/* rmsnorm_quant: out [rows, H+4] (ROW: fp8 values then the fp32 dequant scale's 4 bytes) or
 * [rows, H] (STATIC) fp8; hidden [rows, H]; gamma [H] (RMS_NORM; else may be NULL);
 * input_dequant_scale: fp32, element 0 read (STATIC; else may be NULL). */
typedef int kg_rmsnorm_quant_fn(void *out, const void *hidden, const void *gamma,
                                const void *input_dequant_scale, long rows);

/* rope: layout dBNS: x_out, x_in [d, B, N, S], cos, sin [d/2, B, S];
 *       layout BNSd: x_out, x_in [B, N, S, d], cos, sin [B, S, d/2]. */
typedef int kg_rope_fn(void *x_out, const void *x_in, const void *cos, const void *sin,
                       long B, long S);

/* rope_hf: q_out, q [B, Hq, S, d]; k_out, k [B, Hk, S, d]; tables of T >= S rows:
 * cos, sin [B, T, d] (or [T, d] without table_batch); with tables=cache, `cos` is the packed
 * rope_cache [B, T, 2d] (cos then sin in each row) and `sin` is ignored. */
typedef int kg_rope_hf_fn(void *q_out, void *k_out, const void *q, const void *k,
                          const void *cos, const void *sin, long B, long S, long T);

/* cumsum: out, x [rows, H]; inclusive prefix sum along H. */
typedef int kg_cumsum_fn(void *out, const void *x, long rows);

/* ---- dense projections (shared/reference/{qkv,mlp,output_projection}.md) -----------------
 * Weights are kg_wt handles packed once from their stored layout; they stay in their stored
 * format (bf16, fp8, fp4 with MX scales) and are decoded inside the GEMM primitive. Arguments an
 * option does not use may be NULL. Per-tensor and per-column dequant scales and the activation
 * scales are plain fp32 arrays (a [128, N] scale passes its first row). */

/* qkv (variant CTE or TKG): out [B, S, I] (BSD) or [nq+2nkv, B, S, d] (NBSd), or with the fp8
 * KV-cache write [B, S, nq*d] (the Q part; K and V go to k_cache / v_cache, updated in place:
 * flat [B, cache_len, nkv*d] or block [cache_len = num_blocks, block_size, nkv*d]);
 * fused_hidden [B, S, H] (TKG fused add); input [B, S, H]; weight W [H, I]; w_scale, in_scale,
 * bias [I], mlp_prev, attention_prev [B, S, H], gamma, beta [H], cos, sin [B, S, d],
 * k_scale, v_scale (element 0), slot_mapping [B, S] int32. */
typedef int kg_qkv_fn(void *out, void *fused_hidden, void *k_cache, void *v_cache,
                      const void *input, const kg_wt *weight, const void *w_scale,
                      const void *in_scale, const void *bias, const void *mlp_prev,
                      const void *attention_prev, const void *gamma, const void *beta,
                      const void *cos, const void *sin, const void *k_scale,
                      const void *v_scale, const void *slot_mapping, long B, long S,
                      long cache_len);

/* mlp (variant CTE or TKG): out [T, H] in the output dtype; add_out [T, H] (the fused-add sum,
 * when stored); hidden [T, H] (CTE ROW: [T, H+4] fp8 with the packed row scale); add [T, H];
 * gate_w, up_w W [H, I], down_w W [I, H]; gate/up/down_scale (STATIC: element 0; ROW: per
 * column); gate_up_in_scale, down_in_scale (element 0); gamma, beta [H]; gate_bias, up_bias [I],
 * down_bias [H]. T = B*S tokens. */
typedef int kg_mlp_fn(void *out, void *add_out, const void *hidden, const void *add,
                      const kg_wt *gate_w, const kg_wt *up_w, const kg_wt *down_w,
                      const void *gate_scale, const void *up_scale, const void *down_scale,
                      const void *gate_up_in_scale, const void *down_in_scale,
                      const void *gamma, const void *beta, const void *gate_bias,
                      const void *up_bias, const void *down_bias, long T);

/* output_projection (variant CTE or TKG): out [B, S, H] (TKG: [B*S, H], or TRANSPOSE_OUT);
 * attention in the variant's layout (CTE [B, N, D, S], TKG [D, B, N, S]); weight W [N*D, H];
 * w_scale, in_scale (STATIC element 0; ROW per column; MX pre-quantized input: the uint8
 * activation scales [B, N*D/32, S]); bias [H]. */
typedef int kg_output_projection_fn(void *out, const void *attention, const kg_wt *weight,
                                    const void *w_scale, const void *in_scale,
                                    const void *bias, long B, long S);

#endif /* KGEN_KERNELS_H */
