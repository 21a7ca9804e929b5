/* tests/test_lm_head.c: the lm_head family against tests/ref/lm_head_ref.c: every activation
 * dtype and weight format, with and without the norm, on edge shapes (one token, a block
 * boundary of 64 tokens crossed, odd H and V), null pointers and a wrong weight refused, and JIT
 * vs AOT bit-identity on the bundled specs' lm_head kernels. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/dtype.h"
#include "kgen/kernels.h"
#include "kgen/kgen.h"
#include "ref/ref.h"
#include "util/compare.h"
#include "util/jitp.h"
#include "util/tensors.h"
#include "util/weights.h"

TestSuite(lm_head, .init = kgt_suite_init, .fini = kgt_suite_fini);

/* One problem on T tokens: logits (fp32) and, with store_normed, the normed rows against the
 * reference. */
static void check(kg_dtype t, const char *wdt, int norm, long T, long H, long V)
{
    char problem[256];
    int fmt = kg_wt_fmt_from_name(wdt), fp8 = fmt >= KG_WT_E4M3;
    snprintf(problem, sizeof problem,
             "lm_head:dtype=%s,weight_dtype=%s,H=%ld,V=%ld,norm=%s,store_normed=%s,eps=1e-05",
             kg_dtype_name(t), wdt, H, V, norm ? "true" : "false", norm ? "true" : "false");
    const kg_kernel *k = kgt_jit(problem);
    unsigned long long seed = 1000 + (unsigned long long)(T * 31 + H * 7 + V);
    float *x = kgt_randn(t, T * H, seed), *gamma = kgt_randn(t, H, seed + 1);
    float *ws = kgt_randn(KG_F32, V, seed + 2);
    kg_wt w;
    float *W = kgt_wt_random(&w, fmt, KG_WL_KN, H, V, 0, 0.1f, seed + 3, 0, 0);
    void *xe = kgt_encode(t, x, T * H), *ge = kgt_encode(t, gamma, H);
    void *lo = kgt_poisoned(KG_F32, T * V), *no = kgt_poisoned(t, T * H);
    int rc = ((kg_lm_head_fn *)k->fn)(lo, norm ? no : NULL, xe, &w, fp8 ? ws : NULL,
                                      norm ? ge : NULL, T);
    cr_assert_eq(rc, KG_OK, "%s returned %d", k->name, rc);
    float *want = malloc((size_t)(T * V) * sizeof *want), *wn = malloc((size_t)(T * H) * 4);
    int narrow = fmt != KG_WT_F32 && fmt != KG_WT_F16; /* the GEMM rounds A to bf16 */
    lm_head_ref(want, wn, x, W, fp8 ? ws : NULL, norm ? gamma : NULL, 1e-5f,
                narrow ? kgt_round_bf16 : NULL, T, H, V);
    char msg[1024];
    long ls[2] = { T, V }, ns[2] = { T, H };
    cr_assert(kgt_close_to_ref(KG_F32, lo, want, 2, ls, 1e-3, 1e-3, msg, sizeof msg),
              "%s T=%ld logits: %s", k->name, T, msg);
    if (norm)
        cr_assert(kgt_close_to_ref(t, no, wn, 2, ns, t == KG_F32 ? 1e-5 : 1e-2, 1e-5, msg,
                                   sizeof msg), "%s T=%ld normed: %s", k->name, T, msg);
    kg_wt_free(&w);
    free(x), free(gamma), free(ws), free(W), free(xe), free(ge), free(lo), free(no);
    free(want), free(wn);
}

static const long SHAPES[][3] = { { 1, 7, 13 }, { 3, 256, 517 }, { 70, 64, 100 }, { 2, 1, 1 } };

Test(lm_head, every_dtype_and_weight_format, .timeout = 120 * KGT_TIME_SCALE)
{
    static const char *wdts[] = { "f32", "bf16", "fp16", "e4m3", "e4m3fn" };
    for (size_t d = 0; d < KGT_FLOAT_DTYPES; d++)
        for (size_t f = 0; f < sizeof wdts / sizeof wdts[0]; f++)
            for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++)
                check(kgt_float_dtypes[d], wdts[f], 1, SHAPES[s][0], SHAPES[s][1],
                      SHAPES[s][2]);
}

