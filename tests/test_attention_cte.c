/* tests/test_attention_cte.c: the attention_cte family against tests/ref/attention_cte_ref.c:
 * dtypes, head ratios (GQA), masks (causal, sliding window, packing bounds), sinks on edge
 * shapes, upstream's and Llama-3-8B's shapes (large ones checked on sampled rows), the
 * shared/vectors cases, names that parse back, refused problems and per-call sizes, and JIT vs
 * AOT bit-identity. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "kgen/dtype.h"
#include "kgen/kernels.h"
#include "kgen/kgen.h"
#include "ref/ref.h"
#include "util/casew.h"
#include "util/jitp.h"
#include "util/tensors.h"
#include "util/vectors.h"

/* attention_cte.md: rtol 2e-2, atol 1e-5. */
#define RTOL 2e-2
#define ATOL 1e-5

/* One problem and its call: the keys (dtype, d, heads, options) and the sizes. */
typedef struct acase {
    kg_dtype t;
    long d, nq, nkv;
    float scale;
    int causal;
    long window;
    int sink, pack;
    long B, Sq, Sk;
    long Sp, used; /* prefix caching: prior keys stored, used (Sp = 0: none) */
    kg_dtype stats; /* cache_softmax in this dtype; KG_DTYPE_COUNT: none */
    int cp;        /* context parallelism: query i at cp_off + i (* cp_deg if strided) */
    long cp_off;
    int cp_deg, cp_strided;
    int ntq, tpk, tpout; /* layouts: q [.., d, Sq] (tp_q false), k [.., Sk, d], out [.., d, Sq] */
} acase;

static void problem_of(const acase *c, char *buf, size_t len)
{
    snprintf(buf, len,
             "attention_cte:dtype=%s,d=%ld,nq=%ld,nkv=%ld,scale=%.9g,causal_mask=%d,"
             "sliding_window=%ld,sink=%d,sequence_packing=%d,prefix_caching=%d,"
             "context_parallel=%d,global_cp_deg=%d,cp_strided_q_slicing=%d,"
             "cache_softmax=%d,softmax_dtype=%s,tp_q=%d,tp_k=%d,tp_out=%d",
             kg_dtype_name(c->t), c->d, c->nq, c->nkv, c->scale, c->causal, c->window, c->sink,
             c->pack, c->Sp > 0, c->cp, c->cp_deg > 1 ? c->cp_deg : 1, c->cp_strided,
             c->stats != KG_DTYPE_COUNT,
             kg_dtype_name(c->stats != KG_DTYPE_COUNT ? c->stats : KG_F32), !c->ntq, c->tpk,
             c->tpout);
}

/* A case's inputs as fp32 values (rounded to the dtype) and as the kernel reads them. */
typedef struct arun {
    long nq_el, nk_el, np_el; /* elements of q (and out), of k (and v), of k_prior */
    float *q, *k, *v, *kp, *vp, *sink;
    int32_t *bmin, *bmax, used, cpo;
    void *eq, *ek, *ev, *ekp, *evp;
} arun;

/* Packing bounds: the queries cut into segments of 1 to 9 (each sees its own segment); with
 * `empty`, query 0 sees nothing (bound_min = bound_max). */
static void make_bounds(arun *r, const acase *c, unsigned long long seed, int empty)
{
    r->bmin = malloc((size_t)c->Sq * sizeof *r->bmin);
    r->bmax = malloc((size_t)c->Sq * sizeof *r->bmax);
    long s0 = 0;
    while (s0 < c->Sq) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        long len = 1 + (long)(seed >> 33) % 9, s1 = s0 + len < c->Sq ? s0 + len : c->Sq;
        for (long i = s0; i < s1; i++)
            r->bmin[i] = (int32_t)s0, r->bmax[i] = (int32_t)(s1 < c->Sk ? s1 : c->Sk);
        s0 = s1;
    }
    if (empty)
        r->bmin[0] = r->bmax[0] = 0;
}

/* x [outer, a, b] as [outer, b, a]; malloc'd. */
static float *swap_last2(const float *x, long outer, long a, long b)
{
    float *y = malloc((size_t)(outer * a * b > 0 ? outer * a * b : 1) * sizeof *y);
    for (long o = 0; o < outer; o++)
        for (long i = 0; i < a; i++)
            for (long j = 0; j < b; j++)
                y[(o * b + j) * a + i] = x[(o * a + i) * b + j];
    return y;
}

/* x (logical layout [outer, a, b]) encoded as the kernel reads it, transposed if swap. */
static void *encode_as(kg_dtype t, const float *x, long outer, long a, long b, int swap)
{
    if (!swap)
        return kgt_encode(t, x, outer * a * b);
    float *y = swap_last2(x, outer, a, b);
    void *e = kgt_encode(t, y, outer * a * b);
    free(y);
    return e;
}

static void setup(arun *r, const acase *c, unsigned long long seed, int empty_row)
{
    memset(r, 0, sizeof *r);
    r->nq_el = c->B * c->nq * c->Sq * c->d;
    r->nk_el = c->B * c->nkv * c->Sk * c->d;
    r->q = kgt_randn(c->t, r->nq_el, seed);
    r->k = kgt_randn(c->t, r->nk_el, seed + 1);
    r->v = kgt_randn(c->t, r->nk_el, seed + 2);
    r->eq = encode_as(c->t, r->q, c->B * c->nq, c->Sq, c->d, c->ntq);
    r->ek = encode_as(c->t, r->k, c->B * c->nkv, c->d, c->Sk, c->tpk);
    r->ev = kgt_encode(c->t, r->v, r->nk_el);
    if (c->sink) {
        r->sink = kgt_randn(KG_F32, c->B * c->nq, seed + 3);
        for (long i = 0; i < c->B * c->nq; i++)
            r->sink[i] = 1.0f + 2.0f * r->sink[i];
    }
    if (c->pack)
        make_bounds(r, c, seed + 4, empty_row);
    if (c->Sp > 0) {
        r->np_el = c->B * c->nkv * c->Sp * c->d;
        r->kp = kgt_randn(c->t, r->np_el, seed + 5);
        r->vp = kgt_randn(c->t, r->np_el, seed + 6);
        r->ekp = encode_as(c->t, r->kp, c->B * c->nkv, c->d, c->Sp, c->tpk);
        r->evp = kgt_encode(c->t, r->vp, r->np_el);
        r->used = (int32_t)c->used;
    }
    r->cpo = (int32_t)c->cp_off;
}

