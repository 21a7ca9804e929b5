/* tests/test_qkv_vectors.c: the qkv vector adapter: every shared/vectors/qkv_cte and qkv_tkg
 * case, and synthetic cases (util/casew.h) for what the shared sample lacks (STATIC with fused
 * RoPE, MX weight representations and inputs, the fp8 KV-cache write), expected from
 * tests/ref/qkv_ref.c. */
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
#include "util/casew.h"
#include "util/jitp.h"
#include "util/tensors.h"
#include "util/vectors.h"
#include "util/vecwt.h"
#include "util/weights.h"

TestSuite(qkv, .init = kgt_suite_init, .fini = kgt_suite_fini,
          .timeout = 120 * KGT_TIME_SCALE);

/* ---- shared/vectors/qkv_cte and qkv_tkg ------------------------------------------------------ */

/* The first of the names the case lists (the variants' references name the same argument
 * differently), or NULL. */
static const char *listed(kgt_case *c, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (names[i] && kgt_case_input_dtype(c, names[i]))
            return names[i];
    return NULL;
}

/* The case's float input `name` encoded in t (NULL for a NULL name). */
static void *vector_tensor(kgt_case *c, const char *name, kg_dtype t)
{
    if (!name)
        return NULL;
    float *x = kgt_case_as(c, name, KG_F32);
    cr_assert_not_null(x, "%s: %s", kgt_case_name(c), kgt_case_error(c));
    void *e = kgt_encode(t, x, kg_npy_count(kgt_case_input(c, name)));
    free(x);
    return e;
}

/* The vector names of each argument: CTE's reference, TKG's, then qkv.md's. */
typedef struct vnames {
    const char *x, *w, *g, *be, *bi, *mlp, *attn, *ws, *is, *cos, *sin, *kc, *vc, *ks, *vs, *sl;
} vnames;

static vnames vector_names(kgt_case *c)
{
    static const char *const x[] = { "hidden", "input" };
    static const char *const w[] = { "qkv_weights", "qkv_w", "fused_qkv_weights" };
    static const char *const g[] = { "gamma", "norm_w", "gamma_norm_weights" };
    static const char *const be[] = { "norm_b", "norm_bias", "layer_norm_bias" };
    static const char *const bi[] = { "bias", "qkv_bias" };
    static const char *const mlp[] = { "mlp_prev" };
    static const char *const attn[] = { "attn_prev", "attention_prev" };
    static const char *const ws[] = { "qkv_w_scale", "w_scale" };
    static const char *const is[] = { "qkv_in_scale", "in_scale" };
    static const char *const cs[] = { "cos_cache", "cos" }, *const sn[] = { "sin_cache", "sin" };
    static const char *const kc[] = { "k_cache" }, *const vc[] = { "v_cache" };
    static const char *const ks[] = { "k_scale" }, *const vs[] = { "v_scale" };
    static const char *const sl[] = { "slot_mapping" };
    vnames v = { listed(c, x, 2), listed(c, w, 3), listed(c, g, 3), listed(c, be, 3),
                 listed(c, bi, 2), listed(c, mlp, 1), listed(c, attn, 2), listed(c, ws, 2),
                 listed(c, is, 2), listed(c, cs, 2), listed(c, sn, 2), listed(c, kc, 1),
                 listed(c, vc, 1), listed(c, ks, 1), listed(c, vs, 1), listed(c, sl, 1) };
    return v;
}

/* The stored weight layout (weight_layout: qkv.md's name or its QKVWeightLayout code). */
static const char *vector_weight_layout(kgt_case *c, int mx)
{
    static const char *const names[3] = { "CONTIGUOUS", "MX_CONTIGUOUS", "MX_INTERLEAVED" };
    const char *s;
    double v;
    if (kgt_case_opt_str(c, "weight_layout", &s)) {
        for (int i = 0; i < 3; i++)
            if (!strcmp(s, names[i]))
                return names[i];
        cr_assert_fail("%s: weight_layout %s is not mapped", kgt_case_name(c), s);
    }
    if (kgt_case_opt_num(c, "weight_layout", &v)) {
        cr_assert(v == 0 || v == 1 || v == 2, "%s: weight_layout %g is not mapped",
                  kgt_case_name(c), v);
        return names[(int)v];
    }
    return mx ? names[1] : names[0];
}

/* The fp8 KV-cache write of a case (qkv.md step 8): caches, scales, slots and options. */
typedef struct vkv {
    int on, block;
    long bs, L, n;           /* block_size, cache_len (rows or blocks), elements of a cache */
    double max, min;
    const char *dtype;
    uint8_t *kc, *vc;
    float *ks, *vs;
    int32_t *slots;
} vkv;

