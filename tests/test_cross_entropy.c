/* tests/test_cross_entropy.c: the cross_entropy_fwd and cross_entropy_bwd families against
 * tests/ref/cross_entropy_ref.c (bf16 and fp32, chunks that do and do not divide V, T = 1,
 * V = 1, both reductions, in place and not, bf16 or fp32 lse), their gradient against central
 * finite differences of the loss in double, the shared/vectors cases (and synthetic ones for
 * the options the sample leaves out), out-of-range targets, the peak extra memory, kernel names,
 * bad problems, and JIT vs AOT bit-identity. Tolerances: cross_entropy.md's. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

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

TestSuite(cross_entropy, .init = kgt_suite_init, .fini = kgt_suite_fini);

/* cross_entropy.md "Tolerances" */
static double tol(kg_dtype t) { return t == KG_F32 ? 1e-5 : 1e-2; }
static float (*rounding(kg_dtype t))(float) { return t == KG_F32 ? NULL : kgt_round_bf16; }

/* T targets in [0, V), seeded */
static int32_t *targets_for(long T, long V, unsigned long long seed)
{
    int32_t *y = malloc((size_t)T * sizeof *y);
    for (long t = 0; t < T; t++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        y[t] = (int32_t)((seed >> 33) % (unsigned long long)V);
    }
    return y;
}

/* T x V logits on dtype t's grid: normal(0, 1), or with `ramp` a rising trend along v, so the
 * running max grows chunk after chunk and every rescale is taken. */
static float *logits_for(kg_dtype t, long T, long V, int ramp, unsigned long long seed)
{
    float *x = kgt_randn(KG_F32, T * V, seed);
    for (long i = 0; i < T * V; i++)
        x[i] = kgt_round(t, ramp ? x[i] + 8.0f * (float)(i % V) / (float)V : x[i]);
    return x;
}

static const kg_kernel *fwd_kernel(kg_dtype t, long V, long cs)
{
    char p[256];
    snprintf(p, sizeof p, "cross_entropy_fwd:dtype=%s,V=%ld,chunk_size=%ld", kg_dtype_name(t),
             V, cs);
    return kgt_jit(p);
}

static const kg_kernel *bwd_kernel(kg_dtype t, kg_dtype lt, long V, int mean, int inplace)
{
    char p[256];
    snprintf(p, sizeof p, "cross_entropy_bwd:dtype=%s,lse_dtype=%s,V=%ld,reduction=%s,inplace=%s",
             kg_dtype_name(t), kg_dtype_name(lt), V, mean ? "mean" : "sum",
             inplace ? "true" : "false");
    return kgt_jit(p);
}

/* ---- forward ----------------------------------------------------------------------------------- */

static void check_fwd(kg_dtype t, long T, long V, long cs, int ramp)
{
    const kg_kernel *k = fwd_kernel(t, V, cs);
    float *x = logits_for(t, T, V, ramp, 42 + (unsigned long long)(T * 131 + V));
    int32_t *y = targets_for(T, V, (unsigned long long)V);
    void *xe = kgt_encode(t, x, T * V), *le = kgt_poisoned(t, T), *se = kgt_poisoned(t, T);
    int rc = ((kg_cross_entropy_fwd_fn *)k->fn)(le, se, xe, y, T);
    cr_assert_eq(rc, KG_OK, "%s returned %d", k->name, rc);
    float *loss = malloc((size_t)T * sizeof *loss), *lse = malloc((size_t)T * sizeof *lse);
    cross_entropy_fwd_ref(loss, lse, x, y, T, V, cs, rounding(t));
    char msg[1024];
    long shape[1] = { T };
    cr_assert(kgt_close_to_ref(t, le, loss, 1, shape, tol(t), tol(t), msg, sizeof msg),
              "%s T=%ld ramp=%d loss: %s", k->name, T, ramp, msg);
    cr_assert(kgt_close_to_ref(t, se, lse, 1, shape, tol(t), tol(t), msg, sizeof msg),
              "%s T=%ld ramp=%d lse: %s", k->name, T, ramp, msg);
    free(x), free(y), free(xe), free(le), free(se), free(loss), free(lse);
}

/* (T, V, chunk): T = 1; V = 1; chunks dividing V and not (remainders 1, 2, 17); V past 2^17
 * with the largest chunk; the upstream vocabularies' remainders. */
