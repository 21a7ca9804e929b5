/* tests/test_attention_block_tkg.c: the attention_block_tkg family against
 * tests/ref/attention_block_tkg_ref.c: every shared/vectors/attention_block_tkg case, option
 * sweeps on small shapes, per-call checks, refused problems naming their key, kernel names
 * that parse back, and JIT vs AOT bit-identity for every spec's kernels. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "kgen/dtype.h"
#include "kgen/gcc.h"
#include "kgen/kernels.h"
#include "kgen/kgen.h"
#include "ref/ref.h"
#include "util/casew.h"
#include "util/compare.h"
#include "util/jitp.h"
#include "util/ranks.h"
#include "util/tensors.h"
#include "util/vectors.h"
#include "util/weights.h"

/* ---- one call's tensors ---------------------------------------------------------------------- */

/* The inputs of one call in fp32 (on the grid of their dtypes), the options the reference reads
 * and the kernel's dtype. */
typedef struct call {
    attn_block_ref_opts o;
    kg_dtype t;            /* X's dtype; the caches are t, or e4m3 codes with o.fp8 */
    float kv_scale[2];       /* k_scale, v_scale */
    float w_qkv[3], s_qkv, w_out, s_out; /* STATIC dequant scales */
    float *X, *gamma, *W_qkv, *bias_qkv, *gq_pre, *gk_pre, *gq_post, *gk_post, *cos, *sin;
    float *K_cache, *V_cache, *sink, *W_out, *bias_out;
    uint8_t *mask;
    uint32_t *idx, *table;
} call;

static long n_tok(const call *c) { return c->o.B * c->o.S; }
static long n_cache_el(const call *c)
{
    return c->o.n_cache * (c->o.blk ? c->o.blk : c->o.S_max) * c->o.D;
}
static long n_xout(const call *c)
{
    return c->o.wout ? n_tok(c) * c->o.H : n_tok(c) * c->o.N * c->o.D;
}
static long n_qkv(const call *c) { return (c->o.N + 2) * c->o.D; }

static void call_free(call *c)
{
    free(c->X), free(c->gamma), free(c->W_qkv), free(c->cos), free(c->sin), free(c->K_cache);
    free(c->V_cache), free(c->W_out), free(c->bias_out), free(c->mask), free(c->idx);
    free(c->bias_qkv), free(c->gq_pre), free(c->gk_pre), free(c->gq_post), free(c->gk_post);
    free(c->sink), free(c->table);
}

static const char *tf(int b) { return b ? "true" : "false"; }

/* ---- the KV tensors: dtype t, or e4m3 codes -------------------------------------------------- */

static size_t kv_size(const call *c) { return c->o.fp8 ? 1 : kgt_dtype_size(c->t); }

/* n values x (on the caches' grid) as the kernel reads them. */
static void *kv_encode(const call *c, const float *x, long n)
{
    if (!c->o.fp8)
        return kgt_encode(c->t, x, n);
    uint8_t *e = malloc((size_t)(n > 0 ? n : 1));
    for (long i = 0; i < n; i++)
        e[i] = kg_f32_to_e4m3(x[i]);
    return e;
}

/* n KV elements at p as fp32; malloc'd. */
static float *kv_decode(const call *c, const void *p, long n)
{
    if (!c->o.fp8)
        return kgt_decode(c->t, p, n);
    float *y = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (long i = 0; i < n; i++)
        y[i] = kg_e4m3_to_f32(((const uint8_t *)p)[i]);
    return y;
}

/* An output of n KV elements that starts as NaN in either format (0xff bytes). */
static void *kv_poisoned(const call *c, long n)
{
    void *p = malloc((size_t)(n > 0 ? n : 1) * kv_size(c));
    memset(p, 0xff, (size_t)(n > 0 ? n : 1) * kv_size(c));
    return p;
}

/* The kernel's KV output got (n elements) against the reference's want: the vectors'
 * comparator; fp8 at rtol 0.07 and atol 1 (an e4m3 step at |x| < 16: the two round K * k_scale
 * computed in different orders). */
static int kv_close(const call *c, const void *got, float *want, long n, char *msg, size_t len)
{
    long shape[1] = { n };
    if (!c->o.fp8)
        return kgt_close_to_ref(c->t, got, want, 1, shape, 1.5e-2, 1e-5, msg, len);
    float *g = kv_decode(c, got, n);
    int ok = kgt_allclose(g, want, n, 0.07, 1.0, msg, len);
    free(g);
    return ok;
}

/* The problem string of c's kernel. */
static void problem_of(const call *c, char *buf, size_t len)
{
    const attn_block_ref_opts *o = &c->o;
    int n = snprintf(buf, len, "attention_block_tkg:dtype=%s,H=%ld,q_heads=%ld,d_head=%ld,"
                     "S_tkg=%ld,S_max=%ld,rmsnorm_X_enabled=%s,rope=%s,"
                     "rope_contiguous_layout=%s,softmax_scale=%.9g,update_cache=%s,W_out=%s,"
                     "bias_out=%s,S_ctx=%ld,bias_qkv=%s,rmsnorm_QK_enabled=%s,"
                     "rmsnorm_QK_post_rope_enabled=%s,sink=%s,K_cache_transposed=%s,"
                     "skip_attention=%s,block_len=%ld,kv_dtype=%s,quantization_type_qkv=%s,"
                     "quantization_type_out=%s,rmsnorm_QK_gamma=%s,"
                     "rmsnorm_QK_post_rope_gamma=%s",
                     kg_dtype_name(c->t), o->H, o->N, o->D, o->S, o->S_max, tf(o->norm),
                     tf(o->rope), tf(o->contig), (double)o->scale, tf(o->update), tf(o->wout),
                     tf(o->bout), o->S_ctx, tf(o->bias_qkv), tf(o->qk_pre), tf(o->qk_post),
                     tf(o->sink), tf(o->tpk_t), tf(o->skip), o->blk,
                     o->fp8 ? "e4m3" : kg_dtype_name(c->t), o->static_qkv ? "STATIC" : "NONE",
                     o->static_out ? "STATIC" : "NONE", tf(!o->qk_pre || o->qk_pre_gamma),
                     tf(!o->qk_post || o->qk_post_gamma));
    if (o->norm)
        n += snprintf(buf + n, len - (size_t)n, ",rmsnorm_X_eps=%.9g", (double)o->eps);
    if (o->hact)
        n += snprintf(buf + n, len - (size_t)n, ",X_hidden_dim_actual=%ld", o->hact);
    if (o->qk_pre)
        n += snprintf(buf + n, len - (size_t)n, ",rmsnorm_QK_eps=%.9g", (double)o->qk_pre_eps);
    if (o->qk_post)
        snprintf(buf + n, len - (size_t)n, ",rmsnorm_QK_post_rope_eps=%.9g",
                 (double)o->qk_post_eps);
}

/* A weight [K, N] of values on t's grid (fp8: e4m3's) packed for the kernel's GEMM. */
static void pack(kg_wt *w, kg_dtype t, int fp8, long K, long N, const float *vals)
{
    int fmt = fp8 ? KG_WT_E4M3 : t == KG_F32 ? KG_WT_F32 : t == KG_F16 ? KG_WT_F16 : KG_WT_BF16;
    kgt_wt_from_values(w, fmt, KG_WL_KN, K, N, vals);
}

/* Runs kernel k on c: X_out into out, the caches updated in place into kc, vc (encoded,
 * caller-allocated copies) or K_tkg, V_tkg into kt, vt. Returns the kernel's status. */
