/* tests/test_router_topk.c: the router_topk family against tests/ref/router_topk_ref.c: every
 * option (SIGMOID / SOFTMAX, ACT1 / ACT2, norm_topk_prob, bias, both x layouts, eager
 * affinities, skipped indices, every dtype) on edge shapes (one expert, k = E, T = 1, E not a
 * power of two, a block boundary of 64 tokens crossed), deliberately tied logits, refused
 * problems and calls, names that parse back, and JIT vs AOT bit-identity. The inputs are on a
 * coarse grid (x in halves, W in sixteenths), so every logit is exact in fp32 whatever the
 * GEMM's order: the expert indices are compared exactly, ties included. */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/dtype.h"
#include "kgen/kernels.h"
#include "kgen/kgen.h"
#include "ref/moe_ref.h"
#include "util/compare.h"
#include "util/jitp.h"
#include "util/tensors.h"
#include "util/weights.h"

TestSuite(router_topk, .init = kgt_suite_init, .fini = kgt_suite_fini);

/* ---- one problem against the reference --------------------------------------------------- */

typedef struct rcase {
    kg_dtype t, ot;     /* dtype, out_dtype */
    long T, H, E, K;
    int softmax, pre, norm, bias, ht, eager, skipidx;
} rcase;

/* n values on a grid: (s % span - span / 2) * step, from a small LCG. */
static float *grid(long n, unsigned seed, int span, float step)
{
    float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof *x);
    unsigned s = seed * 2654435761u + 12345u;
    for (long i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)((int)((s >> 8) % (unsigned)span) - span / 2) * step;
    }
    return x;
}

static void problem_of(const rcase *r, char *p, size_t len)
{
    snprintf(p, len, "router_topk:dtype=%s,out_dtype=%s,H=%ld,E=%ld,k=%ld,act_fn=%s,"
             "router_pre_norm=%s,norm_topk_prob=%s,bias=%s,x_layout=%s,return_eager_affi=%s,"
             "skip_store_expert_index=%s", kg_dtype_name(r->t), kg_dtype_name(r->ot), r->H, r->E,
             r->K, r->softmax ? "SOFTMAX" : "SIGMOID", r->pre ? "true" : "false",
             r->norm ? "true" : "false", r->bias ? "true" : "false", r->ht ? "HT" : "TH",
             r->eager ? "true" : "false", r->skipidx ? "true" : "false");
}

static int wt_fmt(kg_dtype t) { return t == KG_F32 ? KG_WT_F32 : t == KG_F16 ? KG_WT_F16 : KG_WT_BF16; }

/* The kernel's outputs, decoded. */
typedef struct rout {
    float *logits, *aff, *eager;
    uint32_t *idx;
} rout;

