/* tests/test_prim_attn.c: attention's tile-level primitives (runtime/src/prim_attn*.c).
 * kgp_tile_fma_f32: every ISA's version against the scalar reference, bit for bit (each element
 * is one fmaf chain), on shapes that leave remainders in the 6-row and 8- and 16-column
 * register tiles, with row strides wider than the rows, accumulating and not; and the scalar
 * reference against the plain sum it rounds (the chain's result within a few ulp of a
 * double-precision sum). Decode's kgp_qk_* and kgp_pv_* on f32, bf16, fp16 and e4m3 rows:
 * every ISA bit for bit against the reference (a NaN only as a NaN: its payload may differ),
 * on shapes that leave remainders in the 4-row, 2-key, 16- and 8-element steps and the
 * 64-row value groups, every e4m3 code among the keys and values; the references against fp32
 * rows widened first (pv_*: the bits of kgp_axpy_rows_f32; qk_*: of kgp_qk_f32) and kgp_qk_f32
 * against a double sum. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/dtype.h"
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

/* ---- decode's passes on stored rows: kgp_qk_*, kgp_pv_* ------------------------------------ */

typedef void qk_fn(float *s, long lds, const float *q, long ldq, long m, const void *k, long ldk,
                   long n, long d);
typedef void pv_fn(float *o, long ldo, const float *p, long ldp, long m, const void *v, long ldv,
                   long n, long d);

enum { F32, BF16, F16, E4M3 };
static const char *const fmt_name[] = { "f32", "bf16", "fp16", "e4m3" };
static const size_t fmt_size[] = { 4, 2, 2, 1 };

/* n stored elements of format fmt from values(n, seed); e4m3 rows hold every code in turn
 * (inf and NaN among them) when all_codes is 1, else the finite codes of the values. */
static void *stored(int fmt, long n, unsigned seed, int all_codes)
{
    float *x = values(n, seed);
    void *r = malloc((size_t)(n > 0 ? n : 1) * fmt_size[fmt]);
    for (long i = 0; i < n; i++) {
        if (fmt == F32)
            ((float *)r)[i] = x[i];
        else if (fmt == BF16)
            ((kg_u16 *)r)[i] = kg_f32_to_bf16(x[i]);
        else if (fmt == F16)
            ((kg_u16 *)r)[i] = kg_f32_to_f16(x[i]);
        else
            ((kg_u8 *)r)[i] = all_codes == 1 ? (kg_u8)(i * 37 + seed) : kg_f32_to_e4m3(x[i] * 64);
    }
    free(x);
    return r;
}

static float widened(int fmt, const void *x, long i)
{
    if (fmt == F32)
        return ((const float *)x)[i];
    if (fmt == BF16)
        return kg_bf16_to_f32(((const kg_u16 *)x)[i]);
    if (fmt == F16)
        return kg_f16_to_f32(((const kg_u16 *)x)[i]);
    return kg_e4m3_to_f32(((const kg_u8 *)x)[i]);
}

/* The same bits, or both NaN. */
static int same(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0 || (a != a && b != b);
}

static const long pass_shapes[][3] = { /* m, n, d */
    { 1, 1, 1 }, { 4, 64, 128 }, { 8, 64, 128 }, { 5, 7, 17 }, { 3, 3, 24 }, { 2, 2, 8 },
    { 9, 33, 136 }, { 7, 5, 7 }, { 4, 0, 16 }, { 1, 9, 64 }, { 6, 4, 40 }, { 4, 150, 40 },
};
#define NSHAPES (sizeof pass_shapes / sizeof pass_shapes[0])

static const char *qk_names[] = { "qk_f32", "qk_bf16", "qk_f16", "qk_e4m3" };
static const char *pv_names[] = { NULL, "pv_bf16", "pv_f16", "pv_e4m3" };

/* fn against the scalar reference on one shape: s starts as NaN bytes and keeps them outside
 * the [m, n] block; returns the number of scores compared. all_codes 2: finite codes, and the
 * other operand (q, p) holds 2^125 and -2^124, finite values the SIMD versions may not scale by
 * 2^8 (their finite-e4m3 shortcut, prim_attn_avx2.c). */
static long qk_same(qk_fn *fn, qk_fn *ref, const char *isa, int fmt, long m, long n, long d,
                    int all_codes)
{
    long ldq = d + 3, ldk = d + 5, lds = n + 1;
    float *q = values(m * ldq, 11);
    void *k = stored(fmt, n * ldk, 12, all_codes);
    if (all_codes == 2 && m * d > 1)
        q[0] = 0x1p125f, q[(m - 1) * ldq + d - 1] = -0x1p124f;
    float *got = malloc((size_t)(m * lds + 1) * sizeof *got);
    float *want = malloc((size_t)(m * lds + 1) * sizeof *want);
    memset(got, 0xff, (size_t)(m * lds + 1) * sizeof *got);
    memset(want, 0xff, (size_t)(m * lds + 1) * sizeof *want);
    fn(got, lds, q, ldq, m, k, ldk, n, d);
    ref(want, lds, q, ldq, m, k, ldk, n, d);
    for (long i = 0; i < m * lds; i++)
        cr_assert(same(got[i], want[i]), "%s qk %s m=%ld n=%ld d=%ld: s[%ld][%ld] = %a, the "
                  "reference %a", isa, fmt_name[fmt], m, n, d, i / lds, i % lds, got[i], want[i]);
    free(q), free(k), free(got), free(want);
    return m * n;
}

