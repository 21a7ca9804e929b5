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
#include "util/compare.h"
#include "util/jitp.h"
#include "util/vectors.h"

/* ---- dtypes, random inputs, JIT ------------------------------------------------------------ */

static const kg_dtype DTYPES[] = { KG_BF16, KG_F16, KG_F32 };

static size_t dt_size(kg_dtype t) { return t == KG_F32 ? 4 : 2; }

static float round_bf16(float x) { return kg_bf16_to_f32(kg_f32_to_bf16(x)); }
static float round_f16(float x) { return kg_f16_to_f32(kg_f32_to_f16(x)); }

/* x rounded to dtype t, kept in fp32 (the golden's cast to the output dtype). */
static float dt_round(kg_dtype t, float x)
{
    return t == KG_BF16 ? round_bf16(x) : t == KG_F16 ? round_f16(x) : x;
}

static void *dt_encode(kg_dtype t, const float *x, long n)
{
    void *p = malloc((size_t)(n ? n : 1) * dt_size(t));
    for (long i = 0; i < n; i++) {
        if (t == KG_F32)
            ((float *)p)[i] = x[i];
        else
            ((uint16_t *)p)[i] = t == KG_BF16 ? kg_f32_to_bf16(x[i]) : kg_f32_to_f16(x[i]);
    }
    return p;
}

static float *dt_decode(kg_dtype t, const void *p, long n)
{
    float *y = malloc((size_t)(n ? n : 1) * sizeof *y);
    for (long i = 0; i < n; i++) {
        uint16_t h = t == KG_F32 ? 0 : ((const uint16_t *)p)[i];
        y[i] = t == KG_F32 ? ((const float *)p)[i] : t == KG_BF16 ? kg_bf16_to_f32(h)
                                                                  : kg_f16_to_f32(h);
    }
    return y;
}

/* An output buffer of n elements filled with 0xff bytes (NaN in every dtype), so an element
 * the kernel never writes fails the comparator's NaN pattern check. */
static void *poisoned(kg_dtype t, long n)
{
    size_t bytes = (size_t)(n ? n : 1) * dt_size(t);
    return memset(malloc(bytes), 0xff, bytes);
}

/* Whether got and want (n elements of t) are the same bytes; if not, msg names the first
 * differing element and the worst one (the comparator at zero tolerance). */
static int same_bytes(const void *got, const void *want, kg_dtype t, long n, int rank,
                      const long *shape, char *msg, size_t len)
{
    size_t w = dt_size(t);
    long i = 0;
    while (i < n && memcmp((const char *)got + i * w, (const char *)want + i * w, w) == 0)
        i++;
    if (i == n)
        return 1;
    float *g = dt_decode(t, got, n), *h = dt_decode(t, want, n);
    char at[128], worst[384];
    kgt_unravel(i, rank, shape, at, sizeof at);
    kgt_allclose_shaped(g, h, rank, shape, 0, 0, worst, sizeof worst);
    snprintf(msg, len, "JIT (got) and AOT (want) differ, first at %s: got %.9g want %.9g; %s",
             at, g[i], h[i], worst);
    free(g);
    free(h);
    return 0;
}

/* n normal values (fixed seed) already rounded to dtype t, so the reference sees exactly what
 * the kernel sees. */
static float *randn(kg_dtype t, long n, unsigned long long seed)
{
    float *x = malloc((size_t)(n ? n : 1) * sizeof *x);
    for (long i = 0; i < n; i++)
        x[i] = dt_round(t, kgt_normal(&seed));
    return x;
}

static kgg *gen;
static kg_registry *reg;

static void setup(void)
{
    gen = kgg_new();
    reg = kg_registry_new();
    cr_assert_not_null(gen);
    cr_assert_not_null(reg);
}

static void teardown(void)
{
    kg_registry_free(reg);
    kgg_free(gen);
}

static const kg_kernel *jit(const char *problem)
{
    return kgt_jit_problem(reg, problem);
}

/* ---- the kernel against the reference -------------------------------------------------------- */

static double tol_rtol(kg_dtype t) { return t == KG_F32 ? 1e-3 : 1e-2; }
static double tol_atol(int H) { return H <= 5000 ? 1e-3 : 1e-2; }

/* The reference's carry rounding for dtype t, or NULL without tile_carry_round (or for f32,
 * where rounding to the dtype changes nothing). */
static float (*carry_round(kg_dtype t, int tcr))(float)
{
    if (!tcr || t == KG_F32)
        return NULL;
    return t == KG_BF16 ? round_bf16 : round_f16;
}

/* Runs cumsum on rows x H normal inputs; returns the decoded output (malloc'd) and fills the
 * golden (the reference cast to t). */
