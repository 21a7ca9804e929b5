/* tests/test_util.c: tests of the test utilities themselves: .npy reading and writing (round
 * trips, NumPy's exact layout, header variants, rejected files), the maxAllClose comparator and
 * the exact checks, and case loading from shared/vectors (options, tolerances, arrays). */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kgen/abi.h"
#include "kgen/npy.h"
#include "util/casew.h"
#include "util/compare.h"
#include "util/vectors.h"

/* ---- fixtures and file helpers -------------------------------------------------------------- */

/* A fresh folder per test (each Criterion test runs in its own process). */
static char g_tmp[64];

static void make_tmp(void)
{
    snprintf(g_tmp, sizeof g_tmp, "/tmp/kgt_util_XXXXXX");
    cr_assert_not_null(mkdtemp(g_tmp), "mkdtemp failed");
}

/* Removes the folder's files and then the folder (it holds no sub-folders but case ones). */
static void remove_tmp_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0)
            remove_tmp_dir(path);
    }
    closedir(d);
    rmdir(dir);
}

static void drop_tmp(void)
{
    if (g_tmp[0])
        remove_tmp_dir(g_tmp);
}

/* A path inside the test's folder (static buffer: use before the next call). */
static const char *tmp(const char *name)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", g_tmp, name);
    return path;
}

/* A path under shared/vectors (static buffer: use before the next call). */
static const char *vec(const char *rel)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/vectors/%s", kgt_shared_dir(), rel);
    return path;
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    cr_assert_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* The whole file, malloc'd; *n its size. */
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

/* Writes a hand-made .npy: magic, version major.0, the header text as given (no padding
 * added), then nbytes of data. */
static void make_npy(const char *path, int major, const char *header, const void *data,
                     size_t nbytes)
{
    size_t hlen = strlen(header), lenbytes = major == 1 ? 2 : 4;
    unsigned char *buf = malloc(12 + hlen + nbytes);
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    for (size_t k = 0; k < lenbytes; k++)
        buf[8 + k] = (unsigned char)(hlen >> (8 * k));
    memcpy(buf + 8 + lenbytes, header, hlen);
    if (nbytes)
        memcpy(buf + 8 + lenbytes + hlen, data, nbytes);
    write_bytes(path, buf, 8 + lenbytes + hlen + nbytes);
    free(buf);
}

/* ---- npy: round trips ----------------------------------------------------------------------- */

static const kg_dtype writable[] = { KG_F32, KG_BF16, KG_F16, KG_E4M3, KG_E4M3FN, KG_E5M2,
                                     KG_E8M0, KG_U8, KG_I32, KG_I64, KG_U32 };

/* Bytes per element, the test's own table (independent of npy.c and dtype.c). */
static size_t size_of(kg_dtype t)
{
    return t == KG_F32 || t == KG_I32 || t == KG_U32 ? 4 : t == KG_I64 ? 8 : t == KG_BF16 || t == KG_F16 ? 2 : 1;
}

/* What a written dtype reads back as: the one-byte formats all become |u1 -> KG_U8. */
static kg_dtype read_back(kg_dtype t)
{
    return size_of(t) == 1 ? KG_U8 : t;
}

/* Writes a, checks NumPy's layout of the file (version 1.0, data at a multiple of 64, header
 * ending in '\n', nothing after the data), reads it back and checks it is the same tensor. */
static void round_trip(const kg_npy *a, const char *what)
{
    char err[256] = "";
    const char *path = tmp("rt.npy");
    cr_assert_eq(kg_npy_write(path, a, err, sizeof err), KG_OK, "%s: %s", what, err);
    size_t n, bytes = (size_t)kg_npy_count(a) * size_of(a->dtype);
    unsigned char *raw = read_bytes(path, &n);
    size_t hlen = raw[8] | (size_t)raw[9] << 8;
    cr_assert(memcmp(raw, "\x93NUMPY\x01\x00", 8) == 0, "%s: magic/version", what);
    cr_assert_eq((10 + hlen) % 64, 0, "%s: data offset %zu not 64-aligned", what, 10 + hlen);
    cr_assert_eq(raw[10 + hlen - 1], '\n', "%s: header must end in newline", what);
    cr_assert_eq(n, 10 + hlen + bytes, "%s: file size", what);
    free(raw);

    kg_npy b;
    cr_assert_eq(kg_npy_read(path, &b, err, sizeof err), KG_OK, "%s: %s", what, err);
    cr_assert_eq(b.dtype, read_back(a->dtype), "%s: dtype %d", what, (int)b.dtype);
    cr_assert_eq(b.rank, a->rank, "%s: rank", what);
    for (int d = 0; d < a->rank; d++)
        cr_assert_eq(b.shape[d], a->shape[d], "%s: shape[%d]", what, d);
    cr_assert(bytes == 0 || memcmp(a->data, b.data, bytes) == 0, "%s: data differs", what);
    kg_npy_free(&b);
    cr_assert_null(b.data);
}

Test(npy, round_trip_every_dtype_rank_0_to_4, .init = make_tmp, .fini = drop_tmp)
{
    static const long shapes[5][4] = { { 0 }, { 5 }, { 2, 3 }, { 2, 1, 3 }, { 2, 3, 1, 2 } };
    for (size_t t = 0; t < sizeof writable / sizeof writable[0]; t++) {
        for (int rank = 0; rank <= 4; rank++) {
            kg_npy a = { .dtype = writable[t], .rank = rank };
            memcpy(a.shape, shapes[rank], sizeof shapes[rank]);
            size_t bytes = (size_t)kg_npy_count(&a) * size_of(a.dtype);
            unsigned char *p = malloc(bytes);
            for (size_t k = 0; k < bytes; k++)
                p[k] = (unsigned char)(k * 37 + 11 + t);
            a.data = p;
            char what[64];
            snprintf(what, sizeof what, "dtype %d rank %d", (int)a.dtype, rank);
            round_trip(&a, what);
            free(p);
        }
    }
}

Test(npy, round_trip_empty_and_rank_8, .init = make_tmp, .fini = drop_tmp)
{
    float none[1];
    kg_npy empty = { .dtype = KG_F32, .rank = 2, .shape = { 0, 3 }, .data = none };
    round_trip(&empty, "shape (0, 3)");

    int32_t v[256];
    for (int k = 0; k < 256; k++)
        v[k] = k - 128;
    kg_npy deep = { .dtype = KG_I32, .rank = KG_NPY_MAX_RANK,
                    .shape = { 2, 2, 2, 2, 2, 2, 2, 2 }, .data = v };
    round_trip(&deep, "rank 8");
    cr_assert_eq(kg_npy_count(&deep), 256);
}