static void teardown(arun *r)
{
    void *ps[] = { r->q, r->k, r->v, r->kp, r->vp, r->sink, r->bmin, r->bmax, r->eq, r->ek,
                   r->ev, r->ekp, r->evp };
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        free(ps[i]);
}

static attention_cte_ref_opts ref_opts(const acase *c)
{
    attention_cte_ref_opts o = { 0 };
    o.B = c->B, o.nq = c->nq, o.nkv = c->nkv, o.Sq = c->Sq, o.Sk = c->Sk, o.d = c->d;
    o.scale = c->scale, o.causal = c->causal, o.window = c->window, o.cp_deg = 1;
    o.Sp = c->Sp, o.prior_used = c->used;
    o.cp_offset = c->cp ? c->cp_off : 0, o.cp_deg = c->cp_deg > 1 ? c->cp_deg : 1;
    o.cp_strided = c->cp_strided;
    return o;
}

static int call(const kg_kernel *k, void *out, void *neg_max, void *recip, const arun *r,
                const acase *c)
{
    int prior = c->Sp > 0;
    return ((kg_attention_cte_fn *)k->fn)(out, neg_max, recip, r->eq, r->ek, r->ev,
                                          prior ? r->ekp : NULL, prior ? r->evp : NULL,
                                          prior ? &r->used : NULL, c->cp ? &r->cpo : NULL,
                                          r->sink, r->bmin, r->bmax, c->B, c->Sq, c->Sk, c->Sp);
}

/* Runs the case's kernel and compares it with the reference: every row, or with row_step > 1
 * the rows i % row_step == 0 and the last of every head (the reference's plain loops are too
 * slow for all of a long sequence). */
static void check_sampled(acase c, long row_step, int empty_row)
{
    char problem[512];
    problem_of(&c, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    arun r;
    setup(&r, &c, 1000003ull * (unsigned long long)(c.Sq * 7 + c.Sk) + (unsigned)c.t, empty_row);
    void *out = kgt_poisoned(c.t, r.nq_el);
    int st = c.stats != KG_DTYPE_COUNT;
    long ns = c.B * c.nq * c.Sq;
    void *nm = st ? kgt_poisoned(c.stats, ns) : NULL, *rc_ = st ? kgt_poisoned(c.stats, ns) : NULL;
    float *want_nm = malloc((size_t)ns * sizeof *want_nm), *want_rc = malloc((size_t)ns * 4);
    int rc = call(k, out, nm, rc_, &r, &c);
    cr_assert_eq(rc, KG_OK, "%s returned %d", k->name, rc);
    attention_cte_ref_opts o = ref_opts(&c);
    float *want = malloc((size_t)r.nq_el * sizeof *want);
    float *got = kgt_decode(c.t, out, r.nq_el);
    if (c.tpout) { /* [B, nq, d, Sq] back to [B, nq, Sq, d] */
        float *g = swap_last2(got, c.B * c.nq, c.d, c.Sq);
        free(got);
        got = g;
    }
    long n = 0;
    for (long bh = 0; bh < c.B * c.nq; bh++)
        for (long i = 0; i < c.Sq; i++) {
            if (row_step > 1 && i % row_step != 0 && i != c.Sq - 1)
                continue;
            attention_cte_ref_row(want, want_nm, want_rc, r.q, r.k, r.v, r.kp, r.vp, r.sink,
                                  r.bmin, r.bmax, &o, bh / c.nq, bh % c.nq, i);
            long at = (bh * c.Sq + i) * c.d;
            for (long t = 0; t < c.d; t++, n++) {
                want[n] = kgt_round(c.t, want[at + t]);
                got[n] = got[at + t];
            }
        }
    long shape[2] = { n / c.d, c.d };
    char msg[1024];
    int ok = kgt_allclose_shaped(got, want, 2, shape, RTOL, ATOL, msg, sizeof msg);
    cr_assert(ok, "%s (B=%ld Sq=%ld Sk=%ld, checked rows in [b*nq+h, i] order, step %ld): %s",
              k->name, c.B, c.Sq, c.Sk, row_step, msg);
    if (st) { /* the statistics of every row */
        for (long i = 0; i < ns; i++)
            if (row_step > 1)
                want_nm[i] = want_rc[i] = 0; /* rows not sampled: not compared */
        float *gn = kgt_decode(c.stats, nm, ns), *gr = kgt_decode(c.stats, rc_, ns);
        for (long bh = 0, n2 = 0; bh < c.B * c.nq; bh++)
            for (long i = 0; i < c.Sq; i++, n2++)
                if (row_step > 1 && i % row_step != 0 && i != c.Sq - 1)
                    gn[n2] = gr[n2] = 0;
        long sshape[1] = { ns };
        for (long i = 0; i < ns; i++)
            want_nm[i] = kgt_round(c.stats, want_nm[i]), want_rc[i] = kgt_round(c.stats,
                                                                              want_rc[i]);
        ok = kgt_allclose_shaped(gn, want_nm, 1, sshape, RTOL, ATOL, msg, sizeof msg);
        cr_assert(ok, "%s: neg_max: %s", k->name, msg);
        ok = kgt_allclose_shaped(gr, want_rc, 1, sshape, RTOL, ATOL, msg, sizeof msg);
        cr_assert(ok, "%s: recip: %s", k->name, msg);
        free(gn), free(gr);
    }
    free(out), free(want), free(got), free(nm), free(rc_), free(want_nm), free(want_rc);
    teardown(&r);
}

static void check(acase c) { check_sampled(c, 1, 0); }

static acase base(kg_dtype t, long d, long nq, long nkv, long B, long Sq, long Sk)
{
    acase c = { t, d, nq, nkv, 1.0f / sqrtf((float)d), 1, 0, 0, 0, B, Sq, Sk,
                0, 0, KG_DTYPE_COUNT, 0, 0, 1, 0, 0, 0, 0 };
    return c;
}

TestSuite(attention_cte, .init = kgt_suite_init, .fini = kgt_suite_fini);

/* ---- edge shapes ------------------------------------------------------------------------------ */

/* Sizes around the tiles: one query, one key, Sq below, at and past a task's queries (64 rows
 * for one head per kv head) and a key tile (64), Sq != Sk both ways, d = 1, odd d, d = 64, 128. */
static const long EDGE[][4] = { /* d, B, Sq, Sk */
    { 64, 1, 1, 1 }, { 8, 2, 1, 5 }, { 7, 1, 33, 33 }, { 1, 1, 9, 9 }, { 64, 1, 65, 65 },
    { 128, 2, 70, 130 }, { 34, 1, 129, 40 }, { 16, 3, 5, 200 },
};

Test(attention_cte, dtypes_causal_and_not_on_edge_shapes)
{
    for (size_t dt = 0; dt < KGT_FLOAT_DTYPES; dt++)
        for (int causal = 0; causal < 2; causal++)
            for (size_t i = 0; i < sizeof EDGE / sizeof EDGE[0]; i++) {
                acase c = base(kgt_float_dtypes[dt], EDGE[i][0], 2, 2, EDGE[i][1], EDGE[i][2],
                               EDGE[i][3]);
                c.causal = causal;
                check(c);
            }
}

/* GQA: one head, 1:1, 3:1 (9 / 3), 4:1 (Llama's 32 / 8 in small), 8:1 (one kv head), 5:1 with
 * sizes that leave remainders of the task's MQ = 64 / G queries. */
Test(attention_cte, gqa_ratios)
{
    static const long heads[][2] = { { 1, 1 }, { 3, 3 }, { 9, 3 }, { 8, 2 }, { 8, 1 }, { 5, 1 } };
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
        check(base(KG_BF16, 64, heads[i][0], heads[i][1], 2, 37, 37));
        check(base(KG_F32, 32, heads[i][0], heads[i][1], 1, 100, 77));
    }
}

