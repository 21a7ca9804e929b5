/* tests/test_st.c: the safetensors reader and writer (model/st.h): a round trip of every
 * dtype, the HF golden files of ../shared read as they are, sharded indexes, and every class
 * of bad header refused with its code and one line naming the file and the field. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kgen/abi.h"
#include "model/st.h"
#include "util/vectors.h"

/* ---- fixtures and file helpers ----------------------------------------------------------- */

/* A fresh folder per test (each Criterion test runs in its own process). */
static char g_tmp[64];

static void make_tmp(void)
{
    snprintf(g_tmp, sizeof g_tmp, "/tmp/kgt_st_XXXXXX");
    cr_assert_not_null(mkdtemp(g_tmp), "mkdtemp failed");
}

static void drop_tmp(void)
{
    DIR *d = g_tmp[0] ? opendir(g_tmp) : NULL;
    struct dirent *e;
    char path[512];
    while (d && (e = readdir(d)) != NULL) {
        snprintf(path, sizeof path, "%s/%s", g_tmp, e->d_name);
        if (e->d_name[0] != '.' && unlink(path) != 0)
            rmdir(path);
    }
    if (d)
        closedir(d);
    rmdir(g_tmp);
}

TestSuite(st, .init = make_tmp, .fini = drop_tmp);

