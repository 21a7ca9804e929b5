/* kgen/npy.h: NumPy .npy files in and out, the format `kgen exec` and the tests exchange
 * tensors in. Little-endian C-order arrays of the dtypes kgen knows; versions 1.0 to 3.0. */
#ifndef KGEN_NPY_H
#define KGEN_NPY_H

#include <stddef.h>
#include "kgen/dtype.h"

#define KG_NPY_MAX_RANK 8

/* A tensor read from or to be written to a .npy file. `data` holds count() elements of `dtype`
 * (bool arrays are read as KG_U8; <u2 arrays as KG_BF16 bit patterns: a caller that knows the
 * bits are fp16 may set dtype = KG_F16, the bytes are the same). */
typedef struct kg_npy {
    kg_dtype dtype;        /* KG_F32, KG_U8, KG_I32, KG_I64, KG_U32, or KG_BF16/KG_F16 for uint16 files */
    int rank;
    long shape[KG_NPY_MAX_RANK];
    void *data;            /* malloc'd; free with kg_npy_free */
} kg_npy;

/* The product of the shape (1 for rank 0), or -1 if it overflows a long or a dimension is
 * negative (never for an array kg_npy_read returned). */
long kg_npy_count(const kg_npy *a);

/* Reads `path`. Accepted descrs: <f4, <f2 (as KG_F16), <u2 (as KG_BF16: bit patterns),
 * |u1 / <u1 / |b1 (as KG_U8), <i4, <i8, <u4; fortran_order must be False. The file is untrusted:
 * it must be a regular file (a directory or FIFO is refused without blocking), its header at
 * most 1 MiB, and the data the header declares must be in the file and at most
 * KG_NPY_MAX_BYTES, checked before anything is allocated, with every size formed by checked
 * multiplication. On failure returns KG_EIO
 * (cannot open, not a regular file, bad magic or version, malformed or truncated header or
 * data) or KG_ESHAPE (other descr, e.g. big-endian or <u8; fortran order; rank >
 * KG_NPY_MAX_RANK; a dimension above 2^62 or a shape whose size overflows), leaves out->data
 * NULL, and writes a one-line message naming the file into err. */
int kg_npy_read(const char *path, kg_npy *out, char *err, size_t errlen);

/* The most data bytes kg_npy_read allocates for one array: 8 GiB (the CLI's default cap on a
 * kernel's arguments), so a file cannot make the reader take more memory than that even when
 * it really holds the data (a sparse file is cheap to make). */
#define KG_NPY_MAX_BYTES ((size_t)8 << 30)

/* kg_npy_read with its own cap: an array whose header declares more than max_bytes of data is
 * refused with KG_ESHAPE ("PATH: the data takes N bytes, above the limit of M") after the
 * header is read and before anything is allocated for the data. kg_npy_read is this with
 * KG_NPY_MAX_BYTES. */
int kg_npy_read_max(const char *path, size_t max_bytes, kg_npy *out, char *err, size_t errlen);

/* Writes `a` to `path` (version 1.0 header, 64-byte aligned, byte for byte as numpy.save).
 * bf16 is written as <u2 bit patterns, fp16 as <f2, fp8/e8m0 as |u1. Returns KG_OK, KG_EIO
 * (cannot create or write) or KG_ESHAPE (e2m1, which has no .npy form: write its packed bytes
 * as KG_U8; bad rank or shape), with a message. */
int kg_npy_write(const char *path, const kg_npy *a, char *err, size_t errlen);

void kg_npy_free(kg_npy *a);

#endif /* KGEN_NPY_H */
