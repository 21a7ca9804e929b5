/* tests/test_mlp_vectors.c: the mlp vector adapter: every shared/vectors/mlp and mlp_quant case
 * run on the variants that can take it, and synthetic cases (util/casew.h) for what the shared
 * sample lacks (the fused add's list inputs, MX weight representations, pre-quantized fp8 CTE
 * inputs), expected from tests/ref/mlp_ref.c. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdarg.h>
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
#include "util/mlp_args.h"
#include "util/tensors.h"
#include "util/vectors.h"
#include "util/vecwt.h"
#include "util/weights.h"

TestSuite(mlp, .init = kgt_suite_init, .fini = kgt_suite_fini);

/* ---- shared/vectors/mlp and mlp_quant -------------------------------------------------------- */

/* A case's hidden input: `hiddens`, or the list hiddens_0, hiddens_1 whose sum the kernel
 * computes (the fused add: hidden and fused_add_tensor). */
typedef struct vhid {
    const char *x, *add; /* input names; add NULL without the fused add */
    char xb[64], ab[64];
} vhid;

static void vector_hidden(kgt_case *c, vhid *h)
{
    const char *name = kgt_case_name(c);
    int n = kgt_case_list_len(c, "hiddens"), fused = 0;
    int has_fused = kgt_case_opt_bool(c, "fused_add", &fused);
    memset(h, 0, sizeof *h);
    if (n == 0) {
        cr_assert(kgt_case_input_dtype(c, "hiddens"), "%s: no hiddens input", name);
        h->x = "hiddens";
    } else {
        cr_assert(n <= 2, "%s: hiddens lists %d inputs; the MLP sums at most two", name, n);
        snprintf(h->xb, sizeof h->xb, "%s", kgt_case_list_name(c, "hiddens", 0));
        h->x = h->xb;
        if (n == 2) {
            snprintf(h->ab, sizeof h->ab, "%s", kgt_case_list_name(c, "hiddens", 1));
            h->add = h->ab;
        }
    }
    cr_assert(!has_fused || fused == (h->add != NULL),
              "%s: fused_add=%s but hiddens has %d input(s)", name, fused ? "true" : "false",
              h->add ? 2 : 1);
}

/* How a case's quantization reaches the kernel. */
typedef struct vquant {
    const char *quant;
    int q, tkg, cte;   /* MLP_REF_*; the variants that run the case */
    int preq;          /* CTE STATIC / ROW / STATIC_MX: the hidden is pre-quantized fp8 */
    int wfmt;          /* enum kg_wt_fmt of the three weights */
    int lgu, ld;       /* their stored layouts (gate/up, down) */
    int xswz;          /* MX: hidden/gamma/beta 4H-swizzled, gate/up bias [P, ceil(I/512), 4] */
    long H, I;
} vquant;

static int is_fp8_fmt(int f) { return f == KG_WT_E4M3 || f == KG_WT_E4M3FN; }

/* 1 if the case's hidden input holds fp8 (values on an fp8 grid, or integer bytes). */
static int hidden_is_fp8(kgt_case *c, const vhid *h)
{
    int f = kgt_case_wt_fmt(c, h->x);
    if (is_fp8_fmt(f))
        return 1;
    const kg_npy *a = kgt_case_input(c, h->x);
    cr_assert(a, "%s: %s", kgt_case_name(c), kgt_case_error(c));
    return a->dtype == KG_U8 || a->dtype == KG_I32 || a->dtype == KG_U32 || a->dtype == KG_I64;
}

/* The variants that can run the case: "variant" (mlp_quant: "TKG (weight-only quantization)")
 * or force_cte_mode when given; else MX is TKG's, STATIC_MX CTE's, STATIC and ROW CTE's when
 * the hidden is pre-quantized fp8 (mlp.md 4) and TKG's (weight-only) when it is not; clamps
 * are TKG-only. */
static void vector_variants(kgt_case *c, const vhid *h, vquant *v)
{
    const char *name = kgt_case_name(c), *var;
    int force_cte = 0, q = v->q;
    v->tkg = q != MLP_REF_STATIC_MX, v->cte = q == MLP_REF_NONE || q == MLP_REF_STATIC_MX;
    if ((q == MLP_REF_STATIC || q == MLP_REF_ROW) && hidden_is_fp8(c, h))
        v->tkg = 0, v->cte = 1;
    if (kgt_case_opt_str(c, "variant", &var)) {
        int is_tkg = !strncmp(var, "TKG", 3), is_cte = !strncmp(var, "CTE", 3);
        cr_assert(is_tkg || is_cte, "%s: variant '%s' is not mapped", name, var);
        v->tkg = is_tkg, v->cte = is_cte;
    }
    /* upstream's dispatcher override: the CTE variant (its quantization semantics) */
    if (kgt_case_opt_bool(c, "force_cte_mode", &force_cte) && force_cte)
        v->tkg = 0, v->cte = 1;
    cr_assert(!(q == MLP_REF_MX && v->cte) && !(q == MLP_REF_STATIC_MX && v->tkg),
              "%s: quantization_type %s on the %s variant (mlp.md: MX is TKG's, STATIC_MX "
              "CTE's)", name, v->quant, v->cte ? "CTE" : "TKG");
    static const char *const clamps[] = { "gate_clamp_lower_limit", "gate_clamp_upper_limit",
                                          "up_clamp_lower_limit", "up_clamp_upper_limit" };
    for (int i = 0; i < 4; i++) {
        double x;
        if (kgt_case_opt_num(c, clamps[i], &x))
            v->cte = 0;
    }
    cr_assert(v->tkg || v->cte, "%s: the clamps are TKG's, the case is CTE", name);
    v->preq = v->cte && q != MLP_REF_NONE;
    cr_assert(!v->preq || hidden_is_fp8(c, h), "%s: CTE %s takes a pre-quantized fp8 hidden "
              "(mlp.md 4); %s is %s", name, v->quant, h->x, kgt_case_input_dtype(c, h->x));
}