static void vector_kv(kgt_case *c, const vnames *n, vkv *kv)
{
    const char *name = kgt_case_name(c);
    memset(kv, 0, sizeof *kv);
    int block = 0;
    double bs = 0;
    kv->dtype = "e4m3";
    kgt_case_opt_bool(c, "use_block_kv", &block);
    kgt_case_opt_num(c, "block_size", &bs);
    const char *kd;
    if (kgt_case_opt_str(c, "kv_dtype", &kd)) {
        int f = kg_wt_fmt_from_name(strstr(kd, "e5m2") ? "e5m2" : strstr(kd, "e4m3fn") ? "e4m3fn"
                                    : strstr(kd, "e4m3") ? "e4m3" : kd);
        cr_assert(f >= 0, "%s: kv_dtype %s is not mapped", name, kd);
        kv->dtype = kg_wt_fmt_name(f);
    }
    kv->on = n->kc || n->vc;
    int has_max = kgt_case_opt_num(c, "fp8_max", &kv->max);
    int has_min = kgt_case_opt_num(c, "fp8_min", &kv->min);
    if (!kv->on) {
        cr_assert(!block && !has_max && !has_min && !n->ks && !n->vs && !n->sl,
                  "%s: KV-cache options without k_cache / v_cache", name);
        return;
    }
    cr_assert(n->kc && n->vc && n->ks && n->vs, "%s: the KV-cache write needs k_cache, v_cache, "
              "k_scale and v_scale", name);
    kv->max = has_max ? kv->max : 240.0, kv->min = has_min ? kv->min : -kv->max;
    const kg_npy *k = kgt_case_input(c, n->kc);
    cr_assert(k && k->rank == 3, "%s: k_cache [B, max_seq, nkv*d] or [blocks, block_size, "
              "nkv*d]: %s", name, kgt_case_error(c));
    kv->block = block || n->sl;
    kv->L = k->shape[0 + !kv->block], kv->n = kg_npy_count(k);
    kv->bs = kv->block ? (bs > 0 ? (long)bs : k->shape[1]) : 0;
    cr_assert(!kv->block || (n->sl && kv->bs == k->shape[1]), "%s: block cache: slot_mapping "
              "and block_size %g = the cache's rows per block %ld", name, bs, k->shape[1]);
    int fmt = kg_wt_fmt_from_name(kv->dtype);
    kv->kc = kgt_case_codes8(c, n->kc, fmt), kv->vc = kgt_case_codes8(c, n->vc, fmt);
    kv->ks = kgt_case_as(c, n->ks, KG_F32), kv->vs = kgt_case_as(c, n->vs, KG_F32);
    kv->slots = n->sl ? kgt_case_as(c, n->sl, KG_I32) : NULL;
    cr_assert(kv->ks && kv->vs && (!n->sl || kv->slots), "%s: %s", name, kgt_case_error(c));
}

/* The expected q part of a KV-cache case ("out_q", else "out_out") or the output ("out_out"). */
static const char *vector_out_name(kgt_case *c, int kv)
{
    return kv && kgt_case_has_output(c, "out_q") ? "out_q" : "out_out";
}

/* Each listed expected output of a cache (NAME, then NAME_f32) against the updated cache. */
static void vector_cache_compare(kgt_case *c, const char *kname, const char *cache, int fmt,
                                 const uint8_t *got, long n)
{
    char out_name[64], msg[1024];
    int compared = 0;
    for (int f = 0; f < 2; f++) {
        snprintf(out_name, sizeof out_name, "out_%s%s", cache, f ? "_f32" : "");
        if (!kgt_case_has_output(c, out_name))
            continue;
        int ok = kgt_codes_close_to_case(c, out_name, fmt, got, n, msg, sizeof msg);
        cr_assert(ok != 0, "vector %s (%s): %s: %s", kgt_case_name(c), kname, out_name, msg);
        compared |= ok == 1;
    }
    cr_assert(compared, "%s: no expected out_%s with a tolerance", kgt_case_name(c), cache);
}

/* Option a, else its other spelling b (both given: they must agree); 1 if either is. */
static int opt_num2(kgt_case *c, const char *a, const char *b, double *v)
{
    double x, y;
    int ha = kgt_case_opt_num(c, a, &x), hb = kgt_case_opt_num(c, b, &y);
    cr_assert(!ha || !hb || x == y, "%s: %s = %g but %s = %g", kgt_case_name(c), a, x, b, y);
    if (ha || hb)
        *v = ha ? x : y;
    return ha || hb;
}

static int opt_str2(kgt_case *c, const char *a, const char *b, const char **v)
{
    const char *x, *y;
    int ha = kgt_case_opt_str(c, a, &x), hb = kgt_case_opt_str(c, b, &y);
    cr_assert(!ha || !hb || !strcmp(x, y), "%s: %s = %s but %s = %s", kgt_case_name(c), a, x, b,
              y);
    if (ha || hb)
        *v = ha ? x : y;
    return ha || hb;
}

