/* tests/test_rope.c: the rope family against tests/ref/rope_ref.c: both layouts x both pairings
 * x every dtype on edge shapes, upstream's test shapes, the shared/vectors cases, kernel names
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
#include "util/jitp.h"
#include "util/tensors.h"
#include "util/vectors.h"

/* ---- the kernel against the reference -------------------------------------------------------- */

/* rope.md: rtol 2^-7, atol 1e-3 (upstream rounds each product to bf16; we round once). */
#define RTOL (1.0 / 128)
#define ATOL 1e-3

typedef struct shape { int d, B, N, S; } shape;

static const char *layout_name(int bnsd) { return bnsd ? "BNSd" : "dBNS"; }

static void problem_of(char *buf, size_t len, kg_dtype t, int bnsd, int contig, int d, int N)
{
    snprintf(buf, len, "rope:dtype=%s,d=%d,N=%d,layout=%s,contiguous_layout=%s",
             kg_dtype_name(t), d, N, layout_name(bnsd), contig ? "true" : "false");
}

/* Runs one rope kernel on normal x, cos, sin (upstream's tests use gaussian tables too) and
 * compares it with the reference cast to t. */
static void check(kg_dtype t, int bnsd, int contig, shape s)
{
    char problem[256];
    problem_of(problem, sizeof problem, t, bnsd, contig, s.d, s.N);
    const kg_kernel *k = kgt_jit(problem);
    long nx = (long)s.d * s.B * s.N * s.S, nt = (long)(s.d / 2) * s.B * s.S;
    unsigned long long seed = 1000003ull * (unsigned long long)nx
                              + 31ull * (unsigned)(bnsd * 2 + contig) + (unsigned)t;
    float *x = kgt_randn(t, nx, seed), *c = kgt_randn(t, nt, seed + 1);
    float *sn = kgt_randn(t, nt, seed + 2);
    void *xe = kgt_encode(t, x, nx), *ce = kgt_encode(t, c, nt), *se = kgt_encode(t, sn, nt);
    void *oe = kgt_poisoned(t, nx);
    int rc = ((kg_rope_fn *)k->fn)(oe, xe, ce, se, s.B, s.S);
    cr_assert_eq(rc, KG_OK, "%s returned %d", k->name, rc);

    float *want = malloc((size_t)nx * sizeof *want);
    rope_ref(want, x, c, sn, s.d, s.B, s.N, s.S, bnsd, contig);
    long dims[4] = { s.d, s.B, s.N, s.S }, bdims[4] = { s.B, s.N, s.S, s.d };
    char msg[1024];
    int ok = kgt_close_to_ref(t, oe, want, 4, bnsd ? bdims : dims, RTOL, ATOL, msg, sizeof msg);
    cr_assert(ok, "%s (d=%d B=%d N=%d S=%d, x index in %s order): %s", k->name, s.d, s.B, s.N,
              s.S, bnsd ? "[B,N,S,d]" : "[d,B,N,S]", msg);
    free(x), free(c), free(sn), free(xe), free(ce), free(se), free(oe), free(want);
}

/* Edge shapes: d = 2, d/2 odd, N = 1, B = 1, S = 1, odd S, and S past one task's positions
 * (8192 / d: 1024 at d = 8, 64 at d = 128) so tasks split a batch row. */
static const shape EDGE[] = {
    { 2, 1, 1, 1 }, { 2, 3, 2, 7 }, { 6, 2, 3, 5 }, { 64, 1, 1, 1 }, { 8, 1, 2, 1027 },
    { 128, 2, 3, 67 }, { 4, 5, 1, 3 },
};

/* Every layout x pairing x dtype on every edge shape. */
static void edge_shapes(int bnsd, int contig)
{
    for (size_t d = 0; d < KGT_FLOAT_DTYPES; d++)
        for (size_t i = 0; i < sizeof EDGE / sizeof EDGE[0]; i++)
            check(kgt_float_dtypes[d], bnsd, contig, EDGE[i]);
}

TestSuite(rope, .init = kgt_suite_init, .fini = kgt_suite_fini);

Test(rope, dbns_contiguous_edge_shapes) { edge_shapes(0, 1); }
Test(rope, dbns_interleaved_edge_shapes) { edge_shapes(0, 0); }
Test(rope, bnsd_contiguous_edge_shapes) { edge_shapes(1, 1); }
Test(rope, bnsd_interleaved_edge_shapes) { edge_shapes(1, 0); }

/* Upstream's test shapes (rope.md) with their pairing, in bf16 (upstream's dtype). Shapes of
 * up to a million elements run in both layouts; the four of 8M elements (B*N*S = 65536
 * positions of 128) in one layout each, to keep the scalar primitives' CI time near 3 s. */