/* The weights' format: the case's dtype of gate/up/down (NONE: the narrowest float holding
 * them); integer codes or words that name none: the fp8 hidden's format (e4m3 by default) for
 * the fp8 schemes, by word width for MX (kgt_case_x4_word_fmt). */
static int vector_weight_fmt(kgt_case *c, const vhid *h, const vquant *v)
{
    static const char *const wn[] = { "gate", "up", "down" };
    const char *name = kgt_case_name(c);
    if (v->q == MLP_REF_NONE) {
        int t = kgt_case_float_dtype(c, wn, 3);
        cr_assert(t >= 0, "%s: %s", name, kgt_case_error(c));
        return t == KG_F32 ? KG_WT_F32 : t == KG_F16 ? KG_WT_F16 : KG_WT_BF16;
    }
    int f = kgt_case_wt_fmt(c, "up");
    if (f < 0 && v->q == MLP_REF_MX)
        f = kgt_case_x4_word_fmt(c, "up");
    if (f < 0) {
        int hf = kgt_case_wt_fmt(c, h->x);
        f = is_fp8_fmt(hf) ? hf : KG_WT_E4M3;
    }
    if (v->q == MLP_REF_MX)
        cr_assert(f == KG_WT_E2M1 || f == KG_WT_E4M3FN || f == KG_WT_E5M2, "%s: MX with %s "
                  "weights: the adapter maps fp4 e2m1, fp8 e4m3fn / e5m2", name,
                  kgt_case_input_dtype(c, "up"));
    else
        cr_assert(is_fp8_fmt(f), "%s: quantization_type %s with %s weights: the adapter maps "
                  "fp8_e4m3 / fp8_e4m3fn", name, v->quant, kgt_case_input_dtype(c, "up"));
    for (int i = 0; i < 3; i++) {
        int fi = kgt_case_input_dtype(c, wn[i]) ? kgt_case_wt_fmt(c, wn[i]) : -1;
        cr_assert(fi < 0 || fi == f, "%s: %s is %s, up is %s", name, wn[i],
                  kgt_case_input_dtype(c, wn[i]), kg_wt_fmt_name(f));
    }
    return f;
}

/* The case's quantization: variants, weight format and stored layouts, H (the ROW packed
 * hidden's last axis is H + 4), whether the MX tensors are swizzled. */
static void vector_quant(kgt_case *c, const vhid *h, vquant *v)
{
    const char *name = kgt_case_name(c);
    static const char *const names[] = { "NONE", "STATIC", "ROW", "MX", "STATIC_MX" };
    memset(v, 0, sizeof *v);
    v->quant = "NONE", v->q = -1;
    kgt_case_opt_str(c, "quantization_type", &v->quant);
    for (int i = 0; i < 5; i++)
        if (!strcmp(v->quant, names[i]))
            v->q = i;
    cr_assert(v->q >= 0, "%s: quantization_type %s is not mapped", name, v->quant);
    vector_variants(c, h, v);
    v->wfmt = vector_weight_fmt(c, h, v);
    const kg_npy *hid = kgt_case_input(c, h->x), *up = kgt_case_input(c, "up");
    cr_assert(hid && up, "%s: hidden / up: %s", name, kgt_case_error(c));
    v->H = hid->shape[hid->rank - 1];
    if (v->preq && v->q == MLP_REF_ROW && hid->dtype != KG_F32)
        v->H -= 4; /* bytes with the packed row scale */
    v->lgu = v->ld = KG_WL_KN;
    if (v->q == MLP_REF_MX)
        v->lgu = KG_WL_MLP_MX_GATE_UP, v->ld = KG_WL_MLP_MX_DOWN;
    else if (v->q == MLP_REF_STATIC_MX && up->rank != 2) /* upstream's swizzles, else logical */
        v->lgu = KG_WL_MLP_SMX_GATE_UP, v->ld = KG_WL_MLP_SMX_DOWN;
    /* MX tensor layouts: the option, else told by a gate/up bias [P, ceil(I/512), 4] */
    int swz = 0;
    const kg_npy *ub = kgt_case_input_dtype(c, "up_b") ? kgt_case_input(c, "up_b") : NULL;
    const kg_npy *gb = kgt_case_input_dtype(c, "gate_b") ? kgt_case_input(c, "gate_b") : NULL;
    if (kgt_case_opt_bool(c, "is_input_swizzled", &swz))
        v->xswz = swz;
    else
        v->xswz = v->q == MLP_REF_MX && ((ub && ub->rank == 3) || (gb && gb->rank == 3));
}

