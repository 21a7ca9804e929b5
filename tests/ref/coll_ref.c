/* coll_ref.c: the collectives' results in plain loops (kgen/abi.h's kgp_all_reduce,
 * kgp_all_gather), the references every back end is held to bit for bit.
 * Legend: R ranks, n elements a rank, es bytes an element. */
#include <string.h>

#include "kgen/dtype.h"
#include "ref/ref.h"

/* value i of x [n] (format dtype: 0 f32, 1 bf16, 2 fp16) as fp32 */
static float widen(const void *x, long i, int dtype)
{
    if (dtype == 0)
        return ((const float *)x)[i];
    uint16_t h = ((const uint16_t *)x)[i];
    return dtype == 1 ? kg_bf16_to_f32(h) : kg_f16_to_f32(h);
}

void all_reduce_ref(void *y, const void *const *x, int R, long n, int dtype)
{
    for (long i = 0; i < n; i++) {
        float s = widen(x[0], i, dtype); /* y [n]; x[r] [n], r < R, summed in rank order */
        for (int r = 1; r < R; r++)
            s = s + widen(x[r], i, dtype);
        if (dtype == 0)
            ((float *)y)[i] = s;
        else
            ((uint16_t *)y)[i] = dtype == 1 ? kg_f32_to_bf16(s) : kg_f32_to_f16(s);
    }
}

void all_gather_ref(void *y, const void *const *x, int R, long bytes)
{
    for (int r = 0; r < R; r++) /* y [R, bytes] */
        memcpy((char *)y + (long)r * bytes, x[r], (size_t)bytes);
}
