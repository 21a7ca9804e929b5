/* st.c: a model's weights as one kgst (st.h): a single .safetensors file, or the shards that
 * model.safetensors.index.json names (each opened once and checked whole), or a folder holding
 * either. The tensors are listed by name; their data stays in the mappings. */
#define _GNU_SOURCE
#include "st_int.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kgen/abi.h"

#define INDEX_NAME "model.safetensors.index.json"
#define SINGLE_NAME "model.safetensors"

struct kgst {
    char *path;             /* as opened: the file, the index or the folder */
    kgst_file *files;
    int nfiles;
    const kgst_tensor **t;  /* sorted by name */
    int n;
};

static int by_name(const void *a, const void *b)
{
    return strcmp((*(const kgst_tensor *const *)a)->name,
                  (*(const kgst_tensor *const *)b)->name);
}

void kgst_close(kgst *st)
{
    if (!st)
        return;
    for (int i = 0; i < st->nfiles; i++)
        kgst_file_close(&st->files[i]);
    free(st->files);
    free(st->t);
    free(st->path);
    free(st);
}

const kgst_tensor *kgst_find(const kgst *st, const char *name)
{
    kgst_tensor key = { .name = name };
    const kgst_tensor *k = &key;
    if (!st || !name || st->n == 0)
        return NULL;
    const kgst_tensor **hit = bsearch(&k, st->t, (size_t)st->n, sizeof *st->t, by_name);
    return hit ? *hit : NULL;
}

int kgst_count(const kgst *st)
{
    return st ? st->n : 0;
}

const kgst_tensor *kgst_at(const kgst *st, int i)
{
    return st && i >= 0 && i < st->n ? st->t[i] : NULL;
}

/* ---- one file ---------------------------------------------------------------------------- */

static kgst *alloc_kgst(int nfiles)
{
    kgst *st = calloc(1, sizeof *st);
    if (st && !(st->files = calloc((size_t)nfiles, sizeof *st->files))) {
        free(st);
        st = NULL;
    }
    return st;
}

static int open_single(kgst **out, const char *path, char *err, size_t errlen)
{
    kgst *st = alloc_kgst(1);
    if (!st)
        return kgst_fail(KG_ENOMEM, err, errlen, "%s: out of memory", path);
    int rc = kgst_file_open(&st->files[0], path, err, errlen);
    if (rc == KG_OK) {
        st->nfiles = 1;
        const kgst_file *f = &st->files[0];
        if (!(st->t = malloc(((size_t)f->n + 1) * sizeof *st->t)))
            rc = kgst_fail(KG_ENOMEM, err, errlen, "%s: out of memory", path);
        for (int i = 0; rc == KG_OK && i < f->n; i++)
            st->t[st->n++] = &f->t[i];
    }
    if (rc != KG_OK)
        return kgst_close(st), rc;
    *out = st;
    return KG_OK;
}

/* ---- a sharded model --------------------------------------------------------------------- */

/* The index file's JSON, read whole if it is a regular file of at most KGST_MAX_INDEX bytes. */
static int load_index(json_t **root, const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return kgst_fail(KG_EIO, err, errlen, "%s: cannot open (%s)", path, strerror(errno));
    struct stat st;
    FILE *f = NULL;
    int rc = KG_OK;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        rc = kgst_fail(KG_EIO, err, errlen, "%s: not a regular file", path);
    else if (st.st_size > KGST_MAX_INDEX)
        rc = kgst_fail(KG_ESHAPE, err, errlen, "%s: %lld bytes, above kgen's limit of %ld for "
                       "an index", path, (long long)st.st_size, KGST_MAX_INDEX);
    else if (!(f = fdopen(fd, "rb")))
        rc = kgst_fail(KG_EIO, err, errlen, "%s: cannot open (%s)", path, strerror(errno));
    if (rc != KG_OK) {
        close(fd);
        return rc;
    }
    json_error_t je;
    *root = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
    fclose(f);
    if (!*root)
        return kgst_fail(KG_ESHAPE, err, errlen, "%s: not JSON: %s (line %d, column %d)", path,
                         je.text, je.line, je.column);
    return KG_OK;
}

/* A shard is a plain file name in the index's folder: never a path that leaves it. */
static int plain_name(const char *s)
{
    return *s && strlen(s) < 256 && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..");
}