Test(rope, upstream_shapes, .timeout = 120 * KGT_TIME_SCALE)
{
    static const struct { shape s; int contig, layouts; } up[] = {
        /* layouts: 1 dBNS, 2 BNSd, 3 both */
        { { 128, 8192, 1, 8 }, 1, 1 },   { { 64, 1, 1, 8192 }, 1, 3 },
        { { 128, 1, 512, 128 }, 1, 2 },  { { 128, 64, 8, 128 }, 1, 1 },
        { { 128, 1, 32, 2048 }, 1, 2 },  { { 128, 32, 4, 64 }, 0, 3 },
        { { 64, 255, 8, 6 }, 0, 3 },     { { 128, 128, 4, 4 }, 0, 3 },
    };
    for (size_t i = 0; i < sizeof up / sizeof up[0]; i++)
        for (int bnsd = 0; bnsd < 2; bnsd++)
            if (up[i].layouts & (1 << bnsd))
                check(KG_BF16, bnsd, up[i].contig, up[i].s);
}

/* ---- per-call sizes and bad problems --------------------------------------------------------- */

Test(rope, per_call_sizes_and_null_pointers)
{
    const kg_kernel *k = kgt_jit("rope:dtype=f32,d=4,N=2,layout=BNSd");
    kg_rope_fn *fn = (kg_rope_fn *)k->fn;
    float x[16] = { 0 }, y[16] = { 0 }, t[4] = { 0 };
    cr_assert_eq(fn(y, x, t, t, -1, 2), KG_EARG, "B < 0 must be rejected");
    cr_assert_eq(fn(y, x, t, t, 1, -2), KG_EARG, "S < 0 must be rejected");
    cr_assert_eq(fn(NULL, NULL, NULL, NULL, 0, 2), KG_OK, "B = 0 is an empty call");
    cr_assert_eq(fn(NULL, NULL, NULL, NULL, 1, 0), KG_OK, "S = 0 is an empty call");
    cr_assert_eq(fn(y, x, t, NULL, 1, 2), KG_EARG, "NULL sin must be rejected");
    cr_assert_eq(fn(NULL, x, t, t, 1, 2), KG_EARG, "NULL x_out must be rejected");
}