/* Runs case r on x (in the case's layout), W and bias (NULL without); fills o. */
static void run_kernel(const rcase *r, const float *x, const float *W, const float *bias,
                       rout *o)
{
    char problem[512];
    problem_of(r, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    long T = r->T, E = r->E, K = r->K;
    kg_wt w;
    kgt_wt_from_values(&w, wt_fmt(r->t), KG_WL_KN, r->H, E, W);
    void *xe = kgt_encode(r->t, x, T * r->H), *be = bias ? kgt_encode(r->t, bias, E) : NULL;
    void *lo = kgt_poisoned(r->ot, T * E), *ao = kgt_poisoned(r->ot, T * E);
    uint32_t *io = r->skipidx ? NULL : kgt_poisoned(KG_F32, T * K);
    float *eo = r->eager ? kgt_poisoned(KG_F32, T * K) : NULL;
    int rc = ((kg_router_topk_fn *)k->fn)(lo, io, ao, eo, xe, &w, be, T);
    cr_assert_eq(rc, KG_OK, "%s returned %d", k->name, rc);
    o->logits = kgt_decode(r->ot, lo, T * E);
    o->aff = kgt_decode(r->ot, ao, T * E);
    o->idx = io, o->eager = eo;
    kg_wt_free(&w);
    free(xe), free(be), free(lo), free(ao);
}

static void check(const rcase *r, unsigned seed)
{
    long T = r->T, H = r->H, E = r->E, K = r->K;
    float *x = grid(T * H, seed, 5, 0.5f), *W = grid(H * E, seed + 1, 17, 1.0f / 16);
    float *bias = r->bias ? grid(E, seed + 2, 9, 0.25f) : NULL;
    float *lw = malloc((size_t)(T * E) * 4), *aw = malloc((size_t)(T * E) * 4);
    float *ew = malloc((size_t)(T * K) * 4);
    int32_t *iw = malloc((size_t)(T * K) * 4);
    router_ref_opts ro = { r->softmax, r->pre, r->norm && r->pre, r->ht };
    router_topk_ref(lw, iw, aw, ew, x, W, bias, &ro, T, H, E, K);
    rout o;
    run_kernel(r, x, W, bias, &o);
    char problem[512], msg[1024];
    problem_of(r, problem, sizeof problem);
    long ls[2] = { T, E }, ks[2] = { T, K };
    double rtol = r->ot == KG_F32 ? 1e-5 : 1e-2;
    /* exact grid values: the logits are the reference's bits (rounded to the output dtype) */
    for (long i = 0; i < T * E; i++)
        lw[i] = kgt_round(r->ot, lw[i]);
    cr_assert(kgt_allclose_shaped(o.logits, lw, 2, ls, 0, 0, msg, sizeof msg),
              "%s T=%ld logits: %s", problem, T, msg);
    if (o.idx)
        cr_assert(kgt_equal_i32((const int32_t *)o.idx, iw, T * K, msg, sizeof msg),
                  "%s T=%ld expert_index: %s", problem, T, msg);
    for (long i = 0; i < T * E; i++)
        aw[i] = kgt_round(r->ot, aw[i]);
    cr_assert(kgt_allclose_shaped(o.aff, aw, 2, ls, rtol, 1e-6, msg, sizeof msg),
              "%s T=%ld expert_affinities: %s", problem, T, msg);
    if (o.eager)
        cr_assert(kgt_allclose_shaped(o.eager, ew, 2, ks, 1e-5, 1e-6, msg, sizeof msg),
                  "%s T=%ld eager_affinities: %s", problem, T, msg);
    free(x), free(W), free(bias), free(lw), free(aw), free(ew), free(iw);
    free(o.logits), free(o.aff), free(o.idx), free(o.eager);
}

/* ---- option sweeps ------------------------------------------------------------------------- */

/* T, H, E, K: one expert; k = E; T = 1; E not a power of two (100, 513 refused below); a block
 * boundary (64 tokens) crossed; the largest E and K. */
static const long SHAPES[][4] = { { 1, 1, 1, 1 }, { 3, 7, 3, 3 }, { 1, 33, 6, 2 },
                                  { 70, 130, 6, 2 }, { 5, 64, 100, 8 }, { 2, 16, 512, 8 },
                                  { 4, 20, 5, 1 } };

Test(router_topk, every_option_on_edge_shapes, .timeout = 240 * KGT_TIME_SCALE)
{
    unsigned seed = 1;
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++)
        for (int m = 0; m < 2 * 3 * 2; m++) {
            /* act x {ACT2, ACT1, ACT1+norm} x bias; the layout, eager and skipidx vary too */
            rcase r = { KG_BF16, KG_BF16, SHAPES[s][0], SHAPES[s][1], SHAPES[s][2],
                        SHAPES[s][3], m & 1, (m >> 1) % 3 != 0, (m >> 1) % 3 == 2, m >= 6,
                        (int)(s + m) % 2, (int)(s + m / 2) % 2, (int)(s + m / 3) % 3 == 0 };
            check(&r, seed++);
        }
}

Test(router_topk, every_dtype_and_output_dtype)
{
    unsigned seed = 100;
    for (size_t d = 0; d < KGT_FLOAT_DTYPES; d++)
        for (size_t od = 0; od < KGT_FLOAT_DTYPES; od++)
            for (int m = 0; m < 4; m++) {
                rcase r = { kgt_float_dtypes[d], kgt_float_dtypes[od], 9, 40, 7, 3, m & 1,
                            m >= 2, m == 3, 1, 0, 1, 0 };
                check(&r, seed++);
            }
}

