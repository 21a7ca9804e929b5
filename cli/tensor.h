/* tensor.h: kernel argument buffers (kgbuf_ prefix): sizes from a dtype name, seeded random
 * contents, packed weights, and conversion to and from float32. */
#ifndef KGEN_TENSOR_H
#define KGEN_TENSOR_H

#include <stddef.h>

#include "host.h"

/* Bytes per element of a kernel dtype name ("bf16", "e4m3_rowscaled", ...); 0 if unknown. */
int kgbuf_dtype_bytes(const char *dtype);
/* A list argument's buffer is an array of a->list pointers, one a layer, each a buffer of
 * element l's description: kgbuf_elem gives it (a copy of a, not a list, dtype alt_dtype for
 * the elements in list_alt, name NAME_l) and returns 1, or 0 for an element not given (its
 * pointer stays NULL). For a plain argument, a copy and 1. */
int kgbuf_elem(const kgg_arg *a, int l, kgg_arg *e);
/* Elements of the argument at its shape (of one element, for a list); -1 if the product does
 * not fit (kgen/ckd.h). */
long kgbuf_count(const kgg_arg *a);
/* The bytes the argument's buffer takes (at least one element; a weight: its codes; a list:
 * its elements' and the pointers); 0 if the size cannot be formed. */
size_t kgbuf_bytes(const kgg_arg *a);
/* A zeroed buffer for the argument (at least one element); for a weight, an empty kg_wt. NULL
 * if out of memory or the size cannot be formed. */
void *kgbuf_alloc(const kgg_arg *a);

/* The most bytes exec, run and bench allocate for one kernel's arguments (one set of them):
 * $KGEN_MAX_ARG_BYTES (a byte count, or with a K, M, G or T suffix, binary), else 8 GiB. A
 * per-call size from a problem string, a spec or --tokens is small to type and may ask for
 * more memory than the machine has; the cap refuses that in one line instead of an OOM kill. */
#define KGBUF_DEFAULT_LIMIT ((size_t)8 << 30)
/* Adds the buffers of the used arguments args[0 .. n) to *total (the bytes already held: 0, or
 * exec's input files); KG_OK, or before anything is allocated KG_ESHAPE with one line in err
 * naming who (the kernel), the tensor that takes the sum past the cap and its size (KG_ESPEC
 * if $KGEN_MAX_ARG_BYTES is not a byte count). */
int kgbuf_budget(const char *who, const kgg_arg *args, int n, size_t *total, char *err,
                 size_t errlen);
/* The cap itself, for a caller that holds several sets of arguments; 0 if the variable is
 * malformed, kgbuf_limit_error's message then (it returns KG_ESPEC). */
size_t kgbuf_limit(void);
int kgbuf_limit_error(char *err, size_t errlen);
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