/* Appends ",KEY=VALUE" to the problem p (of size len). */
static void append(char *p, size_t len, const char *fmt, ...)
{
    size_t n = strlen(p);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p + n, len - n, fmt, ap);
    va_end(ap);
}

/* The problem string of case c for a variant: every option of case.json mapped to its key. */
static void vector_problem(kgt_case *c, const vhid *h, const vquant *v, const char *variant,
                           char *p, size_t len)
{
    const char *name = kgt_case_name(c), *act, *norm, *s;
    int skip = 0, biases = -1, store = 0;
    double x;
    cr_assert(kgt_case_opt_str(c, "activation_fn", &act) &&
              kgt_case_opt_str(c, "normalization_type", &norm), "%s: activation_fn and "
              "normalization_type", name);
    kgt_case_opt_bool(c, "skip_gate_proj", &skip);
    kgt_case_opt_bool(c, "biases", &biases);
    /* a pre-quantized hidden is fp8: the compute dtype is the other inputs' (bf16 if none) */
    const char *const hn[] = { v->preq ? NULL : h->x, h->add ? h->add : NULL, "gamma", "norm_b",
                               "gate_b", "up_b", "down_b" };
    int any = 0;
    for (int i = 0; i < 7; i++)
        any |= hn[i] && kgt_case_input_dtype(c, hn[i]) != NULL;
    int t = any ? kgt_case_float_dtype(c, hn, 7) : KG_BF16;
    cr_assert(t >= 0, "%s: %s", name, kgt_case_error(c));
    int gb = kgt_case_input_dtype(c, "gate_b") != NULL;
    int ub = kgt_case_input_dtype(c, "up_b") != NULL;
    int db = kgt_case_input_dtype(c, "down_b") != NULL;
    cr_assert(biases < 0 || biases == (gb || ub || db), "%s: biases=%d, bias inputs %d%d%d",
              name, biases, gb, ub, db);
    snprintf(p, len, "mlp:variant=%s,dtype=%s,H=%ld,I=%ld,activation_fn=%s,normalization_type=%s,"
             "skip_gate_proj=%s,quantization_type=%s,weight_dtype=%s,layer_norm_bias=%s,"
             "gate_bias=%s,up_bias=%s,down_bias=%s,fused_residual_add=%s,weight_layout=%s,"
             "is_input_swizzled=%s", variant, kg_dtype_name((kg_dtype)t), v->H, v->I, act, norm,
             skip ? "true" : "false", v->quant, kg_wt_fmt_name(v->wfmt),
             kgt_case_input_dtype(c, "norm_b") ? "true" : "false", gb ? "true" : "false",
             ub ? "true" : "false", db ? "true" : "false", h->add ? "true" : "false",
             v->lgu == KG_WL_KN ? "kn" : "swizzled", v->xswz ? "true" : "false");
    if (v->preq && is_fp8_fmt(v->wfmt))
        append(p, len, ",fp8=%s", kg_wt_fmt_name(v->wfmt));
    /* the sum is stored when the case gives it as an output (upstream's store_add) */
    int has_store = kgt_case_opt_bool(c, "store_fused_add_result", &store);
    store = has_store ? store : kgt_case_has_output(c, "out_add_out");
    cr_assert(store == kgt_case_has_output(c, "out_add_out"), "%s: store_fused_add_result and "
              "out_add_out disagree", name);
    append(p, len, ",store_fused_add_result=%s", store ? "true" : "false");
    if (kgt_case_opt_num(c, "eps", &x))
        append(p, len, ",eps=%.9g", x);
    if (kgt_case_opt_num(c, "quant_clipping_bound", &x))
        append(p, len, ",quant_clipping_bound=%.9g", x);
    if (kgt_case_opt_str(c, "output_dtype", &s)) {
        int ot = kgt_case_dtype_from_name(s);
        cr_assert(ot >= 0, "%s: output_dtype '%s'", name, s);
        append(p, len, ",out_dtype=%s", kg_dtype_name((kg_dtype)ot));
    }
    static const char *const clamps[] = { "gate_clamp_lower_limit", "gate_clamp_upper_limit",
                                          "up_clamp_lower_limit", "up_clamp_upper_limit" };
    for (int i = 0; i < 4; i++)
        if (kgt_case_opt_num(c, clamps[i], &x))
            append(p, len, ",%s=%.9g", clamps[i], x);
}

/* The case's input `name` (float values) encoded in t; NULL if the case has none. */
static void *vector_tensor(kgt_case *c, const char *name, kg_dtype t)
{
    if (!kgt_case_input_dtype(c, name))
        return NULL;
    float *x = kgt_case_as(c, name, KG_F32);
    cr_assert_not_null(x, "%s: %s", kgt_case_name(c), kgt_case_error(c));
    void *e = kgt_encode(t, x, kg_npy_count(kgt_case_input(c, name)));
    free(x);
    return e;
}

