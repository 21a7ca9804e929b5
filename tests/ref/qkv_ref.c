/* qkv_ref.c: the QKV projection as plain fp32 loops, to check line by line against
 * shared/reference/qkv.md "Math" (steps 1-9) and common.md (norms, quantization).
 *
 * Letters: B batch, S tokens per sequence, t = b*S + s a token row, H hidden (h an index),
 * I = (nq + 2 nkv) d fused columns (i an index), nq / nkv query / key-value heads, d head
 * dimension, L cache_len (FLAT: positions; BLOCK: blocks). Every tensor is fp32 values (the
 * caller rounds inputs to their dtype); the KV caches are fp8 e4m3 codes. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/dtype.h"
#include "ref/ref.h"

static float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Stored (swizzled) index i holds logical h = 512j + 4p + q, i = q*H/4 + 128j + p (qkv.md). */
static void unswizzle(float *logical, const float *stored, long H)
{
    for (long i = 0; i < H; i++) {
        long q = i / (H / 4), r = i % (H / 4), j = r / 128, p = r % 128;
        logical[512 * j + 4 * p + q] = stored[i];
    }
}

/* common.md MX: blocks of 32 consecutive values share e = max biased exponent - 8 (e4m3fn's
 * emax), clamped to [0, 254]; with s = 2^(e-127) each value becomes e4m3fn(clamp(v / s,
 * +-448)) * s. */
static void mx_quant_dequant(float *v, long n)
{
    for (long b = 0; b < n; b += 32) {
        int emax = 0;
        for (long k = b; k < b + 32 && k < n; k++) {
            uint32_t u;
            memcpy(&u, &v[k], 4);
            int e = (int)((u >> 23) & 0xff);
            if (e != 0xff && e > emax) /* NaN/inf never set the scale */
                emax = e;
        }
        int e = emax - 8 < 0 ? 0 : emax - 8 > 254 ? 254 : emax - 8;
        float scale = ldexpf(1.0f, e - 127);
        for (long k = b; k < b + 32 && k < n; k++)
            v[k] = kg_e4m3fn_to_f32(kg_f32_to_e4m3fn(clampf(v[k] / scale, -448.0f, 448.0f)))
                   * scale;
    }
}

/* Steps 1-3 for token row t: x [H] (logical order) from the inputs; the fused sum to
 * fused_hidden (TKG). gamma_l, beta_l are gamma and beta in logical order. */
static void prologue(float *x, float *fused_hidden, const float *input, const float *mlp_prev,
                     const float *attention_prev, const float *gamma_l, const float *beta_l,
                     float in_scale, const qkv_ref_opts *o, long t)
{
    long H = o->H;
    float stored[H];
    /* 1. x = input (+ mlp_prev + attention_prev); TKG rounds the sum to the input dtype */
    for (long h = 0; h < H; h++) {
        float v = input[t * H + h];
        if (o->fused_add)
            v = (v + mlp_prev[t * H + h]) + attention_prev[t * H + h];
        if (o->fused_add && o->tkg && o->round_in)
            v = o->round_in(v);
        stored[h] = v;
        if (o->fused_add && o->tkg)
            fused_hidden[t * H + h] = v;
    }
    if (o->swizzled)
        unswizzle(x, stored, H);
    else
        memcpy(x, stored, (size_t)H * sizeof *x);
    /* 2. norm */
    if (o->norm == 1 || o->norm == 3) {
        float ss = 0.0f;
        for (long h = 0; h < H; h++)
            ss += x[h] * x[h];
        float r = 1.0f / sqrtf(ss / (float)o->hidden_actual + o->eps);
        for (long h = 0; h < H; h++)
            x[h] = o->norm == 1 ? x[h] * r * gamma_l[h] : x[h] * r;
    } else if (o->norm == 2) {
        float mu = 0.0f, var = 0.0f;
        for (long h = 0; h < H; h++)
            mu += x[h];
        mu /= (float)H;
        for (long h = 0; h < H; h++)
            var += (x[h] - mu) * (x[h] - mu);
        var /= (float)H;
        float r = 1.0f / sqrtf(var + o->eps);
        for (long h = 0; h < H; h++)
            x[h] = (x[h] - mu) * r * gamma_l[h] + (beta_l ? beta_l[h] : 0.0f);
    }
    /* 3. activation quantization */
    if (o->quant == 1) {
        for (long h = 0; h < H; h++) {
            float v = clampf(x[h] / in_scale, -o->quant_max, o->quant_max);
            x[h] = o->static_fn ? kg_e4m3fn_to_f32(kg_f32_to_e4m3fn(v))
                                : kg_e4m3_to_f32(kg_f32_to_e4m3(v));
        }
    } else if (o->quant == 3 && o->mx_static) {
        for (long h = 0; h < H; h++)
            x[h] = clampf(x[h] / in_scale, -o->quant_max, o->quant_max);
        mx_quant_dequant(x, H);
    } else if (o->quant == 3) {
        mx_quant_dequant(x, H); /* fp8 input: its values are on the grid, so nothing changes */
    }
}

