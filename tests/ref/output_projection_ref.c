/* tests/ref/output_projection_ref.c: reference attention output projection
 * (shared/reference/output_projection.md "Math"), plain fp32 loops.
 *
 * Letters: B batch, S tokens per sequence, T = B*S tokens (t = b*S + s), N heads, D head dim,
 * K = N*D features (k = n*D + d), H hidden size (output columns, h), M the fp8 clamp. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kgen/dtype.h"
#include "ref.h"

static float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

/* fp8 quantize-dequantize: the value the quantized operand carries. */
static float fp8(float v, int fn)
{
    return fn ? kg_e4m3fn_to_f32(kg_f32_to_e4m3fn(v)) : kg_e4m3_to_f32(kg_f32_to_e4m3(v));
}

/* Step 1: A[t, n*D + d] from the attention tensor.
 *   layout 0 (CTE upstream) attention [B, N, D, S]:  A = attention[b, n, d, s]
 *   layout 1 (TKG upstream) attention [D, B, N, S]:  A = attention[d, b, n, s]
 *   layout 2 (logical)      attention [B, S, N, D]:  A = attention[b, s, n, d]
 * A: [T, K] */
void outproj_gather_ref(float *A, const float *attn, int layout, long B, long S, long N, long D)
{
    for (long b = 0; b < B; b++)
        for (long s = 0; s < S; s++)
            for (long n = 0; n < N; n++)
                for (long d = 0; d < D; d++) {
                    long i;
                    if (layout == 0)
                        i = ((b * N + n) * D + d) * S + s;
                    else if (layout == 1)
                        i = ((d * B + b) * N + n) * S + s;
                    else
                        i = ((b * S + s) * N + n) * D + d;
                    A[(b * S + s) * (N * D) + n * D + d] = attn[i];
                }
}

/* MX (common.md): each run of 32 consecutive features of a token is one block; its E8M0
 * exponent e = max over the block of the biased fp32 exponent of x, minus 8 (e4m3fn's emax),
 * clamped to [0, 254]; A = e4m3fn(clamp(x / 2^(e-127), +-448)) * 2^(e-127).
 * A: [T, K] in place, K % 32 == 0 */
void outproj_mx_quant_ref(float *A, long T, long K)
{
    for (long t = 0; t < T; t++) {
        for (long k0 = 0; k0 < K; k0 += 32) {
            float *x = A + t * K + k0;
            int emax = 0;
            for (int i = 0; i < 32; i++) {
                uint32_t bits;
                memcpy(&bits, &x[i], 4);
                int be = (int)((bits >> 23) & 0xff);
                if (x[i] == x[i] && be > emax)
                    emax = be;
            }
            int e = emax - 8 < 0 ? 0 : emax - 8 > 254 ? 254 : emax - 8;
            float scale = ldexpf(1.0f, e - 127);
            for (int i = 0; i < 32; i++)
                x[i] = kg_e4m3fn_to_f32(kg_f32_to_e4m3fn(clampf(x[i] / scale, -448.0f, 448.0f)))
                       * scale;
        }
    }
}

/* Steps 2-7 on A [T, K] (already gathered; MX already quantized): quant is the upstream code
 * (0 NONE, 1 STATIC, 2 ROW, 3 MX, 4 STATIC_MX).
 *   STATIC / STATIC_MX: Aq = fp8(clamp(A / s_in, +-M)) (e4m3fn when fn),
 *                       y = (Aq @ W) * (s_w * s_in)
 *   ROW:                y[t, h] = (A @ W)[t, h] * w_scale[h]
 *   NONE, MX:           y = A @ W
 * then y += bias (when bias != NULL). Sums over k in fp32, ascending.
 * y: [T, H]; A: [T, K] (STATIC modifies it); W: [K, H] logical values (MX scales applied);
 * w_scale: [1] (STATIC) or [H] (ROW); bias: [H] or NULL */
void outproj_ref(float *y, float *A, const float *W, const float *w_scale, float s_in,
                 const float *bias, int quant, int fn, float M, long T, long K, long H)
{
    int stat = quant == 1 || quant == 4;
    if (stat)
        for (long i = 0; i < T * K; i++)
            A[i] = fp8(clampf(A[i] / s_in, -M, M), fn);
    for (long t = 0; t < T; t++) {
        float *yt = y + t * H;
        for (long h = 0; h < H; h++)
            yt[h] = 0.0f;
        for (long k = 0; k < K; k++)
            for (long h = 0; h < H; h++)
                yt[h] += A[t * K + k] * W[k * H + h];
        for (long h = 0; h < H; h++) {
            if (stat)
                yt[h] *= w_scale[0] * s_in;
            else if (quant == 2)
                yt[h] *= w_scale[h];
            if (bias)
                yt[h] += bias[h];
        }
    }
}

/* TKG TRANSPOSE_OUT: o[p, l, r, t] = y[t, h] with h = l*128*R + p*R + r, R = H / (128*lnc).
 * o: [128, lnc, R, T]; y: [T, H] */
void outproj_transpose_ref(float *o, const float *y, long T, long H, int lnc)
{
    long R = H / (128 * lnc);
    for (long p = 0; p < 128; p++)
        for (long l = 0; l < lnc; l++)
            for (long r = 0; r < R; r++)
                for (long t = 0; t < T; t++)
                    o[((p * lnc + l) * R + r) * T + t] = y[t * H + l * 128 * R + p * R + r];
}
