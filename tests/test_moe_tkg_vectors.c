/* tests/test_moe_tkg_vectors.c: the moe_tkg vector adapter: every shared/vectors/moe_tkg case,
 * and synthetic cases (util/casew.h) for what the shared sample lacks (ROW fp8 weights and
 * their scales, biases, clamps, eager affinities, a rank's share of the experts with the mask,
 * output_dtype, the hardware-only flags, MX weights, upstream's pre-quantized MX input with
 * hidden_input_scale), expected from tests/ref/moe_tkg_ref.c. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/dtype.h"
#include "kgen/kernels.h"
#include "kgen/kgen.h"
#include "ref/moe_ref.h"
#include "util/casew.h"
#include "util/experts.h"
#include "util/jitp.h"
#include "util/tensors.h"
#include "util/vectors.h"
#include "util/vecwt.h"
#include "util/weights.h"

TestSuite(moe_tkg, .init = kgt_suite_init, .fini = kgt_suite_fini);

static const char *const ACTS[] = { "SiLU", "GELU", "GELU_Tanh_Approx", "Swish" };

/* A clamp option under either spelling (moe_tkg.md's gate_clamp_upper, the kernels'
 * gate_clamp_upper_limit); 1 and *v if given. */
static int clamp_opt(kgt_case *c, const char *proj, const char *side, double *v)
{
    char a[64], b[64];
    snprintf(a, sizeof a, "%s_clamp_%s_limit", proj, side);
    snprintf(b, sizeof b, "%s_clamp_%s", proj, side);
    int ga = kgt_case_opt_num(c, a, v), gb = !ga && kgt_case_opt_num(c, b, v);
    return ga || gb;
}

/* An integer-sized option that must agree with the tensors (T, H, I, E, K). */
static void size_opt(kgt_case *c, const char *key, long have)
{
    double v;
    if (kgt_case_opt_num(c, key, &v))
        cr_assert(v == (double)have, "%s: option %s = %g but the tensors give %ld",
                  kgt_case_name(c), key, v, have);
}

/* Input `name` as fp32 values of weight format fmt: float values on the grid, or fp8 codes. */
static float *weight_values(kgt_case *c, const char *name, int fmt, long n)
{
    const kg_npy *a = kgt_case_input(c, name);
    cr_assert(a && kg_npy_count(a) == n, "%s: %s: %s", kgt_case_name(c), name,
              kgt_case_error(c));
    if (a->dtype == KG_F32)
        return kgt_case_as(c, name, KG_F32);
    uint8_t *q = kgt_case_codes8(c, name, fmt);
    float *v = malloc((size_t)n * sizeof *v);
    for (long i = 0; i < n; i++)
        v[i] = fmt == KG_WT_E4M3FN ? kg_e4m3fn_to_f32(q[i]) : kg_e4m3_to_f32(q[i]);
    free(q);
    return v;
}

static float *opt_input(kgt_case *c, const char *name)
{
    if (!kgt_case_input_dtype(c, name))
        return NULL;
    float *v = kgt_case_as(c, name, KG_F32);
    cr_assert(v, "%s: %s", kgt_case_name(c), kgt_case_error(c));
    return v;
}

/* Upstream's pre-quantized MX hidden_input (moe_tkg.md "hidden_input_scale"; the all-expert
 * MX kernel's own layout of the input): x4 words [128, H/512, T], element q of word (p, j, t)
 * the e4m3fn code of row h = q*H/4 + j*128 + p (or the words unpacked, [.., 4], as values on
 * the grid or codes; or logical codes [T, H]), with E8M0 scales hidden_input_scale
 * [16, H/512, T] (one per 8 partitions p) or [128, H/512, T] (broadcast over each 8), as the
 * kernel's mx_prequant input: codes [T, H] and scales *e8 [T, H/512, 16]. */
