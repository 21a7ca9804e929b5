/* prim.h: the runtime's view of the primitive layer: every implementation's symbol, and the
 * CPU features that decide which one runs. */
#ifndef KGEN_RT_PRIM_H
#define KGEN_RT_PRIM_H

#include "kgen/abi.h"

#define KGP_DECLARE_SCALAR(ret, name, params, args) ret kgp_##name##__scalar params;
KGP_LIST(KGP_DECLARE_SCALAR)
#undef KGP_DECLARE_SCALAR

enum { KGR_CPU_AVX2 = 1, KGR_CPU_AVX512 = 2, KGR_CPU_AVX512_BF16 = 4 };
/* The features this CPU and OS support (cpuid and xgetbv). */
int kgr_cpu_features(void);

/* SIMD versions (prim_avx512.c) and the geometry of the weights they read. */
void kgp_gemm_f32__avx512(float *C, long ldc, const float *A, long lda, long M, const kg_wt *W,
                          long n0, long n1);
void kgr_avx512_geometry(int fmt, long *nr, long *kg);

/* The packed-weight panel width and k-group the active GEMM wants for format fmt. */
void kgr_wt_geometry(int fmt, long *nr, long *kg);

#endif
