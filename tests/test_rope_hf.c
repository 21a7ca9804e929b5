/* tests/test_rope_hf.c: the rope_hf family against tests/ref/rope_ref.c: cos_sin / cache x
 * batched / shared tables x forward / backward x every dtype on edge shapes (T > S included),
 * upstream's test shapes, the shared/vectors cases, names that parse back, bad problems and
 * per-call sizes (T < S), and JIT vs AOT bit-identity. */
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

/* rope.md: rtol 1e-6, atol 1e-6 (upstream's fp32 tests). The kernel and the reference compute
 * the same fp32 expressions and round once, so this holds for bf16 and fp16 outputs too. */
#define RTOL 1e-6
#define ATOL 1e-6

typedef struct shape { int d, B, Hq, Hk, S, T; } shape;
typedef struct opts { int cache, table_batch, backward; } opts;

static void problem_of(char *buf, size_t len, kg_dtype t, opts o, int d, int Hq, int Hk)
{
    snprintf(buf, len, "rope_hf:dtype=%s,d=%d,Hq=%d,Hk=%d,tables=%s,table_batch=%s,backward=%s",
             kg_dtype_name(t), d, Hq, Hk, o.cache ? "cache" : "cos_sin",
             o.table_batch ? "true" : "false", o.backward ? "true" : "false");
}

/* One rope_hf call's tensors, as fp32 values (rounded to the dtype) and encoded. */
typedef struct io {
    long nq, nk, nt;          /* elements of q, k and of one table (or the cache) */
    float *q, *k, *cos, *sin; /* sin unused (NULL) in cache mode */
    void *qe, *ke, *ce, *se;
} io;

static void io_make(io *v, kg_dtype t, opts o, shape s, unsigned long long seed)
{
    long w = o.cache ? 2L * s.d : s.d;
    v->nq = (long)s.B * s.Hq * s.S * s.d;
    v->nk = (long)s.B * s.Hk * s.S * s.d;
    v->nt = (o.table_batch ? s.B : 1) * (long)s.T * w;
    v->q = kgt_randn(t, v->nq, seed);
    v->k = kgt_randn(t, v->nk, seed + 1);
    v->cos = kgt_randn(t, v->nt, seed + 2);
    v->sin = o.cache ? NULL : kgt_randn(t, v->nt, seed + 3);
    v->qe = kgt_encode(t, v->q, v->nq);
    v->ke = kgt_encode(t, v->k, v->nk);
    v->ce = kgt_encode(t, v->cos, v->nt);
    v->se = o.cache ? NULL : kgt_encode(t, v->sin, v->nt);
}

static void io_free(io *v)
{
    free(v->q), free(v->k), free(v->cos), free(v->sin);
    free(v->qe), free(v->ke), free(v->ce), free(v->se);
}

/* Compares decoded outputs with the reference cast to t; names the kernel and the shape. */
static void expect_close(kg_dtype t, const char *what, const void *oe, float *want,
                         const long *dims)
{
    char msg[1024];
    int ok = kgt_close_to_ref(t, oe, want, 4, dims, RTOL, ATOL, msg, sizeof msg);
    cr_assert(ok, "%s: %s", what, msg);
}

/* Runs one rope_hf kernel on normal q, k and tables and compares q_out and k_out with the
 * reference. In cache mode the reference reads cos = cache, sin = cache + d (rope.md). */
