/* test_rmsnorm_quant.c: generated RMSNorm-Quant kernels against tests/ref, over every option
 * and edge shapes; the upstream vectors; JIT against AOT bit for bit; run-time argument checks. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* One kernel's options, read back from its problem string (never retyped). */
typedef struct opts {
    long H;
    char dtype[16], fp8[16], norm[16], quant[16];
    double lb, eps, max;
    kg_dtype t; /* dtype, parsed */
} opts;

static opts read_opts(const char *problem)
{
    opts o;
    cr_assert(kg_problem_long(problem, "H", &o.H) && kg_problem_double(problem, "eps", &o.eps) &&
              kg_problem_double(problem, "lower_bound", &o.lb) &&
              kg_problem_double(problem, "quant_max", &o.max) &&
              kg_problem_str(problem, "dtype", o.dtype, sizeof o.dtype) &&
              kg_problem_str(problem, "fp8", o.fp8, sizeof o.fp8) &&
              kg_problem_str(problem, "norm_type", o.norm, sizeof o.norm) &&
              kg_problem_str(problem, "quantization_type", o.quant, sizeof o.quant),
              "cannot read %s", problem);
    o.t = (kg_dtype)kg_dtype_from_name(o.dtype);
    return o;
}

/* Decodes fp8 values and (ROW) the packed scale of each row. */
static void unpack(const uint8_t *q, int row, int fn, long R, long H, float *vals, float *scale)
{
    for (long r = 0; r < R; r++) {
        const uint8_t *qr = q + r * (row ? H + 4 : H);
        for (long j = 0; j < H; j++)
            vals[r * H + j] = fn ? kg_e4m3fn_to_f32(qr[j]) : kg_e4m3_to_f32(qr[j]);
        if (row)
            memcpy(&scale[r], qr + H, 4);
    }
}

/* An output of n bytes for the reference tests: 0xff is NaN in e4m3, e4m3fn and as the fp32
 * ROW scale, so a byte the kernel leaves unwritten fails the comparator; malloc'd. */
static uint8_t *poisoned_bytes(long n)
{
    return memset(malloc((size_t)(n ? n : 1)), 0xff, (size_t)(n ? n : 1));
}

/* Runs kernel k on R seeded rows and compares with the reference. */
static void check_kernel(const kg_kernel *k, long R, unsigned long long seed)
{
    opts o = read_opts(k->problem);
    int row = !strcmp(o.quant, "ROW"), rms = !strcmp(o.norm, "RMS_NORM");
    int fn = !strcmp(o.fp8, "e4m3fn");
    long H = o.H, cols = row ? H + 4 : H;
    float *x = malloc((size_t)(R * H) * 4), *g = malloc((size_t)H * 4);
    for (long i = 0; i < R * H; i++)
        x[i] = 3.0f * kgt_normal(&seed);
    for (long j = 0; j < H; j++)
        g[j] = 1.0f + 0.25f * kgt_normal(&seed);
    void *xb = kgt_encode(o.t, x, R * H), *gb = kgt_encode(o.t, g, H);
    /* the reference reads the values as stored in the input dtype */
    for (long i = 0; i < R * H; i++)
        x[i] = kgt_round(o.t, x[i]);
    for (long j = 0; j < H; j++)
        g[j] = kgt_round(o.t, g[j]);
    float s = 0.03f;
    uint8_t *got = poisoned_bytes(R * cols), *want = calloc((size_t)(R * cols), 1);
    int rc = ((kg_rmsnorm_quant_fn *)k->fn)(got, xb, gb, &s, R);
    cr_assert_eq(rc, KG_OK, "%s returned %d", k->name, rc);
    rmsnorm_quant_ref(want, x, g, s, rms, row, fn, (float)o.lb, (float)o.eps, (float)o.max, R, H);
    float *gv = malloc((size_t)(R * H) * 4), *wv = malloc((size_t)(R * H) * 4);
    float *gs = malloc((size_t)R * 4), *ws = malloc((size_t)R * 4);
    unpack(got, row, fn, R, H, gv, gs);
    unpack(want, row, fn, R, H, wv, ws);
    char msg[512];
    long shape[2] = { R, H };
    cr_assert(kgt_allclose_shaped(gv, wv, 2, shape, 0.072, 1e-8, msg, sizeof msg), "%s R=%ld: %s",
              k->name, R, msg);
    if (row)
        cr_assert(kgt_allclose_shaped(gs, ws, 1, shape, 0.007, 1e-8, msg, sizeof msg),
                  "%s R=%ld scale: %s", k->name, R, msg);
    free(x), free(g), free(xb), free(gb), free(got), free(want);
    free(gv), free(wv), free(gs), free(ws);
}