/* norm_topk_prob without router_pre_norm is ignored (the same kernel, by name and by result). */
Test(router_topk, norm_without_pre_norm_is_ignored)
{
    kgg_kernel a = { 0 }, b = { 0 };
    cr_assert_eq(kgg_problem(kgt_gen(), "router_topk:router_pre_norm=false,norm_topk_prob=true",
                             &a), KG_OK, "%s", kgg_error(kgt_gen()));
    cr_assert_eq(kgg_problem(kgt_gen(), "router_topk:router_pre_norm=false", &b), KG_OK);
    cr_assert_str_eq(a.name, b.name);
    kgg_kernel_clear(&a), kgg_kernel_clear(&b);
    rcase r = { KG_F32, KG_F32, 6, 24, 9, 4, 1, 0, 1, 1, 0, 1, 0 };
    check(&r, 77);
}

/* ---- ties ------------------------------------------------------------------------------------ */

/* Experts 1, 4 and 6 share one weight column (and bias), 2 and 5 another one of larger logits:
 * every token's logits tie in two groups, and the lower expert must come first in each. With
 * x > 0 and column 2/5 = 2 * column 1/4/6 > 0 the order is 2, 5, 1, 4, 6 whatever the
 * activation. */
Test(router_topk, ties_go_to_the_lower_expert)
{
    enum { T = 3, H = 8, E = 7, K = 5 };
    float x[T * H], W[H * E], bias[E] = { 0 };
    for (int i = 0; i < T * H; i++)
        x[i] = 0.5f + (float)(i % 3) * 0.25f;
    for (int h = 0; h < H; h++)
        for (int e = 0; e < E; e++) {
            int col1 = e == 1 || e == 4 || e == 6, col2 = e == 2 || e == 5;
            W[h * E + e] = col2 ? 0.25f : col1 ? 0.125f : -0.125f;
        }
    static const uint32_t want[K] = { 2, 5, 1, 4, 6 };
    for (int m = 0; m < 6; m++) {
        rcase r = { KG_F32, KG_F32, T, H, E, K, m & 1, m >= 2, m >= 4, 1, 0, 1, 0 };
        rout o;
        run_kernel(&r, x, W, bias, &o);
        for (int t = 0; t < T; t++)
            for (int j = 0; j < K; j++)
                cr_assert_eq(o.idx[t * K + j], want[j], "m=%d token %d: expert_index[%d] = %u, "
                             "want %u", m, t, j, o.idx[t * K + j], want[j]);
        /* tied experts get equal affinities */
        for (int t = 0; t < T; t++)
            cr_assert(o.aff[t * E + 1] == o.aff[t * E + 6] && o.aff[t * E + 2] == o.aff[t * E + 5],
                      "m=%d token %d: tied experts' affinities differ", m, t);
        free(o.logits), free(o.aff), free(o.idx), free(o.eager);
        check(&r, 900 + (unsigned)m); /* the grid inputs against the reference too */
    }
}

/* Sigmoid saturates: logits 40 and 41 both activate to 1.0f, yet the ranking follows the fp32
 * logits (router_topk.md step 2), so the expert of 41 comes first even at the higher index. */
Test(router_topk, ranking_follows_the_logits_where_sigmoid_saturates)
{
    enum { T = 1, H = 1, E = 4, K = 2 };
    float x[1] = { 1.0f }, W[E] = { 3.0f, 40.0f, -1.0f, 41.0f }, bias[E] = { 0 };
    rcase r = { KG_F32, KG_F32, T, H, E, K, 0, 1, 0, 0, 0, 1, 0 };
    rout o;
    run_kernel(&r, x, W, bias, &o);
    cr_assert(o.aff[1] == 1.0f && o.aff[3] == 1.0f, "sigmoid(40), sigmoid(41) = %g, %g",
              o.aff[1], o.aff[3]);
    cr_assert(o.idx[0] == 3 && o.idx[1] == 1, "expert_index = %u, %u, want 3, 1", o.idx[0],
              o.idx[1]);
    free(o.logits), free(o.aff), free(o.idx), free(o.eager);
}

