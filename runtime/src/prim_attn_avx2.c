/* prim_attn_avx2.c: kgp_tile_fma_f32 on AVX2 + FMA: register tiles of R rows (up to 6) by 16
 * columns, 2R accumulators each one lane-wise fma chain over n ascending (vfmadd rounds once,
 * as fmaf), so the bits are the scalar reference's. Each step loads two vectors of a v row and
 * broadcasts R values of p: 2R FMAs for R + 2 loads, enough independent chains to keep both FMA
 * pipes busy at R = 6. Columns past the last whole 8 go to the reference. */
#include <immintrin.h>

#include "prim.h"
#include "prim_attn.h"

/* Rows [0, R) x columns [t, t + 8 * V) of o, V = 1 or 2 vectors. */
static inline __attribute__((always_inline)) void tile(float *o, long ldo, int from_o,
    const float *p, long ldp, const float *v, long ldv, long n, long t, int R, int V)
{
    __m256 acc[6][2];
#pragma GCC unroll 6
    for (int a = 0; a < R; a++)
#pragma GCC unroll 2
        for (int b = 0; b < V; b++)
            acc[a][b] = from_o ? _mm256_loadu_ps(o + a * ldo + t + 8 * b) : _mm256_setzero_ps();
    for (long j = 0; j < n; j++) {
        __m256 w0 = _mm256_loadu_ps(v + j * ldv + t);
        __m256 w1 = V > 1 ? _mm256_loadu_ps(v + j * ldv + t + 8) : w0;
#pragma GCC unroll 6
        for (int a = 0; a < R; a++) {
            __m256 x = _mm256_broadcast_ss(p + a * ldp + j);
            acc[a][0] = _mm256_fmadd_ps(x, w0, acc[a][0]);
            if (V > 1)
                acc[a][1] = _mm256_fmadd_ps(x, w1, acc[a][1]);
        }
    }
#pragma GCC unroll 6
    for (int a = 0; a < R; a++)
#pragma GCC unroll 2
        for (int b = 0; b < V; b++)
            _mm256_storeu_ps(o + a * ldo + t + 8 * b, acc[a][b]);
}

/* All whole vectors of columns for R rows. */
static inline __attribute__((always_inline)) void rows(float *o, long ldo, int acc,
    const float *p, long ldp, const float *v, long ldv, long n, long d, int R)
{
    long t = 0;
    for (; t + 16 <= d; t += 16)
        tile(o, ldo, acc, p, ldp, v, ldv, n, t, R, 2);
    if (t + 8 <= d)
        tile(o, ldo, acc, p, ldp, v, ldv, n, t, R, 1);
}

void kgp_tile_fma_f32__avx2(float *o, long ldo, int acc, const float *p, long ldp, long m,
                            const float *v, long ldv, long n, long d)
{
    long i = 0;
    for (; i + 6 <= m; i += 6)
        rows(o + i * ldo, ldo, acc, p + i * ldp, ldp, v, ldv, n, d, 6);
    switch (m - i) { /* the last 1 to 5 rows in one tile */
    case 5: rows(o + i * ldo, ldo, acc, p + i * ldp, ldp, v, ldv, n, d, 5); break;
    case 4: rows(o + i * ldo, ldo, acc, p + i * ldp, ldp, v, ldv, n, d, 4); break;
    case 3: rows(o + i * ldo, ldo, acc, p + i * ldp, ldp, v, ldv, n, d, 3); break;
    case 2: rows(o + i * ldo, ldo, acc, p + i * ldp, ldp, v, ldv, n, d, 2); break;
    case 1: rows(o + i * ldo, ldo, acc, p + i * ldp, ldp, v, ldv, n, d, 1); break;
    default: break;
    }
    long t = d / 8 * 8;
    if (t < d)
        kgp_tile_fma_f32__scalar(o + t, ldo, acc, p, ldp, m, v + t, ldv, n, d - t);
}
