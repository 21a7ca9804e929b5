/* rmsnorm_quant_ref.c: RMSNorm-Quant as plain loops, to check line by line against
 * shared/reference/rmsnorm_quant.md "Math" (the kernel's behaviour: bf16 working row, scale
 * floor 1e-6). Letters: R rows, H hidden size, M fp8_max. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kgen/dtype.h"
#include "ref/ref.h"

static float bf16(float v) { return kg_bf16_to_f32(kg_f32_to_bf16(v)); }

static uint8_t fp8(float v, int fn) { return fn ? kg_f32_to_e4m3fn(v) : kg_f32_to_e4m3(v); }

static float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

void rmsnorm_quant_ref(uint8_t *out,       /* [R, H+4] (row) or [R, H] fp8 codes */
                       const float *x,     /* [R, H] input values */
                       const float *gamma, /* [H], used when rms */
                       float in_scale,     /* STATIC dequant scale s */
                       int rms, int row, int fn, float lb, float eps, float M, long R, long H)
{
    float y[H];
    for (long r = 0; r < R; r++) {
        const float *xr = x + r * H;
        uint8_t *q = out + r * (row ? H + 4 : H);
        /* 1. the working row is bf16 */
        for (long j = 0; j < H; j++)
            y[j] = bf16(xr[j]);
        /* 2. RMS_NORM: y = bf16(y * inv * gamma) */
        if (rms) {
            float ss = 0.0f;
            for (long j = 0; j < H; j++)
                ss += y[j] * y[j];
            float inv = 1.0f / sqrtf(ss / (float)H + eps);
            for (long j = 0; j < H; j++)
                y[j] = bf16((y[j] * inv) * gamma[j]);
        }
        if (row) {
            /* 3. ROW: a = max|y|, optional clip, d = max(a / M, 1e-6), q = fp8(y / d) */
            float a = 0.0f;
            for (long j = 0; j < H; j++)
                a = fabsf(y[j]) > a ? fabsf(y[j]) : a;
            if (lb > 1e-6f) {
                a = a < lb ? a : lb;
                for (long j = 0; j < H; j++)
                    y[j] = clampf(y[j], -lb, lb);
            }
            float d = a / M;
            d = d > 1e-6f ? d : 1e-6f;
            float inv_d = 1.0f / d;
            for (long j = 0; j < H; j++)
                q[j] = fp8(clampf(y[j] * inv_d, -M, M), fn);
            memcpy(q + H, &d, 4); /* little-endian host */
        } else {
            /* 4. STATIC: q = fp8(clamp(y / s, -M, M)) */
            float inv_s = 1.0f / in_scale;
            for (long j = 0; j < H; j++)
                q[j] = fp8(clampf(y[j] * inv_s, -M, M), fn);
        }
    }
}