/* One value of the KV cache: e4m3(clamp(v / scale, min, max)). */
static uint8_t kv_code(float v, float scale, const qkv_ref_opts *o)
{
    return kg_f32_to_e4m3(clampf(v / scale, o->kv_min, o->kv_max));
}

/* out: BSD [B, S, I], NBSd [nq + 2nkv, B, S, d], or with the KV cache q [B, S, nq d];
 * fused_hidden [B, S, H] (TKG fused add); k_cache, v_cache: FLAT [B, L, nkv d], BLOCK
 * [L, block_size, nkv d] (e4m3 codes, updated in place); input, mlp_prev, attention_prev
 * [B, S, H] (stored order); W [H, I] logical values; w_scale [3] (STATIC, MX static) or [I]
 * (ROW); bias [I] or NULL; gamma, beta [H] (stored order) or NULL; cos, sin [B, S, d];
 * slot_mapping [B, S]. */
void qkv_ref(float *out, float *fused_hidden, uint8_t *k_cache, uint8_t *v_cache,
             const float *input, const float *W, const float *w_scale, float in_scale,
             const float *bias, const float *mlp_prev, const float *attention_prev,
             const float *gamma, const float *beta, const float *cos, const float *sin,
             float k_scale, float v_scale, const int32_t *slot_mapping,
             const qkv_ref_opts *o, long B, long S, long cache_len)
{
    long H = o->H, d = o->d, nq = o->nq, nkv = o->nkv, N = nq + 2 * nkv, I = N * d;
    long qd = nq * d, kvd = nkv * d, half = d / 2;
    float gamma_l[H], beta_l[H], x[H];
    if (gamma && o->swizzled)
        unswizzle(gamma_l, gamma, H);
    else if (gamma)
        memcpy(gamma_l, gamma, (size_t)H * sizeof(float));
    if (beta && o->swizzled)
        unswizzle(beta_l, beta, H);
    else if (beta)
        memcpy(beta_l, beta, (size_t)H * sizeof(float));
    float *y = malloc((size_t)I * sizeof *y);
    for (long t = 0; t < B * S; t++) {
        long b = t / S, s = t % S;
        prologue(x, fused_hidden, input, mlp_prev, attention_prev, gamma_l,
                 beta ? beta_l : NULL, in_scale, o, t);
        /* 4. y = x @ W, fp32 accumulation over h ascending */
        for (long i = 0; i < I; i++)
            y[i] = 0.0f;
        for (long h = 0; h < H; h++)
            for (long i = 0; i < I; i++)
                y[i] += x[h] * W[h * I + i];
        /* 5. dequant: STATIC per Q/K/V column group, then s_in; ROW per column */
        if (o->quant == 1 || o->mx_static) {
            for (long i = 0; i < I; i++) {
                float ws = i < qd ? w_scale[0] : i < qd + kvd ? w_scale[1] : w_scale[2];
                y[i] = y[i] * ws * in_scale;
            }
        } else if (o->quant == 2) {
            for (long i = 0; i < I; i++)
                y[i] *= w_scale[i];
        }
        /* 6. bias */
        if (bias)
            for (long i = 0; i < I; i++)
                y[i] += bias[i];
        /* 7. RoPE on the nq + nkv Q and K heads, first halves of cos and sin */
        if (o->rope) {
            const float *c = cos + t * d, *sn = sin + t * d;
            for (long n = 0; n < nq + nkv; n++) {
                float *x1 = y + n * d, *x2 = x1 + half;
                for (long j = 0; j < half; j++) {
                    float a = x1[j], e = x2[j];
                    x1[j] = a * c[j] - e * sn[j];
                    x2[j] = e * c[j] + a * sn[j];
                }
            }
        }
        /* 8. KV cache: the K and V parts, quantized; q returned */
        if (o->kv) {
            long row;
            if (o->kv == 1) {
                row = b * cache_len + s;
            } else {
                long slot = slot_mapping[t];
                row = (slot / o->block_size) * o->block_size + slot % o->block_size;
            }
            for (long j = 0; j < kvd; j++) {
                k_cache[row * kvd + j] = kv_code(y[qd + j], k_scale, o);
                v_cache[row * kvd + j] = kv_code(y[qd + kvd + j], v_scale, o);
            }
            for (long j = 0; j < qd; j++)
                out[t * qd + j] = y[j];
            continue;
        }
        /* 9. layout */
        for (long i = 0; i < I; i++) {
            if (o->nbsd)
                out[((i / d * B + b) * S + s) * d + i % d] = y[i];
            else
                out[t * I + i] = y[i];
        }
    }
    free(y);
}