static int by_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The distinct shard names of weight_map, sorted, checked plain; *n of them. */
static int shard_names(const json_t *map, const char *path, const char ***names, int *n,
                       char *err, size_t errlen)
{
    const char **v = malloc((json_object_size(map) + 1) * sizeof *v);
    if (!v)
        return kgst_fail(KG_ENOMEM, err, errlen, "%s: out of memory", path);
    int k = 0;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)map, key, val) {
        char q[96], qs[96];
        if (!json_is_string(val) || !plain_name(json_string_value(val))) {
            free(v);
            return kgst_fail(KG_ESHAPE, err, errlen, "%s: weight_map \"%s\": the shard is not "
                             "a plain file name in the index's folder%s%s%s", path,
                             kgst_quote(key, q, sizeof q), json_is_string(val) ? " (\"" : "",
                             json_is_string(val) ? kgst_quote(json_string_value(val), qs,
                                                              sizeof qs) : "",
                             json_is_string(val) ? "\")" : "");
        }
        v[k++] = json_string_value(val);
    }
    qsort(v, (size_t)k, sizeof *v, by_str);
    int u = 0;
    for (int i = 0; i < k; i++)
        if (u == 0 || strcmp(v[u - 1], v[i]) != 0)
            v[u++] = v[i];
    *names = v, *n = u;
    return KG_OK;
}

/* Opens shard name beside the index; a shard that is not there is the index's fault. */
static int open_shard(kgst_file *f, const char *index, const char *dir, const char *name,
                      char *err, size_t errlen)
{
    char path[4096], q[96];
    struct stat sb;
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return kgst_fail(KG_EIO, err, errlen, "%s: shard path too long", index);
    if (stat(path, &sb) != 0 && errno == ENOENT)
        return kgst_fail(KG_ESHAPE, err, errlen, "%s: weight_map names shard \"%s\", which is "
                         "not in %s", index, kgst_quote(name, q, sizeof q), dir);
    return kgst_file_open(f, path, err, errlen);
}

/* Every weight_map entry as the tensor of that name in its shard. */
static int map_tensors(kgst *st, const json_t *map, const char **shards, const char *index,
                       char *err, size_t errlen)
{
    if (!(st->t = malloc((json_object_size(map) + 1) * sizeof *st->t)))
        return kgst_fail(KG_ENOMEM, err, errlen, "%s: out of memory", index);
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)map, key, val) {
        const char *shard = json_string_value(val);
        const char **s = bsearch(&shard, shards, (size_t)st->nfiles, sizeof *shards, by_str);
        const kgst_tensor *t = kgst_file_find(&st->files[s - shards], key);
        if (!t) {
            char q[96], qs[96];
            return kgst_fail(KG_ESHAPE, err, errlen, "%s: weight_map \"%s\": the tensor is not "
                             "in shard %s", index, kgst_quote(key, q, sizeof q),
                             kgst_quote(shard, qs, sizeof qs));
        }
        st->t[st->n++] = t;
    }
    qsort(st->t, (size_t)st->n, sizeof *st->t, by_name);
    return KG_OK;
}

/* The folder part of path: "." if it has none, "/" for a file at the root. */
static void folder_of(const char *path, char *dir, size_t len)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, len, ".");
    else
        snprintf(dir, len, "%.*s", slash == path ? 1 : (int)(slash - path), path);
}

static int open_sharded(kgst **out, const char *index, const json_t *root, char *err,
                        size_t errlen)
{
    const json_t *map = json_object_get(root, "weight_map");
    if (!json_is_object(root) || !json_is_object(map))
        return kgst_fail(KG_ESHAPE, err, errlen, "%s: weight_map is missing or not a JSON "
                         "object", index);
    const char **shards = NULL;
    int nshards = 0;
    int rc = shard_names(map, index, &shards, &nshards, err, errlen);
    if (rc != KG_OK)
        return rc;
    char dir[4096];
    folder_of(index, dir, sizeof dir);
    kgst *st = alloc_kgst(nshards + 1);
    if (!st)
        rc = kgst_fail(KG_ENOMEM, err, errlen, "%s: out of memory", index);
    for (int i = 0; rc == KG_OK && i < nshards; i++) {
        rc = open_shard(&st->files[i], index, dir, shards[i], err, errlen);
        st->nfiles += rc == KG_OK;
    }
    if (rc == KG_OK)
        rc = map_tensors(st, map, shards, index, err, errlen);
    free(shards);
    if (rc != KG_OK)
        return kgst_close(st), rc;
    *out = st;
    return KG_OK;
}

/* ---- open -------------------------------------------------------------------------------- */

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int open_index(kgst **out, const char *path, char *err, size_t errlen)
{
    json_t *root = NULL;
    int rc = load_index(&root, path, err, errlen);
    if (rc == KG_OK)
        rc = open_sharded(out, path, root, err, errlen);
    json_decref(root);
    return rc;
}

/* A folder: its index if it has one, else its model.safetensors. */
static int open_folder(kgst **out, const char *dir, char *err, size_t errlen)
{
    char path[4096];
    struct stat sb;
    if (snprintf(path, sizeof path, "%s/" INDEX_NAME, dir) >= (int)sizeof path)
        return kgst_fail(KG_EIO, err, errlen, "%s: path too long", dir);
    if (stat(path, &sb) == 0)
        return open_index(out, path, err, errlen);
    snprintf(path, sizeof path, "%s/" SINGLE_NAME, dir);
    if (stat(path, &sb) == 0)
        return open_single(out, path, err, errlen);
    return kgst_fail(KG_EIO, err, errlen, "%s: holds neither " SINGLE_NAME " nor " INDEX_NAME,
                     dir);
}

