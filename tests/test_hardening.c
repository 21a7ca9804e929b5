/* test_hardening.c: sizes from outside input through the runtime's API (the CLI's view of the
 * same is tests/bad/run.sh): the checked-size helper at its edges, and each runtime entry that
 * forms a size from a caller's numbers refusing one that overflows instead of wrapping it. */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "kgen/ckd.h"
#include "kgen/kgen.h"
#include "kgen/npy.h"

Test(ckd, multiplies_exactly_or_says_it_overflowed)
{
    size_t r = 0;
    cr_expect_eq(kg_ckd_mul(&r, (size_t)1 << 31, (size_t)1 << 32), 0);
    cr_expect_eq(r, (size_t)1 << 63);
    cr_expect_neq(kg_ckd_mul(&r, (size_t)1 << 32, (size_t)1 << 32), 0);
    cr_expect_neq(kg_ckd_add(&r, SIZE_MAX, 1), 0);
    cr_expect_eq(kg_ckd_round_up(&r, 65, 64), 0);
    cr_expect_eq(r, 128);
    cr_expect_neq(kg_ckd_round_up(&r, SIZE_MAX - 10, 64), 0);
}

Test(ckd, refuses_a_shape_that_overflows_before_a_zero)
{
    size_t r = 0;
    const long fits[3] = { 0, 1L << 62, 1L << 62 }, wraps[3] = { 1L << 62, 1L << 62, 0 };
    const long neg[2] = { 4, -1 }, wide[3] = { 1L << 32, 1L << 32, 200 };
    cr_expect_eq(kg_ckd_shape(&r, 4, fits, 3), 0);
    cr_expect_eq(r, 0);
    cr_expect_neq(kg_ckd_shape(&r, 4, wraps, 3), 0);
    cr_expect_neq(kg_ckd_shape(&r, 1, neg, 2), 0);
    cr_expect_neq(kg_ckd_shape(&r, 1, wide, 3), 0);
    cr_expect_eq(kg_ckd_shape(&r, 2, NULL, 0), 0);
    cr_expect_eq(r, 2);
}

Test(npy, count_is_minus_one_when_the_shape_overflows)
{
    kg_npy a = { .dtype = KG_F32, .rank = 3, .shape = { 1L << 32, 1L << 32, 200 } };
    cr_expect_eq(kg_npy_count(&a), -1);
    a.shape[0] = 3, a.shape[1] = 5, a.shape[2] = 7;
    cr_expect_eq(kg_npy_count(&a), 105);
    char err[256] = "";
    a.shape[0] = 1L << 40, a.shape[1] = 1L << 40;
    static float one;
    a.data = &one;
    cr_expect_eq(kg_npy_write("/nonexistent/x.npy", &a, err, sizeof err), KG_ESHAPE);
    cr_expect(strstr(err, "overflows"), "message: %s", err);
}

/* A [2^40, 2^40] weight: its packed size does not fit a size_t, so packing must refuse it
 * before allocating (it used to wrap to a small allocation and write past it). */
Test(wt, pack_refuses_a_weight_whose_size_overflows)
{
    static const unsigned char byte;
    kg_wt_src src = { .fmt = KG_WT_BF16, .layout = KG_WL_KN, .K = 1L << 40, .N = 1L << 40,
                      .data = &byte };
    kg_wt w;
    char err[256] = "";
    cr_assert_eq(kg_wt_pack(&w, &src, err, sizeof err), KG_ESHAPE, "err: %s", err);
    cr_expect(strstr(err, "overflows"), "message: %s", err);
    cr_expect_null(w.mem);
}

Test(scratch, a_request_too_large_to_round_is_out_of_memory)
{
    cr_expect_eq(kg_scratch_reserve(LONG_MAX), KG_ENOMEM);
    cr_expect_eq(kg_scratch_reserve(LONG_MAX - 100), KG_ENOMEM);
    cr_expect_eq(kg_scratch_reserve(4096), KG_OK);
}

