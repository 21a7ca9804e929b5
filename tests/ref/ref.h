/* ref.h: the hand-written reference kernels of tests/ref/ (plain loops, never generated). */
#ifndef KGEN_TEST_REF_H
#define KGEN_TEST_REF_H

#include <stdint.h>

/* rmsnorm_quant_ref.c */
void rmsnorm_quant_ref(uint8_t *out, const float *x, const float *gamma, float in_scale,
                       int rms, int row, int fn, float lb, float eps, float M, long R, long H);

#endif