static uint8_t *mx_input(kgt_case *c, long T, long H, uint8_t **e8)
{
    const char *name = kgt_case_name(c);
    const kg_npy *a = kgt_case_input(c, "hidden_input");
    const kg_npy *sa = kgt_case_input(c, "hidden_input_scale");
    long J = H / 512;
    uint8_t *codes = malloc((size_t)(T * H)), *e = malloc((size_t)(T * J * 16));
    cr_assert(codes && e && sa);
    if (a->rank == 2) {
        uint8_t *q = kgt_case_codes8(c, "hidden_input", KG_WT_E4M3FN);
        memcpy(codes, q, (size_t)(T * H));
        free(q);
    } else {
        int words = a->rank == 3 && a->dtype != KG_F32;
        cr_assert((words || (a->rank == 4 && a->shape[3] == 4)) && a->shape[0] == 128 &&
                  a->shape[1] == J && a->shape[2] == T, "%s: pre-quantized hidden_input is "
                  "neither [128, %ld, %ld] words nor [.., 4]", name, J, T);
        uint32_t *w = words ? kgt_case_as(c, "hidden_input", KG_U32) : NULL;
        uint8_t *q = words ? NULL : kgt_case_codes8(c, "hidden_input", KG_WT_E4M3FN);
        cr_assert(w || q, "%s: hidden_input: %s", name, kgt_case_error(c));
        for (long p = 0; p < 128; p++)
            for (long j = 0; j < J; j++)
                for (long t = 0; t < T; t++)
                    for (long k = 0; k < 4; k++) {
                        long i = (p * J + j) * T + t;
                        codes[t * H + k * (H / 4) + j * 128 + p] =
                            w ? (uint8_t)(w[i] >> (8 * k)) : q[i * 4 + k];
                    }
        free(w), free(q);
    }
    long P = sa->shape[0];
    cr_assert(sa->rank == 3 && (P == 16 || P == 128) && sa->shape[1] == J && sa->shape[2] == T,
              "%s: hidden_input_scale is neither [16, %ld, %ld] nor [128, %ld, %ld]", name, J, T,
              J, T);
    uint32_t *s = kgt_case_as(c, "hidden_input_scale", KG_U32);
    cr_assert(s, "%s: hidden_input_scale: %s", name, kgt_case_error(c));
    for (long p = 0; p < P; p++)
        for (long j = 0; j < J; j++)
            for (long t = 0; t < T; t++) {
                long g = P == 16 ? p : p / 8, v = s[(p * J + j) * T + t];
                cr_assert(v <= 255 && (P == 16 || p % 8 == 0 || e[(t * J + j) * 16 + g] == v),
                          "%s: hidden_input_scale[%ld, %ld, %ld] = %ld: not an E8M0 code shared "
                          "by its 8 partitions", name, p, j, t, v);
                e[(t * J + j) * 16 + g] = (uint8_t)v;
            }
    free(s);
    *e8 = e;
    return codes;
}

