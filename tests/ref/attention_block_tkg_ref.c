/* attention_block_tkg_ref.c: one decode step of the attention block by plain loops, written
 * from shared/reference/attention_block_tkg.md "Math" (steps 1-12): every projection a
 * triple loop, every score of a row then a naive softmax in double. Legend: B sequences, S new
 * tokens each (token t = b*S + s), H hidden, N query heads of D, I = (N + 2) D. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/dtype.h"
#include "ref.h"

#define FP8_MAX 240.0f

static float clip(float x) { return x > FP8_MAX ? FP8_MAX : x < -FP8_MAX ? -FP8_MAX : x; }

/* x rounded to the fp8 e4m3 grid (the operand an fp8 matmul or cache holds). */
static float fp8(float x) { return kg_e4m3_to_f32(kg_f32_to_e4m3(x)); }

/* Steps 4 and 6: v [D] times w / sqrt(mean(v^2) + eps) (w NULL: no gamma). */
static void head_norm(float *v, long D, const float *w, float eps)
{
    double ss = 0;
    for (long i = 0; i < D; i++)
        ss += (double)v[i] * v[i];
    float r = (float)(1.0 / sqrt(ss / (double)D + eps));
    for (long i = 0; i < D; i++)
        v[i] = v[i] * r * (w ? w[i] : 1.0f);
}

/* Step 5: v [D] rotated by c, s [D/2]. */
static void rope(float *v, long D, const float *c, const float *s, int contig)
{
    for (long i = 0; i < D / 2; i++) {
        long a = contig ? i : 2 * i, b = contig ? i + D / 2 : 2 * i + 1;
        float x0 = v[a], x1 = v[b];
        v[a] = x0 * c[i] - x1 * s[i];
        v[b] = x0 * s[i] + x1 * c[i];
    }
}

/* Steps 1-2: QKV row y [I] of token t. */
static void project(float *y, const attn_block_ref_in *in, const attn_block_ref_opts *o, long t)
{
    long H = o->H, I = (o->N + 2) * o->D;
    float *x = malloc(sizeof(float) * (size_t)H);
    double ss = 0;
    for (long h = 0; h < H; h++)
        ss += (double)in->X[t * H + h] * in->X[t * H + h];
    float r = (float)(1.0 / sqrt(ss / (double)(o->hact ? o->hact : H) + o->eps));
    for (long h = 0; h < H; h++) {
        x[h] = o->norm ? in->X[t * H + h] * r * in->gamma[h] : in->X[t * H + h];
        if (o->static_qkv)
            x[h] = fp8(clip(x[h] / in->s_qkv));
    }
    for (long i = 0; i < I; i++) {
        double acc = 0;
        for (long h = 0; h < H; h++)
            acc += (double)x[h] * in->W_qkv[h * I + i];
        float v = (float)acc;
        if (o->static_qkv) /* section Q, K or V */
            v = v * (in->w_qkv[i < o->N * o->D ? 0 : i < (o->N + 1) * o->D ? 1 : 2] * in->s_qkv);
        y[i] = v + (o->bias_qkv ? in->bias_qkv[i] : 0.0f);
    }
    free(x);
}

/* Element d of window slot j of sequence b from the cache c (step 9). */
static float cache_at(const float *c, const attn_block_ref_in *in, const attn_block_ref_opts *o,
                      long b, long j, long d, int is_k)
{
    if (o->blk) {
        long row = (long)in->table[b * o->nblk + j / o->blk] * o->blk + j % o->blk;
        return c[row * o->D + d];
    }
    if (is_k && o->tpk_t)
        return c[(b * o->D + d) * o->S_max + j];
    return c[(b * o->S_max + j) * o->D + d];
}