/* One case of qkv_cte / qkv_tkg: every option mapped to its key (quantization STATIC / ROW
 * with fp8 weights and their scales, MX with its weight layouts, swizzled / fp8 input and the
 * static-dequant variant, fused RoPE, the fused add, the fp8 KV-cache write), every input read;
 * the weights in any representation kgt_case_wt accepts. */
static void run_vector_of(kgt_case *vc, int tkg)
{
    const char *name = kgt_case_name(vc), *norm = "NO_NORM", *layout = "BSD", *quant = "NONE";
    double dh, nq, nkv, eps = 1e-6, hact = 0;
    int bias = 0, add = 0, rope = 0, swz = 0, swz4 = 0;
    /* the vectors' names (the references'), or qkv.md's (upstream qkv's) */
    cr_assert(kgt_case_opt_num(vc, "d_head", &dh) &&
              opt_num2(vc, "n_q_heads", "num_q_heads", &nq) &&
              opt_num2(vc, "n_kv_heads", "num_kv_heads", &nkv), "%s: head options", name);
    opt_str2(vc, "norm_type", "fused_norm_type", &norm);
    kgt_case_opt_str(vc, "output_layout", &layout);
    kgt_case_opt_str(vc, "quantization_type", &quant);
    opt_num2(vc, "eps", "norm_eps", &eps);
    kgt_case_opt_num(vc, "hidden_actual", &hact);
    kgt_case_opt_bool(vc, "bias", &bias);
    kgt_case_opt_bool(vc, "fused_residual_add", &add);
    kgt_case_opt_bool(vc, "fused_rope", &rope);
    kgt_case_opt_bool(vc, "is_input_swizzled", &swz);
    kgt_case_opt_bool(vc, "is_h_dim_4h_transposed", &swz4); /* qkv.md: the same storage */
    swz |= swz4;
    /* hardware placement, loading and scheduling (qkv.md): no effect on the values */
    static const char *const hw[] = { "store_output_in_sbuf", "use_auto_allocation",
                                      "load_input_with_DMA_transpose", "sbm" };
    for (size_t i = 0; i < sizeof hw / sizeof hw[0]; i++)
        kgt_case_opt_has(vc, hw[i]);
    int q8 = !strcmp(quant, "STATIC") || !strcmp(quant, "ROW"), mx = !strcmp(quant, "MX");
    cr_assert(q8 || mx || !strcmp(quant, "NONE"), "%s: quantization_type %s is not mapped", name,
              quant);
    vnames n = vector_names(vc);
    const char *wlayout = vector_weight_layout(vc, mx);
    int mxs = mx && n.is; /* qkv.md "MX static dequant": MX_INTERLEAVED + qkv_in_scale */
    vkv kv;
    vector_kv(vc, &n, &kv);
    const kg_npy *x = n.x ? kgt_case_input(vc, n.x) : NULL;
    cr_assert(x && n.w && (!add || (n.mlp && n.attn)) && (!bias || n.bi) &&
              (!rope || (n.cos && n.sin)) && (!(q8 || mxs || mx) || n.ws),
              "%s: inputs of the options: %s", name, kgt_case_error(vc));
    /* the input dtype; fp8 only in the MX path, its companions then bf16 (qkv.md) */
    int xt = kgt_case_dtype(vc, n.x), fp8_in = mx && (xt == KG_E4M3 || xt == KG_E4M3FN);
    const char *const fl[] = { fp8_in ? NULL : n.x, n.g, n.be, n.bi, n.mlp, n.attn, n.cos,
                               n.sin };
    int ti = fp8_in && !n.g && !n.be && !n.bi && !n.cos ? KG_BF16
                                                        : kgt_case_float_dtype(vc, fl, 8);
    cr_assert(ti >= 0, "%s: %s", name, kgt_case_error(vc));
    kg_dtype t = (kg_dtype)ti, tin = fp8_in ? (kg_dtype)xt : t;
    cr_assert(!fp8_in || t == KG_BF16, "%s: fp8 input with %s companions (qkv.md: bf16)", name,
              kg_dtype_name(t));
    kg_dtype tout = fp8_in || (!tkg && !strcmp(quant, "STATIC") && !kv.on) ? KG_BF16 : t;
    /* the weight format: named by its dtype; integer codes or words take the scheme's */
    int wfmt = kgt_case_wt_fmt(vc, n.w);
    if (!q8 && !mx && wfmt >= KG_WT_E4M3) /* fp8 values fit bf16 */
        wfmt = KG_WT_BF16;
    if (!q8 && !mx)
        cr_assert(wfmt == KG_WT_F32 || wfmt == KG_WT_BF16 || wfmt == KG_WT_F16,
                  "%s: weight dtype %s for %s", name, kgt_case_input_dtype(vc, n.w), quant);
    else if (wfmt < 0) /* integer codes or words: the scheme's default format */
        wfmt = mx ? KG_WT_E4M3FN : KG_WT_E4M3;
    cr_assert(!(q8 || mx) || wfmt == KG_WT_E4M3 || wfmt == KG_WT_E4M3FN, "%s: weight dtype %s "
              "for %s", name, kgt_case_input_dtype(vc, n.w), quant);
    long B = x->shape[0], S = x->shape[1], H = x->shape[2];
    int ln = strcmp(norm, "LAYER_NORM") == 0;
    int wl = !strcmp(wlayout, "MX_CONTIGUOUS") ? KG_WL_X4
             : !strcmp(wlayout, "MX_INTERLEAVED") ? KG_WL_X4_INTERLEAVED : KG_WL_KN;
    kg_wt w;
    long I = kgt_case_wt(vc, n.w, mx && !mxs ? n.ws : NULL, wfmt, wl, H, &w);

    char problem[1024];
    snprintf(problem, sizeof problem,
             "qkv:variant=%s,dtype=%s,quantization_type=%s,weight_dtype=%s,H=%ld,nq=%d,nkv=%d,"
             "d=%d,hidden_actual=%ld,output_layout=%s,norm_type=%s,layer_norm_bias=%d,eps=%.9g,"
             "bias=%d,fused_residual_add=%d,fused_rope=%d,weight_layout=%s,is_input_swizzled=%d,"
             "mx_static_dequant=%d,kv_cache=%s,block_size=%ld,kv_dtype=%s,fp8_max=%.9g,"
             "fp8_min=%.9g", tkg ? "TKG" : "CTE", kg_dtype_name(tin), quant,
             kg_wt_fmt_name(wfmt), H, (int)nq, (int)nkv, (int)dh, hact > 0 ? (long)hact : H,
             layout, norm, ln && n.be, eps, bias, add, rope, wlayout, swz, mxs,
             kv.on ? (kv.block ? "BLOCK" : "FLAT") : "NONE", kv.bs, kv.dtype,
             kv.on ? kv.max : 240.0, kv.on ? kv.min : -240.0);
    const kg_kernel *k = kgt_jit(problem);
    void *ex = fp8_in ? kgt_case_codes8(vc, n.x, xt == KG_E4M3 ? KG_WT_E4M3 : KG_WT_E4M3FN)
                      : vector_tensor(vc, n.x, t);
    long out_n = B * S * (kv.on ? (long)(nq * dh) : I);
    void *out = kgt_poisoned(tout, out_n), *eg = vector_tensor(vc, n.g, t);
    void *ebe = ln ? vector_tensor(vc, n.be, t) : NULL;
    void *ebi = bias ? vector_tensor(vc, n.bi, t) : NULL;
    void *em = add ? vector_tensor(vc, n.mlp, t) : NULL;
    void *ea = add ? vector_tensor(vc, n.attn, t) : NULL;
    void *ec = rope ? vector_tensor(vc, n.cos, t) : NULL;
    void *es = rope ? vector_tensor(vc, n.sin, t) : NULL;
    /* [1, 3] / [128, 3] (STATIC, MX static dequant) or [1, I] / [128, I] (ROW): row 0 read;
     * MX's E8M0 scales went into the weight */
    float *ews = q8 || mxs ? kgt_case_as(vc, n.ws, KG_F32) : NULL;
    float *eis = n.is ? kgt_case_as(vc, n.is, KG_F32) : NULL;
    cr_assert(!(q8 || mxs) || ews, "%s: %s", name, kgt_case_error(vc));
    void *fused = tkg && add ? kgt_poisoned(t, B * S * H) : NULL;
    int rc = ((kg_qkv_fn *)k->fn)(out, fused, kv.kc, kv.vc, ex, &w, ews, eis, ebi, em, ea, eg,
                                  ebe, ec, es, kv.ks, kv.vs, kv.slots, B, S, kv.L);
    cr_assert_eq(rc, KG_OK, "%s: %s returned %d", name, k->name, rc);
    char msg[1024];
    const char *on = vector_out_name(vc, kv.on);
    int ok = kgt_close_to_case(vc, on, tout, out, msg, sizeof msg);
    cr_assert(ok >= 0, "%s: no tolerance for %s", name, on);
    cr_assert(ok, "vector %s (%s): %s: %s", name, k->name, on, msg);
    if (fused) {
        ok = kgt_close_to_case(vc, "out_fused_hidden", t, fused, msg, sizeof msg);
        cr_assert(ok == 1, "vector %s (%s): fused_hidden: %s", name, k->name, msg);
    }
    if (kv.on) {
        int f = kg_wt_fmt_from_name(kv.dtype);
        vector_cache_compare(vc, k->name, "k_cache", f, kv.kc, kv.n);
        vector_cache_compare(vc, k->name, "v_cache", f, kv.vc, kv.n);
    }
    void *ps[] = { ex, out, eg, ebe, ebi, em, ea, ec, es, ews, eis, fused, kv.kc, kv.vc, kv.ks,
                   kv.vs, kv.slots };
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        free(ps[i]);
    kg_wt_free(&w);
}