static void run_vector(kgt_case *c)
{
    const char *name = kgt_case_name(c), *s;
    /* ---- options */
    int all = 0, mask = 0, post = 1, act = -1;
    kgt_case_opt_bool(c, "is_all_expert", &all);
    kgt_case_opt_bool(c, "mask_unselected_experts", &mask);
    if (kgt_case_opt_str(c, "expert_affinities_scaling_mode", &s)) {
        cr_assert(strstr(s, "NO_SCALE") || strstr(s, "POST_SCALE"), "%s: scaling mode %s is "
                  "not mapped (moe_tkg rejects PRE_SCALE*)", name, s);
        post = strstr(s, "POST_SCALE") != NULL;
    }
    s = "SiLU";
    kgt_case_opt_str(c, "activation_fn", &s);
    for (int i = 0; i < 4; i++)
        if (strstr(s, ACTS[i]) && (act < 0 || strlen(ACTS[i]) > strlen(ACTS[act])))
            act = i;
    cr_assert(act >= 0, "%s: activation_fn %s is not mapped", name, s);
    const char *quant = "NONE";
    if (!kgt_case_opt_str(c, "quantization_type", &quant))
        kgt_case_opt_str(c, "quantization", &quant);
    int row = strstr(quant, "ROW") != NULL;
    int mx = strstr(quant, "MX") != NULL && !strstr(quant, "STATIC");
    cr_assert(row || mx || strstr(quant, "NONE"), "%s: quantization %s is not mapped (STATIC "
              "is refused)", name, quant);
    double lim[4];
    int has[4] = { clamp_opt(c, "gate", "lower", &lim[0]), clamp_opt(c, "gate", "upper", &lim[1]),
                   clamp_opt(c, "up", "lower", &lim[2]), clamp_opt(c, "up", "upper", &lim[3]) };
    /* hardware scheduling, no CPU meaning (moe_tkg.md): the output's placement, dynamic
     * skipping of empty token blocks, LNC sharding, column tiling */
    static const char *const hw[] = { "output_in_sbuf", "is_all_expert_dynamic", "block_size",
                                      "use_column_tiling", "lnc", "shard_on_tokens" };
    for (size_t i = 0; i < sizeof hw / sizeof hw[0]; i++)
        kgt_case_opt_has(c, hw[i]);
    /* upstream's pre-quantized MX input: hidden_input e4m3fn x4 words with E8M0 scales */
    int preq = kgt_case_input_dtype(c, "hidden_input_scale") != NULL;
    cr_assert(!preq || (mx && all), "%s: hidden_input_scale (pre-quantized MX input) is MX "
              "all-expert only", name);
    /* ---- sizes */
    const kg_npy *hx = kgt_case_input(c, "hidden_input");
    const kg_npy *gu = kgt_case_input(c, "expert_gate_up_weights");
    const kg_npy *dn = kgt_case_input(c, "expert_down_weights");
    /* MX weights may come in upstream's layouts (moe_cte.md "MX variants"): gate/up words
     * [E_L, 128, 2, H/512, I] (or unpacked, [.., 4]), down [E_L, I_p, ceil(I/512), H] */
    cr_assert(hx && gu && dn && (hx->rank == 2 || preq) &&
              (gu->rank == 4 || (mx && gu->rank >= 5)) && dn->rank >= 3, "%s: hidden_input "
              "[T, H], expert_gate_up_weights [E_L, H, 2, I]%s, expert_down_weights [E_L, I, H]: "
              "%s", name, mx ? " or MX words" : "", kgt_case_error(c));
    long T = hx->shape[0], H = hx->shape[1], EL = gu->shape[0];
    if (preq && hx->rank >= 3) /* upstream's words [128, H/512, T] (or unpacked, [.., 4]) */
        T = hx->shape[2], H = 512 * hx->shape[1];
    long I = gu->rank == 4 ? gu->shape[3] : gu->shape[4];
    cr_assert(mx || (gu->shape[1] == H && gu->shape[2] == 2 && dn->rank == 3 &&
                     dn->shape[0] == EL && dn->shape[1] == I && dn->shape[2] == H),
              "%s: weight shapes disagree", name);
    const kg_npy *ia = kgt_case_input(c, "expert_index");
    cr_assert(ia && ia->rank == 2 && ia->shape[0] == T, "%s: expert_index [T, K]", name);
    long K = ia->shape[1], E = EL;
    const kg_npy *aa = kgt_case_input_dtype(c, "expert_affinities")
                       ? kgt_case_input(c, "expert_affinities") : NULL;
    if (aa)
        E = aa->shape[aa->rank - 1];
    size_opt(c, "T", T), size_opt(c, "H", H), size_opt(c, "I", I), size_opt(c, "E", E);
    size_opt(c, "K", K);
    /* ---- dtypes */
    static const char *const hn[] = { "hidden_input", "expert_gate_up_bias",
                                      "expert_down_bias" };
    /* pre-quantized: hidden_input is codes, dtype is the biases' (bf16 without them) */
    int t = preq && !kgt_case_input_dtype(c, hn[1]) && !kgt_case_input_dtype(c, hn[2])
            ? KG_BF16 : kgt_case_float_dtype(c, preq ? hn + 1 : hn, preq ? 2 : 3);
    cr_assert(t >= 0, "%s: %s", name, kgt_case_error(c));
    static const char *const wn[] = { "expert_gate_up_weights", "expert_down_weights" };
    int fmt;
    if (mx) {
        fmt = kgt_case_wt_fmt(c, "expert_gate_up_weights");
        if (fmt < 0)
            fmt = kgt_case_x4_word_fmt(c, "expert_gate_up_weights");
        cr_assert(fmt == KG_WT_E4M3FN || fmt == KG_WT_E5M2 || fmt == KG_WT_E2M1, "%s: MX weight "
                  "dtype %s is not e4m3fn, e5m2 or e2m1", name,
                  kgt_case_input_dtype(c, "expert_gate_up_weights"));
    } else if (row) {
        fmt = kgt_case_wt_fmt(c, "expert_gate_up_weights");
        fmt = fmt == KG_WT_E4M3FN ? fmt : KG_WT_E4M3;
    } else {
        int wt = kgt_case_float_dtype(c, wn, 2);
        cr_assert(wt >= 0, "%s: %s", name, kgt_case_error(c));
        fmt = wt == KG_F32 ? KG_WT_F32 : wt == KG_F16 ? KG_WT_F16 : KG_WT_BF16;
    }
    static const char *const an[] = { "expert_affinities" };
    int at = aa ? kgt_case_float_dtype(c, an, 1) : KG_F32;
    cr_assert(at >= 0, "%s: %s", name, kgt_case_error(c));
    int ot = KG_F32; /* the golden is fp32: compare at full precision unless told */
    if (kgt_case_opt_str(c, "output_dtype", &s)) {
        ot = kgt_case_dtype_from_name(s);
        cr_assert(ot == KG_F32 || ot == KG_BF16 || ot == KG_F16, "%s: output_dtype %s", name, s);
    }
    /* ---- tensors */
    float *x = preq ? NULL : kgt_case_as(c, "hidden_input", KG_F32);
    uint8_t *e8 = NULL, *codes = preq ? mx_input(c, T, H, &e8) : NULL;
    float *wgu = mx ? NULL : weight_values(c, "expert_gate_up_weights", fmt, EL * H * 2 * I);
    float *wd = mx ? NULL : weight_values(c, "expert_down_weights", fmt, EL * I * H);
    int32_t *idx = kgt_case_as(c, "expert_index", KG_I32);
    float *aff = aa ? kgt_case_as(c, "expert_affinities", KG_F32) : NULL;
    uint32_t *rk = kgt_case_input_dtype(c, "rank_id") ? kgt_case_as(c, "rank_id", KG_U32) : NULL;
    float *bgu = opt_input(c, "expert_gate_up_bias"), *bd = opt_input(c, "expert_down_bias");
    float *sgu = row ? opt_input(c, "expert_gate_up_weights_scale") : NULL;
    float *sd = row ? opt_input(c, "expert_down_weights_scale") : NULL;
    float *eager = opt_input(c, "expert_affinities_eager");
    int has_s = kgt_case_input_dtype(c, "expert_gate_up_weights_scale") != NULL,
        has_d = kgt_case_input_dtype(c, "expert_down_weights_scale") != NULL;
    cr_assert((x || codes) && (mx || (wgu && wd)) && idx, "%s: %s", name, kgt_case_error(c));
    cr_assert(!(row || mx) || (has_s && has_d), "%s: %s needs both weight scales", name, quant);
    cr_assert(row || mx || (!has_s && !has_d), "%s: weight scales without ROW or MX", name);
    if (mx && bgu)
        bgu = kgt_case_mx_gate_up_bias(c, "expert_gate_up_bias", bgu, EL, I);
    cr_assert(!all || rk || !post, "%s: all-expert POST_SCALE needs rank_id", name);
    long rank = rk ? (long)rk[0] : 0;

    char problem[1024];
    int n = snprintf(problem, sizeof problem, "moe_tkg:dtype=%s,quantization_type=%s,"
                     "weight_dtype=%s,affinity_dtype=%s,out_dtype=%s,H=%ld,I=%ld,E=%ld,E_L=%ld,"
                     "K=%ld,is_all_expert=%s,expert_affinities_scaling_mode=%s,"
                     "mask_unselected_experts=%s,use_eager_affinities=%s,activation_fn=%s,"
                     "gate_up_bias=%s,down_bias=%s,mx_prequant=%s", kg_dtype_name((kg_dtype)t),
                     row ? "ROW" : mx ? "MX" : "NONE", kg_wt_fmt_name(fmt), kg_dtype_name((kg_dtype)at),
                     kg_dtype_name((kg_dtype)ot), H, I, E, EL, K, all ? "true" : "false",
                     post ? "POST_SCALE" : "NO_SCALE", mask ? "true" : "false",
                     eager ? "true" : "false", ACTS[act], bgu ? "true" : "false",
                     bd ? "true" : "false", preq ? "true" : "false");
    static const char *const ck[] = { "gate_clamp_lower_limit", "gate_clamp_upper_limit",
                                      "up_clamp_lower_limit", "up_clamp_upper_limit" };
    for (int i = 0; i < 4; i++)
        if (has[i])
            n += snprintf(problem + n, sizeof problem - (size_t)n, ",%s=%.9g", ck[i], lim[i]);
    const kg_kernel *k = kgt_jit(problem);
    kg_wt pgu, pd;
    if (mx) {
        kgt_case_experts_wt(c, "expert_gate_up_weights", "expert_gate_up_weights_scale", fmt,
                            KG_WL_MOE_MX_GATE_UP, EL, H, 2 * I, &pgu);
        kgt_case_experts_wt(c, "expert_down_weights", "expert_down_weights_scale", fmt,
                            KG_WL_MLP_MX_DOWN, EL, I, H, &pd);
    } else {
        kgt_pack_experts(&pgu, fmt, EL, H, 2 * I, wgu);
        kgt_pack_experts(&pd, fmt, EL, I, H, wd);
    }
    void *xe = preq ? codes : kgt_encode((kg_dtype)t, x, T * H);
    void *ae = aa ? kgt_encode((kg_dtype)at, aff, T * E) : NULL;
    void *bge = bgu ? kgt_encode((kg_dtype)t, bgu, EL * 2 * I) : NULL;
    void *bde = bd ? kgt_encode((kg_dtype)t, bd, EL * H) : NULL;
    void *out = kgt_poisoned((kg_dtype)ot, T * H);
    uint32_t r32 = (uint32_t)rank;
    int rc = ((kg_moe_tkg_fn *)k->fn)(out, xe, &pgu, &pd, ae, idx, &r32, bge, bde, sgu, sd, e8,
                                      eager, T);
    cr_assert_eq(rc, KG_OK, "%s: %s returned %d", name, k->name, rc);
    char msg[1024];
    int ok = kgt_close_to_case(c, "out_out", (kg_dtype)ot, out, msg, sizeof msg);
    cr_assert(ok > 0, "vector %s (%s): %s", name, k->name, ok < 0 ? "no tolerance" : msg);
    kg_wt_free(&pgu), kg_wt_free(&pd);
    free(x), free(wgu), free(wd), free(idx), free(aff), free(rk), free(bgu), free(bd);
    free(sgu), free(sd), free(eager), free(xe), free(e8), free(ae), free(bge), free(bde);
    free(out);
}

