/* quant_ref.c: the model loader's fp8 quantizer (--weights fp8) as model/weights.c wrote it
 * before it went through the runtime's SIMD primitive: element by element, each value widened
 * to f32 on its own, the row's largest magnitude by compare-and-keep, one division a code. */
#include <math.h>
#include <string.h>

#include "kgen/dtype.h"
#include "ref.h"

static float value(const void *data, int dtype, long i)
{
    const unsigned char *p = data;
    if (dtype == 0) {
        float v;
        memcpy(&v, p + 4 * i, 4);
        return v;
    }
    uint16_t h;
    memcpy(&h, p + 2 * i, 2);
    return dtype == 1 ? kg_bf16_to_f32(h) : kg_f16_to_f32(h);
}

void quant_ref_e4m3(uint8_t *q, float *scale, const void *data, int dtype, long N, long K)
{
    for (long n = 0; n < N; n++) {
        float amax = 0;
        for (long k = 0; k < K; k++) {
            float v = value(data, dtype, n * K + k);
            amax = fabsf(v) > amax ? fabsf(v) : amax;
        }
        scale[n] = amax > 0 ? amax / 240.0f : 1.0f;
        for (long k = 0; k < K; k++)
            q[n * K + k] = kg_f32_to_e4m3(value(data, dtype, n * K + k) / scale[n]);
    }
}