static void run_cte_vector(kgt_case *c) { run_vector_of(c, 0); }
static void run_tkg_vector(kgt_case *c) { run_vector_of(c, 1); }

Test(qkv, shared_vectors_cte) { kgt_each_case("qkv_cte", run_cte_vector); }
Test(qkv, shared_vectors_tkg) { kgt_each_case("qkv_tkg", run_tkg_vector); }

/* A synthetic qkv_cte case in the vector format for options the shared sample lacks: STATIC
 * quantization (fp8 e4m3 weights, qkv_w_scale [128, 3] and qkv_in_scale [128, 1], qkv.md's
 * names) with fused RoPE (cos_cache / sin_cache [B, S, d], HF duplicated halves) after an RMS
 * norm; the expected output from tests/ref. */
Test(qkv, synthetic_vector_cte_static_fused_rope)
{
    enum { B = 1, S = 5, H = 128, NQ = 2, NKV = 1, D = 32, I = (NQ + 2 * NKV) * D };
    float *x = kgt_randn(KG_BF16, B * S * H, 501), *gam = kgt_randn(KG_BF16, H, 502);
    float *W = kgt_randn(KG_F32, H * I, 503);
    for (long i = 0; i < H * I; i++)
        W[i] = kg_e4m3_to_f32(kg_f32_to_e4m3(W[i] * 16.0f));
    float ws[128 * 3], is[128], cs[B * S * D], sn[B * S * D];
    for (int r = 0; r < 128; r++) {
        ws[r * 3] = 0.004f, ws[r * 3 + 1] = 0.003f, ws[r * 3 + 2] = 0.005f;
        is[r] = 0.02f;
    }
    for (int s = 0; s < S; s++)
        for (int j = 0; j < D; j++) { /* angles s / 10000^(2(j mod D/2)/D), both halves alike */
            float a = (float)s * powf(10000.0f, -2.0f * (float)(j % (D / 2)) / D);
            cs[s * D + j] = kgt_round_bf16(cosf(a)), sn[s * D + j] = kgt_round_bf16(sinf(a));
        }
    float *want = malloc(sizeof(float) * B * S * I);
    qkv_ref_opts o = { 0, H, NQ, NKV, D, H, 1, 1, 0, 0, 240.0f, 1e-6f, 0, 1, 0, 0, 0, 0,
                       240.0f, -240.0f, kgt_round_bf16 };
    qkv_ref(want, NULL, NULL, NULL, x, W, ws, is[0], NULL, NULL, NULL, gam, NULL, cs, sn, 1.0f,
            1.0f, NULL, &o, B, S, 0);
    kgt_casew *w = kgt_casew_new("qkv_cte", "rms_norm_static_rope_b1_s5");
    long xs[3] = { B, S, H }, wsh[2] = { H, I }, gs[2] = { 1, H }, ss[2] = { 128, 3 };
    long iss[2] = { 128, 1 }, ts[3] = { B, S, D }, os[3] = { B, S, I };
    kgt_casew_input(w, "hidden", "bf16", x, 3, xs);
    kgt_casew_input(w, "qkv_weights", "fp8_e4m3", W, 2, wsh);
    kgt_casew_input(w, "gamma", "bf16", gam, 2, gs);
    kgt_casew_input(w, "qkv_w_scale", "f32", ws, 2, ss);
    kgt_casew_input(w, "qkv_in_scale", "f32", is, 2, iss);
    kgt_casew_input(w, "cos_cache", "bf16", cs, 3, ts);
    kgt_casew_input(w, "sin_cache", "bf16", sn, 3, ts);
    kgt_casew_opt_num(w, "d_head", D), kgt_casew_opt_num(w, "n_q_heads", NQ);
    kgt_casew_opt_num(w, "n_kv_heads", NKV), kgt_casew_opt_num(w, "eps", 1e-6);
    kgt_casew_opt_str(w, "norm_type", "RMS_NORM");
    kgt_casew_opt_str(w, "quantization_type", "STATIC");
    kgt_casew_opt_str(w, "output_layout", "BSD");
    kgt_casew_opt_bool(w, "bias", 0), kgt_casew_opt_bool(w, "fused_rope", 1);
    kgt_casew_output(w, "out_out", want, 3, os, 5e-2, 2e-2);
    kgt_run_case(kgt_casew_finish(w), run_cte_vector);
    kgt_casew_free(w);
    free(x), free(gam), free(W), free(want);
}

