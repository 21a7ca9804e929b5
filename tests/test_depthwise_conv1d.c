/* tests/test_depthwise_conv1d.c: the depthwise_conv1d family against
 * tests/ref/depthwise_conv1d_ref.c (bf16, fp16, fp32; upstream's shapes scaled down, width 1,
 * a filter as wide as the padded row, strides past the filter, asymmetric padding, blocks of
 * outputs that do not divide Q), the shared/vectors cases (and synthetic ones for the options
 * the sample leaves out), refused options naming their key, kernel names, and JIT vs AOT
 * bit-identity. Tolerance: depthwise_conv1d.md's (max mode, rtol = atol = 1e-2; 1e-5 for fp32
 * against the double-sum reference). */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "kgen/aot.h"
#include "kgen/dtype.h"
#include "kgen/kernels.h"
#include "kgen/kgen.h"
#include "ref/ref.h"
#include "util/casew.h"
#include "util/compare.h"
#include "util/jitp.h"
#include "util/tensors.h"
#include "util/vectors.h"

TestSuite(depthwise_conv1d, .init = kgt_suite_init, .fini = kgt_suite_fini);

typedef struct conv { long N, C, W, S, stride, pl, pr; } conv;

static long out_width(const conv *p) { return (p->W + p->pl + p->pr - p->S) / p->stride + 1; }

static const kg_kernel *kernel_of(kg_dtype t, const conv *p)
{
    char s[256];
    snprintf(s, sizeof s, "depthwise_conv1d:dtype=%s,C=%ld,W=%ld,S=%ld,stride=%ld,pad_l=%ld,"
             "pad_r=%ld", kg_dtype_name(t), p->C, p->W, p->S, p->stride, p->pl, p->pr);
    return kgt_jit(s);
}

static void check(kg_dtype t, const conv *p)
{
    const kg_kernel *k = kernel_of(t, p);
    long Q = out_width(p), nx = p->N * p->C * p->W, nf = p->C * p->S, ny = p->N * p->C * Q;
    unsigned long long seed = 11 + (unsigned long long)(p->C * 7 + p->W * 3 + p->S);
    float *x = kgt_randn(t, nx, seed), *f = kgt_randn(t, nf, seed + 1);
    void *xe = kgt_encode(t, x, nx), *fe = kgt_encode(t, f, nf), *ye = kgt_poisoned(t, ny);
    int rc = ((kg_depthwise_conv1d_fn *)k->fn)(ye, xe, fe, p->N);
    cr_assert_eq(rc, KG_OK, "%s returned %d", k->name, rc);
    float *want = malloc((size_t)ny * sizeof *want);
    depthwise_conv1d_ref(want, x, f, p->N, p->C, p->W, p->S, p->stride, p->pl, p->pr);
    double tol = t == KG_F32 ? 1e-5 : 1e-2;
    char msg[1024];
    long shape[3] = { p->N, p->C, Q };
    cr_assert(kgt_close_to_ref(t, ye, want, 3, shape, tol, tol, msg, sizeof msg), "%s N=%ld: %s",
              k->name, p->N, msg);
    free(x), free(f), free(xe), free(fe), free(ye), free(want);
}

/* Upstream's test shapes (depthwise_conv1d.md), the large ones with fewer channels. */
static const conv UPSTREAM[] = {
    { 1, 16, 512, 64, 1, 0, 0 },  { 1, 16, 512, 3, 1, 1, 1 },    { 1, 32, 512, 64, 1, 10, 10 },
    { 1, 32, 512, 64, 2, 5, 5 },  { 1, 2, 4096, 4093, 1, 0, 0 }, { 1, 8, 5000, 8, 1, 0, 0 },
    { 1, 8, 1024, 512, 1, 0, 0 }, { 1, 8, 1024, 256, 3, 0, 0 },  { 1, 8, 2048, 256, 4, 0, 0 },
    { 1, 8, 4096, 256, 16, 0, 0 }, { 4, 8, 512, 128, 1, 0, 0 },  { 1, 8, 129, 128, 1, 0, 0 },
    { 1, 2, 512, 64, 1, 0, 0 },   { 1, 8, 512, 128, 2, 0, 0 },
};
/* Edges: width 1 and filter 1; the filter as wide as the padded row (Q = 1); strides past the
 * filter (taps skip inputs); asymmetric padding either way, padding wider than the filter
 * (outputs of zeros only); a Mamba-style causal row (pad_l = S - 1); blocks of outputs that
 * do not divide Q (S = 4096: one output a block); N = 3. */
