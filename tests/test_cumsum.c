/* tests/test_cumsum.c: the cumsum family against tests/ref/cumsum_ref.c: every dtype with and
 * without tile_carry_round on upstream and edge shapes, the shared/vectors cases, kernel names
 * that parse back, bad problems and per-call sizes, and JIT vs AOT bit-identity. */
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

/* ---- the kernel against the reference -------------------------------------------------------- */

static double tol_rtol(kg_dtype t) { return t == KG_F32 ? 1e-3 : 1e-2; }
static double tol_atol(int H) { return H <= 5000 ? 1e-3 : 1e-2; }

/* The reference's carry rounding for dtype t, or NULL without tile_carry_round (or for f32,
 * where rounding to the dtype changes nothing). */
static float (*carry_round(kg_dtype t, int tcr))(float)
{
    if (!tcr || t == KG_F32)
        return NULL;
    return t == KG_BF16 ? kgt_round_bf16 : kgt_round_f16;
}

/* Runs cumsum on rows x H normal inputs; returns the decoded output (malloc'd) and fills the
 * golden (the reference cast to t). */
static float *run_case(kg_dtype t, int tcr, int rows, int H, unsigned long long seed,
                       float **golden)
{
    char problem[256];
    snprintf(problem, sizeof problem, "cumsum:dtype=%s,H=%d,tile_carry_round=%s",
             kg_dtype_name(t), H, tcr ? "true" : "false");
    const kg_kernel *k = kgt_jit(problem);
    long n = (long)rows * H;
    float *x = kgt_randn(t, n, seed);
    void *xe = kgt_encode(t, x, n), *oe = kgt_poisoned(t, n);
    int rc = ((kg_cumsum_fn *)k->fn)(oe, xe, rows);
    cr_assert_eq(rc, KG_OK, "%s returned %d", k->name, rc);
    float *want = malloc((size_t)n * sizeof *want);
    cumsum_ref(want, x, rows, H, carry_round(t, tcr));
    for (long i = 0; i < n; i++)
        want[i] = kgt_round(t, want[i]);
    float *got = kgt_decode(t, oe, n);
    free(xe);
    free(oe);
    *golden = want;
    free(x);
    return got;
}

static void check(kg_dtype t, int tcr, int rows, int H)
{
    unsigned long long seed = 42 + 7919ull * (unsigned)rows + (unsigned)H;
    float *want, *got = run_case(t, tcr, rows, H, seed, &want);
    char msg[1024];
    long shape[2] = { rows, H };
    int ok = kgt_allclose_shaped(got, want, 2, shape, tol_rtol(t), tol_atol(H), msg, sizeof msg);
    cr_assert(ok, "cumsum %s tile_carry_round=%d rows=%d H=%d: %s", kg_dtype_name(t), tcr, rows,
              H, msg);
    free(got);
    free(want);
}

/* Upstream's test shapes (3-D [B, S, H] flattened to B*S rows) and part of its sweep. */
static const int UPSTREAM[][2] = { { 1, 256 }, { 64 * 4, 1024 }, { 128, 2048 }, { 8, 8192 },
                                   { 64, 6144 }, { 4 * 10, 4096 } };
/* Edge shapes: one column, tile remainders on both sides of 2048 and 4096, H = 5000. */
static const int EDGE[][2] = { { 1, 1 }, { 3, 1 }, { 1, 2 }, { 3, 7 }, { 2, 2047 }, { 2, 2048 },
                               { 3, 2049 }, { 1, 4095 }, { 2, 4097 }, { 3, 5000 } };

TestSuite(cumsum, .init = kgt_suite_init, .fini = kgt_suite_fini);

Test(cumsum, upstream_shapes_every_dtype_and_option)
{
    for (size_t s = 0; s < sizeof UPSTREAM / sizeof UPSTREAM[0]; s++)
        for (size_t d = 0; d < KGT_FLOAT_DTYPES; d++)
            for (int tcr = 0; tcr < 2; tcr++)
                check(kgt_float_dtypes[d], tcr, UPSTREAM[s][0], UPSTREAM[s][1]);
}

Test(cumsum, edge_shapes_every_dtype_and_option)
{
    for (size_t s = 0; s < sizeof EDGE / sizeof EDGE[0]; s++)
        for (size_t d = 0; d < KGT_FLOAT_DTYPES; d++)
            for (int tcr = 0; tcr < 2; tcr++)
                check(kgt_float_dtypes[d], tcr, EDGE[s][0], EDGE[s][1]);
}

