/* tests/test_npy.c: tests of the .npy reader and writer: round trips of every dtype
 * and rank, NumPy's exact bytes, header variants and versions, real files, and rejected files
 * with their messages */
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
#include "util/files.h"
#include "util/vectors.h"


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
    const char *path = kgt_tmp("rt.npy");
    cr_assert_eq(kg_npy_write(path, a, err, sizeof err), KG_OK, "%s: %s", what, err);
    size_t n, bytes = (size_t)kg_npy_count(a) * size_of(a->dtype);
    unsigned char *raw = kgt_read_bytes(path, &n);
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

Test(npy, round_trip_every_dtype_rank_0_to_4, .init = kgt_tmp_make, .fini = kgt_tmp_drop)
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

Test(npy, round_trip_empty_and_rank_8, .init = kgt_tmp_make, .fini = kgt_tmp_drop)
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
Test(npy, write_matches_numpy_bytes, .init = kgt_tmp_make, .fini = kgt_tmp_drop)
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
        cr_assert_eq(kg_npy_read(kgt_vectors_path(files[k]), &a, err, sizeof err), KG_OK, "%s", err);
        cr_assert_eq(kg_npy_write(kgt_tmp("copy.npy"), &a, err, sizeof err), KG_OK, "%s", err);
        size_t n0, n1;
        unsigned char *orig = kgt_read_bytes(kgt_vectors_path(files[k]), &n0);
        unsigned char *copy = kgt_read_bytes(kgt_tmp("copy.npy"), &n1);
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
Test(npy, write_keeps_numpy_spare_spaces, .init = kgt_tmp_make, .fini = kgt_tmp_drop)
{
    static const char want[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 1234567, "
                               "1234567, 1234567, 1234567, 1234567), }";
    char err[256] = "";
    kg_npy a = { .dtype = KG_F32, .rank = 6, .shape = { 0, 1234567, 1234567, 1234567, 1234567,
                                                        1234567 } };
    cr_assert_eq(kg_npy_write(kgt_tmp("e.npy"), &a, err, sizeof err), KG_OK, "%s", err);
    size_t n;
    unsigned char *raw = kgt_read_bytes(kgt_tmp("e.npy"), &n);
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

Test(npy, header_spellings_and_versions, .init = kgt_tmp_make, .fini = kgt_tmp_drop)
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
            kgt_make_npy(kgt_tmp("h.npy"), major, headers[h], data, sizeof data);
            expect_floats(kgt_tmp("h.npy"), 2, shape, what);
        }
    }
}

Test(npy, shapes_scalar_vector_matrix, .init = kgt_tmp_make, .fini = kgt_tmp_drop)
{
    const float data[6] = { 0, 1, 2, 3, 4, 5 };
    const long s1[1] = { 6 }, s2[2] = { 2, 3 }, s3[3] = { 1, 2, 3 };
    kgt_make_npy(kgt_tmp("a.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }\n",
             data, 4);
    expect_floats(kgt_tmp("a.npy"), 0, NULL, "shape ()");
    kgt_make_npy(kgt_tmp("a.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }\n",
             data, sizeof data);
    expect_floats(kgt_tmp("a.npy"), 1, s1, "shape (6,)");
    kgt_make_npy(kgt_tmp("a.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n",
             data, sizeof data);
    expect_floats(kgt_tmp("a.npy"), 2, s2, "shape (2, 3)");
    kgt_make_npy(kgt_tmp("a.npy"), 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,2,3)}\n",
             data, sizeof data);
    expect_floats(kgt_tmp("a.npy"), 3, s3, "shape (1,2,3)");
}

Test(npy, other_descrs, .init = kgt_tmp_make, .fini = kgt_tmp_drop)
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
        kgt_make_npy(kgt_tmp("d.npy"), 1, header, bytes, 3 * cases[k].size);
        kg_npy a;
        cr_assert_eq(kg_npy_read(kgt_tmp("d.npy"), &a, err, sizeof err), KG_OK, "%s", err);
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
    cr_assert_eq(kg_npy_read(kgt_vectors_path(path), &inp, err, sizeof err), KG_OK, "%s", err);
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
    cr_assert_eq(kg_npy_read(kgt_vectors_path(path), &out, err, sizeof err), KG_OK, "%s", err);
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

Test(npy, rejects_big_endian_with_exact_message, .init = kgt_tmp_make, .fini = kgt_tmp_drop)
{
    char err[512] = "", want[512];
    kg_npy a;
    kgt_make_npy(kgt_tmp("be.npy"), 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (6,), }\n",
             six, sizeof six);
    cr_assert_eq(kg_npy_read(kgt_tmp("be.npy"), &a, err, sizeof err), KG_ESHAPE);
    snprintf(want, sizeof want, "%s: unsupported dtype '>f4' (kgen reads little-endian <f4, "
             "<f2, <u2, |u1, |b1, <i4, <i8, <u4)", kgt_tmp("be.npy"));
    cr_assert_str_eq(err, want);
}

