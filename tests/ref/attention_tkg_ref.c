/* attention_tkg_ref.c: decode attention by plain loops (shared/reference/attention_tkg.md
 * "Math"): every score of a row, then a naive softmax over the full row, in double.
 * Legend: B sequences, H = nkv * qh query heads (head hq = h * qh + hh serves KV head h),
 * sa active tokens (the last sa of the sp context slots), d head dim, S cache slots. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref.h"

/* x [d] rotated in place by rotate-half with angles inv_freqs[j] * pos (fp32, as upstream). */
static void rope(float *x, long d, const float *inv_freqs, float pos)
{
    long h = d / 2;
    for (long j = 0; j < h; j++) {
        float a = inv_freqs[j] * pos, c = cosf(a), s = sinf(a);
        float x0 = x[j], x1 = x[j + h];
        x[j] = x0 * c - x1 * s;
        x[j + h] = x1 * c + x0 * s;
    }
}

/* Element t of cache row k (sequence b, KV head h): k_prior [n, nkv, S, d], or [n, nkv, d, S]
 * when K is transposed (kt), or in blocks [n, nkv, blk, d] through table [B, nblk]. */
static float cache_at(const float *c, const attn_tkg_ref_opts *o, const uint32_t *table, long b,
                      long h, long k, long t, int kt)
{
    if (o->blk) {
        long blk = (long)table[b * o->nblk + k / o->blk];
        return c[((blk * o->nkv + h) * o->blk + k % o->blk) * o->d + t];
    }
    if (kt)
        return c[((b * o->nkv + h) * o->d + t) * o->S + k];
    return c[((b * o->nkv + h) * o->S + k) * o->d + t];
}

/* Whether query (b, hq, i) attends slot k (step 4 of the reference). */
static int attends(const attn_tkg_ref_opts *o, const uint8_t *mask, const float *pos,
                   const float *start, long b, long hq, long i, long k)
{
    long H = o->nkv * o->qh, first = o->sp - o->sa;
    if (!o->pos)
        return mask[((k * o->B + b) * H + hq) * o->sa + i] != 0;
    if (k >= first)
        return mask[(((k - first) * o->B + b) * H + hq) * o->sa + i] != 0;
    if (o->swa) {
        float st = start[b * o->sa + i], en = pos[b * o->sa + i], kf = (float)k;
        return st <= en ? (st <= kf && kf < en) : (kf >= st || kf < en);
    }
    return (float)k < pos[b * o->sa];
}

void attention_tkg_ref(float *out, float *k_out, const float *q, const float *k_active,
                       const float *v_active, const float *k_prior, const float *v_prior,
                       const uint8_t *mask, const float *pos, const float *start,
                       const float *inv_freqs, const float *sink, const uint32_t *table,
                       const attn_tkg_ref_opts *o)
{
    long d = o->d, sa = o->sa, H = o->nkv * o->qh, first = o->sp - sa;
    float *ka = malloc(sizeof(float) * (size_t)(sa * d)), *qr = malloc(sizeof(float) * d);
    double *s = malloc(sizeof(double) * (size_t)o->sp);
    for (long b = 0; b < o->B; b++)
        for (long h = 0; h < o->nkv; h++) {
            /* the active keys k' [sa, d], rotated with rope; k_out [B, nkv, d, sa] */
            memcpy(ka, k_active + (b * o->nkv + h) * sa * d, sizeof(float) * (size_t)(sa * d));
            for (long i = 0; i < sa && o->rope; i++) {
                rope(ka + i * d, d, inv_freqs, pos[b * sa + i]);
                for (long t = 0; t < d; t++)
                    k_out[((b * o->nkv + h) * d + t) * sa + i] = ka[i * d + t];
            }
            const float *va = v_active + (b * o->nkv + h) * sa * d;
            for (long hh = 0; hh < o->qh; hh++)
                for (long i = 0; i < sa; i++) {
                    long hq = h * o->qh + hh;
                    memcpy(qr, q + ((b * H + hq) * sa + i) * d, sizeof(float) * (size_t)d);
                    if (o->rope) {
                        rope(qr, d, inv_freqs, pos[b * sa + i]);
                        for (long t = 0; t < d; t++)
                            qr[t] = qr[t] / sqrtf((float)d);
                    }
                    double mx = o->sink ? sink[hq] : -INFINITY, sum = 0;
                    for (long k = 0; k < o->sp; k++) {
                        s[k] = -INFINITY;
                        if (!attends(o, mask, pos, start, b, hq, i, k))
                            continue;
                        double acc = 0;
                        for (long t = 0; t < d; t++)
                            acc += (double)qr[t] * (k >= first ? ka[(k - first) * d + t]
                                                   : cache_at(k_prior, o, table, b, h, k, t,
                                                              !o->tpk));
                        s[k] = acc;
                        mx = acc > mx ? acc : mx;
                    }
                    float *y = out + (b * H + hq) * d * sa;
                    for (long t = 0; t < d; t++)
                        y[t * sa + i] = 0.0f;
                    if (mx == -INFINITY)
                        continue; /* nothing attends: zeros */
                    for (long k = 0; k < o->sp; k++)
                        sum += exp(s[k] - mx);
                    if (o->sink)
                        sum += exp(sink[hq] - mx);
                    for (long t = 0; t < d; t++) {
                        double acc = 0;
                        for (long k = 0; k < o->sp; k++)
                            if (s[k] != -INFINITY)
                                acc += exp(s[k] - mx) / sum
                                       * (k >= first ? va[(k - first) * d + t]
                                                     : cache_at(v_prior, o, table, b, h, k, t, 0));
                        y[t * sa + i] = (float)acc;
                    }
                }
        }
    free(ka), free(qr), free(s);
}

/* gen_mask_tkg: mask [sp, B, H, sa] by step 4's rule (active part from act when given). */
void gen_mask_tkg_ref(uint8_t *mask, const float *pos, const float *start, const uint8_t *act,
                      long B, long H, long sa, long sp)
{
    for (long k = 0; k < sp; k++)
        for (long b = 0; b < B; b++)
            for (long h = 0; h < H; h++)
                for (long i = 0; i < sa; i++) {
                    uint8_t *m = mask + ((k * B + b) * H + h) * sa + i;
                    long j = k - (sp - sa);
                    if (act && j >= 0) {
                        *m = act[((j * B + b) * H + h) * sa + i] != 0;
                        continue;
                    }
                    float kf = (float)k;
                    if (start) {
                        float st = start[b * sa + i], en = pos[b * sa + i];
                        *m = st <= en ? (st <= kf && kf < en) : (kf >= st || kf < en);
                    } else {
                        *m = kf < pos[b * sa];
                    }
                }
}
