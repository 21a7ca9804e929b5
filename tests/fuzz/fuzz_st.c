/* fuzz_st.c: libFuzzer target of the safetensors reader (kgst_open, model/st.h). A model's
 * weights come from elsewhere: any file must be read or refused with one line naming it, and
 * what it accepts must hold every promise of st.h (sorted names, counts and byte lengths that
 * agree, data inside the mapping). An accepted file is written back with kgst_write and read
 * again, which must give the same tensors: the writer is fuzzed through the reader. An input
 * that starts with '{' is a model.safetensors.index.json instead, beside two valid shards. */
#include "fuzz.h"

#include "kgen/abi.h"
#include "model/st.h"

/* Bytes per element, as st.h's dtype list says. */
static size_t elem_size(kg_dtype t)
{
    switch (t) {
    case KG_F32: case KG_I32: case KG_U32: return 4;
    case KG_BF16: case KG_F16: return 2;
    case KG_E4M3FN: case KG_E5M2: case KG_U8: return 1;
    case KG_I64: return 8;
    default: return 0;
    }
}

/* Every promise of one tensor; reads each of its bytes, so data past the mapping faults. */
static unsigned check_tensor(const kgst_tensor *t)
{
    FZ_CHECK(t->name != NULL, "a tensor without a name");
    FZ_CHECK(t->rank >= 0 && t->rank <= KGST_MAX_RANK, "rank %d", t->rank);
    FZ_CHECK(elem_size(t->dtype) > 0, "dtype %d", (int)t->dtype);
    long count = 1;
    for (int d = 0; d < t->rank; d++) {
        FZ_CHECK(t->shape[d] >= 0, "shape[%d] = %ld", d, t->shape[d]);
        FZ_CHECK(!__builtin_mul_overflow(count, t->shape[d], &count), "count overflows");
    }
    FZ_CHECK(count == t->count, "count %ld, shape gives %ld", t->count, count);
    FZ_CHECK(t->nbytes == (size_t)count * elem_size(t->dtype), "nbytes %zu", t->nbytes);
    unsigned sum = 0;
    for (size_t i = 0; i < t->nbytes; i++)
        sum += ((const unsigned char *)t->data)[i];
    return sum;
}

static void check_listing(const kgst *st)
{
    int n = kgst_count(st);
    FZ_CHECK(n >= 0, "count %d", n);
    for (int i = 0; i < n; i++) {
        const kgst_tensor *t = kgst_at(st, i);
        FZ_CHECK(t != NULL, "kgst_at(%d) is NULL", i);
        volatile unsigned sum = check_tensor(t);
        (void)sum;
        FZ_CHECK(i == 0 || strcmp(kgst_at(st, i - 1)->name, t->name) < 0, "not sorted");
        FZ_CHECK(kgst_find(st, t->name) == t, "kgst_find(\"%s\") is another tensor", t->name);
    }
    FZ_CHECK(kgst_at(st, n) == NULL && kgst_at(st, -1) == NULL, "kgst_at out of range");
}

/* A folder in memory (tmpfs) for the written copies, made once per process and removed at
 * exit. */
static char copy_dir[] = "/dev/shm/kgen-fuzz-st-XXXXXX", copy_file[64];

static void remove_copy(void)
{
    unlink(copy_file);
    rmdir(copy_dir);
}

static const char *copy_path(void)
{
    if (!copy_file[0]) {
        FZ_CHECK(mkdtemp(copy_dir) != NULL, "mkdtemp failed");
        snprintf(copy_file, sizeof copy_file, "%s/copy.safetensors", copy_dir);
        atexit(remove_copy);
    }
    return copy_file;
}