/* ---- refusals and names ---------------------------------------------------------------------- */

Test(router_topk, refused_problems_name_the_key)
{
    static const struct { const char *problem, *want; } bad[] = {
        { "router_topk:E=3,k=4", "key 'k'" },
        { "router_topk:k=9,E=16", "key 'k'" },
        { "router_topk:k=0", "key 'k'" },
        { "router_topk:E=513", "key 'E'" },
        { "router_topk:skip_store_router_logits=true", "key 'skip_store_router_logits'" },
        { "router_topk:act_fn=RELU", "key 'act_fn'" },
        { "router_topk:x_layout=TBH", "key 'x_layout'" },
        { "router_topk:dtype=e4m3", "key 'dtype'" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        kgt_problem_rejected(bad[i].problem, bad[i].want);
}

Test(router_topk, refused_calls)
{
    const kg_kernel *k = kgt_jit("router_topk:dtype=f32,H=8,E=5,k=2,bias=true");
    kg_router_topk_fn *fn = (kg_router_topk_fn *)k->fn;
    float x[8] = { 1 }, b[5] = { 0 }, l[5], a[5];
    uint32_t idx[2];
    kg_wt w, bad;
    float *W = kgt_wt_random(&w, KG_WT_F32, KG_WL_KN, 8, 5, 0, 1.0f, 5, 0, 0);
    float *B = kgt_wt_random(&bad, KG_WT_F32, KG_WL_KN, 8, 6, 0, 1.0f, 5, 0, 0);
    cr_assert_eq(fn(l, idx, a, NULL, x, &w, b, -1), KG_EARG, "T < 0 must be refused");
    cr_assert_eq(fn(NULL, NULL, NULL, NULL, NULL, &w, NULL, 0), KG_OK, "T = 0 is an empty call");
    cr_assert_eq(fn(l, idx, a, NULL, x, &w, NULL, 1), KG_EARG, "a NULL w_bias must be refused");
    cr_assert_eq(fn(l, NULL, a, NULL, x, &w, b, 1), KG_EARG, "a NULL expert_index");
    cr_assert_eq(fn(l, idx, NULL, NULL, x, &w, b, 1), KG_EARG, "a NULL expert_affinities");
    cr_assert_eq(fn(l, idx, a, NULL, x, &bad, b, 1), KG_EARG, "an [8, 6] weight");
    cr_assert_eq(fn(l, idx, a, NULL, x, &w, b, 1), KG_OK);
    kg_wt_free(&w), kg_wt_free(&bad), free(W), free(B);
}

/* Every option's spelling: the name parses back to the keys it spells, and names differ. */
Test(router_topk, names_parse_back_and_are_unique)
{
    static char names[256][256];
    int n = 0;
    for (int m = 0; m < 256; m++) {
        /* bits: out f32, softmax, pre, norm, bias, x [H, T], eager, skipidx */
        rcase r = { KG_BF16, (m & 1) ? KG_F32 : KG_BF16, 1, 64, 8, 2, (m >> 1) & 1,
                    (m >> 2) & 1, (m >> 3) & 1, (m >> 4) & 1, (m >> 5) & 1, (m >> 6) & 1,
                    (m >> 7) & 1 };
        if (r.norm && !r.pre)
            continue; /* the same kernel as without norm (norm_without_pre_norm_is_ignored) */
        char problem[512];
        problem_of(&r, problem, sizeof problem);
        kgt_name_parses_back(problem, names[n], sizeof names[0]);
        for (int i = 0; i < n; i++)
            cr_assert_str_neq(names[i], names[n], "two problems share the name %s", names[n]);
        n++;
    }
    cr_assert_eq(n, 192);
}

/* ---- JIT vs AOT ------------------------------------------------------------------------------ */

/* The option of a problem string as a flag. */
static int flag(const char *problem, const char *key)
{
    char v[16];
    return kg_problem_str(problem, key, v, sizeof v) && !strcmp(v, "true");
}

/* AOT (a) and JIT (j) builds on the same inputs, T = 3 (normal values): the same bytes of every
 * output. */
static void compare_builds(const kg_kernel *a, const kg_kernel *j)
{
    char dt[16], odt[16], layout[8];
    long H, E, K, T = 3;
    cr_assert(kg_problem_long(a->problem, "H", &H) && kg_problem_long(a->problem, "E", &E) &&
              kg_problem_long(a->problem, "k", &K) &&
              kg_problem_str(a->problem, "dtype", dt, sizeof dt) &&
              kg_problem_str(a->problem, "out_dtype", odt, sizeof odt) &&
              kg_problem_str(a->problem, "x_layout", layout, sizeof layout), "%s", a->problem);
    kg_dtype t = (kg_dtype)kg_dtype_from_name(dt), ot = (kg_dtype)kg_dtype_from_name(odt);
    int bias = flag(a->problem, "bias"), eager = flag(a->problem, "return_eager_affi");
    int idx = !flag(a->problem, "skip_store_expert_index");
    float *x = kgt_randn(t, T * H, 3), *b = kgt_randn(t, E, 4);
    void *xe = kgt_encode(t, x, T * H), *be = kgt_encode(t, b, E);
    kg_wt w;
    float *W = kgt_wt_random(&w, wt_fmt(t), KG_WL_KN, H, E, 0, 0.1f, 6, 0, 0);
    void *out[2][4];
    for (int bld = 0; bld < 2; bld++) {
        out[bld][0] = kgt_build_output(ot, T * E, bld);
        out[bld][1] = kgt_build_output(KG_F32, T * K, bld);
        out[bld][2] = kgt_build_output(ot, T * E, bld);
        out[bld][3] = kgt_build_output(KG_F32, T * K, bld);
        const kg_kernel *k = bld == KGT_AOT ? a : j;
        int rc = ((kg_router_topk_fn *)k->fn)(out[bld][0], out[bld][1], out[bld][2],
                                               out[bld][3], xe, &w, bias ? be : NULL, T);
        cr_assert_eq(rc, KG_OK, "%s (%s)", a->name, bld == KGT_AOT ? "AOT" : "JIT");
    }
    char msg[1024];
    long ls[2] = { T, E }, ks[2] = { T, K };
    cr_assert(kgt_same_bytes(out[KGT_JIT][0], out[KGT_AOT][0], ot, T * E, 2, ls, msg,
                             sizeof msg), "%s logits: %s", a->name, msg);
    cr_assert(kgt_same_bytes(out[KGT_JIT][2], out[KGT_AOT][2], ot, T * E, 2, ls, msg,
                             sizeof msg), "%s affinities: %s", a->name, msg);
    if (idx && E > 1) /* an index is a u32: compared as its bytes */
        cr_assert(kgt_builds_equal(out[KGT_JIT][1], out[KGT_AOT][1], T * K, 4, msg, sizeof msg),
                  "%s expert_index: %s", a->name, msg);
    for (long i = 0; idx && E == 1 && i < T; i++) /* one expert: every index is 0 */
        cr_assert(((uint32_t *)out[KGT_JIT][1])[i] == 0 && ((uint32_t *)out[KGT_AOT][1])[i] == 0,
                  "%s expert_index[%ld] is not 0", a->name, i);
    if (eager)
        cr_assert(kgt_same_bytes(out[KGT_JIT][3], out[KGT_AOT][3], KG_F32, T * K, 2, ks, msg,
                                 sizeof msg), "%s eager: %s", a->name, msg);
    (void)layout;
    kg_wt_free(&w);
    for (int bld = 0; bld < 2; bld++)
        for (int i = 0; i < 4; i++)
            free(out[bld][i]);
    free(x), free(b), free(xe), free(be), free(W);
}

Test(router_topk, jit_and_aot_are_bit_identical)
{
    cr_assert_gt(kgt_each_aot_jit_pair("router_topk", compare_builds), 0,
                 "no AOT-built spec has a router_topk kernel");
}
