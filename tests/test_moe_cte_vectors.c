/* tests/test_moe_cte_vectors.c: the moe_cte vector adapter: every shared/vectors/moe_cte case,
 * and synthetic cases (util/casew.h) for what the shared sample lacks (biases, clamps, Swish and
 * the GELUs, NO_SCALE, PRE_SCALE(_DELAYED), multiply_on_I, fp8 weights with per-expert and
 * shared scales, a padded down_proj_weight, skip_token, conditions, overwriting updates, the
 * dropping variant, the checkpoint outputs, MX weights in upstream's MX layouts: words, E8M0
 * scales and the MX gate/up bias), expected from tests/ref/moe_cte_ref.c.
 * Row T of upstream's output is scratch (moe_cte.md): the kernel leaves it untouched, so the
 * adapter starts that row as the golden's; a padding slot's checkpoint entries are 0 from the
 * kernel, so they are compared as 0. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/dtype.h"
#include "kgen/kernels.h"
#include "kgen/kgen.h"
#include "kgen/moe_blocks.h"
#include "ref/moe_ref.h"
#include "util/casew.h"
#include "util/compare.h"
#include "util/experts.h"
#include "util/jitp.h"
#include "util/tensors.h"
#include "util/vectors.h"
#include "util/vecwt.h"

TestSuite(moe_cte, .init = kgt_suite_init, .fini = kgt_suite_fini);

static const char *const ACTS[] = { "SiLU", "GELU", "GELU_Tanh_Approx", "Swish" };
static const char *const MODES[] = { "NO_SCALE", "POST_SCALE", "PRE_SCALE",
                                     "PRE_SCALE_DELAYED" };

/* The longest name of names[n] that s contains (enum reprs as "<ActFnType.SiLU: 0>"), or -1. */
static int enum_in(const char *s, const char *const *names, int n)
{
    int best = -1;
    for (int i = 0; i < n; i++)
        if (strstr(s, names[i]) && (best < 0 || strlen(names[i]) > strlen(names[best])))
            best = i;
    return best;
}

/* A clamp option under either spelling (moe_cte.md's gate_clamp_upper, the kernels'
 * gate_clamp_upper_limit); 1 and *v if given. */
static int clamp_opt(kgt_case *c, const char *proj, const char *side, double *v)
{
    char a[64], b[64];
    snprintf(a, sizeof a, "%s_clamp_%s_limit", proj, side);
    snprintf(b, sizeof b, "%s_clamp_%s", proj, side);
    int ga = kgt_case_opt_num(c, a, v), gb = !ga && kgt_case_opt_num(c, b, v);
    return ga || gb;
}

static void size_opt(kgt_case *c, const char *key, long have)
{
    double v;
    if (kgt_case_opt_num(c, key, &v))
        cr_assert(v == (double)have, "%s: option %s = %g but the tensors give %ld",
                  kgt_case_name(c), key, v, have);
}

static float *opt_input(kgt_case *c, const char *name)
{
    if (!kgt_case_input_dtype(c, name))
        return NULL;
    float *v = kgt_case_as(c, name, KG_F32);
    cr_assert(v, "%s: %s", kgt_case_name(c), kgt_case_error(c));
    return v;
}

/* A checkpoint output against the case's golden, padding slots' entries (slot_of(i) padding)
 * taken as 0, at the case's tolerance. */