/* A path inside the test's folder (one of four rotating buffers). */
static const char *tmp(const char *name)
{
    static char path[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", g_tmp, name);
    return path[k];
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    cr_assert_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

static unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(*n ? *n : 1);
    cr_assert_eq(fread(p, 1, *n, f), *n);
    fclose(f);
    return p;
}

#define OWN UINT64_MAX   /* write_st: the header's own length */

/* A safetensors file from a header text: its declared length hlen (or strlen if OWN), then
 * the text, then data_len bytes counting 0, 1, 2, ... */
static void write_st(const char *path, const char *header, uint64_t hlen, size_t data_len)
{
    size_t tlen = strlen(header), n = 8 + tlen + data_len;
    unsigned char *p = malloc(n);
    if (hlen == OWN)
        hlen = tlen;
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(hlen >> (8 * i));
    memcpy(p + 8, header, tlen);
    for (size_t i = 0; i < data_len; i++)
        p[8 + tlen + i] = (unsigned char)i;
    write_bytes(path, p, n);
    free(p);
}

/* ---- round trip -------------------------------------------------------------------------- */

static kgst_tensor tensor(const char *name, kg_dtype t, int rank, const long *shape, int esize)
{
    kgst_tensor x = { .name = name, .dtype = t, .rank = rank, .count = 1 };
    for (int i = 0; i < rank; i++)
        x.shape[i] = shape[i], x.count *= shape[i];
    x.nbytes = (size_t)x.count * (size_t)esize;
    unsigned char *d = malloc(x.nbytes + 1);
    for (size_t i = 0; i < x.nbytes; i++)
        d[i] = (unsigned char)(i * 7 + (size_t)t * 13 + 1);
    x.data = d;
    return x;
}

/* Every dtype the format maps, with a scalar, an empty tensor, rank 8 and odd byte counts,
 * given out of name order: read back sorted by name, with the same shapes and bytes. */
Test(st, round_trip_every_dtype)
{
    static const long s23[] = { 2, 3 }, s5[] = { 5 }, s0[] = { 0, 3 },
                      s8[] = { 1, 2, 1, 2, 1, 2, 1, 3 }, s3[] = { 3 };
    kgst_tensor t[] = {
        tensor("z.f32", KG_F32, 2, s23, 4),    tensor("a.bf16", KG_BF16, 1, s5, 2),
        tensor("f16", KG_F16, 8, s8, 2),       tensor("e4m3", KG_E4M3FN, 1, s3, 1),
        tensor("e5m2", KG_E5M2, 1, s5, 1),     tensor("u8", KG_U8, 0, NULL, 1),
        tensor("i32", KG_I32, 2, s0, 4),       tensor("u32", KG_U32, 1, s3, 4),
        tensor("i64", KG_I64, 2, s23, 8),
    };
    int n = sizeof t / sizeof t[0];
    char err[512] = "";
    cr_assert_eq(kgst_write(tmp("a.safetensors"), t, n, err, sizeof err), KG_OK, "%s", err);
    kgst *st = NULL;
    cr_assert_eq(kgst_open(&st, tmp("a.safetensors"), err, sizeof err), KG_OK, "%s", err);
    cr_assert_eq(kgst_count(st), n);
    for (int i = 1; i < n; i++)
        cr_assert_lt(strcmp(kgst_at(st, i - 1)->name, kgst_at(st, i)->name), 0);
    for (int i = 0; i < n; i++) {
        const kgst_tensor *r = kgst_find(st, t[i].name);
        cr_assert_not_null(r, "%s is missing", t[i].name);
        cr_assert_eq(r->dtype, t[i].dtype, "%s", t[i].name);
        cr_assert_eq(r->rank, t[i].rank, "%s", t[i].name);
        cr_assert_eq(r->count, t[i].count, "%s", t[i].name);
        cr_assert_eq(r->nbytes, t[i].nbytes, "%s", t[i].name);
        for (int d = 0; d < r->rank; d++)
            cr_assert_eq(r->shape[d], t[i].shape[d]);
        cr_assert(r->nbytes == 0 || memcmp(r->data, t[i].data, r->nbytes) == 0, "%s",
                  t[i].name);
    }
    cr_assert_null(kgst_find(st, "absent"));
    cr_assert_null(kgst_at(st, n));
    kgst_close(st);
    for (int i = 0; i < n; i++)
        free((void *)t[i].data);
}

/* The same tensors give the same bytes; the data starts on an 8-byte boundary; the header is
 * compact JSON with sorted keys, tensors contiguous in the given order. */
Test(st, writer_is_deterministic_and_aligned)
{
    static const long s3[] = { 3 }, s2[] = { 2 };
    kgst_tensor t[] = { tensor("b", KG_U8, 1, s3, 1), tensor("a", KG_F32, 1, s2, 4) };
    char err[512] = "";
    cr_assert_eq(kgst_write(tmp("1.st"), t, 2, err, sizeof err), KG_OK, "%s", err);
    cr_assert_eq(kgst_write(tmp("2.st"), t, 2, err, sizeof err), KG_OK, "%s", err);
    size_t n1, n2;
    unsigned char *a = read_bytes(tmp("1.st"), &n1), *b = read_bytes(tmp("2.st"), &n2);
    cr_assert_eq(n1, n2);
    cr_assert_eq(memcmp(a, b, n1), 0);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | a[i];
    cr_assert_eq((8 + hlen) % 8, 0);
    cr_assert_eq(n1, 8 + hlen + 3 + 8);
    const char *want = "{\"a\":{\"data_offsets\":[3,11],\"dtype\":\"F32\",\"shape\":[2]},"
                       "\"b\":{\"data_offsets\":[0,3],\"dtype\":\"U8\",\"shape\":[3]}}";
    cr_assert_eq(memcmp(a + 8, want, strlen(want)), 0, "header: %.*s", (int)hlen, a + 8);
    for (size_t i = strlen(want); i < hlen; i++)
        cr_assert_eq(a[8 + i], ' ');
    free(a), free(b);
    free((void *)t[0].data), free((void *)t[1].data);
}

/* The writer refuses tensors that contradict themselves, and leaves nothing behind. */
Test(st, writer_refuses_bad_tensors)
{
    static const long s3[] = { 3 };
    kgst_tensor t[2] = { tensor("x", KG_F32, 1, s3, 4), tensor("x", KG_F32, 1, s3, 4) };
    char err[512] = "";
    cr_assert_eq(kgst_write(tmp("d.st"), t, 2, err, sizeof err), KG_ESHAPE);
    cr_assert(strstr(err, "\"x\" given twice"), "%s", err);
    t[1].name = "y";
    t[1].nbytes = 8;
    cr_assert_eq(kgst_write(tmp("d.st"), t, 2, err, sizeof err), KG_ESHAPE);
    cr_assert(strstr(err, "tensor \"y\": count 3 or nbytes 8"), "%s", err);
    t[1].nbytes = 12;
    t[1].dtype = KG_E2M1;
    cr_assert_eq(kgst_write(tmp("d.st"), t, 2, err, sizeof err), KG_ESHAPE);
    cr_assert(strstr(err, "no safetensors name"), "%s", err);
    cr_assert_eq(access(tmp("d.st"), F_OK), -1);
    DIR *d = opendir(g_tmp);
    int files = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        files += e->d_name[0] != '.';
    closedir(d);
    cr_assert_eq(files, 0, "a temporary file was left behind");
    free((void *)t[0].data), free((void *)t[1].data);
}

/* A streamed write gives the same file as one from memory. */
static int fill_counting(void *ctx, int i, size_t off, void *buf, size_t len)
{
    const kgst_tensor *t = ctx;
    memcpy(buf, (const char *)t[i].data + off, len);
    return KG_OK;
}

Test(st, stream_equals_memory)
{
    static const long big[] = { 3, (long)(KGST_CHUNK / 4) + 5 }, s3[] = { 3 };
    kgst_tensor t[] = { tensor("big", KG_F32, 2, big, 4), tensor("small", KG_U8, 1, s3, 1) };
    char err[512] = "";
    cr_assert_eq(kgst_write(tmp("m.st"), t, 2, err, sizeof err), KG_OK, "%s", err);
    cr_assert_eq(kgst_write_stream(tmp("s.st"), t, 2, fill_counting, t, err, sizeof err), KG_OK,
                 "%s", err);
    size_t n1, n2;
    unsigned char *a = read_bytes(tmp("m.st"), &n1), *b = read_bytes(tmp("s.st"), &n2);
    cr_assert_eq(n1, n2);
    cr_assert_eq(memcmp(a, b, n1), 0);
    cr_assert_gt(n1, 3 * KGST_CHUNK);
    free(a), free(b);
    free((void *)t[0].data), free((void *)t[1].data);
}

/* ---- the HF golden ----------------------------------------------------------------------- */

static const char *golden(const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/golden/llama_gqa/%s", kgt_shared_dir(), name);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0, "%s is missing: the golden lives in ../shared (or "
                 "$KGEN_SHARED_DIR), beside the checkout", path);
    return path;
}

static void expect_shape(const kgst *st, const char *name, kg_dtype t, int rank,
                         const long *shape)
{
    const kgst_tensor *x = kgst_find(st, name);
    cr_assert_not_null(x, "%s is missing", name);
    cr_assert_eq(x->dtype, t, "%s: dtype %d", name, x->dtype);
    cr_assert_eq(x->rank, rank, "%s: rank %d", name, x->rank);
    for (int d = 0; d < rank; d++)
        cr_assert_eq(x->shape[d], shape[d], "%s: shape[%d] = %ld", name, d, x->shape[d]);
}

Test(st, golden_outputs)
{
    kgst *st = NULL;
    char err[512] = "";
    cr_assert_eq(kgst_open(&st, golden("golden.safetensors"), err, sizeof err), KG_OK, "%s",
                 err);
    static const long ids[] = { 2, 10 }, pl[] = { 2, 7, 512 }, ph[] = { 4, 2, 7, 256 },
                      kc[] = { 2, 2, 10, 64 };
    expect_shape(st, "input_ids", KG_I64, 2, ids);
    expect_shape(st, "prefill_logits", KG_F32, 3, pl);
    expect_shape(st, "prefill_hidden", KG_F32, 4, ph);
    expect_shape(st, "k_cache2", KG_F32, 4, kc);
    const kgst_tensor *x = kgst_find(st, "input_ids");
    int64_t v[20];
    memcpy(v, x->data, sizeof v);
    for (int i = 0; i < 20; i++)
        cr_assert(v[i] >= 0 && v[i] < 512, "input_ids[%d] = %lld", i, (long long)v[i]);
    kgst_close(st);
}

Test(st, golden_model)
{
    kgst *st = NULL;
    char err[512] = "";
    const char *path = golden("model.safetensors");
    cr_assert_eq(kgst_open(&st, path, err, sizeof err), KG_OK, "%s", err);
    cr_assert_eq(kgst_count(st), 3 * 9 + 3, "%d tensors", kgst_count(st));
    static const long emb[] = { 512, 256 }, q[] = { 256, 256 }, k[] = { 128, 256 },
                      up[] = { 688, 256 }, down[] = { 256, 688 }, norm[] = { 256 };
    expect_shape(st, "model.embed_tokens.weight", KG_F32, 2, emb);
    expect_shape(st, "lm_head.weight", KG_F32, 2, emb);
    expect_shape(st, "model.layers.0.self_attn.q_proj.weight", KG_F32, 2, q);
    expect_shape(st, "model.layers.2.self_attn.k_proj.weight", KG_F32, 2, k);
    expect_shape(st, "model.layers.1.mlp.up_proj.weight", KG_F32, 2, up);
    expect_shape(st, "model.layers.1.mlp.down_proj.weight", KG_F32, 2, down);
    expect_shape(st, "model.norm.weight", KG_F32, 1, norm);
    kgst_close(st);
    /* the folder opens its model.safetensors */
    char dir[512];
    snprintf(dir, sizeof dir, "%.*s", (int)(strrchr(path, '/') - path), path);
    cr_assert_eq(kgst_open(&st, dir, err, sizeof err), KG_OK, "%s", err);
    cr_assert_eq(kgst_count(st), 30);
    kgst_close(st);
}

/* ---- sharded ----------------------------------------------------------------------------- */

static void write_shards(void)
{
    static const long s4[] = { 4 }, s2[] = { 2, 2 };
    kgst_tensor a[] = { tensor("w.a", KG_F32, 1, s4, 4), tensor("w.b", KG_BF16, 2, s2, 2) };
    kgst_tensor b[] = { tensor("w.c", KG_I64, 1, s4, 8) };
    char err[512] = "";
    cr_assert_eq(kgst_write(tmp("model-00001-of-00002.safetensors"), a, 2, err, sizeof err),
                 KG_OK, "%s", err);
    cr_assert_eq(kgst_write(tmp("model-00002-of-00002.safetensors"), b, 1, err, sizeof err),
                 KG_OK, "%s", err);
    free((void *)a[0].data), free((void *)a[1].data), free((void *)b[0].data);
}

static void write_index(const char *map)
{
    char text[1024];
    snprintf(text, sizeof text, "{\"metadata\": {\"total_size\": 64}, \"weight_map\": %s}", map);
    write_bytes(tmp("model.safetensors.index.json"), text, strlen(text));
}

#define SHARD1 "\"model-00001-of-00002.safetensors\""
#define SHARD2 "\"model-00002-of-00002.safetensors\""

Test(st, sharded_round_trip)
{
    write_shards();
    write_index("{\"w.c\": " SHARD2 ", \"w.a\": " SHARD1 ", \"w.b\": " SHARD1 "}");
    const char *where[] = { tmp("model.safetensors.index.json"), g_tmp };
    for (int k = 0; k < 2; k++) {
        kgst *st = NULL;
        char err[512] = "";
        cr_assert_eq(kgst_open(&st, where[k], err, sizeof err), KG_OK, "%s", err);
        cr_assert_eq(kgst_count(st), 3);
        cr_assert_str_eq(kgst_at(st, 0)->name, "w.a");
        cr_assert_str_eq(kgst_at(st, 2)->name, "w.c");
        const kgst_tensor *c = kgst_find(st, "w.c");
        cr_assert(c && c->dtype == KG_I64 && c->count == 4 && c->nbytes == 32);
        const unsigned char *p = c->data;
        for (int i = 0; i < 32; i++)
            cr_assert_eq(p[i], (unsigned char)(i * 7 + KG_I64 * 13 + 1));
        kgst_close(st);
    }
}

/* ---- bad input: one line, naming the file and the field ---------------------------------- */

/* Opens path, expects code rc and a one-line message that starts with the file named (the
 * shard, for a bad shard of an index) and holds what. */
static void refused_naming(const char *path, const char *named, int rc, const char *what)
{
    kgst *st = (kgst *)&rc;
    char err[512] = "";
    int got = kgst_open(&st, path, err, sizeof err);
    cr_assert_eq(got, rc, "%s: rc %d, want %d (%s)", path, got, rc, err);
    cr_assert_null(st);
    cr_assert_eq(strncmp(err, named, strlen(named)), 0, "the message does not name %s: %s",
                 named, err);
    cr_assert(strstr(err, what), "'%s' is not in: %s", what, err);
    for (const char *p = err; *p; p++)
        cr_assert((unsigned char)*p >= 0x20 && *p != 0x7f, "a control byte in: %s", err);
}

static void refused(const char *path, int rc, const char *what)
{
    refused_naming(path, path, rc, what);
}

#define T1 "\"t\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}"

/* The cases that are well-formed up to one field: a header, its declared length (~0 for its
 * own), the data bytes, what the message must say. */
static const struct bad_case {
    const char *header;
    uint64_t hlen;
    size_t data;
    const char *what;
} bad_cases[] = {
    { "{" T1 "}", 1000, 8, "header length 1000 is past the end of the file" },
    { "{" T1 "}", UINT64_MAX - 1, 8, "past the end of the file" },
    { "{\"t\": [1, 2", OWN, 8, "header is not JSON" },
    { "[1, 2]", OWN, 8, "header is not a JSON object" },
    { "{" T1 ", \"t\": {}}", OWN, 8, "a tensor name given twice" },
    { "{\"t\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 16]}}", OWN,
      8, "tensor \"t\": data_offsets [0, 16] end past the data region (8 bytes)" },
    { "{\"t\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 0]}}", OWN,
      8, "tensor \"t\": data_offsets [8, 0] begin after they end" },
    { "{" T1 ", \"u\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}",
      OWN, 8, "tensors \"t\" and \"u\" overlap (data_offsets [0, 8] and [4, 8])" },
    { "{\"t\": {\"dtype\": \"F32\", \"shape\": [4611686018427387904, 4], \"data_offsets\": "
      "[0, 8]}}", OWN, 8, "tensor \"t\": shape: the element count overflows" },
    { "{\"t\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 0], \"data_offsets\": "
      "[0, 0]}}", OWN, 8, "tensor \"t\": shape: the element count overflows" },
    { "{\"t\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", OWN,
      8, "tensor \"t\": data_offsets [0, 8] hold 8 bytes, but shape x F32 is 12 bytes" },
    { "{\"t\": {\"dtype\": \"BF16\", \"shape\": [2], \"data_offsets\": [0, 8]}}", OWN,
      8, "hold 8 bytes, but shape x BF16 is 4 bytes" },
    { "{\"t\": {\"dtype\": \"F64\", \"shape\": [1], \"data_offsets\": [0, 8]}}", OWN,
      8, "tensor \"t\": dtype \"F64\" is not one kgen reads" },
    { "{\"t\": {\"dtype\": 5, \"shape\": [2], \"data_offsets\": [0, 8]}}", OWN, 8,
      "tensor \"t\": 'dtype' is not a string" },
    { "{\"t\": {\"shape\": [2], \"data_offsets\": [0, 8]}}", OWN, 8,
      "tensor \"t\": 'dtype' is missing" },
    { "{\"t\": {\"dtype\": \"F32\", \"data_offsets\": [0, 8]}}", OWN, 8,
      "tensor \"t\": 'shape' is missing" },
    { "{\"t\": {\"dtype\": \"F32\", \"shape\": [2]}}", OWN, 8,
      "tensor \"t\": 'data_offsets' is missing" },
    { "{\"t\": {\"dtype\": \"F32\", \"shape\": [-2], \"data_offsets\": [0, 8]}}", OWN,
      8, "tensor \"t\": shape[0] is not a non-negative integer" },
    { "{\"t\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,2], \"data_offsets\": [0, 8]}}",
      OWN, 8, "tensor \"t\": shape has 9 dimensions" },
    { "{\"t\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, -8]}}", OWN,
      8, "tensor \"t\": 'data_offsets' is not a list of two non-negative integers" },
    { "{\"t\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8, 9]}}",
      OWN, 8, "tensor \"t\": 'data_offsets' is not a list of two integers" },
    { "{\"t\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8], \"x\": 1}}",
      OWN, 8, "tensor \"t\": field 'x' is not one of dtype, shape, data_offsets" },
    { "{\"t\": 3}", OWN, 8, "tensor \"t\": the entry is not a JSON object" },
    { "{\"__metadata__\": {\"format\": 1}, " T1 "}", OWN, 8,
      "__metadata__ \"format\" is not a string" },
    { "{\"a\\nb\": 3}", OWN, 8, "tensor \"a?b\": the entry is not a JSON object" },
    { "{\"t\": [1, \x01]}", OWN, 8, "header is not JSON: invalid token near '?'" },
};

Test(st, bad_headers)
{
    char name[64];
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        snprintf(name, sizeof name, "bad%zu.safetensors", i);
        write_st(tmp(name), c->header, c->hlen, c->data);
        refused(tmp(name), KG_ESHAPE, c->what);
    }
}

