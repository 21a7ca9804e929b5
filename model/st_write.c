/* st_write.c: safetensors files written deterministically (st.h): the header's keys sorted,
 * compact JSON padded with spaces so the data starts on an 8-byte boundary, tensors contiguous
 * in the caller's order (as the format's own writer lays them out, so every reader takes the
 * file), through a temporary file renamed into place. */
#define _GNU_SOURCE
#include "st_int.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kgen/abi.h"
#include "kgen/ckd.h"

/* ---- the header -------------------------------------------------------------------------- */

/* t agrees with itself: a dtype the format has, a rank kgen reads, count and nbytes equal to
 * what shape and dtype give. */
static int check_tensor(const kgst_tensor *t, int i, const char *path, char *err, size_t errlen)
{
    char q[96];
    size_t count, nbytes;
    if (!t->name || strcmp(t->name, "__metadata__") == 0)
        return kgst_fail(KG_ESHAPE, err, errlen, "%s: tensor %d: the name is missing or "
                         "reserved", path, i);
    const char *name = kgst_quote(t->name, q, sizeof q);
    if (!kgst_dtype_name(t->dtype))
        return kgst_fail(KG_ESHAPE, err, errlen, "%s: tensor \"%s\": dtype %d has no "
                         "safetensors name", path, name, (int)t->dtype);
    if (t->rank < 0 || t->rank > KGST_MAX_RANK)
        return kgst_fail(KG_ESHAPE, err, errlen, "%s: tensor \"%s\": rank %d", path, name,
                         t->rank);
    if (kg_ckd_shape(&count, 1, t->shape, t->rank) || count != (size_t)t->count ||
        t->count < 0 ||
        kg_ckd_shape(&nbytes, (size_t)kgst_elem_size(t->dtype), t->shape, t->rank) ||
        nbytes != t->nbytes)
        return kgst_fail(KG_ESHAPE, err, errlen, "%s: tensor \"%s\": count %ld or nbytes %zu "
                         "does not match its shape and dtype", path, name, t->count, t->nbytes);
    return KG_OK;
}

static json_t *entry_json(const kgst_tensor *t, size_t begin)
{
    json_t *shape = json_array();
    for (int d = 0; shape && d < t->rank; d++)
        json_array_append_new(shape, json_integer(t->shape[d]));
    return json_pack("{s:s, s:o, s:[I, I]}", "dtype", kgst_dtype_name(t->dtype), "shape",
                     shape, "data_offsets", (json_int_t)begin, (json_int_t)(begin + t->nbytes));
}

/* The header text, padded with spaces to a multiple of 8 bytes once the 8-byte length is
 * counted (malloc'd; *len its length), after checking every tensor. */
static int build_header(const kgst_tensor *t, int n, const char *path, char **text,
                        size_t *len, char *err, size_t errlen)
{
    json_t *root = json_object();
    size_t off = 0;
    int rc = root ? KG_OK : kgst_fail(KG_ENOMEM, err, errlen, "%s: out of memory", path);
    for (int i = 0; rc == KG_OK && i < n; i++) {
        rc = check_tensor(&t[i], i, path, err, errlen);
        if (rc != KG_OK)
            break;
        char q[96];
        if (json_object_get(root, t[i].name))
            rc = kgst_fail(KG_ESHAPE, err, errlen, "%s: tensor \"%s\" given twice", path,
                           kgst_quote(t[i].name, q, sizeof q));
        else if (kg_ckd_add(&off, off, t[i].nbytes) ||
                 json_object_set_new(root, t[i].name, entry_json(&t[i], off - t[i].nbytes)))
            rc = kgst_fail(KG_ENOMEM, err, errlen, "%s: out of memory", path);
    }
    char *s = rc == KG_OK ? json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(root);
    if (rc != KG_OK)
        return rc;
    size_t slen = s ? strlen(s) : 0, padded = (slen + 8 + 7) / 8 * 8 - 8;
    char *p = s ? realloc(s, padded + 1) : NULL;
    if (!p) {
        free(s);
        return kgst_fail(KG_ENOMEM, err, errlen, "%s: out of memory", path);
    }
    memset(p + slen, ' ', padded - slen);
    p[padded] = '\0';
    *text = p, *len = padded;
    return KG_OK;
}

/* ---- the file ---------------------------------------------------------------------------- */

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w, len -= (size_t)w;
    }
    return 0;
}

/* One chunk being written by a thread of its own while the next one is filled. */
typedef struct pending {
    pthread_t thread;
    int fd, active, failed, errnum;
    const char *buf;
    size_t len;
} pending;

static void *write_job(void *arg)
{
    pending *p = arg;
    p->failed = write_all(p->fd, p->buf, p->len) != 0;
    p->errnum = errno;
    return NULL;
}

/* Waits for the chunk in flight; KG_EIO with the reason if it failed. */
static int finish(pending *p, const char *path, char *err, size_t errlen)
{
    if (!p->active)
        return KG_OK;
    pthread_join(p->thread, NULL);
    p->active = 0;
    if (p->failed)
        return kgst_fail(KG_EIO, err, errlen, "%s: cannot write (%s)", path,
                         strerror(p->errnum));
    return KG_OK;
}

