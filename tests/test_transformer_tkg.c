/* tests/test_transformer_tkg.c: the transformer_tkg megakernel against
 * tests/ref/transformer_tkg_ref.c on sweeps (layers, batch, new tokens, odd windows, fp8 ROW
 * layers among plain ones, clamp_bound, no cache update), against the chain of its single-op
 * kernels (attention_block_tkg + mlp, the residual adds between) bit for bit, tensor parallelism
 * on threads as ranks (the group's sum against one rank on the whole weights), every
 * shared/vectors/transformer_tkg case, refused problems naming their key, and JIT vs AOT (gcc)
 * bit-identity. */
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
#include "util/compare.h"
#include "util/jitp.h"
#include "util/ranks.h"
#include "util/tensors.h"
#include "util/vectors.h"
#include "util/weights.h"

enum { LMAX = 4, GMAX = 4, EMAX = 16 }; /* layers, ranks, (layer, KV head) pairs */

/* ---- one call's tensors ---------------------------------------------------------------------- */

/* The inputs of one call in fp32 (on the grids of their dtypes), per layer l < o.L. */
typedef struct call {
    tkg_ref_opts o;
    kg_dtype t, wt; /* the activations' dtype, the plain weights' (weight_dtype) */
    int tp;
    float *X, *cos, *sin;
    uint8_t *mask;
    uint32_t *pos;
    float *Wg[LMAX], *Wu[LMAX], *Wd[LMAX], *gq[LMAX], *gm[LMAX], *sg[LMAX], *su[LMAX], *sd[LMAX];
    /* W_qkv [H, nkv (N + 2) D]: the nkv N Q heads, the nkv K heads, the nkv V heads; W_out
     * [nkv N D, H] */
    float *Wqkv[LMAX], *Wout[LMAX];
    /* per (layer l, KV head g), element l * nkv + g */
    float *K[EMAX], *V[EMAX];
} call;

static long n_tok(const call *c) { return c->o.B * c->o.S; }
static long n_cache(const call *c) { return c->o.B * c->o.D * c->o.S_max; }
static int is_fp8(const call *c, int l) { return (c->o.fp8 >> l) & 1; }
static int n_kv(const call *c) { return c->o.nkv > 0 ? c->o.nkv : 1; }
static long n_qkv(const call *c) { return n_kv(c) * (c->o.N + 2) * c->o.D; }
static long n_att(const call *c) { return n_kv(c) * c->o.N * c->o.D; } /* W_out's rows */
static int n_el(const call *c) { return c->o.L * n_kv(c); } /* elements of the [lg] lists */

static void call_free(call *c)
{
    free(c->X), free(c->cos), free(c->sin), free(c->mask), free(c->pos);
    for (int l = 0; l < LMAX; l++) {
        free(c->Wg[l]), free(c->Wu[l]), free(c->Wd[l]);
        free(c->gq[l]), free(c->gm[l]), free(c->sg[l]), free(c->su[l]), free(c->sd[l]);
        free(c->Wqkv[l]), free(c->Wout[l]);
    }
    for (int e = 0; e < EMAX; e++)
        free(c->K[e]), free(c->V[e]);
}

static float *dup(const float *x, long n)
{
    float *y = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    memcpy(y, x, sizeof(float) * (size_t)n);
    return y;
}

static float *randn(kg_dtype t, long n, unsigned long long seed, float scale)
{
    float *x = kgt_randn(KG_F32, n, seed);
    for (long i = 0; i < n; i++)
        x[i] = kgt_round(t, x[i] * scale);
    return x;
}

/* e4m3 values of N(0, 1) * scale * 16 (the fp8 layers' weights; their scales undo the 16). */
static float *randn_e4m3(long n, unsigned long long seed, float scale)
{
    float *x = kgt_randn(KG_F32, n, seed);
    for (long i = 0; i < n; i++)
        x[i] = kg_e4m3_to_f32(kg_f32_to_e4m3(x[i] * scale * 16.0f));
    return x;
}

/* Per-column dequant scales around 1/16. */
static float *scales(long n, unsigned long long seed)
{
    float *s = kgt_randn(KG_F32, n, seed);
    for (long i = 0; i < n; i++)
        s[i] = (1.0f + 0.25f * tanhf(s[i])) / 16.0f;
    return s;
}

/* The plain weights' dtype of the next calls made (weight_dtype); unset: the dtype's. */
static int plain_weights_set;
static kg_dtype plain_weights;

/* Random inputs: weights N(0, 1/sqrt(fan_in)), gammas around 1, caches and X N(0, 1);
 * sequence b's cache length S_ctx - S - b (at least 0), its mask the prior slots below it and
 * the causal tail. */