Test(problem, numbers_must_be_whole_and_in_range)
{
    long v = 7;
    double d = 7;
    cr_expect_eq(kg_problem_long("f:a=12,b=,c=99999999999999999999999,d=3x", "a", &v), 1);
    cr_expect_eq(v, 12);
    cr_expect_eq(kg_problem_long("f:a=12,b=,c=99999999999999999999999,d=3x", "b", &v), 0);
    cr_expect_eq(kg_problem_long("f:a=12,b=,c=99999999999999999999999,d=3x", "c", &v), 0);
    cr_expect_eq(kg_problem_long("f:a=12,b=,c=99999999999999999999999,d=3x", "d", &v), 0);
    cr_expect_eq(kg_problem_double("f:x=0.5,y=nan,z=1e999", "x", &d), 1);
    cr_expect_eq(d, 0.5);
    cr_expect_eq(kg_problem_double("f:x=0.5,y=nan,z=1e999", "y", &d), 0);
    cr_expect_eq(kg_problem_double("f:x=0.5,y=nan,z=1e999", "z", &d), 0);
}

/* Context for the range recorder below. */
typedef struct ranges { long calls, covered, shortest; } ranges;

static void record(void *ctx, long b, long e)
{
    ranges *r = ctx;
    __atomic_add_fetch(&r->calls, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&r->covered, e - b, __ATOMIC_RELAXED);
    long s = __atomic_load_n(&r->shortest, __ATOMIC_RELAXED);
    while ((s == 0 || e - b < s) &&
           !__atomic_compare_exchange_n(&r->shortest, &s, e - b, 0, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED))
        ;
}

/* Every range is at least grain long: work below two grains stays on the calling thread (a
 * second thread for it cost more than it saved; on a busy machine, 100 times more). */
Test(threads, ranges_are_at_least_a_grain)
{
    cr_assert_eq(kg_set_threads(2), KG_OK);
    static const long cases[][3] = { /* n, grain, ranges */
        { 11, 8, 1 }, { 15, 8, 1 }, { 16, 8, 2 }, { 1000, 1, 2 }, { 1, 1, 1 }, { 3, 100, 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ranges r = { 0, 0, 0 };
        kgp_parallel_for(record, &r, cases[i][0], cases[i][1]);
        cr_assert_eq(r.covered, cases[i][0], "n %ld grain %ld", cases[i][0], cases[i][1]);
        cr_assert_eq(r.calls, cases[i][2], "n %ld grain %ld: %ld ranges", cases[i][0],
                     cases[i][1], r.calls);
        cr_assert(r.calls == 1 || r.shortest >= cases[i][1], "n %ld grain %ld: a range of %ld",
                  cases[i][0], cases[i][1], r.shortest);
    }
    /* the grain of items of w units: tasks of at least KGP_MIN_WORK */
    cr_assert_eq(KGP_GRAIN(KGP_MIN_WORK), 1);
    cr_assert_eq(KGP_GRAIN(4 * KGP_MIN_WORK), 1);
    cr_assert_eq(KGP_GRAIN(1), KGP_MIN_WORK);
    cr_assert_eq(KGP_GRAIN(1000) * 1000 >= KGP_MIN_WORK && (KGP_GRAIN(1000) - 1) * 1000 <
                 KGP_MIN_WORK, 1);
    cr_assert_eq(kg_set_threads(0), KG_OK);
}

/* The thread count is bounded in the runtime itself, not only by the CLI's --threads: a count
 * outside 0 .. KG_MAX_THREADS is refused and changes nothing (100000 made libgomp abort). */
Test(threads, count_is_bounded_by_the_runtime)
{
    cr_assert_eq(kg_set_threads(3), KG_OK);
    cr_assert_eq(kg_threads(), 3);
    cr_assert_eq(kg_set_threads(KG_MAX_THREADS + 1), KG_EARG);
    cr_assert_eq(kg_set_threads(100000), KG_EARG);
    cr_assert_eq(kg_set_threads(-1), KG_EARG);
    cr_assert_eq(kg_set_threads(INT_MIN), KG_EARG);
    cr_assert_eq(kg_threads(), 3, "a refused count changed the one in force");
    cr_assert_eq(kg_set_threads(KG_MAX_THREADS), KG_OK);
    cr_assert_eq(kg_threads(), KG_MAX_THREADS);
    cr_assert_eq(kg_set_threads(0), KG_OK);
    cr_assert(kg_threads() >= 1 && kg_threads() <= KG_MAX_THREADS, "default %d", kg_threads());
    /* the work is still split and covered at the default */
    ranges r = { 0, 0, 0 };
    kgp_parallel_for(record, &r, 1000, 1);
    cr_assert_eq(r.covered, 1000);
    cr_assert(r.calls >= 1 && r.calls <= KG_MAX_THREADS);
}
