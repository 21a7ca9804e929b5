/* prim_attn.c: the scalar reference of kgp_tile_fma_f32 (kgen/abi.h), attention's matrix
 * product on row-major tiles: o [m, d] (+)= p [m, n] @ v [n, d], each element one fmaf chain
 * over n ascending (from o, or from 0 with acc == 0), so every version gives the same bits. */
#include <math.h>

#include "prim.h"

void kgp_tile_fma_f32__scalar(float *o, long ldo, int acc, const float *p, long ldp, long m,
                              const float *v, long ldv, long n, long d)
{
    for (long i = 0; i < m; i++) {
        if (!acc)
            for (long t = 0; t < d; t++)
                o[i * ldo + t] = 0.0f;
        for (long j = 0; j < n; j++)
            for (long t = 0; t < d; t++)
                o[i * ldo + t] = fmaf(p[i * ldp + j], v[j * ldv + t], o[i * ldo + t]);
    }
}