static void check_ckpt(kgt_case *c, const char *out_name, kg_dtype t, const void *got, long n,
                       const int32_t *tpi, long T, long B, long stop, int gate_up, long I,
                       long H)
{
    if (!kgt_case_has_output(c, out_name))
        return;
    const kg_npy *g = kgt_case_output(c, out_name);
    cr_assert(g && kg_npy_count(g) == n, "%s: %s: %s", kgt_case_name(c), out_name,
              kgt_case_error(c));
    float *want = malloc((size_t)n * sizeof *want), *gv = kgt_decode(t, got, n);
    memcpy(want, g->data, (size_t)n * sizeof *want);
    for (long i = 0; i < n; i++) {
        long s = gate_up ? (i / (2 * I * B)) * B + i % B : i / H;
        long id = tpi[s];
        if (s < stop * B && (id < 0 || id >= T))
            want[i] = 0;
        want[i] = kgt_round(t, want[i]);
    }
    double rtol, atol;
    cr_assert(kgt_case_tol(c, out_name, &rtol, &atol), "%s: no tolerance for %s",
              kgt_case_name(c), out_name);
    /* the blocks past the stop are not computed (blocks are outermost in both layouts) */
    long ran = stop * (gate_up ? 2 * I * B : B * H);
    cr_assert_gt(ran, 0, "%s: %s: no block ran", kgt_case_name(c), out_name);
    char msg[1024];
    cr_assert(kgt_allclose(gv, want, ran, rtol, atol, msg, sizeof msg), "vector %s: %s: %s",
              kgt_case_name(c), out_name, msg);
    kgt_case_compared(c, out_name);
    free(want), free(gv);
}

