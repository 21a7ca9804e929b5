/* tests/test_abt_vectors.c: the attention_block_tkg vector adapter: every
 * shared/vectors/attention_block_tkg case, and synthetic cases (util/casew.h) for what the shared
 * sample lacks, KVDP groups among them (run on threads as ranks), expected from
 * tests/ref/attention_block_tkg_ref.c. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/dtype.h"
#include "kgen/kernels.h"
#include "kgen/kgen.h"
#include "ref/ref.h"
#include "util/abt_call.h"
#include "util/abt_group.h"
#include "util/casew.h"
#include "util/compare.h"
#include "util/jitp.h"
#include "util/ranks.h"
#include "util/tensors.h"
#include "util/vectors.h"

TestSuite(attention_block_tkg, .init = kgt_suite_init, .fini = kgt_suite_fini);

/* ---- shared/vectors/attention_block_tkg ------------------------------------------------------ */

static long opt_long(kgt_case *c, const char *key)
{
    double v;
    cr_assert(kgt_case_opt_num(c, key, &v), "%s: option %s", kgt_case_name(c), key);
    return (long)v;
}

static int opt_bool(kgt_case *c, const char *key)
{
    int v;
    cr_assert(kgt_case_opt_bool(c, key, &v), "%s: option %s", kgt_case_name(c), key);
    return v;
}

/* An input's values as a malloc'd copy (NULL if the case has no such input). */
static void *input_copy(kgt_case *c, const char *name, kg_dtype want)
{
    if (!kgt_case_input_dtype(c, name))
        return NULL;
    const kg_npy *a = kgt_case_input(c, name);
    cr_assert(a, "%s: %s", kgt_case_name(c), kgt_case_error(c));
    cr_assert_eq(a->dtype, want, "%s: %s stored as %d", kgt_case_name(c), name, a->dtype);
    size_t bytes = (size_t)kg_npy_count(a) * (want == KG_U8 ? 1 : 4);
    void *p = malloc(bytes ? bytes : 1);
    memcpy(p, a->data, bytes);
    return p;
}

/* Cosine similarity of the kernel's output (dtype t) with the expected output: upstream's
 * custom validator asks >= 0.99 besides maxAllClose. */
static double cosine(kgt_case *vc, const char *out_name, kg_dtype t, const void *got)
{
    const kg_npy *w = kgt_case_output(vc, out_name);
    cr_assert(w, "%s: %s", kgt_case_name(vc), kgt_case_error(vc));
    long n = kg_npy_count(w);
    float *g = kgt_decode(t, got, n);
    const float *e = w->data;
    double gg = 0, ee = 0, ge = 0;
    for (long i = 0; i < n; i++)
        gg += (double)g[i] * g[i], ee += (double)e[i] * e[i], ge += (double)g[i] * e[i];
    free(g);
    return gg > 0 && ee > 0 ? ge / sqrt(gg * ee) : (gg == ee ? 1.0 : 0.0);
}

static void expect(kgt_case *vc, const char *out_name, kg_dtype t, const void *got,
                   const char *kname)
{
    char msg[1024];
    int ok = kgt_close_to_case(vc, out_name, t, got, msg, sizeof msg);
    cr_assert(ok >= 0, "%s: no tolerance for %s", kgt_case_name(vc), out_name);
    cr_assert(ok, "vector %s (%s): %s %s", kgt_case_name(vc), kname, out_name, msg);
    double cs = cosine(vc, out_name, t, got);
    cr_assert(cs >= 0.99, "vector %s (%s): %s cosine similarity %g < 0.99", kgt_case_name(vc),
              kname, out_name, cs);
}

/* A KV output of n elements (dtype t, or e4m3 codes decoded first). */
static void expect_kv(const abt_call *c, kgt_case *vc, const char *out_name, const void *got,
                      long n, const char *kname)
{
    if (!c->o.fp8) {
        expect(vc, out_name, c->t, got, kname);
        return;
    }
    float *g = abt_kv_decode(c, got, n);
    expect(vc, out_name, KG_F32, g, kname);
    free(g);
}

static void run_vector_kvdp(kgt_case *vc, abt_call *c, int G);

/* X_out against the case's out_X_out in the layout it is stored in: logical ([B*S, H] with
 * W_out, [B, N, D, S] without), transposed_out's [128, lnc, H/(128 lnc), B*S] (out_T[h0, l, h1,
 * t] = out[t, l*H/lnc + h0*H/(128 lnc) + h1]) or out_in_sb's [D, B*N*S] (column (b*N + n)*S +
 * s), attention_block_tkg.md "Layout-only variants". */