/* The pre-quantized CTE hidden as the kernel reads it (mlp.md 4): fp8 codes [T, H] (STATIC,
 * STATIC_MX), with ROW each row followed by the 4 bytes of its fp32 dequant scale [T, H+4].
 * From bytes as stored (integers, ROW's packed row scale included), or fp8 values [.., H] (ROW:
 * with the row scale as its own input, rmsnorm_quant's output name or the hidden's). *T set. */
static uint8_t *vector_fp8_hidden(kgt_case *c, const vhid *h, const vquant *v, long *T)
{
    const char *name = kgt_case_name(c);
    const kg_npy *a = kgt_case_input(c, h->x);
    int row = v->q == MLP_REF_ROW;
    long cols = row ? v->H + 4 : v->H;
    if (a->dtype != KG_F32) { /* bytes, as the kernel reads them */
        uint8_t *b = kgt_case_as(c, h->x, KG_U8);
        cr_assert(b, "%s: %s", name, kgt_case_error(c));
        *T = kg_npy_count(a) / cols;
        return b;
    }
    uint8_t *q = kgt_case_codes8(c, h->x, v->wfmt);
    *T = kg_npy_count(a) / v->H;
    if (!row)
        return q;
    static const char *const sn[] = { "dequant_scale", "hidden_dequant_scale",
                                      "input_dequant_scale", "hidden_scale" };
    const char *scale = NULL;
    for (int i = 0; i < 4 && !scale; i++)
        if (kgt_case_input_dtype(c, sn[i]))
            scale = sn[i];
    cr_assert(scale, "%s: CTE ROW fp8 values of %s need their row scale [.., 1] (%s, ...)",
              name, h->x, sn[0]);
    float *d = kgt_case_as(c, scale, KG_F32);
    cr_assert(d && kg_npy_count(kgt_case_input(c, scale)) == *T, "%s: %s: one per row: %s",
              name, scale, kgt_case_error(c));
    uint8_t *b = malloc((size_t)(*T * cols));
    cr_assert(b);
    for (long t = 0; t < *T; t++) {
        memcpy(b + t * cols, q + t * v->H, (size_t)v->H);
        memcpy(b + t * cols + v->H, &d[t], 4); /* little-endian host */
    }
    free(q), free(d);
    return b;
}

/* A scalar or per-column scale of the case, the first of names listed; NULL if none. With
 * strict (the kernel reads it), every other spelling listed must hold the same element 0. */
static float *vector_scale(kgt_case *c, const char *const *names, int n, int strict)
{
    for (int i = 0; i < n; i++)
        if (kgt_case_input_dtype(c, names[i])) {
            float *s = kgt_case_as(c, names[i], KG_F32);
            cr_assert_not_null(s, "%s: %s", kgt_case_name(c), kgt_case_error(c));
            for (int j = i + 1; j < n; j++) /* another spelling must say the same */
                if (kgt_case_input_dtype(c, names[j])) {
                    float *o = kgt_case_as(c, names[j], KG_F32);
                    cr_assert(o && (!strict || o[0] == s[0]), "%s: %s and %s differ",
                              kgt_case_name(c), names[i], names[j]);
                    free(o);
                }
            return s;
        }
    return NULL;
}

/* Compares output `out` (kernel dtype t) with the case's expected output of that name. */
static void vector_compare(kgt_case *c, const char *kname, const char *out_name, kg_dtype t,
                           const void *out)
{
    char msg[1024];
    int ok = kgt_close_to_case(c, out_name, t, out, msg, sizeof msg);
    cr_assert(ok >= 0, "%s: no tolerance for %s", kgt_case_name(c), out_name);
    cr_assert(ok, "vector %s (%s): %s: %s", kgt_case_name(c), kname, out_name, msg);
}

/* Runs one vector case on the kernel of `problem` (its options from case.json), with the
 * case's weights w (NULL entries absent). */
