/* ref.h: the hand-written reference kernels of tests/ref/ (plain loops, never generated). */
#ifndef KGEN_TEST_REF_H
#define KGEN_TEST_REF_H

#include <stdint.h>

/* rmsnorm_quant_ref.c */
void rmsnorm_quant_ref(uint8_t *out, const float *x, const float *gamma, float in_scale,
                       int rms, int row, int fn, float lb, float eps, float M, long R, long H);

/* rope_ref.c (shared/reference/rope.md) */
void rope_ref(float *x_out, const float *x_in, const float *cos, const float *sin,
              int d, int B, int N, int S, int layout_bnsd, int contiguous);
void rope_hf_ref(float *q_out, float *k_out, const float *q, const float *k,
                 const float *cos, const float *sin, int B, int Hq, int Hk, int S, int d,
                 int T, int table_batch, int table_stride, int backward);

/* cumsum_ref.c (shared/reference/cumsum.md) */
void cumsum_ref(float *out, const float *x, int rows, int H, float (*tile_carry_round)(float));

#endif