/* An MX weight of a synthetic case: E4M3FN codes of W [H, I] with one E8M0 per 32 rows, and
 * the logical values the GEMM reads (code value times 2^(e-127)). */
typedef struct mxw {
    uint32_t *codes;
    uint8_t *e8;
    float *vals;
} mxw;

static void mxw_make(mxw *m, long H, long I, unsigned long long seed)
{
    m->codes = malloc((size_t)(H * I) * sizeof *m->codes);
    m->e8 = malloc((size_t)(H / 32 * I));
    m->vals = malloc((size_t)(H * I) * sizeof *m->vals);
    for (long b = 0; b < H / 32 * I; b++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        m->e8[b] = (uint8_t)(120 + (seed >> 33) % 6);
    }
    for (long i = 0; i < H * I; i++) {
        m->codes[i] = kg_f32_to_e4m3fn(kgt_normal(&seed) * 4.0f);
        m->vals[i] = kg_e4m3fn_to_f32((uint8_t)m->codes[i]) *
                     kg_e8m0_to_f32(m->e8[(i / I / 32) * I + i % I]);
    }
}

static void mxw_free(mxw *m) { free(m->codes), free(m->e8), free(m->vals); }

/* Synthetic qkv MX cases (qkv.md's MX path: per-token MXFP8 activations, x4 e4m3fn weights with
 * E8M0 scales [H/32, I]), the weight in each representation a vector case may use, both MX
 * layouts, CTE (SKIP_GAMMA, bias) and TKG (RMS norm, swizzled input and gamma). */
