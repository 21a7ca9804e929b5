/* npy_io.h: kernel arguments from and to .npy files (kgio_ prefix), for `kgen exec`: input
 * files bound to a kernel, rounded or copied into each argument's dtype, weights packed from
 * their stored codes or [K, N] values, and outputs written back as float32 or as their bit
 * patterns. Each returns
 * KG_OK or a KG_* status with a one-line message in err: KG_ESHAPE for a file that cannot
 * hold the argument (the user's), KG_ENOMEM, KG_EIO, KG_EARG for an output it cannot decode. */
#ifndef KGEN_NPY_IO_H
#define KGEN_NPY_IO_H

#include <stddef.h>

#include "host.h"
#include "kgen/npy.h"

/* The most input files one exec reads: a list argument (per-layer weights) takes one file an
 * element, NAME_0 .. NAME_{L-1}. */
#define KGIO_MAX_INPUTS 512

/* The kernel k's tensors from nin .npy files (names[i]: the argument it is for, or an MX
 * weight's scales NAME_scale): reads them, binds k to their shapes (kgg_bind: args[0 ..
 * *nargs) as bound, per-call sizes n[0 .. *ncalls)) and fills t[] (KGG_MAX_ARGS slots, NULL
 * where unused; free each with kgbuf_free): float32 values are rounded (RNE) to an input's
 * dtype, uint16 files are bf16/fp16 bit patterns, uint8 files fp8 codes; a scalar argument
 * reads element 0. A weight of layout kn takes [K, N] values (rounded to its format) or its
 * codes; other layouts take the stored codes as bytes (uint8, x4 words little-endian), since
 * numpy has no fp8/fp4 dtypes. Outputs start as 0xff bytes (NaN in every float dtype, -1 in
 * the integer ones), so what a kernel leaves unwritten is plain. A list argument NAME reads
 * NAME_0 .. NAME_{L-1} (the elements its kernel leaves NULL must not be given); its outputs
 * are written as NAME_l.npy. Before anything is allocated
 * the arguments' bytes are checked against the cap (tensor.h: kgbuf_budget). A file that
 * cannot be read is named with its input. */
int kgio_bind(kgg *g, const kgg_kernel *k, int nin, const char *const *names,
              const char *const *files, kgg_arg *args, int *nargs, long *n, int *ncalls,
              void **t, char *err, size_t errlen);

/* Writes output a (its buffer buf) into dir as NAME.npy, decoded to float32 (integers stay
 * integers), or with raw as its bit patterns; a *_rowscaled output [..., H+4] becomes NAME.npy
 * [..., H] and NAME_scale.npy [...] (with raw: NAME.npy uint8 [..., H+4]). The names written
 * are appended to list ("a.npy, b.npy"). */
int kgio_write(const char *dir, const kgg_arg *a, void *buf, int raw, char *list, size_t len,
               char *err, size_t errlen);

#endif
