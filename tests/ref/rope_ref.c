/* tests/ref/rope_ref.c: reference RoPE and rope_hf (shared/reference/rope.md), plain fp32 loops.
 *
 * Letters: d head dim, h = d/2, B batch, N heads (RoPE), Hq / Hk query / key heads (rope_hf),
 * S positions, T table rows (T >= S, the first S used), j < h a pair index, s a position. */
#include "ref.h"

/* Flat index of x[j, b, n, s] in layout dBNS [d, B, N, S] or of x[b, n, s, j] in BNSd
 * [B, N, S, d]. */
static long x_index(int bnsd, int j, int b, int n, int s, int d, int B, int N, int S)
{
    if (bnsd)
        return (((long)b * N + n) * S + s) * d + j;
    return (((long)j * B + b) * N + n) * S + s;
}

/* Flat index of table entry j of (b, s): dBNS tables [h, B, S], BNSd tables [B, S, h]. */
static long t_index(int bnsd, int j, int b, int s, int h, int B, int S)
{
    if (bnsd)
        return ((long)b * S + s) * h + j;
    return ((long)j * B + b) * S + s;
}

/* RoPE. For one (b, n, s) vector x of length d, c_j = cos[j,b,s], s_j = sin[j,b,s], j < h:
 *   contiguous:  y[j]   = x[j]*c_j   - x[j+h]*s_j;   y[j+h]  = x[j+h]*c_j  + x[j]*s_j
 *   interleaved: y[2j]  = x[2j]*c_j  - x[2j+1]*s_j;  y[2j+1] = x[2j+1]*c_j + x[2j]*s_j
 * x_out, x_in: [d, B, N, S] (layout_bnsd = 0) or [B, N, S, d] (layout_bnsd = 1)
 * cos, sin:    [h, B, S]    (layout_bnsd = 0) or [B, S, h]    (layout_bnsd = 1) */
void rope_ref(float *x_out, const float *x_in, const float *cos, const float *sin,
              int d, int B, int N, int S, int layout_bnsd, int contiguous)
{
    int h = d / 2;
    for (int b = 0; b < B; b++) {
        for (int n = 0; n < N; n++) {
            for (int s = 0; s < S; s++) {
                for (int j = 0; j < h; j++) {
                    int j0 = contiguous ? j : 2 * j;      /* the pair (j0, j1) */
                    int j1 = contiguous ? j + h : 2 * j + 1;
                    long i0 = x_index(layout_bnsd, j0, b, n, s, d, B, N, S);
                    long i1 = x_index(layout_bnsd, j1, b, n, s, d, B, N, S);
                    float c = cos[t_index(layout_bnsd, j, b, s, h, B, S)];
                    float sn = sin[t_index(layout_bnsd, j, b, s, h, B, S)];
                    float x0 = x_in[i0], x1 = x_in[i1];
                    x_out[i0] = x0 * c - x1 * sn;
                    x_out[i1] = x1 * c + x0 * sn;
                }
            }
        }
    }
}

/* One rope_hf head vector: x, y [d]; c, sn: the (b, s) table rows [d] (full width).
 *   forward:  y[:h] = x[:h]*cos[:h] - x[h:]*sin[:h];  y[h:] = x[h:]*cos[h:] + x[:h]*sin[h:]
 *   backward: y[:h] = x[:h]*cos[:h] + x[h:]*sin[h:];  y[h:] = x[h:]*cos[h:] - x[:h]*sin[:h] */
static void rope_hf_vec(float *y, const float *x, const float *c, const float *sn, int d,
                        int backward)
{
    int h = d / 2;
    for (int j = 0; j < h; j++) {
        if (backward) {
            y[j] = x[j] * c[j] + x[j + h] * sn[j + h];
            y[j + h] = x[j + h] * c[j + h] - x[j] * sn[j];
        } else {
            y[j] = x[j] * c[j] - x[j + h] * sn[j];
            y[j + h] = x[j + h] * c[j + h] + x[j] * sn[j + h];
        }
    }
}

/* rope_hf: the same tables for q and k and for every head.
 * q_out, q: [B, Hq, S, d]; k_out, k: [B, Hk, S, d]
 * cos, sin: row (b, s) starts at ((table_batch ? b*T : 0) + s) * table_stride, d entries:
 *   tables [B, T, d] or [T, d] have table_stride d; a rope_cache [B, T, 2d] or [T, 2d] is
 *   passed as cos = cache, sin = cache + d, table_stride 2d. */
void rope_hf_ref(float *q_out, float *k_out, const float *q, const float *k,
                 const float *cos, const float *sin, int B, int Hq, int Hk, int S, int d,
                 int T, int table_batch, int table_stride, int backward)
{
    for (int b = 0; b < B; b++) {
        for (int s = 0; s < S; s++) {
            long row = ((table_batch ? (long)b * T : 0) + s) * table_stride;
            for (int n = 0; n < Hq; n++) {
                long o = (((long)b * Hq + n) * S + s) * d;
                rope_hf_vec(q_out + o, q + o, cos + row, sin + row, d, backward);
            }
            for (int n = 0; n < Hk; n++) {
                long o = (((long)b * Hk + n) * S + s) * d;
                rope_hf_vec(k_out + o, k + o, cos + row, sin + row, d, backward);
            }
        }
    }
}