static void run_vector_with(kgt_case *c, const vhid *h, const vquant *v, kg_wt *const *w,
                            const char *problem)
{
    const char *name = kgt_case_name(c);
    const kg_kernel *k = kgt_jit(problem);
    mlpa_opts o = mlpa_read_opts(k->problem);
    long T = 0;
    void *a[MLPA_COUNT] = { 0 };
    static const char *const sn[] = { "gate_w_scale", "up_w_scale", "down_w_scale" };
    for (int i = 0; i < 3; i++) {
        a[MLPA_GW + i] = w[i];
        /* STATIC [128, 1], ROW [128, N]: row 0; MX: the E8M0 scales went into the weight */
        if (o.quant != MLP_REF_NONE && o.quant != MLP_REF_MX && w[i]) {
            a[MLPA_GS + i] = kgt_case_as(c, sn[i], KG_F32);
            cr_assert_not_null(a[MLPA_GS + i], "%s: %s", name, kgt_case_error(c));
        }
    }
    /* activation scales (mlp.md: gate_up_in_scale, down_in_scale; the TKG reference's
     * gate_in_scale / up_in_scale say the same): CTE STATIC reads them, TKG leaves them unused */
    static const char *const gus[] = { "gate_up_in_scale", "gate_in_scale", "up_in_scale" };
    static const char *const ds[] = { "down_in_scale" };
    int stat = v->preq && v->q != MLP_REF_ROW;
    a[MLPA_GUIS] = vector_scale(c, gus, 3, stat), a[MLPA_DIS] = vector_scale(c, ds, 1, stat);
    cr_assert(!stat || (a[MLPA_GUIS] && a[MLPA_DIS]), "%s: CTE %s needs gate_up_in_scale and "
              "down_in_scale", name, v->quant);
    if (v->preq && !o.tkg) {
        a[MLPA_HIDDEN] = vector_fp8_hidden(c, h, v, &T);
    } else {
        a[MLPA_HIDDEN] = vector_tensor(c, h->x, o.t);
        T = kg_npy_count(kgt_case_input(c, h->x)) / o.H;
    }
    a[MLPA_ADD] = h->add ? vector_tensor(c, h->add, o.t) : NULL;
    static const char *const vin[] = { "gamma", "norm_b", "gate_b", "up_b", "down_b" };
    static const int slot[] = { MLPA_GAMMA, MLPA_BETA, MLPA_GB, MLPA_UB, MLPA_DB };
    for (int i = 0; i < 5; i++)
        a[slot[i]] = vector_tensor(c, vin[i], o.t);
    void *out = kgt_poisoned(o.ot, T * o.H), *aout = o.store ? kgt_poisoned(o.ot, T * o.H) : NULL;
    a[MLPA_OUT] = out, a[MLPA_ADD_OUT] = aout;
    cr_assert_eq(k->call(a, &T), KG_OK, "%s: %s", name, k->name);
    vector_compare(c, k->name, "out_out", o.ot, out);
    if (aout)
        vector_compare(c, k->name, "out_add_out", o.ot, aout);
    for (int i = 0; i < 3; i++)
        free(a[MLPA_GS + i]);
    free(a[MLPA_GUIS]), free(a[MLPA_DIS]);
    free(a[MLPA_HIDDEN]), free(a[MLPA_ADD]), free(out), free(aout);
    for (int i = 0; i < 5; i++)
        free(a[slot[i]]);
}

/* Every variant that can run the case runs it, on the case's weights in any representation
 * kgt_case_wt accepts (MX: x4 words [128, H/512, I] / [P, ceil(I/512), H] or their elements,
 * or logical; E8M0 scales stored or logical; STATIC_MX: logical or upstream's swizzles). */
static void run_vector(kgt_case *c)
{
    vhid h;
    vector_hidden(c, &h);
    vquant v;
    vector_quant(c, &h, &v);
    /* hardware placement of the output, down-projection weight layout and tiling (mlp.md): no
     * effect on the values, the vectors' weights being logical */
    static const char *const hw[] = { "store_output_in_sbuf", "use_tkg_down_proj_optimized_layout",
                                      "use_tkg_gate_up_proj_column_tiling",
                                      "use_tkg_down_proj_column_tiling", "sbm" };
    for (size_t i = 0; i < sizeof hw / sizeof hw[0]; i++)
        kgt_case_opt_has(c, hw[i]);
    static const char *const wn[] = { "gate", "up", "down" };
    static const char *const sn[] = { "gate_w_scale", "up_w_scale", "down_w_scale" };
    kg_wt wt[3];
    kg_wt *w[3] = { 0 };
    int mx = v.q == MLP_REF_MX;
    for (int i = 1; i < 4; i++) { /* up first: it gives I */
        int j = i % 3;
        if (!kgt_case_input_dtype(c, wn[j]))
            continue;
        long K = j < 2 ? v.H : v.I;
        long N = kgt_case_wt(c, wn[j], mx ? sn[j] : NULL, v.wfmt, j < 2 ? v.lgu : v.ld, K, &wt[j]);
        cr_assert(j == 1 || N == (j == 0 ? v.I : v.H), "%s: %s has %ld columns", kgt_case_name(c),
                  wn[j], N);
        v.I = j == 1 ? N : v.I;
        w[j] = &wt[j];
    }
    cr_assert(w[1] && w[2], "%s: up and down weights", kgt_case_name(c));
    char p[1024];
    if (v.tkg) {
        vector_problem(c, &h, &v, "TKG", p, sizeof p);
        run_vector_with(c, &h, &v, w, p);
    }
    if (v.cte) {
        vector_problem(c, &h, &v, "CTE", p, sizeof p);
        run_vector_with(c, &h, &v, w, p);
    }
    for (int i = 0; i < 3; i++)
        if (w[i])
            kg_wt_free(w[i]);
}

Test(mlp, shared_vectors_mlp) { kgt_each_case("mlp", run_vector); }
Test(mlp, shared_vectors_mlp_quant) { kgt_each_case("mlp_quant", run_vector); }

/* A fused-add case as the vectors store it (no such case is in the shared sample): the two
 * summed inputs as the list hiddens_0, hiddens_1, the stored sum as out_add_out; the expected
 * outputs from the plain-loop reference. RMS norm, gated SiLU, bf16, T = 5, H = 128, I = 40. */