static void check(kg_dtype t, opts o, shape s)
{
    char problem[256], what[512];
    problem_of(problem, sizeof problem, t, o, s.d, s.Hq, s.Hk);
    const kg_kernel *k = kgt_jit(problem);
    io v;
    unsigned long long seed = 7919ull * (unsigned)(s.d * s.B * s.S) + 131ull * (unsigned)s.T
                              + 17ull * (unsigned)(o.cache * 4 + o.table_batch * 2 + o.backward)
                              + (unsigned)t;
    io_make(&v, t, o, s, seed);
    void *qo = kgt_poisoned(t, v.nq), *ko = kgt_poisoned(t, v.nk);
    int rc = ((kg_rope_hf_fn *)k->fn)(qo, ko, v.qe, v.ke, v.ce, v.se, s.B, s.S, s.T);
    cr_assert_eq(rc, KG_OK, "%s returned %d", k->name, rc);

    float *wq = malloc((size_t)v.nq * sizeof *wq), *wk = malloc((size_t)v.nk * sizeof *wk);
    rope_hf_ref(wq, wk, v.q, v.k, v.cos, o.cache ? v.cos + s.d : v.sin, s.B, s.Hq, s.Hk, s.S,
                s.d, s.T, o.table_batch, o.cache ? 2 * s.d : s.d, o.backward);
    long qd[4] = { s.B, s.Hq, s.S, s.d }, kd[4] = { s.B, s.Hk, s.S, s.d };
    snprintf(what, sizeof what, "%s q_out (d=%d B=%d Hq=%d Hk=%d S=%d T=%d)", k->name, s.d, s.B,
             s.Hq, s.Hk, s.S, s.T);
    expect_close(t, what, qo, wq, qd);
    snprintf(what, sizeof what, "%s k_out (d=%d B=%d Hq=%d Hk=%d S=%d T=%d)", k->name, s.d, s.B,
             s.Hq, s.Hk, s.S, s.T);
    expect_close(t, what, ko, wk, kd);
    io_free(&v);
    free(qo), free(ko), free(wq), free(wk);
}

/* Edge shapes: d = 2, d/2 odd, one head each, B = 1, S = 1, odd S, T > S (only the first S
 * rows are read, and batched tables are T rows apart), and S past one task's positions
 * (8192 / d: 64 at d = 128, 1024 at d = 8). */
static const shape EDGE[] = {
    { 2, 1, 1, 1, 1, 1 },   { 2, 2, 3, 1, 5, 8 },    { 6, 2, 2, 3, 7, 7 },
    { 64, 1, 4, 2, 1, 3 },  { 128, 2, 3, 2, 67, 70 }, { 8, 1, 1, 1, 1027, 1027 },
    { 4, 3, 2, 2, 3, 4 },
};

/* Every dtype on every edge shape for one (tables, table_batch, backward) combination. */
static void edge_shapes(int cache, int table_batch, int backward)
{
    opts o = { cache, table_batch, backward };
    for (size_t d = 0; d < KGT_FLOAT_DTYPES; d++)
        for (size_t i = 0; i < sizeof EDGE / sizeof EDGE[0]; i++)
            check(kgt_float_dtypes[d], o, EDGE[i]);
}

TestSuite(rope_hf, .init = kgt_suite_init, .fini = kgt_suite_fini);

Test(rope_hf, cos_sin_batched_forward_edge_shapes) { edge_shapes(0, 1, 0); }
Test(rope_hf, cos_sin_batched_backward_edge_shapes) { edge_shapes(0, 1, 1); }
Test(rope_hf, cos_sin_shared_forward_edge_shapes) { edge_shapes(0, 0, 0); }
Test(rope_hf, cos_sin_shared_backward_edge_shapes) { edge_shapes(0, 0, 1); }
Test(rope_hf, cache_batched_forward_edge_shapes) { edge_shapes(1, 1, 0); }
Test(rope_hf, cache_batched_backward_edge_shapes) { edge_shapes(1, 1, 1); }
Test(rope_hf, cache_shared_forward_edge_shapes) { edge_shapes(1, 0, 0); }
Test(rope_hf, cache_shared_backward_edge_shapes) { edge_shapes(1, 0, 1); }

/* Upstream's test shapes (rope.md) in their dtypes and directions, with per-batch tables and
 * with a shared packed [S, 2d] cache. */
Test(rope_hf, upstream_shapes, .timeout = 120 * KGT_TIME_SCALE)
{
    static const struct { shape s; kg_dtype t; int backward; } up[] = {
        { { 128, 1, 32, 8, 256, 256 }, KG_BF16, 0 }, { { 128, 1, 32, 8, 256, 256 }, KG_F32, 0 },
        { { 128, 2, 16, 4, 512, 512 }, KG_BF16, 0 }, { { 128, 4, 1, 1, 512, 512 }, KG_BF16, 0 },
        { { 64, 1, 32, 8, 512, 512 }, KG_F32, 0 },   { { 128, 1, 32, 8, 256, 256 }, KG_F32, 1 },
    };
    for (size_t i = 0; i < sizeof up / sizeof up[0]; i++) {
        check(up[i].t, (opts){ 0, 1, up[i].backward }, up[i].s);
        check(up[i].t, (opts){ 1, 0, up[i].backward }, up[i].s);
    }
}

/* ---- per-call sizes and bad problems --------------------------------------------------------- */