static void run_vector(kgt_case *c)
{
    const char *name = kgt_case_name(c), *s;
    /* ---- options */
    int act = 0, mode = 1, bias = 0, acc = 1, ckpt = 0, moi = 0, skip = 0, drop = 0;
    if (kgt_case_opt_str(c, "activation_function", &s)) {
        act = enum_in(s, ACTS, 4);
        cr_assert(act >= 0, "%s: activation_function %s is not mapped", name, s);
    }
    if (kgt_case_opt_str(c, "expert_affinities_scaling_mode", &s)) {
        mode = enum_in(s, MODES, 4);
        cr_assert(mode >= 0, "%s: scaling mode %s is not mapped", name, s);
    }
    kgt_case_opt_bool(c, "bias", &bias);
    kgt_case_opt_bool(c, "is_tensor_update_accumulating", &acc);
    kgt_case_opt_bool(c, "checkpoint_activation", &ckpt);
    kgt_case_opt_bool(c, "expert_affinity_multiply_on_I", &moi);
    if (kgt_case_opt_str(c, "skip_dma", &s)) {
        /* "none", "skip_token", "skip_weight", "both", or SkipMode(skip_token=.., ..) */
        skip = strcmp(s, "skip_token") == 0 || strcmp(s, "both") == 0 ||
               strstr(s, "skip_token=True") != NULL;
        cr_assert(skip || !strcmp(s, "none") || !strcmp(s, "skip_weight") ||
                  strstr(s, "skip_token=False"), "%s: skip_dma %s is not mapped", name, s);
    }
    int mx = 0; /* MX weights: named by the variant, the option or the weights' dtype */
    if (kgt_case_opt_str(c, "bwmm_func", &s)) {
        /* shard-on-I / shard-on-block / hybrid (and their *_mx): the same math on a CPU */
        drop = strstr(s, "DROP") != NULL;
        mx |= strstr(s, "MX") != NULL || strstr(s, "mx") != NULL;
    }
    if (kgt_case_opt_str(c, "implementation", &s))
        mx |= strstr(s, "MX") != NULL || strstr(s, "mx") != NULL;
    if (kgt_case_opt_str(c, "quantization_type", &s))
        mx |= strstr(s, "MX") != NULL && !strstr(s, "STATIC");
    int dflag = 0;
    if (kgt_case_opt_bool(c, "capacity_dropping", &dflag))
        drop |= dflag;
    double lim[4];
    int has[4] = { clamp_opt(c, "gate", "lower", &lim[0]), clamp_opt(c, "gate", "upper", &lim[1]),
                   clamp_opt(c, "up", "lower", &lim[2]), clamp_opt(c, "up", "upper", &lim[3]) };
    /* hardware scheduling, no CPU meaning (moe_cte.md "Hardware scheduling") */
    static const char *const hw[] = { "implementation", "n_block_per_iter",
                                      "block_sharding_strategy", "n_static_blocks",
                                      "n_dynamic_blocks", "num_static_block", "compute_dtype",
                                      "lnc", "lnc_degree" };
    for (size_t i = 0; i < sizeof hw / sizeof hw[0]; i++)
        kgt_case_opt_has(c, hw[i]);
    /* ---- sizes */
    const kg_npy *hx = kgt_case_input(c, "hidden_states");
    const kg_npy *gu = kgt_case_input(c, "gate_up_proj_weight");
    const kg_npy *dn = kgt_case_input(c, "down_proj_weight");
    const kg_npy *tp = kgt_case_input(c, "token_position_to_id");
    const char *wdt = gu ? kgt_case_input_dtype(c, "gate_up_proj_weight") : NULL;
    int wfmt = gu ? kgt_case_wt_fmt(c, "gate_up_proj_weight") : -1;
    /* x4 words, fp4 / e5m2 codes, upstream's MX layouts (rank 5 and up): MX weights */
    mx |= (wdt && strstr(wdt, "x4")) || wfmt == KG_WT_E2M1 || wfmt == KG_WT_E5M2 ||
          (gu && gu->rank >= 5);
    /* MX weights may come in upstream's layouts (moe_cte.md "MX variants"): gate/up words
     * [E, 128, 2, H/512, I] (or unpacked, [.., 4]), down [E, I_p, ceil(I/512), H] */
    cr_assert(hx && gu && dn && tp && hx->rank == 2 && (gu->rank == 4 || (mx && gu->rank >= 5))
              && dn->rank >= 3, "%s: hidden_states [R, H], gate_up_proj_weight [E, H, 2, I]%s, "
              "down_proj_weight [E, I_pad, H]: %s", name, mx ? " or MX words" : "",
              kgt_case_error(c));
    long R = hx->shape[0], H = hx->shape[1], E = gu->shape[0];
    long I = gu->rank == 4 ? gu->shape[3] : gu->shape[4];
    long T = skip ? R : R - 1, Ip = mx ? I : dn->shape[1];
    cr_assert(mx || (gu->shape[1] == H && gu->shape[2] == 2 && dn->rank == 3 &&
                     dn->shape[0] == E && Ip >= I && dn->shape[2] == H),
              "%s: weight shapes disagree", name);
    double bs;
    cr_assert(kgt_case_opt_num(c, "block_size", &bs) && bs >= 1, "%s: block_size", name);
    long B = (long)bs, NB = (long)kg_npy_count(tp);
    cr_assert(NB % B == 0, "%s: token_position_to_id holds %ld slots, not blocks of %ld", name,
              NB, B);
    long N = NB / B;
    double k;
    if (kgt_case_opt_num(c, "top_k", &k))
        cr_assert(k >= 1 && k <= E, "%s: top_k %g", name, k);
    long K = kgt_case_opt_num(c, "top_k", &k) ? (long)k : 1;
    size_opt(c, "T", T), size_opt(c, "H", H), size_opt(c, "I", I), size_opt(c, "E", E);
    /* ---- dtypes */
    static const char *const hn[] = { "hidden_states", "expert_affinities_masked",
                                      "gate_and_up_proj_bias", "down_proj_bias" };
    int t = kgt_case_float_dtype(c, hn, 4);
    cr_assert(t >= 0, "%s: %s", name, kgt_case_error(c));
    int fmt;
    if (mx) {
        fmt = wfmt >= 0 ? wfmt : kgt_case_x4_word_fmt(c, "gate_up_proj_weight");
        cr_assert(fmt == KG_WT_E4M3FN || fmt == KG_WT_E5M2 || fmt == KG_WT_E2M1, "%s: MX "
                  "weight dtype %s is not e4m3fn, e5m2 or e2m1", name, wdt);
    } else {
        int wt = kgt_case_dtype(c, "gate_up_proj_weight");
        fmt = wt == KG_E4M3 ? KG_WT_E4M3 : wt == KG_E4M3FN ? KG_WT_E4M3FN : wt == KG_F32
              ? KG_WT_F32 : wt == KG_F16 ? KG_WT_F16 : KG_WT_BF16;
        cr_assert(wt >= 0 && wt == kgt_case_dtype(c, "down_proj_weight"), "%s: weight dtypes",
                  name);
    }
    /* ---- tensors */
    float *x = kgt_case_as(c, "hidden_states", KG_F32);
    float *aff = opt_input(c, "expert_affinities_masked");
    float *wgu = mx ? NULL : kgt_case_as(c, "gate_up_proj_weight", KG_F32);
    float *wdp = mx ? NULL : kgt_case_as(c, "down_proj_weight", KG_F32);
    int32_t *tpi = kgt_case_as(c, "token_position_to_id", KG_I32);
    int32_t *b2e = kgt_case_input_dtype(c, "block_to_expert")
                   ? kgt_case_as(c, "block_to_expert", KG_I32) : NULL;
    int32_t *cond = kgt_case_input_dtype(c, "conditions")
                    ? kgt_case_as(c, "conditions", KG_I32) : NULL;
    float *bgu = opt_input(c, "gate_and_up_proj_bias"), *bd = opt_input(c, "down_proj_bias");
    float *sgu = mx ? NULL : opt_input(c, "gate_up_proj_scale");
    float *sd = mx ? NULL : opt_input(c, "down_proj_scale");
    cr_assert(x && (mx || (wgu && wdp)) && tpi, "%s: %s", name, kgt_case_error(c));
    cr_assert(!bias == !bgu && !bias == !bd, "%s: bias = %d but the biases are %s", name, bias,
              bgu ? "given" : "absent");
    if (mx && bgu)
        bgu = kgt_case_mx_gate_up_bias(c, "gate_and_up_proj_bias", bgu, E, I);
    int fp8 = !mx && (fmt == KG_WT_E4M3 || fmt == KG_WT_E4M3FN);
    cr_assert(fp8 == (sgu && sd), "%s: fp8 weights go with both scales", name);
    cr_assert(!mx || (kgt_case_input_dtype(c, "gate_up_proj_scale") &&
                      kgt_case_input_dtype(c, "down_proj_scale")), "%s: MX weights need both "
              "E8M0 scales", name);
    int shared = fp8 && kg_npy_count(kgt_case_input(c, "gate_up_proj_scale")) == 2 * I
                 && E > 1;
    cr_assert(drop || b2e, "%s: block_to_expert", name);
    cr_assert(!cond || kg_npy_count(kgt_case_input(c, "conditions")) >= N, "%s: "
              "conditions [N + 1]", name);
    /* the first I rows of each expert's down_proj_weight [E, I_pad, H] */
    float *wd = mx ? NULL : malloc((size_t)(E * I * H) * sizeof *wd);
    for (long e = 0; !mx && e < E; e++)
        memcpy(wd + e * I * H, wdp + e * Ip * H, (size_t)(I * H) * sizeof *wd);
    char problem[1024];
    int n = snprintf(problem, sizeof problem, "moe_cte:dtype=%s,weight_dtype=%s,H=%ld,I=%ld,"
                     "E=%ld,K=%ld,B=%ld,capacity_dropping=%s,activation_function=%s,"
                     "expert_affinities_scaling_mode=%s,bias=%s,shared_scales=%s,"
                     "is_tensor_update_accumulating=%s,checkpoint_activation=%s,"
                     "expert_affinity_multiply_on_I=%s,skip_token=%s,conditions=%s,"
                     "quantization_type=%s%s",
                     kg_dtype_name((kg_dtype)t), kg_wt_fmt_name(fmt), H, I, E, K, B,
                     drop ? "true" : "false", ACTS[act], MODES[mode], bias ? "true" : "false",
                     shared ? "true" : "false", acc ? "true" : "false", ckpt ? "true" : "false",
                     moi ? "true" : "false", skip ? "true" : "false", cond ? "true" : "false",
                     mx ? "MX" : fp8 ? "ROW" : "NONE", drop ? ",N=" : "");
    if (drop)
        n += snprintf(problem + n, sizeof problem - (size_t)n, "%ld", E);
    static const char *const ck[] = { "gate_clamp_lower_limit", "gate_clamp_upper_limit",
                                      "up_clamp_lower_limit", "up_clamp_upper_limit" };
    for (int i = 0; i < 4; i++)
        if (has[i])
            n += snprintf(problem + n, sizeof problem - (size_t)n, ",%s=%.9g", ck[i], lim[i]);
    const kg_kernel *kk = kgt_jit(problem);
    kg_wt pgu, pd;
    if (mx) {
        kgt_case_experts_wt(c, "gate_up_proj_weight", "gate_up_proj_scale", fmt,
                            KG_WL_MOE_MX_GATE_UP, E, H, 2 * I, &pgu);
        kgt_case_experts_wt(c, "down_proj_weight", "down_proj_scale", fmt, KG_WL_MLP_MX_DOWN,
                            E, I, H, &pd);
    } else {
        kgt_pack_experts(&pgu, fmt, E, H, 2 * I, wgu);
        kgt_pack_experts(&pd, fmt, E, I, H, wd);
    }
    /* output: zeros, row T (scratch, never touched) the golden's */
    const kg_npy *go = kgt_case_output(c, "out_output");
    cr_assert(go && kg_npy_count(go) == R * H, "%s: out_output [R, H]", name);
    float *o0 = calloc((size_t)(R * H), sizeof *o0);
    if (!skip)
        memcpy(o0 + T * H, (const float *)go->data + T * H, (size_t)H * sizeof *o0);
    void *out = kgt_encode((kg_dtype)t, o0, R * H);
    void *xe = kgt_encode((kg_dtype)t, x, R * H);
    void *ae = aff ? kgt_encode((kg_dtype)t, aff, R * E) : NULL;
    void *bge = bgu ? kgt_encode((kg_dtype)t, bgu, E * 2 * I) : NULL;
    void *bde = bd ? kgt_encode((kg_dtype)t, bd, E * H) : NULL;
    void *guc = kgt_poisoned((kg_dtype)t, N * 2 * I * B), *dc = kgt_poisoned((kg_dtype)t, N * B * H);
    int rc = ((kg_moe_cte_fn *)kk->fn)(out, xe, ae, &pgu, &pd, tpi, b2e, cond, bge, bde, sgu, sd,
                                       guc, dc, T, N);
    cr_assert_eq(rc, KG_OK, "%s: %s returned %d", name, kk->name, rc);
    char msg[1024];
    int ok = kgt_close_to_case(c, "out_output", (kg_dtype)t, out, msg, sizeof msg);
    cr_assert(ok > 0, "vector %s (%s): %s", name, kk->name, ok < 0 ? "no tolerance" : msg);
    long stop = N;
    for (long b = 0; cond && b < N; b++)
        if (cond[b] == 0) {
            stop = b;
            break;
        }
    check_ckpt(c, "out_gate_up_activations_T", (kg_dtype)t, guc, N * 2 * I * B, tpi, T, B, stop,
               1, I, H);
    check_ckpt(c, "out_down_activations", (kg_dtype)t, dc, N * B * H, tpi, T, B, stop, 0, I, H);
    kg_wt_free(&pgu), kg_wt_free(&pd);
    free(x), free(aff), free(wgu), free(wdp), free(wd), free(tpi), free(b2e), free(cond);
    free(bgu), free(bd), free(sgu), free(sd), free(o0), free(out), free(xe), free(ae), free(bge);
    free(bde), free(guc), free(dc);
}