/* Sliding windows of 1, 8, 30 and one longer than the context, causal or not, with and without
 * a sink (scale 1, as upstream requires with a window). */
Test(attention_cte, sliding_window_and_sink)
{
    static const long win[] = { 1, 8, 30, 500 };
    for (size_t w = 0; w < sizeof win / sizeof win[0]; w++)
        for (int causal = 0; causal < 2; causal++)
            for (int sink = 0; sink < 2; sink++) {
                acase c = base(w % 2 ? KG_F32 : KG_BF16, 64, 4, 2, 1, 97, 97);
                c.scale = 1.0f, c.window = win[w], c.causal = causal, c.sink = sink;
                check(c);
                c.Sk = 150; /* more keys than queries */
                check(c);
            }
}

Test(attention_cte, sink_alone)
{
    for (size_t dt = 0; dt < KGT_FLOAT_DTYPES; dt++) {
        acase c = base(kgt_float_dtypes[dt], 64, 8, 1, 2, 45, 45);
        c.sink = 1;
        check(c);
        c.causal = 0;
        check(c);
    }
}

/* Packing bounds (segments of 1..9 queries), with the causal mask or not, with a window; a
 * query that sees no key gives NaN as the reference's softmax over -inf does (checked by the
 * comparator's NaN pattern), and 0 with a sink. */
Test(attention_cte, packing_bounds_and_fully_masked_rows)
{
    for (int causal = 0; causal < 2; causal++)
        for (int sink = 0; sink < 2; sink++) {
            acase c = base(KG_BF16, 64, 3, 3, 2, 70, 70);
            c.pack = 1, c.causal = causal, c.sink = sink;
            check_sampled(c, 1, 1);
            c.scale = 1.0f, c.window = 4;
            check_sampled(c, 1, 0);
        }
}

/* Prefix caching: P used of Sp stored prior keys ahead of the active ones (P = 0, part, all;
 * tiles straddling the prior/active boundary), causal or not, with a window that reaches into
 * the prior keys and a sink (scale 1, as upstream requires with a prefix cache). */
Test(attention_cte, prefix_caching)
{
    static const long pu[][2] = { { 5, 0 }, { 40, 23 }, { 100, 100 }, { 1, 1 }, { 150, 70 } };
    for (size_t i = 0; i < sizeof pu / sizeof pu[0]; i++)
        for (int causal = 0; causal < 2; causal++) {
            acase c = base(i % 2 ? KG_BF16 : KG_F32, 32, 6, 2, 2, 50, 50);
            c.scale = 1.0f, c.causal = causal, c.Sp = pu[i][0], c.used = pu[i][1];
            check(c);
            c.window = 30, c.sink = 1;
            check(c);
            c.Sk = 80, c.window = 0, c.t = KG_F16; /* more active keys than queries */
            check(c);
        }
}

/* cache_softmax: -max and 1 / sum of every row in each dtype, with a sink (in the sum), the
 * causal mask, a window, a prefix cache. */
Test(attention_cte, cache_softmax_statistics)
{
    for (size_t dt = 0; dt < KGT_FLOAT_DTYPES; dt++)
        for (int sink = 0; sink < 2; sink++) {
            acase c = base(KG_BF16, 64, 4, 2, 2, 70, 70);
            c.stats = kgt_float_dtypes[dt], c.sink = sink;
            check(c);
            c.scale = 1.0f, c.window = 9, c.Sp = 30, c.used = 20;
            check(c);
        }
}

/* Upstream's layout flags: q [.., d, Sq] (tp_q false), k and k_prior [.., Sk, d] (tp_k),
 * out [.., d, Sq] (tp_out), every combination in every dtype, with a prefix cache. */
Test(attention_cte, transposed_layouts)
{
    for (size_t dt = 0; dt < KGT_FLOAT_DTYPES; dt++)
        for (int v = 0; v < 8; v++) {
            acase c = base(kgt_float_dtypes[dt], 24, 4, 2, 2, 45, 70);
            c.ntq = v & 1, c.tpk = v >> 1 & 1, c.tpout = v >> 2 & 1;
            check(c);
            c.scale = 1.0f, c.Sp = 30, c.used = 19;
            check(c);
        }
}

/* Context parallelism: this rank's queries at offsets 0, 13, 200 of a longer context,
 * contiguous or every deg-th position, with the causal mask, a window, a prefix cache, a sink. */
Test(attention_cte, context_parallelism)
{
    static const long off[] = { 0, 13, 200 };
    static const int deg[] = { 1, 4, 16 };
    for (size_t o = 0; o < 3; o++)
        for (size_t g = 0; g < 3; g++)
            for (int strided = 0; strided < 2; strided++) {
                acase c = base(g % 2 ? KG_BF16 : KG_F32, 32, 4, 2, 1, 40, 300);
                c.scale = 1.0f, c.cp = 1, c.cp_off = off[o], c.cp_deg = deg[g];
                c.cp_strided = strided;
                check(c);
                c.window = 50, c.sink = 1, c.Sp = 20, c.used = 11;
                check(c);
            }
}

