/* tests/util/tensors.h: kernel-test tensors in the float dtypes (bf16, fp16, f32): fp32 values
 * rounded to a dtype, encoded for a kernel and decoded back, poisoned outputs, and the checks that
 * compare a kernel's encoded output with a reference, a vector case or another build of it. */
#ifndef KGT_TENSORS_H
#define KGT_TENSORS_H

#include <stddef.h>

#include "kgen/dtype.h"
#include "util/compare.h"
#include "util/vectors.h"

/* The float dtypes the kernel families take, the 16-bit ones first (tests rely on the order). */
#define KGT_FLOAT_DTYPES 3
extern const kg_dtype kgt_float_dtypes[KGT_FLOAT_DTYPES];

/* Bytes per element of a float dtype: 4 for f32, else 2. */
size_t kgt_dtype_size(kg_dtype t);

/* ---- values ---------------------------------------------------------------------------------- */
/* x rounded to bf16 / fp16 / dtype t and kept in fp32: the golden's cast to the output dtype. */
float kgt_round_bf16(float x);
float kgt_round_f16(float x);
float kgt_round(kg_dtype t, float x);

/* n normal values (fixed seed) already rounded to t, so the reference sees exactly what the
 * kernel sees. malloc'd (one element at least). */
float *kgt_randn(kg_dtype t, long n, unsigned long long seed);

/* ---- buffers --------------------------------------------------------------------------------- */
/* The n values x as a kernel of dtype t reads them; malloc'd (one element at least). */
void *kgt_encode(kg_dtype t, const float *x, long n);
/* n elements of dtype t at p, as fp32; malloc'd (one element at least). */
float *kgt_decode(kg_dtype t, const void *p, long n);
/* An output buffer of n elements filled with 0xff bytes (NaN in every dtype), so an element the
 * kernel never writes fails the comparator's NaN pattern check. */
void *kgt_poisoned(kg_dtype t, long n);
/* An output buffer of n elements for one build (KGT_AOT or KGT_JIT, compare.h) of a JIT-vs-AOT
 * comparison: kgt_filled with that build's byte, so kgt_same_bytes sees an unwritten element. */
void *kgt_build_output(kg_dtype t, long n, int build);

/* ---- checks: 1 on pass, 0 on fail with msg saying where -------------------------------------- */
/* The kernel output out (dtype t, a C-order array of shape) against the fp32 reference want,
 * which is rounded to t in place first; kgt_allclose_shaped at rtol, atol. */
int kgt_close_to_ref(kg_dtype t, const void *out, float *want, int rank, const long *shape,
                     double rtol, double atol, char *msg, size_t len);

/* The kernel output out (dtype t) against case c's expected output out_name rounded to t, at the
 * case's tolerance for it. Returns -1 (msg untouched) if case.json gives out_name no tolerance. */
int kgt_close_to_case(const kgt_case *c, const char *out_name, kg_dtype t, const void *out,
                      char *msg, size_t len);

/* For JIT (got) against AOT (want) builds of one kernel, their outputs started as
 * kgt_build_output(.., KGT_JIT) and (.., KGT_AOT): kgt_builds_equal over n elements of t (so
 * n > 0, every element written by both, not all zero); on fail msg adds the first differing
 * element's index and values, and the worst one (the comparator at zero tolerance). */
int kgt_same_bytes(const void *got, const void *want, kg_dtype t, long n, int rank,
                   const long *shape, char *msg, size_t len);

#endif /* KGT_TENSORS_H */
