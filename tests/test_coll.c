/* tests/test_coll.c: the collectives (kgen/coll.h, kgp_all_reduce / kgp_all_gather /
 * kgp_barrier) on the single rank and on threads as ranks, against the plain loops of
 * tests/ref/coll_ref.c bit for bit, on odd sizes and every activation dtype; arguments that
 * disagree between ranks fail on every rank; a rank that leaves the group early fails the others'
 * collectives rather than leave them waiting. The MPI back end runs the same checks under
 * mpirun (tests/coll_mpi.c). */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coll_data.h"
#include "kgen/coll.h"
#include "ref/ref.h"
#include "util/ranks.h"

static const long SIZES[] = { 0, 1, 7, 33, 1001 };
#define NSIZES (sizeof SIZES / sizeof SIZES[0])

/* ---- one group's run ------------------------------------------------------------------------- */

typedef struct run {
    int R, dtype;
    long n;
    int inplace;
    int rc_reduce[KG_COLL_MAX_RANKS], rc_gather[KG_COLL_MAX_RANKS], rc_barrier[KG_COLL_MAX_RANKS];
    void *red[KG_COLL_MAX_RANKS], *gat[KG_COLL_MAX_RANKS];
} run;

static void rank_all(kg_coll *c, int r, void *arg)
{
    run *a = arg;
    int es = a->dtype ? 2 : 4;
    void *x = coll_data(r, a->n, a->dtype);
    a->gat[r] = malloc((size_t)(a->n * es * a->R + 1));
    a->rc_gather[r] = kgp_all_gather(kgp_coll(), a->gat[r], x, a->n * es);
    if (a->inplace) {
        a->rc_reduce[r] = kgp_all_reduce(c, x, x, a->n, a->dtype);
        a->red[r] = x;
    } else {
        a->red[r] = malloc((size_t)(a->n * es + 1));
        a->rc_reduce[r] = kgp_all_reduce(c, a->red[r], x, a->n, a->dtype);
        free(x);
    }
    a->rc_barrier[r] = kgp_barrier(c);
}

/* The group's results against the references, bit for bit. */
static void check_run(run *a)
{
    int es = a->dtype ? 2 : 4;
    void *x[KG_COLL_MAX_RANKS];
    for (int r = 0; r < a->R; r++)
        x[r] = coll_data(r, a->n, a->dtype);
    void *want_red = malloc((size_t)(a->n * es + 1)), *want_gat = malloc((size_t)(a->n * es * a->R
                                                                                   + 1));
    all_reduce_ref(want_red, (const void *const *)x, a->R, a->n, a->dtype);
    all_gather_ref(want_gat, (const void *const *)x, a->R, a->n * es);
    for (int r = 0; r < a->R; r++) {
        cr_assert_eq(a->rc_reduce[r], KG_OK, "R %d n %ld dtype %d rank %d: all-reduce rc %d",
                     a->R, a->n, a->dtype, r, a->rc_reduce[r]);
        cr_assert_eq(a->rc_gather[r], KG_OK, "rank %d: all-gather", r);
        cr_assert_eq(a->rc_barrier[r], KG_OK, "rank %d: barrier", r);
        for (long i = 0; i < a->n * es; i++)
            cr_assert_eq(((char *)a->red[r])[i], ((char *)want_red)[i],
                         "R %d n %ld dtype %d rank %d: all-reduce byte %ld", a->R, a->n,
                         a->dtype, r, i);
        cr_assert_eq(memcmp(a->gat[r], want_gat, (size_t)(a->n * es * a->R)), 0,
                     "R %d n %ld rank %d: all-gather", a->R, a->n, r);
        free(a->red[r]), free(a->gat[r]), free(x[r]);
    }
    free(want_red), free(want_gat);
}

/* ---- the back ends against the references ---------------------------------------------------- */

Test(coll, single_rank)
{
    cr_assert_eq(kgp_coll(), kg_coll_single(), "an unbound thread has the single rank");
    cr_assert_eq(kgp_coll_size(kgp_coll()), 1);
    cr_assert_eq(kgp_coll_rank(kgp_coll()), 0);
    for (int dt = 0; dt < 3; dt++)
        for (size_t i = 0; i < NSIZES; i++)
            for (int inplace = 0; inplace < 2; inplace++) {
                run a = { .R = 1, .dtype = dt, .n = SIZES[i], .inplace = inplace };
                rank_all(kg_coll_single(), 0, &a);
                check_run(&a);
            }
    kg_coll_free(kg_coll_single()); /* ignored */
    cr_assert_eq(kgp_coll_size(kg_coll_single()), 1);
}

Test(coll, threads_as_ranks, .timeout = 120)
{
    static const int RANKS[] = { 1, 2, 3, 4, 5 };
    int ran = 0;
    for (size_t k = 0; k < sizeof RANKS / sizeof RANKS[0]; k++)
        for (int dt = 0; dt < 3; dt++)
            for (size_t i = 0; i < NSIZES; i++) {
                run a = { .R = RANKS[k], .dtype = dt, .n = SIZES[i], .inplace = (int)i % 2 };
                cr_assert_eq(kgt_run_ranks(a.R, rank_all, &a), 0);
                check_run(&a);
                ran++;
            }
    cr_assert_eq(ran, 75);
}