Test(rope_hf, per_call_sizes_and_null_pointers)
{
    const kg_kernel *k = kgt_jit("rope_hf:dtype=f32,d=4,Hq=1,Hk=1");
    kg_rope_hf_fn *fn = (kg_rope_hf_fn *)k->fn;
    float q[8] = { 0 }, kk[8] = { 0 }, y[8], z[8], t[16] = { 0 };
    cr_assert_eq(fn(y, z, q, kk, t, t, 1, 2, 1), KG_EARG, "T < S must be rejected");
    cr_assert_eq(fn(y, z, q, kk, t, t, -1, 2, 2), KG_EARG, "B < 0 must be rejected");
    cr_assert_eq(fn(y, z, q, kk, t, t, 1, -1, 2), KG_EARG, "S < 0 must be rejected");
    cr_assert_eq(fn(NULL, NULL, NULL, NULL, NULL, NULL, 0, 2, 2), KG_OK, "B = 0: empty call");
    cr_assert_eq(fn(NULL, NULL, NULL, NULL, NULL, NULL, 1, 0, 0), KG_OK, "S = 0: empty call");
    cr_assert_eq(fn(y, z, q, kk, t, NULL, 1, 2, 2), KG_EARG, "NULL sin must be rejected");
    cr_assert_eq(fn(y, NULL, q, kk, t, t, 1, 2, 2), KG_EARG, "NULL k_out must be rejected");
    cr_assert_eq(fn(y, z, q, kk, t, t, 1, 2, 3), KG_OK, "T > S is fine");

    /* cache mode: `sin` is ignored and may be NULL */
    k = kgt_jit("rope_hf:dtype=f32,d=4,Hq=1,Hk=1,tables=cache");
    fn = (kg_rope_hf_fn *)k->fn;
    cr_assert_eq(fn(y, z, q, kk, t, NULL, 1, 2, 2), KG_OK, "cache mode must ignore sin");
    cr_assert_eq(fn(y, z, q, kk, NULL, t, 1, 2, 2), KG_EARG, "NULL rope_cache must be rejected");
}