/* ---- upstream's and Llama's shapes ------------------------------------------------------------ */

/* attention_cte.md's test shapes without prefix caching or context parallelism, the sequence
 * cut to at most 1024 (the reference's loops), every 16th row checked. */
Test(attention_cte, upstream_shapes, .timeout = 120)
{
    acase c = base(KG_F32, 64, 1, 1, 1, 512, 1152);
    c.scale = 0.5f, c.causal = 0; /* non-causal fp32, Sk = 2.25 Sq */
    check_sampled(c, 16, 0);
    c = base(KG_F16, 64, 1, 1, 1, 1024, 1024); /* causal fp16 */
    check_sampled(c, 16, 0);
    c = base(KG_F32, 8, 1, 1, 1, 1024, 1024); /* tiny d */
    check_sampled(c, 16, 0);
    c = base(KG_F16, 128, 3, 3, 1, 512, 512); /* batch 3 */
    check_sampled(c, 16, 0);
    c = base(KG_BF16, 128, 9, 3, 1, 512, 512); /* GQA */
    check_sampled(c, 16, 0);
    c = base(KG_BF16, 64, 8, 1, 1, 640, 640); /* GQA Liger: sink, SWA 128 */
    c.scale = 1.0f, c.sink = 1, c.window = 128;
    check_sampled(c, 16, 0);
    c = base(KG_BF16, 64, 2, 2, 1, 512, 512); /* prefix, causal, sink */
    c.scale = 1.0f, c.sink = 1, c.Sp = 1024, c.used = 512;
    check_sampled(c, 16, 0);
    c = base(KG_BF16, 64, 3, 3, 1, 401, 401); /* odd lengths, all prior used */
    c.scale = 1.0f, c.Sp = c.used = 711;
    check_sampled(c, 16, 0);
    c = base(KG_BF16, 64, 4, 4, 1, 160, 2560); /* CP rank 13/16: prefix, sink, SWA 128 */
    c.scale = 1.0f, c.sink = 1, c.window = 128, c.Sp = 2045, c.used = 234;
    c.cp = 1, c.cp_off = 13 * 160, c.cp_deg = 16;
    check_sampled(c, 16, 0);
    c = base(KG_BF16, 128, 2, 2, 1, 256, 4096); /* CP rank 12/16, strided */
    c.scale = 1.0f, c.Sp = 1024, c.used = 811, c.cp = 1, c.cp_off = 12, c.cp_deg = 16;
    c.cp_strided = 1;
    check_sampled(c, 16, 0);
    c = base(KG_BF16, 64, 2, 2, 1, 512, 512); /* GPT-OSS SWA: prefix 128 / 100, SWA 128, sink */
    c.scale = 1.0f, c.sink = 1, c.window = 128, c.Sp = 128, c.used = 100;
    check_sampled(c, 16, 0);
}

/* Llama-3-8B prefill: 32 query heads, 8 kv heads, d 128, causal, S 512 and 2048. */
Test(attention_cte, llama3_8b_s512, .timeout = 120)
{
    check_sampled(base(KG_BF16, 128, 32, 8, 1, 512, 512), 32, 0);
}

Test(attention_cte, llama3_8b_s2048, .timeout = 120)
{
    check_sampled(base(KG_BF16, 128, 32, 8, 1, 2048, 2048), 256, 0);
}

/* ---- per-call sizes and bad problems ---------------------------------------------------------- */

/* The kernel without a prefix cache. */
static int plain(kg_attention_cte_fn *fn, void *o, const void *q, const void *k, const void *v,
                 const void *sink, const void *b0, const void *b1, long B, long Sq, long Sk)
{
    return fn(o, NULL, NULL, q, k, v, NULL, NULL, NULL, NULL, sink, b0, b1, B, Sq, Sk, 0);
}

