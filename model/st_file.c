/* st_file.c: one safetensors file, mapped read-only and checked field by field before any
 * tensor is handed out. The layout: an 8-byte little-endian header length N, N bytes of JSON
 * ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}), then
 * the data region the offsets are relative to. */
#define _GNU_SOURCE
#include "st_int.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kgen/abi.h"
#include "kgen/ckd.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "st_file.c hands out little-endian tensor data as it is: little-endian hosts only"
#endif

#define DTYPES "F32, BF16, F16, F8_E4M3, F8_E5M2, U8, I32, U32, I64"

/* ---- shared helpers (st_int.h) ----------------------------------------------------------- */

static const struct { const char *name; kg_dtype dtype; } dtypes[] = {
    { "F32", KG_F32 },      { "BF16", KG_BF16 },    { "F16", KG_F16 },
    { "F8_E4M3", KG_E4M3FN }, { "F8_E5M2", KG_E5M2 }, { "U8", KG_U8 },
    { "I32", KG_I32 },      { "U32", KG_U32 },      { "I64", KG_I64 },
};
enum { NDTYPES = sizeof dtypes / sizeof dtypes[0] };

int kgst_elem_size(kg_dtype t)
{
    switch (t) {
    case KG_F32: case KG_I32: case KG_U32: return 4;
    case KG_BF16: case KG_F16: return 2;
    case KG_E4M3FN: case KG_E5M2: case KG_U8: return 1;
    case KG_I64: return 8;
    default: return 0;
    }
}

const char *kgst_dtype_name(kg_dtype t)
{
    for (int i = 0; i < NDTYPES; i++)
        if (dtypes[i].dtype == t)
            return dtypes[i].name;
    return NULL;
}

int kgst_dtype_from_name(const char *name)
{
    for (int i = 0; i < NDTYPES; i++)
        if (strcmp(dtypes[i].name, name) == 0)
            return (int)dtypes[i].dtype;
    return -1;
}

int kgst_fail(int code, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        for (char *p = err; *p; p++)   /* jansson quotes the bad bytes it stopped at */
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
    }
    return code;
}

const char *kgst_quote(const char *name, char *buf, size_t len)
{
    enum { CUT = 80 };
    size_t n = 0;
    for (const char *p = name; *p && n + 4 < len; p++) {
        if (n == CUT) {
            memcpy(buf + n, "...", 3);
            n += 3;
            break;
        }
        unsigned char c = (unsigned char)*p;
        buf[n++] = c < 0x20 || c == 0x7f || c == '"' ? '?' : (char)c;
    }
    buf[n] = '\0';
    return buf;
}

/* ---- mapping ----------------------------------------------------------------------------- */

/* Maps path if it is a regular file of at least 8 bytes. O_NONBLOCK so that a FIFO without a
 * writer is refused instead of blocking the open. */
static int map_file(kgst_file *f, const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return kgst_fail(KG_EIO, err, errlen, "%s: cannot open (%s)", path, strerror(errno));
    struct stat st;
    int rc = KG_OK;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        rc = kgst_fail(KG_EIO, err, errlen, "%s: not a regular file", path);
    else if (st.st_size < 8)
        rc = kgst_fail(KG_ESHAPE, err, errlen, "%s: truncated file: %lld bytes, fewer than the "
                       "8 of the header length", path, (long long)st.st_size);
    else if ((unsigned long long)st.st_size > SIZE_MAX)
        rc = kgst_fail(KG_EIO, err, errlen, "%s: too large to map", path);
    if (rc == KG_OK) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED)
            rc = kgst_fail(KG_EIO, err, errlen, "%s: cannot map (%s)", path, strerror(errno));
        else
            f->map = m, f->len = (size_t)st.st_size;
    }
    close(fd);
    return rc;
}

void kgst_file_close(kgst_file *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->n; i++)
        free((char *)f->t[i].name);
    free(f->t);
    free(f->path);
    if (f->map)
        munmap(f->map, f->len);
    memset(f, 0, sizeof *f);
}

/* ---- one tensor entry -------------------------------------------------------------------- */

/* What checking one header entry needs: the file, the data region, the entry's name. */
typedef struct entry {
    const char *path;
    const char *data;
    size_t datalen;
    const char *name;
    char q[96];             /* name quoted for messages */
    char *err;
    size_t errlen;
} entry;

static int bad(entry *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "PATH: tensor "NAME": <message>", KG_ESHAPE. */
static int bad(entry *e, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return kgst_fail(KG_ESHAPE, e->err, e->errlen, "%s: tensor \"%s\": %s", e->path, e->q, msg);
}

static int parse_dtype(entry *e, const json_t *v, kgst_tensor *t)
{
    char q[96];
    if (!v)
        return bad(e, "'dtype' is missing");
    if (!json_is_string(v))
        return bad(e, "'dtype' is not a string");
    int d = kgst_dtype_from_name(json_string_value(v));
    if (d < 0)
        return bad(e, "dtype \"%s\" is not one kgen reads (" DTYPES ")",
                   kgst_quote(json_string_value(v), q, sizeof q));
    t->dtype = (kg_dtype)d;
    return KG_OK;
}

/* A non-negative JSON integer (a dimension or an offset); -1 if v is anything else. */
static long long natural(const json_t *v)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    return (long long)json_integer_value(v);
}