Test(npy, rejects_other_descrs, .init = kgt_tmp_make, .fini = kgt_tmp_drop)
{
    kgt_make_npy(kgt_tmp("f8.npy"), 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }\n",
             six, sizeof six);
    expect_reject(kgt_tmp("f8.npy"), KG_ESHAPE, "unsupported dtype '<f8'");
    kgt_make_npy(kgt_tmp("u8.npy"), 1, "{'descr': '<u8', 'fortran_order': False, 'shape': (3,), }\n",
             six, sizeof six);
    expect_reject(kgt_tmp("u8.npy"), KG_ESHAPE, "unsupported dtype '<u8'");
    kgt_make_npy(kgt_tmp("i8be.npy"), 1, "{'descr': '>i8', 'fortran_order': False, 'shape': (3,)}\n",
             six, sizeof six);
    expect_reject(kgt_tmp("i8be.npy"), KG_ESHAPE, "'>i8'");
    kgt_make_npy(kgt_tmp("rec.npy"), 1, "{'descr': [('a', '<f4')], 'fortran_order': False, "
             "'shape': (6,), }\n", six, sizeof six);
    expect_reject(kgt_tmp("rec.npy"), KG_ESHAPE, "structured");
}

Test(npy, rejects_fortran_order, .init = kgt_tmp_make, .fini = kgt_tmp_drop)
{
    kgt_make_npy(kgt_tmp("f.npy"), 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }\n",
             six, sizeof six);
    expect_reject(kgt_tmp("f.npy"), KG_ESHAPE, "fortran_order");
}

