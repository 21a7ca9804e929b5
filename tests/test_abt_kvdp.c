/* tests/test_abt_kvdp.c: attention_block_tkg with KV data parallelism (kvdp > 1), threads as
 * ranks (util/abt_group.h): each rank bit for bit the kvdp = 1 kernel on its whole problem, held
 * to tests/ref/attention_block_tkg_ref.c; JIT vs gcc's AOT build; the refused calls. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/dtype.h"
#include "kgen/gcc.h"
#include "kgen/kernels.h"
#include "kgen/kgen.h"
#include "ref/ref.h"
#include "util/abt_call.h"
#include "util/abt_group.h"
#include "util/compare.h"
#include "util/jitp.h"
#include "util/ranks.h"
#include "util/tensors.h"

TestSuite(attention_block_tkg, .init = kgt_suite_init, .fini = kgt_suite_fini);

/* ---- KV data parallelism (kvdp > 1) --------------------------------------------------------- */
/* The groups of util/abt_group.h: rank r's outputs must be the bits of the kvdp = 1 kernel on
 * rank r's whole problem, which itself is held to the plain-loop reference. */

/* Rank r of run a against the kvdp = 1 kernel on rank r's whole problem, bit for bit (X_out,
 * the rank's caches or K_tkg, V_tkg); that kernel's X_out against the reference. */
static void check_rank(const abt_group *g, const abt_kvdp_run *a, const kg_kernel *plain, int r)
{
    const attn_block_ref_opts *o = &g->c.o;
    abt_call w = abt_whole_of(g, r);
    long nx = abt_n_xout(&w), nc = abt_n_cache_el(&w), nk = abt_n_tok(&w) * o->D;
    size_t kw = abt_kv_size(&w);
    void *out = kgt_build_output(w.t, nx, KGT_AOT);
    void *kc = abt_kv_encode(&w, w.K_cache, nc), *vc = abt_kv_encode(&w, w.V_cache, nc);
    void *kt = o->update ? NULL : kgt_filled((size_t)nk * kw, KGT_AOT);
    void *vt = o->update ? NULL : kgt_filled((size_t)nk * kw, KGT_AOT);
    cr_assert_eq(a->status[r], KG_OK, "%s rank %d refused its call", a->k->name, r);
    cr_assert_eq(abt_run_kernel(plain, &w, out, kc, vc, kt, vt), KG_OK, "%s", plain->name);
    char msg[1024];
    cr_assert(kgt_builds_equal(a->out[r], out, nx, kgt_dtype_size(w.t), msg, sizeof msg),
              "%s rank %d of %d: X_out against %s: %s", a->k->name, r, g->G, plain->name, msg);
    long bl = g->bl, S = o->S, D = o->D;
    if (o->update) {
        long off = abt_cache_offset(g, r), n = abt_n_cache_el(&a->rc[r]);
        cr_assert(kgt_builds_equal(a->kc[r], (char *)kc + (size_t)off * kw, n, kw, msg,
                                   sizeof msg), "%s rank %d: K_cache: %s", a->k->name, r, msg);
        cr_assert(kgt_builds_equal(a->vc[r], (char *)vc + (size_t)off * kw, n, kw, msg,
                                   sizeof msg), "%s rank %d: V_cache: %s", a->k->name, r, msg);
    } else {
        /* K_tkg [D, bl, S] of the rank against [D, B, S]; V_tkg rows r * bl .. */
        char *ks = malloc((size_t)(D * bl * S) * kw);
        for (long i = 0; i < D; i++)
            memcpy(ks + (size_t)(i * bl * S) * kw,
                   (char *)kt + (size_t)((i * o->B + r * bl) * S) * kw, (size_t)(bl * S) * kw);
        cr_assert(kgt_builds_equal(a->kt[r], ks, D * bl * S, kw, msg, sizeof msg),
                  "%s rank %d: K_tkg: %s", a->k->name, r, msg);
        cr_assert(kgt_builds_equal(a->vt[r], (char *)vt + (size_t)(r * bl * S * D) * kw,
                                   bl * S * D, kw, msg, sizeof msg), "%s rank %d: V_tkg: %s",
                  a->k->name, r, msg);
        free(ks);
    }
    /* the whole problem against the plain loops, as check() does */
    float *want = malloc(sizeof(float) * (size_t)nx);
    long nko = o->update ? nc : nk;
    float *kwant = malloc(sizeof(float) * (size_t)nko);
    float *vwant = malloc(sizeof(float) * (size_t)nko);
    attn_block_ref_in in = { .X = w.X, .gamma = w.gamma, .W_qkv = w.W_qkv, .cos = w.cos,
                             .sin = w.sin, .K_cache = w.K_cache, .V_cache = w.V_cache,
                             .W_out = w.W_out, .bias_out = w.bias_out, .mask = w.mask,
                             .idx = w.idx, .bias_qkv = w.bias_qkv, .gq_pre = w.gq_pre,
                             .gk_pre = w.gk_pre, .gq_post = w.gq_post, .gk_post = w.gk_post,
                             .sink = w.sink, .table = w.table, .k_scale = w.kv_scale[0],
                             .v_scale = w.kv_scale[1], .w_qkv = w.w_qkv, .s_qkv = w.s_qkv,
                             .w_out = &w.w_out, .s_out = w.s_out };
    attention_block_tkg_ref(want, kwant, vwant, &in, o);
    long xs[2] = { 1, nx };
    int any8 = o->fp8 || o->static_qkv || o->static_out;
    cr_assert(kgt_close_to_ref(w.t, out, want, 2, xs, any8 ? 0.07 : 1.5e-2, 1e-5, msg,
                               sizeof msg), "%s (rank %d's whole problem): X_out %s",
              plain->name, r, msg);
    cr_assert(abt_kv_close(&w, o->update ? kc : kt, kwant, nko, msg, sizeof msg), "%s: K %s",
              plain->name, msg);
    free(want), free(kwant), free(vwant);
    free(out), free(kc), free(vc), free(kt), free(vt), free(w.mask);
}