static int run_kernel(const kg_kernel *k, const call *c, void *out, void *kc, void *vc, void *kt,
                      void *vt)
{
    const attn_block_ref_opts *o = &c->o;
    kg_dtype t = c->t;
    long T = n_tok(c), hc = o->D / 2 * T;
    void *X = kgt_encode(t, c->X, T * o->H);
    void *gx = c->gamma ? kgt_encode(t, c->gamma, o->H) : NULL;
    void *cs = c->cos ? kgt_encode(t, c->cos, hc) : NULL, *sn = c->sin ? kgt_encode(t, c->sin, hc)
                                                                       : NULL;
    void *bo = c->bias_out ? kgt_encode(t, c->bias_out, o->H) : NULL;
    void *bq = c->bias_qkv ? kgt_encode(t, c->bias_qkv, n_qkv(c)) : NULL;
    /* W_rmsnorm_QK_{pre,post}_rope [2, D]: Q's gamma, then K's. Each is optional on its own
     * (attention_block_tkg.md 4: v * w / sqrt(mean(v^2) + eps), "gamma optional"): an absent one
     * scales by nothing, which ones do exactly */
    void *g[2] = { NULL, NULL };
    const float *gs[4] = { c->gq_pre, c->gk_pre, c->gq_post, c->gk_post };
    for (int i = 0; i < 2; i++)
        if (gs[2 * i] || gs[2 * i + 1]) {
            float *two = malloc(sizeof(float) * (size_t)(2 * o->D));
            for (int h = 0; h < 2; h++)
                for (long d = 0; d < o->D; d++)
                    two[h * o->D + d] = gs[2 * i + h] ? gs[2 * i + h][d] : 1.0f;
            g[i] = kgt_encode(t, two, 2 * o->D);
            free(two);
        }
    kg_wt wq, wo;
    pack(&wq, t, o->static_qkv, o->H, n_qkv(c), c->W_qkv);
    if (c->W_out)
        pack(&wo, t, o->static_out, o->N * o->D, o->H, c->W_out);
    int rc = ((kg_attention_block_tkg_fn *)k->fn)(
        out, kt, vt, kc, vc, X, gx, &wq, c->w_qkv, &c->s_qkv, bq, g[0], cs, sn, g[1], c->mask,
        c->sink, c->table, c->kv_scale, c->idx, c->W_out ? &wo : NULL,
        &c->w_out, &c->s_out, bo, o->B, o->S_ctx, o->n_cache);
    kg_wt_free(&wq);
    if (c->W_out)
        kg_wt_free(&wo);
    free(X), free(gx), free(cs), free(sn), free(bo), free(bq);
    free(g[0]), free(g[1]);
    return rc;
}

/* ---- random calls against the reference ------------------------------------------------------ */

static float *randn(kg_dtype t, long n, unsigned long long seed, float scale)
{
    float *x = kgt_randn(KG_F32, n, seed);
    for (long i = 0; i < n; i++)
        x[i] = kgt_round(t, x[i] * scale);
    return x;
}

/* Random inputs for options o in dtype t: sequence b has cache length len_b = S_ctx - S - b
 * (at least 0), its mask attends slots < len_b and the causal tail; a few random holes. */
static void make_call(call *c, const attn_block_ref_opts *o, kg_dtype t, unsigned long long seed)
{
    memset(c, 0, sizeof *c);
    c->o = *o;
    c->t = t;
    long T = n_tok(c), N = o->N, S = o->S, W = o->S_ctx, hc = o->D / 2 * T;
    c->X = randn(t, T * o->H, seed, 1.0f);
    for (long i = 0; o->hact && i < T * o->H; i++) /* zero padding past the actual size */
        if (i % o->H >= o->hact)
            c->X[i] = 0.0f;
    c->gamma = o->norm ? randn(t, o->H, seed + 1, 0.5f) : NULL;
    if (c->gamma)
        for (long h = 0; h < o->H; h++)
            c->gamma[h] = kgt_round(t, c->gamma[h] + 1.0f);
    c->W_qkv = randn(t, o->H * n_qkv(c), seed + 2, 1.0f / sqrtf((float)o->H));
    c->w_qkv[0] = 0.5f, c->w_qkv[1] = 0.25f, c->w_qkv[2] = 0.375f, c->s_qkv = 0.02f;
    c->w_out = 0.5f, c->s_out = 0.01f;
    for (long i = 0; o->static_qkv && i < o->H * n_qkv(c); i++) /* fp8 values of w * W */
        c->W_qkv[i] = kg_e4m3_to_f32(kg_f32_to_e4m3(c->W_qkv[i] * 8.0f));
    if (o->rope) {
        c->cos = malloc(sizeof(float) * (size_t)hc), c->sin = malloc(sizeof(float) * (size_t)hc);
        for (long i = 0; i < hc; i++) {
            float a = 0.37f * (float)(i % 97) + 0.1f * (float)(i / 97);
            c->cos[i] = kgt_round(t, cosf(a)), c->sin[i] = kgt_round(t, sinf(a));
        }
    }
    c->bias_qkv = o->bias_qkv ? randn(t, n_qkv(c), seed + 7, 0.5f) : NULL;
    float **gs[4] = { &c->gq_pre, &c->gk_pre, &c->gq_post, &c->gk_post };
    for (int i = 0; i < 4; i++) {
        if (!(i < 2 ? o->qk_pre && o->qk_pre_gamma : o->qk_post && o->qk_post_gamma))
            continue;
        *gs[i] = randn(t, o->D, seed + 8 + (unsigned long long)i, 0.3f);
        for (long d = 0; d < o->D; d++)
            (*gs[i])[d] = kgt_round(t, (*gs[i])[d] + 1.0f);
    }
    c->sink = o->sink ? randn(KG_F32, N, seed + 12, 2.0f) : NULL;
    c->K_cache = randn(t, n_cache_el(c), seed + 3, 1.0f);
    c->V_cache = randn(t, n_cache_el(c), seed + 4, 1.0f);
    c->kv_scale[0] = 2.0f, c->kv_scale[1] = 0.75f;
    for (long i = 0; o->fp8 && i < n_cache_el(c); i++) { /* on the e4m3 grid, scaled */
        c->K_cache[i] = kg_e4m3_to_f32(kg_f32_to_e4m3(c->K_cache[i] * c->kv_scale[0]));
        c->V_cache[i] = kg_e4m3_to_f32(kg_f32_to_e4m3(c->V_cache[i] * c->kv_scale[1]));
    }
    c->W_out = o->wout ? randn(t, N * o->D * o->H, seed + 5, 1.0f / sqrtf((float)(N * o->D)))
                       : NULL;
    for (long i = 0; o->static_out && i < N * o->D * o->H; i++)
        c->W_out[i] = kg_e4m3_to_f32(kg_f32_to_e4m3(c->W_out[i] * 16.0f));
    c->bias_out = o->bout ? randn(t, o->H, seed + 6, 1.0f) : NULL;
    c->mask = malloc((size_t)(W * o->B * N * S));
    unsigned long long r = seed * 2654435761ull + 7;
    for (long j = 0; j < W; j++)
        for (long b = 0; b < o->B; b++)
            for (long n = 0; n < N; n++)
                for (long s = 0; s < S; s++) {
                    long len = W - S - b > 0 ? W - S - b : 0;
                    r = r * 6364136223846793005ull + 1442695040888963407ull;
                    int on = j < len || (j >= W - S && j - (W - S) <= s);
                    c->mask[((j * o->B + b) * N + n) * S + s] = (uint8_t)(on && (r >> 33) % 8);
                }
    c->idx = malloc(sizeof(uint32_t) * (size_t)o->B);
    for (long b = 0; b < o->B; b++) /* each write at the sequence's cache length */
        c->idx[b] = (uint32_t)(W - S - b > 0 ? W - S - b : 0);
    if (o->blk) { /* blocks shuffled through the cache; writes anywhere in the pool */
        c->table = malloc(sizeof(uint32_t) * (size_t)(o->B * o->nblk));
        for (long i = 0; i < o->B * o->nblk; i++)
            c->table[i] = (uint32_t)((i * 7 + 3) % o->n_cache);
        for (long b = 0; b < o->B; b++)
            c->idx[b] = (uint32_t)((b * 13 + 2) % (o->n_cache * o->blk - S + 1));
    }
    if (o->B > 2)
        c->idx[2] = 0xFFFFFFFFu; /* a sequence that writes nothing */
}