Test(qkv, synthetic_vector_mx_weight_representations)
{
    enum { B = 1, S = 2, H = 512, NQ = 2, NKV = 1, D = 32, I = (NQ + 2 * NKV) * D };
    static const char *const wl[2] = { "MX_CONTIGUOUS", "MX_INTERLEAVED" };
    for (int rep = 0; rep < KGT_WREP_COUNT; rep++)
        for (int tkg = 0; tkg < 2; tkg++) {
            int layout = rep % 2 ? KG_WL_X4_INTERLEAVED : KG_WL_X4;
            mxw m;
            mxw_make(&m, H, I, 600 + rep);
            float *x = kgt_randn(KG_BF16, B * S * H, 610 + rep);
            float *bi = kgt_randn(KG_BF16, I, 620 + rep), *gam = kgt_randn(KG_BF16, H, 630);
            float *want = malloc(sizeof(float) * B * S * I);
            /* TKG: RMS norm on a swizzled input and gamma; CTE: SKIP_GAMMA */
            qkv_ref_opts o = { .tkg = tkg, .H = H, .nq = NQ, .nkv = NKV, .d = D,
                               .hidden_actual = H, .norm = tkg ? 1 : 3, .quant = 3,
                               .static_fn = 1, .quant_max = 448.0f, .eps = 1e-6f,
                               .swizzled = tkg, .kv_max = 240.0f, .kv_min = -240.0f,
                               .round_in = kgt_round_bf16 };
            qkv_ref(want, NULL, NULL, NULL, x, m.vals, NULL, 1.0f, bi, NULL, NULL,
                    tkg ? gam : NULL, NULL, NULL, NULL, 1.0f, 1.0f, NULL, &o, B, S, 0);
            char cname[64];
            snprintf(cname, sizeof cname, "mx_rep%d_%s", rep, tkg ? "tkg" : "cte");
            kgt_casew *w = kgt_casew_new(tkg ? "qkv_tkg" : "qkv_cte", cname);
            long xs[3] = { B, S, H }, bs[2] = { 1, I }, gs[2] = { 1, H }, os[3] = { B, S, I };
            kgt_casew_input(w, "hidden", "bf16", x, 3, xs);
            kgt_casew_input(w, "bias", "bf16", bi, 2, bs);
            if (tkg)
                kgt_casew_input(w, "gamma", "bf16", gam, 2, gs);
            kgt_casew_wt(w, "qkv_weights", "qkv_w_scale", KG_WT_E4M3FN, layout, H, I, m.codes,
                         m.e8, rep);
            kgt_casew_opt_num(w, "d_head", D), kgt_casew_opt_num(w, "n_q_heads", NQ);
            kgt_casew_opt_num(w, "n_kv_heads", NKV), kgt_casew_opt_num(w, "eps", 1e-6);
            kgt_casew_opt_str(w, "norm_type", tkg ? "RMS_NORM" : "RMS_NORM_SKIP_GAMMA");
            kgt_casew_opt_str(w, "quantization_type", "MX");
            if (rep % 2)
                kgt_casew_opt_str(w, "weight_layout", wl[1]);
            else
                kgt_casew_opt_num(w, "weight_layout", 1);
            kgt_casew_opt_bool(w, tkg ? "is_h_dim_4h_transposed" : "is_input_swizzled", tkg);
            kgt_casew_opt_bool(w, "bias", 1);
            kgt_casew_output(w, "out_out", want, 3, os, 5e-2, 1e-2);
            kgt_run_case(kgt_casew_finish(w), tkg ? run_tkg_vector : run_cte_vector);
            kgt_casew_free(w);
            mxw_free(&m), free(x), free(bi), free(gam), free(want);
        }
}

