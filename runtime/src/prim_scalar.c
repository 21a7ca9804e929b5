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

float kgp_sum_f32__scalar(const float *x, long n)
{
    float acc = 0.0f;
    for (long i = 0; i < n; i++)
        acc += x[i];
    return acc;
}

void kgp_add_f32__scalar(float *y, const float *a, const float *b, long n)
{
    for (long i = 0; i < n; i++)
        y[i] = a[i] + b[i];
}

void kgp_mul_f32__scalar(float *y, const float *a, const float *b, long n)
{
    for (long i = 0; i < n; i++)
        y[i] = a[i] * b[i];
}

void kgp_affine_f32__scalar(float *y, const float *x, float mu, float s, const float *g,
                            const float *b, long n)
{
    for (long i = 0; i < n; i++) {
        float v = (x[i] - mu) * s;
        if (g)
            v = v * g[i];
        if (b)
            v = v + b[i];
        y[i] = v;
    }
}

/* ---- activations ---------------------------------------------------------------------------- */

static float sigmoidf(float v)
{
    return 1.0f / (1.0f + expf(-v));
}

void kgp_silu_f32__scalar(float *y, const float *x, long n)
{
    for (long i = 0; i < n; i++)
        y[i] = x[i] * sigmoidf(x[i]);
}

void kgp_gelu_f32__scalar(float *y, const float *x, long n)
{
    for (long i = 0; i < n; i++)
        y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

void kgp_gelu_tanh_f32__scalar(float *y, const float *x, long n)
{
    for (long i = 0; i < n; i++) {
        float v = x[i];
        y[i] = 0.5f * v * (1.0f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
    }
}

void kgp_swish_f32__scalar(float *y, const float *x, long n)
{
    for (long i = 0; i < n; i++)
        y[i] = x[i] * sigmoidf(1.702f * x[i]);
}

/* ---- quantize-dequantize of activations ------------------------------------------------------ */

void kgp_round_e4m3_f32__scalar(float *y, const float *x, float s, float m, long n)
{
    for (long i = 0; i < n; i++)
        y[i] = kg_e4m3_to_f32(kg_f32_to_e4m3(clampf(x[i] * s, -m, m)));
}

void kgp_round_e4m3fn_f32__scalar(float *y, const float *x, float s, float m, long n)
{
    for (long i = 0; i < n; i++)
        y[i] = kg_e4m3fn_to_f32(kg_f32_to_e4m3fn(clampf(x[i] * s, -m, m)));
}

void kgp_round_mx_e4m3fn_f32__scalar(float *y, kg_u8 *e8, const float *x, long n)
{
    for (long b = 0; b * 32 < n; b++) {
        long len = n - b * 32 < 32 ? n - b * 32 : 32;
        const float *xb = x + b * 32;
        uint8_t e = kg_e8m0_block_exponent(xb, len, 8);
        float s = kg_e8m0_to_f32(e); /* a power of two: x / s and q * s are exact */
        for (long i = 0; i < len; i++)
            y[b * 32 + i] = kg_e4m3fn_to_f32(kg_f32_to_e4m3fn(clampf(xb[i] / s, -448.0f, 448.0f))) * s;
        if (e8)
            e8[b] = e;
    }
}

/* ---- GEMM ------------------------------------------------------------------------------------ */

/* Element (k, n) of a packed weight, decoded and scaled (kgen/abi.h gives the layout). */
static float wt_at(const kg_wt *W, long k, long n)
{
    long p = n / W->nr, j = n % W->nr;
    long e = p * W->kpad * W->nr + (k / W->kg) * W->nr * W->kg + j * W->kg + k % W->kg;
    float v;
    switch (W->fmt) {
    case KG_WT_F32: v = ((const float *)W->data)[e]; break;
    case KG_WT_BF16: v = kg_bf16_to_f32(((const kg_u16 *)W->data)[e]); break;
    case KG_WT_F16: v = kg_f16_to_f32(((const kg_u16 *)W->data)[e]); break;
    case KG_WT_E4M3: v = kg_e4m3_to_f32(((const kg_u8 *)W->data)[e]); break;
    case KG_WT_E4M3FN: v = kg_e4m3fn_to_f32(((const kg_u8 *)W->data)[e]); break;
    case KG_WT_E5M2: v = kg_e5m2_to_f32(((const kg_u8 *)W->data)[e]); break;
    default: v = kg_e2m1_to_f32((uint8_t)(((const kg_u8 *)W->data)[e / 2] >> (e % 2 * 4))); break;
    }
    if (W->kb)
        v = v * kg_e8m0_to_f32(W->scale[p * (W->kpad / W->kb) * W->nr + (k / W->kb) * W->nr + j]);
    return v;
}

/* Blocks of MB rows x NB columns x KB depth: each decoded weight row piece serves MB rows, and
 * each (m, n) still sums over k in ascending order, so the bits do not depend on the blocking. */
enum { GEMM_MB = 16, GEMM_NB = 64, GEMM_KB = 128 };

void kgp_gemm_f32__scalar(float *C, long ldc, const float *A, long lda, long M, const kg_wt *W,
                          long n0, long n1)
{
    int to_bf16 = W->fmt != KG_WT_F32 && W->fmt != KG_WT_F16;
    float acc[GEMM_MB][GEMM_NB], a[GEMM_MB][GEMM_KB], w[GEMM_NB];
    for (long m0 = 0; m0 < M; m0 += GEMM_MB) {
        long mb = M - m0 < GEMM_MB ? M - m0 : GEMM_MB;
        for (long c0 = n0; c0 < n1; c0 += GEMM_NB) {
            long nb = n1 - c0 < GEMM_NB ? n1 - c0 : GEMM_NB;
            for (long m = 0; m < mb; m++)
                for (long j = 0; j < nb; j++)
                    acc[m][j] = 0.0f;
            for (long k0 = 0; k0 < W->K; k0 += GEMM_KB) {
                long kb = W->K - k0 < GEMM_KB ? W->K - k0 : GEMM_KB;
                for (long m = 0; m < mb; m++)
                    for (long k = 0; k < kb; k++) {
                        float v = A[(m0 + m) * lda + k0 + k];
                        a[m][k] = to_bf16 ? kg_bf16_to_f32(kg_f32_to_bf16(v)) : v;
                    }
                for (long k = 0; k < kb; k++) {
                    for (long j = 0; j < nb; j++)
                        w[j] = wt_at(W, k0 + k, c0 + j);
                    for (long m = 0; m < mb; m++)
                        for (long j = 0; j < nb; j++)
                            acc[m][j] += a[m][k] * w[j];
                }
            }
            for (long m = 0; m < mb; m++)
                for (long j = 0; j < nb; j++)
                    C[(m0 + m) * ldc + c0 + j] = acc[m][j];
        }
    }
}