Test(moe_cte, shared_vectors) { kgt_each_case("moe_cte", run_vector); }

/* ---- synthetic cases ------------------------------------------------------------------------ */

typedef struct syn {
    int act, mode, bias, clamp, acc, ckpt, moi, skip, cond, drop, fp8, shared, pad_i;
    int mx; /* MX weights of this format (kg_wt_fmt) in upstream's MX layouts, or 0 */
} syn;

static void synthetic(const char *cname, const syn *o, unsigned long long seed)
{
    enum { T = 6, E = 3, K = 2, B = 4 };
    long H = o->mx ? 512 : 64, I = o->mx ? 64 : 24; /* MX: H % 512 == 0, I % 32 == 0 */
    long R = o->skip ? T : T + 1, Ip = I + (o->pad_i ? 8 : 0);
    int fmt = o->fp8 ? KG_WT_E4M3 : KG_WT_BF16;
    kgt_casew *w = kgt_casew_new("moe_cte", cname);
    float *x = kgt_randn(KG_BF16, R * H, seed);
    if (!o->skip)
        for (long h = 0; h < H; h++)
            x[T * H + h] = 0;
    float *wgu, *wd;
    if (o->mx) {
        /* upstream's MX words and E8M0 scales as the case's inputs, their values for the
         * reference */
        wgu = malloc(sizeof(float) * (size_t)(E * H * 2 * I));
        wd = malloc(sizeof(float) * (size_t)(E * I * H));
        cr_assert(wgu && wd);
        kgt_casew_mx_experts(w, "gate_up_proj_weight", "gate_up_proj_scale", o->mx,
                             KG_WL_MOE_MX_GATE_UP, E, H, 2 * I, wgu, seed + 1);
        kgt_casew_mx_experts(w, "down_proj_weight", "down_proj_scale", o->mx, KG_WL_MLP_MX_DOWN,
                             E, I, H, wd, seed + 2);
    } else {
        wgu = kgt_randn_fmt(fmt, E * H * 2 * I, o->fp8 ? 2.0f : 0.1f, seed + 1);
        wd = kgt_randn_fmt(fmt, E * I * H, o->fp8 ? 2.0f : 0.1f, seed + 2);
    }
    float *wdp = calloc((size_t)(E * Ip * H), sizeof *wdp); /* extra rows unused */
    for (long e = 0; e < E; e++)
        for (long i = 0; i < Ip; i++)
            for (long h = 0; h < H; h++)
                wdp[(e * Ip + i) * H + h] = i < I ? wd[(e * I + i) * H + h] : 7.0f;
    float *bgu = kgt_randn(KG_BF16, E * 2 * I, seed + 3), *bd = kgt_randn(KG_BF16, E * H, seed + 4);
    long SE = o->shared ? 1 : E;
    float *sgu = malloc(sizeof(float) * (size_t)(SE * 2 * I)), *sd = malloc(sizeof(float) * (size_t)(SE * H));
    for (long i = 0; i < SE * 2 * I; i++)
        sgu[i] = 0.02f + 0.0001f * (float)(i % 97);
    for (long i = 0; i < SE * H; i++)
        sd[i] = 0.04f + 0.0001f * (float)(i % 89);
    uint32_t idx[T * K];
    float dense[(T + 1) * E], aff[(T + 1) * E];
    for (long t = 0; t < T; t++)
        idx[t * K] = (uint32_t)(t % E), idx[t * K + 1] = (uint32_t)((t * 2 + 1) % E == t % E
                                                                    ? (t + 1) % E : (t * 2 + 1) % E);
    for (long i = 0; i < (T + 1) * E; i++)
        dense[i] = kgt_round_bf16(0.125f * (float)(1 + i % 7));
    cr_assert_eq(kg_moe_mask_affinities(aff, dense, idx, T, K, E), KG_OK);
    for (long e = 0; e < E; e++)
        aff[T * E + e] = 0;
    long N = o->drop ? E : kg_moe_blocks_count(T, K, E, B) + 1;
    int32_t *tpi = malloc(sizeof(int32_t) * (size_t)(N * B)), b2e[16], cond[17];
    if (o->drop)
        cr_assert_eq(kg_moe_blocks_dropping(tpi, NULL, idx, T, K, E, B, o->skip), KG_OK);
    else
        cr_assert_eq(kg_moe_blocks(tpi, b2e, cond, NULL, idx, T, K, E, B, N, o->skip), KG_OK);
    moe_cte_ref_opts ro = { o->act, o->mode, o->acc, o->moi, o->skip,
                            o->clamp ? -1.5f : -INFINITY, o->clamp ? 0.75f : INFINITY,
                            o->clamp ? -0.5f : -INFINITY, o->clamp ? 1.25f : INFINITY,
                            kgt_round_bf16, kgt_round_bf16, o->mx != 0 };
    float *want = calloc((size_t)(R * H), sizeof *want);
    float *wgc = calloc((size_t)(N * 2 * I * B), sizeof *wgc);
    float *wdc = calloc((size_t)(N * B * H), sizeof *wdc);
    moe_cte_ref(want, wgc, wdc, x, aff, wgu, wd, tpi, o->drop ? NULL : b2e, o->cond ? cond : NULL,
                o->bias ? bgu : NULL, o->bias ? bd : NULL, o->fp8 ? sgu : NULL,
                o->fp8 ? sd : NULL, o->shared, &ro, T, H, I, E, B, N);
    long xs[2] = { R, H }, gus[4] = { E, H, 2, I }, ds[3] = { E, Ip, H }, as[2] = { R * E, 1 };
    long ts[1] = { N * B }, bs[1] = { N }, cs[1] = { N + 1 }, bgs[3] = { E, 2, I }, bds[2] = { E, H };
    long sgs[3] = { SE, 1, 2 * I }, sds[3] = { SE, 1, H };
    long gcs[4] = { N, 2, I, B }, dcs[3] = { N, B, H };
    const char *wdt = o->fp8 ? "fp8_e4m3" : "bf16";
    float *tf = malloc(sizeof(float) * (size_t)(N * B)), bf[16], cf[17];
    for (long i = 0; i < N * B; i++)
        tf[i] = (float)tpi[i];
    for (long b = 0; b < N && !o->drop; b++)
        bf[b] = (float)b2e[b];
    for (long b = 0; b <= N && !o->drop; b++)
        cf[b] = (float)cond[b];
    kgt_casew_input(w, "hidden_states", "bf16", x, 2, xs);
    if (o->mode != 0)
        kgt_casew_input(w, "expert_affinities_masked", "bf16", aff, 2, as);
    if (!o->mx) {
        kgt_casew_input(w, "gate_up_proj_weight", wdt, wgu, 4, gus);
        kgt_casew_input(w, "down_proj_weight", wdt, wdp, 3, ds);
    }
    kgt_casew_input(w, "token_position_to_id", "i32", tf, 1, ts);
    if (!o->drop)
        kgt_casew_input(w, "block_to_expert", "i32", bf, 1, bs);
    if (o->cond)
        kgt_casew_input(w, "conditions", "i32", cf, 1, cs);
    if (o->bias && o->mx) {
        kgt_casew_mx_gate_up_bias(w, "gate_and_up_proj_bias", "bf16", bgu, E, I);
        kgt_casew_input(w, "down_proj_bias", "bf16", bd, 2, bds);
    } else if (o->bias) {
        kgt_casew_input(w, "gate_and_up_proj_bias", "bf16", bgu, 3, bgs);
        kgt_casew_input(w, "down_proj_bias", "bf16", bd, 2, bds);
    }
    if (o->fp8) {
        kgt_casew_input(w, "gate_up_proj_scale", "f32", sgu, 3, sgs);
        kgt_casew_input(w, "down_proj_scale", "f32", sd, 3, sds);
    }
    kgt_casew_opt_num(w, "T", T), kgt_casew_opt_num(w, "H", H), kgt_casew_opt_num(w, "I", I);
    kgt_casew_opt_num(w, "E", E), kgt_casew_opt_num(w, "top_k", K);
    kgt_casew_opt_num(w, "block_size", B);
    kgt_casew_opt_str(w, "activation_function", ACTS[o->act]);
    kgt_casew_opt_str(w, "expert_affinities_scaling_mode", MODES[o->mode]);
    kgt_casew_opt_bool(w, "bias", o->bias);
    kgt_casew_opt_bool(w, "is_tensor_update_accumulating", o->acc);
    kgt_casew_opt_bool(w, "checkpoint_activation", o->ckpt);
    kgt_casew_opt_bool(w, "expert_affinity_multiply_on_I", o->moi);
    kgt_casew_opt_str(w, "skip_dma", o->skip ? "SkipMode(skip_token=True, skip_weight=False)"
                                             : "none");
    kgt_casew_opt_str(w, "bwmm_func", o->drop ? "DROPPING" : o->mx ? "SHARD_ON_BLOCK_MX"
                                                                 : "SHARD_ON_BLOCK");
    kgt_casew_opt_num(w, "n_block_per_iter", 1);
    kgt_casew_opt_str(w, "compute_dtype", "float32");
    if (o->clamp) {
        kgt_casew_opt_num(w, "gate_clamp_lower_limit", -1.5);
        kgt_casew_opt_num(w, "gate_clamp_upper_limit", 0.75);
        kgt_casew_opt_num(w, "up_clamp_lower", -0.5); /* moe_cte.md's spelling */
        kgt_casew_opt_num(w, "up_clamp_upper", 1.25);
    }
    double rtol = o->fp8 || o->mx ? 5e-2 : 2e-2;
    kgt_casew_output(w, "out_output", want, 2, xs, rtol, 1e-5);
    if (o->ckpt) {
        kgt_casew_output(w, "out_gate_up_activations_T", wgc, 4, gcs, rtol, 1e-5);
        if (!o->moi)
            kgt_casew_output(w, "out_down_activations", wdc, 3, dcs, rtol, 1e-5);
    }
    kgt_run_case(kgt_casew_finish(w), run_vector);
    kgt_casew_free(w);
    free(x), free(wgu), free(wd), free(wdp), free(bgu), free(bd), free(sgu), free(sd);
    free(tpi), free(tf), free(want), free(wgc), free(wdc);
}