Test(attention_cte, per_call_sizes_and_pointers)
{
    const kg_kernel *k = kgt_jit("attention_cte:dtype=f32,d=4,nq=2,nkv=1");
    kg_attention_cte_fn *fn = (kg_attention_cte_fn *)k->fn;
    float x[64] = { 0 }, y[64] = { 0 };
    int32_t b[4] = { 0 };
    cr_assert_eq(plain(fn, y, x, x, x, NULL, NULL, NULL, -1, 2, 2), KG_EARG, "B < 0");
    cr_assert_eq(plain(fn, y, x, x, x, NULL, NULL, NULL, 1, -2, 2), KG_EARG, "Sq < 0");
    cr_assert_eq(plain(fn, y, x, x, x, NULL, NULL, NULL, 1, 2, -2), KG_EARG, "Sk < 0");
    cr_assert_eq(plain(fn, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, 2, 2), KG_OK, "B = 0");
    cr_assert_eq(plain(fn, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1, 0, 2), KG_OK, "Sq = 0");
    cr_assert_eq(plain(fn, y, x, NULL, x, NULL, NULL, NULL, 1, 2, 2), KG_EARG, "NULL k");
    cr_assert_eq(plain(fn, NULL, x, x, x, NULL, NULL, NULL, 1, 2, 2), KG_EARG, "NULL out");
    cr_assert_eq(plain(fn, y, x, x, x, x, NULL, NULL, 1, 2, 2), KG_EARG, "a sink without sink=true");
    cr_assert_eq(plain(fn, y, x, x, x, NULL, b, b, 1, 2, 2), KG_EARG, "bounds without packing");
    k = kgt_jit("attention_cte:dtype=f32,d=4,nq=2,nkv=1,sink=true,sequence_packing=true");
    fn = (kg_attention_cte_fn *)k->fn;
    cr_assert_eq(plain(fn, y, x, x, x, NULL, b, b, 1, 2, 2), KG_EARG, "sink=true without a sink");
    cr_assert_eq(plain(fn, y, x, x, x, x, b, NULL, 1, 2, 2), KG_EARG, "packing without bound_max");
    cr_assert_eq(plain(fn, y, x, x, x, x, b, b, 1, 2, 2), KG_OK, "all given");
    int32_t used = 3;
    cr_assert_eq(fn(y, NULL, NULL, x, x, x, x, x, &used, NULL, x, b, b, 1, 2, 2, 4), KG_EARG,
                 "a prefix cache");
    cr_assert_eq(fn(y, NULL, NULL, x, x, x, NULL, NULL, NULL, b, x, b, b, 1, 2, 2, 4), KG_EARG,
                 "a cp_offset");
    k = kgt_jit("attention_cte:dtype=f32,d=4,nq=2,nkv=1,prefix_caching=true");
    fn = (kg_attention_cte_fn *)k->fn;
    cr_assert_eq(fn(y, NULL, NULL, x, x, x, x, x, &used, NULL, NULL, NULL, NULL, 1, 2, 2, 4), KG_OK, "3/4");
    cr_assert_eq(fn(y, NULL, NULL, x, x, x, x, x, &used, NULL, NULL, NULL, NULL, 1, 2, 2, 2), KG_EARG,
                 "3 of 2");
    cr_assert_eq(fn(y, NULL, NULL, x, x, x, x, x, &used, NULL, NULL, NULL, NULL, 1, 2, 2, -1), KG_EARG,
                 "Sp < 0");
    used = -1;
    cr_assert_eq(fn(y, NULL, NULL, x, x, x, x, x, &used, NULL, NULL, NULL, NULL, 1, 2, 2, 4), KG_EARG,
                 "used < 0");
    used = 1;
    cr_assert_eq(fn(y, NULL, NULL, x, x, x, NULL, x, &used, NULL, NULL, NULL, NULL, 1, 2, 2, 4), KG_EARG,
                 "NULL k_prior");
    cr_assert_eq(fn(y, NULL, NULL, x, x, x, x, x, NULL, NULL, NULL, NULL, NULL, 1, 2, 2, 4), KG_EARG,
                 "NULL prior_used_len");
    k = kgt_jit("attention_cte:dtype=f32,d=4,nq=2,nkv=1,context_parallel=true");
    fn = (kg_attention_cte_fn *)k->fn;
    cr_assert_eq(fn(y, NULL, NULL, x, x, x, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1, 2, 2, 1), KG_EARG,
                 "NULL cp_offset");
    cr_assert_eq(fn(y, NULL, NULL, x, x, x, NULL, NULL, NULL, b, NULL, NULL, NULL, 1, 2, 2, 1), KG_OK,
                 "cp_offset given");
}

