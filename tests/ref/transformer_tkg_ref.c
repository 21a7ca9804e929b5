/* transformer_tkg_ref.c: the reference of shared/reference/transformer_tkg.md "Math", line by
 * line in plain fp32 loops (one rank, no reduction: the sum over a group of one), the hidden
 * state kept in fp32 across layers as the reference keeps it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref.h"

static float *tk_alloc(long n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(float)); }

/* Math 1 and 9: y = x * gamma / sqrt(mean(x^2) + eps), per row of H. */
static void rms_rows(float *y, const float *x, const float *gamma, long T, long H, float eps)
{
    for (long t = 0; t < T; t++) {
        double ss = 0;
        for (long h = 0; h < H; h++)
            ss += (double)x[t * H + h] * x[t * H + h];
        float inv = 1.0f / sqrtf((float)(ss / (double)H) + eps);
        for (long h = 0; h < H; h++)
            y[t * H + h] = x[t * H + h] * inv * gamma[h];
    }
}

/* y [T, N] = x [T, K] @ W [K, N]. */
static void matmul(float *y, const float *x, const float *W, long T, long K, long N)
{
    for (long t = 0; t < T; t++)
        for (long n = 0; n < N; n++) {
            double s = 0;
            for (long k = 0; k < K; k++)
                s += (double)x[t * K + k] * W[k * N + n];
            y[t * N + n] = (float)s;
        }
}

static float clip(float v, float c) { return c > 0 ? (v > c ? c : v < -c ? -c : v) : v; }

/* Math 1-8 of layer l: its attention partial into part [T, H]; the caches of its KV heads
 * (element l * nkv + g of K_cache, V_cache) written after. Query head n of the rank (column
 * n D of QKV) belongs to KV head g = n / N, whose K is column nkv N D + g D and V column
 * nkv (N + 1) D + g D. */
static void attention(float *part, float *const *K_cache, float *const *V_cache, const float *h,
                      int l, const tkg_ref_in *in, const tkg_ref_opts *o)
{
    long B = o->B, S = o->S, H = o->H, N = o->N, D = o->D, T = B * S, W = o->S_ctx;
    long nkv = o->nkv > 0 ? o->nkv : 1, NQ = nkv * N, Q = (NQ + 2 * nkv) * D, half = D / 2;
    float *xn = tk_alloc(T * H), *qkv = tk_alloc(T * Q), *att = tk_alloc(T * NQ * D);
    float *sc = tk_alloc(W);
    rms_rows(xn, h, in->g_qkv[l], T, H, o->eps);
    matmul(qkv, xn, in->W_qkv[l], T, H, Q);
    /* 3, 4: RoPE on each Q head and K head (pairs i, i + D/2; cos[i, b, s]), Q / sqrt(D) */
    for (long b = 0; b < B; b++)
        for (long s = 0; s < S; s++) {
            float *row = qkv + (b * S + s) * Q;
            for (long hd = 0; hd < NQ + nkv; hd++)
                for (long i = 0; i < half; i++) {
                    float c = in->cos[(i * B + b) * S + s], sn = in->sin[(i * B + b) * S + s];
                    float x1 = row[hd * D + i], x2 = row[hd * D + i + half];
                    row[hd * D + i] = x1 * c - x2 * sn;
                    row[hd * D + i + half] = x1 * sn + x2 * c;
                }
            for (long i = 0; i < NQ * D; i++)
                row[i] /= sqrtf((float)D);
        }
    /* 5: softmax over the window: prior slots from the cache, the last S the new K, V */
    for (long b = 0; b < B; b++)
        for (long n = 0; n < NQ; n++)
            for (long s = 0; s < S; s++) {
                long g = n / N, kcol = NQ * D + g * D, vcol = (NQ + nkv) * D + g * D;
                const float *kc = K_cache[l * nkv + g], *vc = V_cache[l * nkv + g];
                const float *q = qkv + (b * S + s) * Q + n * D;
                float mx = -INFINITY;
                for (long j = 0; j < W; j++) {
                    if (!in->mask[((j * B + b) * NQ + n) * S + s]) {
                        sc[j] = -INFINITY;
                        continue;
                    }
                    double d = 0;
                    for (long e = 0; e < D; e++) {
                        float k = j < W - S ? kc[(b * D + e) * o->S_max + j]
                                            : qkv[(b * S + j - (W - S)) * Q + kcol + e];
                        d += (double)q[e] * k;
                    }
                    sc[j] = (float)d;
                    mx = sc[j] > mx ? sc[j] : mx;
                }
                double sum = 0;
                for (long j = 0; j < W; j++) {
                    sc[j] = mx == -INFINITY ? 0.0f : expf(sc[j] - mx);
                    sum += sc[j];
                }
                float *o_row = att + (b * S + s) * NQ * D + n * D;
                for (long e = 0; e < D; e++) {
                    double acc = 0;
                    for (long j = 0; j < W; j++) {
                        float v = j < W - S ? vc[(b * o->S_max + j) * D + e]
                                            : qkv[(b * S + j - (W - S)) * Q + vcol + e];
                        acc += (double)sc[j] * v;
                    }
                    o_row[e] = sum > 0 ? (float)(acc / sum) : 0.0f;
                }
            }
    /* 6: the partial, rows b * S + s, columns n * D + d */
    matmul(part, att, in->W_out[l], T, NQ * D, H);
    /* 7: the cache write at pos_b + s, after attention */
    for (long b = 0; o->update && b < B; b++) {
        if (in->pos[b] == 0xFFFFFFFFu)
            continue;
        for (long g = 0; g < nkv; g++)
            for (long s = 0; s < S; s++) {
                long j = (long)in->pos[b] + s;
                const float *row = qkv + (b * S + s) * Q;
                float *kc = K_cache[l * nkv + g], *vc = V_cache[l * nkv + g];
                for (long e = 0; e < D; e++) {
                    kc[(b * D + e) * o->S_max + j] = row[NQ * D + g * D + e];
                    vc[(b * o->S_max + j) * D + e] = row[(NQ + nkv) * D + g * D + e];
                }
            }
    }
    free(xn), free(qkv), free(att), free(sc);
}

