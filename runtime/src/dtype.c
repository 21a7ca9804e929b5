/* dtype.c: element types of kgen tensors and bit-exact conversions between fp32 and the narrow
 * float formats (bf16, fp16, fp8 e4m3/e4m3fn/e5m2, fp4 e2m1, E8M0 scales). Integer-only C99 so
 * every compiler gives the same bits; rounding and special values follow ml_dtypes. */
#include "kgen/dtype.h"

#include <stddef.h>
#include <string.h>

/* ---- names ------------------------------------------------------------------------------- */

static const char *const dtype_names[KG_DTYPE_COUNT] = {
    "f32", "bf16", "fp16", "e4m3", "e4m3fn", "e5m2", "e2m1", "e8m0", "u8", "i32", "i64", "u32"
};

static const int dtype_bits[KG_DTYPE_COUNT] = { 32, 16, 16, 8, 8, 8, 4, 8, 8, 32, 64, 32 };

const char *kg_dtype_name(kg_dtype t)
{
    if ((int)t < 0 || (int)t >= KG_DTYPE_COUNT)
        return NULL;
    return dtype_names[t];
}

int kg_dtype_from_name(const char *name)
{
    int i;
    if (name == NULL)
        return -1;
    for (i = 0; i < KG_DTYPE_COUNT; i++)
        if (strcmp(name, dtype_names[i]) == 0)
            return i;
    return -1;
}

int kg_dtype_bits(kg_dtype t)
{
    if ((int)t < 0 || (int)t >= KG_DTYPE_COUNT)
        return 0;
    return dtype_bits[t];
}

/* ---- fp32 bit access ----------------------------------------------------------------------- */

#define F32_SIGN  0x80000000u
#define F32_INF   0x7f800000u
#define F32_QNAN  0x7fc00000u