static void make_call(call *c, const tkg_ref_opts *o, kg_dtype t, unsigned long long seed)
{
    memset(c, 0, sizeof *c);
    c->o = *o, c->t = t, c->tp = 1;
    c->wt = plain_weights_set ? plain_weights : t;
    kg_dtype w = c->wt;
    long T = n_tok(c), H = o->H, I = o->I, NA = n_att(c), B = o->B, S = o->S, W = o->S_ctx;
    long hc = o->D / 2 * T;
    c->X = randn(t, T * H, seed, 1.0f);
    c->cos = malloc(sizeof(float) * (size_t)hc), c->sin = malloc(sizeof(float) * (size_t)hc);
    for (long i = 0; i < hc; i++) {
        float a = 0.37f * (float)(i % 97) + 0.1f * (float)(i / 97);
        c->cos[i] = kgt_round(t, cosf(a)), c->sin[i] = kgt_round(t, sinf(a));
    }
    for (int l = 0; l < o->L; l++) {
        unsigned long long s = seed + 100 * (unsigned long long)(l + 1);
        if (is_fp8(c, l)) {
            c->Wg[l] = randn_e4m3(H * I, s + 2, 1.0f / sqrtf((float)H));
            c->Wu[l] = randn_e4m3(H * I, s + 3, 1.0f / sqrtf((float)H));
            c->Wd[l] = randn_e4m3(I * H, s + 4, 1.0f / sqrtf((float)I));
            c->sg[l] = scales(I, s + 5), c->su[l] = scales(I, s + 6), c->sd[l] = scales(H, s + 7);
        } else {
            c->Wg[l] = randn(w, H * I, s + 2, 1.0f / sqrtf((float)H));
            c->Wu[l] = randn(w, H * I, s + 3, 1.0f / sqrtf((float)H));
            c->Wd[l] = randn(w, I * H, s + 4, 1.0f / sqrtf((float)I));
        }
        c->Wqkv[l] = randn(w, H * n_qkv(c), s + 10, 1.0f / sqrtf((float)H));
        c->Wout[l] = randn(w, NA * H, s + 11, 1.0f / sqrtf((float)NA));
        c->gq[l] = randn(t, H, s + 8, 0.25f), c->gm[l] = randn(t, H, s + 9, 0.25f);
        for (long h = 0; h < H; h++) {
            c->gq[l][h] = kgt_round(t, c->gq[l][h] + 1.0f);
            c->gm[l][h] = kgt_round(t, c->gm[l][h] + 1.0f);
        }
    }
    for (int e = 0; e < n_el(c); e++) {
        unsigned long long s = seed + 1000 + 100 * (unsigned long long)e;
        c->K[e] = randn(t, n_cache(c), s + 10, 1.0f), c->V[e] = randn(t, n_cache(c), s + 11, 1.0f);
    }
    long NQ = n_kv(c) * o->N; /* every KV head's query heads */
    c->mask = malloc((size_t)(W * B * NQ * S));
    for (long j = 0; j < W; j++)
        for (long b = 0; b < B; b++)
            for (long n = 0; n < NQ; n++)
                for (long s = 0; s < S; s++) {
                    long len = W - S - b - n % 3 > 0 ? W - S - b - n % 3 : 0;
                    int on = j < len || (j >= W - S && j - (W - S) <= s);
                    c->mask[((j * B + b) * NQ + n) * S + s] = (uint8_t)on;
                }
    c->pos = malloc(sizeof(uint32_t) * (size_t)B);
    for (long b = 0; b < B; b++)
        c->pos[b] = (uint32_t)(W - S - b > 0 ? W - S - b : 0);
    if (B > 2)
        c->pos[2] = 0xFFFFFFFFu; /* a sequence that writes nothing */
}

static const char *tf(int b) { return b ? "true" : "false"; }

static void problem_of(const call *c, char *buf, size_t len)
{
    const tkg_ref_opts *o = &c->o;
    snprintf(buf, len, "transformer_tkg:dtype=%s,H=%ld,I=%ld,q_heads=%ld,d_head=%ld,S_tkg=%ld,"
             "S_max=%ld,num_layers=%d,eps=%.9g,fp8_layers=%u,clamp_bound=%.9g,tp=%d,"
             "update_cache=%s,kv_heads=%d", kg_dtype_name(c->t), o->H, o->I, o->N, o->D, o->S,
             o->S_max, o->L, (double)o->eps, o->fp8, (double)o->clamp, c->tp, tf(o->update),
             n_kv(c));
    size_t n = strlen(buf);
    if (c->wt != c->t && n < len)
        snprintf(buf + n, len - n, ",weight_dtype=%s", kg_dtype_name(c->wt));
}

static int wt_fmt(kg_dtype t)
{
    return t == KG_F32 ? KG_WT_F32 : t == KG_F16 ? KG_WT_F16 : KG_WT_BF16;
}

/* A call's weights packed for the kernels, per layer. */
typedef struct packed {
    kg_wt qkv[LMAX], out[LMAX], g[LMAX], u[LMAX], d[LMAX];
    void *gq[LMAX], *gm[LMAX];
} packed;

static void pack_call(packed *p, const call *c)
{
    const tkg_ref_opts *o = &c->o;
    int f = wt_fmt(c->wt);
    for (int l = 0; l < o->L; l++) {
        int fm = is_fp8(c, l) ? KG_WT_E4M3 : f;
        kgt_wt_from_values(&p->g[l], fm, KG_WL_KN, o->H, o->I, c->Wg[l]);
        kgt_wt_from_values(&p->u[l], fm, KG_WL_KN, o->H, o->I, c->Wu[l]);
        kgt_wt_from_values(&p->d[l], fm, KG_WL_KN, o->I, o->H, c->Wd[l]);
        p->gq[l] = kgt_encode(c->t, c->gq[l], o->H), p->gm[l] = kgt_encode(c->t, c->gm[l], o->H);
        kgt_wt_from_values(&p->qkv[l], f, KG_WL_KN, o->H, n_qkv(c), c->Wqkv[l]);
        kgt_wt_from_values(&p->out[l], f, KG_WL_KN, n_att(c), o->H, c->Wout[l]);
    }
}

static void pack_free(packed *p, const call *c)
{
    for (int l = 0; l < c->o.L; l++) {
        kg_wt_free(&p->g[l]), kg_wt_free(&p->u[l]), kg_wt_free(&p->d[l]);
        kg_wt_free(&p->qkv[l]), kg_wt_free(&p->out[l]);
        free(p->gq[l]), free(p->gm[l]);
    }
}

/* Runs the megakernel k on c: out, the caches kc[l], vc[l] (encoded, updated in place). */
static int run_kernel(const kg_kernel *k, const call *c, void *out, void **kc, void **vc)
{
    const tkg_ref_opts *o = &c->o;
    long hc = o->D / 2 * n_tok(c);
    packed p;
    pack_call(&p, c);
    const kg_wt *wq[LMAX], *wo[LMAX], *wg[LMAX], *wu[LMAX], *wd[LMAX];
    const void *gq[LMAX], *gm[LMAX], *sg[LMAX], *su[LMAX], *sd[LMAX];
    for (int l = 0; l < o->L; l++) {
        wq[l] = &p.qkv[l], wo[l] = &p.out[l];
        wg[l] = &p.g[l], wu[l] = &p.u[l], wd[l] = &p.d[l];
        gq[l] = p.gq[l], gm[l] = p.gm[l];
        sg[l] = c->sg[l], su[l] = c->su[l], sd[l] = c->sd[l]; /* NULL on plain layers */
    }
    void *X = kgt_encode(c->t, c->X, n_tok(c) * o->H);
    void *cs = kgt_encode(c->t, c->cos, hc), *sn = kgt_encode(c->t, c->sin, hc);
    int rc = ((kg_transformer_tkg_fn *)k->fn)(out, kc, vc, X, wq, wo, wg, wu, wd, gq, gm, cs, sn,
                                              c->mask, o->update ? c->pos : NULL, sg, su, sd,
                                              o->B, o->S_ctx);
    free(X), free(cs), free(sn);
    pack_free(&p, c);
    return rc;
}