static int open_any(kgst **out, const char *path, char *err, size_t errlen)
{
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return open_folder(out, path, err, errlen);
    if (ends_with(path, ".json"))
        return open_index(out, path, err, errlen);
    return open_single(out, path, err, errlen);
}

int kgst_open(kgst **out, const char *path, char *err, size_t errlen)
{
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    int rc = open_any(out, path, err, errlen);
    if (rc == KG_OK && !((*out)->path = strdup(path))) {
        kgst_close(*out);
        *out = NULL;
        rc = kgst_fail(KG_ENOMEM, err, errlen, "%s: out of memory", path);
    }
    return rc;
}

/* ---- what a model needs of a tensor -------------------------------------------------------- */

const char *kgst_path(const kgst *st, const kgst_tensor *t)
{
    for (int i = 0; st && t && i < st->nfiles; i++) {
        const kgst_file *f = &st->files[i];
        if (f->n > 0 && t >= f->t && t < f->t + f->n)
            return f->path;
    }
    return NULL;
}

/* "[a, b, c]" into buf. */
static const char *shape_text(char *buf, size_t len, int rank, const long *shape)
{
    size_t n = (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < rank && n < len; d++)
        n += (size_t)snprintf(buf + n, len - n, "%s%ld", d ? ", " : "", shape[d]);
    if (n < len)
        snprintf(buf + n, len - n, "]");
    return buf;
}

/* The safetensors names of the dtypes in the set, ", "-separated. */
static const char *dtypes_text(char *buf, size_t len, unsigned dtypes)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int t = 0; t < KG_DTYPE_COUNT && n < len; t++)
        if (dtypes >> t & 1u && kgst_dtype_name((kg_dtype)t))
            n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? ", " : "",
                                  kgst_dtype_name((kg_dtype)t));
    return buf;
}

int kgst_expect(const kgst *st, const char *name, unsigned dtypes, int rank, const long *shape,
                const kgst_tensor **out, char *err, size_t errlen)
{
    char q[96], have[160], want[160];
    const kgst_tensor *t = kgst_find(st, name);
    *out = NULL;
    if (!t)
        return kgst_fail(KG_ESHAPE, err, errlen, "%s: tensor \"%s\" is missing",
                         st ? st->path : "(no model)", kgst_quote(name, q, sizeof q));
    const char *file = kgst_path(st, t);
    kgst_quote(name, q, sizeof q);
    if (dtypes && !(dtypes >> t->dtype & 1u))
        return kgst_fail(KG_ESHAPE, err, errlen, "%s: tensor \"%s\": dtype %s, the model needs "
                         "one of %s", file, q, kgst_dtype_name(t->dtype),
                         dtypes_text(want, sizeof want, dtypes));
    int same = t->rank == rank;
    for (int d = 0; same && d < rank; d++)
        same = t->shape[d] == shape[d];
    if (!same)
        return kgst_fail(KG_ESHAPE, err, errlen, "%s: tensor \"%s\": shape %s, the model needs "
                         "%s", file, q, shape_text(have, sizeof have, t->rank, t->shape),
                         shape_text(want, sizeof want, rank, shape));
    *out = t;
    return KG_OK;
}

/* ---- decoding ------------------------------------------------------------------------------ */

/* Element k of t as f32. */
static float element(const kgst_tensor *t, long k)
{
    const unsigned char *p = (const unsigned char *)t->data;
    uint16_t h;
    uint32_t u;
    int32_t i;
    int64_t l;
    float f;
    switch (t->dtype) {
    case KG_F32: memcpy(&f, p + 4 * k, 4); return f;
    case KG_BF16: memcpy(&h, p + 2 * k, 2); return kg_bf16_to_f32(h);
    case KG_F16: memcpy(&h, p + 2 * k, 2); return kg_f16_to_f32(h);
    case KG_E4M3FN: return kg_e4m3fn_to_f32(p[k]);
    case KG_E5M2: return kg_e5m2_to_f32(p[k]);
    case KG_U8: return (float)p[k];
    case KG_I32: memcpy(&i, p + 4 * k, 4); return (float)i;
    case KG_U32: memcpy(&u, p + 4 * k, 4); return (float)u;
    case KG_I64: memcpy(&l, p + 8 * k, 8); return (float)l;
    default: return 0.0f;   /* kgst_file_open admits no other dtype */
    }
}

int kgst_to_f32(const kgst_tensor *t, long first, long n, float *out)
{
    if (!t || first < 0 || n < 0 || first > t->count || n > t->count - first)
        return KG_EARG;
    for (long k = 0; k < n; k++)
        out[k] = element(t, first + k);
    return KG_OK;
}