Test(lm_head, without_the_norm)
{
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++)
        check(KG_F32, "f32", 0, SHAPES[s][0], SHAPES[s][1], SHAPES[s][2]);
}

Test(lm_head, refusals)
{
    const kg_kernel *k = kgt_jit("lm_head:dtype=f32,weight_dtype=f32,H=8,V=5");
    kg_lm_head_fn *fn = (kg_lm_head_fn *)k->fn;
    float x[8] = { 1 }, g[8] = { 1 }, l[5];
    kg_wt w, bad;
    float *W = kgt_wt_random(&w, KG_WT_F32, KG_WL_KN, 8, 5, 0, 1.0f, 5, 0, 0);
    float *B = kgt_wt_random(&bad, KG_WT_F32, KG_WL_KN, 8, 6, 0, 1.0f, 5, 0, 0);
    cr_assert_eq(fn(l, NULL, x, &w, NULL, g, -1), KG_EARG, "T < 0 must be refused");
    cr_assert_eq(fn(NULL, NULL, NULL, &w, NULL, NULL, 0), KG_OK, "T = 0 is an empty call");
    cr_assert_eq(fn(l, NULL, x, &w, NULL, NULL, 1), KG_EARG, "a NULL gamma must be refused");
    cr_assert_eq(fn(l, NULL, x, &bad, NULL, g, 1), KG_EARG, "a [8, 6] weight must be refused");
    cr_assert_eq(fn(l, NULL, x, &w, NULL, g, 1), KG_OK);
    kgt_problem_rejected("lm_head:norm=false,store_normed=true", "store_normed");
    kg_wt_free(&w), kg_wt_free(&bad), free(W), free(B);
}

/* AOT (a) and JIT (j) builds on the same inputs, T = 3: the same logits and normed bytes. */
static void compare_builds(const kg_kernel *a, const kg_kernel *j)
{
    char dt[16], wdt[16];
    long H, V, T = 3;
    cr_assert(kg_problem_long(a->problem, "H", &H) && kg_problem_long(a->problem, "V", &V) &&
              kg_problem_str(a->problem, "dtype", dt, sizeof dt) &&
              kg_problem_str(a->problem, "weight_dtype", wdt, sizeof wdt), "%s", a->problem);
    kg_dtype t = (kg_dtype)kg_dtype_from_name(dt);
    int fmt = kg_wt_fmt_from_name(wdt);
    float *x = kgt_randn(t, T * H, 3), *g = kgt_randn(t, H, 4), *ws = kgt_randn(KG_F32, V, 5);
    void *xe = kgt_encode(t, x, T * H), *ge = kgt_encode(t, g, H);
    kg_wt w;
    float *W = kgt_wt_random(&w, fmt, KG_WL_KN, H, V, 0, 0.1f, 6, 0, 0);
    void *la = kgt_build_output(KG_F32, T * V, KGT_AOT), *lj = kgt_build_output(KG_F32, T * V,
                                                                                 KGT_JIT);
    void *na = kgt_build_output(t, T * H, KGT_AOT), *nj = kgt_build_output(t, T * H, KGT_JIT);
    cr_assert_eq(((kg_lm_head_fn *)a->fn)(la, na, xe, &w, ws, ge, T), KG_OK, "%s", a->name);
    cr_assert_eq(((kg_lm_head_fn *)j->fn)(lj, nj, xe, &w, ws, ge, T), KG_OK, "%s", a->name);
    char msg[1024];
    long ls[2] = { T, V }, ns[2] = { T, H };
    cr_assert(kgt_same_bytes(lj, la, KG_F32, T * V, 2, ls, msg, sizeof msg), "%s: %s", a->name,
              msg);
    if (strstr(a->problem, "store_normed=true"))
        cr_assert(kgt_same_bytes(nj, na, t, T * H, 2, ns, msg, sizeof msg), "%s: %s", a->name,
                  msg);
    kg_wt_free(&w);
    free(x), free(g), free(ws), free(xe), free(ge), free(W), free(la), free(lj), free(na);
    free(nj);
}

Test(lm_head, jit_and_aot_are_bit_identical)
{
    cr_assert_gt(kgt_each_aot_jit_pair("lm_head", compare_builds), 0,
                 "no AOT-built spec has an lm_head kernel");
}