/* Re-writing a file NumPy wrote must give the same bytes: same dict text, spare spaces after
 * the shape and 64-byte padding. Covers <f4, |u1 and <i4, ranks 1 to 3. */
Test(npy, write_matches_numpy_bytes, .init = make_tmp, .fini = drop_tmp)
{
    static const char *files[] = {
        "cumsum/3x7_bf16/x.npy",
        "rmsnorm_quant/row_rms_norm_lb0p5_h200_r1/gamma.npy",
        "rmsnorm_quant/row_rms_norm_lb0p5_h200_r1/out_out.npy",
        "router_topk/softmax_k4_post_bias_l0/out_expert_index.npy",
    };
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        char err[256] = "";
        kg_npy a;
        cr_assert_eq(kg_npy_read(vec(files[k]), &a, err, sizeof err), KG_OK, "%s", err);
        cr_assert_eq(kg_npy_write(tmp("copy.npy"), &a, err, sizeof err), KG_OK, "%s", err);
        size_t n0, n1;
        unsigned char *orig = read_bytes(vec(files[k]), &n0);
        unsigned char *copy = read_bytes(tmp("copy.npy"), &n1);
        cr_assert_eq(n1, n0, "%s: size %zu vs numpy's %zu", files[k], n1, n0);
        cr_assert(memcmp(orig, copy, n0) == 0, "%s: bytes differ from numpy's", files[k]);
        free(orig);
        free(copy);
        kg_npy_free(&a);
    }
}

/* numpy.save adds 21 - len(str(shape[0])) spare spaces after the dict; they only change the
 * layout when they push the header past a 64-byte boundary, which no vector file does. An
 * empty array with a long shape does: numpy's header is 182 bytes here (118 without them). */
Test(npy, write_keeps_numpy_spare_spaces, .init = make_tmp, .fini = drop_tmp)
{
    static const char want[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 1234567, "
                               "1234567, 1234567, 1234567, 1234567), }";
    char err[256] = "";
    kg_npy a = { .dtype = KG_F32, .rank = 6, .shape = { 0, 1234567, 1234567, 1234567, 1234567,
                                                        1234567 } };
    cr_assert_eq(kg_npy_write(tmp("e.npy"), &a, err, sizeof err), KG_OK, "%s", err);
    size_t n;
    unsigned char *raw = read_bytes(tmp("e.npy"), &n);
    cr_assert_eq(n, 192, "file size %zu", n);
    cr_assert_eq(raw[8] | raw[9] << 8, 182);
    cr_assert(memcmp(raw + 10, want, sizeof want - 1) == 0, "dict text differs");
    for (size_t k = 10 + sizeof want - 1; k < n - 1; k++)
        cr_assert_eq(raw[k], ' ', "byte %zu", k);
    cr_assert_eq(raw[n - 1], '\n');
    free(raw);
}

/* ---- npy: header variants ------------------------------------------------------------------- */

/* Reads path and checks it holds the floats 0..5 with the given rank and shape. */
static void expect_floats(const char *path, int rank, const long *shape, const char *what)
{
    char err[256] = "";
    kg_npy a;
    cr_assert_eq(kg_npy_read(path, &a, err, sizeof err), KG_OK, "%s: %s", what, err);
    cr_assert_eq(a.dtype, KG_F32, "%s", what);
    cr_assert_eq(a.rank, rank, "%s: rank %d", what, a.rank);
    for (int d = 0; d < rank; d++)
        cr_assert_eq(a.shape[d], shape[d], "%s: shape[%d]", what, d);
    for (long i = 0; i < kg_npy_count(&a); i++)
        cr_assert_eq(((float *)a.data)[i], (float)i, "%s: element %ld", what, i);
    kg_npy_free(&a);
}

Test(npy, header_spellings_and_versions, .init = make_tmp, .fini = drop_tmp)
{
    static const char *headers[] = {
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
         "                                          \n"),
        "{'descr':'<f4','fortran_order':False,'shape':(2,3)}",
        "{\"shape\": (2, 3), \"fortran_order\": False, \"descr\": \"<f4\"}   \n",
        "{ 'descr' : '<f4' ,\n 'fortran_order' : False ,\t'shape' : ( 2 , 3 , ) , }\n",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }\n",
        "{'descr': '<f4', 'extra': [1, (2, '})')], 'fortran_order': False, 'shape': (2, 3)}\n",
    };
    const float data[6] = { 0, 1, 2, 3, 4, 5 };
    const long shape[2] = { 2, 3 };
    for (int major = 1; major <= 3; major++) {
        for (size_t h = 0; h < sizeof headers / sizeof headers[0]; h++) {
            char what[64];
            snprintf(what, sizeof what, "version %d.0, header %zu", major, h);
            make_npy(tmp("h.npy"), major, headers[h], data, sizeof data);
            expect_floats(tmp("h.npy"), 2, shape, what);
        }
    }
}

Test(npy, shapes_scalar_vector_matrix, .init = make_tmp, .fini = drop_tmp)
{
    const float data[6] = { 0, 1, 2, 3, 4, 5 };
    const long s1[1] = { 6 }, s2[2] = { 2, 3 }, s3[3] = { 1, 2, 3 };
    make_npy(tmp("a.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }\n",
             data, 4);
    expect_floats(tmp("a.npy"), 0, NULL, "shape ()");
    make_npy(tmp("a.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }\n",
             data, sizeof data);
    expect_floats(tmp("a.npy"), 1, s1, "shape (6,)");
    make_npy(tmp("a.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n",
             data, sizeof data);
    expect_floats(tmp("a.npy"), 2, s2, "shape (2, 3)");
    make_npy(tmp("a.npy"), 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,2,3)}\n",
             data, sizeof data);
    expect_floats(tmp("a.npy"), 3, s3, "shape (1,2,3)");
}

Test(npy, other_descrs, .init = make_tmp, .fini = drop_tmp)
{
    static const struct { const char *descr; kg_dtype dtype; size_t size; } cases[] = {
        { "<f2", KG_F16, 2 }, { "<u2", KG_BF16, 2 }, { "|u1", KG_U8, 1 }, { "<u1", KG_U8, 1 },
        { "|b1", KG_U8, 1 },  { "<i4", KG_I32, 4 },  { "<i8", KG_I64, 8 }, { "<u4", KG_U32, 4 },
    };
    const unsigned char bytes[24] = { 1, 0, 1, 1, 0, 1, 7, 8, 9, 10, 11, 12,
                                      13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24 };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char header[128], err[256] = "";
        snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, "
                 "'shape': (3,), }\n", cases[k].descr);
        make_npy(tmp("d.npy"), 1, header, bytes, 3 * cases[k].size);
        kg_npy a;
        cr_assert_eq(kg_npy_read(tmp("d.npy"), &a, err, sizeof err), KG_OK, "%s", err);
        cr_assert_eq(a.dtype, cases[k].dtype, "%s", cases[k].descr);
        cr_assert(memcmp(a.data, bytes, 3 * cases[k].size) == 0, "%s data", cases[k].descr);
        kg_npy_free(&a);
    }
}

