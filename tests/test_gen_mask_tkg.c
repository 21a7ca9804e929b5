/* tests/test_gen_mask_tkg.c: the standalone gen_mask_tkg against tests/ref (gen_mask_tkg_ref)
 * bit for bit: with and without the sliding window (the circular wrap included) and the active
 * mask, s_active 1 and 7, one head; names parse back, refused problems, per-call checks, and
 * JIT vs AOT bit-identity for every spec's kernels. (shared/vectors has no gen_mask_tkg case.) */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "kgen/aot.h"
#include "kgen/kernels.h"
#include "kgen/kgen.h"
#include "ref/ref.h"
#include "util/compare.h"
#include "util/jitp.h"

typedef struct mcall {
    long B, H, sa, sp;
    int swa, act;
    float *pos, *start;
    uint8_t *amask;
} mcall;

/* Positions as upstream's tests make them, windows of sp / 3 + 1 slots wrapping in the cache,
 * and a random active mask. */
static void make(mcall *c, unsigned long long seed)
{
    long n = c->B * c->sa, na = c->sa * c->B * c->H * c->sa;
    c->pos = malloc(sizeof(float) * (size_t)n), c->start = malloc(sizeof(float) * (size_t)n);
    c->amask = malloc((size_t)na);
    for (long b = 0; b < c->B; b++)
        for (long i = 0; i < c->sa; i++) {
            long prior = c->sp - c->sa, p = prior > 0 ? (3 * b + 3 * c->sp / 4) % prior : 0;
            long w = c->sp / 3 + 1, st = (((p + i - w + 1) % c->sp) + c->sp) % c->sp;
            c->pos[b * c->sa + i] = (float)(p + (c->swa ? i : 0));
            c->start[b * c->sa + i] = (float)st;
        }
    for (long i = 0; i < na; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        c->amask[i] = (uint8_t)((seed >> 33) % 3); /* 0, 1 and 2: any nonzero attends */
    }
}

static int run(const kg_kernel *k, const mcall *c, uint8_t *out)
{
    return ((kg_gen_mask_tkg_fn *)k->fn)(out, c->pos, c->start, c->amask, c->B, c->sp);
}

static void check(long B, long H, long sa, long sp, int swa, int act)
{
    mcall c = { B, H, sa, sp, swa, act, 0, 0, 0 };
    make(&c, (unsigned long long)(B * 131 + sp));
    char problem[256];
    snprintf(problem, sizeof problem,
             "gen_mask_tkg:q_head=%ld,s_active=%ld,sliding_window=%s,active_mask=%s", H, sa,
             swa ? "true" : "false", act ? "true" : "false");
    const kg_kernel *k = kgt_jit(problem);
    long n = sp * B * H * sa;
    uint8_t *got = malloc((size_t)n), *want = malloc((size_t)n);
    memset(got, 0xff, (size_t)n);
    cr_assert_eq(run(k, &c, got), KG_OK, "%s refused", k->name);
    gen_mask_tkg_ref(want, c.pos, swa ? c.start : NULL, act ? c.amask : NULL, B, H, sa, sp);
    char msg[512];
    cr_assert(kgt_equal_u8(got, want, n, msg, sizeof msg), "%s B=%ld sp=%ld: %s", k->name, B, sp,
              msg);
    long ones = 0;
    for (long i = 0; i < n; i++)
        ones += want[i];
    cr_assert(ones > 0 && ones < n, "%s: a mask of one value tests little", k->name);
    free(got), free(want), free(c.pos), free(c.start), free(c.amask);
}

TestSuite(gen_mask_tkg, .init = kgt_suite_init, .fini = kgt_suite_fini);

Test(gen_mask_tkg, every_option_against_the_reference)
{
    static const long SHAPES[][4] = { { 4, 1, 5, 1024 }, { 2, 3, 7, 33 }, { 1, 8, 1, 128 },
                                      { 3, 2, 2, 7 } };
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++)
        for (int swa = 0; swa < 2; swa++)
            for (int act = 0; act < 2; act++)
                check(SHAPES[s][0], SHAPES[s][1], SHAPES[s][2], SHAPES[s][3], swa, act);
}

Test(gen_mask_tkg, per_call_checks)
{
    const kg_kernel *k = kgt_jit("gen_mask_tkg:q_head=2,s_active=3");
    kg_gen_mask_tkg_fn *fn = (kg_gen_mask_tkg_fn *)k->fn;
    float pos[3] = { 1, 1, 1 };
    uint8_t act[18] = { 0 }, out[64];
    cr_assert_eq(fn(out, pos, NULL, act, 1, 2), KG_EARG, "s_prior < s_active");
    cr_assert_eq(fn(out, pos, NULL, act, -1, 8), KG_EARG, "B < 0");
    cr_assert_eq(fn(out, pos, NULL, NULL, 1, 8), KG_EARG, "no active mask");
    cr_assert_eq(fn(NULL, NULL, NULL, NULL, 0, 8), KG_OK, "B = 0 is an empty call");
}

Test(gen_mask_tkg, bad_problems_and_names)
{
    kgt_problem_rejected("gen_mask_tkg:s_active=9", "key 's_active'");
    kgt_problem_rejected("gen_mask_tkg:q_head=0", "key 'q_head'");
    kgt_problem_rejected("gen_mask_tkg:s_active=4,s_prior=3", "key 's_prior'");
    static const char *const P[] = { "gen_mask_tkg:q_head=4", "gen_mask_tkg:sliding_window=true",
                                     "gen_mask_tkg:active_mask=false,s_active=7" };
    char names[3][256];
    for (size_t i = 0; i < 3; i++) {
        kgt_name_parses_back(P[i], names[i], sizeof names[0]);
        for (size_t j = 0; j < i; j++)
            cr_assert_str_neq(names[i], names[j], "two problems share the name %s", names[i]);
    }
}

static void compare_builds(const kg_kernel *a, const kg_kernel *j)
{
    long H, sa;
    char swa[8], act[8];
    cr_assert(kg_problem_long(a->problem, "q_head", &H) &&
              kg_problem_long(a->problem, "s_active", &sa) &&
              kg_problem_str(a->problem, "sliding_window", swa, sizeof swa) &&
              kg_problem_str(a->problem, "active_mask", act, sizeof act), "%s", a->problem);
    mcall c = { 3, H, sa, 300, !strcmp(swa, "true"), !strcmp(act, "true"), 0, 0, 0 };
    make(&c, 5);
    long n = c.sp * c.B * H * sa;
    uint8_t *oa = kgt_filled((size_t)n, KGT_AOT), *oj = kgt_filled((size_t)n, KGT_JIT);
    cr_assert_eq(run(a, &c, oa), KG_OK, "%s (AOT)", a->name);
    cr_assert_eq(run(j, &c, oj), KG_OK, "%s (JIT)", a->name);
    char msg[512];
    cr_assert(kgt_builds_equal(oj, oa, n, 1, msg, sizeof msg), "%s: %s", a->name, msg);
    free(oa), free(oj), free(c.pos), free(c.start), free(c.amask);
}

Test(gen_mask_tkg, jit_and_aot_are_bit_identical)
{
    cr_assert_gt(kgt_each_aot_jit_pair("gen_mask_tkg", compare_builds), 0,
                 "no AOT-built spec has a gen_mask_tkg kernel");
}
