/* bench_gemm.h: the reference GEMMs `kgen bench --gemm` times (bench_gemm.c). */
#ifndef KGEN_BENCH_GEMM_H
#define KGEN_BENCH_GEMM_H

#include <regex.h>
#include <stddef.h>

#include "kgen_bench.h"

enum { KGC_BENCH_GEMMS = 6 };

/* Times the runtime's GEMM on each reference shape whose name ("gemm_bf16_m1_k4096_n14336")
 * re matches (every one if re is NULL) into r[0 .. *n), *n <= KGC_BENCH_GEMMS: name, cost, GEMM
 * shape for the OpenBLAS comparison, median seconds. Returns KG_OK, or a KG_* status with the
 * reason in err. */
int kgc_bench_gemms(const kgb_options *o, const regex_t *re, kgb_result *r, int *n, char *err,
                    size_t errlen);

#endif