/* Every option combination on sizes that leave remainders: H = 1, 7, 200, 1024. */
Test(rmsnorm_quant, every_option_against_reference)
{
    static const char *dtypes[] = { "bf16", "fp16", "f32" }, *fp8s[] = { "e4m3", "e4m3fn" };
    static const char *norms[] = { "RMS_NORM", "NO_NORM" }, *quants[] = { "ROW", "STATIC" };
    static const char *lbs[] = { "0", "0.5" };
    static const long Hs[] = { 1, 7, 200, 1024 };
    kg_registry *reg = kg_registry_new();
    char p[512];
    for (int a = 0; a < 3; a++) for (int b = 0; b < 2; b++) for (int c = 0; c < 2; c++)
    for (int d = 0; d < 2; d++) for (int e = 0; e < 2; e++) for (int h = 0; h < 4; h++) {
        snprintf(p, sizeof p, "rmsnorm_quant:dtype=%s,fp8=%s,H=%ld,norm_type=%s,"
                 "quantization_type=%s,lower_bound=%s,eps=1e-5", dtypes[a], fp8s[b], Hs[h],
                 norms[c], quants[d], lbs[e]);
        const kg_kernel *k = kgt_jit_problem(reg, p);
        check_kernel(k, 1, 1);
        check_kernel(k, 5, 2);
    }
    kg_registry_free(reg);
}

/* The kernels the bundled specs generate, AOT-compiled, on their own shapes. */
Test(rmsnorm_quant, spec_kernels_aot)
{
    kg_registry *reg = kg_registry_new();
    cr_assert_eq(kg_aot_register(reg, NULL), KG_OK, "%s", kg_registry_error(reg));
    int n = 0;
    for (int i = 0; i < kg_registry_count(reg); i++) {
        const kg_kernel *k = kg_registry_at(reg, i);
        if (strcmp(k->family, "rmsnorm_quant") == 0) {
            check_kernel(k, 3, 10 + (unsigned long long)i);
            n++;
        }
    }
    cr_assert_gt(n, 0, "no rmsnorm_quant kernel in the AOT library");
    kg_registry_free(reg);
}

/* Runs kernels a (AOT) and j (JIT) on the same inputs at R = 4; the bytes each call must write
 * (R rows of H codes, and with ROW each row's 4-byte scale) must be the same. */
static void compare_builds(const kg_kernel *a, const kg_kernel *j)
{
    opts o = read_opts(a->problem);
    long R = 4, n = R * o.H, cols = strcmp(o.quant, "ROW") ? o.H : o.H + 4;
    unsigned long long seed = 7;
    float *x = malloc((size_t)n * 4), *g = malloc((size_t)o.H * 4);
    for (long t = 0; t < n; t++)
        x[t] = kgt_normal(&seed);
    for (long t = 0; t < o.H; t++)
        g[t] = 0.9f;
    void *xb = kgt_encode(o.t, x, n), *gb = kgt_encode(o.t, g, o.H);
    float s = 0.05f;
    uint8_t *oa = kgt_filled((size_t)(R * cols), KGT_AOT);
    uint8_t *oj = kgt_filled((size_t)(R * cols), KGT_JIT);
    int rc = ((kg_rmsnorm_quant_fn *)a->fn)(oa, xb, gb, &s, R);
    cr_assert_eq(rc, KG_OK, "%s (AOT) returned %d", a->name, rc);
    rc = ((kg_rmsnorm_quant_fn *)j->fn)(oj, xb, gb, &s, R);
    cr_assert_eq(rc, KG_OK, "%s (JIT) returned %d", j->name, rc);
    char msg[512];
    cr_assert(kgt_builds_equal(oj, oa, R * cols, 1, msg, sizeof msg), "%s: %s", a->name, msg);
    free(x), free(g), free(xb), free(gb), free(oa), free(oj);
}

