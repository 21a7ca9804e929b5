/* tests/ref/cross_entropy_ref.c: reference cross entropy forward and backward
 * (shared/reference/cross_entropy.md), plain loops.
 *
 * Letters: T positions (P upstream), V vocabulary, t a position, v a vocabulary index,
 * c a chunk's first index. rnd is the dtype's rounding (NULL: fp32, no rounding). */
#include <math.h>

#include "ref.h"

static float r(float (*rnd)(float), float x) { return rnd ? rnd(x) : x; }

/* The forward's "Math", step by step: per row, per chunk of `chunk` logits, the chunk's max
 * m_c, m' = max(m, m_c), d = d exp(m - m') + sum exp(x - m') (the first chunk's exp(-inf) = 0),
 * m = m'; with bf16 (rnd) m and d held in bf16 after each chunk. lse = m + ln d,
 * loss = lse - x[target], both in the dtype.
 * loss, lse: [T]; logits: [T, V]; targets: [T] */
void cross_entropy_fwd_ref(float *loss, float *lse, const float *logits, const int32_t *targets,
                           long T, long V, long chunk, float (*rnd)(float))
{
    for (long t = 0; t < T; t++) {
        const float *x = logits + t * V;
        float m = -INFINITY, d = 0.0f;
        for (long c = 0; c < V; c += chunk) {
            long e = c + chunk < V ? c + chunk : V;
            float mc = -INFINITY;
            for (long v = c; v < e; v++)
                if (x[v] > mc)
                    mc = x[v];
            float m2 = m > mc ? m : mc;
            float sum = 0.0f;
            for (long v = c; v < e; v++)
                sum += expf(x[v] - m2);
            d = (m == -INFINITY ? 0.0f : d * expf(m - m2)) + sum;
            m = r(rnd, m2);
            d = r(rnd, d);
        }
        lse[t] = r(rnd, m + logf(d));
        loss[t] = r(rnd, lse[t] - x[targets[t]]);
    }
}

/* The backward: g = 1/T (mean) or 1 (sum), in the dtype; per element, in the dtype's
 * arithmetic, grad = g exp(x - lse) - g [v == target]: the exp, the product and the difference
 * each rounded.
 * grad, logits: [T, V]; targets, lse: [T] */
void cross_entropy_bwd_ref(float *grad, const float *logits, const int32_t *targets,
                           const float *lse, long T, long V, int mean, float (*rnd)(float))
{
    float g = r(rnd, mean ? 1.0f / (float)T : 1.0f);
    for (long t = 0; t < T; t++)
        for (long v = 0; v < V; v++) {
            float p = r(rnd, expf(logits[t * V + v] - lse[t]));
            float y = r(rnd, p * g);
            grad[t * V + v] = v == targets[t] ? r(rnd, y - g) : y;
        }
}

/* The mean (or sum) of the per-position losses in double, the function whose gradient the
 * backward gives: a finite-difference test differentiates it. logits: [T, V]; targets: [T] */
double cross_entropy_total_ref(const double *logits, const int32_t *targets, long T, long V,
                               int mean)
{
    double total = 0.0;
    for (long t = 0; t < T; t++) {
        const double *x = logits + t * V;
        double m = -INFINITY, d = 0.0;
        for (long v = 0; v < V; v++)
            if (x[v] > m)
                m = x[v];
        for (long v = 0; v < V; v++)
            d += exp(x[v] - m);
        total += m + log(d) - x[targets[t]];
    }
    return mean ? total / (double)T : total;
}