/* __metadata__ of strings is accepted and not listed as a tensor. */
Test(st, metadata_skipped)
{
    write_st(tmp("m.st"), "{\"__metadata__\": {\"format\": \"pt\"}, " T1 "}", OWN, 8);
    kgst *st = NULL;
    char err[512] = "";
    cr_assert_eq(kgst_open(&st, tmp("m.st"), err, sizeof err), KG_OK, "%s", err);
    cr_assert_eq(kgst_count(st), 1);
    cr_assert_null(kgst_find(st, "__metadata__"));
    kgst_close(st);
}

Test(st, bad_files)
{
    write_bytes(tmp("short.st"), "\x10\0\0", 3);
    refused(tmp("short.st"), KG_ESHAPE, "truncated file: 3 bytes");
    write_bytes(tmp("empty.st"), "", 0);
    refused(tmp("empty.st"), KG_ESHAPE, "truncated file: 0 bytes");
    /* a header declared 150 MiB long in a sparse 200 MiB file */
    write_st(tmp("huge.st"), "{}", 150ull << 20, 0);
    cr_assert_eq(truncate(tmp("huge.st"), 200l << 20), 0);
    refused(tmp("huge.st"), KG_ESHAPE, "header length 157286400 is above kgen's limit");
    refused(tmp("missing.st"), KG_EIO, "cannot open (No such file or directory)");
    cr_assert_eq(mkfifo(tmp("fifo.st"), 0600), 0);
    refused(tmp("fifo.st"), KG_EIO, "not a regular file");
    cr_assert_eq(mkdir(tmp("dir"), 0700), 0);
    refused(tmp("dir"), KG_EIO, "holds neither model.safetensors nor");
    cr_assert_eq(mkdir(tmp("dir/model.safetensors"), 0700), 0);
    refused_naming(tmp("dir"), tmp("dir/model.safetensors"), KG_EIO, "not a regular file");
}