/* JIT (from the checked-in generated files) and AOT give the same bits, for every rmsnorm_quant
 * kernel of every AOT-built spec (kgt_each_aot_jit_pair asserts there is one at least, and that
 * each spec's kernels.inc lists as many as its AOT build holds). */
Test(rmsnorm_quant, jit_equals_aot)
{
    kgt_each_aot_jit_pair("rmsnorm_quant", compare_builds);
}

/* Per-call sizes and pointers the kernel must refuse, and rows == 0. */
Test(rmsnorm_quant, run_time_checks)
{
    kg_registry *reg = kg_registry_new();
    const kg_kernel *k = kgt_jit_problem(reg, "rmsnorm_quant:H=8,quantization_type=STATIC");
    kg_rmsnorm_quant_fn *f = (kg_rmsnorm_quant_fn *)k->fn;
    uint16_t x[8] = { 0 }, g[8] = { 0 };
    uint8_t out[8] = { 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa };
    float s = 1.0f;
    cr_assert_eq(f(out, x, g, &s, -1), KG_EARG);
    cr_assert_eq(f(out, x, NULL, &s, 1), KG_EARG, "RMS_NORM without gamma");
    cr_assert_eq(f(out, x, g, NULL, 1), KG_EARG, "STATIC without a scale");
    cr_assert_eq(f(out, x, g, &s, 0), KG_OK);
    cr_assert_eq(out[0], 0xaa, "rows == 0 wrote output");
    kg_registry_free(reg);
}

/* One case of shared/vectors/rmsnorm_quant: the decoded codes against out_out_f32 and, with ROW,
 * the packed scales against out_dequant_scale (out_out, the e4m3 bits, has no tolerance: the
 * bits need not match). */
static void run_vector(kgt_case *tc)
{
    const char *name = kgt_case_name(tc), *norm = "RMS_NORM", *quant = "ROW";
    char p[512], msg[512];
    double lb = 0, eps = 1e-6; /* rmsnorm_quant.md's defaults */
    kgt_case_opt_str(tc, "norm_type", &norm);
    kgt_case_opt_str(tc, "quantization_type", &quant);
    kgt_case_opt_num(tc, "lower_bound", &lb);
    kgt_case_opt_num(tc, "eps", &eps);
    /* the vectors' names (the torch reference's), else rmsnorm_quant.md's */
    const char *xn = kgt_case_input_dtype(tc, "inp") ? "inp" : "hidden";
    const char *gn = kgt_case_input_dtype(tc, "ln_w") ? "ln_w" : "gamma";
    const kg_npy *x = kgt_case_input(tc, xn);
    cr_assert(x, "%s: %s", name, kgt_case_error(tc));
    const char *const fl[] = { xn, gn };
    int t = kgt_case_float_dtype(tc, fl, 2);
    cr_assert(t >= 0, "%s: %s", name, kgt_case_error(tc));
    long H = x->shape[x->rank - 1], R = kg_npy_count(x) / H;
    int row = !strcmp(quant, "ROW");
    snprintf(p, sizeof p, "rmsnorm_quant:dtype=%s,H=%ld,norm_type=%s,quantization_type=%s,"
             "lower_bound=%.9g,eps=%.9g", kg_dtype_name((kg_dtype)t), H, norm, quant, lb, eps);
    const kg_kernel *k = kgt_jit(p);
    float *xf = kgt_case_as(tc, xn, KG_F32);
    float *gf = kgt_case_input_dtype(tc, gn) ? kgt_case_as(tc, gn, KG_F32) : NULL;
    cr_assert(xf && (gf || !kgt_case_input_dtype(tc, gn)), "%s: %s", name,
              kgt_case_error(tc));
    void *xb = kgt_encode((kg_dtype)t, xf, R * H);
    void *gb = gf ? kgt_encode((kg_dtype)t, gf, H) : NULL;
    free(xf), free(gf);
    float s = 1.0f;
    if (kgt_case_input_dtype(tc, "input_dequant_scale")) {
        float *sc = kgt_case_as(tc, "input_dequant_scale", KG_F32);
        cr_assert_not_null(sc, "%s: %s", name, kgt_case_error(tc));
        s = sc[0];
        free(sc);
    }
    uint8_t *q = poisoned_bytes(R * (H + 4));
    int rc = ((kg_rmsnorm_quant_fn *)k->fn)(q, xb, gb, &s, R);
    cr_assert_eq(rc, KG_OK, "%s: %s returned %d", name, k->name, rc);
    float *vals = malloc((size_t)(R * H) * 4), *scale = malloc((size_t)R * 4);
    unpack(q, row, 0, R, H, vals, scale);
    const kg_npy *wv = kgt_case_output(tc, "out_out_f32");
    double rtol, atol;
    cr_assert(wv && kgt_case_tol(tc, "out_out_f32", &rtol, &atol), "%s: out_out_f32", name);
    cr_assert(kgt_allclose(vals, wv->data, R * H, rtol, atol, msg, sizeof msg), "%s: %s", name,
              msg);
    kgt_case_compared(tc, "out_out_f32");
    if (row) {
        const kg_npy *ws = kgt_case_output(tc, "out_dequant_scale");
        cr_assert(ws && kgt_case_tol(tc, "out_dequant_scale", &rtol, &atol),
                  "%s: ROW without out_dequant_scale", name);
        cr_assert(kgt_allclose(scale, ws->data, R, rtol, atol, msg, sizeof msg), "%s scale: %s",
                  name, msg);
        kgt_case_compared(tc, "out_dequant_scale");
    }
    free(xb), free(gb), free(q), free(vals), free(scale);
}