/* The reference on c: out [T, H]; kw[l], vw[l] the updated caches (malloc'd). */
static float *run_ref(const call *c, float **kw, float **vw)
{
    const tkg_ref_opts *o = &c->o;
    for (int e = 0; e < n_el(c); e++)
        kw[e] = dup(c->K[e], n_cache(c)), vw[e] = dup(c->V[e], n_cache(c));
    tkg_ref_in in = { .X = c->X, .cos = c->cos, .sin = c->sin, .mask = c->mask, .pos = c->pos,
                      .W_qkv = (const float *const *)c->Wqkv,
                      .W_out = (const float *const *)c->Wout,
                      .W_gate = (const float *const *)c->Wg, .W_up = (const float *const *)c->Wu,
                      .W_down = (const float *const *)c->Wd, .g_qkv = (const float *const *)c->gq,
                      .g_mlp = (const float *const *)c->gm, .s_gate = (const float *const *)c->sg,
                      .s_up = (const float *const *)c->su, .s_down = (const float *const *)c->sd };
    float *want = malloc(sizeof(float) * (size_t)(n_tok(c) * o->H));
    transformer_tkg_ref(want, kw, vw, &in, o);
    return want;
}

/* The transformer_tkg.md tolerance (maxAllClose max mode on the output): rtol 2.5e-2, atol
 * 1e-2; the caches hold the new K, V of hidden states that differ by as much. */
#define RTOL 2.5e-2
#define ATOL 1e-2

