/* tests/test_model_quant.c: the model loader's fp8 quantizer (model/quant.c, kgm_quant_e4m3:
 * the runtime's SIMD per-row primitive over the runtime's threads) gives exactly the bits of
 * the scalar quantizer the loader had before (tests/ref/quant_ref.c): codes and scales, for
 * f32, bf16 and fp16 tensors, aligned and not, rows longer than a staging chunk, special
 * values (NaN, inf, zero rows, subnormals), on every ISA this CPU runs, on one and two
 * threads. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/dtype.h"
#include "kgen/kgen.h"
#include "model/model_int.h"
#include "ref/ref.h"

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A weight-like value: mostly small normals, now and then a special. */
static float value(uint64_t *s, int specials)
{
    double u = ((double)(rnd(s) >> 11) + 0.5) / 9007199254740992.0;
    float v = (float)((u - 0.5) * 0.08);
    if (!specials)
        return v;
    switch (rnd(s) % 64) {
    case 0: return NAN;
    case 1: return -INFINITY;
    case 2: return 1e-40f;   /* f32 subnormal */
    case 3: return -0.0f;
    case 4: return 3.0f;     /* a row's outlier */
    default: return v;
    }
}

/* n values of dtype (0 f32, 1 bf16, 2 fp16) at p, from f32 x. */
static void store(unsigned char *p, int dtype, const float *x, long n)
{
    for (long i = 0; i < n; i++) {
        if (dtype == 0) {
            memcpy(p + 4 * i, &x[i], 4);
        } else {
            uint16_t h = dtype == 1 ? kg_f32_to_bf16(x[i]) : kg_f32_to_f16(x[i]);
            memcpy(p + 2 * i, &h, 2);
        }
    }
}

static const kg_dtype DTYPES[3] = { KG_F32, KG_BF16, KG_F16 };

/* One tensor [N, K] at dtype, its data `skew` bytes past an aligned address; kgm_quant_e4m3
 * against the reference, bytes compared returned. */
static long one(int dtype, long N, long K, int skew, int specials, uint64_t seed)
{
    size_t count = (size_t)N * (size_t)K, es = dtype == 0 ? 4 : 2;
    float *x = malloc(count * sizeof *x);
    unsigned char *mem = malloc(count * es + 8), *data = mem + skew;
    unsigned char *q = malloc(count), *qr = malloc(count);
    float *s = malloc((size_t)N * sizeof *s), *sr = malloc((size_t)N * sizeof *sr);
    cr_assert(x && mem && q && qr && s && sr);
    uint64_t st = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < count; i++)
        x[i] = value(&st, specials);
    if (specials && N > 2)
        for (long k = 0; k < K; k++)
            x[K + k] = k & 1 ? -0.0f : 0.0f; /* row 1 all zero: scale 1 */
    store(data, dtype, x, (long)count);
    kgst_tensor t = { "w", DTYPES[dtype], 2, { N, K }, (long)count, data, count * es };
    memset(q, 0x5a, count), memset(s, 0x5a, (size_t)N * sizeof *s);
    cr_assert_eq(kgm_quant_e4m3(&t, N, K, q, s), KG_OK);
    quant_ref_e4m3(qr, sr, data, dtype, N, K);
    cr_assert(memcmp(s, sr, (size_t)N * sizeof *s) == 0,
              "%s [%ld, %ld] skew %d on %s, %d threads: the scales differ from the reference",
              kg_dtype_name(DTYPES[dtype]), N, K, skew, kg_prim_isa(), kg_threads());
    for (size_t i = 0; i < count; i++)
        cr_assert_eq(q[i], qr[i], "%s [%ld, %ld] skew %d on %s, %d threads: code %zu is 0x%02x, "
                     "want 0x%02x", kg_dtype_name(DTYPES[dtype]), N, K, skew, kg_prim_isa(),
                     kg_threads(), i, q[i], qr[i]);
    free(x), free(mem), free(q), free(qr), free(s), free(sr);
    return (long)count;
}

Test(model_quant, bit_identical_to_the_scalar_quantizer, .timeout = 120)
{
    static const char *const isas[] = { "scalar", "avx2", "avx512" };
    static const long shapes[][2] = { { 1, 1 }, { 3, 17 }, { 37, 100 }, { 130, 513 },
                                       { 64, 4096 }, { 3, 70001 } /* past a staging chunk */ };
    long compared = 0;
    int isas_run = 0;
    for (int i = 0; i < 3; i++) {
        if (kg_prim_select(isas[i]) != KG_OK)
            continue; /* not on this CPU */
        isas_run++;
        for (int threads = 1; threads <= 2; threads++) {
            kg_set_threads(threads);
            for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++)
                for (int dtype = 0; dtype < 3; dtype++)
                    for (int skew = 0; skew < 2; skew++) /* aligned; one byte off */
                        compared += one(dtype, shapes[sh][0], shapes[sh][1], skew, (int)sh & 1,
                                        (uint64_t)(sh * 100 + dtype * 10 + skew + 1));
        }
    }
    kg_prim_select(NULL);
    cr_assert_geq(isas_run, 1);
    cr_assert_gt(compared, 0, "nothing was compared");
}

/* A tensor that is not N x K floats is refused. */
Test(model_quant, refuses_a_mismatched_tensor)
{
    float w[6] = { 0 }, s[3];
    unsigned char q[6];
    kgst_tensor t = { "w", KG_F32, 2, { 2, 3 }, 6, w, sizeof w };
    cr_assert_eq(kgm_quant_e4m3(&t, 3, 3, q, s), KG_ESHAPE);
    t.dtype = KG_I32;
    cr_assert_eq(kgm_quant_e4m3(&t, 2, 3, q, s), KG_ESHAPE);
}
