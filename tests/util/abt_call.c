/* tests/util/abt_call.c: one call of an attention_block_tkg kernel for its tests
 * (util/abt_call.h). */
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
#include "util/tensors.h"
#include "util/weights.h"

long abt_n_tok(const abt_call *c) { return c->o.B * c->o.S; }
long abt_n_cache_el(const abt_call *c)
{
    return c->o.n_cache * (c->o.blk ? c->o.blk : c->o.S_max) * c->o.D;
}
long abt_n_xout(const abt_call *c)
{
    return c->o.wout ? abt_n_tok(c) * c->o.H : abt_n_tok(c) * c->o.N * c->o.D;
}
long abt_n_qkv(const abt_call *c) { return (c->o.N + 2) * c->o.D; }

void abt_call_free(abt_call *c)
{
    free(c->X), free(c->gamma), free(c->W_qkv), free(c->cos), free(c->sin), free(c->K_cache);
    free(c->V_cache), free(c->W_out), free(c->bias_out), free(c->mask), free(c->idx);
    free(c->bias_qkv), free(c->gq_pre), free(c->gk_pre), free(c->gq_post), free(c->gk_post);
    free(c->sink), free(c->table);
}

static const char *tf(int b) { return b ? "true" : "false"; }

/* ---- the KV tensors: dtype t, or e4m3 codes -------------------------------------------------- */

size_t abt_kv_size(const abt_call *c) { return c->o.fp8 ? 1 : kgt_dtype_size(c->t); }

/* n values x (on the caches' grid) as the kernel reads them. */
void *abt_kv_encode(const abt_call *c, const float *x, long n)
{
    if (!c->o.fp8)
        return kgt_encode(c->t, x, n);
    uint8_t *e = malloc((size_t)(n > 0 ? n : 1));
    for (long i = 0; i < n; i++)
        e[i] = kg_f32_to_e4m3(x[i]);
    return e;
}

/* n KV elements at p as fp32; malloc'd. */
float *abt_kv_decode(const abt_call *c, const void *p, long n)
{
    if (!c->o.fp8)
        return kgt_decode(c->t, p, n);
    float *y = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (long i = 0; i < n; i++)
        y[i] = kg_e4m3_to_f32(((const uint8_t *)p)[i]);
    return y;
}

/* An output of n KV elements that starts as NaN in either format (0xff bytes). */
void *abt_kv_poisoned(const abt_call *c, long n)
{
    void *p = malloc((size_t)(n > 0 ? n : 1) * abt_kv_size(c));
    memset(p, 0xff, (size_t)(n > 0 ? n : 1) * abt_kv_size(c));
    return p;
}

/* The kernel's KV output got (n elements) against the reference's want: the vectors'
 * comparator; fp8 at rtol 0.07 and atol 1 (an e4m3 step at |x| < 16: the two round K * k_scale
 * computed in different orders). */
int abt_kv_close(const abt_call *c, const void *got, float *want, long n, char *msg, size_t len)
{
    long shape[1] = { n };
    if (!c->o.fp8)
        return kgt_close_to_ref(c->t, got, want, 1, shape, 1.5e-2, 1e-5, msg, len);
    float *g = abt_kv_decode(c, got, n);
    int ok = kgt_allclose(g, want, n, 0.07, 1.0, msg, len);
    free(g);
    return ok;
}

