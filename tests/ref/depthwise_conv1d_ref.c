/* tests/ref/depthwise_conv1d_ref.c: reference depthwise conv1d
 * (shared/reference/depthwise_conv1d.md), plain loops.
 *
 * Letters: N batch, C channels, W input width, S filter width, Q output width,
 * n, c, q, s their indices; pl, pr the zeros before and after a row. */
#include "ref.h"

/* y[n, c, q] = sum over s of f[c, s] * xp[q * stride + s], xp = x[n, c, :] with pl zeros
 * before and pr after (cross-correlation, no flip), summed in double and rounded once to fp32
 * (the caller rounds to the dtype). Q = (W + pl + pr - S) / stride + 1.
 * y: [N, C, Q]; x: [N, C, W]; f: [C, S] */
void depthwise_conv1d_ref(float *y, const float *x, const float *f, long N, long C, long W,
                          long S, long stride, long pl, long pr)
{
    long Q = (W + pl + pr - S) / stride + 1;
    for (long n = 0; n < N; n++)
        for (long c = 0; c < C; c++)
            for (long q = 0; q < Q; q++) {
                double acc = 0.0;
                for (long s = 0; s < S; s++) {
                    long i = q * stride + s - pl; /* index into x; outside [0, W) a zero */
                    if (i >= 0 && i < W)
                        acc += (double)f[c * S + s] * x[(n * C + c) * W + i];
                }
                y[(n * C + c) * Q + q] = (float)acc;
            }
}

