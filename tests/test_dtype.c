/* test_dtype.c: exhaustive Criterion tests for kgen/dtype.h. Decoders are checked against an
 * independent field-by-field decode (ldexp), encoders against round trips, every midpoint,
 * named boundary values and a brute-force nearest-code search over random floats. */
#include <criterion/criterion.h>

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kgen/dtype.h"

/* ---- helpers -------------------------------------------------------------------------------- */

static uint32_t fbits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float bitsf(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* splitmix64: a small fixed-seed PRNG so failures reproduce. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---- format descriptions (test-side, written independently of dtype.c) ---------------------- */

enum special { SP_IEEE, SP_FN, SP_NONE };  /* top exponent inf/NaN; only all-ones NaN; none */

typedef struct fmt {
    const char *name;
    int ebits, mbits, bias;
    enum special sp;
    uint32_t maxcode;     /* largest finite magnitude code */
    uint32_t ovf;         /* magnitude code for a value rounding past maxcode */
    uint32_t inf_mag;     /* magnitude code an infinite input encodes to */
    uint32_t nan_pos;     /* full code for a +NaN input */
    uint32_t nan_neg;     /* full code for a -NaN input */
    float (*dec)(uint32_t);
    uint32_t (*enc)(float);
} fmt;

static float dec_e4m3(uint32_t c) { return kg_e4m3_to_f32((uint8_t)c); }
static float dec_e4m3fn(uint32_t c) { return kg_e4m3fn_to_f32((uint8_t)c); }
static float dec_e5m2(uint32_t c) { return kg_e5m2_to_f32((uint8_t)c); }
static float dec_e2m1(uint32_t c) { return kg_e2m1_to_f32((uint8_t)c); }
static float dec_f16(uint32_t c) { return kg_f16_to_f32((uint16_t)c); }
static float dec_bf16(uint32_t c) { return kg_bf16_to_f32((uint16_t)c); }
static uint32_t enc_e4m3(float x) { return kg_f32_to_e4m3(x); }
static uint32_t enc_e4m3fn(float x) { return kg_f32_to_e4m3fn(x); }
static uint32_t enc_e5m2(float x) { return kg_f32_to_e5m2(x); }
static uint32_t enc_e2m1(float x) { return kg_f32_to_e2m1(x); }
static uint32_t enc_f16(float x) { return kg_f32_to_f16(x); }
static uint32_t enc_bf16(float x) { return kg_f32_to_bf16(x); }

static const fmt E4M3 = { "e4m3", 4, 3, 7, SP_IEEE, 0x77, 0x78, 0x78, 0x7c, 0xfc,
                          dec_e4m3, enc_e4m3 };
static const fmt E4M3FN = { "e4m3fn", 4, 3, 7, SP_FN, 0x7e, 0x7f, 0x7f, 0x7f, 0xff,
                            dec_e4m3fn, enc_e4m3fn };
static const fmt E5M2 = { "e5m2", 5, 2, 15, SP_IEEE, 0x7b, 0x7c, 0x7c, 0x7e, 0xfe,
                          dec_e5m2, enc_e5m2 };
/* ml_dtypes: e2m1 saturates; NaN -> its stand-in code 0x8, negated for -NaN -> 0x0. */
static const fmt E2M1 = { "e2m1", 2, 1, 1, SP_NONE, 0x7, 0x7, 0x7, 0x8, 0x0,
                          dec_e2m1, enc_e2m1 };
static const fmt F16 = { "fp16", 5, 10, 15, SP_IEEE, 0x7bff, 0x7c00, 0x7c00, 0x7e00, 0xfe00,
                         dec_f16, enc_f16 };
static const fmt BF16 = { "bf16", 8, 7, 127, SP_IEEE, 0x7f7f, 0x7f80, 0x7f80, 0x7fc0, 0xffc0,
                          dec_bf16, enc_bf16 };

static int ncodes(const fmt *f) { return 1 << (1 + f->ebits + f->mbits); }
static uint32_t sign_bit(const fmt *f) { return 1u << (f->ebits + f->mbits); }

/* Value of a magnitude code read as a plain binary float (no specials): subnormal m*2^(1-b-M),
 * normal (2^M + m)*2^(e-b-M). Codes past the max give the "would-be" next values. */
static double mag_value(const fmt *f, uint32_t c)
{
    uint32_t m = c & ((1u << f->mbits) - 1u);
    int e = (int)(c >> f->mbits);
    if (e == 0)
        return ldexp((double)m, 1 - f->bias - f->mbits);
    return ldexp((double)((1u << f->mbits) + m), e - f->bias - f->mbits);
}

/* Independent decode of a full code, specials included. */
static double ref_decode(const fmt *f, uint32_t code)
{
    uint32_t emask = (1u << f->ebits) - 1u, mmask = (1u << f->mbits) - 1u;
    uint32_t e = (code >> f->mbits) & emask, m = code & mmask;
    double s = (code & sign_bit(f)) ? -1.0 : 1.0;
    if (f->sp == SP_IEEE && e == emask)
        return m ? copysign(NAN, s) : s * INFINITY;
    if (f->sp == SP_FN && e == emask && m == mmask)
        return copysign(NAN, s);
    return copysign(mag_value(f, code & (sign_bit(f) - 1u)), s);
}

static int is_nan_code(const fmt *f, uint32_t code)
{
    return isnan(ref_decode(f, code));
}

/* Brute-force encode. Magnitude codes 0..maxcode+1 (maxcode+1 being the would-be next value)
 * are monotonic in value: find the last one not above |x| (a linear scan over every code for the
 * 4/8-bit formats, a binary search for the 16-bit ones), then take the nearer of it and its
 * successor, ties to the even code. |x| lies between the two values, so both distances are
 * exact in double (Sterbenz) except next to 0, where the comparison is not close. A result
 * past maxcode means overflow. */
static uint32_t ref_encode(const fmt *f, float x)
{
    uint32_t s = signbit(x) ? sign_bit(f) : 0, top = f->maxcode + 1, lo = 0, hi, c, best;
    double a = fabs((double)x);
    if (isnan(x))
        return s ? f->nan_neg : f->nan_pos;
    if (isinf(x))
        return s | f->inf_mag;
    if (f->maxcode < 0x100) {
        for (c = 1; c <= top; c++)
            if (mag_value(f, c) <= a)
                lo = c;
    } else if (a >= mag_value(f, top)) {
        lo = top;
    } else {
        hi = top;                            /* value(lo) <= a < value(hi) */
        while (hi - lo > 1) {
            c = lo + (hi - lo) / 2;
            if (mag_value(f, c) <= a)
                lo = c;
            else
                hi = c;
        }
    }
    best = lo;
    if (lo < top) {
        double dl = a - mag_value(f, lo), dh = mag_value(f, lo + 1) - a;
        if (dh < dl || (dh == dl && !((lo + 1) & 1u)))
            best = lo + 1;
    }
    if (best > f->maxcode)
        best = f->ovf;
    return s | best;
}

static void expect_enc(const fmt *f, const char *what, float x, uint32_t want)
{
    uint32_t got = f->enc(x);
    cr_assert(got == want, "%s encode %s: x=%a (0x%08x): got 0x%x want 0x%x",
              f->name, what, (double)x, fbits(x), got, want);
}

static void expect_dec(const fmt *f, uint32_t code, double want)
{
    float got = f->dec(code);
    if (isnan(want)) {
        cr_assert(isnan(got), "%s decode 0x%x: got %a (0x%08x) want NaN",
                  f->name, code, (double)got, fbits(got));
        return;
    }
    cr_assert((double)got == want && !signbit(got) == !signbit(want),
              "%s decode 0x%x: got %a (0x%08x) want %a", f->name, code, (double)got,
              fbits(got), want);
}

/* ---- generic checks ------------------------------------------------------------------------- */

/* Every code decodes to the independently computed value, sign of zero and NaN sign included. */
static void check_decode_all(const fmt *f)
{
    int c;
    for (c = 0; c < ncodes(f); c++) {
        double want = ref_decode(f, (uint32_t)c);
        float got = f->dec((uint32_t)c);
        if (isnan(want))
            cr_assert(isnan(got) && !signbit(got) == !signbit(want),
                      "%s decode 0x%x: got %a (0x%08x) want %sNaN", f->name, c,
                      (double)got, fbits(got), signbit(want) ? "-" : "+");
        else
            cr_assert((double)got == want && !signbit(got) == !signbit(want),
                      "%s decode 0x%x: got %a (0x%08x) want %a", f->name, c, (double)got,
                      fbits(got), want);
    }
}

/* encode(decode(c)) == c for every non-NaN code, both zeros and the infinities included. */
static void check_roundtrip_all(const fmt *f)
{
    int c;
    for (c = 0; c < ncodes(f); c++) {
        float x;
        uint32_t got;
        if (is_nan_code(f, (uint32_t)c))
            continue;
        x = f->dec((uint32_t)c);
        got = f->enc(x);
        cr_assert(got == (uint32_t)c, "%s roundtrip code 0x%x: x=%a (0x%08x) got 0x%x want 0x%x",
                  f->name, c, (double)x, fbits(x), got, (uint32_t)c);
    }
}

/* NaN codes decode to NaN; NaN inputs of either sign and several payloads give the documented
 * code; infinite inputs give inf (or the format's stand-in). */
static void check_nan_inf(const fmt *f)
{
    static const uint32_t nans[] = { 0x7fc00000u, 0x7f800001u, 0x7fffffffu, 0x7fa00000u,
                                     0x7f80ffffu };
    size_t i;
    int c, n = 0;
    for (c = 0; c < ncodes(f); c++) {
        if (!is_nan_code(f, (uint32_t)c))
            continue;
        n++;
        cr_assert(isnan(f->dec((uint32_t)c)), "%s NaN code 0x%x decodes to %a", f->name, c,
                  (double)f->dec((uint32_t)c));
    }
    cr_assert(n == (f->sp == SP_IEEE ? 2 * ((1 << f->mbits) - 1) : f->sp == SP_FN ? 2 : 0),
              "%s: %d NaN codes", f->name, n);
    for (i = 0; i < sizeof nans / sizeof nans[0]; i++) {
        expect_enc(f, "+NaN", bitsf(nans[i]), f->nan_pos);
        expect_enc(f, "-NaN", bitsf(nans[i] | 0x80000000u), f->nan_neg);
        if (f->sp != SP_NONE)
            cr_assert(isnan(f->dec(f->enc(bitsf(nans[i])))), "%s NaN 0x%08x lost", f->name,
                      nans[i]);
    }
    expect_enc(f, "+inf", INFINITY, f->inf_mag);
    expect_enc(f, "-inf", -INFINITY, sign_bit(f) | f->inf_mag);
}

/* For each pair of adjacent magnitude codes (c, c+1), including (maxcode, would-be next):
 * the exact midpoint goes to the even code, one fp32 ulp below to c, one above to c+1. Both
 * signs. A code past maxcode stands for the overflow result. */
static void check_midpoints(const fmt *f)
{
    uint32_t c, s;
    for (c = 0; c <= f->maxcode; c++) {
        double lo = mag_value(f, c), hi = mag_value(f, c + 1);
        float mid = (float)((lo + hi) / 2);
        uint32_t clo = c, chi = c + 1 > f->maxcode ? f->ovf : c + 1;
        uint32_t ceven = (c & 1u) ? chi : clo;
        cr_assert((double)mid == (lo + hi) / 2, "%s midpoint of 0x%x not exact", f->name, c);
        for (s = 0; s <= sign_bit(f); s += sign_bit(f)) {
            float m = s ? -mid : mid;
            float below = nextafterf(m, 0.0f), above = nextafterf(m, s ? -INFINITY : INFINITY);
            uint32_t got = f->enc(m);
            cr_assert(got == (s | ceven), "%s midpoint %a (0x%08x) of codes 0x%x/0x%x: "
                      "got 0x%x want 0x%x", f->name, (double)m, fbits(m), s | c, s | (c + 1),
                      got, s | ceven);
            got = f->enc(below);
            cr_assert(got == (s | clo), "%s just below midpoint %a (0x%08x): got 0x%x want 0x%x",
                      f->name, (double)below, fbits(below), got, s | clo);
            got = f->enc(above);
            cr_assert(got == (s | chi), "%s just above midpoint %a (0x%08x): got 0x%x want 0x%x",
                      f->name, (double)above, fbits(above), got, s | chi);
        }
    }
}

/* One random float: a quarter are any bit pattern (NaN, inf, fp32 subnormals), the rest have an
 * exponent within a few binades of the format's range; of those a third keep only the top
 * mbits+2 mantissa bits, so exact ties and representable values come up often. */
static float random_input(const fmt *f)
{
    uint64_t r = rng_next();
    uint32_t u = (uint32_t)r, sel = (uint32_t)(r >> 32) & 3u, e, span, m;
    int elo = 127 + 1 - f->bias - f->mbits - 3;
    int ehi = 127 + (1 << f->ebits) - 1 - f->bias + 2;
    if (sel == 0)
        return bitsf(u);
    if (elo < 0)
        elo = 0;
    if (ehi > 254)
        ehi = 254;
    span = (uint32_t)(ehi - elo + 1);
    e = (uint32_t)elo + (uint32_t)((r >> 40) % span);
    m = u & 0x7fffffu;
    if (sel == 1)
        m &= ~((1u << (23 - f->mbits - 2)) - 1u);
    return bitsf((u & 0x80000000u) | (e << 23) | m);
}

static void check_random(const fmt *f, uint64_t seed, int n)
{
    int i;
    rng_state = seed;
    for (i = 0; i < n; i++) {
        float x = random_input(f);
        uint32_t got = f->enc(x), want = ref_encode(f, x);
        cr_assert(got == want, "%s random #%d x=%a (0x%08x): got 0x%x want 0x%x (brute force)",
                  f->name, i, (double)x, fbits(x), got, want);
    }
}

#define NRANDOM 300000

#define FORMAT_TESTS(F, SEED)                                                              \
    Test(F, decode_exhaustive) { check_decode_all(&F); }                                   \
    Test(F, roundtrip_exhaustive) { check_roundtrip_all(&F); }                             \
    Test(F, nan_and_inf) { check_nan_inf(&F); }                                            \
    Test(F, midpoints_ties_to_even) { check_midpoints(&F); }                               \
    Test(F, random_vs_brute_force) { check_random(&F, SEED, NRANDOM); }

FORMAT_TESTS(E4M3, 0x4e34u)
FORMAT_TESTS(E4M3FN, 0x4e34f1u)
FORMAT_TESTS(E5M2, 0x5e2u)
FORMAT_TESTS(E2M1, 0x2e1u)
FORMAT_TESTS(F16, 0xf16u)
FORMAT_TESTS(BF16, 0xbf16u)

/* ---- named boundaries ----------------------------------------------------------------------- */

Test(E4M3, boundaries)
{
    const fmt *f = &E4M3;
    expect_dec(f, 0x77, 240.0);
    expect_dec(f, 0x08, 0x1p-6);
    expect_dec(f, 0x01, 0x1p-9);
    expect_dec(f, 0x78, INFINITY);
    expect_dec(f, 0xf8, -INFINITY);
    expect_dec(f, 0x80, -0.0);
    expect_enc(f, "max finite", 240.0f, 0x77);
    expect_enc(f, "-max finite", -240.0f, 0xf7);
    expect_enc(f, "min normal", 0x1p-6f, 0x08);
    expect_enc(f, "min subnormal", 0x1p-9f, 0x01);
    expect_enc(f, "half min subnormal (tie -> 0)", 0x1p-10f, 0x00);
    expect_enc(f, "-half min subnormal (tie -> -0)", -0x1p-10f, 0x80);
    expect_enc(f, "just above half min subnormal", nextafterf(0x1p-10f, 1.0f), 0x01);
    expect_enc(f, "fp32 min subnormal", 0x1p-149f, 0x00);
    expect_enc(f, "just below overflow 248", nextafterf(248.0f, 0.0f), 0x77);
    expect_enc(f, "overflow threshold 248", 248.0f, 0x78);
    expect_enc(f, "-248", -248.0f, 0xf8);
    expect_enc(f, "FLT_MAX", FLT_MAX, 0x78);
    expect_enc(f, "+0", 0.0f, 0x00);
    expect_enc(f, "-0", -0.0f, 0x80);
}

Test(E4M3FN, boundaries)
{
    const fmt *f = &E4M3FN;
    expect_dec(f, 0x7e, 448.0);
    expect_dec(f, 0x78, 256.0);
    expect_dec(f, 0x08, 0x1p-6);
    expect_dec(f, 0x01, 0x1p-9);
    expect_dec(f, 0x7f, NAN);
    expect_dec(f, 0xff, NAN);
    expect_enc(f, "max finite", 448.0f, 0x7e);
    expect_enc(f, "-max finite", -448.0f, 0xfe);
    expect_enc(f, "240 (e4m3 max) is finite here", 240.0f, 0x77);
    expect_enc(f, "256 (e4m3 inf) is finite here", 256.0f, 0x78);
    expect_enc(f, "min normal", 0x1p-6f, 0x08);
    expect_enc(f, "min subnormal", 0x1p-9f, 0x01);
    expect_enc(f, "half min subnormal (tie -> 0)", 0x1p-10f, 0x00);
    expect_enc(f, "just above half min subnormal", nextafterf(0x1p-10f, 1.0f), 0x01);
    expect_enc(f, "464 ties to even 448", 464.0f, 0x7e);
    expect_enc(f, "-464 ties to even -448", -464.0f, 0xfe);
    expect_enc(f, "just above 464 -> NaN", nextafterf(464.0f, 1e9f), 0x7f);
    expect_enc(f, "just below -464 -> -NaN", nextafterf(-464.0f, -1e9f), 0xff);
    expect_enc(f, "480 -> NaN", 480.0f, 0x7f);
    expect_enc(f, "FLT_MAX -> NaN", FLT_MAX, 0x7f);
    expect_enc(f, "-0", -0.0f, 0x80);
}

Test(E5M2, boundaries)
{
    const fmt *f = &E5M2;
    expect_dec(f, 0x7b, 57344.0);
    expect_dec(f, 0x04, 0x1p-14);
    expect_dec(f, 0x01, 0x1p-16);
    expect_dec(f, 0x7c, INFINITY);
    expect_dec(f, 0x7d, NAN);
    expect_enc(f, "max finite", 57344.0f, 0x7b);
    expect_enc(f, "min normal", 0x1p-14f, 0x04);
    expect_enc(f, "min subnormal", 0x1p-16f, 0x01);
    expect_enc(f, "half min subnormal (tie -> 0)", 0x1p-17f, 0x00);
    expect_enc(f, "just above half min subnormal", nextafterf(0x1p-17f, 1.0f), 0x01);
    expect_enc(f, "just below overflow 61440", nextafterf(61440.0f, 0.0f), 0x7b);
    expect_enc(f, "overflow threshold 61440", 61440.0f, 0x7c);
    expect_enc(f, "-61440", -61440.0f, 0xfc);
    expect_enc(f, "65504 (fp16 max) overflows", 65504.0f, 0x7c);
    expect_enc(f, "-FLT_MAX overflows", -FLT_MAX, 0xfc);
    /* direct rounding, no double rounding via fp16: 1+2^-3+2^-12 -> 1.25, not the tie 1.125 */
    expect_enc(f, "no double rounding", 1.0f + 0x1p-3f + 0x1p-12f, 0x3d);
}

Test(E2M1, boundaries)
{
    static const double mags[8] = { 0, 0.5, 1, 1.5, 2, 3, 4, 6 };
    const fmt *f = &E2M1;
    uint32_t c;
    for (c = 0; c < 8; c++) {
        expect_dec(f, c, mags[c]);
        expect_dec(f, c | 8u, -mags[c]);
    }
    expect_dec(f, 0x10 | 0x5, 3.0);        /* only the low nibble is read */
    expect_enc(f, "max finite", 6.0f, 0x7);
    expect_enc(f, "min normal", 1.0f, 0x2);
    expect_enc(f, "min subnormal", 0.5f, 0x1);
    expect_enc(f, "half min subnormal (tie -> 0)", 0.25f, 0x0);
    expect_enc(f, "-half min subnormal (tie -> -0)", -0.25f, 0x8);
    expect_enc(f, "just above half min subnormal", nextafterf(0.25f, 1.0f), 0x1);
    expect_enc(f, "0.75 ties to even 1.0", 0.75f, 0x2);
    expect_enc(f, "1.25 ties to even 1.0", 1.25f, 0x2);
    expect_enc(f, "1.75 ties to even 2.0", 1.75f, 0x4);
    expect_enc(f, "2.5 ties to even 2.0", 2.5f, 0x4);
    expect_enc(f, "3.5 ties to even 4.0", 3.5f, 0x6);
    expect_enc(f, "5 ties to even 4.0", 5.0f, 0x6);
    expect_enc(f, "just above 5", nextafterf(5.0f, 6.0f), 0x7);
    expect_enc(f, "7 saturates", 7.0f, 0x7);
    expect_enc(f, "1e30 saturates", 1e30f, 0x7);
    expect_enc(f, "-1e30 saturates", -1e30f, 0xf);
    expect_enc(f, "-0", -0.0f, 0x8);
}

Test(F16, boundaries)
{
    const fmt *f = &F16;
    expect_dec(f, 0x7bff, 65504.0);
    expect_dec(f, 0x0400, 0x1p-14);
    expect_dec(f, 0x0001, 0x1p-24);
    expect_dec(f, 0x3c00, 1.0);
    expect_dec(f, 0x7c00, INFINITY);
    expect_dec(f, 0x7c01, NAN);
    expect_enc(f, "max finite", 65504.0f, 0x7bff);
    expect_enc(f, "just below overflow 65520", nextafterf(65520.0f, 0.0f), 0x7bff);
    expect_enc(f, "overflow threshold 65520", 65520.0f, 0x7c00);
    expect_enc(f, "-65520", -65520.0f, 0xfc00);
    expect_enc(f, "1e6 overflows", 1e6f, 0x7c00);
    expect_enc(f, "-FLT_MAX overflows", -FLT_MAX, 0xfc00);
    expect_enc(f, "min normal", 0x1p-14f, 0x0400);
    expect_enc(f, "min subnormal", 0x1p-24f, 0x0001);
    expect_enc(f, "half min subnormal (tie -> 0)", 0x1p-25f, 0x0000);
    expect_enc(f, "just above half min subnormal", nextafterf(0x1p-25f, 1.0f), 0x0001);
    expect_enc(f, "1.5 min subnormal (tie -> even 2)", 0x1.8p-24f, 0x0002);
    expect_enc(f, "fp32 subnormal", -0x1p-140f, 0x8000);
    expect_enc(f, "1 + 2^-11 ties to 1", 1.0f + 0x1p-11f, 0x3c00);
    expect_enc(f, "1 + 3*2^-11 ties to even up", 1.0f + 0x3p-11f, 0x3c02);
}

Test(BF16, boundaries)
{
    const fmt *f = &BF16;
    expect_dec(f, 0x7f7f, 0x1.fep127);
    expect_dec(f, 0x0080, 0x1p-126);
    expect_dec(f, 0x0001, 0x1p-133);
    expect_dec(f, 0x3f80, 1.0);
    expect_enc(f, "max finite", 0x1.fep127f, 0x7f7f);
    expect_enc(f, "just below overflow", bitsf(0x7f7f7fffu), 0x7f7f);
    expect_enc(f, "overflow threshold (midpoint to 2^128)", bitsf(0x7f7f8000u), 0x7f80);
    expect_enc(f, "FLT_MAX", FLT_MAX, 0x7f80);
    expect_enc(f, "-FLT_MAX", -FLT_MAX, 0xff80);
    expect_enc(f, "min normal", 0x1p-126f, 0x0080);
    expect_enc(f, "min subnormal", 0x1p-133f, 0x0001);
    expect_enc(f, "half min subnormal (tie -> 0)", 0x1p-134f, 0x0000);
    expect_enc(f, "just above half min subnormal", nextafterf(0x1p-134f, 1.0f), 0x0001);
    expect_enc(f, "fp32 min subnormal", 0x1p-149f, 0x0000);
    expect_enc(f, "1 + 2^-8 ties to 1", 1.0f + 0x1p-8f, 0x3f80);
    expect_enc(f, "1 + 3*2^-8 ties to even up", 1.0f + 0x3p-8f, 0x3f82);
    expect_enc(f, "sNaN with low payload stays NaN", bitsf(0x7f800001u), 0x7fc0);
    expect_enc(f, "NaN with full payload does not carry", bitsf(0xffffffffu), 0xffc0);
}

/* ---- E8M0 ----------------------------------------------------------------------------------- */

Test(E8M0, decode_exhaustive)
{
    int e;
    for (e = 0; e < 255; e++) {
        float got = kg_e8m0_to_f32((uint8_t)e);
        double want = ldexp(1.0, e - 127);
        cr_assert((double)got == want, "e8m0 decode 0x%02x: got %a (0x%08x) want %a", e,
                  (double)got, fbits(got), want);
    }
    cr_assert(isnan(kg_e8m0_to_f32(0xff)), "e8m0 decode 0xff: got %a want NaN",
              (double)kg_e8m0_to_f32(0xff));
    cr_assert(fbits(kg_e8m0_to_f32(0)) == 0x00400000u, "e8m0 0x00: got 0x%08x want 0x00400000",
              fbits(kg_e8m0_to_f32(0)));
}

static void expect_blk(const char *what, const float *x, long n, int emax, int want)
{
    int got = kg_e8m0_block_exponent(x, n, emax);
    cr_assert(got == want, "block exponent %s (emax %d): got 0x%02x want 0x%02x", what, emax,
              got, want);
}

Test(E8M0, block_exponent_named)
{
    float z[32] = { 0 }, b[32] = { 0 };
    float one = 1.0f, big[2] = { -448.0f, 3.0f }, nanb[3] = { 1.0f, NAN, -2.0f };
    float nanonly[2] = { NAN, -NAN }, inf1 = INFINITY, sub[2] = { 0x1p-149f, -0x1p-130f };
    float fmax = FLT_MAX;
    expect_blk("all zero (no wrap)", z, 32, 8, 0);
    expect_blk("all zero e5m2", z, 32, 15, 0);
    expect_blk("all zero e2m1", z, 32, 2, 0);
    expect_blk("n = 0", z, 0, 8, 0);
    expect_blk("1.0", &one, 1, 8, 127 - 8);
    expect_blk("|-448| dominates", big, 2, 8, 135 - 8);
    expect_blk("NaN ignored", nanb, 3, 8, 128 - 8);
    expect_blk("only NaN", nanonly, 2, 8, 0);
    expect_blk("inf", &inf1, 1, 8, 255 - 8);
    expect_blk("inf, emax 0 clamps to 254", &inf1, 1, 0, 254);
    expect_blk("subnormals", sub, 2, 2, 0);
    expect_blk("FLT_MAX e2m1", &fmax, 1, 2, 252);
    expect_blk("tiny value clamps at 0", &sub[1], 1, 15, 0);
    b[31] = 0x1.fffffep3f;                  /* just under 16: exponent field 130 */
    expect_blk("last element counts", b, 32, 2, 128);
}

/* Random blocks against an independent frexp-based exponent; and the MX property that the
 * largest element scaled by 2^-(e-127) stays below 2^(emax+1) unless e was clamped at 0. */
Test(E8M0, block_exponent_random)
{
    static const int emaxes[3] = { 8, 15, 2 };
    float x[32];
    int t, k, i;
    rng_state = 0xe8e0u;
    for (t = 0; t < 20000; t++) {
        int emax = emaxes[t % 3], best = 0, want, got;
        int escale = (int)(rng_next() % 60) - 30;
        for (k = 0; k < 32; k++) {
            uint64_t r = rng_next();
            double v = ldexp((double)(r >> 40) / 16777216.0, escale - (int)(r % 8));
            x[k] = (r & 0x800000u) ? -(float)v : (float)v;
            if ((r & 0xf000u) == 0)
                x[k] = 0.0f;
        }
        for (k = 0; k < 32; k++) {
            if (x[k] != 0.0f && fabsf(x[k]) >= FLT_MIN) {
                frexpf(x[k], &i);
                if (i + 126 > best)
                    best = i + 126;
            }
        }
        want = best - emax < 0 ? 0 : best - emax;
        got = kg_e8m0_block_exponent(x, 32, emax);
        cr_assert(got == want, "random block #%d (emax %d): got 0x%02x want 0x%02x", t, emax,
                  got, want);
        for (k = 0; k < 32 && got > 0; k++)
            cr_assert(fabs(ldexp(x[k], -(got - 127))) < ldexp(1.0, emax + 1),
                      "block #%d elem %d %a too big for scale 0x%02x", t, k, (double)x[k], got);
    }
}

/* ---- names ---------------------------------------------------------------------------------- */

Test(dtype, names_roundtrip)
{
    static const char *const want[KG_DTYPE_COUNT] = {
        "f32", "bf16", "fp16", "e4m3", "e4m3fn", "e5m2", "e2m1", "e8m0", "u8", "i32", "i64", "u32"
    };
    int t;
    for (t = 0; t < KG_DTYPE_COUNT; t++) {
        const char *n = kg_dtype_name((kg_dtype)t);
        cr_assert(n != NULL && strcmp(n, want[t]) == 0, "name of %d: got %s want %s", t,
                  n ? n : "(null)", want[t]);
        cr_assert(kg_dtype_from_name(n) == t, "from_name(%s): got %d want %d", n,
                  kg_dtype_from_name(n), t);
    }
}

Test(dtype, names_unknown)
{
    static const char *const bad[] = { "", "F32", "float32", "e4m3 ", "e4m", "e4m3fnx",
                                       "bfloat16", "fp8" };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert(kg_dtype_from_name(bad[i]) == -1, "from_name(\"%s\"): got %d want -1",
                  bad[i], kg_dtype_from_name(bad[i]));
    cr_assert(kg_dtype_from_name(NULL) == -1, "from_name(NULL) not -1");
    cr_assert(kg_dtype_name(KG_DTYPE_COUNT) == NULL, "name(KG_DTYPE_COUNT) not NULL");
    cr_assert(kg_dtype_name((kg_dtype)-1) == NULL, "name(-1) not NULL");
}

Test(dtype, bits)
{
    static const int want[KG_DTYPE_COUNT] = { 32, 16, 16, 8, 8, 8, 4, 8, 8, 32, 64, 32 };
    int t;
    for (t = 0; t < KG_DTYPE_COUNT; t++)
        cr_assert(kg_dtype_bits((kg_dtype)t) == want[t], "bits of %s: got %d want %d",
                  kg_dtype_name((kg_dtype)t), kg_dtype_bits((kg_dtype)t), want[t]);
    cr_assert(kg_dtype_bits(KG_DTYPE_COUNT) == 0, "bits(KG_DTYPE_COUNT) not 0");
}
