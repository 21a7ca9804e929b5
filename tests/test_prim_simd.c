/* test_prim_simd.c: every SIMD table entry against the scalar reference (prim_scalar.c), for
 * every ISA this CPU runs. Element-wise primitives must give exactly the scalar bits (kgen/abi.h)
 * on odd sizes, misaligned buffers and special values (+-0, subnormals, NaN payloads, inf,
 * bf16/fp16 rounding ties, fp16 overflow), and must not write past n; reductions agree within
 * fp32 reordering and propagate NaN and inf. The fp8 quantizers are also swept over rounding
 * ties, and cumsum_rows_f32 must give each row's scalar chain. Also the KGEN_ISA selection.
 * The scalar references' accuracy against libm is test_prim_accuracy.c. */
#include <criterion/criterion.h>

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/dtype.h"
#include "kgen/kgen.h"
#include "prim.h"

static const char *const ISAS[] = { "avx2", "avx512" };
static const long SIZES[] = { 0, 1, 3, 15, 16, 17, 31, 33, 100, 1023 };
enum { NMAX = 1023, PAD = 40, CAP = 2 * NMAX + 2 * PAD };

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float normal(uint64_t *s)
{
    double u1 = ((double)(rnd(s) >> 11) + 0.5) / 9007199254740992.0;
    double u2 = (double)(rnd(s) >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* One value from a mix of ordinary numbers and the cases conversions get wrong. */
static float special(uint64_t *s)
{
    uint32_t r = (uint32_t)rnd(s), sign = (uint32_t)(rnd(s) & 1) << 31;
    uint32_t e;
    switch (rnd(s) % 16) {
    case 0: return normal(s);
    case 1: return normal(s) * 1000.0f;
    case 2: return from_bits(sign);                                   /* +-0 */
    case 3: return from_bits(sign | (r & 0x7fffff));                  /* fp32 subnormal */
    case 4: return from_bits(sign | 0x7f800000 | (r & 0x7fffff) | 1); /* NaN, any payload */
    case 5: return from_bits(sign | 0x7f800000);                      /* inf */
    case 6:                                                           /* bf16 ties and neighbours */
        e = 1 + r % 253;
        return from_bits(sign | e << 23 | (r & 0x7f0000) | (0x7fff + rnd(s) % 3));
    case 7: /* fp16 normal-range ties and neighbours */
        e = 113 + r % 30;
        return from_bits(sign | e << 23 | (r & 0x7fe000) | (0xfff + rnd(s) % 3));
    case 8: /* fp16 subnormal range (2^-25 .. 2^-14), ties included */
        e = 102 + r % 12;
        return from_bits(sign | e << 23 | (rnd(s) & 1 ? (r & 0x7fe000) | 0x1000 : r & 0x7fffff));
    case 9: /* around fp16's largest finite 65504 and its overflow threshold 65520 */
        return from_bits(sign | (0x477fe000 + r % 0x4000));
    case 10: /* around fp32's largest, which rounds to bf16 inf */
        return from_bits(sign | (0x7f7f0000 + (r & 0xffff)));
    case 11: return from_bits(sign | 1);                              /* smallest subnormal */
    case 12: return normal(s) * 1e-30f;
    case 13: /* e4m3 normal-range ties (low 20 bits 0x80000) and neighbours, 2^-6 .. 2^9 */
        e = 121 + r % 16;
        return from_bits(sign | e << 23 | (r & 0x700000) | (0x7ffff + rnd(s) % 3));
    case 14: /* e4m3 subnormal-range ties: odd multiples of 2^-10, and a neighbour either side */
        return from_bits(sign | (to_bits((float)(2 * (r % 8) + 1) * 0x1p-10f) + rnd(s) % 3 - 1));
    default: return from_bits(r);                                     /* any bits */
    }
}

static float xs[4][CAP], yr[2][CAP], yg[2][CAP];
static kg_u16 hs[CAP], hr[CAP], hg[CAP];
static kg_u8 qr[CAP], qg[CAP];

/* Inputs start one float past an aligned boundary, so no load is aligned. */
static void fill(uint64_t seed, int plain)
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    for (int k = 0; k < 4; k++)
        for (long i = 0; i < CAP; i++)
            xs[k][i] = plain ? normal(&s) : special(&s);
    for (long i = 0; i < CAP; i++)
        hs[i] = (kg_u16)rnd(&s);
    memset(yr, 0x5a, sizeof yr), memset(yg, 0x5a, sizeof yg);
    memset(hr, 0x5a, sizeof hr), memset(hg, 0x5a, sizeof hg);
    memset(qr, 0x5a, sizeof qr), memset(qg, 0x5a, sizeof qg);
}

/* Compares n + pad elements: the bits of the first n, and the untouched canary after them.
 * With `loose` (fp32 arithmetic), any NaN matches any NaN: when two operands are NaN, IEEE
 * leaves open whose payload survives, and the scalar build (gcc may swap the operands of a
 * commutative multiply, tcc does not) fixes no order either. Everything else is bit-exact. */
static void same_pad(const char *isa, const char *name, long n, long pad, const void *got,
                     const void *want, size_t esize, int loose)
{
    const unsigned char *g = got, *w = want;
    for (long i = 0; i < n + pad; i++)
        if (memcmp(g + i * esize, w + i * esize, esize) != 0) {
            float gf = 0, wf = 0;
            if (loose)
                memcpy(&gf, g + i * esize, 4), memcpy(&wf, w + i * esize, 4);
            if (loose && i < n && isnan(gf) && isnan(wf))
                continue;
            uint32_t gb = 0, wb = 0;
            memcpy(&gb, g + i * esize, esize), memcpy(&wb, w + i * esize, esize);
            cr_assert_fail("%s %s n=%ld: element %ld is 0x%x, want 0x%x%s", isa, name, n, i, gb,
                           wb, i >= n ? " (written past n)" : "");
        }
}

#define same(isa, name, n, got, want, esize) same_pad(isa, name, n, PAD, got, want, esize, 0)
#define same_arith(isa, name, n, got, want) same_pad(isa, name, n, PAD, got, want, 4, 1)
/* in place: the canary past n is the input itself */
#define same_inplace(isa, name, n, got, want, esize) same_pad(isa, name, n, 0, got, want, esize, 0)
#define same_arith_inplace(isa, name, n, got, want) same_pad(isa, name, n, 0, got, want, 4, 1)

#define X0 (xs[0] + 1)
#define X1 (xs[1] + 1)
#define X2 (xs[2] + 1)
#define X3 (xs[3] + 1)

/* ---- one checker per primitive: run scalar and SIMD on the same inputs, compare ---------- */

typedef void check_fn(const char *isa, void *impl, long n, uint64_t seed);

#define CVT_FROM_U16(name)                                                                     \
    static void check_##name(const char *isa, void *impl, long n, uint64_t seed)               \
    {                                                                                          \
        fill(seed, 0);                                                                         \
        kgp_##name##__scalar(yr[0] + 1, hs + 1, n);                                            \
        ((__typeof__(kgp_##name##__scalar) *)impl)(yg[0] + 1, hs + 1, n);                      \
        same(isa, #name, n, yg[0] + 1, yr[0] + 1, 4);                                          \
    }
CVT_FROM_U16(cvt_bf16_f32)
CVT_FROM_U16(cvt_f16_f32)

/* fp8 codes to fp32 against the format's definition (kgen/dtype.h), every code among them */
#define CVT_FROM_FP8(name, def)                                                                \
    static void check_##name(const char *isa, void *impl, long n, uint64_t seed)               \
    {                                                                                          \
        fill(seed, 0);                                                                         \
        for (long i = 0; i < CAP; i++)                                                         \
            qr[i] = (kg_u8)(i < 256 ? i : hs[i]);                                              \
        for (long i = 0; i < n; i++)                                                           \
            yr[0][1 + i] = def(qr[1 + i]);                                                     \
        ((__typeof__(kgp_##name##__scalar) *)impl)(yg[0] + 1, qr + 1, n);                      \
        same(isa, #name, n, yg[0] + 1, yr[0] + 1, 4);                                          \
    }
CVT_FROM_FP8(cvt_e4m3_f32, kg_e4m3_to_f32)
CVT_FROM_FP8(cvt_e4m3fn_f32, kg_e4m3fn_to_f32)

/* The 4H unswizzle against its definition read the other way round: stored index i = q*H/4 +
 * 128j + p goes to logical 512j + 4p + q. H = 512, 1024 or 1536 by n. */
static void check_unswizzle_4h_f32(const char *isa, void *impl, long n, uint64_t seed)
{
    long H = 512 * (1 + n % 3);
    fill(seed, 0);
    for (long i = 0; i < H; i++) {
        long q = i / (H / 4), j = i % (H / 4) / 128, p = i % 128;
        yr[0][1 + 512 * j + 4 * p + q] = X0[i];
    }
    ((__typeof__(kgp_unswizzle_4h_f32__scalar) *)impl)(yg[0] + 1, X0, H);
    same(isa, "unswizzle_4h_f32", H, yg[0] + 1, yr[0] + 1, 4);
}

#define CVT_TO_U16(name)                                                                       \
    static void check_##name(const char *isa, void *impl, long n, uint64_t seed)               \
    {                                                                                          \
        fill(seed, 0);                                                                         \
        kgp_##name##__scalar(hr + 1, X0, n);                                                   \
        ((__typeof__(kgp_##name##__scalar) *)impl)(hg + 1, X0, n);                             \
        same(isa, #name, n, hg + 1, hr + 1, 2);                                                \
    }
CVT_TO_U16(cvt_f32_bf16)
CVT_TO_U16(cvt_f32_f16)

/* y = f(x) with x in X0; also in place (y == x) */
#define UNARY(name, plain, loose, ...) \
    static void check_##name(const char *isa, void *impl, long n, uint64_t seed) \
    { \
        __typeof__(kgp_##name##__scalar) *f = impl; \
        fill(seed, plain); \
        kgp_##name##__scalar(yr[0] + 1, X0, ##__VA_ARGS__, n); \
        f(yg[0] + 1, X0, ##__VA_ARGS__, n); \
        same_pad(isa, #name, n, PAD, yg[0] + 1, yr[0] + 1, 4, loose); \
        memcpy(yg[1], xs[0], sizeof yg[1]); \
        f(yg[1] + 1, yg[1] + 1, ##__VA_ARGS__, n); \
        same_pad(isa, #name " in place", n, 0, yg[1] + 1, yr[0] + 1, 4, loose); \
    }
UNARY(round_bf16_f32, 0, 0)
UNARY(round_f16_f32, 0, 0)
UNARY(clamp_f32, 0, 0, -1.5f, 2.25f)
UNARY(silu_f32, 1, 1)
UNARY(gelu_f32, 1, 1)
UNARY(gelu_tanh_f32, 1, 1)
UNARY(swish_f32, 1, 1)

/* the gated activation's backward: SiLU and Swish, no clamp and four clamps with inputs sitting
 * exactly on them (no gradient there); every output the scalar bits */
static float glu_h[2][CAP];

static void check_glu_bwd_f32(const char *isa, void *impl, long n, uint64_t seed)
{
    __typeof__(kgp_glu_bwd_f32__scalar) *f = impl;
    static const float lim[2][4] = { { -INFINITY, INFINITY, -INFINITY, INFINITY },
                                     { -0.5f, 0.75f, -0.625f, 1.0f } };
    for (int k = 0; k < 4; k++) {
        const float *l = lim[k / 2];
        fill(seed + (uint64_t)k, 1);
        for (long i = 0; i < n; i += 7) /* on the bounds */
            X1[i] = l[i % 2 ? 1 : 0], X2[i] = l[i % 2 ? 3 : 2];
        memset(glu_h, 0x5a, sizeof glu_h);
        kgp_glu_bwd_f32__scalar(yr[0] + 1, yr[1] + 1, glu_h[0] + 1, X0, X1, X2, l[0], l[1], l[2],
                                l[3], k % 2, n);
        f(yg[0] + 1, yg[1] + 1, glu_h[1] + 1, X0, X1, X2, l[0], l[1], l[2], l[3], k % 2, n);
        same(isa, "glu_bwd_f32 dg", n, yg[0] + 1, yr[0] + 1, 4);
        same(isa, "glu_bwd_f32 du", n, yg[1] + 1, yr[1] + 1, 4);
        same(isa, "glu_bwd_f32 h", n, glu_h[1] + 1, glu_h[0] + 1, 4);
        for (long i = 0; i < n; i += 7) {
            cr_assert(yg[0][1 + i] == 0.0f || k < 2, "%s glu_bwd_f32: gate on a bound", isa);
            cr_assert(yg[1][1 + i] == 0.0f || k < 2, "%s glu_bwd_f32: up on a bound", isa);
        }
    }
}

/* y [n, 3] = x [3, n] transposed (and a [1, n] row to a column), against the definition; then
 * whole SIMD blocks and the edges past them: shapes around multiples of 8 and 16 and past the
 * 64-wide tiles, both strides wider than the matrix, every element of y's rows checked (the
 * gaps between them untouched) */
static void check_transpose_f32(const char *isa, void *impl, long n, uint64_t seed)
{
    __typeof__(kgp_transpose_f32__scalar) *f = impl;
    long rows = n < 600 ? 3 : 1; /* 3 x n fits in CAP floats */
    fill(seed, 0);
    f(yg[0] + 1, rows, X0, n, rows, n);
    for (long r = 0; r < rows; r++)
        for (long c = 0; c < n; c++)
            yr[0][1 + c * rows + r] = X0[r * n + c];
    same(isa, "transpose_f32", n * rows, yg[0] + 1, yr[0] + 1, 4);
    static const long shapes[][2] = { { 8, 8 },  { 16, 16 }, { 19, 23 }, { 70, 20 }, { 20, 70 },
                                      { 9, 65 }, { 65, 9 },   { 1, 17 },  { 17, 1 } };
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        long r = shapes[k][0], c = shapes[k][1], ldx = c + 3, ldy = r + 5;
        cr_assert(r * ldx < CAP && c * ldy + PAD < CAP, "test bug: [%ld, %ld]", r, c);
        memset(yg, 0x5a, sizeof yg), memset(yr, 0x5a, sizeof yr);
        f(yg[0] + 1, ldy, X0, ldx, r, c);
        for (long i = 0; i < r; i++)
            for (long j = 0; j < c; j++)
                yr[0][1 + j * ldy + i] = X0[i * ldx + j];
        same(isa, "transpose_f32 (strided)", c * ldy, yg[0] + 1, yr[0] + 1, 4);
    }
}

/* clamp with NaN or crossed bounds, scale_mul with and without g */
static void check_clamp_odd(const char *isa, void *impl, long n, uint64_t seed)
{
    __typeof__(kgp_clamp_f32__scalar) *f = impl;
    static const float b[][2] = { { NAN, 1.0f }, { -1.0f, NAN }, { 2.0f, -2.0f }, { 0.0f, -0.0f } };
    for (int k = 0; k < 4; k++) {
        fill(seed + k, 0);
        kgp_clamp_f32__scalar(yr[0] + 1, X0, b[k][0], b[k][1], n);
        f(yg[0] + 1, X0, b[k][0], b[k][1], n);
        same(isa, "clamp_f32 odd bounds", n, yg[0] + 1, yr[0] + 1, 4);
    }
}

static void check_scale_mul_f32(const char *isa, void *impl, long n, uint64_t seed)
{
    __typeof__(kgp_scale_mul_f32__scalar) *f = impl;
    fill(seed, 0);
    kgp_scale_mul_f32__scalar(yr[0] + 1, X0, 0.37f, X1, n);
    f(yg[0] + 1, X0, 0.37f, X1, n);
    same_arith(isa, "scale_mul_f32", n, yg[0] + 1, yr[0] + 1);
    kgp_scale_mul_f32__scalar(yr[1] + 1, X0, 3.1f, 0, n);
    f(yg[1] + 1, X0, 3.1f, 0, n);
    same_arith(isa, "scale_mul_f32 g=0", n, yg[1] + 1, yr[1] + 1);
}

#define BINARY(name)                                                                           \
    static void check_##name(const char *isa, void *impl, long n, uint64_t seed)               \
    {                                                                                          \
        __typeof__(kgp_##name##__scalar) *f = impl;                                            \
        fill(seed, 0);                                                                         \
        kgp_##name##__scalar(yr[0] + 1, X0, X1, n);                                            \
        f(yg[0] + 1, X0, X1, n);                                                               \
        same_arith(isa, #name, n, yg[0] + 1, yr[0] + 1);                                          \
    }
BINARY(add_f32)
BINARY(mul_f32)

static void check_affine_f32(const char *isa, void *impl, long n, uint64_t seed)
{
    __typeof__(kgp_affine_f32__scalar) *f = impl;
    for (int k = 0; k < 4; k++) {
        const float *g = k & 1 ? X1 : 0, *b = k & 2 ? X2 : 0;
        fill(seed + k, k == 3);
        kgp_affine_f32__scalar(yr[0] + 1, X0, 0.3f, 1.7f, g, b, n);
        f(yg[0] + 1, X0, 0.3f, 1.7f, g, b, n);
        static const char *const what[] = { "affine_f32 g=b=0", "affine_f32 b=0",
                                            "affine_f32 g=0", "affine_f32" };
        same_arith(isa, what[k], n, yg[0] + 1, yr[0] + 1);
    }
}

/* Scales and bounds for the fp8 quantizers: 3 moves the inputs off the ties case 13 of special()
 * makes, 1 and 0.5 keep them; bounds at the format's largest value, at its overflow threshold
 * (248 -> inf, 464 -> NaN), none (inf, so huge values and inf reach the encoder), crossed
 * (m < 0: -m > m) and zero (the bounds -0 and +0). */
enum { NQ = 6 };
static const float QSCALE[NQ] = { 3.0f, 1.0f, 0.5f, 1.0f, 1.0f, 1.0f };
static const float QMAX_E4M3[NQ] = { 240.0f, 248.0f, INFINITY, 1e30f, -3.0f, 0.0f };
static const float QMAX_E4M3FN[NQ] = { 448.0f, 464.0f, INFINITY, 1e30f, -3.0f, 0.0f };

#define QUANT(name, maxes)                                                                     \
    static void check_##name(const char *isa, void *impl, long n, uint64_t seed)               \
    {                                                                                          \
        for (int k = 0; k < NQ; k++) {                                                         \
            fill(seed + k, 0);                                                                 \
            kgp_##name##__scalar(qr + 1, X0, QSCALE[k], maxes[k], n);                          \
            ((__typeof__(kgp_##name##__scalar) *)impl)(qg + 1, X0, QSCALE[k], maxes[k], n);    \
            same(isa, #name, n, qg + 1, qr + 1, 1);                                            \
        }                                                                                      \
    }
QUANT(quant_e4m3_f32, QMAX_E4M3)
QUANT(quant_e4m3fn_f32, QMAX_E4M3FN)

/* Row r of x [2, k]: its largest magnitude a first, then values whose quotient by the row's
 * scale a / 240 lands on e4m3 rounding ties or an fp32 ulp either side: there x * (1 / s) in
 * place of x / s flips codes. */
static void near_ties(float *x, long k, uint64_t *seed)
{
    for (long r = 0; r < 2; r++) {
        float a = 1.0f + (float)(rnd(seed) % 100000) * 1e-3f, s = a / 240.0f;
        x[r * k] = a;
        for (long j = 1; j < k; j++) {
            int c = 8 + (int)(rnd(seed) % 0x6e); /* normal codes 8..0x75 and the next */
            float t = 0.5f * (kg_e4m3_to_f32((uint8_t)c) + kg_e4m3_to_f32((uint8_t)(c + 1)));
            x[r * k + j] = from_bits(to_bits(t * s) + (uint32_t)(rnd(seed) % 3) - 1);
        }
    }
}

/* A loader's per-row quantizer (2 rows of n): special values (scales of inf and NaN rows),
 * plain rows with a NaN somewhere (passed over by the row's max) and the largest value last
 * (in the scalar tail), an all-zero row (+-0: scale 1) beside a plain one, tiny values, and
 * quotients at rounding ties. Codes and scales exact, nothing written past either. */
static void check_quant_rows(const char *isa, void *impl, long n, uint64_t seed, int bf16)
{
    enum { ROWS = 2 };
    long k = n, all = ROWS * n;
    for (int v = 0; v < 5; v++) {
        fill(seed + (uint64_t)v, v != 0);
        float *x = X0;
        kg_u16 *h = hs + 1;
        if (v == 1 && k > 0) {
            x[rnd(&seed) % (uint64_t)all] = rnd(&seed) & 1 ? -NAN : NAN;
            x[2 * k - 1] = 1000.0f;
        }
        for (long i = 0; v == 2 && i < k; i++)
            x[i] = i & 1 ? -0.0f : 0.0f;
        for (long i = 0; v == 3 && i < all; i++)
            x[i] *= 1e-30f;
        if (v == 4 && k > 0)
            near_ties(x, k, &seed);
        for (long i = 0; bf16 && v != 0 && i < all; i++)
            h[i] = kg_f32_to_bf16(x[i]); /* v == 0: random bits, NaN and inf among them */
        if (bf16) {
            kgp_quant_rows_e4m3_bf16__scalar(qr + 1, yr[0] + 1, h, ROWS, k);
            ((__typeof__(kgp_quant_rows_e4m3_bf16__scalar) *)impl)(qg + 1, yg[0] + 1, h, ROWS, k);
        } else {
            kgp_quant_rows_e4m3_f32__scalar(qr + 1, yr[0] + 1, x, ROWS, k);
            ((__typeof__(kgp_quant_rows_e4m3_f32__scalar) *)impl)(qg + 1, yg[0] + 1, x, ROWS, k);
        }
        const char *name = bf16 ? "quant_rows_e4m3_bf16" : "quant_rows_e4m3_f32";
        same(isa, name, all, qg + 1, qr + 1, 1);
        same(isa, name, ROWS, yg[0] + 1, yr[0] + 1, 4);
    }
}

static void check_quant_rows_e4m3_f32(const char *isa, void *impl, long n, uint64_t seed)
{
    check_quant_rows(isa, impl, n, seed, 0);
}

static void check_quant_rows_e4m3_bf16(const char *isa, void *impl, long n, uint64_t seed)
{
    check_quant_rows(isa, impl, n, seed, 1);
}

/* quantize-dequantize: also in place */
#define ROUND_FP8(name, maxes)                                                                 \
    static void check_##name(const char *isa, void *impl, long n, uint64_t seed)               \
    {                                                                                          \
        __typeof__(kgp_##name##__scalar) *f = impl;                                            \
        for (int k = 0; k < NQ; k++) {                                                         \
            fill(seed + k, 0);                                                                 \
            kgp_##name##__scalar(yr[0] + 1, X0, QSCALE[k], maxes[k], n);                       \
            f(yg[0] + 1, X0, QSCALE[k], maxes[k], n);                                          \
            same(isa, #name, n, yg[0] + 1, yr[0] + 1, 4);                                      \
            f(X0, X0, QSCALE[k], maxes[k], n);                                                 \
            same_inplace(isa, #name " in place", n, X0, yr[0] + 1, 4);                         \
        }                                                                                      \
    }
ROUND_FP8(round_e4m3_f32, QMAX_E4M3)
ROUND_FP8(round_e4m3fn_f32, QMAX_E4M3FN)

/* Specials in a block (inf, NaN, huge, all zero) and plain blocks spread over magnitudes (every
 * 32 values another power of two, down into fp32 subnormals), with and without scales out. */
static void check_round_mx_e4m3fn_f32(const char *isa, void *impl, long n, uint64_t seed)
{
    __typeof__(kgp_round_mx_e4m3fn_f32__scalar) *f = impl;
    for (int k = 0; k < 3; k++) {
        fill(seed + k, k == 1);
        if (k == 1)
            for (long i = 0; i < n; i++)
                X0[i] = ldexpf(X0[i], (int)((i / 32 * 37) % 300) - 150);
        if (k == 2)
            for (long i = 0; i < n; i++)
                X0[i] = i / 32 % 3 == 0 ? 0.0f : X0[i]; /* some blocks of zeros and +-0 */
        kgp_round_mx_e4m3fn_f32__scalar(yr[0] + 1, qr + 1, X0, n);
        f(yg[0] + 1, qg + 1, X0, n);
        same(isa, "round_mx_e4m3fn_f32", n, yg[0] + 1, yr[0] + 1, 4);
        same(isa, "round_mx_e4m3fn_f32 scales", (n + 31) / 32, qg + 1, qr + 1, 1);
        f(yg[1] + 1, 0, X0, n);
        same(isa, "round_mx_e4m3fn_f32 e8=0", n, yg[1] + 1, yr[0] + 1, 4);
    }
}

/* Rotations: separate outputs, then in place (y == x), which the ABI allows. */
static void check_rot_rows_f32(const char *isa, void *impl, long n, uint64_t seed)
{
    __typeof__(kgp_rot_rows_f32__scalar) *f = impl;
    fill(seed, 0);
    kgp_rot_rows_f32__scalar(yr[0] + 1, yr[1] + 1, X0, X1, X2, X3, n);
    f(yg[0] + 1, yg[1] + 1, X0, X1, X2, X3, n);
    same_arith(isa, "rot_rows_f32 y0", n, yg[0] + 1, yr[0] + 1);
    same_arith(isa, "rot_rows_f32 y1", n, yg[1] + 1, yr[1] + 1);
    f(X0, X1, X0, X1, X2, X3, n);
    same_arith_inplace(isa, "rot_rows_f32 in place y0", n, X0, yr[0] + 1);
    same_arith_inplace(isa, "rot_rows_f32 in place y1", n, X1, yr[1] + 1);
}

#define ROT_HALF(name)                                                                         \
    static void check_##name(const char *isa, void *impl, long h, uint64_t seed)               \
    {                                                                                          \
        __typeof__(kgp_##name##__scalar) *f = impl;                                            \
        fill(seed, 0);                                                                         \
        kgp_##name##__scalar(yr[0] + 1, X0, X1, X2, h);                                        \
        f(yg[0] + 1, X0, X1, X2, h);                                                           \
        same_arith(isa, #name, 2 * h, yg[0] + 1, yr[0] + 1);                                      \
        memcpy(yg[1], xs[0], sizeof yg[1]);                                                    \
        f(yg[1] + 1, yg[1] + 1, X1, X2, h);                                                    \
        same_arith_inplace(isa, #name " in place", 2 * h, yg[1] + 1, yr[0] + 1);                  \
    }
ROT_HALF(rot_pairs_f32)
ROT_HALF(rot_hf_f32)
ROT_HALF(rot_hf_bwd_f32)

/* rot_half_rows: (rows, h) from the size n: three rows of n pairs (h = n, so vector bodies and
 * tails), one row when n is large; tables with rows ts apart, half-width (o = 0) or
 * full-width (o = h), with a gap after each row. */
static void half_rows_shape(long n, long o_full, long *rows, long *h, long *ts, long *o)
{
    *h = n;
    *rows = n > 100 ? 1 : 3;
    *o = o_full ? n : 0;
    *ts = o_full ? 2 * n + 5 : n + 3;
}

/* bf16 codes, all of them and a canary past n; any NaN matches any NaN (see same_pad). */
static void same_bf16(const char *isa, const char *name, long n, long pad, const kg_u16 *got,
                      const kg_u16 *want)
{
    for (long i = 0; i < n + pad; i++) {
        int nan = i < n && (got[i] & 0x7fff) > 0x7f80 && (want[i] & 0x7fff) > 0x7f80;
        cr_assert(got[i] == want[i] || nan, "%s %s n=%ld: element %ld is 0x%x, want 0x%x%s", isa,
                  name, n, i, got[i], want[i], i >= n ? " (written past n)" : "");
    }
}

static void check_rot_half_rows_f32(const char *isa, void *impl, long n, uint64_t seed)
{
    __typeof__(kgp_rot_half_rows_f32__scalar) *f = impl;
    for (int k = 0; k < 4; k++) {
        long rows, h, ts, o;
        half_rows_shape(n, k & 1, &rows, &h, &ts, &o);
        fill(seed + k, k >> 1);
        kgp_rot_half_rows_f32__scalar(yr[0] + 1, X0, X1, X2, ts, o, rows, h);
        f(yg[0] + 1, X0, X1, X2, ts, o, rows, h);
        same_arith(isa, "rot_half_rows_f32", rows * 2 * h, yg[0] + 1, yr[0] + 1);
        f(X0, X0, X1, X2, ts, o, rows, h);
        same_arith_inplace(isa, "rot_half_rows_f32 in place", rows * 2 * h, X0, yr[0] + 1);
    }
}

/* Against its scalar reference, and that against the composition the contract names. */
static void check_rot_half_rows_bf16(const char *isa, void *impl, long n, uint64_t seed)
{
    __typeof__(kgp_rot_half_rows_bf16__scalar) *f = impl;
    for (int k = 0; k < 4; k++) {
        long rows, h, ts, o, m;
        half_rows_shape(n, k & 1, &rows, &h, &ts, &o);
        m = rows * 2 * h;
        fill(seed + k, k >> 1);
        if (k >> 1) /* plain: bf16 of normal values, so whole vectors take the fast rounding */
            kgp_cvt_f32_bf16__scalar(hs + 1, X3, m);
        kgp_rot_half_rows_bf16__scalar(hr + 1, hs + 1, X1, X2, ts, o, rows, h);
        f(hg + 1, hs + 1, X1, X2, ts, o, rows, h);
        same_bf16(isa, "rot_half_rows_bf16", m, PAD, hg + 1, hr + 1);
        kgp_cvt_bf16_f32__scalar(yr[0], hs + 1, m);
        kgp_rot_half_rows_f32__scalar(yr[0], yr[0], X1, X2, ts, o, rows, h);
        kgp_cvt_f32_bf16__scalar(hs, yr[0], m);
        same_bf16("scalar", "rot_half_rows_bf16 = its composition", m, 0, hr + 1, hs);
        kgp_cvt_f32_bf16__scalar(hs + 1, X3, m);
        kgp_rot_half_rows_bf16__scalar(hr + 1, hs + 1, X1, X2, ts, o, rows, h);
        f(hs + 1, hs + 1, X1, X2, ts, o, rows, h);
        same_bf16(isa, "rot_half_rows_bf16 in place", m, 0, hs + 1, hr + 1);
    }
}

/* ---- reductions ---------------------------------------------------------------------------- */

/* got within fp32 reordering of want: |got - want| <= 1e-5 * sum |terms|; NaN where want is
 * NaN; inf where want is that inf. */
static void close_sum(const char *isa, const char *name, long n, const char *what, float got,
                      float want, double mag)
{
    if (isnan(want) || isinf(want)) {
        cr_assert(memcmp(&got, &want, 4) == 0 || (isnan(got) && isnan(want)),
                  "%s %s n=%ld %s: %g, want %g", isa, name, n, what, got, want);
        return;
    }
    cr_assert(fabs((double)got - want) <= 1e-5 * mag + 1e-30, "%s %s n=%ld %s: %.9g, want %.9g",
              isa, name, n, what, got, want);
}

static void check_sum_like(const char *isa, void *impl, long n, uint64_t seed, int sq)
{
    float (*f)(const float *, long) = (float (*)(const float *, long))impl;
    float (*ref)(const float *, long) = sq ? kgp_sumsq_f32__scalar : kgp_sum_f32__scalar;
    const char *name = sq ? "sumsq_f32" : "sum_f32";
    fill(seed, 1);
    for (long i = 0; i < n; i++)
        X0[i] *= (float)(1 + i % 7) * 0.5f; /* some spread of magnitudes */
    double mag = 0;
    for (long i = 0; i < n; i++)
        mag += sq ? (double)X0[i] * X0[i] : fabs(X0[i]);
    close_sum(isa, name, n, "random", f(X0, n), ref(X0, n), mag);
    if (n == 0) {
        cr_assert(f(X0, 0) == 0.0f, "%s %s n=0", isa, name);
        return;
    }
    long at = (long)(rnd(&seed) % (uint64_t)n);
    float keep = X0[at];
    X0[at] = INFINITY;
    close_sum(isa, name, n, "one +inf", f(X0, n), ref(X0, n), mag);
    X0[at] = -NAN;
    cr_assert(isnan(f(X0, n)), "%s %s n=%ld: a NaN at %ld is not propagated", isa, name, n, at);
    X0[at] = keep;
}

static void check_sum_f32(const char *isa, void *impl, long n, uint64_t seed)
{
    check_sum_like(isa, impl, n, seed, 0);
}

static void check_sumsq_f32(const char *isa, void *impl, long n, uint64_t seed)
{
    check_sum_like(isa, impl, n, seed, 1);
}

/* Exact: the max of magnitudes does not depend on order, and the first NaN (sign cleared) is
 * the result when there is one. */
static void check_maxabs_f32(const char *isa, void *impl, long n, uint64_t seed)
{
    float (*f)(const float *, long) = (float (*)(const float *, long))impl;
    for (int plain = 0; plain < 2; plain++) {
        fill(seed, plain);
        float got = f(X0, n), want = kgp_maxabs_f32__scalar(X0, n);
        cr_assert(to_bits(got) == to_bits(want), "%s maxabs_f32 n=%ld plain=%d: 0x%x, want 0x%x",
                  isa, n, plain, to_bits(got), to_bits(want));
        if (plain && n > 0) {
            long at = (long)(rnd(&seed) % (uint64_t)n);
            X0[at] = -NAN;
            got = f(X0, n), want = kgp_maxabs_f32__scalar(X0, n);
            cr_assert(isnan(got) && to_bits(got) == to_bits(want),
                      "%s maxabs_f32 n=%ld NaN at %ld: 0x%x, want 0x%x", isa, n, at, to_bits(got),
                      to_bits(want));
        }
    }
}

/* y within NaN payloads of the reference (see same_pad), the returned maximum exact; with and
 * without g, on specials and on plain values (whole vectors of the fast bf16 rounding), with a
 * NaN placed late in a plain row, and in place. */
static void check_scale_round_bf16_f32(const char *isa, void *impl, long n, uint64_t seed)
{
    __typeof__(kgp_scale_round_bf16_f32__scalar) *f = impl;
    for (int k = 0; k < 6; k++) {
        const float *g = k & 1 ? X1 : 0;
        fill(seed + k, k >= 2);
        if (k >= 4 && n > 0)
            X0[n - 1 - (long)(rnd(&seed) % (uint64_t)(n < 20 ? n : 20))] = -NAN;
        float want = kgp_scale_round_bf16_f32__scalar(yr[0] + 1, X0, 0.37f, g, n);
        float got = f(yg[0] + 1, X0, 0.37f, g, n);
        same_arith(isa, "scale_round_bf16_f32", n, yg[0] + 1, yr[0] + 1);
        cr_assert(to_bits(got) == to_bits(want), "%s scale_round_bf16_f32 n=%ld k=%d: max 0x%x, "
                  "want 0x%x", isa, n, k, to_bits(got), to_bits(want));
        got = f(X0, X0, 0.37f, g, n);
        same_arith_inplace(isa, "scale_round_bf16_f32 in place", n, X0, yr[0] + 1);
        cr_assert(to_bits(got) == to_bits(want), "%s scale_round_bf16_f32 in place n=%ld k=%d",
                  isa, n, k);
    }
}

/* Exact: the contract fixes the left-to-right order. */
static void check_cumsum_f32(const char *isa, void *impl, long n, uint64_t seed)
{
    __typeof__(kgp_cumsum_f32__scalar) *f = impl;
    fill(seed, 1);
    float want = kgp_cumsum_f32__scalar(yr[0] + 1, X0, 0.25f, n);
    float got = f(yg[0] + 1, X0, 0.25f, n);
    same(isa, "cumsum_f32", n, yg[0] + 1, yr[0] + 1, 4);
    cr_assert(to_bits(got) == to_bits(want), "%s cumsum_f32 n=%ld returns %g, want %g", isa, n,
              got, want);
}

/* Each row the scalar chain, bit for bit: row counts on both sides of 8 and 16 (the avx2 and
 * avx512 row groups), row strides past n, the carries in and out, and in place. The second
 * pass has specials (NaN, inf) in the rows, where only which NaN survives may differ. */
static void check_cumsum_rows_f32(const char *isa, void *impl, long n, uint64_t seed)
{
    static const long ROWS[] = { 1, 7, 8, 9, 16, 17, 33 };
    __typeof__(kgp_cumsum_rows_f32__scalar) *f = impl;
    long ldx = n + 3, ldy = n + 5, cap = 33 * ldy + PAD;
    float *x = malloc(cap * 4), *yr1 = malloc(cap * 4), *yg1 = malloc(cap * 4);
    float cr[33], cg[33];
    for (size_t k = 0; k < sizeof ROWS / sizeof ROWS[0]; k++)
        for (int plain = 1; plain >= 0; plain--) {
            long rows = ROWS[k];
            uint64_t s = seed * 31 + k;
            for (long i = 0; i < cap; i++)
                x[i] = plain ? normal(&s) : special(&s);
            for (long r = 0; r < rows; r++)
                cr[r] = cg[r] = plain ? normal(&s) : (float)r - 0.5f;
            memset(yr1, 0x5a, cap * 4), memset(yg1, 0x5a, cap * 4);
            kgp_cumsum_rows_f32__scalar(yr1, ldy, x, ldx, cr, rows, n);
            f(yg1, ldy, x, ldx, cg, rows, n);
            same_pad(isa, "cumsum_rows_f32", rows * ldy, PAD, yg1, yr1, 4, !plain);
            same_pad(isa, "cumsum_rows_f32 carry", rows, 0, cg, cr, 4, !plain);
            if (plain) { /* in place, from the carries the first call returned */
                memcpy(cg, cr, sizeof cr);
                memcpy(yg1, x, cap * 4), memcpy(yr1, x, cap * 4);
                kgp_cumsum_rows_f32__scalar(yr1, ldx, yr1, ldx, cr, rows, n);
                f(yg1, ldx, yg1, ldx, cg, rows, n);
                same_pad(isa, "cumsum_rows_f32 in place", rows * ldx, 0, yg1, yr1, 4, 0);
                same_pad(isa, "cumsum_rows_f32 in place carry", rows, 0, cg, cr, 4, 0);
            }
        }
    free(x), free(yr1), free(yg1);
}

/* ---- attention's pieces -------------------------------------------------------------------- */

static const long MROWS[] = { 1, 3, 4, 5, 9 };
#define NMROWS (sizeof MROWS / sizeof MROWS[0])

static float *rand_buf(long count, uint64_t *s, int plain)
{
    float *b = malloc((size_t)(count + PAD) * 4);
    for (long i = 0; i < count + PAD; i++)
        b[i] = plain ? normal(s) : special(s);
    return b;
}

/* Scores within reordering of the reference: |got - want| <= 2 d 2^-23 sum |q k| (fp32 sums of
 * d terms in any order), on keys of odd count and d along the sizes (d = 0 gives zeros); the
 * canary after each row of s stays. */
static void check_dot_rows_f32(const char *isa, void *impl, long n, uint64_t seed)
{
    __typeof__(kgp_dot_rows_f32__scalar) *f = impl;
    long d = n, nk = 7, ldq = d + 3, ldk = d + 1, lds = nk + 2;
    for (size_t c = 0; c < NMROWS; c++) {
        long m = MROWS[c];
        uint64_t s = seed * 7 + c;
        float *q = rand_buf(m * ldq, &s, 1), *k = rand_buf(nk * ldk, &s, 1);
        float sr[9 * 9], sg[9 * 9];
        memset(sr, 0x5a, sizeof sr), memset(sg, 0x5a, sizeof sg);
        kgp_dot_rows_f32__scalar(sr, lds, q, ldq, m, k, ldk, nk, d);
        f(sg, lds, q, ldq, m, k, ldk, nk, d);
        for (long i = 0; i < m; i++)
            for (long j = 0; j < lds; j++) {
                float got = sg[i * lds + j], want = sr[i * lds + j];
                if (j >= nk) {
                    cr_assert(to_bits(got) == to_bits(want), "%s dot_rows_f32 wrote past n", isa);
                    continue;
                }
                double mag = 0;
                for (long t = 0; t < d; t++)
                    mag += fabs((double)q[i * ldq + t] * k[j * ldk + t]);
                cr_assert(fabs((double)got - want) <= 2.0 * d * 0x1p-23 * mag + 1e-30,
                          "%s dot_rows_f32 d=%ld m=%ld (%ld,%ld): %.9g, want %.9g", isa, d, m, i,
                          j, got, want);
            }
        free(q), free(k);
    }
}

/* Bit for bit (each lane the reference's fma chain), n keys along the sizes, d odd. */
static void check_dot_cols_f32(const char *isa, void *impl, long n, uint64_t seed)
{
    __typeof__(kgp_dot_cols_f32__scalar) *f = impl;
    long d = 1 + (long)(seed % 37), ldk = n + 5, ldq = d + 2, lds = n + PAD;
    for (size_t c = 0; c < NMROWS; c++) {
        long m = MROWS[c];
        uint64_t s = seed * 11 + c;
        float *q = rand_buf(m * ldq, &s, c & 1), *kt = rand_buf(d * ldk, &s, 1);
        float *sr = malloc((size_t)(m * lds) * 4), *sg = malloc((size_t)(m * lds) * 4);
        memset(sr, 0x5a, (size_t)(m * lds) * 4), memset(sg, 0x5a, (size_t)(m * lds) * 4);
        kgp_dot_cols_f32__scalar(sr, lds, q, ldq, m, kt, ldk, n, d);
        f(sg, lds, q, ldq, m, kt, ldk, n, d);
        same_pad(isa, "dot_cols_f32", m * lds - PAD, PAD, sg, sr, 4, 1);
        free(q), free(kt), free(sr), free(sg);
    }
}

/* Bit for bit (each lane the reference's fma chain), d along the sizes, into outputs that
 * start from values; specials in the probabilities of every other pass. */
static void check_axpy_rows_f32(const char *isa, void *impl, long n, uint64_t seed)
{
    __typeof__(kgp_axpy_rows_f32__scalar) *f = impl;
    long d = n, nk = 5 + (long)(seed % 3), ldo = d + PAD, ldp = nk + 1, ldv = d + 3;
    for (size_t c = 0; c < NMROWS; c++) {
        long m = MROWS[c];
        uint64_t s = seed * 13 + c;
        float *p = rand_buf(m * ldp, &s, c & 1), *v = rand_buf(nk * ldv, &s, 1);
        float *o0 = rand_buf(m * ldo, &s, 1);
        float *orf = malloc((size_t)(m * ldo) * 4), *og = malloc((size_t)(m * ldo) * 4);
        memcpy(orf, o0, (size_t)(m * ldo) * 4), memcpy(og, o0, (size_t)(m * ldo) * 4);
        kgp_axpy_rows_f32__scalar(orf, ldo, p, ldp, m, v, ldv, nk, d);
        f(og, ldo, p, ldp, m, v, ldv, nk, d);
        same_pad(isa, "axpy_rows_f32", m * ldo - PAD, PAD, og, orf, 4, 1);
        free(p), free(v), free(o0), free(orf), free(og);
    }
}

/* Exact but for the sign of a zero maximum; -inf for n == 0; the first NaN. */
static void check_max_f32(const char *isa, void *impl, long n, uint64_t seed)
{
    float (*f)(const float *, long) = (float (*)(const float *, long))impl;
    for (int plain = 0; plain < 2; plain++) {
        fill(seed, plain);
        for (int nan = 0; nan < 2; nan++) {
            if (nan && (n == 0 || !plain))
                continue;
            if (nan)
                X0[n - 1 - (long)(rnd(&seed) % (uint64_t)(n < 20 ? n : 20))] = -NAN;
            float got = f(X0, n), want = kgp_max_f32__scalar(X0, n);
            cr_assert(to_bits(got) == to_bits(want) || (got == 0.0f && want == 0.0f),
                      "%s max_f32 n=%ld plain=%d nan=%d: 0x%x, want 0x%x", isa, n, plain, nan,
                      to_bits(got), to_bits(want));
        }
    }
    cr_assert(f(X0, 0) == -INFINITY, "%s max_f32 of nothing is not -inf", isa);
}

/* y bit for bit (NaN payloads aside), the sum within reordering; softmax-like rows (x - max
 * in [-30, 0]), rows reaching the -87 / 88 cut-offs, and the specials (inf, NaN, -0); in place. */
static void check_exp_sum_f32(const char *isa, void *impl, long n, uint64_t seed)
{
    __typeof__(kgp_exp_sum_f32__scalar) *f = impl;
    static const float MS[4] = { 0.0f, 3.5f, -40.0f, 0.0f };
    for (int k = 0; k < 4; k++) {
        fill(seed + k, k < 3);
        for (long i = 0; i < n && k < 3; i++)
            X0[i] = k == 2 ? X0[i] * 60.0f : X0[i] * 5.0f;
        float want = kgp_exp_sum_f32__scalar(yr[0] + 1, X0, MS[k], n);
        float got = f(yg[0] + 1, X0, MS[k], n);
        same_arith(isa, "exp_sum_f32", n, yg[0] + 1, yr[0] + 1);
        double mag = 0;
        for (long i = 0; i < n; i++)
            mag += fabs(yr[0][1 + i]);
        close_sum(isa, "exp_sum_f32", n, "sum", got, want, mag);
        got = f(X0, X0, MS[k], n);
        same_arith_inplace(isa, "exp_sum_f32 in place", n, X0, yr[0] + 1);
    }
}

/* prefetch_wt is a hint: it reads nothing into any value and writes nothing (a weight of n
 * columns of f32, asked for more bytes than it has, none, or NULL). */
static void check_prefetch_wt(const char *isa, void *impl, long n, uint64_t seed)
{
    void (*f)(const kg_wt *, long) = (void (*)(const kg_wt *, long))impl;
    float *x = malloc(sizeof(float) * (size_t)(n + 1));
    for (long i = 0; i <= n; i++)
        x[i] = (float)(seed % 97) + (float)i;
    kg_wt w = { .fmt = KG_WT_F32, .K = 1, .N = n, .nr = 1, .kg = 1, .kpad = 1, .data = x };
    f(&w, 1L << 40);
    f(&w, 0);
    f(NULL, 64);
    for (long i = 0; i <= n; i++)
        cr_assert(x[i] == (float)(seed % 97) + (float)i, "%s prefetch_wt n=%ld wrote x[%ld]",
                  isa, n, i);
    free(x);
}

/* ---- the table: every primitive but the GEMM (test_gemm.c) -------------------------------- */

typedef struct checker { const char *name; check_fn *fn; } checker;
static const checker CHECKS[] = {
    { "cvt_bf16_f32", check_cvt_bf16_f32 }, { "cvt_f16_f32", check_cvt_f16_f32 },
    { "cvt_f32_bf16", check_cvt_f32_bf16 }, { "cvt_f32_f16", check_cvt_f32_f16 },
    { "round_bf16_f32", check_round_bf16_f32 }, { "round_f16_f32", check_round_f16_f32 },
    { "scale_mul_f32", check_scale_mul_f32 }, { "clamp_f32", check_clamp_f32 },
    { "clamp_f32", check_clamp_odd }, { "quant_e4m3_f32", check_quant_e4m3_f32 },
    { "quant_e4m3fn_f32", check_quant_e4m3fn_f32 }, { "rot_rows_f32", check_rot_rows_f32 },
    { "rot_pairs_f32", check_rot_pairs_f32 }, { "rot_hf_f32", check_rot_hf_f32 },
    { "rot_hf_bwd_f32", check_rot_hf_bwd_f32 }, { "add_f32", check_add_f32 },
    { "mul_f32", check_mul_f32 }, { "affine_f32", check_affine_f32 },
    { "silu_f32", check_silu_f32 }, { "gelu_f32", check_gelu_f32 },
    { "gelu_tanh_f32", check_gelu_tanh_f32 }, { "swish_f32", check_swish_f32 },
    { "round_e4m3_f32", check_round_e4m3_f32 }, { "round_e4m3fn_f32", check_round_e4m3fn_f32 },
    { "round_mx_e4m3fn_f32", check_round_mx_e4m3fn_f32 }, { "sumsq_f32", check_sumsq_f32 },
    { "maxabs_f32", check_maxabs_f32 }, { "cumsum_f32", check_cumsum_f32 },
    { "sum_f32", check_sum_f32 }, { "cumsum_rows_f32", check_cumsum_rows_f32 },
    { "rot_half_rows_f32", check_rot_half_rows_f32 },
    { "rot_half_rows_bf16", check_rot_half_rows_bf16 },
    { "scale_round_bf16_f32", check_scale_round_bf16_f32 },
    { "cvt_e4m3_f32", check_cvt_e4m3_f32 }, { "cvt_e4m3fn_f32", check_cvt_e4m3fn_f32 },
    { "unswizzle_4h_f32", check_unswizzle_4h_f32 }, { "prefetch_wt", check_prefetch_wt },
    { "dot_rows_f32", check_dot_rows_f32 }, { "dot_cols_f32", check_dot_cols_f32 },
    { "axpy_rows_f32", check_axpy_rows_f32 }, { "max_f32", check_max_f32 },
    { "exp_sum_f32", check_exp_sum_f32 },
    { "quant_rows_e4m3_f32", check_quant_rows_e4m3_f32 },
    { "quant_rows_e4m3_bf16", check_quant_rows_e4m3_bf16 },
    { "glu_bwd_f32", check_glu_bwd_f32 }, { "transpose_f32", check_transpose_f32 },
};
#define NCHECKS (sizeof CHECKS / sizeof CHECKS[0])

Test(prim_simd, every_primitive_has_a_check)
{
#define HAS(ret, nm, params, args)                                                            \
    {                                                                                         \
        /* gemm_f32 and gemm_bf16 have their own test (test_gemm.c), attention's tile-level  \
         * primitives theirs (test_prim_attn.c), the training rows' theirs (test_prim_loss.c) */ \
        int found = strncmp(#nm, "gemm_", 5) == 0 || strcmp(#nm, "tile_fma_f32") == 0 ||     \
                    strncmp(#nm, "qk_", 3) == 0 || strncmp(#nm, "pv_", 3) == 0 ||             \
                    strncmp(#nm, "lse_", 4) == 0 || strncmp(#nm, "ce_grad_", 8) == 0 ||       \
                    strncmp(#nm, "dwconv_", 7) == 0;                                          \
        for (size_t c = 0; c < NCHECKS; c++)                                                  \
            found |= strcmp(CHECKS[c].name, #nm) == 0;                                        \
        cr_expect(found, "primitive %s has no check here", #nm);                              \
    }
    KGP_LIST(HAS)
#undef HAS
}

/* The ISAs this CPU runs (scalar always). */
static int offered(const char *isa)
{
    return kgr_prim_impl(isa, "add_f32") != NULL;
}

Test(prim_simd, every_isa_every_size)
{
    int any = 0;
    for (size_t k = 0; k < sizeof ISAS / sizeof ISAS[0]; k++) {
        if (!offered(ISAS[k])) {
            /* info, not warn: Criterion 2.4 exits 1 after any warning, and a CPU without
             * AVX-512 (Zen 3) is no failure */
            cr_log_info("ISA %s not offered by this CPU: not tested", ISAS[k]);
            continue;
        }
        any = 1;
        for (size_t c = 0; c < NCHECKS; c++) {
            void *impl = kgr_prim_impl(ISAS[k], CHECKS[c].name);
            cr_assert(impl != NULL, "%s %s: no implementation", ISAS[k], CHECKS[c].name);
            for (size_t s = 0; s < sizeof SIZES / sizeof SIZES[0]; s++)
                for (uint64_t seed = 1; seed <= 3; seed++)
                    CHECKS[c].fn(ISAS[k], impl, SIZES[s], seed * 1000 + s * 10 + c);
        }
    }
    if (!any)
        cr_log_info("no SIMD ISA on this CPU");
}

/* The SIMD entries really are SIMD where this file expects them (a table left scalar would pass
 * every comparison above). */
Test(prim_simd, simd_entries_are_not_scalar)
{
    static const char *const simd[] = { "cvt_bf16_f32", "cvt_f16_f32", "cvt_f32_bf16",
                                        "cvt_f32_f16", "round_bf16_f32", "round_f16_f32",
                                        "scale_mul_f32", "clamp_f32", "add_f32", "mul_f32",
                                        "affine_f32", "rot_rows_f32", "rot_pairs_f32",
                                        "rot_hf_f32", "rot_hf_bwd_f32", "sumsq_f32",
                                        "maxabs_f32", "sum_f32", "quant_e4m3_f32",
                                        "quant_e4m3fn_f32", "round_e4m3_f32",
                                        "round_e4m3fn_f32", "round_mx_e4m3fn_f32", "silu_f32",
                                        "gelu_f32", "gelu_tanh_f32", "swish_f32",
                                        "cumsum_rows_f32", "rot_half_rows_f32",
                                        "rot_half_rows_bf16", "scale_round_bf16_f32",
                                        "dot_rows_f32", "dot_cols_f32", "axpy_rows_f32",
                                        "max_f32", "exp_sum_f32", "quant_rows_e4m3_f32",
                                        "quant_rows_e4m3_bf16", "glu_bwd_f32" };
    for (size_t k = 0; k < sizeof ISAS / sizeof ISAS[0]; k++) {
        if (!offered(ISAS[k]))
            continue;
        for (size_t i = 0; i < sizeof simd / sizeof simd[0]; i++)
            cr_expect(kgr_prim_impl(ISAS[k], simd[i]) != kgr_prim_impl("scalar", simd[i]),
                      "%s %s is the scalar reference", ISAS[k], simd[i]);
    }
}

/* Conversions over many bit patterns at once: all 65536 narrow codes, and 2^20 fp32 patterns
 * spread over every exponent plus each one's low-bit neighbourhood near the rounding point. */
Test(prim_simd, conversions_sweep)
{
    enum { NW = 1 << 20 };
    kg_u16 *h = malloc(65536 * 2), *hr2 = malloc(NW * 2), *hg2 = malloc(NW * 2);
    float *x = malloc(NW * 4), *fr = malloc(NW * 4), *fg = malloc(NW * 4);
    for (long i = 0; i < 65536; i++)
        h[i] = (kg_u16)i;
    for (long i = 0; i < NW; i++) {
        uint32_t u = (uint32_t)i * 2654435761u;
        if (i & 1) /* the low 16 bits near 0x8000 and the low 13 near 0x1000 */
            u = (u & 0xffff0000u) | ((i & 2 ? 0x8000u : 0x1000u) + (uint32_t)(i >> 2) % 5 - 2);
        x[i] = from_bits(u);
    }
    for (size_t k = 0; k < sizeof ISAS / sizeof ISAS[0]; k++) {
        const char *isa = ISAS[k];
        if (!offered(isa))
            continue;
        kgp_cvt_bf16_f32__scalar(fr, h, 65536);
        ((__typeof__(kgp_cvt_bf16_f32__scalar) *)kgr_prim_impl(isa, "cvt_bf16_f32"))(fg, h, 65536);
        cr_assert(memcmp(fr, fg, 65536 * 4) == 0, "%s cvt_bf16_f32 sweep", isa);
        kgp_cvt_f16_f32__scalar(fr, h, 65536);
        ((__typeof__(kgp_cvt_f16_f32__scalar) *)kgr_prim_impl(isa, "cvt_f16_f32"))(fg, h, 65536);
        same_inplace(isa, "cvt_f16_f32 sweep", 65536, fg, fr, 4);
        kgp_cvt_f32_bf16__scalar(hr2, x, NW);
        ((__typeof__(kgp_cvt_f32_bf16__scalar) *)kgr_prim_impl(isa, "cvt_f32_bf16"))(hg2, x, NW);
        same_inplace(isa, "cvt_f32_bf16 sweep", NW, hg2, hr2, 2);
        kgp_cvt_f32_f16__scalar(hr2, x, NW);
        ((__typeof__(kgp_cvt_f32_f16__scalar) *)kgr_prim_impl(isa, "cvt_f32_f16"))(hg2, x, NW);
        same_inplace(isa, "cvt_f32_f16 sweep", NW, hg2, hr2, 2);
        kgp_round_bf16_f32__scalar(fr, x, NW);
        ((__typeof__(kgp_round_bf16_f32__scalar) *)kgr_prim_impl(isa, "round_bf16_f32"))(fg, x, NW);
        same_inplace(isa, "round_bf16_f32 sweep", NW, fg, fr, 4);
        kgp_round_f16_f32__scalar(fr, x, NW);
        ((__typeof__(kgp_round_f16_f32__scalar) *)kgr_prim_impl(isa, "round_f16_f32"))(fg, x, NW);
        same_inplace(isa, "round_f16_f32 sweep", NW, fg, fr, 4);
    }
    free(h), free(hr2), free(hg2), free(x), free(fr), free(fg);
}

/* The fp8 quantizers over 2^20 fp32 patterns: every exponent, and around each rounding point
 * of e4m3 (normal ties at low bits 0x80000, subnormal ties at odd multiples of 2^-10), with
 * scale 1 and no effective bound, so every pattern reaches the encoder as it is. */
Test(prim_simd, fp8_sweep)
{
    enum { NW = 1 << 20 };
    float *x = malloc(NW * 4), *fr = malloc(NW * 4), *fg = malloc(NW * 4);
    kg_u8 *cr = malloc(NW), *cg = malloc(NW);
    for (long i = 0; i < NW; i++) {
        uint32_t u = (uint32_t)i * 2654435761u;
        if (i % 3 == 1)
            u = (u & 0xfff00000u) | (0x80000u + (uint32_t)(i >> 2) % 5 - 2);
        if (i % 3 == 2)
            u = (u & 0x80000000u) + to_bits((float)(2 * (i >> 2) % 16 + 1) * 0x1p-10f) +
                (uint32_t)(i >> 6) % 3 - 1;
        x[i] = from_bits(u);
    }
    for (size_t k = 0; k < sizeof ISAS / sizeof ISAS[0]; k++) {
        const char *isa = ISAS[k];
        if (!offered(isa))
            continue;
        kgp_quant_e4m3_f32__scalar(cr, x, 1.0f, INFINITY, NW);
        ((__typeof__(kgp_quant_e4m3_f32__scalar) *)kgr_prim_impl(isa, "quant_e4m3_f32"))(cg, x, 1.0f, INFINITY, NW);
        same_inplace(isa, "quant_e4m3_f32 sweep", NW, cg, cr, 1);
        kgp_quant_e4m3fn_f32__scalar(cr, x, 1.0f, INFINITY, NW);
        ((__typeof__(kgp_quant_e4m3fn_f32__scalar) *)kgr_prim_impl(isa, "quant_e4m3fn_f32"))(cg, x, 1.0f, INFINITY, NW);
        same_inplace(isa, "quant_e4m3fn_f32 sweep", NW, cg, cr, 1);
        kgp_round_e4m3_f32__scalar(fr, x, 1.0f, INFINITY, NW);
        ((__typeof__(kgp_round_e4m3_f32__scalar) *)kgr_prim_impl(isa, "round_e4m3_f32"))(fg, x, 1.0f, INFINITY, NW);
        same_inplace(isa, "round_e4m3_f32 sweep", NW, fg, fr, 4);
        kgp_round_e4m3fn_f32__scalar(fr, x, 1.0f, INFINITY, NW);
        ((__typeof__(kgp_round_e4m3fn_f32__scalar) *)kgr_prim_impl(isa, "round_e4m3fn_f32"))(fg, x, 1.0f, INFINITY, NW);
        same_inplace(isa, "round_e4m3fn_f32 sweep", NW, fg, fr, 4);
        kgp_round_mx_e4m3fn_f32__scalar(fr, cr, x, NW);
        ((__typeof__(kgp_round_mx_e4m3fn_f32__scalar) *)kgr_prim_impl(isa, "round_mx_e4m3fn_f32"))(fg, cg, x, NW);
        same_inplace(isa, "round_mx_e4m3fn_f32 sweep", NW, fg, fr, 4);
        same_inplace(isa, "round_mx_e4m3fn_f32 sweep scales", NW / 32, cg, cr, 1);
    }
    free(x), free(fr), free(fg), free(cr), free(cg);
}

/* KGEN_ISA and kg_prim_select: each ISA this CPU runs can be chosen, and then both the JIT's
 * symbol and the AOT entry point kgp_* go to that ISA's table. */
Test(prim_simd, isa_selection)
{
    static const char *const all[] = { "scalar", "avx2", "avx512" };
    for (size_t k = 0; k < 3; k++) {
        const char *isa = all[k];
        int rc = kg_prim_select(isa);
        if (!offered(isa)) {
            cr_assert_eq(rc, KG_ESPEC, "%s is not offered but selectable", isa);
            continue;
        }
        cr_assert_eq(rc, KG_OK, "kg_prim_select(%s)", isa);
        cr_assert_str_eq(kg_prim_isa(), isa);
        cr_assert(kg_prim_lookup("kgp_sum_f32") == kgr_prim_impl(isa, "sum_f32"), "%s", isa);
        float x[37];
        for (int i = 0; i < 37; i++)
            x[i] = 1.0f / (float)(i + 1);
        float a = kgp_sum_f32(x, 37), b = ((float (*)(const float *, long))kgr_prim_impl(isa, "sum_f32"))(x, 37);
        cr_assert(to_bits(a) == to_bits(b), "%s: kgp_sum_f32 does not call the selected table", isa);

        setenv("KGEN_ISA", isa, 1);
        kg_prim_select("scalar");
        cr_assert_eq(kg_prim_select(NULL), KG_OK, "KGEN_ISA=%s", isa);
        cr_assert_str_eq(kg_prim_isa(), isa, "KGEN_ISA=%s", isa);
        unsetenv("KGEN_ISA");
    }
    cr_assert_eq(kg_prim_select("avx9000"), KG_ESPEC);
    cr_assert(kgr_prim_impl("avx9000", "add_f32") == NULL);
    cr_assert(kgr_prim_impl("scalar", "no_such_prim") == NULL);
    cr_assert(kgr_prim_impl("scalar", "kgp_add_f32") == (void *)kgp_add_f32__scalar);
    /* with no override the best offered ISA wins */
    cr_assert_eq(kg_prim_select(NULL), KG_OK);
    cr_assert_str_eq(kg_prim_isa(), offered("avx512") ? "avx512" : offered("avx2") ? "avx2" : "scalar");
}