Test(rope, bad_problems_name_the_key)
{
    static const struct { const char *problem, *want; } bad[] = {
        { "rope:d=7", "key 'd': expected an integer >= 2 and a multiple of 2" },
        { "rope:d=0", "key 'd'" },
        { "rope:N=0", "key 'N'" },
        { "rope:layout=NBSd", "key 'layout': expected one of dBNS, BNSd" },
        { "rope:contiguous_layout=2", "key 'contiguous_layout'" },
        { "rope:dtype=e4m3", "key 'dtype'" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        kgt_problem_rejected(bad[i].problem, bad[i].want);
}

/* kgen exec binds B and S from the inputs' shapes in either layout. */
Test(rope, bind_takes_B_and_S_from_the_layout)
{
    static const char *names[] = { "x_in", "cos", "sin" };
    const int ranks[] = { 4, 3, 3 };
    const long dbns[3][KGG_MAX_RANK] = { { 8, 3, 2, 5 }, { 4, 3, 5 }, { 4, 3, 5 } };
    const long bnsd[3][KGG_MAX_RANK] = { { 3, 2, 5, 8 }, { 3, 5, 4 }, { 3, 5, 4 } };
    for (int l = 0; l < 2; l++) {
        char problem[256];
        problem_of(problem, sizeof problem, KG_BF16, l, 1, 8, 2);
        long n[KGG_MAX_CALLS];
        int ncalls, nargs;
        kgg_arg args[KGG_MAX_ARGS];
        int rc = kgg_bind(kgt_gen(), problem, 3, names, ranks, l ? bnsd : dbns, n, &ncalls, args,
                          &nargs);
        cr_assert_eq(rc, KG_OK, "%s: %s", problem, kgg_error(kgt_gen()));
        cr_assert(ncalls == 2 && n[0] == 3 && n[1] == 5, "%s: bound B=%ld S=%ld", problem, n[0],
                  n[1]);
    }
}

/* ---- names ----------------------------------------------------------------------------------- */

/* Every option combination: the name parses back to the keys it spells, and names differ. */
Test(rope, names_parse_back_and_are_unique)
{
    char names[48][256];
    int n = 0;
    static const int dn[2][2] = { { 2, 1 }, { 128, 32 } };
    for (size_t d = 0; d < KGT_FLOAT_DTYPES; d++)
        for (int bnsd = 0; bnsd < 2; bnsd++)
            for (int contig = 0; contig < 2; contig++)
                for (int sz = 0; sz < 2; sz++) {
                    char problem[256];
                    problem_of(problem, sizeof problem, kgt_float_dtypes[d], bnsd, contig,
                               dn[sz][0], dn[sz][1]);
                    kgt_name_parses_back(problem, names[n], sizeof names[0]);
                    for (int i = 0; i < n; i++)
                        cr_assert_str_neq(names[i], names[n], "two problems named %s", names[n]);
                    n++;
                }
}

/* ---- shared/vectors/rope --------------------------------------------------------------------- */

/* Upstream's layout: x_in [d, B, N, S], cos/sin [d/2, B, S]. */
static void run_vector(kgt_case *c)
{
    const char *name = kgt_case_name(c);
    int contig = 1;
    kgt_case_opt_bool(c, "contiguous_layout", &contig);
    /* hardware scheduling (rope.md): an S split over two cores, how the interleaved case is
     * de-interleaved on chip; no effect on the values */
    kgt_case_opt_has(c, "lnc_shard");
    kgt_case_opt_has(c, "relayout_in_sbuf");
    const kg_npy *x = kgt_case_input(c, "x_in"), *cs = kgt_case_input(c, "cos");
    const kg_npy *want = kgt_case_output(c, "out_x_out");
    cr_assert(x && cs && kgt_case_input(c, "sin") && want, "%s: %s", name, kgt_case_error(c));
    cr_assert(x->rank == 4 && cs->rank == 3, "%s: shapes", name);
    static const char *const fl[] = { "x_in", "cos", "sin" };
    int t = kgt_case_float_dtype(c, fl, 3);
    cr_assert(t >= 0, "%s: %s", name, kgt_case_error(c));
    shape s = { (int)x->shape[0], (int)x->shape[1], (int)x->shape[2], (int)x->shape[3] };

    char problem[256];
    problem_of(problem, sizeof problem, (kg_dtype)t, 0, contig, s.d, s.N);
    const kg_kernel *k = kgt_jit(problem);
    long nx = kg_npy_count(x), nt = kg_npy_count(cs);
    float *xf = kgt_case_as(c, "x_in", KG_F32), *cf = kgt_case_as(c, "cos", KG_F32);
    float *sf = kgt_case_as(c, "sin", KG_F32);
    cr_assert(xf && cf && sf, "%s: %s", name, kgt_case_error(c));
    void *xe = kgt_encode((kg_dtype)t, xf, nx), *ce = kgt_encode((kg_dtype)t, cf, nt);
    void *se = kgt_encode((kg_dtype)t, sf, nt), *oe = kgt_poisoned((kg_dtype)t, nx);
    cr_assert_eq(((kg_rope_fn *)k->fn)(oe, xe, ce, se, s.B, s.S), KG_OK);
    char msg[1024];
    int ok = kgt_close_to_case(c, "out_x_out", (kg_dtype)t, oe, msg, sizeof msg);
    cr_assert(ok >= 0, "%s: no tolerance", name);
    cr_assert(ok, "vector %s (%s): %s", name, k->name, msg);
    free(xf), free(cf), free(sf), free(xe), free(ce), free(se), free(oe);
}

Test(rope, shared_vectors) { kgt_each_case("rope", run_vector); }

/* ---- JIT vs AOT ------------------------------------------------------------------------------ */

/* Runs kernels a (AOT) and j (JIT) on the same inputs at B = 2, S = 5; their outputs must be
 * the same bytes. */
static void compare_builds(const kg_kernel *a, const kg_kernel *j)
{
    char dt[16];
    long d, N, B = 2, S = 5;
    cr_assert(kg_problem_long(a->problem, "d", &d) && kg_problem_long(a->problem, "N", &N) &&
              kg_problem_str(a->problem, "dtype", dt, sizeof dt), "%s", a->problem);
    kg_dtype t = (kg_dtype)kg_dtype_from_name(dt);
    long nx = d * B * N * S, nt = d / 2 * B * S;
    float *x = kgt_randn(t, nx, 5), *c = kgt_randn(t, nt, 6), *sn = kgt_randn(t, nt, 7);
    void *xe = kgt_encode(t, x, nx), *ce = kgt_encode(t, c, nt), *se = kgt_encode(t, sn, nt);
    void *oa = kgt_build_output(t, nx, KGT_AOT), *oj = kgt_build_output(t, nx, KGT_JIT);
    cr_assert_eq(((kg_rope_fn *)a->fn)(oa, xe, ce, se, B, S), KG_OK, "%s (AOT)", a->name);
    cr_assert_eq(((kg_rope_fn *)j->fn)(oj, xe, ce, se, B, S), KG_OK, "%s (JIT)", a->name);
    long dims[4] = { d, B, N, S }, bdims[4] = { B, N, S, d };
    char msg[1024];
    cr_assert(kgt_same_bytes(oj, oa, t, nx, 4, strstr(a->problem, "layout=BNSd") ? bdims : dims,
                             msg, sizeof msg), "%s: %s", a->name, msg);
    free(x), free(c), free(sn), free(xe), free(ce), free(se), free(oa), free(oj);
}

/* Every rope kernel of every AOT-built spec, JIT-compiled from generated/<spec>/. */
Test(rope, jit_and_aot_are_bit_identical)
{
    cr_assert_gt(kgt_each_aot_jit_pair("rope", compare_builds), 0,
                 "no AOT-built spec has a rope kernel");
}