static const long FWD[][3] = { { 1, 1, 1 },         { 1, 7, 3 },         { 5, 1000, 1000 },
                               { 3, 1001, 333 },    { 4, 4099, 1024 },   { 2, 32128, 32128 },
                               { 2, 32768 + 17, 32768 }, { 1, 129280, 65535 },
                               { 1, 262144, 65536 } };

Test(cross_entropy, forward_against_reference, .timeout = 120 * KGT_TIME_SCALE)
{
    for (size_t i = 0; i < sizeof FWD / sizeof FWD[0]; i++)
        for (int ramp = 0; ramp < 2; ramp++) {
            check_fwd(KG_BF16, FWD[i][0], FWD[i][1], FWD[i][2], ramp);
            check_fwd(KG_F32, FWD[i][0], FWD[i][1], FWD[i][2], ramp);
        }
}

/* -inf logits add nothing; a row's loss at V = 1 is 0. */
Test(cross_entropy, forward_special_rows)
{
    const kg_kernel *k = fwd_kernel(KG_F32, 5, 2);
    float x[10] = { -INFINITY, 1.0f, -INFINITY, -INFINITY, 2.0f, 0, 0, 0, 0, 0 };
    int32_t y[2] = { 1, 0 };
    float loss[2], lse[2];
    cr_assert_eq(((kg_cross_entropy_fwd_fn *)k->fn)(loss, lse, x, y, 2), KG_OK);
    cr_assert(fabsf(lse[0] - (float)log(exp(1.0) + exp(2.0))) < 1e-6f, "lse %g", lse[0]);
    cr_assert(fabsf(lse[1] - (float)log(5.0)) < 1e-6f && loss[1] == lse[1],
              "a row of zeros: lse %g loss %g", lse[1], loss[1]);
    const kg_kernel *k1 = fwd_kernel(KG_F32, 1, 1);
    float one = 3.5f;
    cr_assert_eq(((kg_cross_entropy_fwd_fn *)k1->fn)(loss, lse, &one, y + 1, 1), KG_OK);
    cr_assert(loss[0] == 0.0f && lse[0] == 3.5f, "V = 1: loss %g lse %g", loss[0], lse[0]);
}

/* ---- backward -------------------------------------------------------------------------------- */

static void check_bwd(kg_dtype t, kg_dtype lt, long T, long V, int mean, int inplace)
{
    const kg_kernel *k = bwd_kernel(t, lt, V, mean, inplace);
    float *x = logits_for(t, T, V, 0, 7 + (unsigned long long)(T * 31 + V));
    int32_t *y = targets_for(T, V, 3 + (unsigned long long)V);
    float *loss = malloc((size_t)T * sizeof *loss), *lse = malloc((size_t)T * sizeof *lse);
    cross_entropy_fwd_ref(loss, lse, x, y, T, V, V, NULL); /* the saved lse, in lse_dtype */
    for (long i = 0; i < T; i++)
        lse[i] = kgt_round(lt, lse[i]);
    void *xe = kgt_encode(t, x, T * V), *le = kgt_encode(lt, lse, T);
    void *ge = inplace ? NULL : kgt_poisoned(t, T * V);
    int rc = ((kg_cross_entropy_bwd_fn *)k->fn)(ge, xe, y, le, T);
    cr_assert_eq(rc, KG_OK, "%s returned %d", k->name, rc);
    float *want = malloc((size_t)(T * V) * sizeof *want);
    cross_entropy_bwd_ref(want, x, y, lse, T, V, mean, rounding(t));
    char msg[1024];
    long shape[2] = { T, V };
    cr_assert(kgt_close_to_ref(t, inplace ? xe : ge, want, 2, shape, tol(t), tol(t), msg,
                               sizeof msg), "%s T=%ld: %s", k->name, T, msg);
    if (!inplace) { /* the logits are left alone */
        void *again = kgt_encode(t, x, T * V);
        cr_assert(memcmp(again, xe, (size_t)(T * V) * kgt_dtype_size(t)) == 0,
                  "%s wrote into logits", k->name);
        free(again);
    }
    free(x), free(y), free(loss), free(lse), free(xe), free(le), free(ge), free(want);
}

static const long BWD[][2] = { { 1, 1 }, { 1, 7 }, { 5, 1000 }, { 3, 1001 }, { 4, 4099 },
                               { 2, 65537 }, { 1, 262144 } };