/* The problem string of c's kernel. */
void abt_problem_of(const abt_call *c, char *buf, size_t len)
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
int abt_run_kernel(const kg_kernel *k, const abt_call *c, void *out, void *kc, void *vc, void *kt,
                   void *vt)
{
    const attn_block_ref_opts *o = &c->o;
    kg_dtype t = c->t;
    long T = abt_n_tok(c), hc = o->D / 2 * T;
    void *X = kgt_encode(t, c->X, T * o->H);
    void *gx = c->gamma ? kgt_encode(t, c->gamma, o->H) : NULL;
    void *cs = c->cos ? kgt_encode(t, c->cos, hc) : NULL, *sn = c->sin ? kgt_encode(t, c->sin, hc)
                                                                       : NULL;
    void *bo = c->bias_out ? kgt_encode(t, c->bias_out, o->H) : NULL;
    void *bq = c->bias_qkv ? kgt_encode(t, c->bias_qkv, abt_n_qkv(c)) : NULL;
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
    pack(&wq, t, o->static_qkv, o->H, abt_n_qkv(c), c->W_qkv);
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

/* ---- random calls ---------------------------------------------------------------------------- */

float *abt_randn(kg_dtype t, long n, unsigned long long seed, float scale)
{
    float *x = kgt_randn(KG_F32, n, seed);
    for (long i = 0; i < n; i++)
        x[i] = kgt_round(t, x[i] * scale);
    return x;
}

/* Random inputs for options o in dtype t: sequence b has cache length len_b = S_ctx - S - b
 * (at least 0), its mask attends slots < len_b and the causal tail; a few random holes. */
void abt_make_call(abt_call *c, const attn_block_ref_opts *o, kg_dtype t, unsigned long long seed)
{
    memset(c, 0, sizeof *c);
    c->o = *o;
    c->t = t;
    long T = abt_n_tok(c), N = o->N, S = o->S, W = o->S_ctx, hc = o->D / 2 * T;
    c->X = abt_randn(t, T * o->H, seed, 1.0f);
    for (long i = 0; o->hact && i < T * o->H; i++) /* zero padding past the actual size */
        if (i % o->H >= o->hact)
            c->X[i] = 0.0f;
    c->gamma = o->norm ? abt_randn(t, o->H, seed + 1, 0.5f) : NULL;
    if (c->gamma)
        for (long h = 0; h < o->H; h++)
            c->gamma[h] = kgt_round(t, c->gamma[h] + 1.0f);
    c->W_qkv = abt_randn(t, o->H * abt_n_qkv(c), seed + 2, 1.0f / sqrtf((float)o->H));
    c->w_qkv[0] = 0.5f, c->w_qkv[1] = 0.25f, c->w_qkv[2] = 0.375f, c->s_qkv = 0.02f;
    c->w_out = 0.5f, c->s_out = 0.01f;
    for (long i = 0; o->static_qkv && i < o->H * abt_n_qkv(c); i++) /* fp8 values of w * W */
        c->W_qkv[i] = kg_e4m3_to_f32(kg_f32_to_e4m3(c->W_qkv[i] * 8.0f));
    if (o->rope) {
        c->cos = malloc(sizeof(float) * (size_t)hc), c->sin = malloc(sizeof(float) * (size_t)hc);
        for (long i = 0; i < hc; i++) {
            float a = 0.37f * (float)(i % 97) + 0.1f * (float)(i / 97);
            c->cos[i] = kgt_round(t, cosf(a)), c->sin[i] = kgt_round(t, sinf(a));
        }
    }
    c->bias_qkv = o->bias_qkv ? abt_randn(t, abt_n_qkv(c), seed + 7, 0.5f) : NULL;
    float **gs[4] = { &c->gq_pre, &c->gk_pre, &c->gq_post, &c->gk_post };
    for (int i = 0; i < 4; i++) {
        if (!(i < 2 ? o->qk_pre && o->qk_pre_gamma : o->qk_post && o->qk_post_gamma))
            continue;
        *gs[i] = abt_randn(t, o->D, seed + 8 + (unsigned long long)i, 0.3f);
        for (long d = 0; d < o->D; d++)
            (*gs[i])[d] = kgt_round(t, (*gs[i])[d] + 1.0f);
    }
    c->sink = o->sink ? abt_randn(KG_F32, N, seed + 12, 2.0f) : NULL;
    c->K_cache = abt_randn(t, abt_n_cache_el(c), seed + 3, 1.0f);
    c->V_cache = abt_randn(t, abt_n_cache_el(c), seed + 4, 1.0f);
    c->kv_scale[0] = 2.0f, c->kv_scale[1] = 0.75f;
    for (long i = 0; o->fp8 && i < abt_n_cache_el(c); i++) { /* on the e4m3 grid, scaled */
        c->K_cache[i] = kg_e4m3_to_f32(kg_f32_to_e4m3(c->K_cache[i] * c->kv_scale[0]));
        c->V_cache[i] = kg_e4m3_to_f32(kg_f32_to_e4m3(c->V_cache[i] * c->kv_scale[1]));
    }
    c->W_out = o->wout ? abt_randn(t, N * o->D * o->H, seed + 5, 1.0f / sqrtf((float)(N * o->D)))
                       : NULL;
    for (long i = 0; o->static_out && i < N * o->D * o->H; i++)
        c->W_out[i] = kg_e4m3_to_f32(kg_f32_to_e4m3(c->W_out[i] * 16.0f));
    c->bias_out = o->bout ? abt_randn(t, o->H, seed + 6, 1.0f) : NULL;
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

/* B, S, H, N, D, S_ctx, S_max, blk, n_cache, nblk, norm, eps, bias_qkv, static_qkv, static_out,
 * qk_pre, qk_post, qk_pre_gamma, qk_post_gamma, qk_pre_eps, qk_post_eps, rope, contig, scale,
 * sink, tpk_t, fp8, update, skip, wout, bout */
attn_block_ref_opts abt_base_opts(void)
{
    attn_block_ref_opts o;
    memset(&o, 0, sizeof o);
    o.B = 3, o.S = 2, o.H = 96, o.N = 3, o.D = 32, o.S_ctx = 40, o.S_max = 48;
    o.eps = 1e-6f, o.rope = 1, o.contig = 1, o.scale = 1.0f / sqrtf(32.0f);
    o.update = 1, o.wout = 1;
    return o;
}