/* The comparator's tolerance cannot tell the two carry modes apart, so check them exactly:
 * kgp_cumsum_f32 adds left to right in fp32 like the reference, hence each mode gives the bits
 * of its own reference, and the two modes differ once a carry crosses a tile. */
Test(cumsum, tile_carry_round_matches_its_reference_bit_for_bit)
{
    for (size_t d = 0; d < 2; d++) { /* bf16, fp16 */
        kg_dtype t = kgt_float_dtypes[d];
        const int rows = 4, H = 5000;
        float *want[2], *got[2];
        for (int tcr = 0; tcr < 2; tcr++) {
            got[tcr] = run_case(t, tcr, rows, H, 7, &want[tcr]);
            long i = 0, shape[2] = { rows, H };
            while (i < (long)rows * H && got[tcr][i] == want[tcr][i])
                i++;
            if (i < (long)rows * H) {
                char msg[1024];
                kgt_allclose_shaped(got[tcr], want[tcr], 2, shape, 0, 0, msg, sizeof msg);
                cr_assert_fail("%s tile_carry_round=%d: first difference at [%ld, %ld]: "
                               "got %.9g want %.9g; %s", kg_dtype_name(t), tcr, i / H, i % H,
                               got[tcr][i], want[tcr][i], msg);
            }
        }
        long differ = 0, first = -1;
        for (long i = 0; i < (long)rows * H; i++)
            if (got[0][i] != got[1][i] && differ++ == 0)
                first = i;
        cr_assert(differ > 0, "%s: tile_carry_round changed nothing over %d x %d",
                  kg_dtype_name(t), rows, H);
        cr_assert(first % H >= 2048, "%s: the modes differ before the first carry, at [%ld, %ld]",
                  kg_dtype_name(t), first / H, first % H);
        for (int tcr = 0; tcr < 2; tcr++) {
            free(got[tcr]);
            free(want[tcr]);
        }
    }
}

/* ---- per-call sizes and bad problems --------------------------------------------------------- */

Test(cumsum, per_call_sizes_and_null_pointers)
{
    const kg_kernel *k = kgt_jit("cumsum:dtype=bf16,H=5");
    kg_cumsum_fn *fn = (kg_cumsum_fn *)k->fn;
    uint16_t x[5] = { 0 }, y[5] = { 0 };
    cr_assert_eq(fn(y, x, -1), KG_EARG, "rows < 0 must be rejected");
    cr_assert_eq(fn(NULL, NULL, 0), KG_OK, "rows = 0 is an empty call");
    cr_assert_eq(fn(NULL, x, 1), KG_EARG, "NULL out must be rejected");
    cr_assert_eq(fn(y, NULL, 1), KG_EARG, "NULL x must be rejected");
}

