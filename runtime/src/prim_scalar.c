/* prim_scalar.c: the scalar reference of every primitive in kgen/abi.h. Plain loops in the
 * order the ABI comment gives; SIMD versions are tested against these. Built with
 * -ffp-contract=off so no multiply-add is fused behind the reader's back. */
#include <math.h>
#include <string.h>

#include "kgen/abi.h"
#include "kgen/dtype.h"
#include "kgen/kgen.h"
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

/* The 256 values of each fp8 format, decoded once at load (kg_e4m3_to_f32 is the definition):
 * a table read is what decoding a row of codes costs. */
static float e4m3_value[256], e4m3fn_value[256];

__attribute__((constructor)) static void fill_fp8_tables(void)
{
    for (int c = 0; c < 256; c++) {
        e4m3_value[c] = kg_e4m3_to_f32((uint8_t)c);
        e4m3fn_value[c] = kg_e4m3fn_to_f32((uint8_t)c);
    }
}

void kgp_cvt_e4m3_f32__scalar(float *y, const kg_u8 *x, long n)
{
    for (long i = 0; i < n; i++)
        y[i] = e4m3_value[x[i]];
}

void kgp_cvt_e4m3fn_f32__scalar(float *y, const kg_u8 *x, long n)
{
    for (long i = 0; i < n; i++)
        y[i] = e4m3fn_value[x[i]];
}

void kgp_prefetch_wt__scalar(const kg_wt *W, long bytes)
{
    if (!W || !W->data || bytes <= 0 || W->nr <= 0)
        return;
    /* the panels' bytes: within what kg_wt_pack allocated, so no line past them is asked for */
    long size = (W->N + W->nr - 1) / W->nr * W->kpad * W->nr / 8 * kg_wt_fmt_bits(W->fmt);
    const char *p = W->data;
    for (long b = 0; b < (bytes < size ? bytes : size); b += 64)
        __builtin_prefetch(p + b, 0, 2);
}

/* Logical h = 512j + 4p + q from stored q*H/4 + 128j + p: four strided reads per output run,
 * in output order so y is written once, front to back. */