static void check(const tkg_ref_opts *o, kg_dtype t)
{
    call c;
    make_call(&c, o, t, 7 + (unsigned long long)(o->S_ctx * 31 + o->B * 7 + o->S + o->L * 3));
    char problem[1024];
    problem_of(&c, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    long nx = n_tok(&c) * o->H, nc = n_cache(&c);
    void *out = kgt_poisoned(t, nx), *kc[EMAX], *vc[EMAX];
    for (int e = 0; e < n_el(&c); e++)
        kc[e] = kgt_encode(t, c.K[e], nc), vc[e] = kgt_encode(t, c.V[e], nc);
    cr_assert_eq(run_kernel(k, &c, out, kc, vc), KG_OK, "%s refused the call", k->name);
    float *kw[EMAX], *vw[EMAX], *want = run_ref(&c, kw, vw);
    char msg[1024];
    long xs[2] = { n_tok(&c), o->H }, cshape[1] = { nc };
    cr_assert(kgt_close_to_ref(t, out, want, 2, xs, RTOL, ATOL, msg, sizeof msg), "%s: out %s",
              k->name, msg);
    for (int e = 0; e < n_el(&c); e++) {
        cr_assert(kgt_close_to_ref(t, kc[e], kw[e], 1, cshape, RTOL, ATOL, msg, sizeof msg),
                  "%s: K_caches[%d] %s", k->name, e, msg);
        cr_assert(kgt_close_to_ref(t, vc[e], vw[e], 1, cshape, RTOL, ATOL, msg, sizeof msg),
                  "%s: V_caches[%d] %s", k->name, e, msg);
        free(kc[e]), free(vc[e]), free(kw[e]), free(vw[e]);
    }
    free(out), free(want);
    call_free(&c);
}

TestSuite(transformer_tkg, .init = kgt_suite_init, .fini = kgt_suite_fini);

static tkg_ref_opts base(void)
{
    tkg_ref_opts o;
    memset(&o, 0, sizeof o);
    o.B = 2, o.S = 1, o.H = 128, o.I = 96, o.N = 2, o.D = 32, o.S_ctx = 21, o.S_max = 40;
    o.L = 2, o.update = 1, o.eps = 1e-6f;
    return o;
}

Test(transformer_tkg, every_dtype)
{
    static const kg_dtype T[] = { KG_BF16, KG_F16, KG_F32 };
    for (size_t i = 0; i < 3; i++) {
        tkg_ref_opts o = base();
        check(&o, T[i]);
    }
}

/* weight_dtype: f32 activations with bf16 (or fp16) weights, as the model runner decodes;
 * the GEMM rounds its activation operand to the weights' format. */
Test(transformer_tkg, weight_dtype)
{
    static const kg_dtype W[] = { KG_BF16, KG_F16 };
    for (size_t i = 0; i < 2; i++) {
        plain_weights_set = 1, plain_weights = W[i];
        tkg_ref_opts o = base();
        check(&o, KG_F32);
        o.fp8 = 2; /* layer 1's MLP fp8, its attention bf16 */
        check(&o, KG_F32);
        o.fp8 = 0, o.nkv = 2;
        check(&o, KG_F32);
    }
    plain_weights_set = 0;
}

Test(transformer_tkg, sweeps, .timeout = 300 * KGT_TIME_SCALE)
{
    for (int L = 1; L <= 3; L++)
        for (long B = 1; B <= 4; B++)
            for (long S = 1; S <= 3; S++) {
                tkg_ref_opts o = base();
                o.L = L, o.B = B, o.S = S, o.S_ctx = 9 + 4 * B + S; /* odd and even windows */
                o.fp8 = (unsigned)((B * 3 + S) % (1 << L)); /* plain and ROW layers mixed */
                o.update = (B + S + L) % 4 != 0;
                check(&o, KG_BF16);
            }
}

Test(transformer_tkg, fp8_layers_and_clamp)
{
    tkg_ref_opts o = base();
    o.L = 3, o.fp8 = 5; /* layers 0 and 2 ROW fp8, layer 1 plain */
    check(&o, KG_BF16);
    o.clamp = 0.75f, o.B = 3, o.S = 2, o.S_ctx = 17;
    check(&o, KG_BF16);
    o.update = 0, o.fp8 = 7, o.clamp = 1.5f;
    check(&o, KG_F32);
}

Test(transformer_tkg, shapes)
{
    tkg_ref_opts o = base();
    o.H = 256, o.I = 200, o.N = 3, o.D = 34, o.S_ctx = 40, o.S_max = 40, o.S = 3;
    check(&o, KG_BF16);
    o.S_ctx = 3, o.B = 1, o.L = 1; /* a window of only the new tokens */
    check(&o, KG_BF16);
    o = base();
    o.S_ctx = 1100, o.S_max = 1200, o.B = 1; /* three chunks of the attention core */
    check(&o, KG_BF16);
}

/* ---- the chain of single-op kernels ------------------------------------------------------ */
/* Per layer: per KV head g, attention_block_tkg without its output projection (X = h, W_qkv
 * the columns of g's Q heads, K and V, its caches, its heads' mask rows) -> its attention rows
 * [B, N, D, S] in dtype; output_projection (CTE, attention [B, S, nkv N, D]) of them all -> a;
 * mlp TKG (hidden = a, add = h, add_out = h1, fused RMSNorm) -> y; h = dtype(h1 + y). The
 * megakernel runs the same code on the same values: bit for bit. */
static void run_chain(const call *c, void *out, void **kc, void **vc)
{
    const tkg_ref_opts *o = &c->o;
    kg_dtype t = c->t;
    int G = n_kv(c);
    long T = n_tok(c), H = o->H, N = o->N, D = o->D, S = o->S, B = o->B;
    long hc = D / 2 * T, nk = T * D, NA = n_att(c), q = (N + 2) * D, Q = n_qkv(c);
    char pa[1024], po[1024], pm[1024], pm8[1100];
    const char *dt = kg_dtype_name(t), *wt = kg_dtype_name(c->wt);
    snprintf(pa, sizeof pa, "attention_block_tkg:dtype=%s,weight_dtype=%s,H=%ld,q_heads=%ld,"
             "d_head=%ld,S_tkg=%ld,S_max=%ld,rmsnorm_X_enabled=true,rmsnorm_X_eps=%.9g,"
             "K_cache_transposed=true,update_cache=%s,W_out=false", dt, wt, H, N, D, S, o->S_max,
             (double)o->eps, tf(o->update));
    snprintf(po, sizeof po, "output_projection:variant=CTE,dtype=%s,weight_dtype=%s,N=%ld,D=%ld,"
             "H=%ld,attn_layout=BSND", dt, wt, G * N, D, H);
    snprintf(pm, sizeof pm, "mlp:variant=TKG,dtype=%s,weight_dtype=%s,H=%ld,I=%ld,"
             "normalization_type=RMS_NORM,eps=%.9g,fused_residual_add=true,"
             "store_fused_add_result=true", dt, wt, H, o->I, (double)o->eps);
    snprintf(pm8, sizeof pm8, "mlp:variant=TKG,dtype=%s,H=%ld,I=%ld,normalization_type=RMS_NORM,"
             "eps=%.9g,fused_residual_add=true,store_fused_add_result=true,"
             "quantization_type=ROW,weight_dtype=e4m3", dt, H, o->I, (double)o->eps);
    const kg_kernel *ka = kgt_jit(pa), *ko = kgt_jit(po), *km = kgt_jit(pm);
    const kg_kernel *km8 = o->fp8 ? kgt_jit(pm8) : NULL;
    packed p;
    pack_call(&p, c);
    /* KV head g's columns of each layer's W_qkv: its N Q heads, its K, its V */
    cr_assert(G <= GMAX, "at most %d KV heads in a chain test", GMAX);
    kg_wt hq[LMAX][GMAX];
    float *wcol = malloc(sizeof(float) * (size_t)(H * q));
    for (int l = 0; l < o->L; l++)
        for (int g = 0; g < G; g++) {
            for (long k = 0; k < H; k++) {
                const float *src = c->Wqkv[l] + k * Q;
                float *dst = wcol + k * q;
                memcpy(dst, src + g * N * D, sizeof(float) * (size_t)(N * D));
                memcpy(dst + N * D, src + NA + g * D, sizeof(float) * (size_t)D);
                memcpy(dst + (N + 1) * D, src + NA + (G + g) * D, sizeof(float) * (size_t)D);
            }
            kgt_wt_from_values(&hq[l][g], wt_fmt(c->wt), KG_WL_KN, H, q, wcol);
        }
    free(wcol);
    size_t w = kgt_dtype_size(t);
    void *h = kgt_encode(t, c->X, T * H), *a = kgt_poisoned(t, T * H), *y = kgt_poisoned(t, T * H);
    void *h1 = kgt_poisoned(t, T * H), *xo = kgt_poisoned(t, T * N * D);
    char *att = kgt_poisoned(t, T * NA);
    void *cs = kgt_encode(t, c->cos, hc), *sn = kgt_encode(t, c->sin, hc);
    void *kt = kgt_poisoned(t, nk), *vt = kgt_poisoned(t, nk);
    /* KV head g's mask: query heads g * N .. of [S_ctx, B, nkv * N, S] */
    long NS = N * S, nm = o->S_ctx * B * NS;
    uint8_t *mk = malloc((size_t)(G * nm));
    for (int g = 0; g < G; g++)
        for (long jb = 0; jb < o->S_ctx * B; jb++)
            memcpy(mk + g * nm + jb * NS, c->mask + (jb * G + g) * NS, (size_t)NS);
    for (int l = 0; l < o->L; l++) {
        for (int g = 0; g < G; g++) {
            int e = l * G + g;
            cr_assert_eq(((kg_attention_block_tkg_fn *)ka->fn)(
                             xo, kt, vt, kc[e], vc[e], h, p.gq[l], &hq[l][g], NULL, NULL, NULL,
                             NULL, cs, sn, NULL, mk + g * nm, NULL, NULL, NULL,
                             o->update ? c->pos : NULL, NULL, NULL, NULL, NULL, B, o->S_ctx, B),
                         KG_OK, "%s layer %d", ka->name, l);
            /* [B, N, D, S] into head rows g * N.. of [B, S, nkv * N, D] */
            for (long b = 0; b < B; b++)
                for (long n = 0; n < N; n++)
                    for (long d = 0; d < D; d++)
                        for (long s = 0; s < S; s++)
                            memcpy(att + (((b * S + s) * G * N + g * N + n) * D + d) * w,
                                   (char *)xo + (((b * N + n) * D + d) * S + s) * w, w);
        }
        cr_assert_eq(((kg_output_projection_fn *)ko->fn)(a, att, &p.out[l], NULL, NULL, NULL, B,
                                                         S), KG_OK, "%s layer %d", ko->name, l);
        const kg_kernel *m = is_fp8(c, l) ? km8 : km;
        cr_assert_eq(((kg_mlp_fn *)m->fn)(y, h1, a, h, &p.g[l], &p.u[l], &p.d[l], c->sg[l],
                                          c->su[l], c->sd[l], NULL, NULL, p.gm[l], NULL, NULL,
                                          NULL, NULL, T), KG_OK, "%s layer %d", m->name, l);
        float *f1 = kgt_decode(t, h1, T * H), *fy = kgt_decode(t, y, T * H);
        for (long i = 0; i < T * H; i++)
            f1[i] = kgt_round(t, f1[i] + fy[i]);
        free(h);
        h = kgt_encode(t, f1, T * H);
        free(f1), free(fy);
    }
    memcpy(out, h, (size_t)(T * H) * w);
    free(h), free(a), free(y), free(h1), free(xo), free(att), free(cs), free(sn), free(kt);
    free(vt), free(mk);
    for (int l = 0; l < o->L; l++)
        for (int g = 0; g < G; g++)
            kg_wt_free(&hq[l][g]);
    pack_free(&p, c);
}

static void check_chain(const tkg_ref_opts *o, kg_dtype t)
{
    call c;
    make_call(&c, o, t, 41 + (unsigned long long)(o->B * 5 + o->S));
    char problem[1024];
    problem_of(&c, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    long nx = n_tok(&c) * o->H, nc = n_cache(&c);
    void *out = kgt_poisoned(t, nx), *cout = kgt_poisoned(t, nx);
    void *kc[EMAX], *vc[EMAX], *kc2[EMAX], *vc2[EMAX];
    for (int e = 0; e < n_el(&c); e++) {
        kc[e] = kgt_encode(t, c.K[e], nc), vc[e] = kgt_encode(t, c.V[e], nc);
        kc2[e] = kgt_encode(t, c.K[e], nc), vc2[e] = kgt_encode(t, c.V[e], nc);
    }
    cr_assert_eq(run_kernel(k, &c, out, kc, vc), KG_OK, "%s refused the call", k->name);
    run_chain(&c, cout, kc2, vc2);
    size_t w = kgt_dtype_size(t);
    cr_assert_eq(memcmp(out, cout, (size_t)nx * w), 0, "%s: out differs from the chain's",
                 k->name);
    for (int e = 0; e < n_el(&c); e++) {
        cr_assert_eq(memcmp(kc[e], kc2[e], (size_t)nc * w), 0, "%s: K_caches[%d]", k->name, e);
        cr_assert_eq(memcmp(vc[e], vc2[e], (size_t)nc * w), 0, "%s: V_caches[%d]", k->name, e);
        free(kc[e]), free(vc[e]), free(kc2[e]), free(vc2[e]);
    }
    free(out), free(cout);
    call_free(&c);
}

Test(transformer_tkg, chain_of_single_ops_bit_for_bit, .timeout = 120 * KGT_TIME_SCALE)
{
    tkg_ref_opts o = base();
    check_chain(&o, KG_BF16);
    o.L = 3, o.fp8 = 2, o.B = 3, o.S = 2, o.S_ctx = 23;
    check_chain(&o, KG_BF16);
    o.update = 0, o.fp8 = 5;
    check_chain(&o, KG_F32);
    o = base();
    o.L = 1, o.B = 4, o.S = 3;
    check_chain(&o, KG_F16);
    o = base();
    o.nkv = 3, o.fp8 = 1; /* three KV heads: three attention blocks a layer, one projection */
    check_chain(&o, KG_BF16);
    o.B = 3, o.S = 2, o.S_ctx = 23;
    check_chain(&o, KG_F16);
    plain_weights_set = 1, plain_weights = KG_BF16; /* the runner's: f32 with bf16 weights */
    check_chain(&o, KG_F32);
    plain_weights_set = 0;
}

Test(transformer_tkg, kv_heads)
{
    tkg_ref_opts o = base();
    o.nkv = 2;
    check(&o, KG_BF16);
    o.nkv = 4, o.L = 3, o.B = 3, o.S = 2, o.fp8 = 2, o.update = 0;
    check(&o, KG_F32);
}

/* ---- tensor parallelism: threads as ranks -------------------------------------------------- */
/* The whole problem (G * N query heads on the one KV head, MLP width G * I) on one rank
 * against a group of G ranks, rank r holding query heads r*N .. r*N + N-1 (their W_qkv columns
 * and the K, V columns; W_out's rows), MLP columns r*I .. (W_gate, W_up, their scales; W_down's
 * rows) and the same caches. Every rank leaves with the same bits, within tolerance of the
 * single rank's (the group adds rounded partials). */
typedef struct tp_run {
    const kg_kernel *k;
    call rc[GMAX];
    void *out[GMAX], *kc[GMAX][LMAX], *vc[GMAX][LMAX];
    int status[GMAX];
} tp_run;

static void tp_rank(kg_coll *comm, int r, void *arg)
{
    tp_run *a = arg;
    (void)comm; /* the kernel finds it bound to this thread (kgp_coll) */
    a->status[r] = run_kernel(a->k, &a->rc[r], a->out[r], a->kc[r], a->vc[r]);
}

/* Rank r's shard of the whole call c (G ranks): deep copies. */
static call shard(const call *c, int G, int r)
{
    const tkg_ref_opts *o = &c->o;
    call s;
    memset(&s, 0, sizeof s);
    s.o = *o, s.t = c->t, s.tp = G;
    s.o.N = o->N / G, s.o.I = o->I / G;
    long H = o->H, D = o->D, N = s.o.N, I = s.o.I, Q = (o->N + 2) * D, q = (N + 2) * D;
    long T = n_tok(c), hc = D / 2 * T;
    s.X = dup(c->X, T * H), s.cos = dup(c->cos, hc), s.sin = dup(c->sin, hc);
    s.pos = malloc(sizeof(uint32_t) * (size_t)o->B);
    memcpy(s.pos, c->pos, sizeof(uint32_t) * (size_t)o->B);
    s.mask = malloc((size_t)(o->S_ctx * o->B * N * o->S));
    for (long j = 0; j < o->S_ctx * o->B; j++)
        memcpy(s.mask + j * N * o->S, c->mask + (j * o->N + r * N) * o->S, (size_t)(N * o->S));
    for (int l = 0; l < o->L; l++) {
        s.Wqkv[l] = malloc(sizeof(float) * (size_t)(H * q));
        for (long k = 0; k < H; k++) {
            memcpy(s.Wqkv[l] + k * q, c->Wqkv[l] + k * Q + r * N * D,
                   sizeof(float) * (size_t)(N * D));
            memcpy(s.Wqkv[l] + k * q + N * D, c->Wqkv[l] + k * Q + o->N * D,
                   sizeof(float) * (size_t)(2 * D));
        }
        s.Wout[l] = dup(c->Wout[l] + r * N * D * H, N * D * H);
        s.Wg[l] = malloc(sizeof(float) * (size_t)(H * I));
        s.Wu[l] = malloc(sizeof(float) * (size_t)(H * I));
        for (long k = 0; k < H; k++) {
            memcpy(s.Wg[l] + k * I, c->Wg[l] + k * o->I + r * I, sizeof(float) * (size_t)I);
            memcpy(s.Wu[l] + k * I, c->Wu[l] + k * o->I + r * I, sizeof(float) * (size_t)I);
        }
        s.Wd[l] = dup(c->Wd[l] + r * I * H, I * H);
        s.gq[l] = dup(c->gq[l], H), s.gm[l] = dup(c->gm[l], H);
        if (c->sg[l]) {
            s.sg[l] = dup(c->sg[l] + r * I, I), s.su[l] = dup(c->su[l] + r * I, I);
            s.sd[l] = dup(c->sd[l], H);
        }
        s.K[l] = dup(c->K[l], n_cache(c)), s.V[l] = dup(c->V[l], n_cache(c));
    }
    return s;
}

static void check_tp(const tkg_ref_opts *o, kg_dtype t, int G)
{
    call c;
    make_call(&c, o, t, 300 + (unsigned long long)G);
    long nx = n_tok(&c) * o->H, nc = n_cache(&c);
    size_t w = kgt_dtype_size(t);
    char problem[1024];
    problem_of(&c, problem, sizeof problem);
    const kg_kernel *k1 = kgt_jit(problem);
    void *out = kgt_poisoned(t, nx), *kc[LMAX], *vc[LMAX];
    for (int l = 0; l < o->L; l++)
        kc[l] = kgt_encode(t, c.K[l], nc), vc[l] = kgt_encode(t, c.V[l], nc);
    cr_assert_eq(run_kernel(k1, &c, out, kc, vc), KG_OK, "%s", k1->name);
    tp_run a;
    memset(&a, 0, sizeof a);
    for (int r = 0; r < G; r++) {
        a.rc[r] = shard(&c, G, r);
        a.out[r] = kgt_poisoned(t, nx);
        for (int l = 0; l < o->L; l++)
            a.kc[r][l] = kgt_encode(t, c.K[l], nc), a.vc[r][l] = kgt_encode(t, c.V[l], nc);
    }
    problem_of(&a.rc[0], problem, sizeof problem);
    a.k = kgt_jit(problem);
    cr_assert_eq(kgt_run_ranks(G, tp_rank, &a), 0, "the ranks' threads");
    float *want = kgt_decode(t, out, nx);
    char msg[1024];
    long xs[2] = { n_tok(&c), o->H }, cshape[1] = { nc };
    for (int r = 0; r < G; r++) {
        cr_assert_eq(a.status[r], KG_OK, "%s rank %d refused", a.k->name, r);
        cr_assert_eq(memcmp(a.out[r], a.out[0], (size_t)nx * w), 0, "%s: rank %d's out is not "
                     "rank 0's", a.k->name, r);
        cr_assert(kgt_close_to_ref(t, a.out[r], want, 2, xs, RTOL, ATOL, msg, sizeof msg),
                  "%s rank %d against one rank: %s", a.k->name, r, msg);
        for (int l = 0; l < o->L; l++) {
            float *kw = kgt_decode(t, kc[l], nc), *vw = kgt_decode(t, vc[l], nc);
            cr_assert(kgt_close_to_ref(t, a.kc[r][l], kw, 1, cshape, RTOL, ATOL, msg,
                                       sizeof msg), "%s rank %d K_caches[%d]: %s", a.k->name,
                      r, l, msg);
            cr_assert(kgt_close_to_ref(t, a.vc[r][l], vw, 1, cshape, RTOL, ATOL, msg,
                                       sizeof msg), "%s rank %d V_caches[%d]: %s", a.k->name,
                      r, l, msg);
            free(kw), free(vw), free(a.kc[r][l]), free(a.vc[r][l]);
        }
        call_free(&a.rc[r]);
    }
    for (int r = 0; r < G; r++)
        free(a.out[r]);
    for (int l = 0; l < o->L; l++)
        free(kc[l]), free(vc[l]);
    free(want), free(out);
    call_free(&c);
}

Test(transformer_tkg, tp_threads_as_ranks, .timeout = 300 * KGT_TIME_SCALE)
{
    for (int G = 2; G <= 4; G += 2) {
        tkg_ref_opts o = base();
        o.N = 2 * G, o.I = 96 * G, o.L = 2, o.B = 2, o.S = 2, o.S_ctx = 19;
        check_tp(&o, KG_BF16, G);
        o.L = 3, o.fp8 = 2, o.B = 3, o.S = 1, o.update = 0;
        check_tp(&o, KG_F32, G);
    }
}

Test(transformer_tkg, tp_refusals)
{
    tkg_ref_opts o = base();
    call c;
    make_call(&c, &o, KG_BF16, 77);
    c.tp = 2;
    char problem[1024];
    problem_of(&c, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    void *out = kgt_poisoned(KG_BF16, n_tok(&c) * o.H), *kc[LMAX], *vc[LMAX];
    for (int l = 0; l < o.L; l++)
        kc[l] = kgt_encode(KG_BF16, c.K[l], n_cache(&c)),
        vc[l] = kgt_encode(KG_BF16, c.V[l], n_cache(&c));
    cr_assert_eq(run_kernel(k, &c, out, kc, vc), KG_EARG, "a tp = 2 kernel on a single rank");
    for (int l = 0; l < o.L; l++)
        free(kc[l]), free(vc[l]);
    free(out);
    call_free(&c);
}

/* ---- per-call checks and refused problems --------------------------------------------------- */

Test(transformer_tkg, per_call_checks)
{
    tkg_ref_opts o = base();
    call c;
    make_call(&c, &o, KG_BF16, 5);
    char problem[1024];
    problem_of(&c, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    long nx = n_tok(&c) * o.H, nc = n_cache(&c);
    void *out = kgt_poisoned(KG_BF16, nx), *kc[LMAX], *vc[LMAX];
    for (int l = 0; l < o.L; l++)
        kc[l] = kgt_encode(KG_BF16, c.K[l], nc), vc[l] = kgt_encode(KG_BF16, c.V[l], nc);
    void *keep = kgt_encode(KG_BF16, c.K[0], nc);
    c.o.S_ctx = o.S_max + 1;
    cr_assert_eq(run_kernel(k, &c, out, kc, vc), KG_EARG, "S_ctx > S_max");
    c.o.S_ctx = 0;
    cr_assert_eq(run_kernel(k, &c, out, kc, vc), KG_EARG, "S_ctx < S_tkg");
    c.o.S_ctx = o.S_ctx, c.pos[1] = (uint32_t)o.S_max;
    cr_assert_eq(run_kernel(k, &c, out, kc, vc), KG_EARG, "a write past the cache row");
    cr_assert_eq(memcmp(keep, kc[0], (size_t)nc * 2), 0, "a refused call wrote the cache");
    void *kc1 = kc[1];
    kc[1] = NULL, c.pos[1] = 0;
    cr_assert_eq(run_kernel(k, &c, out, kc, vc), KG_EARG, "a NULL layer cache");
    kc[1] = kc1;
    c.o.B = 0;
    cr_assert_eq(run_kernel(k, &c, out, kc, vc), KG_OK, "B = 0 does nothing");
    for (int l = 0; l < o.L; l++)
        free(kc[l]), free(vc[l]);
    free(out), free(keep);
    call_free(&c);
}

Test(transformer_tkg, bad_problems_name_the_key)
{
    static const char *const BAD[][2] = {
        { "transformer_tkg:H=200", "key 'H'" },
        { "transformer_tkg:d_head=63", "key 'd_head'" },
        { "transformer_tkg:S_tkg=9", "key 'S_tkg'" },
        { "transformer_tkg:num_layers=2,fp8_layers=4", "key 'fp8_layers'" },
        { "transformer_tkg:clamp_bound=0.5", "key 'clamp_bound'" },
        { "transformer_tkg:S_max=64,S_ctx=65", "key 'S_ctx'" },
        { "transformer_tkg:tp=0", "key 'tp'" },
        { "transformer_tkg:num_layers=33", "key 'num_layers'" },
        { "transformer_tkg:num_layers=16,kv_heads=4", "key 'kv_heads'" },
        { "transformer_tkg:I=0", "key 'I'" },
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++)
        kgt_problem_rejected(BAD[i][0], BAD[i][1]);
}

Test(transformer_tkg, names_parse_back)
{
    char name[512];
    kgt_name_parses_back("transformer_tkg:num_layers=3,fp8_layers=5,clamp_bound=0.5,tp=4,"
                         "update_cache=false,dtype=f32,H=256,I=96", name, sizeof name);
    cr_assert(strstr(name, "fp8l5") && strstr(name, "tp4") && strstr(name, "noupd"), "%s", name);
}

/* ---- shared/vectors/transformer_tkg ------------------------------------------------------ */

static long opt_long(kgt_case *c, const char *key)
{
    double v;
    cr_assert(kgt_case_opt_num(c, key, &v), "%s: option %s", kgt_case_name(c), key);
    return (long)v;
}

/* An input's values as fp32 (or u8/u32), malloc'd. */
static void *input_as(kgt_case *c, const char *name, kg_dtype t)
{
    void *p = kgt_case_as(c, name, t);
    cr_assert(p, "%s: %s", kgt_case_name(c), kgt_case_error(c));
    return p;
}

/* List `name`'s L elements as fp32 into dst (each must be listed). */
static void list_as(kgt_case *vc, const char *name, int L, float **dst)
{
    cr_assert_eq(kgt_case_list_len(vc, name), L, "%s: list %s has %d elements, num_layers %d",
                 kgt_case_name(vc), name, kgt_case_list_len(vc, name), L);
    for (int l = 0; l < L; l++) {
        cr_assert(kgt_case_list_input(vc, name, l), "%s: %s", kgt_case_name(vc),
                  kgt_case_error(vc));
        dst[l] = input_as(vc, kgt_case_list_name(vc, name, l), KG_F32);
    }
}

/* Rows [0, n_keep) of each of `rows` rows of length `len` in p, packed: a cache's first S_ctx
 * slots as the case stores them. */
static void *first_slots(const void *p, size_t w, long rows, long len, long keep, long inner)
{
    char *y = malloc((size_t)(rows * keep * inner) * w);
    for (long r = 0; r < rows; r++)
        memcpy(y + (size_t)(r * keep * inner) * w, (const char *)p + (size_t)(r * len * inner) * w,
               (size_t)(keep * inner) * w);
    return y;
}

static void expect(kgt_case *vc, const char *name, kg_dtype t, const void *got, const char *k)
{
    char msg[1024];
    int ok = kgt_close_to_case(vc, name, t, got, msg, sizeof msg);
    cr_assert(ok >= 0, "%s: no tolerance for %s", kgt_case_name(vc), name);
    cr_assert(ok, "vector %s (%s): %s %s", kgt_case_name(vc), k, name, msg);
}

static void run_vector(kgt_case *vc)
{
    const char *name = kgt_case_name(vc);
    call c;
    memset(&c, 0, sizeof c);
    tkg_ref_opts *o = &c.o;
    o->B = opt_long(vc, "B"), o->H = opt_long(vc, "H"), o->I = opt_long(vc, "I");
    o->S = opt_long(vc, "S_tkg"), o->S_ctx = opt_long(vc, "S_ctx");
    o->S_max = opt_long(vc, "S_max"), o->D = opt_long(vc, "d_head");
    o->N = opt_long(vc, "q_heads_per_rank"), o->L = (int)opt_long(vc, "num_layers");
    cr_assert(o->L >= 1 && o->L <= LMAX, "%s: num_layers %d is not mapped", name, o->L);
    double eps, cb;
    cr_assert(kgt_case_opt_num(vc, "eps", &eps) && kgt_case_opt_num(vc, "clamp_bound", &cb),
              "%s: eps, clamp_bound", name);
    o->eps = (float)eps, o->clamp = (float)cb;
    int upd;
    cr_assert(kgt_case_opt_bool(vc, "cache_update", &upd), "%s: cache_update", name);
    o->update = upd;
    const char *s;
    cr_assert(kgt_case_opt_str(vc, "fp8_layers", &s) && !strcmp(s, "none"),
              "%s: fp8_layers = %s is not mapped (ROW layers with bf16 weights)", name, s);
    cr_assert(o->clamp == 0, "%s: clamp_bound without fp8 layers", name);
    cr_assert(kgt_case_opt_str(vc, "replica_groups", &s) && !strncmp(s, "single rank", 11),
              "%s: replica_groups = %s is not mapped", name, s);
    cr_assert(kgt_case_opt_str(vc, "W_down_layout", &s) && !strncmp(s, "logical", 7),
              "%s: W_down_layout = %s is not mapped", name, s);
    const char *xdt = kgt_case_input_dtype(vc, "X");
    cr_assert(xdt, "%s: no X", name);
    c.t = (kg_dtype)kg_dtype_from_name(xdt), c.tp = 1;
    cr_assert(c.t == KG_BF16 || c.t == KG_F16 || c.t == KG_F32, "%s: X dtype %s", name, xdt);
    c.X = input_as(vc, "X", KG_F32);
    c.cos = input_as(vc, "RoPE_cos", KG_F32), c.sin = input_as(vc, "RoPE_sin", KG_F32);
    c.mask = input_as(vc, "mask_cache", KG_U8);
    cr_assert_eq(kg_npy_count(kgt_case_input(vc, "mask_cache")), o->S_ctx * o->B * o->N * o->S,
                 "%s: mask_cache shape", name);
    /* mask_active: the reference's input only, the unified mask carries it (transformer_tkg.md) */
    uint8_t *ma = input_as(vc, "mask_active", KG_U8);
    free(ma);
    if (o->update) {
        uint32_t *p = input_as(vc, "position_ids", KG_U32);
        cr_assert_eq(kg_npy_count(kgt_case_input(vc, "position_ids")), o->B,
                     "%s: position_ids [B, 1]", name);
        c.pos = p;
    } else {
        c.pos = calloc((size_t)o->B, sizeof(uint32_t));
    }
    list_as(vc, "W_qkvs", o->L, c.Wqkv), list_as(vc, "W_outs", o->L, c.Wout);
    list_as(vc, "W_gates", o->L, c.Wg), list_as(vc, "W_ups", o->L, c.Wu);
    list_as(vc, "W_downs", o->L, c.Wd), list_as(vc, "W_gamma_qkvs", o->L, c.gq);
    list_as(vc, "W_gamma_mlps", o->L, c.gm);
    list_as(vc, "K_caches", o->L, c.K), list_as(vc, "V_caches", o->L, c.V);
    cr_assert_eq(kgt_case_list_len(vc, "W_gate_scales"), 0, "%s: fp8 scales", name);
    const kg_npy *k0 = kgt_case_list_input(vc, "K_caches", 0);
    cr_assert(k0->rank == 4 && k0->shape[0] == o->B && k0->shape[1] == 1 &&
              k0->shape[2] == o->D && k0->shape[3] == o->S_max, "%s: K_caches [B, 1, D, S_max]",
              name);
    char problem[1024];
    problem_of(&c, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    long nx = n_tok(&c) * o->H, nc = n_cache(&c);
    void *out = kgt_poisoned(c.t, nx), *kc[LMAX], *vc2[LMAX];
    for (int l = 0; l < o->L; l++)
        kc[l] = kgt_encode(c.t, c.K[l], nc), vc2[l] = kgt_encode(c.t, c.V[l], nc);
    cr_assert_eq(run_kernel(k, &c, out, kc, vc2), KG_OK, "%s: %s refused", name, k->name);
    expect(vc, "out_out", c.t, out, k->name);
    size_t w = kgt_dtype_size(c.t);
    for (int l = 0; l < o->L; l++) {
        char kn[64], vn[64];
        snprintf(kn, sizeof kn, "out_K_cache_%d", l), snprintf(vn, sizeof vn, "out_V_cache_%d", l);
        cr_assert(kgt_case_has_output(vc, kn) == o->update && kgt_case_has_output(vc, vn) ==
                  o->update, "%s: the updated caches are expected iff cache_update", name);
        if (o->update) {
            /* the case stores the first S_ctx slots: K [B, 1, D, S_ctx], V [B, 1, S_ctx, D] */
            void *ks = first_slots(kc[l], w, o->B * o->D, o->S_max, o->S_ctx, 1);
            void *vs = first_slots(vc2[l], w, o->B, o->S_max, o->S_ctx, o->D);
            expect(vc, kn, c.t, ks, k->name);
            expect(vc, vn, c.t, vs, k->name);
            free(ks), free(vs);
        }
        free(kc[l]), free(vc2[l]);
    }
    free(out);
    call_free(&c);
}

Test(transformer_tkg, shared_vectors) { kgt_each_case("transformer_tkg", run_vector); }

/* ---- JIT against AOT (gcc) ----------------------------------------------------------------- */

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

Test(transformer_tkg, jit_and_aot_are_bit_identical, .timeout = 300 * KGT_TIME_SCALE)
{
    kg_registry *reg = kg_registry_new();
    long compared = kgt_builds_compared();
    for (int i = 0; i < 3; i++) {
        tkg_ref_opts o = base();
        kg_dtype t = i == 2 ? KG_F32 : KG_BF16;
        if (i == 1)
            o.L = 3, o.fp8 = 6, o.clamp = 0.5f, o.B = 3, o.S = 2, o.nkv = 2;
        if (i == 2)
            o.update = 0, o.fp8 = 1;
        call c;
        make_call(&c, &o, t, 900 + (unsigned long long)i);
        char problem[1024];
        problem_of(&c, problem, sizeof problem);
        const kg_kernel *kj = kgt_jit(problem), *ka = gcc_build(reg, problem);
        long nx = n_tok(&c) * o.H, nc = n_cache(&c);
        size_t w = kgt_dtype_size(t);
        void *out[2], *kc[2][EMAX], *vc[2][EMAX];
        const kg_kernel *ks[2] = { kj, ka };
        for (int b = 0; b < 2; b++) {
            out[b] = kgt_build_output(t, nx, b == 0 ? KGT_JIT : KGT_AOT);
            for (int e = 0; e < n_el(&c); e++)
                kc[b][e] = kgt_encode(t, c.K[e], nc), vc[b][e] = kgt_encode(t, c.V[e], nc);
            cr_assert_eq(run_kernel(ks[b], &c, out[b], kc[b], vc[b]), KG_OK, "%s", kj->name);
        }
        char msg[1024];
        cr_assert(kgt_builds_equal(out[0], out[1], nx, w, msg, sizeof msg), "%s out: %s",
                  kj->name, msg);
        for (int e = 0; e < n_el(&c); e++) {
            cr_assert(kgt_builds_equal(kc[0][e], kc[1][e], nc, w, msg, sizeof msg), "%s K[%d]: %s",
                      kj->name, e, msg);
            cr_assert(kgt_builds_equal(vc[0][e], vc[1][e], nc, w, msg, sizeof msg), "%s V[%d]: %s",
                      kj->name, e, msg);
            for (int b = 0; b < 2; b++)
                free(kc[b][e]), free(vc[b][e]);
        }
        free(out[0]), free(out[1]);
        call_free(&c);
    }
    cr_assert_eq(kgt_builds_compared() - compared, 1 + 2 * 2 + 1 + 2 * 6 + 1 + 2 * 2,
                 "every output compared");
    kg_registry_free(reg);
}