void attention_block_tkg_ref(float *x_out, float *k_out, float *v_out,
                             const attn_block_ref_in *in, const attn_block_ref_opts *o)
{
    long B = o->B, S = o->S, N = o->N, D = o->D, H = o->H, T = B * S;
    long I = (N + 2) * D, ND = N * D, W = o->S_ctx;
    float *Q = malloc(sizeof(float) * (size_t)(T * ND)); /* [t][n][d] */
    float *K = malloc(sizeof(float) * (size_t)(T * D));
    float *V = malloc(sizeof(float) * (size_t)(T * D));
    float *y = malloc(sizeof(float) * (size_t)I), *c = malloc(sizeof(float) * (size_t)D);
    float *sn = malloc(sizeof(float) * (size_t)D);
    for (long t = 0; t < T; t++) {
        long b = t / S, s = t % S;
        project(y, in, o, t);
        for (long h = 0; h <= N; h++) { /* steps 4-6 on the Q heads and K (h = N) */
            float *v = y + h * D;
            if (o->qk_pre)
                head_norm(v, D, o->qk_pre_gamma ? (h < N ? in->gq_pre : in->gk_pre) : NULL,
                          o->qk_pre_eps);
            if (o->rope) {
                for (long i = 0; i < D / 2; i++)
                    c[i] = in->cos[(i * B + b) * S + s], sn[i] = in->sin[(i * B + b) * S + s];
                rope(v, D, c, sn, o->contig);
            }
            if (o->qk_post)
                head_norm(v, D, o->qk_post_gamma ? (h < N ? in->gq_post : in->gk_post) : NULL,
                          o->qk_post_eps);
        }
        memcpy(Q + t * ND, y, sizeof(float) * (size_t)ND);
        for (long d = 0; d < D; d++) { /* step 7 */
            K[t * D + d] = o->fp8 ? fp8(clip(y[ND + d] * in->k_scale)) : y[ND + d];
            V[t * D + d] = o->fp8 ? fp8(clip(y[ND + D + d] * in->v_scale)) : y[ND + D + d];
        }
    }
    /* steps 8-10: attention per (b, n, s) over the window, the new tokens in its tail */
    float *A = malloc(sizeof(float) * (size_t)(T * ND));
    double *p = malloc(sizeof(double) * (size_t)(W + 1));
    for (long b = 0; b < B; b++)
        for (long n = 0; n < N; n++)
            for (long s = 0; s < S; s++) {
                const float *q = Q + (b * S + s) * ND + n * D;
                float *a = A + (b * S + s) * ND + n * D;
                if (o->skip) { /* the unscaled Q replaces the attention */
                    memcpy(a, q, sizeof(float) * (size_t)D);
                    continue;
                }
                double mx = -INFINITY;
                for (long j = 0; j < W; j++) {
                    p[j] = -INFINITY;
                    if (!in->mask[((j * B + b) * N + n) * S + s])
                        continue;
                    double acc = 0;
                    for (long d = 0; d < D; d++) {
                        float kv = j >= W - S ? K[(b * S + j - (W - S)) * D + d]
                                              : cache_at(in->K_cache, in, o, b, j, d, 1);
                        acc += (double)(q[d] * o->scale) * kv;
                    }
                    p[j] = acc;
                    mx = acc > mx ? acc : mx;
                }
                double sk = o->sink ? in->sink[n] : -INFINITY;
                mx = sk > mx ? sk : mx;
                double l = 0;
                for (long j = 0; j < W; j++)
                    l += p[j] = mx == -INFINITY ? 0 : exp(p[j] - mx);
                if (o->sink && mx != -INFINITY)
                    l += exp(sk - mx);
                for (long d = 0; d < D; d++) {
                    double acc = 0;
                    for (long j = 0; j < W; j++) {
                        float vv = j >= W - S ? V[(b * S + j - (W - S)) * D + d]
                                              : cache_at(in->V_cache, in, o, b, j, d, 0);
                        acc += p[j] * vv;
                    }
                    a[d] = l > 0 ? (float)(acc / l) : 0.0f;
                }
            }
    /* step 11: the cache write, or the new K [D, B, S] and V [B, S, D] */
    if (o->update) {
        long rows = o->blk ? o->n_cache * o->blk : o->n_cache * o->S_max;
        memcpy(k_out, in->K_cache, sizeof(float) * (size_t)(rows * D));
        memcpy(v_out, in->V_cache, sizeof(float) * (size_t)(rows * D));
        for (long b = 0; b < B; b++) {
            if (in->idx[b] == 0xFFFFFFFFu)
                continue;
            for (long s = 0; s < S; s++)
                for (long d = 0; d < D; d++) {
                    long pos = (long)in->idx[b] + s;
                    long kr = o->blk ? pos * D + d
                                     : o->tpk_t ? (b * D + d) * o->S_max + pos
                                                : (b * o->S_max + pos) * D + d;
                    long vr = o->blk ? pos * D + d : (b * o->S_max + pos) * D + d;
                    k_out[kr] = K[(b * S + s) * D + d];
                    v_out[vr] = V[(b * S + s) * D + d];
                }
        }
    } else {
        for (long t = 0; t < T; t++)
            for (long d = 0; d < D; d++) {
                k_out[(d * B + t / S) * S + t % S] = K[t * D + d];
                v_out[t * D + d] = V[t * D + d];
            }
    }
    /* step 12: the output projection, or the attention as [B, N, D, S] */
    for (long t = 0; t < T && o->wout; t++)
        for (long h = 0; h < H; h++) {
            double acc = 0;
            for (long k = 0; k < ND; k++) {
                float a = o->static_out ? fp8(clip(A[t * ND + k] / in->s_out)) : A[t * ND + k];
                acc += (double)a * in->W_out[k * H + h];
            }
            float v = (float)acc;
            if (o->static_out)
                v = v * (in->w_out[0] * in->s_out);
            x_out[t * H + h] = v + (o->bout ? in->bias_out[h] : 0.0f);
        }
    for (long t = 0; t < T && !o->wout; t++)
        for (long n = 0; n < N; n++)
            for (long d = 0; d < D; d++)
                x_out[((t / S * N + n) * D + d) * S + t % S] = A[t * ND + n * D + d];
    free(Q), free(K), free(V), free(y), free(c), free(sn), free(A), free(p);
}