Test(st, bad_indexes)
{
    write_shards();
    const char *index = tmp("model.safetensors.index.json");
    write_index("{\"w.a\": " SHARD1 ", \"w.d\": \"model-00003-of-00002.safetensors\"}");
    refused(index, KG_ESHAPE, "weight_map names shard \"model-00003-of-00002.safetensors\", "
            "which is not in");
    write_index("{\"w.a\": " SHARD1 ", \"w.x\": " SHARD2 "}");
    refused(index, KG_ESHAPE, "weight_map \"w.x\": the tensor is not in shard "
            "model-00002-of-00002.safetensors");
    write_index("{\"w.a\": \"../model-00001-of-00002.safetensors\"}");
    refused(index, KG_ESHAPE, "weight_map \"w.a\": the shard is not a plain file name");
    write_index("{\"w.a\": \"..\"}");
    refused(index, KG_ESHAPE, "the shard is not a plain file name");
    write_index("{\"w.a\": 3}");
    refused(index, KG_ESHAPE, "the shard is not a plain file name");
    write_index("[]");
    refused(index, KG_ESHAPE, "weight_map is missing or not a JSON object");
    write_index("{\"w.a\": " SHARD1 ", \"w.a\": " SHARD1 "}");
    refused(index, KG_ESHAPE, "not JSON: duplicate object key");
    write_bytes(index, "{\"weight_map\": ", 15);
    refused(index, KG_ESHAPE, "not JSON");
    /* a bad shard is reported as itself */
    write_st(tmp("model-00002-of-00002.safetensors"), "{" T1 "}", 1000, 8);
    write_index("{\"w.a\": " SHARD1 ", \"t\": " SHARD2 "}");
    refused_naming(index, tmp("model-00002-of-00002.safetensors"), KG_ESHAPE,
                   "model-00002-of-00002.safetensors: header length 1000 is past");
}