Test(npy, rejects_truncated_files, .init = kgt_tmp_make, .fini = kgt_tmp_drop)
{
    kgt_make_npy(kgt_tmp("data.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}\n",
             six, 20);
    expect_reject(kgt_tmp("data.npy"), KG_EIO, "truncated data (20 of 24 bytes)");

    unsigned char cut[40];
    kgt_make_npy(kgt_tmp("full.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)}\n",
             six, sizeof six);
    FILE *f = fopen(kgt_tmp("full.npy"), "rb");
    cr_assert_eq(fread(cut, 1, sizeof cut, f), sizeof cut);
    fclose(f);
    kgt_write_bytes(kgt_tmp("hdr.npy"), cut, sizeof cut);
    expect_reject(kgt_tmp("hdr.npy"), KG_EIO, "truncated header");
    kgt_write_bytes(kgt_tmp("len.npy"), cut, 9);
    expect_reject(kgt_tmp("len.npy"), KG_EIO, "truncated header");
}

/* The reader's own cap on the data it allocates: a caller's max_bytes, or KG_NPY_MAX_BYTES for
 * kg_npy_read, checked against what the header declares before the data is allocated, even
 * when the file really holds that much (a sparse file of 8 GiB + 4 bytes here: the test would
 * need 8 GiB if the cap were checked after the allocation). */
Test(npy, cap_on_the_data, .init = kgt_tmp_make, .fini = kgt_tmp_drop)
{
    kgt_make_npy(kgt_tmp("six.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)}\n",
             six, sizeof six);
    char err[512] = "";
    kg_npy a;
    cr_assert_eq(kg_npy_read_max(kgt_tmp("six.npy"), 24, &a, err, sizeof err), KG_OK, "%s", err);
    cr_assert(a.rank == 1 && a.shape[0] == 6 && ((float *)a.data)[5] == 5.0f);
    kg_npy_free(&a);
    cr_assert_eq(kg_npy_read_max(kgt_tmp("six.npy"), 23, &a, err, sizeof err), KG_ESHAPE);
    cr_assert_null(a.data);
    cr_assert(strstr(err, "six.npy: the data takes 24 bytes, above the limit of 23"), "%s", err);

    const char *hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (2147483649,)}\n";
    kgt_make_npy(kgt_tmp("big.npy"), 1, hdr, NULL, 0);
    cr_assert_eq(truncate(kgt_tmp("big.npy"), (off_t)(10 + strlen(hdr)) + 4 * 2147483649LL), 0);
    expect_reject(kgt_tmp("big.npy"), KG_ESHAPE,
                  "the data takes 8589934596 bytes, above the limit of 8589934592");
}

Test(npy, rejects_bad_magic_version_and_dict, .init = kgt_tmp_make, .fini = kgt_tmp_drop)
{
    kgt_write_bytes(kgt_tmp("magic.npy"), "\x93NUMPZ\x01\x00\x10\x00{}", 12);
    expect_reject(kgt_tmp("magic.npy"), KG_EIO, "not a .npy file (bad magic)");
    kgt_write_bytes(kgt_tmp("empty.npy"), "", 0);
    expect_reject(kgt_tmp("empty.npy"), KG_EIO, "bad magic");
    kgt_make_npy(kgt_tmp("v4.npy"), 4, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)}\n",
             six, sizeof six);
    expect_reject(kgt_tmp("v4.npy"), KG_EIO, "unsupported .npy version 4.0");
    kgt_make_npy(kgt_tmp("noshape.npy"), 1, "{'descr': '<f4', 'fortran_order': False}\n", six, 24);
    expect_reject(kgt_tmp("noshape.npy"), KG_EIO, "malformed header");
    kgt_make_npy(kgt_tmp("bool.npy"), 1, "{'descr': '<f4', 'fortran_order': No, 'shape': (6,)}\n",
             six, 24);
    expect_reject(kgt_tmp("bool.npy"), KG_EIO, "malformed header");
    kgt_make_npy(kgt_tmp("neg.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-6,)}\n",
             six, 24);
    expect_reject(kgt_tmp("neg.npy"), KG_EIO, "malformed header");
    kgt_make_npy(kgt_tmp("r9.npy"), 1, "{'descr': '<f4', 'fortran_order': False, "
             "'shape': (1, 1, 1, 1, 1, 1, 1, 1, 6)}\n", six, 24);
    expect_reject(kgt_tmp("r9.npy"), KG_ESHAPE, "rank above 8");
    expect_reject(kgt_tmp("missing.npy"), KG_EIO, "cannot open");
}

Test(npy, write_rejects, .init = kgt_tmp_make, .fini = kgt_tmp_drop)
{
    char err[256] = "";
    unsigned char b[4] = { 0 };
    kg_npy fp4 = { .dtype = KG_E2M1, .rank = 1, .shape = { 8 }, .data = b };
    cr_assert_eq(kg_npy_write(kgt_tmp("fp4.npy"), &fp4, err, sizeof err), KG_ESHAPE);
    cr_assert_not_null(strstr(err, "fp4.npy"), "%s", err);
    kg_npy ok = { .dtype = KG_U8, .rank = 1, .shape = { 4 }, .data = b };
    cr_assert_eq(kg_npy_write(kgt_tmp("no/such/dir.npy"), &ok, err, sizeof err), KG_EIO);
    cr_assert_not_null(strstr(err, "cannot create"), "%s", err);
}