static void expect_out(const abt_call *c, kgt_case *vc, const void *out, const char *kname)
{
    const attn_block_ref_opts *o = &c->o;
    const kg_npy *w = kgt_case_output(vc, "out_X_out");
    cr_assert(w, "%s: %s", kgt_case_name(vc), kgt_case_error(vc));
    long n = abt_n_xout(c), T = abt_n_tok(c);
    int tout = o->wout && w->rank == 4 && w->shape[0] == 128;
    int sb = !o->wout && w->rank == 2 && w->shape[0] == o->D;
    if (!tout && !sb) {
        expect(vc, "out_X_out", c->t, out, kname);
        return;
    }
    float *g = kgt_decode(c->t, out, n), *p = malloc(sizeof(float) * (size_t)n);
    cr_assert(p && kg_npy_count(w) == n, "%s: out_X_out has %ld elements, X_out %ld",
              kgt_case_name(vc), kg_npy_count(w), n);
    if (tout) {
        long lnc = w->shape[1], R = o->H / (128 * lnc);
        cr_assert(w->shape[2] == R && w->shape[3] == T, "%s: transposed out_X_out shape",
                  kgt_case_name(vc));
        for (long h0 = 0; h0 < 128; h0++)
            for (long l = 0; l < lnc; l++)
                for (long h1 = 0; h1 < R; h1++)
                    for (long t = 0; t < T; t++)
                        p[((h0 * lnc + l) * R + h1) * T + t] =
                            g[t * o->H + l * (o->H / lnc) + h0 * R + h1];
    } else {
        long BN = o->B * o->N;
        for (long bn = 0; bn < BN; bn++)
            for (long d = 0; d < o->D; d++)
                for (long s = 0; s < o->S; s++)
                    p[d * BN * o->S + bn * o->S + s] = g[(bn * o->D + d) * o->S + s];
    }
    void *e = kgt_encode(c->t, p, n); /* the values are the kernel's: exact in its dtype */
    expect(vc, "out_X_out", c->t, e, kname);
    free(g), free(p), free(e);
}