/* Written back in name order and read again: the same names, shapes and bytes. */
static void round_trip(const kgst *st)
{
    int n = kgst_count(st);
    kgst_tensor *t = malloc(((size_t)n + 1) * sizeof *t);
    FZ_CHECK(t != NULL, "out of memory");
    for (int i = 0; i < n; i++)
        t[i] = *kgst_at(st, i);
    char err[512] = "";
    int rc = kgst_write(copy_path(), t, n, err, sizeof err);
    FZ_CHECK(rc == KG_OK, "an accepted file cannot be written back: %s", err);
    kgst *back = NULL;
    rc = kgst_open(&back, copy_path(), err, sizeof err);
    FZ_CHECK(rc == KG_OK, "a written file cannot be read: %s", err);
    FZ_CHECK(kgst_count(back) == n, "%d tensors read back, %d written", kgst_count(back), n);
    for (int i = 0; i < n; i++) {
        const kgst_tensor *b = kgst_at(back, i);
        FZ_CHECK(strcmp(b->name, t[i].name) == 0 && b->dtype == t[i].dtype &&
                 b->rank == t[i].rank && b->nbytes == t[i].nbytes, "tensor %d differs", i);
        FZ_CHECK(memcmp(b->shape, t[i].shape, sizeof b->shape[0] * (size_t)b->rank) == 0,
                 "tensor %d: shape differs", i);
        FZ_CHECK(b->nbytes == 0 || memcmp(b->data, t[i].data, b->nbytes) == 0,
                 "tensor %d: bytes differ", i);
    }
    kgst_close(back);
    free(t);
}

/* A folder in memory holding two valid shards (tensors a, b and c); the index goes beside
 * them. Returns the index's path. */
static char index_dir[] = "/dev/shm/kgen-fuzz-st-index-XXXXXX", index_file[96];

static void remove_index_dir(void)
{
    static const char *const names[] = { "model.safetensors.index.json",
                                         "model-00001.safetensors", "model-00002.safetensors" };
    char path[128];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", index_dir, names[i]);
        unlink(path);
    }
    rmdir(index_dir);
}

static const char *index_path(void)
{
    static const float a[4] = { 1, 2, 3, 4 };
    static const uint16_t b[2] = { 0x3f80, 0x4000 };
    static const int64_t c[1] = { 7 };
    const kgst_tensor s1[] = {
        { .name = "a", .dtype = KG_F32, .rank = 2, .shape = { 2, 2 }, .count = 4, .data = a,
          .nbytes = sizeof a },
        { .name = "b", .dtype = KG_BF16, .rank = 1, .shape = { 2 }, .count = 2, .data = b,
          .nbytes = sizeof b },
    };
    const kgst_tensor s2[] = { { .name = "c", .dtype = KG_I64, .rank = 0, .count = 1,
                                 .data = c, .nbytes = sizeof c } };
    if (index_file[0])
        return index_file;
    char path[128], err[512] = "";
    FZ_CHECK(mkdtemp(index_dir) != NULL, "mkdtemp failed");
    atexit(remove_index_dir);
    snprintf(path, sizeof path, "%s/model-00001.safetensors", index_dir);
    FZ_CHECK(kgst_write(path, s1, 2, err, sizeof err) == KG_OK, "%s", err);
    snprintf(path, sizeof path, "%s/model-00002.safetensors", index_dir);
    FZ_CHECK(kgst_write(path, s2, 1, err, sizeof err) == KG_OK, "%s", err);
    snprintf(index_file, sizeof index_file, "%s/model.safetensors.index.json", index_dir);
    return index_file;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fz_file(data, size), *named = path;
    if (size > 0 && data[0] == '{') {
        path = index_path();
        named = index_dir;   /* the index, or a shard beside it */
        FILE *f = fopen(path, "wb");
        FZ_CHECK(f && fwrite(data, 1, size, f) == size && fclose(f) == 0, "cannot write %s",
                 path);
    }
    char err[512] = "";
    kgst *st = (kgst *)&err; /* must be overwritten */
    int rc = kgst_open(&st, path, err, sizeof err);
    if (rc != KG_OK) {
        FZ_CHECK(rc == KG_ESHAPE || rc == KG_EIO, "rc %d: %s", rc, err);
        FZ_CHECK(st == NULL, "a refused file returned a model");
        FZ_CHECK(strncmp(err, named, strlen(named)) == 0, "the message does not start with the "
                 "file: %s", err);
        for (const char *c = err; *c; c++)
            FZ_CHECK((unsigned char)*c >= 0x20 && *c != 0x7f,
                     "the message is not one printable line: %s", err);
        return 0;
    }
    check_listing(st);
    for (int i = 0; i < kgst_count(st); i++)
        FZ_CHECK(kgst_path(st, kgst_at(st, i)) != NULL, "a tensor without a file");
    round_trip(st);
    kgst_close(st);
    return 0;
}
