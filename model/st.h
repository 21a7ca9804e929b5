/* st.h: safetensors files, read (mmap'd, every header field bounds-checked) and written (kgst_
 * prefix). A model's weights are one model.safetensors or a sharded set named by
 * model.safetensors.index.json; both open as one kgst whose tensors point into the mappings. */
#ifndef KGEN_MODEL_ST_H
#define KGEN_MODEL_ST_H

#include <stddef.h>

#include "kgen/dtype.h"

#define KGST_MAX_RANK 8

/* One tensor. Safetensors dtypes map to kg_dtype: F32, BF16, F16, F8_E4M3 (torch's
 * float8_e4m3fn, so KG_E4M3FN), F8_E5M2, U8, I32, U32, I64; any other dtype is refused. */
typedef struct kgst_tensor {
    const char *name;
    kg_dtype dtype;
    int rank;
    long shape[KGST_MAX_RANK];
    long count;          /* elements: the product of shape, checked */
    const void *data;    /* inside the mapping: valid until kgst_close; may be unaligned */
    size_t nbytes;       /* count * element size, equal to the header's offset span */
} kgst_tensor;

typedef struct kgst kgst;

/* Opens path: a .safetensors file, a model.safetensors.index.json, or a directory holding one
 * of the two (the index wins). Returns KG_OK, or KG_EIO (cannot open or map), KG_ESHAPE (a
 * header that is not what the format says: length past the end, not JSON, offsets outside the
 * data or overlapping, a shape whose count overflows or does not match its bytes, a duplicate
 * name, an index naming a shard or tensor that is not there) or KG_ENOMEM, with one line in
 * err naming the file and the tensor or field. *out is NULL on error. */
int kgst_open(kgst **out, const char *path, char *err, size_t errlen);
void kgst_close(kgst *st);

/* The tensor called name, or NULL. */
const kgst_tensor *kgst_find(const kgst *st, const char *name);
/* Tensors in a fixed order (by name), for listing. */
int kgst_count(const kgst *st);
const kgst_tensor *kgst_at(const kgst *st, int i);

/* The file that holds t (a shard of an index, or the file opened), for messages; NULL if t is
 * not one of st's tensors. */
const char *kgst_path(const kgst *st, const kgst_tensor *t);

/* The tensor called name, checked against what the model needs of it: rank and shape exactly,
 * and a dtype in the set dtypes (bits 1u << kg_dtype; 0 takes any). Returns KG_OK with *out
 * set, or KG_ESHAPE with one line naming the file: "PATH: tensor \"NAME\" is missing" (PATH the
 * path opened), "FILE: tensor \"NAME\": shape [a, b], the model needs [c, d]" or "...: dtype
 * F64..., the model needs one of F32, BF16" (FILE the file that holds it). */
int kgst_expect(const kgst *st, const char *name, unsigned dtypes, int rank, const long *shape,
                const kgst_tensor **out, char *err, size_t errlen);

/* Elements [first, first + n) of t (in row-major order) decoded to f32 into out: F32, BF16,
 * F16, F8_E4M3, F8_E5M2 exactly; U8, I32, U32 and I64 converted (the integers above 2^24 are
 * rounded). Reads the possibly unaligned data byte-wise. Returns KG_OK, or KG_EARG for a range
 * outside the tensor. */
int kgst_to_f32(const kgst_tensor *t, long first, long n, float *out);

/* Writes n tensors to path as one safetensors file (tensors laid out in the given order, data
 * 8-byte aligned, header keys sorted so the file is a pure function of its inputs), through a
 * temporary file renamed into place. t[i].data holds t[i].nbytes bytes; count and nbytes must
 * agree with shape and dtype. Returns KG_OK, KG_ESHAPE or KG_EIO with one line in err. */
int kgst_write(const char *path, const kgst_tensor *t, int n, char *err, size_t errlen);

/* kgst_write_stream's source of tensor data: fills buf with the len bytes of tensor i that
 * start at byte off (chunks in file order, len at most KGST_CHUNK); returns KG_OK or a KG_E*
 * code, which ends the write (the temporary file is removed). */
#define KGST_CHUNK ((size_t)16 << 20)
typedef int (*kgst_fill_fn)(void *ctx, int i, size_t off, void *buf, size_t len);

/* kgst_write with the data produced in chunks by fill instead of read from t[i].data (which
 * is ignored): a model of several GB is written without being held in memory. */
int kgst_write_stream(const char *path, const kgst_tensor *t, int n, kgst_fill_fn fill,
                      void *ctx, char *err, size_t errlen);

#endif /* KGEN_MODEL_ST_H */