Test(mlp, synthetic_vector_fused_add_list_inputs)
{
    enum { T = 5, H = 128, I = 40 };
    unsigned long long seed = 77;
    float *x0 = kgt_randn(KG_BF16, T * H, seed), *x1 = kgt_randn(KG_BF16, T * H, seed + 1);
    float *gam = kgt_randn(KG_BF16, H, seed + 2);
    float *W[3];
    long ws[3][2] = { { H, I }, { H, I }, { I, H } };
    for (int i = 0; i < 3; i++) {
        W[i] = kgt_randn(KG_BF16, H * I, seed + 3 + i);
        for (long j = 0; j < H * I; j++)
            W[i][j] = kgt_round_bf16(W[i][j] * 0.1f);
    }
    float *out = malloc(T * H * 4), *sum = malloc(T * H * 4);
    mlp_ref_opts ro = { 1, MLP_REF_NONE, 0, 1, 0, 0, 240.0f, 1e-6f, 0.0f, -INFINITY, INFINITY,
                        -INFINITY, INFINITY };
    mlp_ref(out, sum, x0, x1, NULL, W[0], W[1], W[2], NULL, NULL, NULL, 0, 0, gam, NULL, NULL,
            NULL, NULL, &ro, T, H, I);

    kgt_casew *w = kgt_casew_new("mlp", "silu_gated_rms_norm_t5_fused_add");
    long xs[3] = { 1, T, H }, gs[2] = { 1, H };
    kgt_casew_input(w, "hiddens_0", "bf16", x0, 3, xs);
    kgt_casew_input(w, "hiddens_1", "bf16", x1, 3, xs);
    kgt_casew_list(w, "hiddens", 2);
    kgt_casew_input(w, "gamma", "bf16", gam, 2, gs);
    static const char *const wn[] = { "gate", "up", "down" };
    for (int i = 0; i < 3; i++)
        kgt_casew_input(w, wn[i], "bf16", W[i], 2, ws[i]);
    kgt_casew_opt_str(w, "activation_fn", "SiLU");
    kgt_casew_opt_str(w, "normalization_type", "RMS_NORM");
    kgt_casew_opt_str(w, "quantization_type", "NONE");
    kgt_casew_opt_bool(w, "biases", 0);
    kgt_casew_opt_bool(w, "skip_gate_proj", 0);
    kgt_casew_opt_bool(w, "fused_add", 1);
    kgt_casew_opt_num(w, "eps", 1e-6);
    kgt_casew_output(w, "out_out", out, 3, xs, 2e-2, 1e-5);
    kgt_casew_output(w, "out_add_out", sum, 3, xs, 2e-2, 1e-5);
    kgt_run_case(kgt_casew_finish(w), run_vector);
    kgt_casew_free(w);
    free(x0), free(x1), free(gam), free(out), free(sum);
    for (int i = 0; i < 3; i++)
        free(W[i]);
}

/* Random codes [K, N] of format fmt (values amp * N(0, 1) clamped to the format's range) and,
 * with e8 (mx), E8M0 scales per logical block of kb rows in [122, 127] (MLP-MX down: the four q
 * runs of a stored scale share it); the logical values (codes times scales) returned. */
static float *mx_codes(uint32_t *codes, uint8_t *e8, int fmt, int layout, long K, long N,
                       float amp, unsigned long long seed)
{
    long kb = kgt_wt_kb(layout);
    float *vals = malloc((size_t)(K * N) * sizeof *vals), m = fmt == KG_WT_E2M1 ? 6.0f : 240.0f;
    for (long i = 0; i < K * N; i++) {
        float v = amp * kgt_normal(&seed);
        kgt_wt_code(fmt, v > m ? m : v < -m ? -m : v, &codes[i]);
        vals[i] = fmt == KG_WT_E2M1 ? kg_e2m1_to_f32((uint8_t)codes[i])
                  : fmt == KG_WT_E4M3 ? kg_e4m3_to_f32((uint8_t)codes[i])
                                      : kg_e4m3fn_to_f32((uint8_t)codes[i]);
    }
    if (!e8)
        return vals;
    for (long b = 0; b < (K + kb - 1) / kb * N; b++)
        e8[b] = (uint8_t)(122 + (b * 5 + seed) % 6);
    if (layout == KG_WL_MLP_MX_DOWN)
        for (long k = 0; k < K; k += 8) {
            long k0 = K >= 512 ? k / 512 * 512 + k % 128 : k % (K / 4);
            for (long n = 0; n < N; n++)
                e8[(k / 8) * N + n] = e8[(k0 / 8) * N + n];
        }
    for (long i = 0; i < K * N; i++)
        vals[i] *= kg_e8m0_to_f32(e8[(i / N / kb) * N + i % N]);
    return vals;
}

/* Synthetic TKG MX cases (mlp.md "MX"): fp4 and fp8 weights in each representation a vector
 * may store (x4 words, their elements, logical values; E8M0 scales stored or logical), the
 * hidden, gamma and gate/up biases in upstream's swizzled layouts (told by the option, or by the
 * biases' [P, ceil(I/512), 4] shape) or logical; expected from tests/ref. */
