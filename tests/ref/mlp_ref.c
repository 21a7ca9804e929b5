/* mlp_ref.c: the MLP block as plain fp32 loops, to check line by line against
 * shared/reference/mlp.md "Math" and "MX" (the kernel's behaviour: row floor 1e-6).
 * Letters: T tokens, H hidden size, I intermediate size, M fp8_max. Every tensor is in logical
 * order: weights are their decoded values (times their MX scales), CTE fp8 input its values. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/dtype.h"
#include "ref/ref.h"

static float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

/* common.md "ActFnType", in fp32 */
static float act(int fn, float x)
{
    switch (fn) {
    case 0: return x / (1.0f + expf(-x));                                     /* SiLU */
    case 1: return 0.5f * x * (1.0f + erff(x / sqrtf(2.0f)));                 /* GELU */
    case 2: return 0.5f * x * (1.0f + tanhf(sqrtf(2.0f / 3.14159265f) *
                                            (x + 0.044715f * x * x * x)));   /* tanh approx */
    default: return x / (1.0f + expf(-1.702f * x));                           /* Swish */
    }
}

/* An fp8 value: round to nearest even in the activation format, after the clamp. */
static float fp8(float v, int fn)
{
    return fn ? kg_e4m3fn_to_f32(kg_f32_to_e4m3fn(v)) : kg_e4m3_to_f32(kg_f32_to_e4m3(v));
}

/* common.md "MX": the block's shared exponent e = max biased fp32 exponent - 8 (e4m3fn's emax),
 * clamped to [0, 254]; each value becomes e4m3fn(clamp(x / 2^(e-127), +-448)) * 2^(e-127).
 * idx lists the block's n elements of x. */
static void mx_block(float *x, const long *idx, int n)
{
    int emax = 0;
    for (int k = 0; k < n; k++) {
        uint32_t bits;
        memcpy(&bits, &x[idx[k]], 4);
        int e = (int)((bits >> 23) & 0xff);
        if ((e != 255 || (bits & 0x7fffff) == 0) && e > emax) /* a NaN does not count */
            emax = e;
    }
    int e = emax - 8 < 0 ? 0 : emax - 8 > 254 ? 254 : emax - 8;
    float s = ldexpf(1.0f, e - 127);
    for (int k = 0; k < n; k++)
        x[idx[k]] = kg_e4m3fn_to_f32(kg_f32_to_e4m3fn(clampf(x[idx[k]] / s, -448.0f, 448.0f))) * s;
}

/* y [N] = x [K] @ w [K, N] */
static void vecmat(float *y, const float *x, const float *w, long K, long N)
{
    for (long n = 0; n < N; n++)
        y[n] = 0.0f;
    for (long k = 0; k < K; k++)
        for (long n = 0; n < N; n++)
            y[n] += x[k] * w[k * N + n];
}

/* A projection's dequant scale for column n: STATIC reads element 0, ROW element n. */
static float wscale(const float *s, int quant, long n)
{
    return quant == MLP_REF_ROW ? s[n] : s[0];
}

/* step 3's dequant, bias and clamps on one projection row p [N] */
static void finish_proj(float *p, const float *s, float in_s, const float *bias, float lo,
                        float hi, const mlp_ref_opts *o, long N)
{
    for (long n = 0; n < N; n++) {
        if (o->quant != MLP_REF_NONE && o->quant != MLP_REF_MX)
            p[n] = p[n] * wscale(s, o->quant, n) * in_s;
        if (bias)
            p[n] += bias[n];
        p[n] = p[n] < hi ? p[n] : hi; /* min(g, upper), then max(g, lower) */
        p[n] = p[n] > lo ? p[n] : lo;
    }
}

