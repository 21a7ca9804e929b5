/* tensor.h: kernel argument buffers (kgbuf_ prefix): sizes from a dtype name, seeded random
 * contents, packed weights, and conversion to and from float32. */
#ifndef KGEN_TENSOR_H
#define KGEN_TENSOR_H

#include <stddef.h>

#include "host.h"

/* Bytes per element of a kernel dtype name ("bf16", "e4m3_rowscaled", ...); 0 if unknown. */
int kgbuf_dtype_bytes(const char *dtype);
long kgbuf_count(const kgg_arg *a);
/* A zeroed buffer for the argument (at least one element); for a weight, an empty kg_wt. */
void *kgbuf_alloc(const kgg_arg *a);
/* Fills with seeded values: normal(0,1) for "normal", 0.5 +- 0.1 for "scale", 0, 1, 2, ... for
 * "slots" (distinct KV-cache slots). A weight gets
 * random codes of its format in its stored layout (MX scales 2^0), packed; returns 0, or -1
 * with a message in err if packing fails. */
int kgbuf_fill(const kgg_arg *a, void *buf, unsigned long long seed, char *err, size_t errlen);
/* Packs a weight argument from its stored data (and MX scales) into buf (from kgbuf_alloc). */
int kgbuf_pack(const kgg_arg *a, void *buf, const void *data, const void *scale, char *err,
             size_t errlen);
/* Frees what kgbuf_alloc returned (a packed weight's panels too). */
void kgbuf_free(const kgg_arg *a, void *buf);
/* Converts n float32 values into the dtype (RNE); returns 0, or -1 for a dtype it cannot. */
int kgbuf_from_f32(const char *dtype, const float *x, void *out, long n);
/* Decodes n values of the dtype to float32. */
int kgbuf_to_f32(const char *dtype, const void *in, float *y, long n);

#endif
