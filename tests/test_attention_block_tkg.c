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
#include "kgen/kernels.h"
#include "kgen/kgen.h"
#include "ref/ref.h"
#include "util/casew.h"
#include "util/compare.h"
#include "util/jitp.h"
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

/* An option the adapter does not map yet must be absent or off: a case that sets it fails. */
static void opt_unmapped(kgt_case *c, const char *key)
{
    int v = 0;
    const char *str;
    cr_assert(!kgt_case_opt_bool(c, key, &v) || !v, "%s: option %s is not mapped",
              kgt_case_name(c), key);
    cr_assert(!kgt_case_opt_str(c, key, &str) || !strcmp(str, "NONE"),
              "%s: option %s = %s is not mapped", kgt_case_name(c), key, str);
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
    double kvdp = 1;
    cr_assert(!kgt_case_opt_num(vc, "KVDP", &kvdp) || kvdp == 1, "%s: KVDP = %g is not mapped",
              name, kvdp);
    opt_unmapped(vc, "KVDP");
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
    if (o->blk)
        cr_assert(c.table && kcn->rank == 3 && kcn->shape[1] == o->blk && kcn->shape[2] == o->D &&
                  kg_npy_count(kgt_case_input(vc, "active_blocks_table")) == o->B * o->nblk,
                  "%s: block caches [blocks, block_len, D], table [B, S_max / block_len]", name);
    else
        cr_assert(kcn->rank == 4 && kcn->shape[1] == 1 &&
                  kcn->shape[2] == (o->tpk_t ? o->D : o->S_max) &&
                  kcn->shape[3] == (o->tpk_t ? o->S_max : o->D), "%s: K_cache shape", name);
    o->n_cache = kcn->shape[0];
    cr_assert_eq(kg_npy_count(kgt_case_input(vc, "attention_mask")), o->S_ctx * o->B * o->N * o->S,
                 "%s: mask shape", name);
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