static const conv EDGE[] = {
    { 1, 1, 1, 1, 1, 0, 0 },    { 2, 3, 1, 1, 5, 0, 0 },     { 1, 3, 9, 9, 1, 0, 0 },
    { 1, 3, 5, 9, 1, 2, 2 },    { 3, 5, 37, 3, 4, 2, 1 },    { 2, 4, 100, 2, 7, 0, 3 },
    { 1, 4, 33, 5, 2, 3, 0 },   { 1, 4, 33, 5, 2, 0, 3 },    { 1, 2, 10, 3, 1, 6, 8 },
    { 1, 6, 4096, 4, 1, 3, 0 }, { 1, 2, 8000, 4096, 3, 1, 2 }, { 1, 2, 300, 2, 4096, 0, 0 },
    { 1, 3, 20000, 17, 1, 4, 4 },
};

Test(depthwise_conv1d, upstream_shapes_every_dtype, .timeout = 120 * KGT_TIME_SCALE)
{
    for (size_t i = 0; i < sizeof UPSTREAM / sizeof UPSTREAM[0]; i++)
        for (size_t d = 0; d < KGT_FLOAT_DTYPES; d++)
            check(kgt_float_dtypes[d], &UPSTREAM[i]);
}

Test(depthwise_conv1d, edge_shapes_every_dtype, .timeout = 120 * KGT_TIME_SCALE)
{
    for (size_t i = 0; i < sizeof EDGE / sizeof EDGE[0]; i++)
        for (size_t d = 0; d < KGT_FLOAT_DTYPES; d++)
            check(kgt_float_dtypes[d], &EDGE[i]);
}

/* Asymmetric padding is true padding, not upstream's golden's symmetric (0, pad_l): a row of
 * ones with filter (1, 2, 3) and pad (2, 0) gives 3, 5, 6, 6, ...; pad (0, 2) ends 6, 3, 1. */
Test(depthwise_conv1d, asymmetric_padding_exact)
{
    conv a = { 1, 1, 6, 3, 1, 2, 0 }, b = { 1, 1, 6, 3, 1, 0, 2 };
    float x[6] = { 1, 1, 1, 1, 1, 1 }, f[3] = { 1, 2, 3 }, y[6];
    cr_assert_eq(((kg_depthwise_conv1d_fn *)kernel_of(KG_F32, &a)->fn)(y, x, f, 1), KG_OK);
    cr_assert(y[0] == 3 && y[1] == 5 && y[2] == 6 && y[5] == 6, "%g %g %g %g", y[0], y[1], y[2],
              y[5]);
    cr_assert_eq(((kg_depthwise_conv1d_fn *)kernel_of(KG_F32, &b)->fn)(y, x, f, 1), KG_OK);
    cr_assert(y[0] == 6 && y[3] == 6 && y[4] == 3 && y[5] == 1, "%g %g %g %g", y[0], y[3], y[4],
              y[5]);
}

