/* tests/util/tkg_call.c: one call of a transformer_tkg megakernel for its tests
 * (util/tkg_call.h). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/dtype.h"
#include "kgen/kernels.h"
#include "kgen/kgen.h"
#include "ref/ref.h"
#include "util/tensors.h"
#include "util/tkg_call.h"
#include "util/weights.h"

long tkg_n_tok(const tkg_call *c) { return c->o.B * c->o.S; }
long tkg_n_cache(const tkg_call *c) { return c->o.B * c->o.D * c->o.S_max; }
int tkg_is_fp8(const tkg_call *c, int l) { return (c->o.fp8 >> l) & 1; }
int tkg_n_kv(const tkg_call *c) { return c->o.nkv > 0 ? c->o.nkv : 1; }
long tkg_n_qkv(const tkg_call *c) { return tkg_n_kv(c) * (c->o.N + 2) * c->o.D; }
long tkg_n_att(const tkg_call *c) { return tkg_n_kv(c) * c->o.N * c->o.D; } /* W_out's rows */
int tkg_n_el(const tkg_call *c) { return c->o.L * tkg_n_kv(c); } /* elements of the [lg] lists */

void tkg_call_free(tkg_call *c)
{
    free(c->X), free(c->cos), free(c->sin), free(c->mask), free(c->pos);
    for (int l = 0; l < TKG_LMAX; l++) {
        free(c->Wg[l]), free(c->Wu[l]), free(c->Wd[l]);
        free(c->gq[l]), free(c->gm[l]), free(c->sg[l]), free(c->su[l]), free(c->sd[l]);
        free(c->Wqkv[l]), free(c->Wout[l]);
    }
    for (int e = 0; e < TKG_EMAX; e++)
        free(c->K[e]), free(c->V[e]);
}

float *tkg_dup(const float *x, long n)
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