Test(rope_hf, bad_problems_name_the_key)
{
    static const struct { const char *problem, *want; } bad[] = {
        { "rope_hf:d=5", "key 'd'" },
        { "rope_hf:Hk=0", "key 'Hk'" },
        { "rope_hf:tables=rope_cache", "key 'tables': expected one of cos_sin, cache" },
        { "rope_hf:S=8,T=4", "key 'T': T = 4 (table rows) is less than S = 8 (positions)" },
        { "rope_hf:backward=yes", "key 'backward'" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        kgt_problem_rejected(bad[i].problem, bad[i].want);
}

/* kgen exec binds B, S and T from the inputs; tables shorter than S are refused by name, and
 * in cache mode the input is called rope_cache. */
Test(rope_hf, bind_sizes_and_call_check)
{
    static const char *names[] = { "q", "k", "cos", "sin" };
    const int ranks[] = { 4, 4, 3, 3 };
    const long ok[4][KGG_MAX_RANK] = { { 2, 4, 5, 8 }, { 2, 2, 5, 8 }, { 2, 7, 8 }, { 2, 7, 8 } };
    const long shorter[4][KGG_MAX_RANK] = { { 2, 4, 5, 8 }, { 2, 2, 5, 8 }, { 2, 3, 8 },
                                            { 2, 3, 8 } };
    const char *problem = "rope_hf:dtype=f32,d=8,Hq=4,Hk=2";
    kgg *gen = kgt_gen();
    long n[KGG_MAX_CALLS];
    int ncalls, nargs;
    kgg_arg args[KGG_MAX_ARGS];
    int rc = kgg_bind(gen, problem, 4, names, ranks, ok, n, &ncalls, args, &nargs);
    cr_assert_eq(rc, KG_OK, "%s", kgg_error(gen));
    cr_assert(ncalls == 3 && n[0] == 2 && n[1] == 5 && n[2] == 7, "bound B=%ld S=%ld T=%ld",
              n[0], n[1], n[2]);
    rc = kgg_bind(gen, problem, 4, names, ranks, shorter, n, &ncalls, args, &nargs);
    cr_assert_neq(rc, KG_OK, "T = 3 < S = 5 was accepted");
    cr_assert(strstr(kgg_error(gen), "table rows T = 3 < positions S = 5"), "message: %s",
              kgg_error(gen));

    static const char *cnames[] = { "q", "k", "rope_cache" };
    const int cranks[] = { 4, 4, 2 };
    const long cache[3][KGG_MAX_RANK] = { { 1, 4, 5, 8 }, { 1, 2, 5, 8 }, { 6, 16 } };
    rc = kgg_bind(gen, "rope_hf:dtype=f32,d=8,Hq=4,Hk=2,tables=cache,table_batch=false", 3,
                  cnames, cranks, cache, n, &ncalls, args, &nargs);
    cr_assert_eq(rc, KG_OK, "%s", kgg_error(gen));
    cr_assert(n[0] == 1 && n[1] == 5 && n[2] == 6, "bound B=%ld S=%ld T=%ld", n[0], n[1], n[2]);
}

/* ---- names ----------------------------------------------------------------------------------- */

/* Every option combination: the name parses back to the keys it spells, and names differ. */
Test(rope_hf, names_parse_back_and_are_unique)
{
    char names[48][256];
    int n = 0;
    for (size_t d = 0; d < KGT_FLOAT_DTYPES; d++)
        for (int m = 0; m < 8; m++)
            for (int sz = 0; sz < 2; sz++) {
                char problem[256];
                opts o = { m & 1, (m >> 1) & 1, (m >> 2) & 1 };
                problem_of(problem, sizeof problem, kgt_float_dtypes[d], o, sz ? 128 : 2,
                           sz ? 32 : 1, sz ? 8 : 1);
                kgt_name_parses_back(problem, names[n], sizeof names[0]);
                for (int i = 0; i < n; i++)
                    cr_assert_str_neq(names[i], names[n], "two problems named %s", names[n]);
                n++;
            }
}

/* ---- shared/vectors/rope_hf ------------------------------------------------------------------ */

/* Decodes a kernel output and checks it against a case's expected output. */
static void vector_output(kgt_case *c, const char *kname, kg_dtype t, const char *out,
                          const void *oe)
{
    const kg_npy *want = kgt_case_output(c, out);
    cr_assert_not_null(want, "%s: %s", kgt_case_name(c), kgt_case_error(c));
    char msg[1024];
    int ok = kgt_close_to_case(c, out, t, oe, msg, sizeof msg);
    cr_assert(ok >= 0, "%s: no tolerance for %s", kgt_case_name(c), out);
    cr_assert(ok, "vector %s %s (%s): %s", kgt_case_name(c), out, kname, msg);
}

/* A float input of the case encoded in t (NULL if the case has none). */
static void *vector_tensor(kgt_case *c, const char *name, kg_dtype t)
{
    if (!kgt_case_input_dtype(c, name))
        return NULL;
    float *x = kgt_case_as(c, name, KG_F32);
    cr_assert_not_null(x, "%s: %s", kgt_case_name(c), kgt_case_error(c));
    void *e = kgt_encode(t, x, kg_npy_count(kgt_case_input(c, name)));
    free(x);
    return e;
}

/* The case's tables are cos/sin or rope_cache, [B, T, w] or [T, w]: the problem follows (the
 * "tables" option says which in words; it must agree with the inputs). */
static void run_vector(kgt_case *c)
{
    const char *name = kgt_case_name(c), *tables;
    opts o = { 0, 1, 0 };
    kgt_case_opt_bool(c, "backward", &o.backward);
    o.cache = kgt_case_input_dtype(c, "rope_cache") != NULL;
    if (kgt_case_opt_str(c, "tables", &tables))
        cr_assert(!strncmp(tables, o.cache ? "rope_cache" : "cos/sin", o.cache ? 10 : 7),
                  "%s: tables '%s' but the inputs are %s", name, tables,
                  o.cache ? "rope_cache" : "cos/sin");
    const kg_npy *q = kgt_case_input(c, "q"), *k = kgt_case_input(c, "k");
    const kg_npy *cs = kgt_case_input(c, o.cache ? "rope_cache" : "cos");
    cr_assert(q && k && cs && (o.cache || kgt_case_input(c, "sin")), "%s: %s", name,
              kgt_case_error(c));
    cr_assert(q->rank == 4 && k->rank == 4 && (cs->rank == 2 || cs->rank == 3), "%s", name);
    o.table_batch = cs->rank == 3;
    static const char *const fl[] = { "q", "k", "cos", "sin", "rope_cache" };
    int ti = kgt_case_float_dtype(c, fl, 5);
    cr_assert(ti >= 0, "%s: %s", name, kgt_case_error(c));
    kg_dtype t = (kg_dtype)ti;
    shape s = { (int)q->shape[3], (int)q->shape[0], (int)q->shape[1], (int)k->shape[1],
                (int)q->shape[2], (int)cs->shape[cs->rank - 2] };

    char problem[256];
    problem_of(problem, sizeof problem, t, o, s.d, s.Hq, s.Hk);
    const kg_kernel *kk = kgt_jit(problem);
    long nq = kg_npy_count(q), nk = kg_npy_count(k);
    void *qe = vector_tensor(c, "q", t), *ke = vector_tensor(c, "k", t);
    void *ce = vector_tensor(c, o.cache ? "rope_cache" : "cos", t);
    void *se = o.cache ? NULL : vector_tensor(c, "sin", t);
    void *qo = kgt_poisoned(t, nq), *ko = kgt_poisoned(t, nk);
    cr_assert_eq(((kg_rope_hf_fn *)kk->fn)(qo, ko, qe, ke, ce, se, s.B, s.S, s.T), KG_OK);
    vector_output(c, kk->name, t, "out_q_out", qo);
    vector_output(c, kk->name, t, "out_k_out", ko);
    free(qe), free(ke), free(ce), free(se), free(qo), free(ko);
}

Test(rope_hf, shared_vectors) { kgt_each_case("rope_hf", run_vector); }

/* ---- JIT vs AOT ------------------------------------------------------------------------------ */

/* Runs kernels a (AOT) and j (JIT) on the same inputs at B = 2, S = 3, T = 5; q_out and k_out
 * must be the same bytes. */
static void compare_builds(const kg_kernel *a, const kg_kernel *j)
{
    char dt[16], tables[16], tb[8], bwd[8];
    long d, Hq, Hk;
    const char *p = a->problem;
    cr_assert(kg_problem_long(p, "d", &d) && kg_problem_long(p, "Hq", &Hq) &&
              kg_problem_long(p, "Hk", &Hk) && kg_problem_str(p, "dtype", dt, sizeof dt) &&
              kg_problem_str(p, "tables", tables, sizeof tables) &&
              kg_problem_str(p, "table_batch", tb, sizeof tb) &&
              kg_problem_str(p, "backward", bwd, sizeof bwd), "%s", p);
    kg_dtype t = (kg_dtype)kg_dtype_from_name(dt);
    opts o = { !strcmp(tables, "cache"), !strcmp(tb, "true"), !strcmp(bwd, "true") };
    shape s = { (int)d, 2, (int)Hq, (int)Hk, 3, 5 };
    io v;
    io_make(&v, t, o, s, 11);
    void *qa = kgt_build_output(t, v.nq, KGT_AOT), *ka = kgt_build_output(t, v.nk, KGT_AOT);
    void *qj = kgt_build_output(t, v.nq, KGT_JIT), *kj = kgt_build_output(t, v.nk, KGT_JIT);
    cr_assert_eq(((kg_rope_hf_fn *)a->fn)(qa, ka, v.qe, v.ke, v.ce, v.se, s.B, s.S, s.T), KG_OK,
                 "%s (AOT)", a->name);
    cr_assert_eq(((kg_rope_hf_fn *)j->fn)(qj, kj, v.qe, v.ke, v.ce, v.se, s.B, s.S, s.T), KG_OK,
                 "%s (JIT)", a->name);
    long qd[4] = { s.B, s.Hq, s.S, s.d }, kd[4] = { s.B, s.Hk, s.S, s.d };
    char msg[1024];
    cr_assert(kgt_same_bytes(qj, qa, t, v.nq, 4, qd, msg, sizeof msg), "%s q_out: %s", a->name,
              msg);
    cr_assert(kgt_same_bytes(kj, ka, t, v.nk, 4, kd, msg, sizeof msg), "%s k_out: %s", a->name,
              msg);
    io_free(&v);
    free(qa), free(ka), free(qj), free(kj);
}

/* Every rope_hf kernel of every AOT-built spec, JIT-compiled from generated/<spec>/. */
Test(rope_hf, jit_and_aot_are_bit_identical)
{
    cr_assert_gt(kgt_each_aot_jit_pair("rope_hf", compare_builds), 0,
                 "no AOT-built spec has a rope_hf kernel");
}