Test(depthwise_conv1d, per_call_sizes_and_null_pointers)
{
    conv p = { 1, 2, 8, 3, 1, 0, 0 };
    kg_depthwise_conv1d_fn *fn = (kg_depthwise_conv1d_fn *)kernel_of(KG_F32, &p)->fn;
    float x[16] = { 0 }, f[6] = { 0 }, y[12];
    cr_assert_eq(fn(y, x, f, -1), KG_EARG);
    cr_assert_eq(fn(NULL, NULL, NULL, 0), KG_OK);
    cr_assert_eq(fn(NULL, x, f, 1), KG_EARG);
    cr_assert_eq(fn(y, NULL, f, 1), KG_EARG);
    cr_assert_eq(fn(y, x, NULL, 1), KG_EARG);
}

Test(depthwise_conv1d, refused_options_name_the_key)
{
    static const struct { const char *problem, *want; } bad[] = {
        { "depthwise_conv1d:rhs_dilation=2", "key 'rhs_dilation'" },
        { "depthwise_conv1d:lhs_dilation=3", "key 'lhs_dilation'" },
        { "depthwise_conv1d:C=8,feature_group_count=4", "key 'feature_group_count'" },
        { "depthwise_conv1d:C=8,feature_group_count=1", "key 'feature_group_count'" },
        { "depthwise_conv1d:batch_group_count=2", "key 'batch_group_count'" },
        { "depthwise_conv1d:stride_h=2", "key 'stride_h'" },
        { "depthwise_conv1d:stride=0", "key 'stride'" },
        { "depthwise_conv1d:W=3,S=5", "key 'S'" },
        { "depthwise_conv1d:S=4097", "key 'S'" },
        { "depthwise_conv1d:pad_l=-1", "key 'pad_l'" },
        { "depthwise_conv1d:dtype=e4m3", "key 'dtype'" },
        { "depthwise_conv1d:bias=true", "key 'bias'" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        kgt_problem_rejected(bad[i].problem, bad[i].want);
}

Test(depthwise_conv1d, names_parse_back_and_are_unique)
{
    static const char *const P[] = {
        "depthwise_conv1d:dtype=bf16", "depthwise_conv1d:dtype=f32",
        "depthwise_conv1d:stride=2", "depthwise_conv1d:pad_l=1",
        "depthwise_conv1d:pad_r=1", "depthwise_conv1d:dtype=fp16,C=3,W=9,S=2,stride=5,pad_l=2",
    };
    char names[6][256];
    for (int i = 0; i < 6; i++) {
        kgt_name_parses_back(P[i], names[i], sizeof names[0]);
        for (int j = 0; j < i; j++)
            cr_assert_str_neq(names[i], names[j], "%s and %s share a name", P[i], P[j]);
    }
}

/* ---- shared/vectors ------------------------------------------------------------------------- */

/* The adapter: every option depthwise_conv1d.md names. padding ((h_l, h_r), (w_l, w_r)): the
 * width pair is the kernel's, the height pair is ignored (H = 1); stride (stride_h, stride_w);
 * rhs_dilation, lhs_dilation (pairs), feature_group_count, batch_group_count: passed to the
 * generator, which refuses anything but the depthwise, undilated case; in_perm, kern_perm,
 * out_perm: accepted only as null (signature compatibility). Inputs NCHW [N, C, 1, W] and
 * OIHW [C, 1, 1, S], or the 3-D logical [N, C, W] and [C, S]. */
static void run_vector(kgt_case *c)
{
    const char *name = kgt_case_name(c);
    const kg_npy *xa = kgt_case_input(c, "img_ref"), *fa = kgt_case_input(c, "filter_ref");
    cr_assert(xa && fa, "%s: img_ref and filter_ref needed", name);
    cr_assert((xa->rank == 4 && xa->shape[2] == 1) || xa->rank == 3, "%s: img_ref rank %d",
              name, xa->rank);
    conv p = { xa->shape[0], xa->shape[1], xa->shape[xa->rank - 1], fa->shape[fa->rank - 1], 1,
               0, 0 };
    cr_assert(fa->shape[0] == p.C && kg_npy_count(fa) == p.C * p.S, "%s: filter_ref not [C, S]",
              name);
    double v[8];
    int n = kgt_case_opt_nums(c, "padding", v, 8);
    cr_assert(n == 0 || n == 4 || n == 2, "%s: padding is not ((h_l, h_r), (w_l, w_r))", name);
    if (n >= 2)
        p.pl = (long)v[n - 2], p.pr = (long)v[n - 1];
    char extra[256] = "";
    n = kgt_case_opt_nums(c, "stride", v, 8);
    cr_assert(n == 0 || n == 2 || n == 1, "%s: stride is not (stride_h, stride_w)", name);
    if (n == 2 && v[0] != 1)
        snprintf(extra + strlen(extra), sizeof extra - strlen(extra), ",stride_h=%ld",
                 (long)v[0]);
    if (n >= 1)
        p.stride = (long)v[n - 1];
    static const char *const pairs[] = { "rhs_dilation", "lhs_dilation" };
    for (int i = 0; i < 2; i++) {
        n = kgt_case_opt_nums(c, pairs[i], v, 8);
        cr_assert(n >= 0, "%s: %s is not a pair of numbers", name, pairs[i]);
        for (int j = 0; j < n; j++)
            if (v[j] != 1) { /* the generator refuses it, naming the key */
                snprintf(extra + strlen(extra), sizeof extra - strlen(extra), ",%s=%ld",
                         pairs[i], (long)v[j]);
                break;
            }
    }
    static const char *const counts[] = { "feature_group_count", "batch_group_count" };
    for (int i = 0; i < 2; i++)
        if (kgt_case_opt_num(c, counts[i], v))
            snprintf(extra + strlen(extra), sizeof extra - strlen(extra), ",%s=%ld", counts[i],
                     (long)v[0]);
    static const char *const perms[] = { "in_perm", "kern_perm", "out_perm" };
    for (int i = 0; i < 3; i++)
        cr_assert(kgt_case_opt_nums(c, perms[i], v, 8) == 0,
                  "%s: %s given: permuted layouts are not mapped", name, perms[i]);
    static const char *const names[] = { "img_ref", "filter_ref" };
    int t = kgt_case_float_dtype(c, names, 2);
    cr_assert(t >= 0, "%s: %s", name, kgt_case_error(c));
    float *x = kgt_case_as(c, "img_ref", KG_F32), *f = kgt_case_as(c, "filter_ref", KG_F32);
    cr_assert(x && f, "%s: %s", name, kgt_case_error(c));
    char problem[512];
    snprintf(problem, sizeof problem, "depthwise_conv1d:dtype=%s,C=%ld,W=%ld,S=%ld,stride=%ld,"
             "pad_l=%ld,pad_r=%ld%s", kg_dtype_name((kg_dtype)t), p.C, p.W, p.S, p.stride, p.pl,
             p.pr, extra);
    const kg_kernel *k = kgt_jit(problem);
    long Q = out_width(&p), ny = p.N * p.C * Q;
    void *xe = kgt_encode((kg_dtype)t, x, p.N * p.C * p.W);
    void *fe = kgt_encode((kg_dtype)t, f, p.C * p.S), *ye = kgt_poisoned((kg_dtype)t, ny);
    cr_assert_eq(((kg_depthwise_conv1d_fn *)k->fn)(ye, xe, fe, p.N), KG_OK, "%s", name);
    char msg[1024];
    cr_assert_eq(kgt_close_to_case(c, "out_output", (kg_dtype)t, ye, msg, sizeof msg), 1,
                 "vector %s (%s): %s", name, k->name, msg);
    free(x), free(f), free(xe), free(fe), free(ye);
}

Test(depthwise_conv1d, shared_vectors) { kgt_each_case("depthwise_conv1d", run_vector); }

/* A synthetic case with every option the sample leaves at its default: asymmetric width
 * padding (height pair too), stride (1, 3), unit dilations, feature_group_count = C,
 * batch_group_count 1, null permutations; fp16 inputs in the 3-D logical layout. */
Test(depthwise_conv1d, synthetic_vector_every_option)
{
    conv p = { 2, 3, 40, 5, 3, 4, 1 };
    long Q = out_width(&p), nx = p.N * p.C * p.W;
    float *x = kgt_randn(KG_F16, nx, 5), *f = kgt_randn(KG_F16, p.C * p.S, 6);
    float *want = malloc((size_t)(p.N * p.C * Q) * sizeof *want);
    depthwise_conv1d_ref(want, x, f, p.N, p.C, p.W, p.S, p.stride, p.pl, p.pr);
    kgt_casew *w = kgt_casew_new("depthwise_conv1d", "n2_c3_w40_k5_s3_p4_1_fp16");
    long xs[3] = { p.N, p.C, p.W }, fs[2] = { p.C, p.S }, ys[3] = { p.N, p.C, Q };
    kgt_casew_input(w, "img_ref", "fp16", x, 3, xs);
    kgt_casew_input(w, "filter_ref", "fp16", f, 2, fs);
    static const char *const opts[][2] = {
        { "padding", "[[7, 7], [4, 1]]" }, { "stride", "[1, 3]" }, { "rhs_dilation", "[1, 1]" },
        { "lhs_dilation", "[1, 1]" }, { "feature_group_count", "3" },
        { "batch_group_count", "1" }, { "in_perm", "null" }, { "kern_perm", "null" },
        { "out_perm", "null" },
    };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        kgt_casew_opt_json(w, opts[i][0], opts[i][1]);
    kgt_casew_output(w, "out_output", want, 3, ys, 1e-2, 1e-2);
    const char *dir = kgt_casew_finish(w);
    kgt_run_case(dir, run_vector);
    kgt_casew_free(w);
    free(x), free(f), free(want);
}

/* ---- JIT vs AOT ------------------------------------------------------------------------------ */

static void compare_builds(const kg_kernel *a, const kg_kernel *j)
{
    char dt[16];
    conv p = { 3, 0, 0, 0, 0, 0, 0 };
    cr_assert(kg_problem_long(a->problem, "C", &p.C) && kg_problem_long(a->problem, "W", &p.W) &&
              kg_problem_long(a->problem, "S", &p.S) &&
              kg_problem_long(a->problem, "stride", &p.stride) &&
              kg_problem_long(a->problem, "pad_l", &p.pl) &&
              kg_problem_long(a->problem, "pad_r", &p.pr) &&
              kg_problem_str(a->problem, "dtype", dt, sizeof dt), "%s", a->problem);
    kg_dtype t = (kg_dtype)kg_dtype_from_name(dt);
    long Q = out_width(&p), nx = p.N * p.C * p.W, ny = p.N * p.C * Q;
    float *x = kgt_randn(t, nx, 3), *f = kgt_randn(t, p.C * p.S, 4);
    void *xe = kgt_encode(t, x, nx), *fe = kgt_encode(t, f, p.C * p.S);
    void *ya = kgt_build_output(t, ny, KGT_AOT), *yj = kgt_build_output(t, ny, KGT_JIT);
    cr_assert_eq(((kg_depthwise_conv1d_fn *)a->fn)(ya, xe, fe, p.N), KG_OK, "%s (AOT)", a->name);
    cr_assert_eq(((kg_depthwise_conv1d_fn *)j->fn)(yj, xe, fe, p.N), KG_OK, "%s (JIT)", a->name);
    long shape[3] = { p.N, p.C, Q };
    char msg[1024];
    cr_assert(kgt_same_bytes(yj, ya, t, ny, 3, shape, msg, sizeof msg), "%s: %s", a->name, msg);
    free(x), free(f), free(xe), free(fe), free(ya), free(yj);
}

Test(depthwise_conv1d, jit_and_aot_are_bit_identical)
{
    cr_assert_gt(kgt_each_aot_jit_pair("depthwise_conv1d", compare_builds), 0);
}