Test(cumsum, bad_problems_name_the_key)
{
    static const struct { const char *problem, *want; } bad[] = {
        { "cumsum:H=0", "key 'H'" },
        { "cumsum:dtype=e4m3", "key 'dtype'" },
        { "cumsum:tile_carry_round=maybe", "key 'tile_carry_round'" },
        { "cumsum:axis=0", "key 'axis'" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        kgt_problem_rejected(bad[i].problem, bad[i].want);
}

/* ---- names ----------------------------------------------------------------------------------- */

/* Every option combination: the name parses back to the keys it spells, and names differ. */
Test(cumsum, names_parse_back_and_are_unique)
{
    char names[12][256];
    int n = 0;
    for (size_t d = 0; d < KGT_FLOAT_DTYPES; d++) {
        for (int tcr = 0; tcr < 2; tcr++) {
            for (int H = 1; H <= 4096; H *= 4096) {
                char problem[256];
                snprintf(problem, sizeof problem, "cumsum:dtype=%s,H=%d,tile_carry_round=%s",
                         kg_dtype_name(kgt_float_dtypes[d]), H, tcr ? "true" : "false");
                kgt_name_parses_back(problem, names[n], sizeof names[0]);
                for (int i = 0; i < n; i++)
                    cr_assert_str_neq(names[i], names[n], "two problems share the name %s",
                                      names[n]);
                n++;
            }
        }
    }
}

/* ---- shared/vectors/cumsum ------------------------------------------------------------------- */

static void run_vector(kgt_case *c)
{
    const char *name = kgt_case_name(c);
    const kg_npy *want = kgt_case_output(c, "out_output_0");
    float *x = kgt_case_as(c, "x", KG_F32);
    cr_assert(x && want, "%s: %s", name, kgt_case_error(c));
    const kg_npy *xa = kgt_case_input(c, "x");
    double axis = -1; /* the last axis, spelled -1 or rank - 1 (cumsum.md) */
    if (kgt_case_opt_num(c, "axis", &axis))
        cr_assert(axis == -1 || axis == xa->rank - 1, "%s: axis %g is not the last axis", name,
                  axis);
    static const char *const xn[] = { "x" };
    int t = kgt_case_float_dtype(c, xn, 1);
    cr_assert(t >= 0, "%s: %s", name, kgt_case_error(c));
    long H = xa->shape[xa->rank - 1], n = kg_npy_count(xa), rows = n / H;

    char problem[256];
    snprintf(problem, sizeof problem, "cumsum:dtype=%s,H=%ld", kg_dtype_name((kg_dtype)t), H);
    const kg_kernel *k = kgt_jit(problem);
    void *xe = kgt_encode((kg_dtype)t, x, n), *oe = kgt_poisoned((kg_dtype)t, n);
    free(x);
    cr_assert_eq(((kg_cumsum_fn *)k->fn)(oe, xe, rows), KG_OK);
    char msg[1024];
    int ok = kgt_close_to_case(c, "out_output_0", (kg_dtype)t, oe, msg, sizeof msg);
    cr_assert(ok >= 0, "%s: no tolerance", name);
    cr_assert(ok, "vector %s (%s): %s", name, k->name, msg);
    free(xe);
    free(oe);
}

Test(cumsum, shared_vectors) { kgt_each_case("cumsum", run_vector); }

/* A synthetic case: the last axis spelled as rank - 1 (axis = 2 of a 3-D f32 input), which
 * cumsum.md accepts like -1; expected from tests/ref. */
Test(cumsum, synthetic_vector_axis_rank_minus_one)
{
    enum { A = 2, B = 3, H = 37 };
    float *x = kgt_randn(KG_F32, A * B * H, 801), *want = malloc(sizeof(float) * A * B * H);
    cumsum_ref(want, x, A * B, H, NULL);
    kgt_casew *w = kgt_casew_new("cumsum", "2x3x37_f32_axis2");
    long xs[3] = { A, B, H };
    kgt_casew_input(w, "x", "f32", x, 3, xs);
    kgt_casew_opt_num(w, "axis", 2);
    kgt_casew_output(w, "out_output_0", want, 3, xs, 1e-3, 1e-3);
    kgt_run_case(kgt_casew_finish(w), run_vector);
    kgt_casew_free(w);
    free(x), free(want);
}

/* ---- JIT vs AOT ------------------------------------------------------------------------------ */

/* Runs kernels a (AOT) and j (JIT) on the same inputs at rows = 3; their outputs must be the
 * same bytes. */
static void compare_builds(const kg_kernel *a, const kg_kernel *j)
{
    char dt[16];
    long H, rows = 3;
    cr_assert(kg_problem_long(a->problem, "H", &H) &&
              kg_problem_str(a->problem, "dtype", dt, sizeof dt), "%s", a->problem);
    kg_dtype t = (kg_dtype)kg_dtype_from_name(dt);
    float *x = kgt_randn(t, rows * H, 99);
    void *xe = kgt_encode(t, x, rows * H);
    void *oa = kgt_build_output(t, rows * H, KGT_AOT);
    void *oj = kgt_build_output(t, rows * H, KGT_JIT);
    cr_assert_eq(((kg_cumsum_fn *)a->fn)(oa, xe, rows), KG_OK, "%s (AOT)", a->name);
    cr_assert_eq(((kg_cumsum_fn *)j->fn)(oj, xe, rows), KG_OK, "%s (JIT)", a->name);
    long shape[2] = { rows, H };
    char msg[1024];
    cr_assert(kgt_same_bytes(oj, oa, t, rows * H, 2, shape, msg, sizeof msg), "%s: %s", a->name,
              msg);
    free(x);
    free(xe);
    free(oa);
    free(oj);
}

/* Every cumsum kernel of every AOT-built spec, JIT-compiled from generated/<spec>/, gives the
 * same bytes as its gcc build on the same inputs (small per-call sizes). */
Test(cumsum, jit_and_aot_are_bit_identical)
{
    cr_assert_gt(kgt_each_aot_jit_pair("cumsum", compare_builds), 0,
                 "no AOT-built spec has a cumsum kernel");
}