static void run_vector(kgt_case *vc)
{
    const char *name = kgt_case_name(vc);
    abt_call c;
    memset(&c, 0, sizeof c);
    attn_block_ref_opts *o = &c.o;
    o->B = opt_long(vc, "B"), o->H = opt_long(vc, "H"), o->S = opt_long(vc, "S_tkg");
    o->S_ctx = opt_long(vc, "S_ctx"), o->S_max = opt_long(vc, "S_max");
    o->N = opt_long(vc, "q_heads"), o->D = opt_long(vc, "d_head");
    o->norm = opt_bool(vc, "rmsnorm_X_enabled"), o->update = opt_bool(vc, "update_cache");
    o->wout = opt_bool(vc, "W_out"), o->bout = opt_bool(vc, "bias_out");
    double eps = 1e-6;
    if (o->norm)
        cr_assert(kgt_case_opt_num(vc, "rmsnorm_X_eps", &eps), "%s: rmsnorm_X_eps", name);
    o->eps = (float)eps;
    const char *rope, *sc;
    double scale;
    cr_assert(kgt_case_opt_str(vc, "rope", &rope), "%s: option rope", name);
    cr_assert(!strcmp(rope, "contig") || !strcmp(rope, "interleaved") || !strcmp(rope, "none"),
              "%s: rope = %s is not mapped", name, rope);
    o->rope = strcmp(rope, "none") != 0, o->contig = !strcmp(rope, "contig");
    if (kgt_case_opt_num(vc, "softmax_scale", &scale)) {
        o->scale = (float)scale;
    } else {
        cr_assert(kgt_case_opt_str(vc, "softmax_scale", &sc) && !strcmp(sc, "1/sqrt(D)"),
                  "%s: softmax_scale", name);
        o->scale = 1.0f / sqrtf((float)o->D);
    }
    int flag;
    o->bias_qkv = kgt_case_opt_bool(vc, "bias_qkv", &flag) && flag;
    o->sink = kgt_case_opt_bool(vc, "sink", &flag) && flag;
    o->tpk_t = kgt_case_opt_bool(vc, "K_cache_transposed", &flag) && flag;
    o->skip = kgt_case_opt_bool(vc, "skip_attention", &flag) && flag;
    o->qk_pre = kgt_case_opt_bool(vc, "rmsnorm_QK_pre_rope", &flag) && flag;
    o->qk_post = kgt_case_opt_bool(vc, "rmsnorm_QK_post_rope", &flag) && flag;
    o->qk_pre_gamma = o->qk_pre, o->qk_post_gamma = o->qk_post;
    o->qk_pre_eps = o->qk_post_eps = 1e-6f;
    if (o->qk_pre) {
        cr_assert(kgt_case_opt_num(vc, "rmsnorm_QK_eps", &eps), "%s: rmsnorm_QK_eps", name);
        o->qk_pre_eps = (float)eps;
    }
    if (o->qk_post) {
        cr_assert(kgt_case_opt_num(vc, "rmsnorm_QK_post_rope_eps", &eps),
                  "%s: rmsnorm_QK_post_rope_eps", name);
        o->qk_post_eps = (float)eps;
    }
    o->fp8 = kgt_case_opt_bool(vc, "fp8_kv", &flag) && flag;
    if (o->fp8) {
        const char *kd = kgt_case_input_dtype(vc, "K_cache");
        cr_assert(kd && !strcmp(kd, "fp8_e4m3"), "%s: fp8_kv caches are %s", name, kd);
        float *ks = input_copy(vc, "k_scale", KG_F32), *vs = input_copy(vc, "v_scale", KG_F32);
        cr_assert(ks && vs, "%s: k_scale, v_scale", name);
        c.kv_scale[0] = ks[0], c.kv_scale[1] = vs[0];
        free(ks), free(vs);
    }
    /* "quantization" (the vectors' name) quantizes both projections that exist, or upstream's
     * quantization_type_qkv / _out one each */
    const char *q;
    if (kgt_case_opt_str(vc, "quantization", &q)) {
        cr_assert(!strcmp(q, "NONE") || !strcmp(q, "STATIC"), "%s: quantization %s", name, q);
        o->static_qkv = !strcmp(q, "STATIC"), o->static_out = o->static_qkv && o->wout;
    }
    if (kgt_case_opt_str(vc, "quantization_type_qkv", &q)) {
        cr_assert(!strcmp(q, "NONE") || !strcmp(q, "STATIC"), "%s: quantization_type_qkv %s "
                  "is not mapped", name, q);
        o->static_qkv = !strcmp(q, "STATIC");
    }
    if (kgt_case_opt_str(vc, "quantization_type_out", &q)) {
        cr_assert(!strcmp(q, "NONE") || !strcmp(q, "STATIC"), "%s: quantization_type_out %s "
                  "is not mapped", name, q);
        o->static_out = !strcmp(q, "STATIC");
    }
    if (o->static_qkv) {
        float *w = input_copy(vc, "weight_dequant_scale_qkv", KG_F32);
        float *si = input_copy(vc, "input_dequant_scale_qkv", KG_F32);
        cr_assert(w && si, "%s: the STATIC qkv scales", name);
        c.w_qkv[0] = w[0], c.w_qkv[1] = w[1], c.w_qkv[2] = w[2], c.s_qkv = si[0];
        free(w), free(si);
    }
    if (o->static_out) {
        float *w = input_copy(vc, "weight_dequant_scale_out", KG_F32);
        float *si = input_copy(vc, "input_dequant_scale_out", KG_F32);
        cr_assert(w && si, "%s: the STATIC out scales", name);
        c.w_out = w[0], c.s_out = si[0];
        free(w), free(si);
    }
    /* KVDP = G > 1: the case holds the whole group, see run_vector_kvdp */
    double kvdp = 1;
    kgt_case_opt_num(vc, "KVDP", &kvdp);
    int G = (int)kvdp, lead = G > 1;
    cr_assert(kvdp == G && G >= 1 && G <= ABT_KVDP_MAX && o->B % G == 0,
              "%s: KVDP = %g (B = %ld) is not mapped", name, kvdp, o->B);
    /* hardware (attention_block_tkg.md: SBUF placement, flash tiling of S_ctx): no effect on
     * the values; transposed_out and out_in_sb only permute X_out, which expect_out reads in
     * whichever layout the case stores it */
    static const char *const hw[] = { "sbm", "X_in_sb", "out_in_sb", "transposed_out",
                                      "enable_fa_s_prior_tiling" };
    for (size_t i = 0; i < sizeof hw / sizeof hw[0]; i++)
        kgt_case_opt_has(vc, hw[i]);
    /* upstream's spelling of the RoPE pairing (the vectors' "rope" says it too) */
    if (kgt_case_opt_bool(vc, "rope_contiguous_layout", &flag))
        cr_assert(!o->rope || flag == o->contig, "%s: rope_contiguous_layout and rope = %s "
                  "disagree", name, rope);
    const char *xdt = kgt_case_input_dtype(vc, "X");
    cr_assert(xdt, "%s: no X", name);
    c.t = (kg_dtype)kg_dtype_from_name(xdt);
    cr_assert(c.t == KG_BF16 || c.t == KG_F16 || c.t == KG_F32, "%s: X dtype %s", name, xdt);
    c.X = input_copy(vc, "X", KG_F32), c.W_qkv = input_copy(vc, "W_qkv", KG_F32);
    c.K_cache = input_copy(vc, "K_cache", KG_F32), c.V_cache = input_copy(vc, "V_cache", KG_F32);
    c.mask = input_copy(vc, "attention_mask", KG_U8);
    c.idx = input_copy(vc, "kv_cache_update_idx", KG_U32);
    c.gamma = input_copy(vc, "rmsnorm_X_gamma", KG_F32);
    c.cos = input_copy(vc, "cos", KG_F32), c.sin = input_copy(vc, "sin", KG_F32);
    c.W_out = input_copy(vc, "W_out", KG_F32), c.bias_out = input_copy(vc, "bias_out", KG_F32);
    c.bias_qkv = input_copy(vc, "bias_qkv", KG_F32), c.sink = input_copy(vc, "sink", KG_F32);
    c.gq_pre = input_copy(vc, "W_rmsnorm_Q_pre_rope", KG_F32);
    c.gk_pre = input_copy(vc, "W_rmsnorm_K_pre_rope", KG_F32);
    c.gq_post = input_copy(vc, "W_rmsnorm_Q_post_rope", KG_F32);
    c.gk_post = input_copy(vc, "W_rmsnorm_K_post_rope", KG_F32);
    cr_assert(!o->bias_qkv || c.bias_qkv, "%s: bias_qkv", name);
    cr_assert(!o->sink || c.sink, "%s: sink", name);
    /* each gamma is optional on its own: the kernel multiplies by the pair, an absent one
     * being ones (run_kernel) */
    o->qk_pre_gamma = c.gq_pre || c.gk_pre, o->qk_post_gamma = c.gq_post || c.gk_post;
    double hact;
    if (kgt_case_opt_num(vc, "X_hidden_dim_actual", &hact) && (long)hact != o->H)
        o->hact = (long)hact;
    cr_assert(c.X && c.W_qkv && c.K_cache && c.V_cache && c.mask && c.idx, "%s: inputs", name);
    cr_assert(!o->norm || c.gamma, "%s: rmsnorm_X_gamma", name);
    cr_assert(!o->rope || (c.cos && c.sin), "%s: cos, sin", name);
    cr_assert(!o->wout || c.W_out, "%s: W_out", name);
    cr_assert(!o->bout || c.bias_out, "%s: bias_out", name);
    double blk = 0;
    kgt_case_opt_num(vc, "block_len", &blk);
    o->blk = (long)blk, o->nblk = o->blk ? o->S_max / o->blk : 0;
    c.table = input_copy(vc, "active_blocks_table", KG_U32);
    const kg_npy *kcn = kgt_case_input(vc, "K_cache");
    cr_assert(!lead || kcn->shape[0] == G, "%s: KVDP caches [KVDP, ...]", name);
    if (o->blk)
        cr_assert(c.table && kcn->rank == 3 + lead && kcn->shape[lead + 1] == o->blk &&
                  kcn->shape[lead + 2] == o->D &&
                  kg_npy_count(kgt_case_input(vc, "active_blocks_table")) == o->B * o->nblk,
                  "%s: block caches [blocks, block_len, D], table [B, S_max / block_len]", name);
    else
        cr_assert(kcn->rank == 4 + lead && kcn->shape[lead + 1] == 1 &&
                  kcn->shape[lead + 2] == (o->tpk_t ? o->D : o->S_max) &&
                  kcn->shape[lead + 3] == (o->tpk_t ? o->S_max : o->D), "%s: K_cache shape",
                  name);
    o->n_cache = kcn->shape[lead];
    cr_assert_eq(kg_npy_count(kgt_case_input(vc, "attention_mask")),
                 o->S_ctx * o->B * o->N * o->S * G, "%s: mask shape", name);
    if (G > 1) {
        run_vector_kvdp(vc, &c, G);
        return;
    }
    char problem[1024];
    abt_problem_of(&c, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    long nc = abt_n_cache_el(&c), nk = abt_n_tok(&c) * o->D;
    void *out = kgt_poisoned(c.t, abt_n_xout(&c));
    void *kc = abt_kv_encode(&c, c.K_cache, nc), *vc2 = abt_kv_encode(&c, c.V_cache, nc);
    void *kt = o->update ? NULL : abt_kv_poisoned(&c, nk);
    void *vt = o->update ? NULL : abt_kv_poisoned(&c, nk);
    cr_assert_eq(abt_run_kernel(k, &c, out, kc, vc2, kt, vt), KG_OK, "%s: %s refused", name,
                 k->name);
    expect_out(&c, vc, out, k->name);
    expect_kv(&c, vc, o->update ? "out_K_cache_updated" : "out_K_tkg", o->update ? kc : kt,
              o->update ? nc : nk, k->name);
    expect_kv(&c, vc, o->update ? "out_V_cache_updated" : "out_V_tkg", o->update ? vc2 : vt,
              o->update ? nc : nk, k->name);
    free(out), free(kc), free(vc2), free(kt), free(vt);
    abt_call_free(&c);
}

Test(attention_block_tkg, shared_vectors) { kgt_each_case("attention_block_tkg", run_vector); }

/* ---- KVDP in the vector adapter -------------------------------------------------------------- */
/* A vector case with option KVDP = G > 1 holds the whole group of G ranks, one set of tensors:
 * the inputs that differ between ranks carry a leading axis of G, rank-major, in front of the
 * shape one rank's kernel reads (the reference section's per-rank shapes):
 *   W_qkv [G, H, (N + 2) D] (rank r's own Q heads; the K, V columns are the group's KV head),
 *   W_out [G, N D, H], K_cache, V_cache [G, n_cache, ...] (rank r's B / G sequences),
 *   attention_mask [G, S_ctx, B / G, G N, S_tkg] (rank r's sequences, the group's heads),
 *   kv_cache_update_idx [G, B / G, 1], active_blocks_table [G, B / G, S_max / block_len];
 * the others are the same on every rank and appear once: X [B, S_tkg, H], cos, sin, the gammas,
 * biases and scales, and sink [G N, 1] (the group's heads, as the mask). Each output is the ranks'
 * outputs stacked the same way: out_X_out [G, ...] (rank r's projection of its heads of all B),
 * out_K_cache_updated [G, n_cache, ...], out_K_tkg [G, D, B / G, S_tkg], out_V_tkg
 * [G, B / G, S_tkg, D]. The adapter runs the kvdp = G kernel on G threads as ranks. */
static void run_vector_kvdp(kgt_case *vc, abt_call *c, int G)
{
    const attn_block_ref_opts *o = &c->o;
    long bl = o->B / G, I = abt_n_qkv(c), ND = o->N * o->D, GN = G * o->N;
    char plain[1024], kv[1100];
    abt_problem_of(c, plain, sizeof plain);
    snprintf(kv, sizeof kv, "%s,kvdp=%d,B=%ld", plain, G, o->B);
    abt_kvdp_run a;
    memset(&a, 0, sizeof a);
    a.k = kgt_jit(kv), a.G = G;
    long nc = abt_n_cache_el(c), nx = abt_n_xout(c), nk = bl * o->S * o->D;
    size_t w = abt_kv_size(c), xw = kgt_dtype_size(c->t);
    for (int r = 0; r < G; r++) {
        abt_call *rc = &a.rc[r];
        *rc = *c;
        rc->W_qkv = c->W_qkv + r * o->H * I, rc->W_out = c->W_out ? c->W_out + r * ND * o->H : NULL;
        rc->K_cache = c->K_cache + r * nc, rc->V_cache = c->V_cache + r * nc;
        rc->mask = c->mask + r * o->S_ctx * bl * GN * o->S, rc->idx = c->idx + r * bl;
        rc->table = c->table ? c->table + r * bl * o->nblk : NULL;
        a.out[r] = kgt_poisoned(c->t, nx);
        a.kc[r] = abt_kv_encode(rc, rc->K_cache, nc), a.vc[r] = abt_kv_encode(rc, rc->V_cache, nc);
        a.kt[r] = o->update ? NULL : abt_kv_poisoned(rc, nk);
        a.vt[r] = o->update ? NULL : abt_kv_poisoned(rc, nk);
    }
    cr_assert_eq(kgt_run_ranks(G, abt_kvdp_rank, &a), 0);
    /* the ranks' outputs stacked as the case stacks them */
    long nkv = o->update ? nc : nk;
    char *x = malloc((size_t)(G * nx) * xw), *ks = malloc((size_t)(G * nkv) * w);
    char *vs = malloc((size_t)(G * nkv) * w);
    for (int r = 0; r < G; r++) {
        cr_assert_eq(a.status[r], KG_OK, "%s: %s rank %d refused", kgt_case_name(vc), a.k->name,
                     r);
        memcpy(x + (size_t)(r * nx) * xw, a.out[r], (size_t)nx * xw);
        memcpy(ks + (size_t)(r * nkv) * w, o->update ? a.kc[r] : a.kt[r], (size_t)nkv * w);
        memcpy(vs + (size_t)(r * nkv) * w, o->update ? a.vc[r] : a.vt[r], (size_t)nkv * w);
        free(a.out[r]), free(a.kc[r]), free(a.vc[r]), free(a.kt[r]), free(a.vt[r]);
    }
    expect(vc, "out_X_out", c->t, x, a.k->name);
    expect_kv(c, vc, o->update ? "out_K_cache_updated" : "out_K_tkg", ks, G * nkv, a.k->name);
    expect_kv(c, vc, o->update ? "out_V_cache_updated" : "out_V_tkg", vs, G * nkv, a.k->name);
    free(x), free(ks), free(vs);
    abt_call_free(c);
}

/* Writes group g as a KVDP vector case by the convention above (expected outputs from the
 * reference on each rank's whole problem) and runs the adapter on it. */
static void kvdp_case(const abt_group *g, const char *name)
{
    const abt_call *c = &g->c;
    const attn_block_ref_opts *o = &c->o;
    int G = g->G;
    long bl = g->bl, I = abt_n_qkv(c), ND = o->N * o->D, GN = G * o->N, W = o->S_ctx, S = o->S;
    const char *dt = kg_dtype_name(c->t), *kdt = o->fp8 ? "fp8_e4m3" : dt;
    kgt_casew *cw = kgt_casew_new("attention_block_tkg", name);
    kgt_casew_opt_num(cw, "B", (double)o->B), kgt_casew_opt_num(cw, "H", (double)o->H);
    kgt_casew_opt_num(cw, "S_tkg", (double)S), kgt_casew_opt_num(cw, "S_ctx", (double)W);
    kgt_casew_opt_num(cw, "S_max", (double)o->S_max);
    kgt_casew_opt_num(cw, "q_heads", (double)o->N), kgt_casew_opt_num(cw, "d_head", (double)o->D);
    kgt_casew_opt_num(cw, "KVDP", G), kgt_casew_opt_num(cw, "softmax_scale", (double)o->scale);
    kgt_casew_opt_bool(cw, "rmsnorm_X_enabled", 0), kgt_casew_opt_bool(cw, "W_out", o->wout);
    kgt_casew_opt_bool(cw, "update_cache", o->update), kgt_casew_opt_bool(cw, "bias_out", 0);
    kgt_casew_opt_bool(cw, "sink", o->sink), kgt_casew_opt_bool(cw, "fp8_kv", o->fp8);
    kgt_casew_opt_str(cw, "rope", "contig");
    if (o->blk)
        kgt_casew_opt_num(cw, "block_len", (double)o->blk);
    long T = o->B * S, hc = o->D / 2 * T;
    kgt_casew_input(cw, "X", dt, c->X, 3, (long[]){ o->B, S, o->H });
    kgt_casew_input(cw, "cos", dt, c->cos, 3, (long[]){ o->D / 2, o->B, S });
    kgt_casew_input(cw, "sin", dt, c->sin, 3, (long[]){ o->D / 2, o->B, S });
    (void)hc;
    float *wq = malloc(sizeof(float) * (size_t)(G * o->H * I));
    float *wo = malloc(sizeof(float) * (size_t)(G * ND * o->H));
    for (int r = 0; r < G; r++) {
        memcpy(wq + r * o->H * I, g->Wq[r], sizeof(float) * (size_t)(o->H * I));
        memcpy(wo + r * ND * o->H, g->Wo[r], sizeof(float) * (size_t)(ND * o->H));
    }
    kgt_casew_input(cw, "W_qkv", dt, wq, 3, (long[]){ G, o->H, I });
    kgt_casew_input(cw, "W_out", dt, wo, 3, (long[]){ G, ND, o->H });
    long nc_r = o->blk ? g->P : bl;
    if (o->blk) {
        kgt_casew_input(cw, "K_cache", kdt, c->K_cache, 4, (long[]){ G, nc_r, o->blk, o->D });
        kgt_casew_input(cw, "V_cache", kdt, c->V_cache, 4, (long[]){ G, nc_r, o->blk, o->D });
    } else {
        kgt_casew_input(cw, "K_cache", kdt, c->K_cache, 5, (long[]){ G, nc_r, 1, o->S_max, o->D });
        kgt_casew_input(cw, "V_cache", kdt, c->V_cache, 5, (long[]){ G, nc_r, 1, o->S_max, o->D });
    }
    if (o->fp8) {
        kgt_casew_input(cw, "k_scale", "f32", &c->kv_scale[0], 1, (long[]){ 1 });
        kgt_casew_input(cw, "v_scale", "f32", &c->kv_scale[1], 1, (long[]){ 1 });
    }
    if (o->sink)
        kgt_casew_input(cw, "sink", "f32", g->gsink, 2, (long[]){ GN, 1 });
    /* the per-rank integer inputs, from each rank's call */
    kg_npy mask = { KG_U8, 5, { G, W, bl, GN, S }, malloc((size_t)(G * W * bl * GN * S)) };
    kg_npy idx = { KG_U32, 3, { G, bl, 1 }, malloc(sizeof(uint32_t) * (size_t)(G * bl)) };
    kg_npy tab = { KG_U32, 3, { G, bl, o->nblk }, malloc(sizeof(uint32_t) * (size_t)(G * bl
                                                                                  * o->nblk + 1)) };
    /* expected outputs: rank r's slice of the reference on its whole problem */
    long nx = abt_n_xout(c), nk = bl * S * o->D;
    long nkv = o->update ? nc_r * (o->blk ? o->blk : o->S_max) * o->D : nk;
    float *xo = malloc(sizeof(float) * (size_t)(G * nx));
    float *ko = malloc(sizeof(float) * (size_t)(G * nkv));
    float *vo = malloc(sizeof(float) * (size_t)(G * nkv));
    for (int r = 0; r < G; r++) {
        abt_call rc = abt_rank_of(g, r), w = abt_whole_of(g, r);
        memcpy((uint8_t *)mask.data + r * W * bl * GN * S, rc.mask, (size_t)(W * bl * GN * S));
        memcpy((uint32_t *)idx.data + r * bl, rc.idx, sizeof(uint32_t) * (size_t)bl);
        if (o->blk)
            memcpy((uint32_t *)tab.data + r * bl * o->nblk, rc.table,
                   sizeof(uint32_t) * (size_t)(bl * o->nblk));
        long nw = o->update ? abt_n_cache_el(&w) : abt_n_tok(&w) * o->D;
        float *kw = malloc(sizeof(float) * (size_t)nw), *vw = malloc(sizeof(float) * (size_t)nw);
        attn_block_ref_in in = { .X = w.X, .W_qkv = w.W_qkv, .cos = w.cos, .sin = w.sin,
                                 .K_cache = w.K_cache, .V_cache = w.V_cache, .W_out = w.W_out,
                                 .mask = w.mask, .idx = w.idx, .sink = w.sink, .table = w.table,
                                 .k_scale = w.kv_scale[0], .v_scale = w.kv_scale[1] };
        attention_block_tkg_ref(xo + r * nx, kw, vw, &in, o);
        if (o->update) {
            memcpy(ko + r * nkv, kw + abt_cache_offset(g, r), sizeof(float) * (size_t)nkv);
            memcpy(vo + r * nkv, vw + abt_cache_offset(g, r), sizeof(float) * (size_t)nkv);
        } else { /* K [D, B, S] -> [D, bl, S]; V [B, S, D] rows r * bl .. */
            for (long i = 0; i < o->D; i++)
                memcpy(ko + r * nkv + i * bl * S, kw + (i * o->B + r * bl) * S,
                       sizeof(float) * (size_t)(bl * S));
            memcpy(vo + r * nkv, vw + r * bl * S * o->D, sizeof(float) * (size_t)nkv);
        }
        free(kw), free(vw), free(w.mask), free(rc.mask), free(rc.idx), free(rc.table);
    }
    kgt_casew_input_npy(cw, "attention_mask", "u8", &mask);
    kgt_casew_input_npy(cw, "kv_cache_update_idx", "u32", &idx);
    if (o->blk)
        kgt_casew_input_npy(cw, "active_blocks_table", "u32", &tab);
    double rtol = o->fp8 ? 0.07 : 1.5e-2;
    long xs_w[3] = { G, T, o->H }, xs_n[5] = { G, o->B, o->N, o->D, S };
    kgt_casew_output(cw, "out_X_out", xo, o->wout ? 3 : 5, o->wout ? xs_w : xs_n, rtol, 1e-5);
    long kshape[5] = { G, nc_r, 1, o->S_max, o->D }, bshape[4] = { G, nc_r, o->blk, o->D };
    long ktshape[4] = { G, o->D, bl, S }, vtshape[5] = { G, bl, 1, S, o->D };
    double katol = o->fp8 ? 1.0 : 1e-5;
    if (o->update) {
        kgt_casew_output(cw, "out_K_cache_updated", ko, o->blk ? 4 : 5, o->blk ? bshape : kshape,
                         rtol, katol);
        kgt_casew_output(cw, "out_V_cache_updated", vo, o->blk ? 4 : 5, o->blk ? bshape : kshape,
                         rtol, katol);
    } else {
        kgt_casew_output(cw, "out_K_tkg", ko, 4, ktshape, rtol, katol);
        kgt_casew_output(cw, "out_V_tkg", vo, 5, vtshape, rtol, katol);
    }
    kgt_run_case(kgt_casew_finish(cw), run_vector);
    kgt_casew_free(cw);
    free(wq), free(wo), free(xo), free(ko), free(vo);
    free(mask.data), free(idx.data), free(tab.data);
}

/* The adapter's KVDP convention, proven on synthetic group cases (the shared sample has none):
 * flat bf16 caches updated in place; fp8 block caches with K_tkg, V_tkg and sinks. */
Test(attention_block_tkg, kvdp_vector_convention, .timeout = 120 * KGT_TIME_SCALE)
{
    attn_block_ref_opts o = abt_base_opts();
    abt_group g;
    abt_make_group(&g, &o, KG_BF16, 2, 2, 71);
    kvdp_case(&g, "kvdp2_flat_update");
    abt_group_free(&g);
    o.fp8 = 1, o.blk = 8, o.update = 0, o.sink = 1;
    abt_make_group(&g, &o, KG_BF16, 4, 1, 72);
    kvdp_case(&g, "kvdp4_fp8_block_sink_noupdate");
    abt_group_free(&g);
}

/* A synthetic case for what the sample lacks: a pre-RoPE Q gamma without K's and a post-RoPE
 * K gamma without Q's (each optional on its own), X_out stored transposed_out ([128, lnc, H /
 * (128 lnc), B*S], lnc 2), and the hardware flags; expected from tests/ref. */
Test(attention_block_tkg, synthetic_vector_lone_gammas_transposed_out)
{
    attn_block_ref_opts o = abt_base_opts();
    o.B = 2, o.S = 2, o.H = 256, o.N = 2, o.D = 64, o.S_ctx = 32, o.S_max = 40;
    o.qk_pre = o.qk_pre_gamma = 1, o.qk_post = o.qk_post_gamma = 1;
    o.qk_pre_eps = 1e-5f, o.qk_post_eps = 1e-3f, o.n_cache = o.B;
    abt_call c;
    abt_make_call(&c, &o, KG_BF16, 4242);
    free(c.gk_pre), free(c.gq_post);
    c.gk_pre = c.gq_post = NULL;
    long T = abt_n_tok(&c), nx = abt_n_xout(&c), nc = abt_n_cache_el(&c);
    float *want = malloc(sizeof(float) * (size_t)nx), *tw = malloc(sizeof(float) * (size_t)nx);
    float *kw = malloc(sizeof(float) * (size_t)nc), *vw = malloc(sizeof(float) * (size_t)nc);
    attn_block_ref_in in = { .X = c.X, .W_qkv = c.W_qkv, .cos = c.cos, .sin = c.sin,
                             .K_cache = c.K_cache, .V_cache = c.V_cache, .W_out = c.W_out,
                             .mask = c.mask, .idx = c.idx, .gq_pre = c.gq_pre,
                             .gk_post = c.gk_post };
    attention_block_tkg_ref(want, kw, vw, &in, &o);
    long lnc = 2, R = o.H / (128 * lnc);
    for (long h0 = 0; h0 < 128; h0++)
        for (long l = 0; l < lnc; l++)
            for (long h1 = 0; h1 < R; h1++)
                for (long t = 0; t < T; t++)
                    tw[((h0 * lnc + l) * R + h1) * T + t] =
                        want[t * o.H + l * (o.H / lnc) + h0 * R + h1];
    kgt_casew *w = kgt_casew_new("attention_block_tkg", "lone_gammas_tout");
    long xs[3] = { o.B, o.S, o.H }, ws[2] = { o.H, abt_n_qkv(&c) };
    long cs[4] = { o.B, 1, o.S_max, o.D };
    long ms[4] = { o.S_ctx, o.B, o.N, o.S }, rs[3] = { o.D / 2, o.B, o.S };
    long gs[2] = { 1, o.D }, wos[2] = { o.N * o.D, o.H }, os[4] = { 128, lnc, R, T };
    kgt_casew_input(w, "X", "bf16", c.X, 3, xs);
    kgt_casew_input(w, "W_qkv", "bf16", c.W_qkv, 2, ws);
    kgt_casew_input(w, "K_cache", "bf16", c.K_cache, 4, cs);
    kgt_casew_input(w, "V_cache", "bf16", c.V_cache, 4, cs);
    kg_npy m = { KG_U8, 4, { ms[0], ms[1], ms[2], ms[3] }, c.mask };
    kgt_casew_input_npy(w, "attention_mask", "u8", &m);
    kg_npy ix = { KG_U32, 2, { o.B, 1 }, c.idx };
    kgt_casew_input_npy(w, "kv_cache_update_idx", "u32", &ix);
    kgt_casew_input(w, "cos", "bf16", c.cos, 3, rs);
    kgt_casew_input(w, "sin", "bf16", c.sin, 3, rs);
    kgt_casew_input(w, "W_rmsnorm_Q_pre_rope", "bf16", c.gq_pre, 2, gs);
    kgt_casew_input(w, "W_rmsnorm_K_post_rope", "bf16", c.gk_post, 2, gs);
    kgt_casew_input(w, "W_out", "bf16", c.W_out, 2, wos);
    static const char *const nums[] = { "B", "H", "S_tkg", "S_ctx", "S_max", "q_heads", "d_head" };
    const long nv[] = { o.B, o.H, o.S, o.S_ctx, o.S_max, o.N, o.D };
    for (int i = 0; i < 7; i++)
        kgt_casew_opt_num(w, nums[i], (double)nv[i]);
    kgt_casew_opt_bool(w, "rmsnorm_X_enabled", 0), kgt_casew_opt_bool(w, "update_cache", 1);
    kgt_casew_opt_bool(w, "W_out", 1), kgt_casew_opt_bool(w, "bias_out", 0);
    kgt_casew_opt_str(w, "rope", o.contig ? "contig" : "interleaved");
    kgt_casew_opt_num(w, "softmax_scale", o.scale);
    kgt_casew_opt_bool(w, "rmsnorm_QK_pre_rope", 1), kgt_casew_opt_num(w, "rmsnorm_QK_eps", 1e-5);
    kgt_casew_opt_bool(w, "rmsnorm_QK_post_rope", 1);
    kgt_casew_opt_num(w, "rmsnorm_QK_post_rope_eps", 1e-3);
    kgt_casew_opt_bool(w, "transposed_out", 1), kgt_casew_opt_bool(w, "sbm", 1);
    kgt_casew_opt_bool(w, "enable_fa_s_prior_tiling", 1);
    kgt_casew_opt_str(w, "quantization_type_qkv", "NONE");
    kgt_casew_output(w, "out_X_out", tw, 4, os, 1.5e-2, 1e-5);
    kgt_casew_output(w, "out_K_cache_updated", kw, 4, cs, 1.5e-2, 1e-5);
    kgt_casew_output(w, "out_V_cache_updated", vw, 4, cs, 1.5e-2, 1e-5);
    kgt_run_case(kgt_casew_finish(w), run_vector);
    kgt_casew_free(w);
    free(want), free(tw), free(kw), free(vw);
    abt_call_free(&c);
}