static long pv_same(pv_fn *fn, pv_fn *ref, const char *isa, int fmt, long m, long n, long d,
                    int all_codes)
{
    long ldo = d + 3, ldp = n + 1, ldv = d + 5;
    float *p = values(m * ldp, 21), *got = values(m * ldo, 23), *want = values(m * ldo, 23);
    void *v = stored(fmt, n * ldv, 22, all_codes);
    if (all_codes == 2 && m * n > 1)
        p[0] = 0x1p125f, p[(m - 1) * ldp + n - 1] = -0x1p124f;
    fn(got, ldo, p, ldp, m, v, ldv, n, d);
    ref(want, ldo, p, ldp, m, v, ldv, n, d);
    for (long i = 0; i < m * ldo; i++)
        cr_assert(same(got[i], want[i]), "%s pv %s m=%ld n=%ld d=%ld: o[%ld][%ld] = %a, the "
                  "reference %a", isa, fmt_name[fmt], m, n, d, i / ldo, i % ldo, got[i], want[i]);
    free(p), free(v), free(got), free(want);
    return m * d;
}

Test(prim_attn, decode_passes_every_isa_matches_the_scalar_bits)
{
    static const char *isas[] = { "avx2", "avx512" };
    long compared = 0;
    for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++) {
        if (!kgr_prim_impl(isas[k], "qk_f32"))
            continue; /* this CPU does not run that ISA */
        for (int fmt = F32; fmt <= E4M3; fmt++) {
            qk_fn *qk = (qk_fn *)kgr_prim_impl(isas[k], qk_names[fmt]);
            qk_fn *qk_ref = (qk_fn *)kgr_prim_impl("scalar", qk_names[fmt]);
            cr_assert(qk && qk_ref && qk != qk_ref, "%s runs the scalar %s", isas[k],
                      qk_names[fmt]);
            pv_fn *pv = pv_names[fmt] ? (pv_fn *)kgr_prim_impl(isas[k], pv_names[fmt]) : NULL;
            pv_fn *pv_ref = pv ? (pv_fn *)kgr_prim_impl("scalar", pv_names[fmt]) : NULL;
            cr_assert(!pv_names[fmt] || (pv && pv_ref && pv != pv_ref), "%s runs the scalar %s",
                      isas[k], pv_names[fmt]);
            for (int all = 0; all < (fmt == E4M3 ? 3 : 1); all++)
                for (size_t s = 0; s < NSHAPES; s++) {
                    const long *sh = pass_shapes[s];
                    compared += qk_same(qk, qk_ref, isas[k], fmt, sh[0], sh[1], sh[2], all);
                    if (pv)
                        compared += pv_same(pv, pv_ref, isas[k], fmt, sh[0], sh[1], sh[2], all);
                }
        }
    }
    cr_assert_gt(compared, 0, "no SIMD ISA ran (the tests need avx2)");
}

/* The references on stored rows are the fp32 ones on the rows widened first: qk_* the bits of
 * qk_f32, pv_* those of axpy_rows_f32. */
Test(prim_attn, decode_passes_read_the_widened_rows)
{
    long m = 5, n = 21, d = 133, ld = d + 2;
    float *q = values(m * ld, 31), *o = values(m * ld, 33), *p = values(m * n, 34);
    float *kw = malloc((size_t)(n * ld) * sizeof *kw);
    float *want = malloc((size_t)(m * ld) * sizeof *want);
    float *got = malloc((size_t)(m * ld) * sizeof *got);
    for (int fmt = BF16; fmt <= E4M3; fmt++) {
        void *k = stored(fmt, n * ld, 32, fmt == E4M3);
        for (long i = 0; i < n * ld; i++)
            kw[i] = widened(fmt, k, i);
        ((qk_fn *)kgr_prim_impl("scalar", qk_names[fmt]))(got, n, q, ld, m, k, ld, n, d);
        kgp_qk_f32__scalar(want, n, q, ld, m, kw, ld, n, d);
        for (long i = 0; i < m * n; i++)
            cr_assert(same(got[i], want[i]), "qk %s: s[%ld] = %a, on widened rows %a",
                      fmt_name[fmt], i, got[i], want[i]);
        memcpy(got, o, (size_t)(m * ld) * sizeof *o);
        memcpy(want, o, (size_t)(m * ld) * sizeof *o);
        ((pv_fn *)kgr_prim_impl("scalar", pv_names[fmt]))(got, ld, p, n, m, k, ld, n, d);
        kgp_axpy_rows_f32__scalar(want, ld, p, n, m, kw, ld, n, d);
        for (long i = 0; i < m * ld; i++)
            cr_assert(same(got[i], want[i]), "pv %s: o[%ld] = %a, axpy_rows_f32 %a",
                      fmt_name[fmt], i, got[i], want[i]);
        free(k);
    }
    free(q), free(o), free(p), free(kw), free(want), free(got);
}

/* qk_f32 is the dot product: within its rounding (d fmas and 7 adds) of a double sum. */
Test(prim_attn, qk_reference_is_the_dot_product)
{
    static const long ds[] = { 1, 7, 8, 24, 128, 133 };
    for (size_t c = 0; c < sizeof ds / sizeof ds[0]; c++) {
        long m = 3, n = 4, d = ds[c];
        float *q = values(m * d, 41), *k = values(n * d, 42), s[12];
        kgp_qk_f32__scalar(s, n, q, d, m, k, d, n, d);
        for (long i = 0; i < m; i++)
            for (long j = 0; j < n; j++) {
                double want = 0, mag = 0;
                for (long t = 0; t < d; t++) {
                    want += (double)q[i * d + t] * k[j * d + t];
                    mag += fabs((double)q[i * d + t] * k[j * d + t]);
                }
                cr_assert(fabs(s[i * n + j] - want) <= (d + 8) * 0x1p-24 * mag,
                          "d=%ld s[%ld][%ld] = %g, sum %g", d, i, j, s[i * n + j], want);
            }
        free(q), free(k);
    }
}