/* Synthetic qkv_cte MX cases of the other MX inputs (qkv.md "MX path"): an fp8 e4m3fn input
 * (values on the grid, its companions bf16, the output bf16) and the MX static dequant variant
 * (MX_INTERLEAVED e4m3fn weights without block scales, qkv_in_scale [128, 1], qkv_w_scale
 * [1, 3]); the weight as x4 words; expected from tests/ref. */
Test(qkv, synthetic_vector_cte_mx_fp8_input_and_static_dequant)
{
    enum { B = 1, S = 3, H = 512, NQ = 2, NKV = 1, D = 32, I = (NQ + 2 * NKV) * D };
    for (int mxs = 0; mxs < 2; mxs++) {
        unsigned long long seed = 680 + (unsigned long long)mxs;
        mxw m;
        mxw_make(&m, H, I, seed);
        if (mxs) /* no block scales: the plain codes' values */
            for (long i = 0; i < H * I; i++)
                m.vals[i] = kg_e4m3fn_to_f32((uint8_t)m.codes[i]);
        float *x = malloc(sizeof(float) * B * S * H), *bi = kgt_randn(KG_BF16, I, seed + 1);
        for (long i = 0; i < B * S * H; i++) /* fp8: grid values; MX static: bf16 */
            x[i] = mxs ? kgt_round_bf16(kgt_normal(&seed))
                       : kg_e4m3fn_to_f32(kg_f32_to_e4m3fn(4.0f * kgt_normal(&seed)));
        float ws[3] = { 0.004f, 0.003f, 0.005f }, is[128];
        for (int r = 0; r < 128; r++)
            is[r] = 1.0f / 64.0f;
        float *want = malloc(sizeof(float) * B * S * I);
        qkv_ref_opts o = { .H = H, .nq = NQ, .nkv = NKV, .d = D, .hidden_actual = H,
                           .quant = 3, .mx_static = mxs, .static_fn = 1, .quant_max = 448.0f,
                           .eps = 1e-6f, .kv_max = 240.0f, .kv_min = -240.0f,
                           .round_in = mxs ? kgt_round_bf16 : NULL };
        qkv_ref(want, NULL, NULL, NULL, x, m.vals, mxs ? ws : NULL, mxs ? is[0] : 1.0f, bi, NULL,
                NULL, NULL, NULL, NULL, NULL, 1.0f, 1.0f, NULL, &o, B, S, 0);
        kgt_casew *w = kgt_casew_new("qkv_cte", mxs ? "mx_static_dequant" : "mx_fp8_input");
        long xs[3] = { B, S, H }, bs[2] = { 1, I }, os[3] = { B, S, I }, s3[2] = { 1, 3 };
        long s1[2] = { 128, 1 };
        kgt_casew_input(w, "hidden", mxs ? "bf16" : "fp8_e4m3fn", x, 3, xs);
        kgt_casew_input(w, "bias", "bf16", bi, 2, bs);
        kgt_casew_wt(w, "qkv_weights", "qkv_w_scale", KG_WT_E4M3FN,
                     mxs ? KG_WL_X4_INTERLEAVED : KG_WL_X4, H, I, m.codes, mxs ? NULL : m.e8,
                     KGT_WREP_WORDS);
        if (mxs) {
            kgt_casew_input(w, "qkv_w_scale", "f32", ws, 2, s3);
            kgt_casew_input(w, "qkv_in_scale", "f32", is, 2, s1);
            kgt_casew_opt_str(w, "weight_layout", "MX_INTERLEAVED");
        }
        /* qkv.md's option names (upstream qkv's), not the references' */
        kgt_casew_opt_num(w, "d_head", D), kgt_casew_opt_num(w, "num_q_heads", NQ);
        kgt_casew_opt_num(w, "num_kv_heads", NKV), kgt_casew_opt_num(w, "norm_eps", 1e-6);
        kgt_casew_opt_str(w, "fused_norm_type", "NO_NORM");
        kgt_casew_opt_str(w, "quantization_type", "MX"), kgt_casew_opt_bool(w, "bias", 1);
        kgt_casew_output(w, "out_out", want, 3, os, 5e-2, 1e-2);
        kgt_run_case(kgt_casew_finish(w), run_cte_vector);
        kgt_casew_free(w);
        mxw_free(&m), free(x), free(bi), free(want);
    }
}