/* Three ranks' bf16 all-reduce of 1, 2^-8, 2^-8: in fp32 the sum is 1 + 2^-7, a bf16 value;
 * rounding to bf16 after each step would give 1 (1 + 2^-8 is a tie, to even). So the sum is
 * fp32 and rounded once. */
typedef struct one {
    uint16_t y[3];
    int rc[3];
} one;

static void rank_one(kg_coll *c, int r, void *arg)
{
    one *a = arg;
    uint16_t x = kg_f32_to_bf16(r == 0 ? 1.0f : 0.00390625f);
    a->rc[r] = kgp_all_reduce(c, &a->y[r], &x, 1, KG_COLL_BF16);
}

Test(coll, bf16_rounded_once)
{
    one a;
    cr_assert_eq(kgt_run_ranks(3, rank_one, &a), 0);
    for (int r = 0; r < 3; r++) {
        cr_assert_eq(a.rc[r], KG_OK);
        cr_assert_eq(a.y[r], kg_f32_to_bf16(1.0078125f), "rank %d: 0x%04x", r, a.y[r]);
    }
}

/* ---- bad arguments --------------------------------------------------------------------------- */

typedef struct bad {
    int kind, R;
    int rc[KG_COLL_MAX_RANKS], after[KG_COLL_MAX_RANKS];
} bad;

/* Rank R-1 disagrees (kind 0: n + 1 elements; 1: a NULL buffer; 2: another dtype; 3: n < 0;
 * 4: a dtype that is none; 5: all-gather of other bytes); every rank must fail, and the group
 * must still work afterwards. */