Test(moe_tkg, shared_vectors) { kgt_each_case("moe_tkg", run_vector); }

/* ---- synthetic cases ------------------------------------------------------------------------ */

typedef struct syn {
    int all, post, mask, eager, act, row, bias, clamp, ranks;
    const char *out_dtype; /* NULL: not given */
} syn;

static void synthetic(const char *cname, const syn *o, unsigned long long seed)
{
    enum { T = 5, H = 64, I = 40, K = 2 };
    long E = 6, EL = o->ranks > 1 ? E / o->ranks : E, rank = o->ranks > 1 ? 1 : 0;
    int fmt = o->row ? KG_WT_E4M3 : KG_WT_BF16;
    float *x = kgt_randn(KG_BF16, T * H, seed);
    float *wgu = kgt_randn_fmt(fmt, EL * H * 2 * I, o->row ? 2.0f : 0.1f, seed + 1);
    float *wd = kgt_randn_fmt(fmt, EL * I * H, o->row ? 2.0f : 0.1f, seed + 2);
    float *bgu = kgt_randn(KG_BF16, EL * 2 * I, seed + 3), *bd = kgt_randn(KG_BF16, EL * H, seed + 4);
    float *sgu = malloc(sizeof(float) * (size_t)(EL * 2 * I)), *sd = malloc(sizeof(float) * (size_t)(EL * H));
    for (long i = 0; i < EL * 2 * I; i++)
        sgu[i] = 0.03f + 0.0001f * (float)(i % 97);
    for (long i = 0; i < EL * H; i++)
        sd[i] = 0.04f + 0.0001f * (float)(i % 89);
    float aff[T * 6], eager[T * K], idxf[T * K], rankf = (float)rank;
    int32_t idx[T * K];
    for (long t = 0; t < T; t++) {
        idx[t * K] = (int32_t)((t * 5 + 1) % E), idx[t * K + 1] = (int32_t)((t * 5 + 3) % E);
        for (long e = 0; e < E; e++) {
            int named = idx[t * K] == e || idx[t * K + 1] == e;
            aff[t * E + e] = kgt_round_bf16(named || o->mask ? 0.125f * (float)(1 + (t + e) % 7) : 0);
        }
        for (long k = 0; k < K; k++)
            eager[t * K + k] = aff[t * E + idx[t * K + k]], idxf[t * K + k] = (float)idx[t * K + k];
    }
    moe_ref_opts ro = { o->all, o->post, o->mask, o->eager, o->act,
                        o->clamp ? -1.5f : -INFINITY, o->clamp ? 0.75f : INFINITY,
                        o->clamp ? -0.5f : -INFINITY, o->clamp ? 1.25f : INFINITY,
                        kgt_round_bf16, 0 };
    float *want = malloc(sizeof(float) * T * H);
    moe_tkg_ref(want, x, wgu, wd, aff, idx, rank, o->bias ? bgu : NULL, o->bias ? bd : NULL,
                o->row ? sgu : NULL, o->row ? sd : NULL, eager, &ro, T, H, I, E, EL, K);
    kgt_casew *w = kgt_casew_new("moe_tkg", cname);
    long xs[2] = { T, H }, gus[4] = { EL, H, 2, I }, ds[3] = { EL, I, H }, as[2] = { T, E };
    long ks[2] = { T, K }, rs[2] = { 1, 1 }, bgs[3] = { EL, 2, I }, bds[2] = { EL, H };
    const char *wdt = o->row ? "fp8_e4m3" : "bf16";
    kgt_casew_input(w, "hidden_input", "bf16", x, 2, xs);
    kgt_casew_input(w, "expert_gate_up_weights", wdt, wgu, 4, gus);
    kgt_casew_input(w, "expert_down_weights", wdt, wd, 3, ds);
    if (o->post && !o->eager)
        kgt_casew_input(w, "expert_affinities", "bf16", aff, 2, as);
    kgt_casew_input(w, "expert_index", "i32", idxf, 2, ks);
    if (o->all)
        kgt_casew_input(w, "rank_id", "u32", &rankf, 2, rs);
    if (o->bias) {
        kgt_casew_input(w, "expert_gate_up_bias", "bf16", bgu, 3, bgs);
        kgt_casew_input(w, "expert_down_bias", "bf16", bd, 2, bds);
    }
    if (o->row) {
        kgt_casew_input(w, "expert_gate_up_weights_scale", "f32", sgu, 3, bgs);
        kgt_casew_input(w, "expert_down_weights_scale", "f32", sd, 2, bds);
        kgt_casew_opt_str(w, "quantization_type", "ROW");
    }
    if (o->eager)
        kgt_casew_input(w, "expert_affinities_eager", "f32", eager, 2, ks);
    kgt_casew_opt_num(w, "T", T), kgt_casew_opt_num(w, "H", H), kgt_casew_opt_num(w, "I", I);
    kgt_casew_opt_num(w, "K", K);
    kgt_casew_opt_bool(w, "is_all_expert", o->all);
    kgt_casew_opt_bool(w, "mask_unselected_experts", o->mask);
    kgt_casew_opt_str(w, "expert_affinities_scaling_mode", o->post ? "POST_SCALE" : "NO_SCALE");
    kgt_casew_opt_str(w, "activation_fn", ACTS[o->act]);
    if (o->clamp) {
        kgt_casew_opt_num(w, "gate_clamp_lower_limit", -1.5);
        kgt_casew_opt_num(w, "gate_clamp_upper_limit", 0.75);
        kgt_casew_opt_num(w, "up_clamp_lower", -0.5); /* moe_tkg.md's spelling */
        kgt_casew_opt_num(w, "up_clamp_upper", 1.25);
    }
    kgt_casew_opt_bool(w, "output_in_sbuf", 0);
    kgt_casew_opt_bool(w, "is_all_expert_dynamic", 0);
    if (o->out_dtype) {
        kgt_casew_opt_str(w, "output_dtype", o->out_dtype);
        for (long i = 0; i < T * H; i++)
            want[i] = kgt_round((kg_dtype)kgt_case_dtype_from_name(o->out_dtype), want[i]);
    }
    kgt_casew_output(w, "out_out", want, 2, xs, o->row ? 5e-2 : 2e-2, 1e-5);
    kgt_run_case(kgt_casew_finish(w), run_vector);
    kgt_casew_free(w);
    free(x), free(wgu), free(wd), free(bgu), free(bd), free(sgu), free(sd), free(want);
}