/* Math 9-10: the MLP partial of layer l into y [T, H]. */
static void mlp(float *y, const float *h1, int l, const tkg_ref_in *in, const tkg_ref_opts *o)
{
    long T = o->B * o->S, H = o->H, I = o->I;
    int fp8 = (o->fp8 >> l) & 1;
    float c = fp8 ? o->clamp : 0.0f;
    float *yn = tk_alloc(T * H), *g = tk_alloc(T * I), *u = tk_alloc(T * I);
    rms_rows(yn, h1, in->g_mlp[l], T, H, o->eps);
    for (long i = 0; i < T * H; i++)
        yn[i] = clip(yn[i], c);
    matmul(g, yn, in->W_gate[l], T, H, I);
    matmul(u, yn, in->W_up[l], T, H, I);
    for (long t = 0; t < T; t++)
        for (long i = 0; i < I; i++) {
            float gv = g[t * I + i], uv = u[t * I + i];
            if (fp8)
                gv *= in->s_gate[l][i], uv *= in->s_up[l][i];
            g[t * I + i] = clip(gv / (1.0f + expf(-gv)) * uv, c);
        }
    matmul(y, g, in->W_down[l], T, I, H);
    for (long t = 0; fp8 && t < T; t++)
        for (long hh = 0; hh < H; hh++)
            y[t * H + hh] *= in->s_down[l][hh];
    free(yn), free(g), free(u);
}

void transformer_tkg_ref(float *out, float *const *K_cache, float *const *V_cache,
                         const tkg_ref_in *in, const tkg_ref_opts *o)
{
    long T = o->B * o->S, H = o->H;
    float *h = tk_alloc(T * H), *p = tk_alloc(T * H);
    memcpy(h, in->X, sizeof(float) * (size_t)(T * H));
    for (int l = 0; l < o->L; l++) {
        attention(p, K_cache, V_cache, h, l, in, o);
        for (long i = 0; i < T * H; i++) /* 8 */
            h[i] += p[i];
        mlp(p, h, l, in, o);
        for (long i = 0; i < T * H; i++) /* 11 */
            h[i] += p[i];
    }
    memcpy(out, h, sizeof(float) * (size_t)(T * H));
    free(h), free(p);
}