/* ---- what a model needs of a tensor ------------------------------------------------------- */

Test(st, expect_names_the_file_and_the_tensor)
{
    write_shards();
    write_index("{\"w.c\": " SHARD2 ", \"w.a\": " SHARD1 ", \"w.b\": " SHARD1 "}");
    const char *index = tmp("model.safetensors.index.json");
    const char *shard2 = tmp("model-00002-of-00002.safetensors");
    kgst *st = NULL;
    char err[512] = "";
    cr_assert_eq(kgst_open(&st, index, err, sizeof err), KG_OK, "%s", err);
    const kgst_tensor *t = NULL;
    static const long s4[] = { 4 }, s22[] = { 2, 2 }, s5[] = { 5 };
    cr_assert_eq(kgst_expect(st, "w.c", 1u << KG_I64, 1, s4, &t, err, sizeof err), KG_OK, "%s",
                 err);
    cr_assert(t && t == kgst_find(st, "w.c"));
    cr_assert_str_eq(kgst_path(st, t), shard2);
    cr_assert_eq(kgst_expect(st, "w.b", 0, 2, s22, &t, err, sizeof err), KG_OK, "%s", err);
    cr_assert_str_eq(kgst_path(st, t), tmp("model-00001-of-00002.safetensors"));
    cr_assert_null(kgst_path(st, (const kgst_tensor *)&st));

    cr_assert_eq(kgst_expect(st, "w.z", 0, 1, s4, &t, err, sizeof err), KG_ESHAPE);
    cr_assert_null(t);
    char want[512];
    snprintf(want, sizeof want, "%s: tensor \"w.z\" is missing", index);
    cr_assert_str_eq(err, want);
    cr_assert_eq(kgst_expect(st, "w.c", 0, 1, s5, &t, err, sizeof err), KG_ESHAPE);
    snprintf(want, sizeof want, "%s: tensor \"w.c\": shape [4], the model needs [5]", shard2);
    cr_assert_str_eq(err, want);
    cr_assert_eq(kgst_expect(st, "w.c", 0, 2, s22, &t, err, sizeof err), KG_ESHAPE);
    cr_assert(strstr(err, "shape [4], the model needs [2, 2]"), "%s", err);
    cr_assert_eq(kgst_expect(st, "w.c", 1u << KG_F32 | 1u << KG_BF16, 1, s4, &t, err,
                             sizeof err), KG_ESHAPE);
    snprintf(want, sizeof want, "%s: tensor \"w.c\": dtype I64, the model needs one of F32, "
             "BF16", shard2);
    cr_assert_str_eq(err, want);
    kgst_close(st);
}

