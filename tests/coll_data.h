/* coll_data.h: the collectives tests' inputs, shared by test_coll.c and the mpirun program
 * coll_mpi.c: rank r's x [n] of format dtype (0 f32, 1 bf16, 2 fp16), values of either sign
 * whose sums round (so the order and the single rounding show). */
#ifndef KGT_COLL_DATA_H
#define KGT_COLL_DATA_H

#include <stdint.h>
#include <stdlib.h>

#include "kgen/dtype.h"

static inline void *coll_data(int r, long n, int dtype)
{
    void *x = malloc((size_t)(n > 0 ? n : 1) * (dtype ? 2 : 4));
    for (long i = 0; i < n; i++) {
        float v = (float)((r * 7919 + i * 104729) % 2001 - 1000) * 0.0137f + 0.001f * (float)r;
        if (dtype == 0)
            ((float *)x)[i] = v * 1.0001f;
        else
            ((uint16_t *)x)[i] = dtype == 1 ? kg_f32_to_bf16(v) : kg_f32_to_f16(v);
    }
    return x;
}

#endif