static int parse_shape(entry *e, const json_t *v, kgst_tensor *t)
{
    if (!v)
        return bad(e, "'shape' is missing");
    if (!json_is_array(v))
        return bad(e, "'shape' is not a list");
    if (json_array_size(v) > KGST_MAX_RANK)
        return bad(e, "shape has %zu dimensions, more than kgen's %d", json_array_size(v),
                   KGST_MAX_RANK);
    t->rank = (int)json_array_size(v);
    for (int i = 0; i < t->rank; i++) {
        long long d = natural(json_array_get(v, (size_t)i));
        if (d < 0 || d > LONG_MAX)
            return bad(e, "shape[%d] is not a non-negative integer", i);
        t->shape[i] = (long)d;
    }
    size_t count, nbytes;
    if (kg_ckd_shape(&count, 1, t->shape, t->rank) || count > LONG_MAX ||
        kg_ckd_shape(&nbytes, (size_t)kgst_elem_size(t->dtype), t->shape, t->rank))
        return bad(e, "shape: the element count overflows");
    t->count = (long)count;
    t->nbytes = nbytes;
    return KG_OK;
}

/* data_offsets [begin, end] inside the data region, holding exactly shape x dtype bytes. */
static int parse_offsets(entry *e, const json_t *v, kgst_tensor *t)
{
    if (!v)
        return bad(e, "'data_offsets' is missing");
    if (!json_is_array(v) || json_array_size(v) != 2)
        return bad(e, "'data_offsets' is not a list of two integers");
    long long b = natural(json_array_get(v, 0)), end = natural(json_array_get(v, 1));
    if (b < 0 || end < 0)
        return bad(e, "'data_offsets' is not a list of two non-negative integers");
    if (b > end)
        return bad(e, "data_offsets [%lld, %lld] begin after they end", b, end);
    if ((unsigned long long)end > e->datalen)
        return bad(e, "data_offsets [%lld, %lld] end past the data region (%zu bytes)", b, end,
                   e->datalen);
    if ((unsigned long long)(end - b) != t->nbytes)
        return bad(e, "data_offsets [%lld, %lld] hold %lld bytes, but shape x %s is %zu bytes",
                   b, end, end - b, kgst_dtype_name(t->dtype), t->nbytes);
    t->data = e->data + b;
    return KG_OK;
}

static int parse_tensor(entry *e, const json_t *v, kgst_tensor *t)
{
    if (!json_is_object(v))
        return bad(e, "the entry is not a JSON object");
    const char *key;
    json_t *field;
    json_object_foreach((json_t *)v, key, field) {
        if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets")) {
            char q[96];
            return bad(e, "field '%s' is not one of dtype, shape, data_offsets",
                       kgst_quote(key, q, sizeof q));
        }
    }
    int rc = parse_dtype(e, json_object_get(v, "dtype"), t);
    if (rc == KG_OK)
        rc = parse_shape(e, json_object_get(v, "shape"), t);
    if (rc == KG_OK)
        rc = parse_offsets(e, json_object_get(v, "data_offsets"), t);
    return rc;
}

/* __metadata__: a flat object of strings (the format's definition); its content is not used. */
static int check_metadata(entry *e, const json_t *v)
{
    if (!json_is_object(v))
        return kgst_fail(KG_ESHAPE, e->err, e->errlen, "%s: __metadata__ is not a JSON object",
                         e->path);
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)v, key, val) {
        if (!json_is_string(val)) {
            char q[96];
            return kgst_fail(KG_ESHAPE, e->err, e->errlen, "%s: __metadata__ \"%s\" is not a "
                             "string", e->path, kgst_quote(key, q, sizeof q));
        }
    }
    return KG_OK;
}

/* ---- the whole header -------------------------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
    return strcmp(((const kgst_tensor *)a)->name, ((const kgst_tensor *)b)->name);
}

/* Tensors of one mapping by where their bytes begin. */
static int by_offset(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)(*(kgst_tensor *const *)a)->data;
    uintptr_t y = (uintptr_t)(*(kgst_tensor *const *)b)->data;
    return x < y ? -1 : x > y;
}

/* No two tensors with bytes share a byte: sorted by begin, each starts at or past the furthest
 * end so far. Empty tensors hold no bytes and cannot overlap. */