/* ---- npy: real files ------------------------------------------------------------------------ */

Test(npy, real_rmsnorm_quant_files)
{
    char err[256] = "";
    kg_npy inp, out;
    const char *dir = "rmsnorm_quant/row_rms_norm_lb0p5_h200_r1/";
    char path[256];
    snprintf(path, sizeof path, "%sinp.npy", dir);
    cr_assert_eq(kg_npy_read(vec(path), &inp, err, sizeof err), KG_OK, "%s", err);
    cr_assert_eq(inp.dtype, KG_F32);
    cr_assert_eq(inp.rank, 3);
    cr_assert(inp.shape[0] == 1 && inp.shape[1] == 1 && inp.shape[2] == 200);
    /* "dtype": "bf16" inputs are fp32 values already on the bf16 grid: low 16 bits zero */
    for (long i = 0; i < 200; i++) {
        uint32_t bits;
        memcpy(&bits, (float *)inp.data + i, 4);
        cr_assert_eq(bits & 0xffff, 0, "inp[%ld] = %g is not a bf16 value", i,
                     ((float *)inp.data)[i]);
    }
    snprintf(path, sizeof path, "%sout_out.npy", dir);
    cr_assert_eq(kg_npy_read(vec(path), &out, err, sizeof err), KG_OK, "%s", err);
    cr_assert_eq(out.dtype, KG_U8);
    cr_assert_eq(out.rank, 3);
    cr_assert_eq(kg_npy_count(&out), 200);
    kg_npy_free(&inp);
    kg_npy_free(&out);
}

/* ---- npy: rejected files -------------------------------------------------------------------- */

/* Reads a bad file: checks the code, that out is left empty, and that the message is one line
 * starting with the path and containing `needle`. */
static void expect_reject(const char *path, int code, const char *needle)
{
    char err[512] = "";
    kg_npy a;
    int rc = kg_npy_read(path, &a, err, sizeof err);
    cr_assert_eq(rc, code, "%s: code %d, want %d (%s)", path, rc, code, err);
    cr_assert_null(a.data);
    cr_assert(strncmp(err, path, strlen(path)) == 0, "message does not name the file: %s", err);
    cr_assert_null(strchr(err, '\n'), "message is not one line: %s", err);
    cr_assert_not_null(strstr(err, needle), "message '%s' lacks '%s'", err, needle);
}

static const float six[6] = { 0, 1, 2, 3, 4, 5 };

Test(npy, rejects_big_endian_with_exact_message, .init = make_tmp, .fini = drop_tmp)
{
    char err[512] = "", want[512];
    kg_npy a;
    make_npy(tmp("be.npy"), 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (6,), }\n",
             six, sizeof six);
    cr_assert_eq(kg_npy_read(tmp("be.npy"), &a, err, sizeof err), KG_ESHAPE);
    snprintf(want, sizeof want, "%s: unsupported dtype '>f4' (kgen reads little-endian <f4, "
             "<f2, <u2, |u1, |b1, <i4, <i8, <u4)", tmp("be.npy"));
    cr_assert_str_eq(err, want);
}

Test(npy, rejects_other_descrs, .init = make_tmp, .fini = drop_tmp)
{
    make_npy(tmp("f8.npy"), 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }\n",
             six, sizeof six);
    expect_reject(tmp("f8.npy"), KG_ESHAPE, "unsupported dtype '<f8'");
    make_npy(tmp("u8.npy"), 1, "{'descr': '<u8', 'fortran_order': False, 'shape': (3,), }\n",
             six, sizeof six);
    expect_reject(tmp("u8.npy"), KG_ESHAPE, "unsupported dtype '<u8'");
    make_npy(tmp("i8be.npy"), 1, "{'descr': '>i8', 'fortran_order': False, 'shape': (3,)}\n",
             six, sizeof six);
    expect_reject(tmp("i8be.npy"), KG_ESHAPE, "'>i8'");
    make_npy(tmp("rec.npy"), 1, "{'descr': [('a', '<f4')], 'fortran_order': False, "
             "'shape': (6,), }\n", six, sizeof six);
    expect_reject(tmp("rec.npy"), KG_ESHAPE, "structured");
}

Test(npy, rejects_fortran_order, .init = make_tmp, .fini = drop_tmp)
{
    make_npy(tmp("f.npy"), 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }\n",
             six, sizeof six);
    expect_reject(tmp("f.npy"), KG_ESHAPE, "fortran_order");
}