/* The kernel on a random call of options o (dtype t) against the reference, at the vectors'
 * tolerance (rtol 1.5e-2, atol 1e-5). */
static void check(const attn_block_ref_opts *o0, kg_dtype t)
{
    attn_block_ref_opts o = *o0;
    o.nblk = o.blk ? o.S_max / o.blk : 0;
    o.n_cache = o.blk ? o.B * o.nblk + 3 : o.B + 1;
    call c;
    make_call(&c, &o, t, 100 + (unsigned long long)(o.S_ctx * 31 + o.D * 7 + o.S));
    char problem[1024];
    problem_of(&c, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    long nx = n_xout(&c), nc = n_cache_el(&c), nk = n_tok(&c) * o.D;
    void *out = kgt_poisoned(t, nx);
    void *kc = kv_encode(&c, c.K_cache, nc), *vc = kv_encode(&c, c.V_cache, nc);
    void *kt = o.update ? NULL : kv_poisoned(&c, nk), *vt = o.update ? NULL : kv_poisoned(&c, nk);
    cr_assert_eq(run_kernel(k, &c, out, kc, vc, kt, vt), KG_OK, "%s refused the call", k->name);
    long nko = o.update ? nc : nk;
    float *want = malloc(sizeof(float) * (size_t)nx);
    float *kw = malloc(sizeof(float) * (size_t)nko), *vw = malloc(sizeof(float) * (size_t)nko);
    attn_block_ref_in in = { .X = c.X, .gamma = c.gamma, .W_qkv = c.W_qkv, .cos = c.cos,
                             .sin = c.sin, .K_cache = c.K_cache, .V_cache = c.V_cache,
                             .W_out = c.W_out, .bias_out = c.bias_out, .mask = c.mask,
                             .idx = c.idx, .bias_qkv = c.bias_qkv, .gq_pre = c.gq_pre,
                             .gk_pre = c.gk_pre, .gq_post = c.gq_post, .gk_post = c.gk_post,
                             .sink = c.sink, .table = c.table, .k_scale = c.kv_scale[0],
                             .v_scale = c.kv_scale[1], .w_qkv = c.w_qkv, .s_qkv = c.s_qkv,
                             .w_out = &c.w_out, .s_out = c.s_out };
    attention_block_tkg_ref(want, kw, vw, &in, &o);
    char msg[1024];
    long xs[2] = { 1, nx };
    int any8 = o.fp8 || o.static_qkv || o.static_out;
    double rtol = any8 ? 0.07 : 1.5e-2, atol = 1e-5; /* the vectors' tolerances */
    cr_assert(kgt_close_to_ref(t, out, want, 2, xs, rtol, atol, msg, sizeof msg), "%s: X_out %s",
              k->name, msg);
    cr_assert(kv_close(&c, o.update ? kc : kt, kw, nko, msg, sizeof msg), "%s: K %s", k->name,
              msg);
    cr_assert(kv_close(&c, o.update ? vc : vt, vw, nko, msg, sizeof msg), "%s: V %s", k->name,
              msg);
    free(out), free(kc), free(vc), free(kt), free(vt), free(want), free(kw), free(vw);
    call_free(&c);
}

TestSuite(attention_block_tkg, .init = kgt_suite_init, .fini = kgt_suite_fini);

/* B, S, H, N, D, S_ctx, S_max, blk, n_cache, nblk, norm, eps, bias_qkv, static_qkv, static_out,
 * qk_pre, qk_post, qk_pre_gamma, qk_post_gamma, qk_pre_eps, qk_post_eps, rope, contig, scale,
 * sink, tpk_t, fp8, update, skip, wout, bout */
static attn_block_ref_opts base(void)
{
    attn_block_ref_opts o;
    memset(&o, 0, sizeof o);
    o.B = 3, o.S = 2, o.H = 96, o.N = 3, o.D = 32, o.S_ctx = 40, o.S_max = 48;
    o.eps = 1e-6f, o.rope = 1, o.contig = 1, o.scale = 1.0f / sqrtf(32.0f);
    o.update = 1, o.wout = 1;
    return o;
}

Test(attention_block_tkg, base_every_dtype)
{
    for (size_t di = 0; di < KGT_FLOAT_DTYPES; di++) {
        attn_block_ref_opts o = base();
        check(&o, kgt_float_dtypes[di]);
    }
}

/* Each option off its default, alone, in bf16 (S_tkg 1 and 7). */
Test(attention_block_tkg, options_one_by_one)
{
    for (int opt = 0; opt < 26; opt++)
        for (long S = 1; S <= 7; S += 6) {
            attn_block_ref_opts o = base();
            o.S = S;
            switch (opt) {
            case 0: o.norm = 1, o.eps = 1e-3f; break;
            case 1: o.rope = 0; break;
            case 2: o.contig = 0; break;
            case 3: o.scale = 0.3f; break;
            case 4: o.update = 0; break;
            case 5: o.wout = 0; break;
            case 6: o.bout = 1; break;
            case 7: o.bias_qkv = 1; break;
            case 8: o.qk_pre = o.qk_pre_gamma = 1, o.qk_pre_eps = 1e-3f; break;
            case 9: o.qk_post = o.qk_post_gamma = 1, o.qk_post_eps = 1e-5f; break;
            case 10: o.sink = 1; break;
            case 11: o.tpk_t = 1; break;
            case 12: o.skip = 1; break;
            case 13: o.tpk_t = 1, o.update = 0; break;
            case 14: o.blk = 8; break;
            case 15: o.blk = 16, o.update = 0, o.sink = 1; break;
            case 16: o.blk = 1; break;
            case 17: o.fp8 = 1; break;
            case 18: o.fp8 = 1, o.update = 0, o.tpk_t = 1; break;
            case 19: o.fp8 = 1, o.blk = 8; break;
            case 20: o.static_qkv = 1; break;
            case 21: o.static_out = 1, o.bout = 1; break;
            case 22: o.static_qkv = o.static_out = 1, o.fp8 = 1, o.bias_qkv = 1; break;
            case 23: o.norm = 1, o.hact = 77; break;
            case 24: o.qk_pre = 1, o.qk_pre_eps = 1e-3f; break; /* no gammas */
            case 25: o.qk_post = 1, o.qk_post_eps = 1e-3f, o.qk_pre = o.qk_pre_gamma = 1; break;
            }
            check(&o, KG_BF16);
        }
}

/* One head, S_tkg 1 and 8, a window of exactly the new tokens, windows off every tile (64) and
 * chunk (512), several chunks, d 2 and 128. */
Test(attention_block_tkg, edge_shapes)
{
    static const long SHAPES[][7] = { /* B, S, H, N, D, S_ctx, S_max */
        { 1, 1, 8, 1, 2, 1, 1 },       { 2, 8, 64, 1, 16, 8, 9 },  { 2, 1, 130, 2, 64, 65, 65 },
        { 1, 3, 64, 4, 128, 1100, 1200 }, { 3, 1, 40, 5, 8, 545, 600 },
    };
    for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++) {
        attn_block_ref_opts o = base();
        o.B = SHAPES[i][0], o.S = SHAPES[i][1], o.H = SHAPES[i][2], o.N = SHAPES[i][3];
        o.D = SHAPES[i][4], o.S_ctx = SHAPES[i][5], o.S_max = SHAPES[i][6];
        o.scale = 1.0f / sqrtf((float)o.D);
        check(&o, KG_F32);
        o.update = 0, o.norm = 1, o.bout = 1;
        check(&o, KG_BF16);
    }
}

/* ---- per-call sizes and bad problems --------------------------------------------------------- */