void tkg_call_random(tkg_call *c, const tkg_ref_opts *o, kg_dtype t, kg_dtype wt,
                     unsigned long long seed)
{
    memset(c, 0, sizeof *c);
    c->o = *o, c->t = t, c->wt = wt, c->tp = 1;
    kg_dtype w = wt;
    long T = tkg_n_tok(c), H = o->H, I = o->I, NA = tkg_n_att(c), B = o->B, S = o->S, W = o->S_ctx;
    long hc = o->D / 2 * T;
    c->X = randn(t, T * H, seed, 1.0f);
    c->cos = malloc(sizeof(float) * (size_t)hc), c->sin = malloc(sizeof(float) * (size_t)hc);
    for (long i = 0; i < hc; i++) {
        float a = 0.37f * (float)(i % 97) + 0.1f * (float)(i / 97);
        c->cos[i] = kgt_round(t, cosf(a)), c->sin[i] = kgt_round(t, sinf(a));
    }
    for (int l = 0; l < o->L; l++) {
        unsigned long long s = seed + 100 * (unsigned long long)(l + 1);
        if (tkg_is_fp8(c, l)) {
            c->Wg[l] = randn_e4m3(H * I, s + 2, 1.0f / sqrtf((float)H));
            c->Wu[l] = randn_e4m3(H * I, s + 3, 1.0f / sqrtf((float)H));
            c->Wd[l] = randn_e4m3(I * H, s + 4, 1.0f / sqrtf((float)I));
            c->sg[l] = scales(I, s + 5), c->su[l] = scales(I, s + 6), c->sd[l] = scales(H, s + 7);
        } else {
            c->Wg[l] = randn(w, H * I, s + 2, 1.0f / sqrtf((float)H));
            c->Wu[l] = randn(w, H * I, s + 3, 1.0f / sqrtf((float)H));
            c->Wd[l] = randn(w, I * H, s + 4, 1.0f / sqrtf((float)I));
        }
        c->Wqkv[l] = randn(w, H * tkg_n_qkv(c), s + 10, 1.0f / sqrtf((float)H));
        c->Wout[l] = randn(w, NA * H, s + 11, 1.0f / sqrtf((float)NA));
        c->gq[l] = randn(t, H, s + 8, 0.25f), c->gm[l] = randn(t, H, s + 9, 0.25f);
        for (long h = 0; h < H; h++) {
            c->gq[l][h] = kgt_round(t, c->gq[l][h] + 1.0f);
            c->gm[l][h] = kgt_round(t, c->gm[l][h] + 1.0f);
        }
    }
    for (int e = 0; e < tkg_n_el(c); e++) {
        unsigned long long s = seed + 1000 + 100 * (unsigned long long)e;
        c->K[e] = randn(t, tkg_n_cache(c), s + 10, 1.0f);
        c->V[e] = randn(t, tkg_n_cache(c), s + 11, 1.0f);
    }
    long NQ = tkg_n_kv(c) * o->N; /* every KV head's query heads */
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

tkg_ref_opts tkg_small_opts(void)
{
    tkg_ref_opts o;
    memset(&o, 0, sizeof o);
    o.B = 2, o.S = 1, o.H = 128, o.I = 96, o.N = 2, o.D = 32, o.S_ctx = 21, o.S_max = 40;
    o.L = 2, o.update = 1, o.eps = 1e-6f;
    return o;
}

static const char *tf(int b) { return b ? "true" : "false"; }

void tkg_problem_of(const tkg_call *c, char *buf, size_t len)
{
    const tkg_ref_opts *o = &c->o;
    snprintf(buf, len, "transformer_tkg:dtype=%s,H=%ld,I=%ld,q_heads=%ld,d_head=%ld,S_tkg=%ld,"
             "S_max=%ld,num_layers=%d,eps=%.9g,fp8_layers=%u,clamp_bound=%.9g,tp=%d,"
             "update_cache=%s,kv_heads=%d", kg_dtype_name(c->t), o->H, o->I, o->N, o->D, o->S,
             o->S_max, o->L, (double)o->eps, o->fp8, (double)o->clamp, c->tp, tf(o->update),
             tkg_n_kv(c));
    size_t n = strlen(buf);
    if (c->wt != c->t && n < len)
        snprintf(buf + n, len - n, ",weight_dtype=%s", kg_dtype_name(c->wt));
}

int tkg_wt_fmt(kg_dtype t)
{
    return t == KG_F32 ? KG_WT_F32 : t == KG_F16 ? KG_WT_F16 : KG_WT_BF16;
}

void tkg_pack(tkg_packed *p, const tkg_call *c)
{
    const tkg_ref_opts *o = &c->o;
    int f = tkg_wt_fmt(c->wt);
    for (int l = 0; l < o->L; l++) {
        int fm = tkg_is_fp8(c, l) ? KG_WT_E4M3 : f;
        kgt_wt_from_values(&p->g[l], fm, KG_WL_KN, o->H, o->I, c->Wg[l]);
        kgt_wt_from_values(&p->u[l], fm, KG_WL_KN, o->H, o->I, c->Wu[l]);
        kgt_wt_from_values(&p->d[l], fm, KG_WL_KN, o->I, o->H, c->Wd[l]);
        p->gq[l] = kgt_encode(c->t, c->gq[l], o->H), p->gm[l] = kgt_encode(c->t, c->gm[l], o->H);
        kgt_wt_from_values(&p->qkv[l], f, KG_WL_KN, o->H, tkg_n_qkv(c), c->Wqkv[l]);
        kgt_wt_from_values(&p->out[l], f, KG_WL_KN, tkg_n_att(c), o->H, c->Wout[l]);
    }
}

void tkg_pack_free(tkg_packed *p, const tkg_call *c)
{
    for (int l = 0; l < c->o.L; l++) {
        kg_wt_free(&p->g[l]), kg_wt_free(&p->u[l]), kg_wt_free(&p->d[l]);
        kg_wt_free(&p->qkv[l]), kg_wt_free(&p->out[l]);
        free(p->gq[l]), free(p->gm[l]);
    }
}

int tkg_run_kernel(const kg_kernel *k, const tkg_call *c, void *out, void **kc, void **vc)
{
    const tkg_ref_opts *o = &c->o;
    long hc = o->D / 2 * tkg_n_tok(c);
    tkg_packed p;
    tkg_pack(&p, c);
    const kg_wt *wq[TKG_LMAX], *wo[TKG_LMAX], *wg[TKG_LMAX], *wu[TKG_LMAX], *wd[TKG_LMAX];
    const void *gq[TKG_LMAX], *gm[TKG_LMAX], *sg[TKG_LMAX], *su[TKG_LMAX], *sd[TKG_LMAX];
    for (int l = 0; l < o->L; l++) {
        wq[l] = &p.qkv[l], wo[l] = &p.out[l];
        wg[l] = &p.g[l], wu[l] = &p.u[l], wd[l] = &p.d[l];
        gq[l] = p.gq[l], gm[l] = p.gm[l];
        sg[l] = c->sg[l], su[l] = c->su[l], sd[l] = c->sd[l]; /* NULL on plain layers */
    }
    void *X = kgt_encode(c->t, c->X, tkg_n_tok(c) * o->H);
    void *cs = kgt_encode(c->t, c->cos, hc), *sn = kgt_encode(c->t, c->sin, hc);
    int rc = ((kg_transformer_tkg_fn *)k->fn)(out, kc, vc, X, wq, wo, wg, wu, wd, gq, gm, cs, sn,
                                              c->mask, o->update ? c->pos : NULL, sg, su, sd,
                                              o->B, o->S_ctx);
    free(X), free(cs), free(sn);
    tkg_pack_free(&p, c);
    return rc;
}