Test(mlp, synthetic_vector_tkg_mx_weight_representations)
{
    enum { T = 2, H = 1024, I = 64 }; /* H > 512: stored and logical scales differ in order */
    static const char *const wn[] = { "gate", "up", "down" };
    static const char *const sn[] = { "gate_w_scale", "up_w_scale", "down_w_scale" };
    for (int rep = 0; rep < KGT_WREP_COUNT; rep++) {
        int fmt = rep % 2 ? KG_WT_E4M3FN : KG_WT_E2M1, swz = rep % 2 == 0;
        unsigned long long seed = 900 + 10 * (unsigned long long)rep;
        long K[3] = { H, H, I }, N[3] = { I, I, H };
        int lay[3] = { KG_WL_MLP_MX_GATE_UP, KG_WL_MLP_MX_GATE_UP, KG_WL_MLP_MX_DOWN };
        uint32_t *codes[3];
        uint8_t *e8[3];
        float *W[3];
        for (int i = 0; i < 3; i++) {
            codes[i] = malloc(sizeof(uint32_t) * H * I), e8[i] = malloc(H * I / 8);
            W[i] = mx_codes(codes[i], e8[i], fmt, lay[i], K[i], N[i],
                            fmt == KG_WT_E2M1 ? 2.0f : 8.0f, seed + (unsigned)i);
        }
        float *x = kgt_randn(KG_BF16, T * H, seed + 3), *gam = kgt_randn(KG_BF16, H, seed + 4);
        float *bg = kgt_randn(KG_BF16, I, seed + 5), *bu = kgt_randn(KG_BF16, I, seed + 6);
        float *bd = kgt_randn(KG_BF16, H, seed + 7), *out = malloc(sizeof(float) * T * H);
        for (long i = 0; i < H; i++)
            gam[i] = kgt_round_bf16(1.0f + 0.2f * gam[i]);
        mlp_ref_opts ro = { 1, MLP_REF_MX, 0, 1, 0, 1, 448.0f, 1e-6f, 0.0f, -INFINITY, INFINITY,
                            -INFINITY, INFINITY };
        mlp_ref(out, NULL, x, NULL, NULL, W[0], W[1], W[2], NULL, NULL, NULL, 0, 0, gam, NULL,
                bg, bu, bd, &ro, T, H, I);
        kgt_casew *w = kgt_casew_new("mlp", "mx_synthetic");
        long xs[3] = { 1, T, H }, gs[2] = { 1, H }, bs[2] = { 1, I }, sb[3] = { I / 4, 1, 4 };
        float *xs_ = swz ? mlpa_swizzle_h(x, T, H) : x;
        float *gs_ = swz ? mlpa_swizzle_h(gam, 1, H) : gam;
        float *bg_ = swz ? mlpa_swizzle_bias(bg, I) : bg;
        float *bu_ = swz ? mlpa_swizzle_bias(bu, I) : bu;
        kgt_casew_input(w, "hiddens", "bf16", xs_, 3, xs);
        kgt_casew_input(w, "gamma", "bf16", gs_, 2, gs);
        kgt_casew_input(w, "gate_b", "bf16", bg_, swz ? 3 : 2, swz ? sb : bs);
        kgt_casew_input(w, "up_b", "bf16", bu_, swz ? 3 : 2, swz ? sb : bs);
        kgt_casew_input(w, "down_b", "bf16", bd, 2, gs);
        for (int i = 0; i < 3; i++)
            kgt_casew_wt(w, wn[i], sn[i], fmt, lay[i], K[i], N[i], codes[i], e8[i], rep);
        kgt_casew_opt_str(w, "activation_fn", "SiLU");
        kgt_casew_opt_str(w, "normalization_type", "RMS_NORM");
        kgt_casew_opt_str(w, "quantization_type", "MX");
        if (rep == 0)
            kgt_casew_opt_bool(w, "is_input_swizzled", 1);
        kgt_casew_opt_bool(w, "use_tkg_down_proj_optimized_layout", rep == 1);
        kgt_casew_output(w, "out_out", out, 3, xs, 5e-2, 1e-5);
        kgt_run_case(kgt_casew_finish(w), run_vector);
        kgt_casew_free(w);
        if (swz)
            free(xs_), free(gs_), free(bg_), free(bu_);
        for (int i = 0; i < 3; i++)
            free(codes[i]), free(e8[i]), free(W[i]);
        free(x), free(gam), free(bg), free(bu), free(bd), free(out);
    }
}

/* Synthetic CTE cases of the fp8 schemes (mlp.md 4: the hidden pre-quantized): STATIC with fp8
 * values and gate_up_in_scale / down_in_scale; STATIC_MX with bytes and logical weights, and
 * with upstream's swizzled weights; ROW as bytes with the packed row scale [.., H+4], and as fp8
 * values with the row scale (dequant_scale, rmsnorm_quant's name); expected from tests/ref. */