/* A synthetic qkv_cte case with the fp8 KV-cache write (qkv.md step 8), flat and block: the
 * caches come in as fp8 values, k_scale / v_scale [128, 1], slot_mapping [B, S]; the expected
 * outputs are the Q part (out_q) and the updated caches as decoded values. */
Test(qkv, synthetic_vector_cte_kv_cache)
{
    enum { B = 2, S = 3, H = 128, NQ = 2, NKV = 1, D = 32, I = (NQ + 2 * NKV) * D };
    for (int block = 0; block < 2; block++) {
        long L = block ? 4 : 5, bs = 2, rows = block ? L * bs : B * L, n = rows * NKV * D;
        float *x = kgt_randn(KG_BF16, B * S * H, 700 + block);
        float *W = kgt_randn(KG_BF16, H * I, 710);
        for (long i = 0; i < H * I; i++)
            W[i] = kgt_round_bf16(W[i] * 0.0884f);
        uint8_t *kc = malloc((size_t)n), *vc = malloc((size_t)n);
        float *kcf = malloc(sizeof(float) * n), *vcf = malloc(sizeof(float) * n);
        unsigned long long seed = 720;
        for (long i = 0; i < n; i++) {
            kc[i] = kg_f32_to_e4m3(kgt_normal(&seed)), vc[i] = kg_f32_to_e4m3(kgt_normal(&seed));
            kcf[i] = kg_e4m3_to_f32(kc[i]), vcf[i] = kg_e4m3_to_f32(vc[i]);
        }
        int32_t slots[B * S] = { 7, 0, 3, 4, 1, 6 };
        float sl[B * S], ks[128], vs[128];
        for (int i = 0; i < B * S; i++)
            sl[i] = (float)slots[i];
        for (int r = 0; r < 128; r++)
            ks[r] = 0.005f, vs[r] = 0.004f; /* |y / scale| passes the clamps */
        float *want = malloc(sizeof(float) * B * S * NQ * D);
        qkv_ref_opts o = { .H = H, .nq = NQ, .nkv = NKV, .d = D, .hidden_actual = H,
                           .quant_max = 240.0f, .eps = 1e-6f, .kv = 1 + block,
                           .block_size = block ? bs : 0, .kv_max = 200.0f, .kv_min = -220.0f,
                           .round_in = kgt_round_bf16 };
        qkv_ref(want, NULL, kc, vc, x, W, NULL, 1.0f, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                0.005f, 0.004f, block ? slots : NULL, &o, B, S, L);
        float *kw = malloc(sizeof(float) * n), *vw = malloc(sizeof(float) * n);
        for (long i = 0; i < n; i++)
            kw[i] = kg_e4m3_to_f32(kc[i]), vw[i] = kg_e4m3_to_f32(vc[i]);
        kgt_casew *w = kgt_casew_new("qkv_cte", block ? "kv_block" : "kv_flat");
        long xs[3] = { B, S, H }, wsh[2] = { H, I }, cs[3] = { block ? L : B, block ? bs : L,
                                                               NKV * D };
        long ss[2] = { 128, 1 }, sls[2] = { B, S }, os[3] = { B, S, NQ * D };
        kgt_casew_input(w, "hidden", "bf16", x, 3, xs);
        kgt_casew_input(w, "qkv_weights", "bf16", W, 2, wsh);
        kgt_casew_input(w, "k_cache", "fp8_e4m3", kcf, 3, cs);
        kgt_casew_input(w, "v_cache", "fp8_e4m3", vcf, 3, cs);
        kgt_casew_input(w, "k_scale", "f32", ks, 2, ss);
        kgt_casew_input(w, "v_scale", "f32", vs, 2, ss);
        if (block) {
            kgt_casew_input(w, "slot_mapping", "i32", sl, 2, sls);
            kgt_casew_opt_bool(w, "use_block_kv", 1);
            kgt_casew_opt_num(w, "block_size", (double)bs);
        }
        kgt_casew_opt_num(w, "d_head", D), kgt_casew_opt_num(w, "n_q_heads", NQ);
        kgt_casew_opt_num(w, "n_kv_heads", NKV);
        kgt_casew_opt_num(w, "fp8_max", 200.0), kgt_casew_opt_num(w, "fp8_min", -220.0);
        kgt_casew_opt_str(w, "kv_dtype", "float8_e4m3");
        kgt_casew_output(w, "out_q", want, 3, os, 2e-2, 1e-5);
        kgt_casew_output(w, "out_k_cache", kw, 3, cs, 1e-1, 1e-5);
        kgt_casew_output(w, "out_v_cache", vw, 3, cs, 1e-1, 1e-5);
        kgt_run_case(kgt_casew_finish(w), run_cte_vector);
        kgt_casew_free(w);
        free(x), free(W), free(kc), free(vc), free(kcf), free(vcf), free(want), free(kw), free(vw);
    }
}