Test(attention_block_tkg, per_call_checks)
{
    attn_block_ref_opts o = base();
    o.n_cache = o.B;
    call c;
    make_call(&c, &o, KG_F32, 5);
    char problem[1024];
    problem_of(&c, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    long nc = n_cache_el(&c);
    float *out = malloc(sizeof(float) * (size_t)n_xout(&c));
    float *kc = malloc(sizeof(float) * (size_t)nc), *vc = malloc(sizeof(float) * (size_t)nc);
    memcpy(kc, c.K_cache, sizeof(float) * (size_t)nc);
    memcpy(vc, c.V_cache, sizeof(float) * (size_t)nc);
    cr_assert_eq(run_kernel(k, &c, out, kc, vc, NULL, NULL), KG_OK);
    c.o.S_ctx = o.S_max + 1;
    cr_assert_eq(run_kernel(k, &c, out, kc, vc, NULL, NULL), KG_EARG, "S_ctx > S_max");
    c.o.S_ctx = o.S - 1;
    cr_assert_eq(run_kernel(k, &c, out, kc, vc, NULL, NULL), KG_EARG, "S_ctx < S_tkg");
    c.o.S_ctx = o.S_ctx;
    c.o.n_cache = o.B - 1;
    cr_assert_eq(run_kernel(k, &c, out, kc, vc, NULL, NULL), KG_EARG, "n_cache < B");
    c.o.n_cache = o.B;
    c.idx[1] = (uint32_t)(o.S_max - o.S + 1);
    cr_assert_eq(run_kernel(k, &c, out, kc, vc, NULL, NULL), KG_EARG, "a write past the row");
    c.idx[1] = 0;
    c.o.B = -1;
    cr_assert_eq(run_kernel(k, &c, out, kc, vc, NULL, NULL), KG_EARG, "B < 0");
    c.o.B = 0;
    cr_assert_eq(run_kernel(k, &c, out, kc, vc, NULL, NULL), KG_OK, "B = 0 is an empty call");
    c.o.B = o.B;
    free(c.cos), c.cos = NULL;
    cr_assert_eq(run_kernel(k, &c, out, kc, vc, NULL, NULL), KG_EARG, "no cos");
    free(out), free(kc), free(vc);
    call_free(&c);
}

/* Block caches: a table entry past the cache and a write past the pool are refused. */
Test(attention_block_tkg, per_call_checks_block)
{
    attn_block_ref_opts o = base();
    o.blk = 8, o.nblk = o.S_max / 8, o.n_cache = o.B * o.nblk;
    call c;
    make_call(&c, &o, KG_F32, 6);
    char problem[1024];
    problem_of(&c, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    long nc = n_cache_el(&c);
    float *out = malloc(sizeof(float) * (size_t)n_xout(&c));
    float *kc = malloc(sizeof(float) * (size_t)nc), *vc = malloc(sizeof(float) * (size_t)nc);
    memcpy(kc, c.K_cache, sizeof(float) * (size_t)nc);
    memcpy(vc, c.V_cache, sizeof(float) * (size_t)nc);
    cr_assert_eq(run_kernel(k, &c, out, kc, vc, NULL, NULL), KG_OK);
    uint32_t keep = c.table[1];
    c.table[1] = (uint32_t)o.n_cache;
    cr_assert_eq(run_kernel(k, &c, out, kc, vc, NULL, NULL), KG_EARG, "a block past the cache");
    c.table[1] = keep;
    c.idx[0] = (uint32_t)(o.n_cache * o.blk - o.S + 1);
    cr_assert_eq(run_kernel(k, &c, out, kc, vc, NULL, NULL), KG_EARG, "a write past the pool");
    c.idx[0] = (uint32_t)(o.n_cache * o.blk - o.S);
    cr_assert_eq(run_kernel(k, &c, out, kc, vc, NULL, NULL), KG_OK, "the pool's last rows");
    free(out), free(kc), free(vc);
    call_free(&c);
}

Test(attention_block_tkg, bad_problems_name_the_key)
{
    static const struct { const char *problem, *want; } bad[] = {
        { "attention_block_tkg:d_head=63", "key 'd_head'" },
        { "attention_block_tkg:d_head=130", "key 'd_head'" },
        { "attention_block_tkg:S_tkg=9", "key 'S_tkg'" },
        { "attention_block_tkg:rmsnorm_X_eps=0.001", "key 'rmsnorm_X_eps'" },
        { "attention_block_tkg:rope=false,rope_contiguous_layout=false",
          "key 'rope_contiguous_layout'" },
        { "attention_block_tkg:W_out=false,bias_out=true", "key 'bias_out'" },
        { "attention_block_tkg:S_max=64,S_ctx=65", "key 'S_ctx'" },
        { "attention_block_tkg:S_max=4,S_tkg=5", "key 'S_ctx'" },
        { "attention_block_tkg:rmsnorm_QK_eps=0.001", "key 'rmsnorm_QK_eps'" },
        { "attention_block_tkg:rmsnorm_QK_post_rope_eps=0.001",
          "key 'rmsnorm_QK_post_rope_eps'" },
        { "attention_block_tkg:skip_attention=true,sink=true", "key 'sink'" },
        { "attention_block_tkg:block_len=16,K_cache_transposed=true", "key 'K_cache_transposed'" },
        { "attention_block_tkg:block_len=48,S_max=100", "key 'block_len'" },
        { "attention_block_tkg:kv_dtype=e5m2", "key 'kv_dtype'" },
        { "attention_block_tkg:H=64,rmsnorm_X_enabled=true,X_hidden_dim_actual=65",
          "key 'X_hidden_dim_actual'" },
        { "attention_block_tkg:H=64,X_hidden_dim_actual=63", "key 'X_hidden_dim_actual'" },
        { "attention_block_tkg:rmsnorm_QK_gamma=false", "key 'rmsnorm_QK_gamma'" },
        { "attention_block_tkg:rmsnorm_QK_post_rope_gamma=false",
          "key 'rmsnorm_QK_post_rope_gamma'" },
        { "attention_block_tkg:W_out=false,quantization_type_out=STATIC",
          "key 'quantization_type_out'" },
        { "attention_block_tkg:dtype=bf16,kv_dtype=fp16", "key 'kv_dtype'" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        kgt_problem_rejected(bad[i].problem, bad[i].want);
}

Test(attention_block_tkg, names_parse_back_and_are_unique)
{
    static const char *const P[] = {
        "attention_block_tkg:dtype=bf16", "attention_block_tkg:dtype=f32,rope=false",
        "attention_block_tkg:rope_contiguous_layout=false",
        "attention_block_tkg:rmsnorm_X_enabled=true,rmsnorm_X_eps=0.001",
        "attention_block_tkg:rmsnorm_X_enabled=true", "attention_block_tkg:softmax_scale=0.1",
        "attention_block_tkg:update_cache=false", "attention_block_tkg:W_out=false",
        "attention_block_tkg:bias_out=true", "attention_block_tkg:S_tkg=7,q_heads=2,d_head=64",
        "attention_block_tkg:bias_qkv=true", "attention_block_tkg:rmsnorm_QK_enabled=true",
        "attention_block_tkg:rmsnorm_QK_enabled=true,rmsnorm_QK_eps=0.001",
        "attention_block_tkg:rmsnorm_QK_post_rope_enabled=true", "attention_block_tkg:sink=true",
        "attention_block_tkg:K_cache_transposed=true", "attention_block_tkg:skip_attention=true",
        "attention_block_tkg:block_len=32", "attention_block_tkg:kv_dtype=e4m3",
        "attention_block_tkg:quantization_type_qkv=STATIC",
        "attention_block_tkg:quantization_type_out=STATIC",
        "attention_block_tkg:rmsnorm_X_enabled=true,X_hidden_dim_actual=4000",
        "attention_block_tkg:rmsnorm_QK_enabled=true,rmsnorm_QK_gamma=false",
    };
    char names[23][256];
    for (size_t i = 0; i < sizeof P / sizeof P[0]; i++) {
        kgt_name_parses_back(P[i], names[i], sizeof names[0]);
        for (size_t j = 0; j < i; j++)
            cr_assert_str_neq(names[i], names[j], "two problems share the name %s", names[i]);
    }
}

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
static void expect_kv(const call *c, kgt_case *vc, const char *out_name, const void *got, long n,
                      const char *kname)
{
    if (!c->o.fp8) {
        expect(vc, out_name, c->t, got, kname);
        return;
    }
    float *g = kv_decode(c, got, n);
    expect(vc, out_name, KG_F32, g, kname);
    free(g);
}

enum { KVDP_MAX = 4 }; /* the largest KV-data-parallel group the tests run */
static void run_vector_kvdp(kgt_case *vc, call *c, int G);

/* X_out against the case's out_X_out in the layout it is stored in: logical ([B*S, H] with
 * W_out, [B, N, D, S] without), transposed_out's [128, lnc, H/(128 lnc), B*S] (out_T[h0, l, h1,
 * t] = out[t, l*H/lnc + h0*H/(128 lnc) + h1]) or out_in_sb's [D, B*N*S] (column (b*N + n)*S +
 * s), attention_block_tkg.md "Layout-only variants". */
static void expect_out(const call *c, kgt_case *vc, const void *out, const char *kname)
{
    const attn_block_ref_opts *o = &c->o;
    const kg_npy *w = kgt_case_output(vc, "out_X_out");
    cr_assert(w, "%s: %s", kgt_case_name(vc), kgt_case_error(vc));
    long n = n_xout(c), T = n_tok(c);
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
    call c;
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
    cr_assert(kvdp == G && G >= 1 && G <= KVDP_MAX && o->B % G == 0,
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
    problem_of(&c, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    long nc = n_cache_el(&c), nk = n_tok(&c) * o->D;
    void *out = kgt_poisoned(c.t, n_xout(&c));
    void *kc = kv_encode(&c, c.K_cache, nc), *vc2 = kv_encode(&c, c.V_cache, nc);
    void *kt = o->update ? NULL : kv_poisoned(&c, nk);
    void *vt = o->update ? NULL : kv_poisoned(&c, nk);
    cr_assert_eq(run_kernel(k, &c, out, kc, vc2, kt, vt), KG_OK, "%s: %s refused", name,
                 k->name);
    expect_out(&c, vc, out, k->name);
    expect_kv(&c, vc, o->update ? "out_K_cache_updated" : "out_K_tkg", o->update ? kc : kt,
              o->update ? nc : nk, k->name);
    expect_kv(&c, vc, o->update ? "out_V_cache_updated" : "out_V_tkg", o->update ? vc2 : vt,
              o->update ? nc : nk, k->name);
    free(out), free(kc), free(vc2), free(kt), free(vt);
    call_free(&c);
}

Test(attention_block_tkg, shared_vectors) { kgt_each_case("attention_block_tkg", run_vector); }

/* ---- KV data parallelism (kvdp > 1) --------------------------------------------------------- */
/* A group of G ranks (threads as ranks, util/ranks.h) of B = G * bl sequences: rank r owns the
 * caches of sequences r * bl .. r * bl + bl - 1 and holds its own Q columns of W_qkv and its own
 * W_out; all share X, cos, sin and the KV head's K and V columns. Rank r's outputs must be the
 * bits of the kvdp = 1 kernel on rank r's whole problem (all B sequences, the caches of the
 * group put together, rank r's heads of the group's mask and sinks), which itself is held to
 * the plain-loop reference. */

typedef struct group {
    int G;
    long bl, P;                    /* sequences a rank; blocks in a rank's pool (block caches) */
    call c;                        /* the whole problem, rank 0's weights */
    float *Wq[KVDP_MAX], *Wo[KVDP_MAX]; /* rank r's W_qkv [H, I] and W_out [N*D, H] */
    uint8_t *gmask;                /* [S_ctx, B, G*N, S]: the group's heads, rank-major */
    float *gsink;                  /* [G*N] */
} group;

static float *copy_f(const float *x, long n)
{
    float *y = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    memcpy(y, x, sizeof(float) * (size_t)n);
    return y;
}

static void make_group(group *g, const attn_block_ref_opts *o0, kg_dtype t, int G, long bl,
                       unsigned long long seed)
{
    attn_block_ref_opts o = *o0;
    memset(g, 0, sizeof *g);
    g->G = G, g->bl = bl;
    o.B = G * bl, o.nblk = o.blk ? o.S_max / o.blk : 0;
    g->P = o.blk ? bl * o.nblk + 1 : 0;
    o.n_cache = o.blk ? G * g->P : o.B;
    make_call(&g->c, &o, t, seed);
    call *c = &g->c;
    long I = n_qkv(c), ND = o.N * o.D, GN = G * o.N, W = o.S_ctx, S = o.S;
    for (int r = 0; r < G; r++) {
        g->Wq[r] = copy_f(c->W_qkv, o.H * I);
        float *q = randn(t, o.H * ND, seed + 40 + (unsigned long long)r, 1 / sqrtf((float)o.H));
        for (long h = 0; r > 0 && h < o.H; h++) /* rank r's own Q columns */
            for (long j = 0; j < ND; j++)
                g->Wq[r][h * I + j] = o.static_qkv ? kg_e4m3_to_f32(kg_f32_to_e4m3(
                                                         q[h * ND + j] * 8.0f))
                                                   : q[h * ND + j];
        free(q);
        g->Wo[r] = o.wout ? randn(t, ND * o.H, seed + 50 + (unsigned long long)r,
                                  1 / sqrtf((float)ND)) : NULL;
        for (long i = 0; o.static_out && i < ND * o.H; i++)
            g->Wo[r][i] = kg_e4m3_to_f32(kg_f32_to_e4m3(g->Wo[r][i] * 16.0f));
    }
    g->gmask = malloc((size_t)(W * o.B * GN * S));
    unsigned long long z = seed * 2862933555777941757ull + 3;
    for (long j = 0; j < W; j++)
        for (long b = 0; b < o.B; b++)
            for (long n = 0; n < GN; n++)
                for (long s = 0; s < S; s++) {
                    long len = W - S - b > 0 ? W - S - b : 0;
                    z = z * 6364136223846793005ull + 1442695040888963407ull;
                    int on = j < len || (j >= W - S && j - (W - S) <= s);
                    g->gmask[((j * o.B + b) * GN + n) * S + s] = (uint8_t)(on && (z >> 33) % 8);
                }
    g->gsink = o.sink ? randn(KG_F32, GN, seed + 60, 2.0f) : NULL;
    for (long b = 0; o.blk && b < o.B; b++) { /* rank r's sequences use blocks of its pool */
        long r = b / bl, lb = b % bl;
        for (long j = 0; j < o.nblk; j++)
            c->table[b * o.nblk + j] = (uint32_t)(r * g->P + ((lb * o.nblk + j) * 7 + 3) % g->P);
        c->idx[b] = (uint32_t)(r * g->P * o.blk + (lb * 13 + 2) % (g->P * o.blk - S + 1));
    }
    if (o.B > 2)
        c->idx[2] = 0xFFFFFFFFu;
}

static void group_free(group *g)
{
    for (int r = 0; r < g->G; r++)
        free(g->Wq[r]), free(g->Wo[r]);
    free(g->gmask), free(g->gsink);
    call_free(&g->c);
}

/* Rank r's whole problem for the kvdp = 1 kernel (shallow: free its mask only). */
static call whole_of(const group *g, int r)
{
    call w = g->c;
    const attn_block_ref_opts *o = &g->c.o;
    long W = o->S_ctx, N = o->N, S = o->S, GN = g->G * N;
    w.W_qkv = g->Wq[r], w.W_out = g->Wo[r], w.sink = g->gsink ? g->gsink + r * N : NULL;
    w.mask = malloc((size_t)(W * o->B * N * S));
    for (long j = 0; j < W; j++)
        for (long b = 0; b < o->B; b++)
            for (long n = 0; n < N; n++)
                for (long s = 0; s < S; s++)
                    w.mask[((j * o->B + b) * N + n) * S + s] =
                        g->gmask[((j * o->B + b) * GN + r * N + n) * S + s];
    return w;
}

/* Where rank r's cache starts in the whole problem's: element offset. */
static long cache_offset(const group *g, int r)
{
    const attn_block_ref_opts *o = &g->c.o;
    return o->blk ? r * g->P * o->blk * o->D : r * g->bl * o->S_max * o->D;
}

/* Rank r's call of the kvdp kernel (shallow: free its mask, idx and table): B all sequences,
 * its caches, indices, table and mask rows, the group's sinks. */
static call rank_of(const group *g, int r)
{
    call c = g->c;
    const attn_block_ref_opts *o = &g->c.o;
    long W = o->S_ctx, S = o->S, GN = g->G * o->N, bl = g->bl, b0 = r * bl;
    c.o.n_cache = o->blk ? g->P : bl;
    c.W_qkv = g->Wq[r], c.W_out = g->Wo[r], c.sink = g->gsink;
    c.K_cache = g->c.K_cache + cache_offset(g, r), c.V_cache = g->c.V_cache + cache_offset(g, r);
    c.mask = malloc((size_t)(W * bl * GN * S));
    for (long j = 0; j < W; j++)
        memcpy(c.mask + j * bl * GN * S, g->gmask + (j * o->B + b0) * GN * S,
               (size_t)(bl * GN * S));
    c.idx = malloc(sizeof(uint32_t) * (size_t)bl);
    for (long lb = 0; lb < bl; lb++) {
        uint32_t v = g->c.idx[b0 + lb];
        c.idx[lb] = v == 0xFFFFFFFFu || !o->blk ? v : v - (uint32_t)(r * g->P * o->blk);
    }
    c.table = NULL;
    if (o->blk) {
        c.table = malloc(sizeof(uint32_t) * (size_t)(bl * o->nblk));
        for (long i = 0; i < bl * o->nblk; i++)
            c.table[i] = g->c.table[b0 * o->nblk + i] - (uint32_t)(r * g->P);
    }
    return c;
}

/* One group's KVDP call: per rank its call, buffers and the kernel's status. */
typedef struct kvdp_run {
    const kg_kernel *k;
    int G;
    call rc[KVDP_MAX];
    void *out[KVDP_MAX], *kc[KVDP_MAX], *vc[KVDP_MAX], *kt[KVDP_MAX], *vt[KVDP_MAX];
    int status[KVDP_MAX];
} kvdp_run;

static void kvdp_rank(kg_coll *comm, int r, void *arg)
{
    kvdp_run *a = arg;
    (void)comm; /* the kernel finds it bound to this thread (kgp_coll) */
    a->status[r] = run_kernel(a->k, &a->rc[r], a->out[r], a->kc[r], a->vc[r], a->kt[r],
                              a->vt[r]);
}

/* Kernel k's (kvdp = g->G) calls on the group, outputs started as build's fill. */
static void prepare_group(kvdp_run *a, const kg_kernel *k, const group *g, int build)
{
    memset(a, 0, sizeof *a);
    a->k = k, a->G = g->G;
    long nk = g->bl * g->c.o.S * g->c.o.D;
    size_t w = kv_size(&g->c);
    for (int r = 0; r < g->G; r++) {
        call *c = &a->rc[r];
        *c = rank_of(g, r);
        long nc = n_cache_el(c);
        a->out[r] = kgt_build_output(c->t, n_xout(c), build);
        a->kc[r] = kv_encode(c, c->K_cache, nc), a->vc[r] = kv_encode(c, c->V_cache, nc);
        a->kt[r] = c->o.update ? NULL : kgt_filled((size_t)nk * w, build);
        a->vt[r] = c->o.update ? NULL : kgt_filled((size_t)nk * w, build);
    }
}

static void run_group(kvdp_run *a, const kg_kernel *k, const group *g, int build)
{
    prepare_group(a, k, g, build);
    cr_assert_eq(kgt_run_ranks(g->G, kvdp_rank, a), 0, "the ranks' threads");
}

static void run_free(kvdp_run *a)
{
    for (int r = 0; r < a->G; r++) {
        free(a->out[r]), free(a->kc[r]), free(a->vc[r]), free(a->kt[r]), free(a->vt[r]);
        free(a->rc[r].mask), free(a->rc[r].idx), free(a->rc[r].table);
    }
}

/* The problem strings of the group's kernels: kvdp = 1 and kvdp = G. */
static void group_problems(const group *g, char *plain, char *kv, size_t len)
{
    problem_of(&g->c, plain, len);
    snprintf(kv, len, "%s,kvdp=%d,B=%ld", plain, g->G, g->c.o.B);
}

/* Rank r of run a against the kvdp = 1 kernel on rank r's whole problem, bit for bit (X_out,
 * the rank's caches or K_tkg, V_tkg); that kernel's X_out against the reference. */
static void check_rank(const group *g, const kvdp_run *a, const kg_kernel *plain, int r)
{
    const attn_block_ref_opts *o = &g->c.o;
    call w = whole_of(g, r);
    long nx = n_xout(&w), nc = n_cache_el(&w), nk = n_tok(&w) * o->D;
    size_t kw = kv_size(&w);
    void *out = kgt_build_output(w.t, nx, KGT_AOT);
    void *kc = kv_encode(&w, w.K_cache, nc), *vc = kv_encode(&w, w.V_cache, nc);
    void *kt = o->update ? NULL : kgt_filled((size_t)nk * kw, KGT_AOT);
    void *vt = o->update ? NULL : kgt_filled((size_t)nk * kw, KGT_AOT);
    cr_assert_eq(a->status[r], KG_OK, "%s rank %d refused its call", a->k->name, r);
    cr_assert_eq(run_kernel(plain, &w, out, kc, vc, kt, vt), KG_OK, "%s", plain->name);
    char msg[1024];
    cr_assert(kgt_builds_equal(a->out[r], out, nx, kgt_dtype_size(w.t), msg, sizeof msg),
              "%s rank %d of %d: X_out against %s: %s", a->k->name, r, g->G, plain->name, msg);
    long bl = g->bl, S = o->S, D = o->D;
    if (o->update) {
        long off = cache_offset(g, r), n = n_cache_el(&a->rc[r]);
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
    cr_assert(kv_close(&w, o->update ? kc : kt, kwant, nko, msg, sizeof msg), "%s: K %s",
              plain->name, msg);
    free(want), free(kwant), free(vwant);
    free(out), free(kc), free(vc), free(kt), free(vt), free(w.mask);
}

/* The group of G ranks of bl sequences each on options o (dtype t), every rank checked. */
static void check_kvdp(const attn_block_ref_opts *o, kg_dtype t, int G, long bl)
{
    group g;
    make_group(&g, o, t, G, bl, 300 + (unsigned long long)(G * 17 + o->S));
    char plain[1024], kv[1100];
    group_problems(&g, plain, kv, sizeof kv);
    const kg_kernel *kk = kgt_jit(kv), *kp = kgt_jit(plain);
    kvdp_run a;
    run_group(&a, kk, &g, KGT_JIT);
    for (int r = 0; r < G; r++)
        check_rank(&g, &a, kp, r);
    run_free(&a);
    group_free(&g);
}

/* Options of the KVDP cases: flat, fp8 and block caches, K_tkg outputs, sinks, STATIC. */
static attn_block_ref_opts kvdp_opts(int i)
{
    attn_block_ref_opts o = base();
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
    attn_block_ref_opts o = base();
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
            group g;
            make_group(&g, &o, CASES[i] == 5 ? KG_F32 : KG_BF16, G, 4 / G, 500 + (unsigned)i);
            char plain[1024], kv[1100];
            group_problems(&g, plain, kv, sizeof kv);
            const kg_kernel *kj = kgt_jit(kv), *ka = gcc_build(reg, kv);
            kvdp_run a, j;
            run_group(&a, ka, &g, KGT_AOT);
            run_group(&j, kj, &g, KGT_JIT);
            char msg[1024];
            for (int r = 0; r < G; r++) {
                const call *c = &a.rc[r];
                size_t w = kv_size(c);
                cr_assert(a.status[r] == KG_OK && j.status[r] == KG_OK, "%s rank %d", kj->name,
                          r);
                cr_assert(kgt_builds_equal(j.out[r], a.out[r], n_xout(c), kgt_dtype_size(c->t),
                                           msg, sizeof msg), "%s rank %d X_out: %s", kj->name,
                          r, msg);
                long n = c->o.update ? n_cache_el(c) : g.bl * c->o.S * c->o.D;
                cr_assert(kgt_builds_equal(c->o.update ? j.kc[r] : j.kt[r],
                                           c->o.update ? a.kc[r] : a.kt[r], n, w, msg,
                                           sizeof msg), "%s rank %d K: %s", kj->name, r, msg);
                cr_assert(kgt_builds_equal(c->o.update ? j.vc[r] : j.vt[r],
                                           c->o.update ? a.vc[r] : a.vt[r], n, w, msg,
                                           sizeof msg), "%s rank %d V: %s", kj->name, r, msg);
            }
            run_free(&a), run_free(&j);
            group_free(&g);
        }
    cr_assert_eq(kgt_builds_compared() - compared, 3 * (2 + 4) * 4, "every rank compared");
    kg_registry_free(reg);
}

/* ---- KVDP refusals --------------------------------------------------------------------------- */

Test(attention_block_tkg, kvdp_refusals)
{
    group g;
    attn_block_ref_opts o = base();
    make_group(&g, &o, KG_BF16, 2, 2, 9);
    char plain[1024], kv[1100], bad[1100];
    group_problems(&g, plain, kv, sizeof kv);
    /* generation time: B a multiple of kvdp, kvdp at least 1 */
    snprintf(bad, sizeof bad, "%s,kvdp=2,B=3", plain);
    kgt_problem_rejected(bad, "kvdp");
    snprintf(bad, sizeof bad, "%s,kvdp=0", plain);
    kgt_problem_rejected(bad, "kvdp");
    const kg_kernel *kk = kgt_jit(kv);
    kvdp_run a;
    /* call time, every rank: B not a multiple of kvdp */
    prepare_group(&a, kk, &g, KGT_JIT);
    for (int r = 0; r < 2; r++)
        a.rc[r].o.B = 3;
    cr_assert_eq(kgt_run_ranks(2, kvdp_rank, &a), 0);
    for (int r = 0; r < 2; r++)
        cr_assert_eq(a.status[r], KG_EARG, "rank %d: B = 3 with kvdp = 2", r);
    run_free(&a);
    /* one rank's bad write index fails every rank, before anything is written */
    prepare_group(&a, kk, &g, KGT_JIT);
    a.rc[1].idx[0] = (uint32_t)(o.S_max - o.S + 1);
    void *keep = kv_encode(&a.rc[0], a.rc[0].K_cache, n_cache_el(&a.rc[0]));
    cr_assert_eq(kgt_run_ranks(2, kvdp_rank, &a), 0);
    for (int r = 0; r < 2; r++)
        cr_assert_eq(a.status[r], KG_EARG, "rank %d: rank 1 writes past its row", r);
    cr_assert_eq(memcmp(keep, a.kc[0], (size_t)n_cache_el(&a.rc[0]) * kv_size(&a.rc[0])), 0,
                 "rank 0 wrote its cache although the group refused the call");
    free(keep);
    run_free(&a);
    /* ... and the group's next good call runs */
    run_group(&a, kk, &g, KGT_JIT);
    for (int r = 0; r < 2; r++)
        cr_assert_eq(a.status[r], KG_OK, "rank %d after the refusals", r);
    run_free(&a);
    /* a thread whose communicator has another size (here the single rank) */
    prepare_group(&a, kk, &g, KGT_JIT);
    cr_assert_eq(run_kernel(kk, &a.rc[0], a.out[0], a.kc[0], a.vc[0], a.kt[0], a.vt[0]), KG_EARG,
                 "a kvdp = 2 kernel on a single rank");
    run_free(&a);
    group_free(&g);
}

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
static void run_vector_kvdp(kgt_case *vc, call *c, int G)
{
    const attn_block_ref_opts *o = &c->o;
    long bl = o->B / G, I = n_qkv(c), ND = o->N * o->D, GN = G * o->N;
    char plain[1024], kv[1100];
    problem_of(c, plain, sizeof plain);
    snprintf(kv, sizeof kv, "%s,kvdp=%d,B=%ld", plain, G, o->B);
    kvdp_run a;
    memset(&a, 0, sizeof a);
    a.k = kgt_jit(kv), a.G = G;
    long nc = n_cache_el(c), nx = n_xout(c), nk = bl * o->S * o->D;
    size_t w = kv_size(c), xw = kgt_dtype_size(c->t);
    for (int r = 0; r < G; r++) {
        call *rc = &a.rc[r];
        *rc = *c;
        rc->W_qkv = c->W_qkv + r * o->H * I, rc->W_out = c->W_out ? c->W_out + r * ND * o->H : NULL;
        rc->K_cache = c->K_cache + r * nc, rc->V_cache = c->V_cache + r * nc;
        rc->mask = c->mask + r * o->S_ctx * bl * GN * o->S, rc->idx = c->idx + r * bl;
        rc->table = c->table ? c->table + r * bl * o->nblk : NULL;
        a.out[r] = kgt_poisoned(c->t, nx);
        a.kc[r] = kv_encode(rc, rc->K_cache, nc), a.vc[r] = kv_encode(rc, rc->V_cache, nc);
        a.kt[r] = o->update ? NULL : kv_poisoned(rc, nk);
        a.vt[r] = o->update ? NULL : kv_poisoned(rc, nk);
    }
    cr_assert_eq(kgt_run_ranks(G, kvdp_rank, &a), 0);
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
    call_free(c);
}

/* Writes group g as a KVDP vector case by the convention above (expected outputs from the
 * reference on each rank's whole problem) and runs the adapter on it. */
static void kvdp_case(const group *g, const char *name)
{
    const call *c = &g->c;
    const attn_block_ref_opts *o = &c->o;
    int G = g->G;
    long bl = g->bl, I = n_qkv(c), ND = o->N * o->D, GN = G * o->N, W = o->S_ctx, S = o->S;
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
    long nx = n_xout(c), nk = bl * S * o->D, nkv = o->update ? nc_r * (o->blk ? o->blk : o->S_max)
                                                                   * o->D : nk;
    float *xo = malloc(sizeof(float) * (size_t)(G * nx));
    float *ko = malloc(sizeof(float) * (size_t)(G * nkv));
    float *vo = malloc(sizeof(float) * (size_t)(G * nkv));
    for (int r = 0; r < G; r++) {
        call rc = rank_of(g, r), w = whole_of(g, r);
        memcpy((uint8_t *)mask.data + r * W * bl * GN * S, rc.mask, (size_t)(W * bl * GN * S));
        memcpy((uint32_t *)idx.data + r * bl, rc.idx, sizeof(uint32_t) * (size_t)bl);
        if (o->blk)
            memcpy((uint32_t *)tab.data + r * bl * o->nblk, rc.table,
                   sizeof(uint32_t) * (size_t)(bl * o->nblk));
        long nw = o->update ? n_cache_el(&w) : n_tok(&w) * o->D;
        float *kw = malloc(sizeof(float) * (size_t)nw), *vw = malloc(sizeof(float) * (size_t)nw);
        attn_block_ref_in in = { .X = w.X, .W_qkv = w.W_qkv, .cos = w.cos, .sin = w.sin,
                                 .K_cache = w.K_cache, .V_cache = w.V_cache, .W_out = w.W_out,
                                 .mask = w.mask, .idx = w.idx, .sink = w.sink, .table = w.table,
                                 .k_scale = w.kv_scale[0], .v_scale = w.kv_scale[1] };
        attention_block_tkg_ref(xo + r * nx, kw, vw, &in, o);
        if (o->update) {
            memcpy(ko + r * nkv, kw + cache_offset(g, r), sizeof(float) * (size_t)nkv);
            memcpy(vo + r * nkv, vw + cache_offset(g, r), sizeof(float) * (size_t)nkv);
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
    attn_block_ref_opts o = base();
    group g;
    make_group(&g, &o, KG_BF16, 2, 2, 71);
    kvdp_case(&g, "kvdp2_flat_update");
    group_free(&g);
    o.fp8 = 1, o.blk = 8, o.update = 0, o.sink = 1;
    make_group(&g, &o, KG_BF16, 4, 1, 72);
    kvdp_case(&g, "kvdp4_fp8_block_sink_noupdate");
    group_free(&g);
}

/* A synthetic case for what the sample lacks: a pre-RoPE Q gamma without K's and a post-RoPE
 * K gamma without Q's (each optional on its own), X_out stored transposed_out ([128, lnc, H /
 * (128 lnc), B*S], lnc 2), and the hardware flags; expected from tests/ref. */
Test(attention_block_tkg, synthetic_vector_lone_gammas_transposed_out)
{
    attn_block_ref_opts o = base();
    o.B = 2, o.S = 2, o.H = 256, o.N = 2, o.D = 64, o.S_ctx = 32, o.S_max = 40;
    o.qk_pre = o.qk_pre_gamma = 1, o.qk_post = o.qk_post_gamma = 1;
    o.qk_pre_eps = 1e-5f, o.qk_post_eps = 1e-3f, o.n_cache = o.B;
    call c;
    make_call(&c, &o, KG_BF16, 4242);
    free(c.gk_pre), free(c.gq_post);
    c.gk_pre = c.gq_post = NULL;
    long T = n_tok(&c), nx = n_xout(&c), nc = n_cache_el(&c);
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
    long xs[3] = { o.B, o.S, o.H }, ws[2] = { o.H, n_qkv(&c) }, cs[4] = { o.B, 1, o.S_max, o.D };
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
    call_free(&c);
}

/* ---- JIT vs AOT ------------------------------------------------------------------------------ */

static int key_bool(const char *problem, const char *key)
{
    char v[8];
    cr_assert(kg_problem_str(problem, key, v, sizeof v), "%s: %s", problem, key);
    return !strcmp(v, "true");
}

static long key_long(const char *problem, const char *key)
{
    long v;
    cr_assert(kg_problem_long(problem, key, &v), "%s: %s", problem, key);
    return v;
}

/* Both builds on one random call at the kernel's own keys (B = 3, a window of 600 slots or the
 * cache's size): the same bytes out, and in the caches or K_tkg, V_tkg. */
static void compare_builds(const kg_kernel *a, const kg_kernel *j)
{
    const char *p = a->problem;
    attn_block_ref_opts o;
    memset(&o, 0, sizeof o);
    char dt[16];
    double v;
    cr_assert(kg_problem_str(p, "dtype", dt, sizeof dt), "%s", p);
    o.H = key_long(p, "H"), o.N = key_long(p, "q_heads"), o.D = key_long(p, "d_head");
    o.S = key_long(p, "S_tkg"), o.S_max = key_long(p, "S_max");
    o.S_ctx = o.S_max < 600 ? o.S_max : 600, o.B = 3, o.blk = key_long(p, "block_len");
    o.nblk = o.blk ? o.S_max / o.blk : 0, o.n_cache = o.blk ? o.B * o.nblk + 3 : 4;
    char kdt[16];
    cr_assert(kg_problem_str(p, "kv_dtype", kdt, sizeof kdt), "%s", p);
    o.fp8 = !strcmp(kdt, "e4m3");
    cr_assert(kg_problem_str(p, "quantization_type_qkv", kdt, sizeof kdt), "%s", p);
    o.static_qkv = !strcmp(kdt, "STATIC");
    cr_assert(kg_problem_str(p, "quantization_type_out", kdt, sizeof kdt), "%s", p);
    o.static_out = !strcmp(kdt, "STATIC");
    o.norm = key_bool(p, "rmsnorm_X_enabled"), o.rope = key_bool(p, "rope");
    o.contig = key_bool(p, "rope_contiguous_layout"), o.update = key_bool(p, "update_cache");
    o.wout = key_bool(p, "W_out"), o.bout = key_bool(p, "bias_out");
    o.bias_qkv = key_bool(p, "bias_qkv"), o.sink = key_bool(p, "sink");
    o.tpk_t = key_bool(p, "K_cache_transposed"), o.skip = key_bool(p, "skip_attention");
    o.qk_pre = key_bool(p, "rmsnorm_QK_enabled");
    o.qk_post = key_bool(p, "rmsnorm_QK_post_rope_enabled");
    o.qk_pre_gamma = key_bool(p, "rmsnorm_QK_gamma");
    o.qk_post_gamma = key_bool(p, "rmsnorm_QK_post_rope_gamma");
    o.hact = key_long(p, "X_hidden_dim_actual");
    o.hact = o.hact == o.H ? 0 : o.hact;
    cr_assert(kg_problem_double(p, "rmsnorm_QK_eps", &v), "%s", p);
    o.qk_pre_eps = (float)v;
    cr_assert(kg_problem_double(p, "rmsnorm_QK_post_rope_eps", &v), "%s", p);
    o.qk_post_eps = (float)v;
    cr_assert(kg_problem_double(p, "softmax_scale", &v), "%s", p);
    o.scale = (float)v;
    if (o.norm) {
        cr_assert(kg_problem_double(p, "rmsnorm_X_eps", &v), "%s", p);
        o.eps = (float)v;
    }
    kg_dtype t = (kg_dtype)kg_dtype_from_name(dt);
    call c;
    make_call(&c, &o, t, 77);
    long nx = n_xout(&c), nc = n_cache_el(&c), nk = n_tok(&c) * o.D;
    void *oa = kgt_build_output(t, nx, KGT_AOT), *oj = kgt_build_output(t, nx, KGT_JIT);
    size_t w = kv_size(&c);
    void *ka = kv_encode(&c, c.K_cache, nc), *kj = kv_encode(&c, c.K_cache, nc);
    void *va = kv_encode(&c, c.V_cache, nc), *vj = kv_encode(&c, c.V_cache, nc);
    void *kta = kgt_filled((size_t)nk * w, KGT_AOT), *ktj = kgt_filled((size_t)nk * w, KGT_JIT);
    void *vta = kgt_filled((size_t)nk * w, KGT_AOT), *vtj = kgt_filled((size_t)nk * w, KGT_JIT);
    cr_assert_eq(run_kernel(a, &c, oa, ka, va, kta, vta), KG_OK, "%s (AOT)", a->name);
    cr_assert_eq(run_kernel(j, &c, oj, kj, vj, ktj, vtj), KG_OK, "%s (JIT)", a->name);
    char msg[1024];
    long xs[1] = { nx };
    cr_assert(kgt_same_bytes(oj, oa, t, nx, 1, xs, msg, sizeof msg), "%s: %s", a->name, msg);
    /* the caches (updated in place) or K_tkg, V_tkg: elements of w bytes */
    long n = o.update ? nc : nk;
    cr_assert(kgt_builds_equal(o.update ? kj : ktj, o.update ? ka : kta, n, w, msg, sizeof msg),
              "%s K: %s", a->name, msg);
    cr_assert(kgt_builds_equal(o.update ? vj : vtj, o.update ? va : vta, n, w, msg, sizeof msg),
              "%s V: %s", a->name, msg);
    free(oa), free(oj), free(ka), free(kj), free(va), free(vj);
    free(kta), free(ktj), free(vta), free(vtj);
    call_free(&c);
}

Test(attention_block_tkg, jit_and_aot_are_bit_identical)
{
    cr_assert_gt(kgt_each_aot_jit_pair("attention_block_tkg", compare_builds), 0,
                 "no AOT-built spec has an attention_block_tkg kernel");
}
