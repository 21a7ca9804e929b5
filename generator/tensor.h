/* tensor.h: kernel argument buffers for the CLI (kgc_ prefix): sizes from a dtype name,
 * seeded random contents, and conversion to and from float32. */
#ifndef KGEN_TENSOR_H
#define KGEN_TENSOR_H

#include "host.h"

/* Bytes per element of a kernel dtype name ("bf16", "e4m3_rowscaled", ...); 0 if unknown. */
int kgc_dtype_bytes(const char *dtype);
long kgc_count(const kgg_arg *a);
/* A zeroed buffer for the argument (at least one element). */
void *kgc_alloc(const kgg_arg *a);
/* Fills with seeded values: normal(0,1) for "normal", 0.5 +- 0.1 for "scale". */
void kgc_fill(const kgg_arg *a, void *buf, unsigned long long seed);
/* Converts n float32 values into the dtype (RNE); returns 0, or -1 for a dtype it cannot. */
int kgc_from_f32(const char *dtype, const float *x, void *out, long n);
/* Decodes n values of the dtype to float32. */
int kgc_to_f32(const char *dtype, const void *in, float *y, long n);

#endif