Test(cross_entropy, backward_against_reference, .timeout = 120 * KGT_TIME_SCALE)
{
    for (size_t i = 0; i < sizeof BWD / sizeof BWD[0]; i++)
        for (int mean = 0; mean < 2; mean++)
            for (int inplace = 0; inplace < 2; inplace++) {
                check_bwd(KG_BF16, KG_BF16, BWD[i][0], BWD[i][1], mean, inplace);
                check_bwd(KG_BF16, KG_F32, BWD[i][0], BWD[i][1], mean, inplace);
                check_bwd(KG_F32, KG_F32, BWD[i][0], BWD[i][1], mean, inplace);
                check_bwd(KG_F32, KG_BF16, BWD[i][0], BWD[i][1], mean, inplace);
            }
}

/* The gradient of the mean (sum) loss against central differences of it in double
 * (step 1e-4 on logits of spread 2): forward and backward kernels chained as in training, the
 * lse the forward kernel's. fp32 within 2e-5; bf16 within its rounding (the backward rounds
 * each product to 8 bits: 1e-2 of the largest). */
static void check_fd(kg_dtype t, long T, long V, long cs, int mean)
{
    const kg_kernel *kf = fwd_kernel(t, V, cs);
    const kg_kernel *kb = bwd_kernel(t, t, V, mean, 1);
    float *x = logits_for(t, T, V, 0, 1234 + (unsigned long long)V);
    for (long i = 0; i < T * V; i++)
        x[i] = kgt_round(t, 2.0f * x[i]);
    int32_t *y = targets_for(T, V, 99);
    void *xe = kgt_encode(t, x, T * V), *le = kgt_poisoned(t, T), *se = kgt_poisoned(t, T);
    cr_assert_eq(((kg_cross_entropy_fwd_fn *)kf->fn)(le, se, xe, y, T), KG_OK);
    cr_assert_eq(((kg_cross_entropy_bwd_fn *)kb->fn)(NULL, xe, y, se, T), KG_OK);
    float *g = kgt_decode(t, xe, T * V);
    double *xd = malloc((size_t)(T * V) * sizeof *xd), h = 1e-4, worst = 0, gmax = 0;
    long at = 0;
    for (long i = 0; i < T * V; i++)
        xd[i] = x[i];
    for (long i = 0; i < T * V; i++) {
        double keep = xd[i];
        xd[i] = keep + h;
        double up = cross_entropy_total_ref(xd, y, T, V, mean);
        xd[i] = keep - h;
        double dn = cross_entropy_total_ref(xd, y, T, V, mean);
        xd[i] = keep;
        double fd = (up - dn) / (2 * h), e = fabs(g[i] - fd);
        if (fabs(fd) > gmax)
            gmax = fabs(fd);
        if (e > worst)
            worst = e, at = i;
    }
    double bound = t == KG_F32 ? 2e-5 : 1e-2 * gmax + 1e-3;
    cr_assert(worst <= bound, "%s T=%ld V=%ld %s: gradient off central differences by %.3g at "
              "[%ld, %ld] (kernel %.9g), bound %.3g", kb->name, T, V, mean ? "mean" : "sum",
              worst, at / V, at % V, (double)g[at], bound);
    free(x), free(y), free(xe), free(le), free(se), free(g), free(xd);
}

Test(cross_entropy, gradient_matches_central_differences)
{
    static const long SH[][3] = { { 1, 1, 1 }, { 1, 5, 2 }, { 3, 17, 4 }, { 4, 64, 64 },
                                  { 2, 100, 33 } };
    for (size_t i = 0; i < sizeof SH / sizeof SH[0]; i++)
        for (int mean = 0; mean < 2; mean++) {
            check_fd(KG_F32, SH[i][0], SH[i][1], SH[i][2], mean);
            check_fd(KG_BF16, SH[i][0], SH[i][1], SH[i][2], mean);
        }
}

/* ---- bad calls, memory --------------------------------------------------------------------- */

