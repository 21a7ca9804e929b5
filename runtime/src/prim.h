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

/* The packed-weight panel width and k-group the active GEMM wants for format fmt. */
void kgr_wt_geometry(int fmt, long *nr, long *kg);

#endif
