/* st_int.h: what the safetensors reader's files share (st.c opens models and indexes,
 * st_file.c maps and checks one file, st_write.c writes one). Not a public header. */
#ifndef KGEN_MODEL_ST_INT_H
#define KGEN_MODEL_ST_INT_H

#include <stdarg.h>
#include <stddef.h>

#include "model/st.h"

/* The longest header kgen reads: the format's own limit is 100 MB, and a real model's header
 * is a few hundred KiB (one short JSON entry per tensor). */
#define KGST_MAX_HEADER (100L << 20)
/* The longest index file: a weight_map line per tensor, as small as a header. */
#define KGST_MAX_INDEX (100L << 20)

/* One mapped safetensors file and its tensors, sorted by name (names malloc'd). */
typedef struct kgst_file {
    char *path;             /* as opened, for messages */
    void *map;
    size_t len;
    kgst_tensor *t;
    int n;
} kgst_file;

/* Maps path read-only and checks every field of its header (st_file.c). On error returns a
 * KG_E* code with one line in err naming path and the field, and f holds nothing. */
int kgst_file_open(kgst_file *f, const char *path, char *err, size_t errlen);
void kgst_file_close(kgst_file *f);
/* The tensor called name in f (binary search), or NULL. */
const kgst_tensor *kgst_file_find(const kgst_file *f, const char *name);

/* Bytes per element of a dtype the format maps (0 for any other). */
int kgst_elem_size(kg_dtype t);
/* The safetensors name of a kg_dtype ("BF16"), NULL if the format has none kgen writes. */
const char *kgst_dtype_name(kg_dtype t);
/* The kg_dtype of a safetensors dtype name, -1 if kgen does not read it. */
int kgst_dtype_from_name(const char *name);

/* Writes fmt into err, control bytes made '?' so it is one printable line, and returns code,
 * so callers can `return kgst_fail(...)`. */
int kgst_fail(int code, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* name quoted for a one-line message: control bytes and '"' as '?', cut at 80 bytes with
 * "..." (a name comes from the file, and may be long or hold a newline). */
const char *kgst_quote(const char *name, char *buf, size_t len);

#endif /* KGEN_MODEL_ST_INT_H */