Test(moe_cte, synthetic_vectors_every_option)
{
    static const syn cases[] = {
        /* act mode bias clamp acc ckpt moi skip cond drop fp8 shared pad_i */
        { 3, 0, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0 }, /* Swish NO_SCALE, biases, clamps, skip */
        { 0, 2, 0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 1, 0 }, /* PRE_SCALE, fp8, conditions, ckpt, I_pad */
        /* PRE_SCALE_DELAYED, shared scales, overwrite */
        { 2, 3, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0 },
        { 1, 1, 0, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0 }, /* dropping, ckpt with multiply_on_I, GELU */
        { 0, 1, 1, 0, 1, 1, 0, 1, 0, 1, 0, 0, 1, 0 }, /* dropping, skip_token, ckpt, biases */
        /* MX: upstream's MX words, scales and gate/up bias layout */
        { 3, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0, KG_WT_E2M1 },  /* fp4, Swish, clamps, ckpt */
        { 0, 2, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, KG_WT_E4M3FN }, /* PRE_SCALE, skip_token */
        { 0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 0, 0, 0, KG_WT_E5M2 },  /* dropping, multiply_on_I */
    };
    char cname[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(cname, sizeof cname, "synthetic_%zu", i);
        synthetic(cname, &cases[i], 900 + i);
    }
}
