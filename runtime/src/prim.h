/* prim.h: the runtime's view of the primitive layer: every implementation's symbol, and the
 * CPU features that decide which one runs. */
#ifndef KGEN_RT_PRIM_H
#define KGEN_RT_PRIM_H

#include "kgen/abi.h"

#define KGP_DECLARE_SCALAR(ret, name, params, args) ret kgp_##name##__scalar params;
KGP_LIST(KGP_DECLARE_SCALAR)
#undef KGP_DECLARE_SCALAR

/* kg_exp (kgen/abi.h exp_sum_f32), for the other scalar references (prim_loss.c). */
float kgr_exp_f32(float t);
/* log2 e in fp32, the one constant ce_grad's exponential and its SIMD versions share */
#define KGR_LOG2E 1.44269504088896341f

/* The training rows' exponential (prim_loss.c kgr_exp2_poly and its SIMD versions): 2^y =
 * 2^n p(f), n = floor(y), f = y - n in [0, 1), p(f) = 1 + f (c1 + f (c2 + ...)) in fmaf steps,
 * the coefficients minimax in relative error with p(0) = 1 exact. Degree 3 (within 8.6e-5 of
 * 2^f: 1/23 of a bf16 half-ulp) for bf16 rows, degree 5 (within 8.3e-8) for fp32 rows. */
#define KGR_EXP2_D3 { 6.9511678644539570e-1f, 2.2764499113539550e-1f, 7.7067042072069850e-2f }
#define KGR_EXP2_D5 { 6.9315131180752300e-1f, 2.4016445013606755e-1f, 5.5799913145968064e-2f, \
                      9.0170302844367490e-3f, 1.8671300819070081e-3f }
/* y outside [-KGR_EXP2_CLAMP, KGR_EXP2_CLAMP] gives 0 or inf all the same */
#define KGR_EXP2_CLAMP 200.0f
float kgr_exp2_poly(float y, const float *c, int deg);

/* The avx512 ISA needs all three AVX-512 bits: bf16 for vdpbf16ps, VBMI for the byte permutes
 * that widen fp8 codes (Zen 4 and later, Sapphire Rapids and later; Cooper Lake runs avx2). */
enum { KGR_CPU_AVX2 = 1, KGR_CPU_AVX512 = 2, KGR_CPU_AVX512_BF16 = 4, KGR_CPU_AVX512_VBMI = 8 };
/* The features this CPU and OS support (cpuid and xgetbv). */
int kgr_cpu_features(void);

/* SIMD versions (prim_avx512.c) and the geometry of the weights they read. */
void kgp_gemm_f32__avx512(float *C, long ldc, const float *A, long lda, long M, const kg_wt *W,
                          long n0, long n1);
void kgr_avx512_geometry(int fmt, long *nr, long *kg);
/* The same for AVX2 (prim_avx2_gemm.c). */
void kgp_gemm_f32__avx2(float *C, long ldc, const float *A, long lda, long M, const kg_wt *W,
                        long n0, long n1);
void kgr_avx2_geometry(int fmt, long *nr, long *kg);
/* gemm_bf16 on each ISA: AVX-512 rounds in the tiles' store where it can (prim_avx512.c);
 * elsewhere, and AVX2 always, kgr_gemm_bf16_via_f32 (matmul.c) runs the ISA's gemm_f32 on
 * stripes of C of rows x cols that stay in cache (rows a multiple of the ISA's passes of rows)
 * and rounds each with the ISA's cvt_f32_bf16. */
void kgp_gemm_bf16__avx512(kg_u16 *C, long ldc, const float *A, long lda, long M,
                           const kg_wt *W, long n0, long n1);
void kgp_gemm_bf16__avx2(kg_u16 *C, long ldc, const float *A, long lda, long M, const kg_wt *W,
                         long n0, long n1);
void kgr_gemm_bf16_via_f32(__typeof__(kgp_gemm_f32__scalar) *gemm,
                           __typeof__(kgp_cvt_f32_bf16__scalar) *cvt, long rows, long cols,
                           kg_u16 *C, long ldc, const float *A, long lda, long M,
                           const kg_wt *W, long n0, long n1);

/* The element-wise and reduction primitives with SIMD versions kgp_NAME__avx512
 * (prim_avx512_ew.c) and kgp_NAME__avx2 (prim_avx2.c), both from prim_simd_body.h; each has
 * its scalar reference's type. cumsum_f32 (one left-to-right chain) stays scalar;
 * cumsum_rows_f32 runs a vector of such chains, one row per lane. */
#define KGR_SIMD_EW_LIST(X) \
    X(cvt_bf16_f32) X(cvt_f16_f32) X(cvt_f32_bf16) X(cvt_f32_f16) X(round_bf16_f32)         \
    X(round_f16_f32) X(scale_mul_f32) X(clamp_f32) X(add_f32) X(mul_f32) X(affine_f32)      \
    X(rot_rows_f32) X(rot_pairs_f32) X(rot_hf_f32) X(rot_hf_bwd_f32) X(sumsq_f32)           \
    X(maxabs_f32) X(sum_f32) X(quant_e4m3_f32) X(quant_e4m3fn_f32) X(round_e4m3_f32)        \
    X(round_e4m3fn_f32) X(round_mx_e4m3fn_f32) X(silu_f32) X(gelu_f32) X(gelu_tanh_f32)     \
    X(swish_f32) X(cumsum_rows_f32) X(rot_half_rows_f32) X(rot_half_rows_bf16)              \
    X(scale_round_bf16_f32) X(dot_rows_f32) X(dot_cols_f32) X(axpy_rows_f32) X(max_f32)       \
    X(exp_sum_f32) X(quant_rows_e4m3_f32) X(quant_rows_e4m3_bf16) X(lse_f32) X(lse_bf16)     \
    X(ce_grad_f32) X(ce_grad_bf16) X(dwconv_f32) X(dwconv_bf16) X(glu_bwd_f32) X(transpose_f32)
#define KGR_DECLARE_SIMD(name)                                  \
    __typeof__(kgp_##name##__scalar) kgp_##name##__avx512;      \
    __typeof__(kgp_##name##__scalar) kgp_##name##__avx2;
KGR_SIMD_EW_LIST(KGR_DECLARE_SIMD)
#undef KGR_DECLARE_SIMD

/* The implementation of primitive `name` ("add_f32" or "kgp_add_f32") in ISA `isa`'s table
 * ("scalar", "avx2", "avx512"), whether or not that ISA is active; NULL for an unknown ISA or
 * name, or an ISA this CPU does not run. For tests. */
void *kgr_prim_impl(const char *isa, const char *name);

/* The packed-weight panel width and k-group the active GEMM wants for format fmt. */
void kgr_wt_geometry(int fmt, long *nr, long *kg);

#endif
