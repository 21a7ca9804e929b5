/* prim_scalar.c: the scalar reference of every primitive in kgen/abi.h. Plain loops in the
 * order the ABI comment gives; SIMD versions are tested against these. Built with
 * -ffp-contract=off so no multiply-add is fused behind the reader's back. */
#include "kgen/abi.h"
#include "kgen/dtype.h"
#include "prim.h"

void kgp_cvt_bf16_f32__scalar(float *y, const kg_u16 *x, long n)
{
    for (long i = 0; i < n; i++)
        y[i] = kg_bf16_to_f32(x[i]);
}

void kgp_cvt_f16_f32__scalar(float *y, const kg_u16 *x, long n)
{
    for (long i = 0; i < n; i++)
        y[i] = kg_f16_to_f32(x[i]);
}

void kgp_cvt_f32_bf16__scalar(kg_u16 *y, const float *x, long n)
{
    for (long i = 0; i < n; i++)
        y[i] = kg_f32_to_bf16(x[i]);
}

void kgp_cvt_f32_f16__scalar(kg_u16 *y, const float *x, long n)
{
    for (long i = 0; i < n; i++)
        y[i] = kg_f32_to_f16(x[i]);
}

void kgp_round_bf16_f32__scalar(float *y, const float *x, long n)
{
    for (long i = 0; i < n; i++)
        y[i] = kg_bf16_to_f32(kg_f32_to_bf16(x[i]));
}

void kgp_round_f16_f32__scalar(float *y, const float *x, long n)
{
    for (long i = 0; i < n; i++)
        y[i] = kg_f16_to_f32(kg_f32_to_f16(x[i]));
}

void kgp_scale_mul_f32__scalar(float *y, const float *x, float s, const float *g, long n)
{
    if (g) {
        for (long i = 0; i < n; i++)
            y[i] = (x[i] * s) * g[i];
    } else {
        for (long i = 0; i < n; i++)
            y[i] = x[i] * s;
    }
}

/* Comparisons written so a NaN falls through both tests and is kept. */
static float clampf(float v, float lo, float hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

void kgp_clamp_f32__scalar(float *y, const float *x, float lo, float hi, long n)
{
    for (long i = 0; i < n; i++)
        y[i] = clampf(x[i], lo, hi);
}

void kgp_quant_e4m3_f32__scalar(kg_u8 *q, const float *x, float s, float m, long n)
{
    for (long i = 0; i < n; i++)
        q[i] = kg_f32_to_e4m3(clampf(x[i] * s, -m, m));
}

void kgp_quant_e4m3fn_f32__scalar(kg_u8 *q, const float *x, float s, float m, long n)
{
    for (long i = 0; i < n; i++)
        q[i] = kg_f32_to_e4m3fn(clampf(x[i] * s, -m, m));
}

/* Rotations read all inputs of an element before writing, so y may alias x. */
void kgp_rot_rows_f32__scalar(float *y0, float *y1, const float *x0, const float *x1,
                              const float *c, const float *s, long n)
{
    for (long i = 0; i < n; i++) {
        float a = x0[i], b = x1[i];
        y0[i] = a * c[i] - b * s[i];
        y1[i] = b * c[i] + a * s[i];
    }
}

void kgp_rot_pairs_f32__scalar(float *y, const float *x, const float *c, const float *s, long h)
{
    for (long j = 0; j < h; j++) {
        float a = x[2 * j], b = x[2 * j + 1];
        y[2 * j] = a * c[j] - b * s[j];
        y[2 * j + 1] = b * c[j] + a * s[j];
    }
}

void kgp_rot_hf_f32__scalar(float *y, const float *x, const float *c, const float *s, long h)
{
    for (long j = 0; j < h; j++) {
        float a = x[j], b = x[j + h];
        y[j] = a * c[j] - b * s[j];
        y[j + h] = b * c[j + h] + a * s[j + h];
    }
}

void kgp_rot_hf_bwd_f32__scalar(float *y, const float *x, const float *c, const float *s, long h)
{
    for (long j = 0; j < h; j++) {
        float a = x[j], b = x[j + h];
        y[j] = a * c[j] + b * s[j + h];
        y[j + h] = b * c[j + h] - a * s[j];
    }
}

float kgp_sumsq_f32__scalar(const float *x, long n)
{
    float acc = 0.0f;
    for (long i = 0; i < n; i++)
        acc += x[i] * x[i];
    return acc;
}

float kgp_maxabs_f32__scalar(const float *x, long n)
{
    float m = 0.0f;
    for (long i = 0; i < n; i++) {
        float a = x[i] < 0 ? -x[i] : x[i];
        if (a != a)
            return a;
        if (a > m)
            m = a;
    }
    return m;
}

float kgp_cumsum_f32__scalar(float *y, const float *x, float carry, long n)
{
    for (long i = 0; i < n; i++) {
        carry += x[i];
        y[i] = carry;
    }
    return carry;
}