Test(moe_tkg, synthetic_vectors_every_option)
{
    static const syn cases[] = {
        { 0, 1, 0, 0, 0, 1, 1, 1, 1, NULL },   /* selective ROW, biases, clamps */
        { 0, 1, 0, 1, 3, 0, 0, 0, 1, "bf16" }, /* selective eager, Swish, bf16 output */
        { 1, 1, 1, 0, 1, 1, 0, 0, 2, NULL },   /* all-expert rank 1 of 2, masked, ROW, GELU */
        { 1, 0, 0, 0, 2, 0, 1, 1, 1, "f32" },  /* all-expert NO_SCALE, gelu_tanh */
    };
    char cname[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(cname, sizeof cname, "synthetic_%zu", i);
        synthetic(cname, &cases[i], 700 + i);
    }
}

/* ---- synthetic MX cases: upstream's MX layouts ------------------------------------------------ */

/* hidden_input x [T, H] pre-quantized as upstream's all-expert MX kernel takes it: e4m3fn x4
 * words [128, H/512, T] (dtype float8_e4m3fn_x4) and E8M0 scales hidden_input_scale
 * [P, H/512, T], P = 16 (one per 8 partitions) or 128 (each broadcast over its 8). */
static void prequant_input(kgt_casew *w, const float *x, long T, long H, long P)
{
    long J = H / 512;
    uint8_t *codes = malloc((size_t)(T * H)), *e8 = malloc((size_t)(T * J * 16));
    uint32_t *words = malloc((size_t)(128 * J * T) * sizeof *words);
    uint8_t *sc = malloc((size_t)(P * J * T));
    cr_assert(codes && e8 && words && sc);
    kgt_mx_quantize_hidden(codes, e8, x, T, H);
    for (long p = 0; p < 128; p++)
        for (long j = 0; j < J; j++)
            for (long t = 0; t < T; t++) {
                uint32_t v = 0;
                for (long q = 0; q < 4; q++)
                    v |= (uint32_t)codes[t * H + q * (H / 4) + j * 128 + p] << (8 * q);
                words[(p * J + j) * T + t] = v;
            }
    for (long p = 0; p < P; p++)
        for (long j = 0; j < J; j++)
            for (long t = 0; t < T; t++)
                sc[(p * J + j) * T + t] = e8[(t * J + j) * 16 + (P == 16 ? p : p / 8)];
    kg_npy a = { KG_U32, 3, { 128, J, T }, words }, sa = { KG_U8, 3, { P, J, T }, sc };
    kgt_casew_input_npy(w, "hidden_input", "float8_e4m3fn_x4", &a);
    kgt_casew_input_npy(w, "hidden_input_scale", "u8", &sa);
    free(codes), free(e8), free(words), free(sc);
}