static void rank_bad(kg_coll *c, int r, void *arg)
{
    bad *a = arg;
    float x[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, y[64];
    int odd = r == a->R - 1;
    switch (a->kind) {
    case 0: a->rc[r] = kgp_all_reduce(c, y, x, odd ? 6 : 5, KG_COLL_F32); break;
    case 1: a->rc[r] = kgp_all_reduce(c, odd ? NULL : y, x, 5, KG_COLL_F32); break;
    case 2: a->rc[r] = kgp_all_reduce(c, y, x, 4, odd ? KG_COLL_BF16 : KG_COLL_F32); break;
    case 3: a->rc[r] = kgp_all_reduce(c, y, x, odd ? -1 : 3, KG_COLL_F32); break;
    case 4: a->rc[r] = kgp_all_reduce(c, y, x, 3, odd ? 7 : KG_COLL_F32); break;
    case 5: a->rc[r] = kgp_all_gather(c, y, x, odd ? 12 : 8); break;
    }
    a->after[r] = kgp_all_reduce(c, y, x, 8, KG_COLL_F32);
    if (a->after[r] == KG_OK && y[7] != 8.0f * (float)a->R)
        a->after[r] = -1;
}

Test(coll, disagreeing_arguments_fail_on_every_rank, .timeout = 60)
{
    for (int R = 1; R <= 3; R++)
        for (int kind = 0; kind < 6; kind++) {
            if (R == 1 && (kind == 0 || kind == 2 || kind == 5))
                continue; /* one rank cannot disagree with itself */
            bad a = { .kind = kind, .R = R };
            cr_assert_eq(kgt_run_ranks(R, rank_bad, &a), 0);
            for (int r = 0; r < R; r++) {
                cr_assert_eq(a.rc[r], KG_EARG, "R %d kind %d rank %d: rc %d", R, kind, r,
                             a.rc[r]);
                cr_assert_eq(a.after[r], KG_OK, "R %d kind %d rank %d: the group after", R,
                             kind, r);
            }
        }
}

Test(coll, bad_groups_and_null)
{
    kg_coll *c[2];
    cr_assert_eq(kg_coll_threads(0, c), KG_EARG, "no ranks");
    cr_assert_eq(kg_coll_threads(-3, c), KG_EARG, "a negative size");
    cr_assert_eq(kg_coll_threads(KG_COLL_MAX_RANKS + 1, c), KG_EARG, "more ranks than the most");
    cr_assert_eq(kg_coll_threads(2, NULL), KG_EARG, "nowhere to put the ranks");
    float x = 1, y;
    cr_assert_eq(kgp_all_reduce(NULL, &y, &x, 1, KG_COLL_F32), KG_EARG);
    cr_assert_eq(kgp_all_gather(NULL, &y, &x, 4), KG_EARG);
    cr_assert_eq(kgp_barrier(NULL), KG_EARG);
    cr_assert_eq(kgp_all_reduce(kg_coll_single(), &y, &x, 1, 3), KG_EARG, "dtype 3");
    cr_assert_eq(kgp_all_gather(kg_coll_single(), &y, NULL, 4), KG_EARG, "x NULL");
    cr_assert_eq(kgp_all_gather(kg_coll_single(), &y, &x, -4), KG_EARG, "bytes < 0");
    cr_assert_eq(kgp_all_reduce(kg_coll_single(), &y, &x, 0x7fffffffffffffffL, 0), KG_EARG,
                 "n past what fp32 sums can hold");
}

/* Binding: a thread's communicator is its own; bind returns the one before. */
Test(coll, binding)
{
    kg_coll *c[3];
    cr_assert_eq(kg_coll_threads(3, c), KG_OK);
    cr_assert_eq(kgp_coll_rank(c[2]), 2);
    cr_assert_eq(kgp_coll_size(c[2]), 3);
    cr_assert_eq(kg_coll_bind(c[1]), kg_coll_single());
    cr_assert_eq(kgp_coll(), c[1]);
    cr_assert_eq(kg_coll_bind(NULL), c[1]);
    cr_assert_eq(kgp_coll(), kg_coll_single());
    for (int r = 0; r < 3; r++)
        kg_coll_free(c[r]);
}

/* ---- a rank that leaves ------------------------------------------------------------------------ */

/* Each rank's thread runs a script: `steps` all-reduces of the sizes in n[] (n[i] <= 8), then
 * frees its communicator (leaves), after `delay_ms` if set; rc[r][i] is what step i returned. */
typedef struct script {
    kg_coll *c;
    int steps, delay_ms;
    long n[4];
    int rc[4];
    float y[4];
} script;

static void *run_script(void *p)
{
    script *s = p;
    float x[8] = { 1, 1, 1, 1, 1, 1, 1, 1 }, y[8] = { 0 };
    for (int i = 0; i < s->steps; i++) {
        s->rc[i] = kgp_all_reduce(s->c, y, x, s->n[i], KG_COLL_F32);
        s->y[i] = y[0];
    }
    if (s->delay_ms)
        nanosleep(&(struct timespec){ 0, s->delay_ms * 1000000L }, NULL);
    kg_coll_free(s->c);
    return NULL;
}

/* The ranks of s[] (R of them) run their scripts at once. */
static void run_scripts(script *s, int R)
{
    kg_coll *c[4];
    pthread_t t[4];
    cr_assert_eq(kg_coll_threads(R, c), KG_OK);
    for (int r = 0; r < R; r++) {
        s[r].c = c[r];
        cr_assert_eq(pthread_create(&t[r], NULL, run_script, &s[r]), 0);
    }
    for (int r = 0; r < R; r++)
        pthread_join(t[r], NULL);
}

/* A rank that stops early (it failed alone) leaves the group when its communicator is freed:
 * the others' collectives fail at once or wake and fail, and none waits forever (the test's
 * timeout is the hang). */
Test(coll, a_rank_that_leaves_fails_the_others, .timeout = 60)
{
    /* rank 2 leaves at once, or 50 ms later while the others wait */
    for (int delay = 0; delay <= 50; delay += 50) {
        script s[3] = { { .steps = 2, .n = { 8, 8 } }, { .steps = 2, .n = { 8, 8 } },
                        { .steps = 0, .delay_ms = delay } };
        run_scripts(s, 3);
        for (int r = 0; r < 2; r++)
            for (int i = 0; i < 2; i++)
                cr_assert_eq(s[r].rc[i], KG_EARG, "delay %d rank %d step %d: rc %d", delay, r,
                             i, s[r].rc[i]);
    }
    /* rank 1 stops on a step of its own (an all-reduce of 1 where rank 0 reduces 8: both fail)
     * and leaves; rank 0's next step fails rather than wait for it */
    script s[2] = { { .steps = 2, .n = { 8, 1 } }, { .steps = 1, .n = { 1 } } };
    run_scripts(s, 2);
    cr_assert_eq(s[0].rc[0], KG_EARG);
    cr_assert_eq(s[1].rc[0], KG_EARG);
    cr_assert_eq(s[0].rc[1], KG_EARG, "rank 0 after rank 1 left: rc %d", s[0].rc[1]);
}

/* Leaving after the last collective disturbs nothing: every rank's last step completes, however
 * the ranks are scheduled around the one that leaves first (many rounds). */
Test(coll, leaving_at_the_end_is_clean, .timeout = 60)
{
    for (int round = 0; round < 300; round++) {
        script s[3];
        for (int r = 0; r < 3; r++)
            s[r] = (script){ .steps = 4, .n = { 8, 1, 8, 3 }, .delay_ms = r == 1 && round % 2 };
        run_scripts(s, 3);
        for (int r = 0; r < 3; r++)
            for (int i = 0; i < 4; i++) {
                cr_assert_eq(s[r].rc[i], KG_OK, "round %d rank %d step %d", round, r, i);
                cr_assert_eq(s[r].y[i], 3.0f, "round %d rank %d step %d: %g", round, r, i,
                             (double)s[r].y[i]);
            }
    }
}