/* The group of G ranks of bl sequences each on options o (dtype t), every rank checked. */
static void check_kvdp(const attn_block_ref_opts *o, kg_dtype t, int G, long bl)
{
    abt_group g;
    abt_make_group(&g, o, t, G, bl, 300 + (unsigned long long)(G * 17 + o->S));
    char plain[1024], kv[1100];
    abt_group_problems(&g, plain, kv, sizeof kv);
    const kg_kernel *kk = kgt_jit(kv), *kp = kgt_jit(plain);
    abt_kvdp_run a;
    abt_run_group(&a, kk, &g, KGT_JIT);
    for (int r = 0; r < G; r++)
        check_rank(&g, &a, kp, r);
    abt_run_free(&a);
    abt_group_free(&g);
}

/* Options of the KVDP cases: flat, fp8 and block caches, K_tkg outputs, sinks, STATIC. */
static attn_block_ref_opts kvdp_opts(int i)
{
    attn_block_ref_opts o = abt_base_opts();
    switch (i) {
    case 0: break;
    case 1: o.fp8 = 1; break;
    case 2: o.blk = 8; break;
    case 3: o.fp8 = 1, o.blk = 8, o.update = 0, o.sink = 1; break;
    case 4: o.wout = 0, o.update = 0, o.tpk_t = 1, o.sink = 1; break;
    case 5: o.static_qkv = o.static_out = 1, o.bias_qkv = o.bout = 1, o.S = 1; break;
    case 6: o.skip = 1, o.norm = 1; break;
    }
    return o;
}
enum { KVDP_CASES = 7 };

Test(attention_block_tkg, kvdp_threads_as_ranks, .timeout = 300 * KGT_TIME_SCALE)
{
    static const int GROUPS[] = { 2, 4 };
    for (size_t gi = 0; gi < 2; gi++)
        for (int i = 0; i < KVDP_CASES; i++) {
            attn_block_ref_opts o = kvdp_opts(i);
            check_kvdp(&o, i == 5 ? KG_F32 : KG_BF16, GROUPS[gi], gi == 0 ? 2 : 1);
        }
}

/* One rank of three sequences each and S_tkg 7, in fp16. */
Test(attention_block_tkg, kvdp_odd_shapes, .timeout = 120 * KGT_TIME_SCALE)
{
    attn_block_ref_opts o = abt_base_opts();
    o.S = 7, o.N = 1, o.D = 2, o.H = 8, o.S_ctx = 9, o.S_max = 9, o.scale = 0.7f;
    check_kvdp(&o, KG_F16, 2, 3);
    o.N = 5, o.D = 34, o.H = 130, o.S = 1, o.S_ctx = 600, o.S_max = 650, o.blk = 13;
    check_kvdp(&o, KG_BF16, 2, 1);
}

/* kvdp kernels are in no bundled spec (a tool running every kernel of a spec on one process
 * would see them refuse), so their AOT build here is gcc's at run time (kgen/gcc.h, the AOT
 * library's flags): each rank's outputs from both builds, byte for byte. */
static const kg_kernel *gcc_build(kg_registry *reg, const char *problem)
{
    kgg_kernel k;
    cr_assert_eq(kgg_problem(kgt_gen(), problem, &k), KG_OK, "%s: %s", problem,
                 kgg_error(kgt_gen()));
    kg_kernel_info info = { k.family, k.name, k.problem, k.flops, k.read, k.written };
    char label[512];
    snprintf(label, sizeof label, "%s.c", k.name);
    const char *labels[1] = { label }, *srcs[1] = { k.text };
    kg_gcc_options opt = { .cache_dir = KGEN_TEST_CACHE_DIR, .cc = NULL };
    cr_assert_eq(kg_gcc_compile_with(reg, &opt, 1, &info, labels, srcs, NULL), KG_OK,
                 "gcc build of %s: %s", k.name, kg_registry_error(reg));
    const kg_kernel *found = kg_registry_find(reg, k.name);
    kgg_kernel_clear(&k);
    return found;
}