/* A synthetic case for what the shared sample lacks: fp16 input (the upstream fp16 tests) named
 * "hidden" (the doc's name; the vectors' is "inp"), no gamma with NO_NORM, and no eps /
 * lower_bound options (the doc's defaults 1e-6 / 0); expected from tests/ref, 3 rows of 200. */
Test(rmsnorm_quant, synthetic_vector_fp16_no_gamma_defaults, .init = kgt_suite_init,
     .fini = kgt_suite_fini)
{
    enum { R = 3, H = 200 };
    float *x = kgt_randn(KG_F16, R * H, 701);
    for (long i = 0; i < R * H; i++)
        x[i] = kgt_round_f16(x[i] * 3.0f);
    uint8_t *q = malloc(R * (H + 4));
    rmsnorm_quant_ref(q, x, NULL, 1.0f, 0, 1, 0, 0.0f, 1e-6f, 240.0f, R, H);
    float *vals = malloc(sizeof(float) * R * H), *scale = malloc(sizeof(float) * R);
    unpack(q, 1, 0, R, H, vals, scale);
    kgt_casew *w = kgt_casew_new("rmsnorm_quant", "row_no_norm_fp16_r3_h200");
    long xs[3] = { 1, R, H }, ss[3] = { 1, R, 1 };
    kgt_casew_input(w, "hidden", "fp16", x, 3, xs); /* rmsnorm_quant.md's name */
    kgt_casew_opt_str(w, "norm_type", "NO_NORM");
    kgt_casew_opt_str(w, "quantization_type", "ROW");
    kgt_casew_output(w, "out_out_f32", vals, 3, xs, 0.072, 1e-8);
    kgt_casew_output(w, "out_dequant_scale", scale, 3, ss, 0.007, 1e-8);
    kgt_run_case(kgt_casew_finish(w), run_vector);
    kgt_casew_free(w);
    free(x), free(q), free(vals), free(scale);
}

/* The upstream reference outputs of shared/vectors/rmsnorm_quant. */
Test(rmsnorm_quant, upstream_vectors, .init = kgt_suite_init, .fini = kgt_suite_fini)
{
    kgt_each_case("rmsnorm_quant", run_vector);
}