Test(npy, rejects_truncated_files, .init = make_tmp, .fini = drop_tmp)
{
    make_npy(tmp("data.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}\n",
             six, 20);
    expect_reject(tmp("data.npy"), KG_EIO, "truncated data (20 of 24 bytes)");

    unsigned char cut[40];
    make_npy(tmp("full.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)}\n",
             six, sizeof six);
    FILE *f = fopen(tmp("full.npy"), "rb");
    cr_assert_eq(fread(cut, 1, sizeof cut, f), sizeof cut);
    fclose(f);
    write_bytes(tmp("hdr.npy"), cut, sizeof cut);
    expect_reject(tmp("hdr.npy"), KG_EIO, "truncated header");
    write_bytes(tmp("len.npy"), cut, 9);
    expect_reject(tmp("len.npy"), KG_EIO, "truncated header");
}

/* The reader's own cap on the data it allocates: a caller's max_bytes, or KG_NPY_MAX_BYTES for
 * kg_npy_read, checked against what the header declares before the data is allocated, even
 * when the file really holds that much (a sparse file of 8 GiB + 4 bytes here: the test would
 * need 8 GiB if the cap were checked after the allocation). */
Test(npy, cap_on_the_data, .init = make_tmp, .fini = drop_tmp)
{
    make_npy(tmp("six.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)}\n",
             six, sizeof six);
    char err[512] = "";
    kg_npy a;
    cr_assert_eq(kg_npy_read_max(tmp("six.npy"), 24, &a, err, sizeof err), KG_OK, "%s", err);
    cr_assert(a.rank == 1 && a.shape[0] == 6 && ((float *)a.data)[5] == 5.0f);
    kg_npy_free(&a);
    cr_assert_eq(kg_npy_read_max(tmp("six.npy"), 23, &a, err, sizeof err), KG_ESHAPE);
    cr_assert_null(a.data);
    cr_assert(strstr(err, "six.npy: the data takes 24 bytes, above the limit of 23"), "%s", err);

    const char *hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (2147483649,)}\n";
    make_npy(tmp("big.npy"), 1, hdr, NULL, 0);
    cr_assert_eq(truncate(tmp("big.npy"), (off_t)(10 + strlen(hdr)) + 4 * 2147483649LL), 0);
    expect_reject(tmp("big.npy"), KG_ESHAPE,
                  "the data takes 8589934596 bytes, above the limit of 8589934592");
}

Test(npy, rejects_bad_magic_version_and_dict, .init = make_tmp, .fini = drop_tmp)
{
    write_bytes(tmp("magic.npy"), "\x93NUMPZ\x01\x00\x10\x00{}", 12);
    expect_reject(tmp("magic.npy"), KG_EIO, "not a .npy file (bad magic)");
    write_bytes(tmp("empty.npy"), "", 0);
    expect_reject(tmp("empty.npy"), KG_EIO, "bad magic");
    make_npy(tmp("v4.npy"), 4, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)}\n",
             six, sizeof six);
    expect_reject(tmp("v4.npy"), KG_EIO, "unsupported .npy version 4.0");
    make_npy(tmp("noshape.npy"), 1, "{'descr': '<f4', 'fortran_order': False}\n", six, 24);
    expect_reject(tmp("noshape.npy"), KG_EIO, "malformed header");
    make_npy(tmp("bool.npy"), 1, "{'descr': '<f4', 'fortran_order': No, 'shape': (6,)}\n",
             six, 24);
    expect_reject(tmp("bool.npy"), KG_EIO, "malformed header");
    make_npy(tmp("neg.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-6,)}\n",
             six, 24);
    expect_reject(tmp("neg.npy"), KG_EIO, "malformed header");
    make_npy(tmp("r9.npy"), 1, "{'descr': '<f4', 'fortran_order': False, "
             "'shape': (1, 1, 1, 1, 1, 1, 1, 1, 6)}\n", six, 24);
    expect_reject(tmp("r9.npy"), KG_ESHAPE, "rank above 8");
    expect_reject(tmp("missing.npy"), KG_EIO, "cannot open");
}

Test(npy, write_rejects, .init = make_tmp, .fini = drop_tmp)
{
    char err[256] = "";
    unsigned char b[4] = { 0 };
    kg_npy fp4 = { .dtype = KG_E2M1, .rank = 1, .shape = { 8 }, .data = b };
    cr_assert_eq(kg_npy_write(tmp("fp4.npy"), &fp4, err, sizeof err), KG_ESHAPE);
    cr_assert_not_null(strstr(err, "fp4.npy"), "%s", err);
    kg_npy ok = { .dtype = KG_U8, .rank = 1, .shape = { 4 }, .data = b };
    cr_assert_eq(kg_npy_write(tmp("no/such/dir.npy"), &ok, err, sizeof err), KG_EIO);
    cr_assert_not_null(strstr(err, "cannot create"), "%s", err);
}

/* ---- comparator ----------------------------------------------------------------------------- */

Test(compare, passes_within_global_bound)
{
    char msg[256];
    const float want[4] = { 1, 2, 3, 4 }, got[4] = { 1.01f, 2, 2.99f, 4.04f };
    /* bound = 0 + 0.01 * max|want| = 0.04: every diff is within it */
    cr_assert(kgt_allclose(got, want, 4, 0.01, 0, msg, sizeof msg), "%s", msg);
    cr_assert(kgt_allclose(want, want, 4, 0, 0, msg, sizeof msg), "equal arrays: %s", msg);
    cr_assert(kgt_allclose(got, want, 0, 0, 0, NULL, 0), "n = 0 passes");
}

Test(compare, bound_uses_one_global_max)
{
    char msg[256];
    /* an elementwise rtol would fail [1] (0.5 vs 0.001); the global bound 0.01*100 = 1 holds */
    const float want[2] = { 100, 0.001f }, got[2] = { 100, 0.5f };
    cr_assert(kgt_allclose(got, want, 2, 0.01, 0, msg, sizeof msg), "%s", msg);
    cr_assert_not(kgt_allclose(got, want, 2, 0.004, 0, msg, sizeof msg));
}

Test(compare, failure_names_worst_element)
{
    char msg[512];
    const float want[5] = { 1, 2, 3, 4, 5 }, got[5] = { 1, 2.5f, 3, 13, 5.2f };
    cr_assert_not(kgt_allclose(got, want, 5, 0.02, 0.01, msg, sizeof msg));
    cr_assert_not_null(strstr(msg, "worst at [3]: got 13 want 4 |diff| 9 > bound 0.11 "
                              "(rtol 0.02 atol 0.01, max|want| 5); 3 of 5 elements out"),
                       "%s", msg);
}

Test(compare, atol_alone_and_boundary)
{
    char msg[256];
    const float want[2] = { 0, 0 }, got[2] = { 0.5f, -0.25f };
    cr_assert(kgt_allclose(got, want, 2, 0.5, 0.5, msg, sizeof msg), "diff == bound: %s", msg);
    cr_assert_not(kgt_allclose(got, want, 2, 0.5, 0.4, msg, sizeof msg));
    cr_assert_not_null(strstr(msg, "worst at [0]"), "%s", msg);
}

Test(compare, max_over_finite_golden_only)
{
    char msg[512];
    const float inf = INFINITY, nan = NAN;
    /* with inf in max|want| everything would pass; the max must be 2 (bound 0.2) */
    const float want[3] = { inf, 1, 2 }, got[3] = { inf, 1, 2.5f };
    cr_assert_not(kgt_allclose(got, want, 3, 0.1, 0, msg, sizeof msg));
    cr_assert_not_null(strstr(msg, "worst at [2]"), "%s", msg);
    cr_assert_not_null(strstr(msg, "max|want| 2)"), "%s", msg);
    /* a NaN golden must not poison the max either */
    const float wantn[3] = { nan, 1, 2 }, gotn[3] = { nan, 1, 2.5f };
    cr_assert_not(kgt_allclose(gotn, wantn, 3, 0.1, 0, msg, sizeof msg));
    cr_assert_not_null(strstr(msg, "max|want| 2)"), "%s", msg);
    const float gotok[3] = { nan, 1, 2.1f };
    cr_assert(kgt_allclose(gotok, wantn, 3, 0.1, 0, msg, sizeof msg), "%s", msg);
}

Test(compare, non_finite_pattern)
{
    char msg[512];
    const float inf = INFINITY, nan = NAN;
    const float want[4] = { nan, inf, -inf, 1 };
    const float same[4] = { nan, inf, -inf, 1 };
    cr_assert(kgt_allclose(same, want, 4, 0, 0, msg, sizeof msg), "NaN/inf equal: %s", msg);

    const float flipped[4] = { nan, inf, inf, 1 };      /* -inf vs +inf */
    cr_assert_not(kgt_allclose(flipped, want, 4, 1, 1, msg, sizeof msg));
    cr_assert_not_null(strstr(msg, "pattern differs first at [2]"), "%s", msg);
    const float inf_for_nan[4] = { inf, inf, -inf, 1 };
    cr_assert_not(kgt_allclose(inf_for_nan, want, 4, 1, 1, msg, sizeof msg));
    cr_assert_not_null(strstr(msg, "first at [0]"), "%s", msg);
    const float finite_for_inf[4] = { nan, 3e38f, -inf, 1 };
    cr_assert_not(kgt_allclose(finite_for_inf, want, 4, 1e9, 1e9, msg, sizeof msg));
    cr_assert_not_null(strstr(msg, "first at [1]"), "%s", msg);
    const float nan_for_finite[4] = { nan, inf, -inf, nan };
    cr_assert_not(kgt_allclose(nan_for_finite, want, 4, 1e9, 1e9, msg, sizeof msg));
    cr_assert_not_null(strstr(msg, "first at [3]"), "%s", msg);
    cr_assert_not_null(strstr(msg, "1 of 4 elements out"), "%s", msg);
}

Test(compare, shaped_message_prints_multi_index)
{
    char msg[512];
    const long shape[2] = { 2, 3 };
    const float want[6] = { 0, 1, 2, 3, 4, 5 }, got[6] = { 0, 1, 2, 3, 4, 9 };
    cr_assert_not(kgt_allclose_shaped(got, want, 2, shape, 0.01, 0, msg, sizeof msg));
    cr_assert_not_null(strstr(msg, "worst at [1, 2]: got 9 want 5"), "%s", msg);
    const float gotn[6] = { 0, 1, 2, NAN, 4, 5 };
    cr_assert_not(kgt_allclose_shaped(gotn, want, 2, shape, 0.01, 0, msg, sizeof msg));
    cr_assert_not_null(strstr(msg, "at [1, 0]"), "%s", msg);
    cr_assert(kgt_allclose_shaped(want, want, 2, shape, 0, 0, msg, sizeof msg), "%s", msg);
}

Test(compare, unravel)
{
    char buf[64];
    const long s3[3] = { 2, 3, 4 }, s1[1] = { 10 };
    kgt_unravel(23, 3, s3, buf, sizeof buf);
    cr_assert_str_eq(buf, "[1, 2, 3]");
    kgt_unravel(4, 3, s3, buf, sizeof buf);
    cr_assert_str_eq(buf, "[0, 1, 0]");
    kgt_unravel(7, 1, s1, buf, sizeof buf);
    cr_assert_str_eq(buf, "[7]");
    kgt_unravel(0, 0, NULL, buf, sizeof buf);
    cr_assert_str_eq(buf, "[]");
    kgt_unravel(23, 3, s3, buf, 5);              /* truncates, stays terminated */
    cr_assert_str_eq(buf, "[1, ");
}

Test(compare, exact_checks)
{
    char msg[256];
    const unsigned char u0[4] = { 1, 2, 3, 4 }, u1[4] = { 1, 2, 9, 8 };
    cr_assert(kgt_equal_u8(u0, u0, 4, msg, sizeof msg), "%s", msg);
    cr_assert_not(kgt_equal_u8(u1, u0, 4, msg, sizeof msg));
    cr_assert_str_eq(msg, "first mismatch at [2]: got 9 want 3; 2 of 4 elements differ");

    const int32_t i0[3] = { -1, 5, 7 }, i1[3] = { -1, 5, -7 };
    cr_assert(kgt_equal_i32(i0, i0, 3, msg, sizeof msg), "%s", msg);
    cr_assert_not(kgt_equal_i32(i1, i0, 3, msg, sizeof msg));
    cr_assert_str_eq(msg, "first mismatch at [2]: got -7 want 7; 1 of 3 elements differ");

    const int64_t l0[2] = { INT64_MAX, 0 }, l1[2] = { INT64_MIN, 0 };
    cr_assert(kgt_equal_i64(l0, l0, 2, NULL, 0));
    cr_assert_not(kgt_equal_i64(l1, l0, 2, msg, sizeof msg));
    cr_assert_str_eq(msg, "first mismatch at [0]: got -9223372036854775808 want "
                     "9223372036854775807; 1 of 2 elements differ");
}

/* ---- vectors: cases ------------------------------------------------------------------------- */

#define RMS_CASE "rmsnorm_quant/row_rms_norm_lb0p5_h200_r1"

Test(vectors, shared_dir_env_overrides_macro)
{
    unsetenv("KGEN_SHARED_DIR");
    cr_assert_str_eq(kgt_shared_dir(), KGEN_SHARED_DIR);
    setenv("KGEN_SHARED_DIR", "/elsewhere", 1);
    cr_assert_str_eq(kgt_shared_dir(), "/elsewhere");
    setenv("KGEN_SHARED_DIR", "", 1);
    cr_assert_str_eq(kgt_shared_dir(), KGEN_SHARED_DIR);
}

Test(vectors, case_list_is_sorted)
{
    char **names;
    int n;
    cr_assert_eq(kgt_case_list(vec("cumsum"), &names, &n), 0);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(names[0], "1x5000_bf16");
    cr_assert_str_eq(names[1], "2x2049_f32");
    cr_assert_str_eq(names[2], "3x7_bf16");
    kgt_case_list_free(names, n);

    cr_assert_eq(kgt_case_list(vec("rmsnorm_quant"), &names, &n), 0);
    cr_assert_eq(n, 18);
    for (int i = 1; i < n; i++)
        cr_assert_lt(strcmp(names[i - 1], names[i]), 0, "%s before %s", names[i - 1], names[i]);
    kgt_case_list_free(names, n);

    cr_assert_eq(kgt_case_list(vec("no_such_kernel"), &names, &n), -1);
    cr_assert_null(names);
    cr_assert_eq(n, 0);
}

Test(vectors, load_real_case)
{
    char err[512] = "";
    kgt_case *c = kgt_case_load(vec(RMS_CASE), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_assert_str_eq(kgt_case_name(c), "row_rms_norm_lb0p5_h200_r1");

    const char *s;
    double x;
    int b;
    cr_assert(kgt_case_opt_str(c, "norm_type", &s));
    cr_assert_str_eq(s, "RMS_NORM");
    cr_assert(kgt_case_opt_num(c, "eps", &x));
    cr_assert_float_eq(x, 1e-6, 1e-18);
    cr_assert(kgt_case_opt_num(c, "lower_bound", &x));
    cr_assert_float_eq(x, 0.5, 0);
    cr_assert_not(kgt_case_opt_num(c, "norm_type", &x), "a string is not a number");
    cr_assert_not(kgt_case_opt_bool(c, "eps", &b), "a number is not a bool");
    cr_assert_not(kgt_case_opt_str(c, "absent", &s));

    cr_assert_str_eq(kgt_case_input_dtype(c, "inp"), "bf16");
    cr_assert_str_eq(kgt_case_input_dtype(c, "gamma"), "bf16");
    cr_assert_null(kgt_case_input_dtype(c, "out_out"));

    const kg_npy *gamma = kgt_case_input(c, "gamma");
    cr_assert_not_null(gamma, "%s", kgt_case_error(c));
    cr_assert(gamma->dtype == KG_F32 && gamma->rank == 1 && gamma->shape[0] == 200);
    cr_assert_eq(kgt_case_input(c, "gamma"), gamma, "second look-up returns the cached array");
    cr_assert_null(kgt_case_input(c, "beta"));
    cr_assert_not_null(strstr(kgt_case_error(c), "no input named 'beta'"), "%s",
                       kgt_case_error(c));
    cr_assert_null(kgt_case_input(c, "out_out"), "outputs are not inputs");

    const kg_npy *q = kgt_case_output(c, "out_out");
    cr_assert_not_null(q, "%s", kgt_case_error(c));
    cr_assert(q->dtype == KG_U8 && q->rank == 3 && q->shape[2] == 200);
    cr_assert_null(kgt_case_output(c, "inp"), "inputs are not outputs");
    kgt_case_free(c);
}

Test(vectors, bool_option_and_list_inputs)
{
    char err[512] = "";
    kgt_case *c = kgt_case_load(vec("transformer_tkg/l1_b1_s1_pos"), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    int b = 0;
    double x;
    cr_assert(kgt_case_opt_bool(c, "cache_update", &b));
    cr_assert_eq(b, 1);
    cr_assert(kgt_case_opt_num(c, "num_layers", &x));
    cr_assert_float_eq(x, 1.0, 0);
    cr_assert_not_null(kgt_case_input(c, "W_qkvs_0"), "%s", kgt_case_error(c));
    kgt_case_free(c);
}

/* <u4 inputs of the vectors (kv_cache_update_idx, block tables) read as KG_U32. */
Test(vectors, u32_file_reads)
{
    char err[512] = "";
    kgt_case *c = kgt_case_load(vec("attention_block_tkg/norm_rope_noupdate_oproj_b2_s1"), err,
                                sizeof err);
    cr_assert_not_null(c, "%s", err);
    const kg_npy *a = kgt_case_input(c, "kv_cache_update_idx");
    cr_assert_not_null(a, "%s", kgt_case_error(c));
    cr_assert_eq(a->dtype, KG_U32);
    kgt_case_free(c);
}

/* ---- vectors: what an adapter maps ---------------------------------------------------------- */

/* A case with options a (string) and b (number), float input x (bf16) and integer input n. */
static kgt_case *small_case(kgt_casew **w)
{
    static const float x[4] = { 1.0f, -2.0f, 0.5f, 3.0f };
    static const int32_t n[2] = { 7, -1 };
    long xs[1] = { 4 };
    *w = kgt_casew_new("k", "small");
    kgt_casew_opt_str(*w, "a", "A");
    kgt_casew_opt_num(*w, "b", 2.5);
    kgt_casew_input(*w, "x", "bf16", x, 1, xs);
    kg_npy a = { .dtype = KG_I32, .rank = 1, .shape = { 2 }, .data = (void *)n };
    kgt_casew_input_npy(*w, "n", "i32", &a);
    char err[512] = "";
    kgt_case *c = kgt_case_load(kgt_casew_finish(*w), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    return c;
}

/* Each option and input the adapter did not read is named, in order, until all are read. */
Test(vectors, unmapped_options_and_inputs)
{
    kgt_casew *w;
    kgt_case *c = small_case(&w);
    char buf[256];
    const char *s;
    cr_assert(kgt_case_unmapped(c, buf, sizeof buf));
    cr_assert_str_eq(buf, "option 'a' (= \"A\")");
    double x;
    cr_assert_not(kgt_case_opt_num(c, "a", &x), "a is a string");
    cr_assert(kgt_case_unmapped(c, buf, sizeof buf));
    cr_assert_str_eq(buf, "option 'b' (= 2.5)", "asking for a with the wrong type reads it");
    cr_assert_not(kgt_case_opt_str(c, "absent", &s));
    cr_assert(kgt_case_opt_has(c, "b"));
    cr_assert(kgt_case_unmapped(c, buf, sizeof buf));
    cr_assert_str_eq(buf, "input 'x'");
    cr_assert_not_null(kgt_case_input_dtype(c, "x"));
    cr_assert(kgt_case_unmapped(c, buf, sizeof buf), "a dtype look-up is not a read");
    cr_assert_not_null(kgt_case_input(c, "x"));
    cr_assert(kgt_case_unmapped(c, buf, sizeof buf));
    cr_assert_str_eq(buf, "input 'n'");
    free(kgt_case_as(c, "n", KG_I64));
    cr_assert_not(kgt_case_unmapped(c, buf, sizeof buf), "%s", buf);
    cr_assert_str_eq(buf, "");
    kgt_case_free(c);
    kgt_casew_free(w);
}

/* Conversions keep exact values only, and name the element that is not one. */
Test(vectors, case_as_converts_exact_values_only)
{
    kgt_casew *w;
    kgt_case *c = small_case(&w);
    float *n = kgt_case_as(c, "n", KG_F32);
    cr_assert(n && n[0] == 7.0f && n[1] == -1.0f);
    free(n);
    cr_assert_null(kgt_case_as(c, "n", KG_U32), "-1 is no u32");
    cr_assert_not_null(strstr(kgt_case_error(c), "'n' element 1 (-1)"), "%s", kgt_case_error(c));
    cr_assert_null(kgt_case_as(c, "x", KG_I32), "0.5 is no integer");
    cr_assert_not_null(strstr(kgt_case_error(c), "'x' element 2 (0.5)"), "%s",
                       kgt_case_error(c));
    cr_assert_null(kgt_case_as(c, "x", KG_I64), "nor an i64");
    cr_assert_null(kgt_case_as(c, "x", KG_BF16), "only f32 and the integers are targets");
    cr_assert_null(kgt_case_as(c, "none", KG_F32));
    kgt_case_free(c);
    kgt_casew_free(w);

    /* fp32-stored whole numbers (upstream's bounds) become integers; 2^31 is no i32 */
    static const float f[3] = { 3.0f, -4.0f, 2147483648.0f };
    long fs[1] = { 3 };
    w = kgt_casew_new("k", "floats");
    kgt_casew_input(w, "f", "f32", f, 1, fs);
    char err[512];
    c = kgt_case_load(kgt_casew_finish(w), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    int64_t *l = kgt_case_as(c, "f", KG_I64);
    cr_assert(l && l[0] == 3 && l[1] == -4 && l[2] == 2147483648ll);
    free(l);
    cr_assert_null(kgt_case_as(c, "f", KG_I32));
    kgt_case_free(c);
    kgt_casew_free(w);
}

/* The kernel dtype that holds every listed input exactly. */
Test(vectors, float_dtype_is_the_narrowest_exact_one)
{
    static const float v[1] = { 1.0f };
    long s1[1] = { 1 };
    kgt_casew *w = kgt_casew_new("k", "dtypes");
    static const char *const dt[] = { "bf16", "fp16", "f32", "fp8_e4m3", "i32", "q4" };
    static const char *const nm[] = { "b", "h", "f", "e", "i", "q" };
    for (int i = 0; i < 6; i++)
        kgt_casew_input(w, nm[i], dt[i], v, 1, s1);
    char err[512];
    kgt_case *c = kgt_case_load(kgt_casew_finish(w), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    const char *const be[] = { "b", "e", "absent" }, *const eh[] = { "e", "h" };
    const char *const bh[] = { "b", "h" }, *const bf[] = { "b", NULL, "f" };
    cr_assert_eq(kgt_case_float_dtype(c, be, 3), KG_BF16);
    cr_assert_eq(kgt_case_float_dtype(c, eh, 2), KG_F16);
    cr_assert_eq(kgt_case_float_dtype(c, bh, 2), KG_F32, "bf16 and fp16 values need f32");
    cr_assert_eq(kgt_case_float_dtype(c, bf, 3), KG_F32);
    const char *const i[] = { "b", "i" }, *const q[] = { "q" }, *const none[] = { "absent" };
    cr_assert_eq(kgt_case_float_dtype(c, i, 2), -1);
    cr_assert_not_null(strstr(kgt_case_error(c), "'i' has dtype 'i32', not a float"), "%s",
                       kgt_case_error(c));
    cr_assert_eq(kgt_case_float_dtype(c, q, 1), -1);
    cr_assert_not_null(strstr(kgt_case_error(c), "'q' has dtype 'q4', which no convention"),
                       "%s", kgt_case_error(c));
    cr_assert_eq(kgt_case_float_dtype(c, none, 1), -1);
    cr_assert_eq(kgt_case_dtype(c, "e"), KG_E4M3);
    cr_assert_eq(kgt_case_dtype_from_name("u32"), KG_U32);
    cr_assert_eq(kgt_case_dtype_from_name("float32"), -1);
    kgt_case_free(c);
    kgt_casew_free(w);
}

/* List inputs by "list_inputs", or by NAME_0, NAME_1, ... in "inputs" when a case has none. */
Test(vectors, list_inputs_listed_or_numbered)
{
    static const float v0[2] = { 1.0f, 1.5f }, v1[2] = { 2.0f, 2.5f };
    long s[1] = { 2 };
    for (int listed = 0; listed < 2; listed++) {
        kgt_casew *w = kgt_casew_new("k", "lists");
        kgt_casew_input(w, "h_0", "bf16", v0, 1, s);
        kgt_casew_input(w, "h_1", "bf16", v1, 1, s);
        kgt_casew_input(w, "h_3", "bf16", v0, 1, s);
        if (listed)
            kgt_casew_list(w, "h", 2);
        char err[512];
        kgt_case *c = kgt_case_load(kgt_casew_finish(w), err, sizeof err);
        cr_assert_not_null(c, "%s", err);
        cr_assert_eq(kgt_case_list_len(c, "h"), 2, "h_3 does not follow h_1");
        cr_assert_eq(kgt_case_list_len(c, "g"), 0);
        cr_assert_str_eq(kgt_case_list_name(c, "h", 1), "h_1");
        const kg_npy *a = kgt_case_list_input(c, "h", 1);
        cr_assert(a && ((const float *)a->data)[0] == 2.0f, "%s", kgt_case_error(c));
        cr_assert_null(kgt_case_list_input(c, "h", 2));
        cr_assert(kgt_case_has_output(c, "nothing") == 0);
        kgt_case_free(c);
        kgt_casew_free(w);
    }
    char err[512];
    kgt_case *c = kgt_case_load(vec("transformer_tkg/l2_b2_s1_pos"), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_assert_eq(kgt_case_list_len(c, "W_qkvs"), 2);
    cr_assert_not_null(kgt_case_list_input(c, "K_caches", 1), "%s", kgt_case_error(c));
    cr_assert(kgt_case_has_output(c, "out_K_cache_1"));
    cr_assert_not(kgt_case_has_output(c, "K_caches_1"), "an input is not an output");
    kgt_case_free(c);
}

Test(vectors, load_errors, .init = make_tmp, .fini = drop_tmp)
{
    char err[512] = "";
    cr_assert_null(kgt_case_load(tmp("nothing"), err, sizeof err));
    cr_assert_not_null(strstr(err, "case.json"), "%s", err);
    mkdir(tmp("bad"), 0700);
    write_bytes(tmp("bad/case.json"), "{\"inputs\": [", 12);
    cr_assert_null(kgt_case_load(tmp("bad"), err, sizeof err));
    cr_assert_not_null(strstr(err, "bad/case.json:1:"), "%s", err);
    write_bytes(tmp("bad/case.json"), "{\"inputs\": []}", 14);
    cr_assert_null(kgt_case_load(tmp("bad"), err, sizeof err));
    cr_assert_not_null(strstr(err, "not a case"), "%s", err);
}

/* ---- vectors: tolerances -------------------------------------------------------------------- */

Test(vectors, tolerance_real_cases)
{
    char err[512] = "";
    double r, a;
    kgt_case *c = kgt_case_load(vec(RMS_CASE), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_assert_eq(kgt_case_tol(c, "out_out_f32", &r, &a), 1);
    cr_assert(r == 0.072 && a == 1e-8, "rtol %g atol %g", r, a);
    cr_assert_eq(kgt_case_tol(c, "out_dequant_scale", &r, &a), 1);
    cr_assert(r == 0.007 && a == 1e-8, "rtol %g atol %g", r, a);
    cr_assert_eq(kgt_case_tol(c, "out_out", &r, &a), 0, "no entry for the raw bits");
    cr_assert(r == 0 && a == 0);
    kgt_case_free(c);

    c = kgt_case_load(vec("transformer_tkg/l2_b2_s1_pos"), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_assert_eq(kgt_case_tol(c, "out_K_cache_1", &r, &a), 1, "matched by out_K_cache_*");
    cr_assert(r == 0.025 && a == 0.01, "rtol %g atol %g", r, a);
    cr_assert_eq(kgt_case_tol(c, "out_nothing", &r, &a), 0);
    kgt_case_free(c);

    c = kgt_case_load(vec("qkv_tkg/no_norm_nobias_b1_s1"), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_assert_eq(kgt_case_tol(c, "out_out", &r, &a), 1, "matched by '*'");
    cr_assert(r == 0.02 && a == 1e-5, "rtol %g atol %g", r, a);
    kgt_case_free(c);

    c = kgt_case_load(vec("router_topk/softmax_k4_post_bias_l0"), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_assert_eq(kgt_case_tol(c, "out_expert_index", &r, &a), 0, "exact");
    cr_assert(r == 0 && a == 0);
    cr_assert_eq(kgt_case_tol(c, "out_router_logits", &r, &a), 1);
    kgt_case_free(c);
}

Test(vectors, tolerance_wildcard_rule, .init = make_tmp, .fini = drop_tmp)
{
    static const char json[] =
        "{\"case\": \"synthetic\", \"inputs\": [], \"options\": {},\n"
        " \"outputs\": [{\"name\": \"out_a\"}, {\"name\": \"out_b1\"}, {\"name\": \"out_c\"},\n"
        "              {\"name\": \"out_d\"}],\n"
        " \"tolerance\": {\"*\": {\"rtol\": 0.1, \"atol\": 0.01, \"mode\": \"max\"},\n"
        "   \"out_a\": {\"exact\": true},\n"
        "   \"out_b*\": {\"rtol\": 0.2, \"atol\": 0.02, \"mode\": \"max\"},\n"
        "   \"out_d\": {\"mode\": \"max\"}}}\n";
    char err[512] = "";
    double r, a;
    write_bytes(tmp("case.json"), json, sizeof json - 1);
    kgt_case *c = kgt_case_load(g_tmp, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_assert_eq(kgt_case_tol(c, "out_a", &r, &a), 0, "the exact key beats '*'");
    cr_assert(r == 0 && a == 0);
    cr_assert_eq(kgt_case_tol(c, "out_b1", &r, &a), 1);
    cr_assert(r == 0.2 && a == 0.02, "the more specific wildcard wins: %g %g", r, a);
    cr_assert_eq(kgt_case_tol(c, "out_c", &r, &a), 1);
    cr_assert(r == 0.1 && a == 0.01, "'*' matches any: %g %g", r, a);
    cr_assert_eq(kgt_case_tol(c, "out_d", &r, &a), 1);
    cr_assert(r == 1e-5 && a == 1e-8, "upstream defaults: %g %g", r, a);
    cr_assert_eq(kgt_case_tol(c, "out_zz", &r, &a), 0, "not an output of the case");
    kgt_case_free(c);
}

/* ---- vectors and comparator together -------------------------------------------------------- */

/* float8_e4m3 (bias 7, max 240) to float, the test's own decoder (no dtype.c dependency). */
static float e4m3(unsigned char c)
{
    int e = (c >> 3) & 15, m = c & 7;
    float v = e ? ldexpf(1 + m / 8.0f, e - 7) : ldexpf(m / 8.0f, -6);
    if (e == 15)
        v = m ? NAN : INFINITY;
    return c & 0x80 ? -v : v;
}

Test(vectors, rmsnorm_quant_bits_decode_to_f32_golden)
{
    char err[512] = "", msg[512];
    double r, a;
    kgt_case *c = kgt_case_load(vec(RMS_CASE), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    const kg_npy *bits = kgt_case_output(c, "out_out"), *vals = kgt_case_output(c, "out_out_f32");
    cr_assert(bits && vals, "%s", kgt_case_error(c));
    long n = kg_npy_count(bits);
    cr_assert_eq(n, kg_npy_count(vals));
    float *dec = malloc((size_t)n * sizeof *dec);
    for (long i = 0; i < n; i++)
        dec[i] = e4m3(((unsigned char *)bits->data)[i]);
    cr_assert(kgt_case_tol(c, "out_out_f32", &r, &a));
    cr_assert(kgt_allclose_shaped(dec, vals->data, vals->rank, vals->shape, r, a, msg,
                                  sizeof msg), "%s", msg);
    free(dec);
    kgt_case_free(c);
}

Test(vectors, cumsum_golden_and_a_planted_error)
{
    char err[512] = "", msg[512];
    double r, a;
    kgt_case *c = kgt_case_load(vec("cumsum/3x7_bf16"), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    const kg_npy *x = kgt_case_input(c, "x"), *want = kgt_case_output(c, "out_output_0");
    cr_assert(x && want, "%s", kgt_case_error(c));
    cr_assert(x->rank == 2 && x->shape[0] == 3 && x->shape[1] == 7);
    cr_assert(kgt_case_tol(c, "out_output_0", &r, &a));
    float y[21];
    const float *xv = x->data;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 7; j++)
            y[i * 7 + j] = (j ? y[i * 7 + j - 1] : 0) + xv[i * 7 + j];
    cr_assert(kgt_allclose_shaped(y, want->data, 2, want->shape, r, a, msg, sizeof msg), "%s",
              msg);
    y[1 * 7 + 4] += 10;
    cr_assert_not(kgt_allclose_shaped(y, want->data, 2, want->shape, r, a, msg, sizeof msg));
    cr_assert_not_null(strstr(msg, "worst at [1, 4]"), "%s", msg);
    cr_assert_not_null(strstr(msg, "1 of 21 elements out"), "%s", msg);
    kgt_case_free(c);
}

Test(vectors, exact_output_real_case)
{
    char err[512] = "", msg[256];
    kgt_case *c = kgt_case_load(vec("router_topk/softmax_k4_post_bias_l0"), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    const kg_npy *idx = kgt_case_output(c, "out_expert_index");
    cr_assert_not_null(idx, "%s", kgt_case_error(c));
    cr_assert_eq(idx->dtype, KG_I32);
    long n = kg_npy_count(idx);
    int32_t *copy = malloc((size_t)n * sizeof *copy);
    memcpy(copy, idx->data, (size_t)n * sizeof *copy);
    cr_assert(kgt_equal_i32(copy, idx->data, n, msg, sizeof msg), "%s", msg);
    copy[n - 1] += 1;
    cr_assert_not(kgt_equal_i32(copy, idx->data, n, msg, sizeof msg));
    char want[64];
    snprintf(want, sizeof want, "first mismatch at [%ld]", n - 1);
    cr_assert_not_null(strstr(msg, want), "%s", msg);
    free(copy);
    kgt_case_free(c);
}
