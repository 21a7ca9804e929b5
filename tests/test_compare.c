/* tests/test_compare.c: tests of the maxAllClose comparator (tests/util/compare.c) and the
 * exact checks */
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