Test(attention_block_tkg, kvdp_jit_and_aot_are_bit_identical, .timeout = 300 * KGT_TIME_SCALE)
{
    static const int CASES[] = { 0, 3, 4, 5 };
    kg_registry *reg = kg_registry_new();
    long compared = kgt_builds_compared();
    for (int G = 2; G <= 4; G += 2)
        for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
            attn_block_ref_opts o = kvdp_opts(CASES[i]);
            abt_group g;
            abt_make_group(&g, &o, CASES[i] == 5 ? KG_F32 : KG_BF16, G, 4 / G, 500 + (unsigned)i);
            char plain[1024], kv[1100];
            abt_group_problems(&g, plain, kv, sizeof kv);
            const kg_kernel *kj = kgt_jit(kv), *ka = gcc_build(reg, kv);
            abt_kvdp_run a, j;
            abt_run_group(&a, ka, &g, KGT_AOT);
            abt_run_group(&j, kj, &g, KGT_JIT);
            char msg[1024];
            for (int r = 0; r < G; r++) {
                const abt_call *c = &a.rc[r];
                size_t w = abt_kv_size(c);
                cr_assert(a.status[r] == KG_OK && j.status[r] == KG_OK, "%s rank %d", kj->name,
                          r);
                cr_assert(kgt_builds_equal(j.out[r], a.out[r], abt_n_xout(c), kgt_dtype_size(c->t),
                                           msg, sizeof msg), "%s rank %d X_out: %s", kj->name,
                          r, msg);
                long n = c->o.update ? abt_n_cache_el(c) : g.bl * c->o.S * c->o.D;
                cr_assert(kgt_builds_equal(c->o.update ? j.kc[r] : j.kt[r],
                                           c->o.update ? a.kc[r] : a.kt[r], n, w, msg,
                                           sizeof msg), "%s rank %d K: %s", kj->name, r, msg);
                cr_assert(kgt_builds_equal(c->o.update ? j.vc[r] : j.vt[r],
                                           c->o.update ? a.vc[r] : a.vt[r], n, w, msg,
                                           sizeof msg), "%s rank %d V: %s", kj->name, r, msg);
            }
            abt_run_free(&a), abt_run_free(&j);
            abt_group_free(&g);
        }
    cr_assert_eq(kgt_builds_compared() - compared, 3 * (2 + 4) * 4, "every rank compared");
    kg_registry_free(reg);
}

/* ---- KVDP refusals --------------------------------------------------------------------------- */

Test(attention_block_tkg, kvdp_refusals)
{
    abt_group g;
    attn_block_ref_opts o = abt_base_opts();
    abt_make_group(&g, &o, KG_BF16, 2, 2, 9);
    char plain[1024], kv[1100], bad[1100];
    abt_group_problems(&g, plain, kv, sizeof kv);
    /* generation time: B a multiple of kvdp, kvdp at least 1 */
    snprintf(bad, sizeof bad, "%s,kvdp=2,B=3", plain);
    kgt_problem_rejected(bad, "kvdp");
    snprintf(bad, sizeof bad, "%s,kvdp=0", plain);
    kgt_problem_rejected(bad, "kvdp");
    const kg_kernel *kk = kgt_jit(kv);
    abt_kvdp_run a;
    /* call time, every rank: B not a multiple of kvdp */
    abt_prepare_group(&a, kk, &g, KGT_JIT);
    for (int r = 0; r < 2; r++)
        a.rc[r].o.B = 3;
    cr_assert_eq(kgt_run_ranks(2, abt_kvdp_rank, &a), 0);
    for (int r = 0; r < 2; r++)
        cr_assert_eq(a.status[r], KG_EARG, "rank %d: B = 3 with kvdp = 2", r);
    abt_run_free(&a);
    /* one rank's bad write index fails every rank, before anything is written */
    abt_prepare_group(&a, kk, &g, KGT_JIT);
    a.rc[1].idx[0] = (uint32_t)(o.S_max - o.S + 1);
    void *keep = abt_kv_encode(&a.rc[0], a.rc[0].K_cache, abt_n_cache_el(&a.rc[0]));
    cr_assert_eq(kgt_run_ranks(2, abt_kvdp_rank, &a), 0);
    for (int r = 0; r < 2; r++)
        cr_assert_eq(a.status[r], KG_EARG, "rank %d: rank 1 writes past its row", r);
    cr_assert_eq(memcmp(keep, a.kc[0], (size_t)abt_n_cache_el(&a.rc[0]) * abt_kv_size(&a.rc[0])), 0,
                 "rank 0 wrote its cache although the group refused the call");
    free(keep);
    abt_run_free(&a);
    /* ... and the group's next good call runs */
    abt_run_group(&a, kk, &g, KGT_JIT);
    for (int r = 0; r < 2; r++)
        cr_assert_eq(a.status[r], KG_OK, "rank %d after the refusals", r);
    abt_run_free(&a);
    /* a thread whose communicator has another size (here the single rank) */
    abt_prepare_group(&a, kk, &g, KGT_JIT);
    cr_assert_eq(abt_run_kernel(kk, &a.rc[0], a.out[0], a.kc[0], a.vc[0], a.kt[0], a.vt[0]),
                 KG_EARG, "a kvdp = 2 kernel on a single rank");
    abt_run_free(&a);
    abt_group_free(&g);
}
