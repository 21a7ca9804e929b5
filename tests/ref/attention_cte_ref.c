/* attention_cte_ref.c: attention for prefill as plain fp32 loops, one query row at a time over
 * its full score row (a naive softmax, no tiles), to check line by line against
 * shared/reference/attention_cte.md "Math" (steps 1-9).
 *
 * Letters: B batch, nq / nkv query / key-value heads, G = nq / nkv query heads per kv head,
 * Sq queries, Sk active keys, Sp prior keys stored and P of them used, L = P + Sk keys in all,
 * d head dimension; b a batch row, h a query head, i a query, j a key column, t < d.
 * Layouts (upstream's defaults, heads split from upstream's bs = B*nq and bs_kv = B*nkv):
 *   q, out [B, nq, Sq, d]; k [B, nkv, d, Sk]; v [B, nkv, Sk, d]; k_prior [B, nkv, d, Sp];
 *   v_prior [B, nkv, Sp, d]; sink, neg_max, recip: [B, nq] and [B, nq, Sq]; bounds [Sq]. */
#include <math.h>
#include <stdint.h>

#include "ref/ref.h"

/* Step 2: element t of key column j of the kv head bk = b*nkv + kv: prior rows first. */
static float key_at(const float *k, const float *k_prior, const attention_cte_ref_opts *o,
                    long bk, long j, long t)
{
    if (j < o->prior_used)
        return k_prior[(bk * o->d + t) * o->Sp + j];
    return k[(bk * o->d + t) * o->Sk + (j - o->prior_used)];
}

static float value_at(const float *v, const float *v_prior, const attention_cte_ref_opts *o,
                      long bk, long j, long t)
{
    if (j < o->prior_used)
        return v_prior[(bk * o->Sp + j) * o->d + t];
    return v[(bk * o->Sk + (j - o->prior_used)) * o->d + t];
}

/* Steps 3-4: whether query i hides key column j (an additive -inf). */
static int masked(const attention_cte_ref_opts *o, const int32_t *bound_min,
                  const int32_t *bound_max, long i, long j)
{
    long qp = o->cp_offset + i * (o->cp_strided ? o->cp_deg : 1);
    long kp = j - o->prior_used; /* prior keys get negative positions */
    if (o->causal && kp > qp)
        return 1;
    if (o->window > 0 && kp <= qp - o->window)
        return 1;
    if (bound_min && (j < bound_min[i] || j >= bound_max[i]))
        return 1;
    return 0;
}

void attention_cte_ref_row(float *out, float *neg_max, float *recip, const float *q,
                           const float *k, const float *v, const float *k_prior,
                           const float *v_prior, const float *sink, const int32_t *bound_min,
                           const int32_t *bound_max, const attention_cte_ref_opts *o, long b,
                           long h, long i)
{
    long L = o->prior_used + o->Sk, d = o->d;
    long bh = b * o->nq + h, bk = b * o->nkv + h / (o->nq / o->nkv); /* step 1 */
    const float *qi = q + (bh * o->Sq + i) * d;
    float s[L + 1];
    /* step 5: s = scale * q.k + mask */
    for (long j = 0; j < L; j++) {
        float dot = 0.0f;
        for (long t = 0; t < d; t++)
            dot += qi[t] * key_at(k, k_prior, o, bk, j, t);
        s[j] = masked(o, bound_min, bound_max, i, j) ? -INFINITY : o->scale * dot;
    }
    /* step 6: the sink is one more column */
    long n = L;
    if (sink)
        s[n++] = sink[bh];
    /* step 7: softmax over the row */
    float m = -INFINITY, z = 0.0f;
    for (long j = 0; j < n; j++)
        m = s[j] > m ? s[j] : m;
    for (long j = 0; j < n; j++) {
        s[j] = expf(s[j] - m);
        z += s[j];
    }
    /* step 8: out = p @ V (the sink column has no value) */
    float *oi = out + (bh * o->Sq + i) * d;
    for (long t = 0; t < d; t++) {
        float acc = 0.0f;
        for (long j = 0; j < L; j++)
            acc += s[j] / z * value_at(v, v_prior, o, bk, j, t);
        oi[t] = acc;
    }
    /* step 9: the statistics */
    if (neg_max)
        neg_max[bh * o->Sq + i] = -m;
    if (recip)
        recip[bh * o->Sq + i] = 1.0f / z;
}

void attention_cte_ref(float *out, float *neg_max, float *recip, const float *q, const float *k,
                       const float *v, const float *k_prior, const float *v_prior,
                       const float *sink, const int32_t *bound_min, const int32_t *bound_max,
                       const attention_cte_ref_opts *o)
{
    for (long b = 0; b < o->B; b++)
        for (long h = 0; h < o->nq; h++)
            for (long i = 0; i < o->Sq; i++)
                attention_cte_ref_row(out, neg_max, recip, q, k, v, k_prior, v_prior, sink,
                                      bound_min, bound_max, o, b, h, i);
}
