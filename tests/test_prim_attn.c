/* tests/test_prim_attn.c: kgp_tile_fma_f32 (runtime/src/prim_attn*.c), attention's tile product:
 * every ISA's version against the scalar reference, bit for bit (each element is one fmaf
 * chain), on shapes that leave remainders in the 6-row and 8- and 16-column register tiles, with
 * row strides wider than the rows, accumulating and not; and the scalar reference against the
 * plain sum it rounds (the chain's result within a few ulp of a double-precision sum). */
#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "prim.h"

typedef void tile_fn(float *o, long ldo, int acc, const float *p, long ldp, long m,
                     const float *v, long ldv, long n, long d);

static float *values(long n, unsigned seed)
{
    float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof *x);
    for (long i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        x[i] = (float)((int)(seed >> 16 & 0x7fff) - 16384) / 8192.0f;
    }
    return x;
}

/* One shape through fn and the scalar reference; o starts as values (acc) or as NaN bytes
 * (acc == 0: o must only be written). Outside the [m, d] block, o keeps its bytes. */
static void same_as_scalar(tile_fn *fn, const char *isa, long m, long n, long d, int acc)
{
    long ldo = d + 3, ldp = n + 1, ldv = d + 5;
    float *p = values(m * ldp, 1), *v = values(n * ldv, 2), *o0 = values(m * ldo, 3);
    float *got = malloc((size_t)(m * ldo + 1) * sizeof *got);
    float *want = malloc((size_t)(m * ldo + 1) * sizeof *want);
    memcpy(got, o0, (size_t)(m * ldo) * sizeof *got);
    if (!acc)
        for (long i = 0; i < m; i++)
            memset(got + i * ldo, 0xff, (size_t)d * sizeof *got);
    memcpy(want, got, (size_t)(m * ldo) * sizeof *got);
    fn(got, ldo, acc, p, ldp, m, v, ldv, n, d);
    kgp_tile_fma_f32__scalar(want, ldo, acc, p, ldp, m, v, ldv, n, d);
    for (long i = 0; i < m * ldo; i++)
        cr_assert(memcmp(&got[i], &want[i], sizeof got[i]) == 0,
                  "%s m=%ld n=%ld d=%ld acc=%d: o[%ld][%ld] = %a, the reference %a", isa, m, n,
                  d, acc, i / ldo, i % ldo, got[i], want[i]);
    free(p), free(v), free(o0), free(got), free(want);
}

Test(prim_attn, every_isa_matches_the_scalar_bits)
{
    static const char *isas[] = { "avx2", "avx512" };
    static const long shapes[][3] = { /* m, n, d */
        { 1, 1, 1 }, { 6, 64, 128 }, { 64, 64, 128 }, { 64, 128, 64 }, { 7, 5, 17 },
        { 13, 33, 34 }, { 5, 1, 8 }, { 2, 70, 24 }, { 11, 9, 7 }, { 64, 0, 16 },
    };
    int ran = 0;
    for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++) {
        tile_fn *fn = (tile_fn *)kgr_prim_impl(isas[k], "tile_fma_f32");
        if (!fn)
            continue; /* this CPU does not run that ISA */
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int acc = 0; acc < 2; acc++)
                same_as_scalar(fn, isas[k], shapes[s][0], shapes[s][1], shapes[s][2], acc);
        cr_assert_neq((void *)fn, kgr_prim_impl("scalar", "tile_fma_f32"),
                      "%s runs the scalar tile product", isas[k]);
        ran++;
    }
    cr_assert_gt(ran, 0, "no SIMD ISA ran (the tests need avx2)");
}

/* The reference itself: o = o0 + p @ v within the rounding of a chain of n fmas. */
Test(prim_attn, scalar_reference_is_the_product)
{
    long m = 5, n = 37, d = 11;
    float *p = values(m * n, 7), *v = values(n * d, 8), *o = values(m * d, 9);
    float *o0 = malloc((size_t)(m * d) * sizeof *o0);
    memcpy(o0, o, (size_t)(m * d) * sizeof *o);
    kgp_tile_fma_f32__scalar(o, d, 1, p, n, m, v, d, n, d);
    for (long i = 0; i < m; i++)
        for (long t = 0; t < d; t++) {
            double want = o0[i * d + t], mag = fabs(want);
            for (long j = 0; j < n; j++) {
                want += (double)p[i * n + j] * v[j * d + t];
                mag += fabs((double)p[i * n + j] * v[j * d + t]);
            }
            cr_assert(fabs(o[i * d + t] - want) <= n * 0x1p-23 * mag, "o[%ld][%ld] = %g, sum %g",
                      i, t, o[i * d + t], want);
        }
    kgp_tile_fma_f32__scalar(o, d, 0, p, n, m, v, d, n, d);
    for (long t = 0; t < d; t++) {
        double want = 0;
        for (long j = 0; j < n; j++)
            want += (double)p[j] * v[j * d + t];
        cr_assert(fabs(o[t] - want) <= 1e-4 * (1 + fabs(want)), "acc = 0 starts from 0");
    }
    free(p), free(v), free(o), free(o0);
}