Test(mlp, synthetic_vector_cte_prequantized_fp8_input)
{
    enum { T = 3, CASES = 5 };
    static const char *const wn[] = { "gate", "up", "down" };
    static const char *const sn[] = { "gate_w_scale", "up_w_scale", "down_w_scale" };
    static const int quant[CASES] = { MLP_REF_STATIC, MLP_REF_STATIC_MX, MLP_REF_STATIC_MX,
                                      MLP_REF_ROW, MLP_REF_ROW };
    static const char *const qname[5] = { "NONE", "STATIC", "ROW", "MX", "STATIC_MX" };
    for (int k = 0; k < CASES; k++) {
        int q = quant[k], row = q == MLP_REF_ROW, bytes = k == 1 || k == 3, swzw = k == 2;
        long H = swzw ? 512 : 256, I = swzw ? 512 : 96, cols = row && bytes ? H + 4 : H;
        unsigned long long seed = 950 + 10 * (unsigned long long)k;
        long K[3] = { H, H, I }, N[3] = { I, I, H };
        uint32_t *codes[3];
        float *W[3], *sc[3];
        for (int i = 0; i < 3; i++) {
            codes[i] = malloc(sizeof(uint32_t) * H * I);
            W[i] = mx_codes(codes[i], NULL, KG_WT_E4M3, KG_WL_KN, K[i], N[i], 1.0f,
                            seed + (unsigned)i);
            sc[i] = malloc(sizeof(float) * 128 * N[i]);
            for (long r = 0; r < 128; r++) /* rows identical */
                for (long n = 0; n < N[i]; n++)
                    sc[i][r * N[i] + n] = (row ? 0.4f + 0.001f * (float)n : 0.5f) /
                                          sqrtf((float)K[i]);
        }
        float *x = malloc(sizeof(float) * T * H), dx[T];
        uint8_t *xb = malloc((size_t)(T * cols));
        for (long t = 0; t < T; t++) {
            dx[t] = 0.004f + 0.001f * (float)t;
            for (long j = 0; j < H; j++) {
                float v = (row ? 60.0f : 16.0f) * kgt_normal(&seed);
                uint8_t c = kg_f32_to_e4m3(v > 240 ? 240 : v < -240 ? -240 : v);
                xb[t * cols + j] = c, x[t * H + j] = kg_e4m3_to_f32(c);
            }
            if (row && bytes)
                memcpy(xb + t * cols + H, &dx[t], 4);
        }
        float *out = malloc(sizeof(float) * T * H), s_gu = 0.1f, s_down = 0.02f;
        mlp_ref_opts ro = { 0, q, 0, 0, 0, 0, 240.0f, 1e-6f, 0.0f, -INFINITY, INFINITY,
                            -INFINITY, INFINITY };
        mlp_ref(out, NULL, x, NULL, row ? dx : NULL, W[0], W[1], W[2], sc[0], sc[1], sc[2], s_gu,
                s_down, NULL, NULL, NULL, NULL, NULL, &ro, T, H, I);
        kgt_casew *w = kgt_casew_new("mlp_quant", "cte_fp8_input");
        long xs[3] = { 1, T, H }, os[3] = { 1, T, H }, ds[3] = { 1, T, 1 }, s1[2] = { 128, 1 };
        if (bytes) {
            kg_npy a = { KG_U8, 3, { 1, T, cols }, xb };
            kgt_casew_input_npy(w, "hiddens", "u8", &a);
        } else {
            kgt_casew_input(w, "hiddens", "fp8_e4m3", x, 3, xs);
        }
        if (row && !bytes)
            kgt_casew_input(w, "dequant_scale", "f32", dx, 3, ds);
        for (int i = 0; i < 3; i++) {
            kgt_casew_wt(w, wn[i], NULL, KG_WT_E4M3, swzw ? (i < 2 ? KG_WL_MLP_SMX_GATE_UP
                                                                  : KG_WL_MLP_SMX_DOWN)
                                                          : KG_WL_KN,
                         K[i], N[i], codes[i], NULL, swzw ? KGT_WREP_UNPACKED : KGT_WREP_LOGICAL);
            long ss[2] = { 128, row ? N[i] : 1 };
            float *sv = malloc(sizeof(float) * 128 * (size_t)ss[1]);
            for (long r = 0; r < 128; r++)
                for (long n = 0; n < ss[1]; n++)
                    sv[r * ss[1] + n] = sc[i][r * N[i] + n];
            kgt_casew_input(w, sn[i], "f32", sv, 2, ss);
            free(sv);
        }
        if (!row) {
            float gu[128], dn[128];
            for (int r = 0; r < 128; r++)
                gu[r] = s_gu, dn[r] = s_down;
            kgt_casew_input(w, "gate_up_in_scale", "f32", gu, 2, s1);
            kgt_casew_input(w, "down_in_scale", "f32", dn, 2, s1);
        }
        kgt_casew_opt_str(w, "activation_fn", "SiLU");
        kgt_casew_opt_str(w, "normalization_type", "NO_NORM");
        kgt_casew_opt_str(w, "quantization_type", qname[q]);
        kgt_casew_output(w, "out_out", out, 3, os, row ? 4e-2 : 3e-2, 1e-5);
        kgt_run_case(kgt_casew_finish(w), run_vector);
        kgt_casew_free(w);
        for (int i = 0; i < 3; i++)
            free(codes[i]), free(W[i]), free(sc[i]);
        free(x), free(xb), free(out);
    }
}