static uint32_t f32_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float f32_from_bits(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* ---- generic narrow-float rounding and widening --------------------------------------------- */

/* v >> s rounded to nearest, ties to even. s is clamped to 25: v < 2^24 (a 24-bit significand),
 * so any larger shift gives 0 as well, and a shift of 32 would be undefined. */
static uint32_t shift_rne(uint32_t v, int s)
{
    uint32_t q, rem, half;
    if (s <= 0)
        return v;
    if (s > 25)
        s = 25;
    q = v >> s;
    rem = v & ((1u << s) - 1u);
    half = 1u << (s - 1);
    if (rem > half || (rem == half && (q & 1u)))
        q++;
    return q;
}

/* Round a finite fp32 magnitude a (bits, sign clear) to a format with mbits mantissa bits and
 * exponent bias `bias`, subnormals included. Returns the magnitude code (exponent field above
 * the mantissa); a rounding carry flows into the exponent, so the result may exceed the
 * format's largest finite code and the caller decides between inf, NaN and saturation. */
static uint32_t round_mag(uint32_t a, int mbits, int bias)
{
    int e = (int)(a >> 23);
    uint32_t sig = a & 0x7fffffu;
    int te;

    if (e == 0)
        e = 1;                     /* fp32 subnormal: exponent -126, no implicit bit */
    else
        sig |= 0x800000u;
    te = e - 127 + bias;           /* target biased exponent if the result is normal */
    if (te >= 1)                   /* implicit bit lands on bit mbits and adds 1 to te - 1 */
        return ((uint32_t)(te - 1) << mbits) + shift_rne(sig, 23 - mbits);
    return shift_rne(sig, 23 - mbits + (1 - te));   /* subnormal; may round up to min normal */
}

/* Widen a finite magnitude code (no sign, no inf/NaN) of a format with mbits mantissa bits and
 * bias `bias` to fp32 bits. Exact: subnormals are normalised by shifting the mantissa up. */
static uint32_t widen_mag(uint32_t c, int mbits, int bias)
{
    uint32_t m = c & ((1u << mbits) - 1u);
    int e = (int)(c >> mbits);

    if (e == 0) {
        if (m == 0)
            return 0;
        e = 1;
        while (!(m & (1u << mbits))) {
            m <<= 1;
            e--;
        }
        m &= (1u << mbits) - 1u;
    }
    return ((uint32_t)(e - bias + 127) << 23) | (m << (23 - mbits));
}

/* ---- bf16 / fp16 ------------------------------------------------------------------------- */

float kg_bf16_to_f32(uint16_t h)
{
    return f32_from_bits((uint32_t)h << 16);
}

/* The classic bias trick: adding 0x7fff plus the lowest kept bit rounds to nearest even, and a
 * carry out of the mantissa correctly bumps the exponent (FLT_MAX -> inf). NaN is handled first
 * so a payload living only in the low half cannot round to inf. */
uint16_t kg_f32_to_bf16(float x)
{
    uint32_t u = f32_bits(x);
    if ((u & ~F32_SIGN) > F32_INF)
        return (uint16_t)(((u & F32_SIGN) >> 16) | 0x7fc0u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* fp16 -> fp32: exponent field 31 is inf (m = 0) or NaN (payload kept, quiet bit set). */
float kg_f16_to_f32(uint16_t h)
{
    uint32_t s = (uint32_t)(h & 0x8000u) << 16;
    uint32_t mag = h & 0x7fffu;
    if (mag >= 0x7c00u) {
        uint32_t m = (uint32_t)(mag & 0x3ffu) << 13;
        return f32_from_bits(s | F32_INF | (m ? m | 0x400000u : 0));
    }
    return f32_from_bits(s | widen_mag(mag, 10, 15));
}

uint16_t kg_f32_to_f16(float x)
{
    uint32_t u = f32_bits(x), a = u & ~F32_SIGN, mag;
    uint16_t s = (uint16_t)((u & F32_SIGN) >> 16);
    if (a > F32_INF)
        return (uint16_t)(s | 0x7e00u);
    if (a == F32_INF)
        return (uint16_t)(s | 0x7c00u);
    mag = round_mag(a, 10, 15);
    return (uint16_t)(s | (mag > 0x7bffu ? 0x7c00u : mag));
}

/* ---- fp8 ---------------------------------------------------------------------------------- */

/* float8_e4m3: IEEE-like, exponent field 15 is inf (0x78) or NaN. */
float kg_e4m3_to_f32(uint8_t c)
{
    uint32_t s = (uint32_t)(c & 0x80u) << 24;
    uint32_t mag = c & 0x7fu;
    if (mag == 0x78u)
        return f32_from_bits(s | F32_INF);
    if (mag > 0x78u)
        return f32_from_bits(s | F32_QNAN);
    return f32_from_bits(s | widen_mag(mag, 3, 7));
}

/* Anything that rounds past 240 (0x77) is inf, so |x| >= 248 (the tie rounds up to the even
 * would-be 256) gives inf. NaN gives ml_dtypes' quiet NaN 0x7c with the sign kept. */
uint8_t kg_f32_to_e4m3(float x)
{
    uint32_t u = f32_bits(x), a = u & ~F32_SIGN, mag;
    uint8_t s = (uint8_t)((u >> 24) & 0x80u);
    if (a > F32_INF)
        return (uint8_t)(s | 0x7cu);
    if (a == F32_INF)
        return (uint8_t)(s | 0x78u);
    mag = round_mag(a, 3, 7);
    return (uint8_t)(s | (mag > 0x77u ? 0x78u : mag));
}

/* float8_e4m3fn: exponent field 15 holds normal values 256..448; only 0x7f/0xff are NaN. */
float kg_e4m3fn_to_f32(uint8_t c)
{
    uint32_t s = (uint32_t)(c & 0x80u) << 24;
    uint32_t mag = c & 0x7fu;
    if (mag == 0x7fu)
        return f32_from_bits(s | F32_QNAN);
    return f32_from_bits(s | widen_mag(mag, 3, 7));
}

/* No inf: inf, NaN and anything rounding past 448 (|x| > 464; 464 ties to even 448) give the
 * NaN 0x7f with the sign kept, as ml_dtypes' non-saturating cast does. */
uint8_t kg_f32_to_e4m3fn(float x)
{
    uint32_t u = f32_bits(x), a = u & ~F32_SIGN, mag;
    uint8_t s = (uint8_t)((u >> 24) & 0x80u);
    if (a >= F32_INF)
        return (uint8_t)(s | 0x7fu);
    mag = round_mag(a, 3, 7);
    return (uint8_t)(s | (mag > 0x7eu ? 0x7fu : mag));
}

/* float8_e5m2: the top byte of an fp16, exponent field 31 is inf (0x7c) or NaN. */
float kg_e5m2_to_f32(uint8_t c)
{
    uint32_t s = (uint32_t)(c & 0x80u) << 24;
    uint32_t mag = c & 0x7fu;
    if (mag == 0x7cu)
        return f32_from_bits(s | F32_INF);
    if (mag > 0x7cu)
        return f32_from_bits(s | F32_QNAN);
    return f32_from_bits(s | widen_mag(mag, 2, 15));
}

/* Rounding past 57344 (|x| >= 61440) gives inf; NaN gives ml_dtypes' quiet NaN 0x7e | sign.
 * Rounded directly from fp32 (not via fp16), so there is no double rounding. */
uint8_t kg_f32_to_e5m2(float x)
{
    uint32_t u = f32_bits(x), a = u & ~F32_SIGN, mag;
    uint8_t s = (uint8_t)((u >> 24) & 0x80u);
    if (a > F32_INF)
        return (uint8_t)(s | 0x7eu);
    if (a == F32_INF)
        return (uint8_t)(s | 0x7cu);
    mag = round_mag(a, 2, 15);
    return (uint8_t)(s | (mag > 0x7bu ? 0x7cu : mag));
}

/* ---- fp4 and MX scales -------------------------------------------------------------------- */

float kg_e2m1_to_f32(uint8_t nibble)
{
    uint32_t s = (uint32_t)(nibble & 0x8u) << 28;
    return f32_from_bits(s | widen_mag(nibble & 0x7u, 1, 1));
}

/* No inf or NaN. Like ml_dtypes: inf and anything rounding past 6 saturate to +-6 (0x7/0xf);
 * NaN becomes ml_dtypes' stand-in "NaN" code 0x8 (-0.0) negated by the input's sign, so +NaN
 * gives 0x8 and -NaN gives 0x0. */
uint8_t kg_f32_to_e2m1(float x)
{
    uint32_t u = f32_bits(x), a = u & ~F32_SIGN, mag;
    uint8_t s = (uint8_t)((u >> 28) & 0x8u);
    if (a > F32_INF)
        return (uint8_t)(0x8u ^ s);
    if (a == F32_INF)
        return (uint8_t)(s | 0x7u);
    mag = round_mag(a, 1, 1);
    return (uint8_t)(s | (mag > 0x7u ? 0x7u : mag));
}

/* E8M0 has no sign, no mantissa and no zero: code e is 2^(e-127); e = 0 is the fp32 subnormal
 * 2^-127 (bits 0x00400000). */
float kg_e8m0_to_f32(uint8_t e)
{
    if (e == 0xffu)
        return f32_from_bits(F32_QNAN);
    if (e == 0)
        return f32_from_bits(0x00400000u);
    return f32_from_bits((uint32_t)e << 23);
}

/* MX shared exponent: the largest biased fp32 exponent field in the block (0 for zeros and
 * subnormals, 255 for inf; NaN skipped) minus emax, clamped to [0, 254] in int arithmetic so an
 * all-zero block gives 0 instead of wrapping around in uint8. */
uint8_t kg_e8m0_block_exponent(const float *x, long n, int emax)
{
    int best = 0, e;
    long k;
    for (k = 0; k < n; k++) {
        uint32_t a = f32_bits(x[k]) & ~F32_SIGN;
        if (a > F32_INF)
            continue;
        e = (int)(a >> 23);
        if (e > best)
            best = e;
    }
    e = best - emax;
    if (e < 0)
        e = 0;
    if (e > 254)
        e = 254;
    return (uint8_t)e;
}