/* kgst_to_f32 decodes every dtype, at an unaligned address too, and refuses a range outside. */
Test(st, to_f32_every_dtype)
{
    static const struct { kg_dtype t; int size; unsigned char bytes[8]; float want; } v[] = {
        { KG_F32, 4, { 0x00, 0x00, 0xc0, 0x3f }, 1.5f },
        { KG_BF16, 2, { 0xc0, 0xbf }, -1.5f },
        { KG_F16, 2, { 0x00, 0x3e }, 1.5f },
        { KG_E4M3FN, 1, { 0x3c }, 1.5f },
        { KG_E5M2, 1, { 0xbe }, -1.5f },
        { KG_U8, 1, { 200 }, 200.0f },
        { KG_I32, 4, { 0xfe, 0xff, 0xff, 0xff }, -2.0f },
        { KG_U32, 4, { 0x00, 0x00, 0x00, 0x80 }, 2147483648.0f },
        { KG_I64, 8, { 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, -3.0f },
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        unsigned char buf[1 + 2 * 8];
        memcpy(buf + 1, v[i].bytes, (size_t)v[i].size);       /* unaligned, element 0 */
        memcpy(buf + 1 + v[i].size, v[i].bytes, (size_t)v[i].size);
        kgst_tensor t = { .name = "x", .dtype = v[i].t, .rank = 1, .shape = { 2 }, .count = 2,
                          .data = buf + 1, .nbytes = 2 * (size_t)v[i].size };
        float out[2] = { 0, 0 };
        cr_assert_eq(kgst_to_f32(&t, 0, 2, out), KG_OK);
        cr_assert(out[0] == v[i].want && out[1] == v[i].want, "dtype %d: %g, want %g",
                  (int)v[i].t, out[0], v[i].want);
        cr_assert_eq(kgst_to_f32(&t, 1, 2, out), KG_EARG);
        cr_assert_eq(kgst_to_f32(&t, -1, 1, out), KG_EARG);
        cr_assert_eq(kgst_to_f32(&t, 2, 0, out), KG_OK);
    }
}