/* Hands buf to a writing thread (or writes it here if no thread can start). */
static int start(pending *p, const char *buf, size_t len, const char *path, char *err,
                 size_t errlen)
{
    p->buf = buf, p->len = len, p->failed = 0;
    if (pthread_create(&p->thread, NULL, write_job, p) == 0) {
        p->active = 1;
        return KG_OK;
    }
    if (write_all(p->fd, buf, len) != 0)
        return kgst_fail(KG_EIO, err, errlen, "%s: cannot write (%s)", path, strerror(errno));
    return KG_OK;
}

/* The data of every tensor from fill, chunk by chunk: two buffers, so that making a chunk
 * (for a random-weight model, as slow as the disk) overlaps writing the one before. */
static int stream_data(int fd, const kgst_tensor *t, int n, kgst_fill_fn fill, void *ctx,
                       const char *path, char *err, size_t errlen)
{
    char *buf[2] = { malloc(KGST_CHUNK), malloc(KGST_CHUNK) };
    pending p = { .fd = fd };
    int rc = buf[0] && buf[1] ? KG_OK
                              : kgst_fail(KG_ENOMEM, err, errlen, "%s: out of memory", path);
    int cur = 0;
    for (int i = 0; rc == KG_OK && i < n; i++) {
        for (size_t off = 0; rc == KG_OK && off < t[i].nbytes; off += KGST_CHUNK) {
            size_t len = t[i].nbytes - off < KGST_CHUNK ? t[i].nbytes - off : KGST_CHUNK;
            char q[96];
            if ((rc = fill(ctx, i, off, buf[cur], len)) != KG_OK) {
                kgst_fail(rc, err, errlen, "%s: tensor \"%s\": its data could not be made",
                          path, kgst_quote(t[i].name, q, sizeof q));
                break;
            }
            if ((rc = finish(&p, path, err, errlen)) == KG_OK)
                rc = start(&p, buf[cur], len, path, err, errlen);
            cur ^= 1;
        }
    }
    int last = finish(&p, path, err, errlen);
    free(buf[0]), free(buf[1]);
    return rc != KG_OK ? rc : last;
}

/* The data of every tensor, from memory or from fill. */
static int write_data(int fd, const kgst_tensor *t, int n, kgst_fill_fn fill, void *ctx,
                      const char *path, char *err, size_t errlen)
{
    if (fill)
        return stream_data(fd, t, n, fill, ctx, path, err, errlen);
    for (int i = 0; i < n; i++)
        if (t[i].nbytes && write_all(fd, t[i].data, t[i].nbytes) != 0)
            return kgst_fail(KG_EIO, err, errlen, "%s: cannot write (%s)", path,
                             strerror(errno));
    return KG_OK;
}

/* The length, the header, the data, into a temporary file beside path, renamed over it. */
static int write_file(const char *path, const char *header, size_t hlen, const kgst_tensor *t,
                      int n, kgst_fill_fn fill, void *ctx, char *err, size_t errlen)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmpXXXXXX", path) >= (int)sizeof tmp)
        return kgst_fail(KG_EIO, err, errlen, "%s: path too long", path);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return kgst_fail(KG_EIO, err, errlen, "%s: cannot write (%s)", path, strerror(errno));
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((unsigned long long)hlen >> (8 * i));
    int rc = KG_OK;
    if (fchmod(fd, 0644) != 0 || write_all(fd, len8, 8) != 0 || write_all(fd, header, hlen))
        rc = kgst_fail(KG_EIO, err, errlen, "%s: cannot write (%s)", path, strerror(errno));
    if (rc == KG_OK)
        rc = write_data(fd, t, n, fill, ctx, path, err, errlen);
    if (close(fd) != 0 && rc == KG_OK)
        rc = kgst_fail(KG_EIO, err, errlen, "%s: cannot write (%s)", path, strerror(errno));
    if (rc == KG_OK && rename(tmp, path) != 0)
        rc = kgst_fail(KG_EIO, err, errlen, "%s: cannot write (%s)", path, strerror(errno));
    if (rc != KG_OK)
        unlink(tmp);
    return rc;
}

static int write_any(const char *path, const kgst_tensor *t, int n, kgst_fill_fn fill,
                     void *ctx, char *err, size_t errlen)
{
    char *header = NULL;
    size_t hlen = 0;
    if (n < 0 || (n > 0 && !t))
        return kgst_fail(KG_ESHAPE, err, errlen, "%s: %d tensors", path, n);
    int rc = build_header(t, n, path, &header, &hlen, err, errlen);
    if (rc == KG_OK)
        rc = write_file(path, header, hlen, t, n, fill, ctx, err, errlen);
    free(header);
    return rc;
}

int kgst_write(const char *path, const kgst_tensor *t, int n, char *err, size_t errlen)
{
    for (int i = 0; i < n && t; i++)
        if (t[i].nbytes && !t[i].data)
            return kgst_fail(KG_ESHAPE, err, errlen, "%s: tensor %d has no data", path, i);
    return write_any(path, t, n, NULL, NULL, err, errlen);
}

int kgst_write_stream(const char *path, const kgst_tensor *t, int n, kgst_fill_fn fill,
                      void *ctx, char *err, size_t errlen)
{
    if (!fill)
        return kgst_fail(KG_ESHAPE, err, errlen, "%s: no source of tensor data", path);
    return write_any(path, t, n, fill, ctx, err, errlen);
}