Test(cross_entropy, bad_calls_write_nothing)
{
    const kg_kernel *kf = fwd_kernel(KG_F32, 4, 4);
    const kg_kernel *kb = bwd_kernel(KG_F32, KG_F32, 4, 1, 1);
    kg_cross_entropy_fwd_fn *f = (kg_cross_entropy_fwd_fn *)kf->fn;
    kg_cross_entropy_bwd_fn *b = (kg_cross_entropy_bwd_fn *)kb->fn;
    float x[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, loss[2] = { -1, -1 }, lse[2] = { -1, -1 };
    int32_t bad[3][2] = { { 0, 4 }, { -1, 0 }, { 0, INT32_MAX } };
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(f(loss, lse, x, bad[i], 2), KG_EARG, "target %d, %d accepted", bad[i][0],
                     bad[i][1]);
        cr_assert_eq(b(NULL, x, bad[i], lse, 2), KG_EARG);
    }
    cr_assert(loss[0] == -1 && loss[1] == -1 && lse[0] == -1 && x[0] == 1 && x[7] == 8,
              "a refused call wrote");
    int32_t ok[2] = { 0, 3 };
    cr_assert_eq(f(loss, lse, x, ok, -1), KG_EARG);
    cr_assert_eq(f(NULL, NULL, NULL, NULL, 0), KG_OK);
    cr_assert_eq(f(NULL, lse, x, ok, 2), KG_EARG);
    cr_assert_eq(b(NULL, NULL, ok, lse, 2), KG_EARG);
    const kg_kernel *kn = bwd_kernel(KG_F32, KG_F32, 4, 1, 0);
    cr_assert_eq(((kg_cross_entropy_bwd_fn *)kn->fn)(NULL, x, ok, lse, 2), KG_EARG,
                 "inplace = false needs grad_logits");
}

/* Peak resident memory over a forward and a backward at V = 256K (32 MiB of bf16 logits, an
 * fp32 probability matrix would be 64 MiB): it may grow by at most one vocabulary chunk of fp32
 * per thread. Criterion runs each test in its own process, so the peak is this test's; the
 * inputs are touched and the kernels (and the thread team) warmed on one row first. */
Test(cross_entropy, peak_extra_memory_is_at_most_a_chunk_per_thread)
{
    enum { T = 64, V = 262144, CS = 65536 };
    const kg_kernel *kf = fwd_kernel(KG_BF16, V, CS);
    const kg_kernel *kb = bwd_kernel(KG_BF16, KG_BF16, V, 1, 1);
    uint16_t *x = malloc((size_t)T * V * 2), *loss = malloc(T * 2), *lse = malloc(T * 2);
    for (long i = 0; i < (long)T * V; i++)
        x[i] = kg_f32_to_bf16((float)(i % 977) * 1e-3f);
    int32_t *y = targets_for(T, V, 5);
    cr_assert_eq(((kg_cross_entropy_fwd_fn *)kf->fn)(loss, lse, x, y, 1), KG_OK);
    cr_assert_eq(((kg_cross_entropy_bwd_fn *)kb->fn)(NULL, x, y, lse, 1), KG_OK);
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    cr_assert_eq(((kg_cross_entropy_fwd_fn *)kf->fn)(loss, lse, x, y, T), KG_OK);
    cr_assert_eq(((kg_cross_entropy_bwd_fn *)kb->fn)(NULL, x, y, lse, T), KG_OK);
    getrusage(RUSAGE_SELF, &r1);
    long grew = (r1.ru_maxrss - r0.ru_maxrss) * 1024L, chunk = CS * 4L * kg_threads();
    cr_log_info("peak resident memory grew by %ld bytes over fwd + bwd at T=%d V=%d "
                "(allowed: %ld)", grew, T, V, chunk);
    cr_assert(grew <= chunk, "peak memory grew by %ld bytes, more than a chunk per thread (%ld)",
              grew, chunk);
    free(x), free(loss), free(lse), free(y);
}

