/* kgen/kernels.h: the typed signature of each kernel family, the one place they are written.
 * Tensors come first (outputs, then inputs and weights, in reference order), then the per-call
 * sizes. Dtypes and model dimensions are fixed by the kernel's name, so tensors are untyped
 * pointers here. A generated kernel returns KG_OK or KG_EARG. The AOT build checks every
 * generated kernel against these typedefs. */
#ifndef KGEN_KERNELS_H
#define KGEN_KERNELS_H

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

#endif /* KGEN_KERNELS_H */
