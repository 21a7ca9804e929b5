/* router_topk_ref.c: the router_topk family (shared/reference/router_topk.md, "Math") in plain
 * loops, step by step as the document numbers them.
 * Letters: T tokens, H hidden size, E experts, K experts selected per token. */
#include <math.h>

#include "ref/moe_ref.h"

/* The activation of one value, in double, rounded once. */
static float sigmoid_ref(float v) { return (float)(1.0 / (1.0 + exp(-(double)v))); }

/* y [n] = softmax(v [n]), max-subtracted, in double, each rounded once. */
static void softmax_ref(float *y, const float *v, long n)
{
    double mx = -INFINITY, s = 0;
    for (long i = 0; i < n; i++)
        mx = v[i] > mx ? v[i] : mx;
    for (long i = 0; i < n; i++)
        s += exp((double)v[i] - mx);
    for (long i = 0; i < n; i++)
        y[i] = (float)(exp((double)v[i] - mx) / s);
}

void router_topk_ref(float *logits, int32_t *index, float *affinities, float *eager,
                     const float *x, const float *w, const float *bias,
                     const router_ref_opts *o, long T, long H, long E, long K)
{
    /* logits, affinities [T, E]; index, eager [T, K]; x [T, H] or [H, T]; w [H, E]; bias [E] */
    for (long t = 0; t < T; t++) {
        float *l = logits + t * E, *a = affinities + t * E;
        int32_t *idx = index + t * K;
        /* 1. logits = x @ w + bias: the products summed exactly enough (double), in fp32 */
        for (long e = 0; e < E; e++) {
            double acc = 0;
            for (long h = 0; h < H; h++)
                acc += (double)(o->x_ht ? x[h * T + t] : x[t * H + h]) * w[h * E + e];
            l[e] = (float)acc + (bias ? bias[e] : 0.0f);
        }
        /* 2. rank: a stable descending selection sort of the fp32 logits; on a tie the lower
         * expert index comes first */
        for (long k = 0; k < K; k++) {
            long best = -1;
            for (long e = 0; e < E; e++) {
                int taken = 0;
                for (long j = 0; j < k; j++)
                    taken |= idx[j] == e;
                if (!taken && (best < 0 || l[e] > l[best]))
                    best = e;
            }
            idx[k] = (int32_t)best;
        }
        if (o->pre_norm) {
            /* 3. ACT1: activate all E */
            float p[512];
            if (o->softmax)
                softmax_ref(p, l, E);
            else
                for (long e = 0; e < E; e++)
                    p[e] = sigmoid_ref(l[e]);
            if (!o->norm) {
                for (long e = 0; e < E; e++)
                    a[e] = p[e];
                for (long k = 0; k < K; k++)
                    eager[t * K + k] = p[idx[k]];
            } else {
                double s = 0;
                for (long k = 0; k < K; k++)
                    s += p[idx[k]];
                for (long e = 0; e < E; e++)
                    a[e] = 0;
                for (long k = 0; k < K; k++) {
                    a[idx[k]] = (float)(p[idx[k]] / s);
                    eager[t * K + k] = a[idx[k]];
                }
            }
        } else {
            /* 4. ACT2: activate the K selected logits only */
            float v[8], y[8];
            for (long k = 0; k < K; k++)
                v[k] = l[idx[k]];
            if (o->softmax)
                softmax_ref(y, v, K);
            else
                for (long k = 0; k < K; k++)
                    y[k] = sigmoid_ref(v[k]);
            for (long e = 0; e < E; e++)
                a[e] = 0;
            for (long k = 0; k < K; k++) {
                a[idx[k]] = y[k];
                eager[t * K + k] = y[k];
            }
        }
    }
}