void kgp_unswizzle_4h_f32__scalar(float *y, const float *x, long H)
{
    long q4 = H / 4;
    for (long j = 0; j < H / 512; j++)
        for (long p = 0; p < 128; p++)
            for (long q = 0; q < 4; q++)
                y[512 * j + 4 * p + q] = x[q * q4 + 128 * j + p];
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

/* The per-row quantizer of a loader: the row's largest magnitude (a NaN fails the compare and
 * is passed over), its scale, the codes. Written as the model loader's own quantizer was, so
 * --weights fp8 keeps its bits (tests/test_model_quant.c). */
#define E4M3_MAX 240.0f

static float rows_scale(float a) { return a > 0 ? a / E4M3_MAX : 1.0f; }

void kgp_quant_rows_e4m3_f32__scalar(kg_u8 *q, float *s, const float *x, long n, long k)
{
    for (long r = 0; r < n; r++, x += k, q += k) {
        float a = 0;
        for (long j = 0; j < k; j++)
            a = fabsf(x[j]) > a ? fabsf(x[j]) : a;
        s[r] = rows_scale(a);
        for (long j = 0; j < k; j++)
            q[j] = kg_f32_to_e4m3(x[j] / s[r]);
    }
}

void kgp_quant_rows_e4m3_bf16__scalar(kg_u8 *q, float *s, const kg_u16 *x, long n, long k)
{
    for (long r = 0; r < n; r++, x += k, q += k) {
        float a = 0;
        for (long j = 0; j < k; j++)
            a = fabsf(kg_bf16_to_f32(x[j])) > a ? fabsf(kg_bf16_to_f32(x[j])) : a;
        s[r] = rows_scale(a);
        for (long j = 0; j < k; j++)
            q[j] = kg_f32_to_e4m3(kg_bf16_to_f32(x[j]) / s[r]);
    }
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

/* Row by row: each element reads both halves before it writes, so y may be x. */
void kgp_rot_half_rows_f32__scalar(float *y, const float *x, const float *c, const float *s,
                                   long ts, long o, long rows, long h)
{
    for (long r = 0; r < rows; r++, y += 2 * h, x += 2 * h, c += ts, s += ts)
        for (long j = 0; j < h; j++) {
            float a = x[j], b = x[j + h];
            y[j] = a * c[j] - b * s[j];
            y[j + h] = b * c[j + o] + a * s[j + o];
        }
}

void kgp_rot_half_rows_bf16__scalar(kg_u16 *y, const kg_u16 *x, const float *c, const float *s,
                                    long ts, long o, long rows, long h)
{
    for (long r = 0; r < rows; r++, y += 2 * h, x += 2 * h, c += ts, s += ts)
        for (long j = 0; j < h; j++) {
            float a = kg_bf16_to_f32(x[j]), b = kg_bf16_to_f32(x[j + h]);
            y[j] = kg_f32_to_bf16(a * c[j] - b * s[j]);
            y[j + h] = kg_f32_to_bf16(b * c[j + o] + a * s[j + o]);
        }
}

/* Defined by the composition it replaces. */
float kgp_scale_round_bf16_f32__scalar(float *y, const float *x, float s, const float *g, long n)
{
    kgp_scale_mul_f32__scalar(y, x, s, g, n);
    kgp_round_bf16_f32__scalar(y, y, n);
    return kgp_maxabs_f32__scalar(y, n);
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

void kgp_cumsum_rows_f32__scalar(float *y, long ldy, const float *x, long ldx, float *carry,
                                 long rows, long n)
{
    for (long r = 0; r < rows; r++) {
        float acc = carry[r];
        for (long i = 0; i < n; i++) {
            acc += x[r * ldx + i];
            y[r * ldy + i] = acc;
        }
        carry[r] = acc;
    }
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

/* The activations run in double on plain operations (add, multiply, divide, bit moves; no libm),
 * the sequence prim_simd_body.h repeats on vectors, so every ISA gives these bits; the result is
 * rounded to fp32 once, at the end. test_prim_simd.c bounds them against libm in double:
 * within 1 ulp. Three are x * sigmoid(k): silu k = x, swish k = 1.702x, and gelu_tanh
 * k = 2 sqrt(2/pi) (x + 0.044715x^3), since 0.5(1 + tanh u) = sigmoid(2u). */

/* Constants shared with prim_simd_body.h's copy: change both or the bit-exact test fails. */
#define EXP_SHIFT 0x1.8p52 /* adding it rounds |v| < 2^51 to an integer, nearest even */
#define LOG2E 1.4426950408889634
#define LN2_HI 6.93147180369123816490e-01 /* ln 2 to 32 bits: n * LN2_HI is exact */
#define LN2_LO 1.90821492927058770002e-10
#define SQRT1_2 0.70710678118654752440
#define GELU_TANH_K 1.59576912160573071175 /* 2 sqrt(2/pi) */
/* log(erfc(z) e^(z^2) / t) for t = 2 / (2 + z), 0 <= z <= 13, as a polynomial in t (degree 13,
 * highest first): a Chebyshev fit, relative error of the erfc below 2.3e-10 (mpmath). */
static const double ERFC_P[14] = {
    0.008232402249845875, 0.11774521800644977, -1.1186981624725758, 3.8278516092116748,
    -7.035770699740481,   7.660146773776329,   -5.097003420968402,  2.3068817349492097,
    -0.9320374480870743,  0.09576134069571446, 0.054622101612510646, 0.37795350545980677,
    0.9998224537668073,   -1.265507408319349,
};

static uint64_t dbl_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double dbl_from_bits(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* e^a for -708 <= a <= 708 (NaN gives NaN): a = n ln2 + r with |r| <= ln2/2, e^r by its Taylor
 * series to r^9 (relative error below 1e-11), times 2^n built in the exponent field. */
static double exp_d(double a)
{
    double kd = a * LOG2E + EXP_SHIFT;
    uint64_t nb = dbl_bits(kd); /* n + 1023 lands in the low 12 bits: shifted up, 2^n */
    kd = kd - EXP_SHIFT;
    double r = (a - kd * LN2_HI) - kd * LN2_LO;
    double p = 1.0 / 362880;
    p = p * r + 1.0 / 40320;
    p = p * r + 1.0 / 5040;
    p = p * r + 1.0 / 720;
    p = p * r + 1.0 / 120;
    p = p * r + 1.0 / 24;
    p = p * r + 1.0 / 6;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    return p * dbl_from_bits((nb + 1023) << 52);
}

/* sigmoid(k) from t = e^-|k| in (0, 1]: 1/(1+t) for k >= 0, t/(1+t) below, so nothing overflows
 * or cancels. Past |k| = 708, t is 0 (the fp32 result is 0 or 1 long before): sigmoid(-inf) = 0
 * and silu(-inf) = -inf * 0 = NaN, as the fp32 formula in kgen/abi.h gives. */
static double sigmoid_d(double k)
{
    double a = 0.0 - fabs(k);
    double t = a < -708.0 ? 0.0 : exp_d(a);
    double s = 1.0 / (1.0 + t);
    return k < 0.0 ? t * s : s;
}

/* gelu = x Phi(x) with Phi(x) = erfc(-x / sqrt 2) / 2, from e = erfc(|x| / sqrt 2): e / 2 below
 * 0 (no cancellation in the far left tail) and 1 - e / 2 above. Past z = 13, e is 0
 * (Phi(-13 sqrt 2) < 1e-75). */
static double gelu_d(double x)
{
    double z = fabs(x) * SQRT1_2;
    double t = 2.0 / (2.0 + z);
    double p = ERFC_P[0];
    for (int k = 1; k < 14; k++)
        p = p * t + ERFC_P[k];
    double e = z > 13.0 ? 0.0 : t * exp_d(p - z * z);
    double h = 0.5 * e;
    return x * (x < 0.0 ? h : 1.0 - h);
}

void kgp_silu_f32__scalar(float *y, const float *x, long n)
{
    for (long i = 0; i < n; i++) {
        double v = x[i];
        y[i] = (float)(v * sigmoid_d(v));
    }
}

void kgp_gelu_f32__scalar(float *y, const float *x, long n)
{
    for (long i = 0; i < n; i++)
        y[i] = (float)gelu_d(x[i]);
}

void kgp_gelu_tanh_f32__scalar(float *y, const float *x, long n)
{
    for (long i = 0; i < n; i++) {
        double v = x[i];
        double u = v + 0.044715 * ((v * v) * v);
        y[i] = (float)(v * sigmoid_d(GELU_TANH_K * u));
    }
}

void kgp_swish_f32__scalar(float *y, const float *x, long n)
{
    for (long i = 0; i < n; i++) {
        double v = x[i];
        y[i] = (float)(v * sigmoid_d(1.702 * v));
    }
}

/* The gated activation's backward (kgen/abi.h): the sigmoid of the activations above, the
 * derivative s (1 + k (1 - s)) of x sigmoid(c x) with k = c x, all in double, each output
 * rounded once. prim_simd_body.h repeats the sequence on vectors. */
void kgp_glu_bwd_f32__scalar(float *dg, float *du, float *h, const float *dh, const float *g,
                             const float *u, float glo, float ghi, float ulo, float uhi,
                             int swish, long n)
{
    for (long i = 0; i < n; i++) {
        double x = g[i], uu = u[i], d = dh[i];
        double k = swish ? 1.702 * x : x;
        double s = sigmoid_d(k);
        double a = x * s;
        double fp = s * (1.0 + k * (1.0 - s));
        h[i] = (float)(a * uu);
        dg[i] = g[i] > glo && g[i] < ghi ? (float)((d * uu) * fp) : 0.0f;
        du[i] = u[i] > ulo && u[i] < uhi ? (float)(d * a) : 0.0f;
    }
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

/* C (fp32) or C16 (bf16, each sum rounded once): the one loop nest of both primitives */
static void gemm(float *C, kg_u16 *C16, long ldc, const float *A, long lda, long M,
                 const kg_wt *W, long n0, long n1)
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
                for (long j = 0; j < nb; j++) {
                    if (C16)
                        C16[(m0 + m) * ldc + c0 + j] = kg_f32_to_bf16(acc[m][j]);
                    else
                        C[(m0 + m) * ldc + c0 + j] = acc[m][j];
                }
        }
    }
}

void kgp_gemm_f32__scalar(float *C, long ldc, const float *A, long lda, long M, const kg_wt *W,
                          long n0, long n1)
{
    gemm(C, NULL, ldc, A, lda, M, W, n0, n1);
}

void kgp_gemm_bf16__scalar(kg_u16 *C, long ldc, const float *A, long lda, long M,
                           const kg_wt *W, long n0, long n1)
{
    gemm(NULL, C, ldc, A, lda, M, W, n0, n1);
}

/* ---- attention's pieces -------------------------------------------------------------------- */

void kgp_dot_rows_f32__scalar(float *s, long lds, const float *q, long ldq, long m, const float *k,
                              long ldk, long n, long d)
{
    for (long i = 0; i < m; i++)
        for (long j = 0; j < n; j++) {
            float acc = 0.0f;
            for (long t = 0; t < d; t++)
                acc += q[i * ldq + t] * k[j * ldk + t];
            s[i * lds + j] = acc;
        }
}

void kgp_dot_cols_f32__scalar(float *s, long lds, const float *q, long ldq, long m, const float *kt,
                              long ldk, long n, long d)
{
    for (long i = 0; i < m; i++)
        for (long j = 0; j < n; j++) {
            float acc = 0.0f;
            for (long t = 0; t < d; t++)
                acc = fmaf(q[i * ldq + t], kt[t * ldk + j], acc);
            s[i * lds + j] = acc;
        }
}

void kgp_axpy_rows_f32__scalar(float *o, long ldo, const float *p, long ldp, long m, const float *v,
                               long ldv, long n, long d)
{
    for (long i = 0; i < m; i++)
        for (long j = 0; j < n; j++)
            for (long t = 0; t < d; t++)
                o[i * ldo + t] = fmaf(p[i * ldp + j], v[j * ldv + t], o[i * ldo + t]);
}

float kgp_max_f32__scalar(const float *x, long n)
{
    float m = -INFINITY;
    for (long i = 0; i < n; i++) {
        if (x[i] != x[i])
            return x[i];
        if (x[i] > m)
            m = x[i];
    }
    return m;
}

/* kg_exp (kgen/abi.h, exp_sum_f32), the definition the SIMD versions follow operation for
 * operation (prim_simd_body.h: change both). t = n ln2 + r with n = round(t log2 e) by the
 * 1.5 * 2^23 shift; r = (t - n C1) - n C2 (C1 has 9 bits, so n C1 is exact); e^r by Cephes'
 * degree-7 expf polynomial; 2^n from the shifted sum's low bits. */
#define KG_EXP_SHIFT 0x1.8p23f
#define KG_EXP_LOG2E 1.44269504088896341f
#define KG_EXP_C1 0.693359375f
#define KG_EXP_C2 -2.12194440e-4f
#define KG_EXP_LO -87.0f
#define KG_EXP_HI 88.0f
static const float KG_EXP_P[6] = { 1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                                   4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f };

static float kg_exp(float t)
{
    if (t < KG_EXP_LO)
        return 0.0f;
    if (t > KG_EXP_HI)
        return INFINITY;
    float kd = t * KG_EXP_LOG2E + KG_EXP_SHIFT;
    uint32_t nb;
    memcpy(&nb, &kd, 4);
    kd = kd - KG_EXP_SHIFT;
    float r = (t - kd * KG_EXP_C1) - kd * KG_EXP_C2;
    float p = KG_EXP_P[0];
    for (int i = 1; i < 6; i++)
        p = p * r + KG_EXP_P[i];
    p = (p * (r * r) + r) + 1.0f;
    uint32_t sb = (nb + 127u) << 23;
    float sc;
    memcpy(&sc, &sb, 4);
    return p * sc;
}

float kgr_exp_f32(float t)
{
    return kg_exp(t);
}

float kgp_exp_sum_f32__scalar(float *y, const float *x, float m, long n)
{
    float acc = 0.0f;
    for (long i = 0; i < n; i++) {
        y[i] = kg_exp(x[i] - m);
        acc += y[i];
    }
    return acc;
}

/* Blocks of 32 x 32, so both sides stay in L1 while a block is moved. */
void kgp_transpose_f32__scalar(float *y, long ldy, const float *x, long ldx, long rows, long cols)
{
    for (long r0 = 0; r0 < rows; r0 += 32)
        for (long c0 = 0; c0 < cols; c0 += 32) {
            long r1 = r0 + 32 < rows ? r0 + 32 : rows, c1 = c0 + 32 < cols ? c0 + 32 : cols;
            for (long c = c0; c < c1; c++)
                for (long r = r0; r < r1; r++)
                    y[c * ldy + r] = x[r * ldx + c];
        }
}