Test(cross_entropy, bad_problems_name_the_key)
{
    static const struct { const char *problem, *want; } bad[] = {
        { "cross_entropy_bwd:reduction=none", "key 'reduction'" },
        { "cross_entropy_bwd:reduction=batchmean", "key 'reduction'" },
        { "cross_entropy_fwd:dtype=fp16", "key 'dtype'" },
        { "cross_entropy_bwd:lse_dtype=e4m3", "key 'lse_dtype'" },
        { "cross_entropy_fwd:V=1000,chunk_size=1001", "key 'chunk_size'" },
        { "cross_entropy_fwd:chunk_size=65537", "key 'chunk_size'" },
        { "cross_entropy_fwd:chunk_size=0", "key 'chunk_size'" },
        { "cross_entropy_fwd:V=262145", "key 'V'" },
        { "cross_entropy_fwd:V=0", "key 'V'" },
        { "cross_entropy_fwd:ignore_index=-100", "key 'ignore_index'" },
        { "cross_entropy_bwd:label_smoothing=0.1", "key 'label_smoothing'" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        kgt_problem_rejected(bad[i].problem, bad[i].want);
}

Test(cross_entropy, names_parse_back_and_are_unique)
{
    static const char *const P[] = {
        "cross_entropy_fwd:dtype=bf16,V=128256", "cross_entropy_fwd:dtype=f32,V=128256",
        "cross_entropy_fwd:dtype=bf16,V=128256,chunk_size=1000",
        "cross_entropy_bwd:dtype=bf16,V=128256", "cross_entropy_bwd:dtype=bf16,lse_dtype=f32",
        "cross_entropy_bwd:reduction=sum", "cross_entropy_bwd:inplace=false",
        "cross_entropy_bwd:dtype=f32,lse_dtype=bf16,reduction=sum,inplace=false,V=7",
    };
    char names[8][256];
    for (int i = 0; i < 8; i++) {
        kgt_name_parses_back(P[i], names[i], sizeof names[0]);
        for (int j = 0; j < i; j++)
            cr_assert_str_neq(names[i], names[j], "%s and %s share a name", P[i], P[j]);
    }
}

/* ---- shared/vectors --------------------------------------------------------------------------- */

/* The options every cross entropy case may carry (cross_entropy.md): the logical sizes
 * (positions, vocab: must match the logits), dtype (of logits and intermediates alike here: a
 * case that splits them fails), chunk_size (a key of the forward; the backward's result does
 * not depend on it) and positions_per_batch (rows per hardware tile: checked in range, no effect
 * on a CPU). Returns the kernel dtype. */
static kg_dtype common_options(kgt_case *c, long *T, long *V, long *cs)
{
    const char *name = kgt_case_name(c);
    const kg_npy *xa = kgt_case_input(c, "logits");
    cr_assert(xa && xa->rank == 2, "%s: logits [P, V] missing", name);
    *T = xa->shape[0], *V = xa->shape[1];
    static const char *const xn[] = { "logits" };
    int t = kgt_case_float_dtype(c, xn, 1);
    cr_assert(t == KG_BF16 || t == KG_F32, "%s: logits must be bf16 or f32 (%s)", name,
              kgt_case_error(c));
    const char *ds;
    if (kgt_case_opt_str(c, "dtype", &ds)) {
        int o = kgt_case_dtype_from_name(ds);
        cr_assert(o == KG_BF16 || o == KG_F32, "%s: dtype %s is not bf16 or fp32", name, ds);
        cr_assert(o == t || (o == KG_F32 && t == KG_BF16),
                  "%s: dtype %s narrower than the logits' values: unmapped", name, ds);
        t = o;
    }
    double v;
    if (kgt_case_opt_num(c, "positions", &v))
        cr_assert(v == *T, "%s: positions %g but logits have %ld rows", name, v, *T);
    if (kgt_case_opt_num(c, "vocab", &v))
        cr_assert(v == *V, "%s: vocab %g but logits have %ld columns", name, v, *V);
    *cs = *V < 32768 ? *V : 32768;
    if (kgt_case_opt_num(c, "chunk_size", &v))
        *cs = (long)v;
    if (kgt_case_opt_num(c, "positions_per_batch", &v)) /* hardware tiling only */
        cr_assert(v > 0 && v <= 128, "%s: positions_per_batch %g out of (0, 128]", name, v);
    return (kg_dtype)t;
}

static void run_fwd_vector(kgt_case *c)
{
    const char *name = kgt_case_name(c);
    long T, V, cs;
    kg_dtype t = common_options(c, &T, &V, &cs);
    float *x = kgt_case_as(c, "logits", KG_F32);
    int32_t *y = kgt_case_as(c, "targets", KG_I32);
    cr_assert(x && y, "%s: %s", name, kgt_case_error(c));
    const kg_kernel *k = fwd_kernel(t, V, cs);
    void *xe = kgt_encode(t, x, T * V), *le = kgt_poisoned(t, T), *se = kgt_poisoned(t, T);
    cr_assert_eq(((kg_cross_entropy_fwd_fn *)k->fn)(le, se, xe, y, T), KG_OK, "%s", name);
    char msg[1024];
    cr_assert_eq(kgt_close_to_case(c, "out_loss", t, le, msg, sizeof msg), 1,
                 "vector %s (%s) loss: %s", name, k->name, msg);
    cr_assert_eq(kgt_close_to_case(c, "out_lse", t, se, msg, sizeof msg), 1,
                 "vector %s (%s) lse: %s", name, k->name, msg);
    free(x), free(y), free(xe), free(le), free(se);
}

static void run_bwd_vector(kgt_case *c)
{
    const char *name = kgt_case_name(c);
    long T, V, cs;
    kg_dtype t = common_options(c, &T, &V, &cs);
    (void)cs; /* the backward's result does not depend on the chunk */
    const char *red = "mean";
    kgt_case_opt_str(c, "reduction", &red);
    int inplace = 1;
    kgt_case_opt_bool(c, "inplace", &inplace);
    static const char *const ln[] = { "lse" };
    int lt = kgt_case_float_dtype(c, ln, 1);
    cr_assert(lt == KG_BF16 || lt == KG_F32, "%s: lse must be bf16 or f32", name);
    float *x = kgt_case_as(c, "logits", KG_F32), *lse = kgt_case_as(c, "lse", KG_F32);
    int32_t *y = kgt_case_as(c, "targets", KG_I32);
    cr_assert(x && y && lse, "%s: %s", name, kgt_case_error(c));
    char p[256];
    snprintf(p, sizeof p, "cross_entropy_bwd:dtype=%s,lse_dtype=%s,V=%ld,reduction=%s,"
             "inplace=%s", kg_dtype_name(t), kg_dtype_name((kg_dtype)lt), V, red,
             inplace ? "true" : "false");
    const kg_kernel *k = kgt_jit(p);
    void *xe = kgt_encode(t, x, T * V), *le = kgt_encode((kg_dtype)lt, lse, T);
    void *ge = inplace ? NULL : kgt_poisoned(t, T * V);
    cr_assert_eq(((kg_cross_entropy_bwd_fn *)k->fn)(ge, xe, y, le, T), KG_OK, "%s", name);
    char msg[1024];
    cr_assert_eq(kgt_close_to_case(c, "out_grad_logits", t, inplace ? xe : ge, msg, sizeof msg),
                 1, "vector %s (%s): %s", name, k->name, msg);
    free(x), free(y), free(lse), free(xe), free(le), free(ge);
}

Test(cross_entropy, shared_vectors_forward) { kgt_each_case("cross_entropy_fwd", run_fwd_vector); }
Test(cross_entropy, shared_vectors_backward) { kgt_each_case("cross_entropy_bwd", run_bwd_vector); }

/* Synthetic cases for the options the sample leaves out: the forward with chunk_size,
 * positions_per_batch and dtype; the backward not in place, with bf16 lse and the hints. */
Test(cross_entropy, synthetic_vectors_every_option)
{
    enum { T = 3, V = 1001 };
    float *x = logits_for(KG_BF16, T, V, 1, 77), loss[T], lse[T];
    int32_t *y = targets_for(T, V, 8);
    float *yf = malloc(T * sizeof *yf), *g = malloc(T * V * sizeof *g);
    for (int i = 0; i < T; i++)
        yf[i] = (float)y[i];
    kg_npy tn = { 0 };
    long ts[1] = { T }, xs[2] = { T, V };
    tn.dtype = KG_I32, tn.rank = 1, tn.shape[0] = T, tn.data = y;
    cross_entropy_fwd_ref(loss, lse, x, y, T, V, 300, kgt_round_bf16);
    kgt_casew *w = kgt_casew_new("cross_entropy_fwd", "t3_v1001_bf16_cs300");
    kgt_casew_input(w, "logits", "bf16", x, 2, xs);
    kgt_casew_input_npy(w, "targets", "i32", &tn);
    kgt_casew_opt_num(w, "chunk_size", 300);
    kgt_casew_opt_num(w, "positions_per_batch", 2);
    kgt_casew_opt_str(w, "dtype", "bf16");
    kgt_casew_output(w, "out_loss", loss, 1, ts, 1e-2, 1e-2);
    kgt_casew_output(w, "out_lse", lse, 1, ts, 1e-2, 1e-2);
    kgt_run_case(kgt_casew_finish(w), run_fwd_vector);
    kgt_casew_free(w);

    for (int i = 0; i < T; i++)
        lse[i] = kgt_round_bf16(lse[i]);
    cross_entropy_bwd_ref(g, x, y, lse, T, V, 0, kgt_round_bf16);
    w = kgt_casew_new("cross_entropy_bwd", "t3_v1001_bf16_sum_copy");
    kgt_casew_input(w, "logits", "bf16", x, 2, xs);
    kgt_casew_input_npy(w, "targets", "i32", &tn);
    kgt_casew_input(w, "lse", "bf16", lse, 1, ts);
    kgt_casew_opt_str(w, "reduction", "sum");
    kgt_casew_opt_bool(w, "inplace", 0);
    kgt_casew_opt_num(w, "chunk_size", 512);
    kgt_casew_opt_num(w, "positions_per_batch", 128);
    kgt_casew_opt_str(w, "dtype", "bf16");
    kgt_casew_output(w, "out_grad_logits", g, 2, xs, 1e-2, 1e-2);
    kgt_run_case(kgt_casew_finish(w), run_bwd_vector);
    kgt_casew_free(w);
    free(x), free(y), free(yf), free(g);
}

/* ---- JIT vs AOT ------------------------------------------------------------------------------ */

static void fwd_pair(const kg_kernel *a, const kg_kernel *j)
{
    char dt[16];
    long V, T = 3;
    cr_assert(kg_problem_long(a->problem, "V", &V) &&
              kg_problem_str(a->problem, "dtype", dt, sizeof dt), "%s", a->problem);
    kg_dtype t = (kg_dtype)kg_dtype_from_name(dt);
    float *x = logits_for(t, T, V, 1, 5);
    int32_t *y = targets_for(T, V, 6);
    void *xe = kgt_encode(t, x, T * V);
    /* loss and lse side by side in one buffer: at V = 1 every loss is 0, the lse is not */
    void *o[2];
    size_t w = kgt_dtype_size(t);
    for (int b = 0; b < 2; b++) {
        o[b] = kgt_build_output(t, 2 * T, b ? KGT_JIT : KGT_AOT);
        const kg_kernel *k = b ? j : a;
        cr_assert_eq(((kg_cross_entropy_fwd_fn *)k->fn)(o[b], (char *)o[b] + T * w, xe, y, T),
                     KG_OK);
    }
    long shape[2] = { 2, T };
    char msg[1024];
    cr_assert(kgt_same_bytes(o[1], o[0], t, 2 * T, 2, shape, msg, sizeof msg), "%s: %s",
              a->name, msg);
    free(x), free(y), free(xe), free(o[0]), free(o[1]);
}

static void bwd_pair(const kg_kernel *a, const kg_kernel *j)
{
    char dt[16], ldt[16], ip[8];
    long V, T = 3;
    cr_assert(kg_problem_long(a->problem, "V", &V) &&
              kg_problem_str(a->problem, "dtype", dt, sizeof dt) &&
              kg_problem_str(a->problem, "lse_dtype", ldt, sizeof ldt) &&
              kg_problem_str(a->problem, "inplace", ip, sizeof ip), "%s", a->problem);
    kg_dtype t = (kg_dtype)kg_dtype_from_name(dt), lt = (kg_dtype)kg_dtype_from_name(ldt);
    int inplace = strcmp(ip, "true") == 0;
    float *x = logits_for(t, T, V, 1, 9), lse[3] = { 2.5f, 3.0f, 4.25f };
    int32_t *y = targets_for(T, V, 10);
    void *le = kgt_encode(lt, lse, T), *g[2];
    for (int b = 0; b < 2; b++) {
        void *xe = kgt_encode(t, x, T * V), *ge = kgt_build_output(t, T * V, b ? KGT_JIT : KGT_AOT);
        const kg_kernel *k = b ? j : a;
        cr_assert_eq(((kg_cross_entropy_bwd_fn *)k->fn)(ge, xe, y, le, T), KG_OK);
        g[b] = inplace ? xe : ge;
        free(inplace ? ge : xe);
    }
    long shape[2] = { T, V };
    char msg[1024];
    cr_assert(kgt_same_bytes(g[1], g[0], t, T * V, 2, shape, msg, sizeof msg), "%s: %s",
              a->name, msg);
    free(x), free(y), free(le), free(g[0]), free(g[1]);
}

Test(cross_entropy, jit_and_aot_are_bit_identical)
{
    cr_assert_gt(kgt_each_aot_jit_pair("cross_entropy_fwd", fwd_pair), 0);
    cr_assert_gt(kgt_each_aot_jit_pair("cross_entropy_bwd", bwd_pair), 0);
}