/* preq: 0, or the pre-quantized input's scale rows (16 or 128; all-expert only) */
static void synthetic_mx(const char *cname, int all, int post, int fmt, long I, long preq,
                         unsigned long long seed)
{
    enum { T = 3, H = 512, K = 2 };
    long E = 4;
    float *x = kgt_randn(KG_BF16, T * H, seed), *bgu = kgt_randn(KG_BF16, E * 2 * I, seed + 3);
    float *wgu = malloc(sizeof(float) * (size_t)(E * H * 2 * I));
    float *wd = malloc(sizeof(float) * (size_t)(E * I * H));
    cr_assert(wgu && wd);
    kgt_casew *w = kgt_casew_new("moe_tkg", cname);
    long xs[2] = { T, H }, as[2] = { T, E }, ks[2] = { T, K }, rs[2] = { 1, 1 };
    if (preq)
        prequant_input(w, x, T, H, preq);
    else
        kgt_casew_input(w, "hidden_input", "bf16", x, 2, xs);
    kgt_casew_mx_experts(w, "expert_gate_up_weights", "expert_gate_up_weights_scale", fmt,
                         KG_WL_MOE_MX_GATE_UP, E, H, 2 * I, wgu, seed + 10);
    kgt_casew_mx_experts(w, "expert_down_weights", "expert_down_weights_scale", fmt,
                         KG_WL_MLP_MX_DOWN, E, I, H, wd, seed + 20);
    kgt_casew_mx_gate_up_bias(w, "expert_gate_up_bias", "bf16", bgu, E, I);
    float aff[T * 4], idxf[T * K], rankf = 0;
    int32_t idx[T * K];
    for (long t = 0; t < T; t++) {
        idx[t * K] = (int32_t)(t % E), idx[t * K + 1] = (int32_t)((t + 2) % E);
        for (long e = 0; e < E; e++)
            aff[t * E + e] = idx[t * K] == e || idx[t * K + 1] == e
                             ? kgt_round_bf16(0.25f + 0.125f * (float)e) : 0.0f;
        idxf[t * K] = (float)idx[t * K], idxf[t * K + 1] = (float)idx[t * K + 1];
    }
    if (post)
        kgt_casew_input(w, "expert_affinities", "bf16", aff, 2, as);
    kgt_casew_input(w, "expert_index", "i32", idxf, 2, ks);
    if (all)
        kgt_casew_input(w, "rank_id", "u32", &rankf, 2, rs);
    kgt_casew_opt_str(w, "quantization_type", "MX");
    kgt_casew_opt_bool(w, "is_all_expert", all);
    kgt_casew_opt_bool(w, "mask_unselected_experts", all && post);
    kgt_casew_opt_str(w, "expert_affinities_scaling_mode", post ? "POST_SCALE" : "NO_SCALE");
    kgt_casew_opt_str(w, "activation_fn", "Swish");
    moe_ref_opts ro = { all, post, all && post, 0, 3, -INFINITY, INFINITY, -INFINITY, INFINITY,
                        kgt_round_bf16, 1 };
    float *want = malloc(sizeof(float) * T * H);
    moe_tkg_ref(want, x, wgu, wd, post ? aff : NULL, idx, 0, bgu, NULL, NULL, NULL, NULL, &ro,
                T, H, I, E, E, K);
    kgt_casew_output(w, "out_out", want, 2, xs, 5e-2, 1e-5);
    kgt_run_case(kgt_casew_finish(w), run_vector);
    kgt_casew_free(w);
    free(x), free(bgu), free(wgu), free(wd), free(want);
}

Test(moe_tkg, synthetic_vectors_mx)
{
    synthetic_mx("synthetic_mx_fp4_selective", 0, 1, KG_WT_E2M1, 64, 0, 900);
    synthetic_mx("synthetic_mx_e4m3fn_all", 1, 1, KG_WT_E4M3FN, 512, 0, 910);
    synthetic_mx("synthetic_mx_e5m2_noscale", 0, 0, KG_WT_E5M2, 96, 0, 920);
}

/* upstream's pre-quantized MX input (hidden_input_scale): all-expert, the scales one per 8
 * partitions and broadcast over them; the golden quantizes the bf16 rows itself, as upstream's
 * reference does */
Test(moe_tkg, synthetic_vectors_mx_prequantized_input)
{
    synthetic_mx("synthetic_mx_prequant_e4m3fn", 1, 1, KG_WT_E4M3FN, 64, 16, 930);
    synthetic_mx("synthetic_mx_prequant_fp4_noscale", 1, 0, KG_WT_E2M1, 512, 128, 940);
}