static float *run_case(kg_dtype t, int tcr, int rows, int H, unsigned long long seed,
                       float **golden)
{
    char problem[256];
    snprintf(problem, sizeof problem, "cumsum:dtype=%s,H=%d,tile_carry_round=%s",
             kg_dtype_name(t), H, tcr ? "true" : "false");
    const kg_kernel *k = jit(problem);
    long n = (long)rows * H;
    float *x = randn(t, n, seed);
    void *xe = dt_encode(t, x, n), *oe = poisoned(t, n);
    int rc = ((kg_cumsum_fn *)k->fn)(oe, xe, rows);
    cr_assert_eq(rc, KG_OK, "%s returned %d", k->name, rc);
    float *want = malloc((size_t)n * sizeof *want);
    cumsum_ref(want, x, rows, H, carry_round(t, tcr));
    for (long i = 0; i < n; i++)
        want[i] = dt_round(t, want[i]);
    float *got = dt_decode(t, oe, n);
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

TestSuite(cumsum, .init = setup, .fini = teardown);

Test(cumsum, upstream_shapes_every_dtype_and_option)
{
    for (size_t s = 0; s < sizeof UPSTREAM / sizeof UPSTREAM[0]; s++)
        for (size_t d = 0; d < 3; d++)
            for (int tcr = 0; tcr < 2; tcr++)
                check(DTYPES[d], tcr, UPSTREAM[s][0], UPSTREAM[s][1]);
}

Test(cumsum, edge_shapes_every_dtype_and_option)
{
    for (size_t s = 0; s < sizeof EDGE / sizeof EDGE[0]; s++)
        for (size_t d = 0; d < 3; d++)
            for (int tcr = 0; tcr < 2; tcr++)
                check(DTYPES[d], tcr, EDGE[s][0], EDGE[s][1]);
}

/* The comparator's tolerance cannot tell the two carry modes apart, so check them exactly:
 * kgp_cumsum_f32 adds left to right in fp32 like the reference, hence each mode gives the bits
 * of its own reference, and the two modes differ once a carry crosses a tile. */
Test(cumsum, tile_carry_round_matches_its_reference_bit_for_bit)
{
    for (size_t d = 0; d < 2; d++) {
        kg_dtype t = DTYPES[d];
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
    const kg_kernel *k = jit("cumsum:dtype=bf16,H=5");
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
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kgg_kernel k = { 0 };
        cr_assert_neq(kgg_problem(gen, bad[i].problem, &k), KG_OK, "%s was accepted",
                      bad[i].problem);
        cr_assert(strstr(kgg_error(gen), bad[i].want), "%s: message '%s' lacks \"%s\"",
                  bad[i].problem, kgg_error(gen), bad[i].want);
    }
}

/* ---- names ----------------------------------------------------------------------------------- */

/* Every option combination: the name parses back to the keys it spells, and names differ. */
Test(cumsum, names_parse_back_and_are_unique)
{
    char names[12][256];
    int n = 0;
    for (size_t d = 0; d < 3; d++) {
        for (int tcr = 0; tcr < 2; tcr++) {
            for (int H = 1; H <= 4096; H *= 4096) {
                char problem[256];
                snprintf(problem, sizeof problem, "cumsum:dtype=%s,H=%d,tile_carry_round=%s",
                         kg_dtype_name(DTYPES[d]), H, tcr ? "true" : "false");
                kgg_kernel k = { 0 };
                cr_assert_eq(kgg_problem(gen, problem, &k), KG_OK, "%s", kgg_error(gen));
                char *parsed, *named;
                cr_assert_eq(kgg_string_call(gen, "parse_name", k.name, &parsed), KG_OK, "%s",
                             kgg_error(gen));
                cr_assert_eq(kgg_string_call(gen, "named_keys", k.problem, &named), KG_OK);
                cr_assert_str_eq(parsed, named, "%s parses back to %s", k.name, parsed);
                for (int i = 0; i < n; i++)
                    cr_assert_str_neq(names[i], k.name, "two problems share the name %s", k.name);
                snprintf(names[n++], sizeof names[0], "%s", k.name);
                free(parsed);
                free(named);
                kgg_kernel_clear(&k);
            }
        }
    }
}

/* ---- shared/vectors/cumsum ------------------------------------------------------------------- */

static void run_vector(const char *dir)
{
    char err[512] = "";
    kgt_case *c = kgt_case_load(dir, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    const char *name = kgt_case_name(c);
    double axis = -1;
    if (kgt_case_opt_num(c, "axis", &axis))
        cr_assert(axis == -1, "%s: axis %g is not the last axis", name, axis);
    const kg_npy *x = kgt_case_input(c, "x");
    const kg_npy *want = kgt_case_output(c, "out_output_0");
    cr_assert(x && want, "%s: %s", name, kgt_case_error(c));
    cr_assert_eq(x->dtype, KG_F32, "%s: x is stored as f32", name);
    int t = kg_dtype_from_name(kgt_case_input_dtype(c, "x"));
    cr_assert(t == KG_F32 || t == KG_BF16 || t == KG_F16, "%s: dtype", name);
    long H = x->shape[x->rank - 1], n = kg_npy_count(x), rows = n / H;

    char problem[256];
    snprintf(problem, sizeof problem, "cumsum:dtype=%s,H=%ld", kg_dtype_name(t), H);
    const kg_kernel *k = jit(problem);
    void *xe = dt_encode(t, x->data, n), *oe = poisoned(t, n);
    cr_assert_eq(((kg_cumsum_fn *)k->fn)(oe, xe, rows), KG_OK);
    float *got = dt_decode(t, oe, n), *gold = malloc((size_t)n * sizeof *gold);
    for (long i = 0; i < n; i++)
        gold[i] = dt_round(t, ((const float *)want->data)[i]);
    double rtol, atol;
    cr_assert(kgt_case_tol(c, "out_output_0", &rtol, &atol), "%s: no tolerance", name);
    char msg[1024];
    cr_assert(kgt_allclose_shaped(got, gold, want->rank, want->shape, rtol, atol, msg,
                                  sizeof msg), "vector %s (%s): %s", name, k->name, msg);
    free(xe);
    free(oe);
    free(got);
    free(gold);
    kgt_case_free(c);
}

Test(cumsum, shared_vectors)
{
    char dir[512], **names;
    int count;
    snprintf(dir, sizeof dir, "%s/vectors/cumsum", kgt_shared_dir());
    cr_assert_eq(kgt_case_list(dir, &names, &count), 0, "cannot list %s", dir);
    cr_assert_gt(count, 0, "no cases in %s", dir);
    for (int i = 0; i < count; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        run_vector(path);
    }
    kgt_case_list_free(names, count);
}

/* ---- JIT vs AOT ------------------------------------------------------------------------------ */

/* Every cumsum kernel of every AOT-built spec, JIT-compiled from generated/<spec>/, gives the
 * same bytes as its gcc build on the same inputs (small per-call sizes). */
Test(cumsum, jit_and_aot_are_bit_identical)
{
    int compared = 0;
    for (int s = 0; s < kg_aot_spec_count(); s++) {
        const char *spec = kg_aot_spec_name(s);
        kg_registry *aot = kg_registry_new(), *jitreg = kg_registry_new();
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/generated/%s", kgt_source_dir(), spec);
        cr_assert_eq(kg_aot_register(aot, spec), KG_OK, "%s", kg_registry_error(aot));
        cr_assert_eq(kg_jit_load_dir(jitreg, dir, NULL), KG_OK, "%s", kg_registry_error(jitreg));
        for (int i = 0; i < kg_registry_count(aot); i++) {
            const kg_kernel *a = kg_registry_at(aot, i);
            if (strcmp(a->family, "cumsum") != 0)
                continue;
            const kg_kernel *j = kg_registry_find(jitreg, a->name);
            cr_assert_not_null(j, "%s: %s is not in %s", spec, a->name, dir);
            char dt[16];
            long H, rows = 3;
            cr_assert(kg_problem_long(a->problem, "H", &H) &&
                      kg_problem_str(a->problem, "dtype", dt, sizeof dt), "%s", a->problem);
            kg_dtype t = (kg_dtype)kg_dtype_from_name(dt);
            float *x = randn(t, rows * H, 99);
            void *xe = dt_encode(t, x, rows * H);
            void *oa = poisoned(t, rows * H), *oj = poisoned(t, rows * H);
            cr_assert_eq(((kg_cumsum_fn *)a->fn)(oa, xe, rows), KG_OK);
            cr_assert_eq(((kg_cumsum_fn *)j->fn)(oj, xe, rows), KG_OK);
            long shape[2] = { rows, H };
            char msg[1024];
            cr_assert(same_bytes(oj, oa, t, rows * H, 2, shape, msg, sizeof msg), "%s: %s",
                      a->name, msg);
            compared++;
            free(x);
            free(xe);
            free(oa);
            free(oj);
        }
        kg_registry_free(aot);
        kg_registry_free(jitreg);
    }
    cr_assert_gt(compared, 0, "no AOT-built spec has a cumsum kernel");
}