static int check_overlaps(kgst_file *f, const char *path, const char *data, char *err,
                          size_t errlen)
{
    kgst_tensor **by = malloc(((size_t)f->n + 1) * sizeof *by);
    if (!by)
        return kgst_fail(KG_ENOMEM, err, errlen, "%s: out of memory", path);
    for (int i = 0; i < f->n; i++)
        by[i] = &f->t[i];
    qsort(by, (size_t)f->n, sizeof *by, by_offset);
    const kgst_tensor *last = NULL;
    size_t last_end = 0;
    int rc = KG_OK;
    for (int i = 0; i < f->n && rc == KG_OK; i++) {
        const kgst_tensor *t = by[i];
        size_t begin = (size_t)((const char *)t->data - data), end = begin + t->nbytes;
        if (t->nbytes == 0)
            continue;
        if (last && begin < last_end) {
            char q1[96], q2[96];
            size_t lb = (size_t)((const char *)last->data - data);
            rc = kgst_fail(KG_ESHAPE, err, errlen, "%s: tensors \"%s\" and \"%s\" overlap "
                           "(data_offsets [%zu, %zu] and [%zu, %zu])", path,
                           kgst_quote(last->name, q1, sizeof q1),
                           kgst_quote(t->name, q2, sizeof q2), lb, lb + last->nbytes, begin,
                           end);
        }
        if (!last || end > last_end)
            last = t, last_end = end;
    }
    free(by);
    return rc;
}

/* Checks every entry of the parsed header into f->t, then sorts them by name. */
static int read_entries(kgst_file *f, const char *path, const json_t *root, const char *data,
                        size_t datalen, char *err, size_t errlen)
{
    if (!json_is_object(root))
        return kgst_fail(KG_ESHAPE, err, errlen, "%s: header is not a JSON object", path);
    size_t n = json_object_size(root) - (json_object_get(root, "__metadata__") != NULL);
    f->t = calloc(n + 1, sizeof *f->t);
    if (!f->t)
        return kgst_fail(KG_ENOMEM, err, errlen, "%s: out of memory", path);
    entry e = { .path = path, .data = data, .datalen = datalen, .err = err, .errlen = errlen };
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)root, key, v) {
        e.name = key;
        kgst_quote(key, e.q, sizeof e.q);
        int rc = strcmp(key, "__metadata__") == 0 ? check_metadata(&e, v)
                                                   : parse_tensor(&e, v, &f->t[f->n]);
        if (rc != KG_OK)
            return rc;
        if (strcmp(key, "__metadata__") == 0)
            continue;
        if (!(f->t[f->n].name = strdup(key)))
            return kgst_fail(KG_ENOMEM, err, errlen, "%s: out of memory", path);
        f->n++;
    }
    qsort(f->t, (size_t)f->n, sizeof *f->t, by_name);
    return check_overlaps(f, path, data, err, errlen);
}

/* The header length, bounded by the file and by KGST_MAX_HEADER, and the parsed header. */
static int parse_header(kgst_file *f, const char *path, json_t **root, size_t *header_len,
                        char *err, size_t errlen)
{
    const unsigned char *p = f->map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | p[i];
    if (hlen > f->len - 8)
        return kgst_fail(KG_ESHAPE, err, errlen, "%s: header length %llu is past the end of "
                         "the file (%zu bytes)", path, (unsigned long long)hlen, f->len);
    if (hlen > (uint64_t)KGST_MAX_HEADER)
        return kgst_fail(KG_ESHAPE, err, errlen, "%s: header length %llu is above kgen's limit "
                         "of %ld bytes", path, (unsigned long long)hlen, KGST_MAX_HEADER);
    *header_len = (size_t)hlen;
    json_error_t je;
    *root = json_loadb((const char *)p + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (*root)
        return KG_OK;
    if (strstr(je.text, "duplicate"))
        return kgst_fail(KG_ESHAPE, err, errlen, "%s: header: a tensor name given twice "
                         "(%s, byte %d)", path, je.text, je.position);
    return kgst_fail(KG_ESHAPE, err, errlen, "%s: header is not JSON: %s (byte %d)", path,
                     je.text, je.position);
}

int kgst_file_open(kgst_file *f, const char *path, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    int rc = map_file(f, path, err, errlen);
    json_t *root = NULL;
    size_t hlen = 0;
    if (rc == KG_OK)
        rc = parse_header(f, path, &root, &hlen, err, errlen);
    if (rc == KG_OK)
        rc = read_entries(f, path, root, (const char *)f->map + 8 + hlen, f->len - 8 - hlen,
                          err, errlen);
    json_decref(root);
    if (rc == KG_OK && !(f->path = strdup(path)))
        rc = kgst_fail(KG_ENOMEM, err, errlen, "%s: out of memory", path);
    if (rc != KG_OK)
        kgst_file_close(f);
    return rc;
}

const kgst_tensor *kgst_file_find(const kgst_file *f, const char *name)
{
    kgst_tensor key = { .name = name };
    return f->n ? bsearch(&key, f->t, (size_t)f->n, sizeof *f->t, by_name) : NULL;
}