void mlp_ref(float *out,          /* [T, H] */
             float *add_out,      /* [T, H] hidden + add, or NULL */
             const float *hidden, /* [T, H] (CTE quantized: the fp8 values) */
             const float *add,    /* [T, H] or NULL */
             const float *dx,     /* [T] CTE ROW: each row's packed dequant scale */
             const float *wg,     /* [H, I], NULL with skip_gate */
             const float *wu,     /* [H, I] */
             const float *wd,     /* [I, H] */
             const float *sg, const float *su, /* STATIC [1], ROW [I] */
             const float *sd,                  /* STATIC [1], ROW [H] */
             float s_gu, float s_down,         /* CTE STATIC: activation dequant scales */
             const float *gamma, const float *beta, /* [H] or NULL */
             const float *bg, const float *bu,      /* [I] or NULL */
             const float *bd,                       /* [H] or NULL */
             const mlp_ref_opts *o, long T, long H, long I)
{
    int cte_q = !o->tkg && o->quant != MLP_REF_NONE; /* CTE STATIC, ROW, STATIC_MX */
    int row = o->quant == MLP_REF_ROW, mx = o->quant == MLP_REF_MX;
    float *x = malloc((size_t)H * 4), *g = malloc((size_t)I * 4), *u = malloc((size_t)I * 4);
    float *y = malloc((size_t)H * 4);
    long idx[32];
    for (long t = 0; t < T; t++) {
        /* 1. x = hidden (+ add); the sum is the second output */
        for (long j = 0; j < H; j++)
            x[j] = hidden[t * H + j] + (add ? add[t * H + j] : 0.0f);
        if (add_out)
            memcpy(add_out + t * H, x, (size_t)H * 4);
        /* 2. norm (common.md), never on fp8 input */
        if (o->norm == 1 || o->norm == 3) {
            float ss = 0.0f;
            for (long j = 0; j < H; j++)
                ss += x[j] * x[j];
            float inv = 1.0f / sqrtf(ss / (float)H + o->eps);
            for (long j = 0; j < H; j++)
                x[j] = x[j] * inv * (o->norm == 1 ? gamma[j] : 1.0f);
        } else if (o->norm == 2) {
            float mu = 0.0f, var = 0.0f;
            for (long j = 0; j < H; j++)
                mu += x[j];
            mu /= (float)H;
            for (long j = 0; j < H; j++)
                var += (x[j] - mu) * (x[j] - mu);
            var /= (float)H;
            float inv = 1.0f / sqrtf(var + o->eps);
            for (long j = 0; j < H; j++)
                x[j] = (x[j] - mu) * inv * gamma[j] + (beta ? beta[j] : 0.0f);
        }
        /* MX: x to MX e4m3fn over blocks of 32 consecutive h */
        if (mx)
            for (long b = 0; b < H; b += 32) {
                for (int k = 0; k < 32; k++)
                    idx[k] = b + k;
                mx_block(x, idx, 32);
            }
        /* 3. projections: dequant (CTE ROW: also dx; CTE STATIC: also s_gu), bias, clamps */
        float in_s = !cte_q ? 1.0f : row ? dx[t] : s_gu;
        vecmat(u, x, wu, H, I);
        finish_proj(u, su, in_s, bu, o->up_lo, o->up_hi, o, I);
        if (o->skip_gate) {
            for (long i = 0; i < I; i++)
                u[i] = act(o->act, u[i]);
        } else {
            vecmat(g, x, wg, H, I);
            finish_proj(g, sg, in_s, bg, o->gate_lo, o->gate_hi, o, I);
            for (long i = 0; i < I; i++)
                u[i] = act(o->act, g[i]) * u[i];
        }
        /* 4. h quantized before the down projection */
        float d_s = 1.0f;
        if (cte_q && row) {
            float a = 0.0f;
            for (long i = 0; i < I; i++)
                a = fabsf(u[i]) > a ? fabsf(u[i]) : a;
            if (o->clip > 0) {
                a = a < o->clip ? a : o->clip;
                for (long i = 0; i < I; i++)
                    u[i] = clampf(u[i], -o->clip, o->clip);
            }
            float d = a / o->fp8_max > 1e-6f ? a / o->fp8_max : 1e-6f;
            for (long i = 0; i < I; i++)
                u[i] = fp8(clampf(u[i] / d, -o->fp8_max, o->fp8_max), o->fn);
            d_s = d;
        } else if (cte_q) {
            for (long i = 0; i < I; i++)
                u[i] = fp8(clampf(u[i] / s_down, -o->fp8_max, o->fp8_max), o->fn);
            d_s = s_down;
        } else if (mx) {
            /* blocks: the 8 consecutive p of each of the 4 q, i = t*4P + q*P + p */
            long P = I >= 512 ? 128 : I / 4;
            for (long tile = 0; tile < I; tile += 4 * P)
                for (long p0 = 0; p0 < P; p0 += 8) {
                    for (int k = 0; k < 32; k++)
                        idx[k] = tile + (k / 8) * P + p0 + k % 8;
                    mx_block(u, idx, 32);
                }
        }
        /* out = (h @ Wd) dequantized + bd */
        vecmat(y, u, wd, I, H);
        finish_proj(y, sd, d_s, bd, -INFINITY, INFINITY, o, H);
        memcpy(out + t * H, y, (size_t)H * 4);
    }
    free(x), free(g), free(u), free(y);
}