Test(attention_cte, bad_problems_name_the_key)
{
    static const struct { const char *problem, *want; } bad[] = {
        { "attention_cte:d=0", "key 'd'" },
        { "attention_cte:d=129", "key 'd'" },
        { "attention_cte:nq=32,nkv=5", "key 'nkv'" },
        { "attention_cte:nq=0", "key 'nq'" },
        { "attention_cte:dtype=e4m3", "key 'dtype'" },
        { "attention_cte:sliding_window=-1", "key 'sliding_window'" },
        { "attention_cte:sliding_window=8,scale=0.5", "key 'scale'" },
        { "attention_cte:scale=inf", "key 'scale'" },
        { "attention_cte:sink=2", "key 'sink'" },
        { "attention_cte:causal=true", "key 'causal'" },
        { "attention_cte:prefix_caching=true,scale=0.5", "key 'scale'" },
        { "attention_cte:prefix_caching=true,sequence_packing=true", "key 'sequence_packing'" },
        { "attention_cte:Sp=5", "key 'Sp'" },
        { "attention_cte:context_parallel=true,scale=0.5", "key 'scale'" },
        { "attention_cte:global_cp_deg=4", "key 'global_cp_deg'" },
        { "attention_cte:context_parallel=true,global_cp_deg=33", "key 'global_cp_deg'" },
        { "attention_cte:cp_strided_q_slicing=true", "key 'cp_strided_q_slicing'" },
        { "attention_cte:context_parallel=true,global_cp_deg=2,sequence_packing=true",
          "key 'sequence_packing'" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        kgt_problem_rejected(bad[i].problem, bad[i].want);
}

/* Every option combination: the name parses back to the keys it spells, and names differ. */
Test(attention_cte, names_parse_back_and_are_unique)
{
    char names[64][256];
    int n = 0;
    for (int v = 0; v < 64; v++) {
        acase c = base(kgt_float_dtypes[v % 3], v % 2 ? 128 : 7, 8, v % 4 < 2 ? 8 : 2, 1, 1, 1);
        c.causal = (v >> 2) & 1, c.sink = (v >> 3) & 1, c.pack = (v >> 4) & 1;
        c.window = (v >> 5) & 1 ? 16 : 0;
        c.Sp = c.window && !c.pack ? 8 : 0;
        c.scale = c.window ? 1.0f : (v & 1 ? 0.125f : 1.0f);
        char problem[512];
        problem_of(&c, problem, sizeof problem);
        kgt_name_parses_back(problem, names[n], sizeof names[0]);
        for (int i = 0; i < n; i++)
            cr_assert_str_neq(names[i], names[n], "two problems named %s", names[n]);
        n++;
    }
}

/* ---- shared/vectors/attention_cte ------------------------------------------------------------- */

/* The case's float input `name` encoded in t; NULL if the case has none. */
static void *vector_tensor(kgt_case *vc, const char *name, kg_dtype t)
{
    if (!kgt_case_input_dtype(vc, name))
        return NULL;
    float *x = kgt_case_as(vc, name, KG_F32);
    cr_assert_not_null(x, "%s: %s", kgt_case_name(vc), kgt_case_error(vc));
    void *e = kgt_encode(t, x, kg_npy_count(kgt_case_input(vc, name)));
    free(x);
    return e;
}

/* An integer input as int32 (the reference's tests pass bound_min / bound_max as fp32: whole
 * numbers in any stored dtype are taken); NULL if the case has none. */
static int32_t *vector_ints(kgt_case *vc, const char *name)
{
    if (!kgt_case_input_dtype(vc, name))
        return NULL;
    int32_t *v = kgt_case_as(vc, name, KG_I32);
    cr_assert_not_null(v, "%s: %s", kgt_case_name(vc), kgt_case_error(vc));
    return v;
}

/* Compares a cache_softmax statistic (the kernel's [bs, Sq] in dtype st) with the case's
 * out_name: upstream's [bs, 128, Sq/128] (element [b, p, g] is query g*128 + p) or [bs, Sq]. */
static void vector_stats(kgt_case *vc, const char *kname, const char *out_name, kg_dtype st,
                         const void *got, long bs, long Sq)
{
    const char *name = kgt_case_name(vc);
    const kg_npy *want = kgt_case_output(vc, out_name);
    double rtol, atol;
    cr_assert(want && kgt_case_tol(vc, out_name, &rtol, &atol), "%s: %s with a tolerance: %s",
              name, out_name, kgt_case_error(vc));
    cr_assert_eq(kg_npy_count(want), bs * Sq, "%s: %s shape", name, out_name);
    int packed = want->rank == 3 && want->shape[1] == 128;
    float *g = kgt_decode(st, got, bs * Sq), *p = malloc((size_t)(bs * Sq) * sizeof *p);
    for (long b = 0; b < bs; b++)
        for (long i = 0; i < Sq; i++)
            p[packed ? b * Sq + (i % 128) * (Sq / 128) + i / 128 : b * Sq + i] = g[b * Sq + i];
    float *gold = malloc((size_t)(bs * Sq) * sizeof *gold);
    for (long i = 0; i < bs * Sq; i++)
        gold[i] = kgt_round(st, ((const float *)want->data)[i]);
    char msg[1024];
    cr_assert(kgt_allclose_shaped(p, gold, want->rank, want->shape, rtol, atol, msg, sizeof msg),
              "vector %s (%s): %s: %s", name, kname, out_name, msg);
    kgt_case_compared(vc, out_name);
    free(g), free(p), free(gold);
}

/* Upstream's layouts: q [bs, Sq, d] (tp_q; else [bs, d, Sq]), k [bs_kv, d, Sk] (else tp_k
 * [bs_kv, Sk, d]), v [bs_kv, Sk, d], out [bs, Sq, d] (tp_out: [bs, d, Sq]); here B = 1, nq = bs,
 * nkv = bs_kv (the same bytes). Every option and input a case has is mapped, or the case
 * fails by name. */
static void run_vector(kgt_case *vc)
{
    const char *name = kgt_case_name(vc), *sdt = "f32";
    double bs, bs_kv, Sq, Sk, d, scale = 1.0, window = 0, deg = 1;
    int causal = 1, tp_q = 1, tp_k = 0, tp_out = 0, stats = 0, strided = 0;
    cr_assert(kgt_case_opt_num(vc, "bs", &bs) && kgt_case_opt_num(vc, "bs_kv", &bs_kv) &&
              kgt_case_opt_num(vc, "Sq", &Sq) && kgt_case_opt_num(vc, "Sk", &Sk) &&
              kgt_case_opt_num(vc, "d", &d), "%s: shape options", name);
    kgt_case_opt_num(vc, "scale", &scale);
    kgt_case_opt_num(vc, "sliding_window", &window);
    kgt_case_opt_bool(vc, "causal_mask", &causal);
    kgt_case_opt_bool(vc, "tp_q", &tp_q);
    kgt_case_opt_bool(vc, "tp_k", &tp_k);
    kgt_case_opt_bool(vc, "tp_out", &tp_out);
    kgt_case_opt_bool(vc, "cache_softmax", &stats);
    kgt_case_opt_str(vc, "softmax_dtype", &sdt);
    kgt_case_opt_num(vc, "global_cp_deg", &deg);
    kgt_case_opt_bool(vc, "cp_strided_q_slicing", &strided);
    /* hardware: PSUM accumulation dtype (fp32 on every CPU path, attention_cte.md) */
    kgt_case_opt_has(vc, "mm_out_dtype");
    int st = kgt_case_dtype_from_name(sdt);
    cr_assert(st == KG_F32 || st == KG_BF16 || st == KG_F16, "%s: softmax_dtype '%s'", name,
              sdt);
    const kg_npy *q = kgt_case_input(vc, "q"), *k = kgt_case_input(vc, "k");
    cr_assert(q && k && kgt_case_input(vc, "v"), "%s: %s", name, kgt_case_error(vc));
    static const char *const fl[] = { "q", "k", "v", "k_prior", "v_prior" };
    int ti = kgt_case_float_dtype(vc, fl, 5);
    cr_assert(ti >= 0, "%s: %s", name, kgt_case_error(vc));
    kg_dtype t = (kg_dtype)ti;
    float *sink = kgt_case_input_dtype(vc, "sink") ? kgt_case_as(vc, "sink", KG_F32) : NULL;
    int32_t *bmin = vector_ints(vc, "bound_min"), *bmax = vector_ints(vc, "bound_max");
    int32_t *cpo = vector_ints(vc, "cp_offset"), *used = vector_ints(vc, "prior_used_len");
    cr_assert(!bmin == !bmax, "%s: bound_min and bound_max come together", name);
    const kg_npy *kp = kgt_case_input_dtype(vc, "k_prior") ? kgt_case_input(vc, "k_prior") : NULL;
    cr_assert(!kp || (kp->rank == 3 && used && kgt_case_input_dtype(vc, "v_prior")),
              "%s: prefix cache needs k_prior [bs_kv, ., .], v_prior, prior_used_len", name);
    /* the prior's length is its S axis: [bs_kv, d, Sp] like k, or [bs_kv, Sp, d] with tp_k */
    long Sp = kp ? kp->shape[tp_k ? 1 : 2] : 0;
    acase c = { t, (long)d, (long)bs, (long)bs_kv, (float)scale, causal, (long)window,
                sink != NULL, bmin != NULL, 1, (long)Sq, (long)Sk, Sp, used ? used[0] : 0,
                stats ? (kg_dtype)st : KG_DTYPE_COUNT, cpo != NULL, cpo ? cpo[0] : 0, (int)deg,
                strided, !tp_q, tp_k, tp_out };
    char problem[512];
    problem_of(&c, problem, sizeof problem);
    const kg_kernel *kern = kgt_jit(problem);
    long nq = kg_npy_count(q);
    void *eq = vector_tensor(vc, "q", t), *ek = vector_tensor(vc, "k", t);
    void *ev = vector_tensor(vc, "v", t), *out = kgt_poisoned(t, nq);
    void *ekp = vector_tensor(vc, "k_prior", t), *evp = vector_tensor(vc, "v_prior", t);
    void *nm = stats ? kgt_poisoned((kg_dtype)st, c.nq * c.Sq) : NULL;
    void *rc_ = stats ? kgt_poisoned((kg_dtype)st, c.nq * c.Sq) : NULL;
    int rc = ((kg_attention_cte_fn *)kern->fn)(out, nm, rc_, eq, ek, ev, ekp, evp, used, cpo,
                                               sink, bmin, bmax, 1, c.Sq, c.Sk, c.Sp);
    cr_assert_eq(rc, KG_OK, "%s: %s returned %d", name, kern->name, rc);
    char msg[1024];
    int ok = kgt_close_to_case(vc, "out_out", t, out, msg, sizeof msg);
    cr_assert(ok >= 0, "%s: no tolerance for out_out", name);
    cr_assert(ok, "vector %s (%s): %s", name, kern->name, msg);
    if (stats) {
        vector_stats(vc, kern->name, "out_neg_max", (kg_dtype)st, nm, c.nq, c.Sq);
        vector_stats(vc, kern->name, "out_recip", (kg_dtype)st, rc_, c.nq, c.Sq);
    }
    free(eq), free(ek), free(ev), free(out), free(ekp), free(evp), free(nm), free(rc_);
    free(sink), free(bmin), free(bmax), free(cpo), free(used);
}

Test(attention_cte, shared_vectors) { kgt_each_case("attention_cte", run_vector); }

/* [n0, n1, n2] -> [n0, n2, n1]: the tp_k layouts from the reference's. */
static float *swap12(const float *x, long n0, long n1, long n2)
{
    float *y = malloc((size_t)(n0 * n1 * n2) * sizeof *y);
    for (long a = 0; a < n0; a++)
        for (long i = 0; i < n1; i++)
            for (long j = 0; j < n2; j++)
                y[(a * n2 + j) * n1 + i] = x[(a * n1 + i) * n2 + j];
    return y;
}

/* Synthetic cases in the vector format for what the shared sample lacks (expected outputs from
 * tests/ref): packing bounds stored as fp32 (as upstream's tests pass them) with cache_softmax
 * in upstream's [bs, 128, Sq/128] layout; a prefix cache with tp_k layouts, a used length
 * and a context-parallel offset given as int32 tensors. */
Test(attention_cte, synthetic_vectors_bounds_stats_prefix_cp)
{
    for (int v = 0; v < 2; v++) {
        attention_cte_ref_opts o = { 1, 2, 1, v ? 33 : 256, v ? 40 : 256, 16, v ? 1.0f : 0.25f,
                                     1, 0, v ? 24 : 0, v ? 17 : 0, v ? 5 : 0, 1, 0 };
        long nqe = o.nq * o.Sq * o.d, nke = o.nkv * o.Sk * o.d, npe = o.nkv * o.Sp * o.d;
        float *q = kgt_randn(KG_BF16, nqe, 11 + v), *k = kgt_randn(KG_BF16, nke, 12 + v);
        float *vv = kgt_randn(KG_BF16, nke, 13 + v);
        float *kp = v ? kgt_randn(KG_BF16, npe, 14) : NULL, *vp = v ? kgt_randn(KG_BF16, npe, 15)
                                                                   : NULL;
        int32_t *bmin = malloc((size_t)o.Sq * 4), *bmax = malloc((size_t)o.Sq * 4);
        float *fmin = malloc((size_t)o.Sq * 4), *fmax = malloc((size_t)o.Sq * 4);
        for (long i = 0; i < o.Sq; i++) { /* segments of 16 queries, each its own keys */
            bmin[i] = (int32_t)(i / 16 * 16), bmax[i] = (int32_t)(i / 16 * 16 + 16);
            fmin[i] = (float)bmin[i], fmax[i] = (float)bmax[i];
        }
        float *out = malloc((size_t)nqe * 4), *nm = malloc((size_t)(o.nq * o.Sq) * 4);
        float *rc = malloc((size_t)(o.nq * o.Sq) * 4);
        attention_cte_ref(out, nm, rc, q, k, vv, kp, vp, NULL, v ? NULL : bmin,
                          v ? NULL : bmax, &o);
        kgt_casew *w = kgt_casew_new("attention_cte", v ? "prefix_cp_tpk" : "bounds_f32_stats");
        long qs[3] = { o.nq, o.Sq, o.d }, ks[3] = { o.nkv, o.Sk, o.d };
        long vs[3] = { o.nkv, o.Sk, o.d }, bs[2] = { o.Sq, 1 };
        kgt_casew_input(w, "q", "bf16", q, 3, qs);
        float *kt = v ? swap12(k, o.nkv, o.d, o.Sk) : NULL; /* tp_k: [bs_kv, Sk, d] */
        if (!v)
            ks[1] = o.d, ks[2] = o.Sk;
        kgt_casew_input(w, "k", "bf16", v ? kt : k, 3, ks);
        kgt_casew_input(w, "v", "bf16", vv, 3, vs);
        float *kpt = v ? swap12(kp, o.nkv, o.d, o.Sp) : NULL;
        if (v) {
            long ps[3] = { o.nkv, o.Sp, o.d };
            kgt_casew_input(w, "k_prior", "bf16", kpt, 3, ps);
            kgt_casew_input(w, "v_prior", "bf16", vp, 3, ps);
            int32_t used = (int32_t)o.prior_used, off = (int32_t)o.cp_offset;
            kg_npy u = { .dtype = KG_I32, .rank = 1, .shape = { 1 }, .data = &used };
            kg_npy cpo = { .dtype = KG_I32, .rank = 2, .shape = { 1, 1 }, .data = &off };
            kgt_casew_input_npy(w, "prior_used_len", "i32", &u);
            kgt_casew_input_npy(w, "cp_offset", "i32", &cpo);
            kgt_casew_opt_num(w, "global_cp_deg", 1);
            kgt_casew_opt_bool(w, "cp_strided_q_slicing", 0);
        } else {
            kgt_casew_input(w, "bound_min", "f32", fmin, 2, bs);
            kgt_casew_input(w, "bound_max", "f32", fmax, 2, bs);
            /* upstream's stats layout: [b, p, g] holds query g*128 + p */
            long ss[3] = { o.nq, 128, o.Sq / 128 };
            float *pn = malloc((size_t)(o.nq * o.Sq) * 4), *pr = malloc((size_t)(o.nq * o.Sq) * 4);
            for (long b = 0; b < o.nq; b++)
                for (long i = 0; i < o.Sq; i++) {
                    long at = b * o.Sq + (i % 128) * (o.Sq / 128) + i / 128;
                    pn[at] = nm[b * o.Sq + i], pr[at] = rc[b * o.Sq + i];
                }
            kgt_casew_opt_bool(w, "cache_softmax", 1);
            kgt_casew_opt_str(w, "softmax_dtype", "f32");
            kgt_casew_output(w, "out_neg_max", pn, 3, ss, 1e-5, 1e-5);
            kgt_casew_output(w, "out_recip", pr, 3, ss, 1e-4, 1e-6);
            free(pn), free(pr);
        }
        kgt_casew_opt_num(w, "bs", (double)o.nq), kgt_casew_opt_num(w, "bs_kv", (double)o.nkv);
        kgt_casew_opt_num(w, "Sq", (double)o.Sq), kgt_casew_opt_num(w, "Sk", (double)o.Sk);
        kgt_casew_opt_num(w, "d", (double)o.d), kgt_casew_opt_num(w, "scale", o.scale);
        kgt_casew_opt_bool(w, "causal_mask", o.causal);
        kgt_casew_opt_num(w, "sliding_window", 0);
        kgt_casew_opt_bool(w, "tp_q", 1), kgt_casew_opt_bool(w, "tp_k", v);
        kgt_casew_opt_bool(w, "tp_out", 0);
        kgt_casew_output(w, "out_out", out, 3, qs, 2e-2, 1e-5);
        kgt_run_case(kgt_casew_finish(w), run_vector);
        kgt_casew_free(w);
        free(q), free(k), free(vv), free(kp), free(vp), free(kt), free(kpt);
        free(bmin), free(bmax), free(fmin), free(fmax), free(out), free(nm), free(rc);
    }
}

/* ---- JIT vs AOT ------------------------------------------------------------------------------- */

/* Runs kernels a (AOT) and j (JIT) on the same inputs at B = 2, Sq = 70, Sk = 75 (past a tile
 * of queries and of keys), 77 of 90 prior keys with a prefix cache; their outputs must be the
 * same bytes. */
static void compare_builds(const kg_kernel *a, const kg_kernel *j)
{
    char dt[16];
    long d, nq, nkv, w;
    char b1[8], b2[8], b3[8], b4[8], b5[8], b6[8], b7[8], b8[8];
    cr_assert(kg_problem_long(a->problem, "d", &d) && kg_problem_long(a->problem, "nq", &nq) &&
              kg_problem_long(a->problem, "nkv", &nkv) &&
              kg_problem_long(a->problem, "sliding_window", &w) &&
              kg_problem_str(a->problem, "dtype", dt, sizeof dt) &&
              kg_problem_str(a->problem, "causal_mask", b1, sizeof b1) &&
              kg_problem_str(a->problem, "sink", b2, sizeof b2) &&
              kg_problem_str(a->problem, "sequence_packing", b3, sizeof b3) &&
              kg_problem_str(a->problem, "prefix_caching", b4, sizeof b4) &&
              kg_problem_str(a->problem, "context_parallel", b5, sizeof b5) &&
              kg_problem_str(a->problem, "tp_q", b6, sizeof b6) &&
              kg_problem_str(a->problem, "tp_k", b7, sizeof b7) &&
              kg_problem_str(a->problem, "tp_out", b8, sizeof b8),
              "%s", a->problem);
    acase c = base((kg_dtype)kg_dtype_from_name(dt), d, nq, nkv, 2, 70, 75);
    c.causal = strcmp(b1, "true") == 0, c.sink = strcmp(b2, "true") == 0;
    c.pack = strcmp(b3, "true") == 0, c.window = w;
    if (strcmp(b4, "true") == 0)
        c.Sp = 90, c.used = 77; /* past a key tile, the boundary inside one */
    c.cp = strcmp(b5, "true") == 0, c.cp_off = 9; /* global_cp_deg: not in any spec */
    c.ntq = strcmp(b6, "false") == 0, c.tpk = strcmp(b7, "true") == 0;
    c.tpout = strcmp(b8, "true") == 0;
    arun r;
    setup(&r, &c, 99, 0);
    void *oa = kgt_build_output(c.t, r.nq_el, KGT_AOT), *oj = kgt_build_output(c.t, r.nq_el,
                                                                                 KGT_JIT);
    int st = strstr(a->problem, "cache_softmax=true") != NULL;
    char sd[16] = "f32";
    cr_assert(kg_problem_str(a->problem, "softmax_dtype", sd, sizeof sd), "%s", a->problem);
    kg_dtype smt = (kg_dtype)kg_dtype_from_name(sd);
    long ns = c.B * c.nq * c.Sq;
    void *na = st ? kgt_build_output(smt, ns, KGT_AOT) : NULL;
    void *nj = st ? kgt_build_output(smt, ns, KGT_JIT) : NULL;
    void *ra = st ? kgt_build_output(smt, ns, KGT_AOT) : NULL;
    void *rj = st ? kgt_build_output(smt, ns, KGT_JIT) : NULL;
    cr_assert_eq(call(a, oa, na, ra, &r, &c), KG_OK, "%s (AOT)", a->name);
    cr_assert_eq(call(j, oj, nj, rj, &r, &c), KG_OK, "%s (JIT)", a->name);
    long dims[4] = { c.B, c.nq, c.Sq, c.d };
    char msg[1024];
    cr_assert(kgt_same_bytes(oj, oa, c.t, r.nq_el, 4, dims, msg, sizeof msg), "%s: %s", a->name,
              msg);
    if (st) {
        cr_assert(kgt_same_bytes(nj, na, smt, ns, 3, dims, msg, sizeof msg), "%s: neg_max: %s",
                  a->name, msg);
        cr_assert(kgt_same_bytes(rj, ra, smt, ns, 3, dims, msg, sizeof msg), "%s: recip: %s",
                  a->name, msg);
    }
    free(oa), free(oj), free(na), free(nj), free(ra), free(rj);
    teardown(&r);
}

/* Every attention_cte kernel of every AOT-built spec, JIT-compiled from generated/<spec>/. */
Test(attention_cte, jit_and_aot_are_bit_identical)
{
    cr_assert_gt(kgt_each_aot_jit_pair("attention_cte", compare_builds), 0,
                 "no AOT-built spec has an attention_cte kernel");
}
