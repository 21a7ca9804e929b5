/* tests/test_mlp.c: the mlp family (variants CTE and TKG) against tests/ref/mlp_ref.c: every
 * activation, gating, norm, bias, fused add, quantization type of each variant, clip bound,
 * clamps, output dtype, MX weight format and layout, on small and edge shapes; the
 * shared/vectors cases; Llama-3-8B shapes; rmsnorm_quant ROW feeding an MLP-CTE ROW kernel;
 * names, rejected problems, run-time checks, and JIT vs AOT bit-identity. */
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
#include "util/compare.h"
#include "util/jitp.h"
#include "util/tensors.h"
#include "util/vectors.h"
#include "util/vecwt.h"
#include "util/weights.h"

/* ---- a kernel's options, read back from its problem string (never retyped) ----------------- */

typedef struct opts {
    long H, I;
    int tkg, quant, act, norm; /* quant, act, norm: the MLP_REF_ / upstream enum codes */
    int xq;                    /* CTE STATIC / ROW / STATIC_MX: the input is fp8 */
    int skip_gate, norm_bias, fused_add, store, gb, ub, db, xswz, wswz, fn;
    kg_dtype t, ot;
    int wfmt;
    float eps, clip, quant_max, glo, ghi, ulo, uhi;
} opts;

static const char *const QUANTS[] = { "NONE", "STATIC", "ROW", "MX", "STATIC_MX" };
static const char *const ACTS[] = { "SiLU", "GELU", "GELU_Tanh_Approx", "Swish" };
static const char *const NORMS[] = { "NO_NORM", "RMS_NORM", "LAYER_NORM", "RMS_NORM_SKIP_GAMMA" };

static int lookup(const char *problem, const char *key, const char *const *names, int n)
{
    char v[64];
    cr_assert(kg_problem_str(problem, key, v, sizeof v), "%s: no key %s", problem, key);
    for (int i = 0; i < n; i++)
        if (!strcmp(v, names[i]))
            return i;
    cr_assert_fail("%s: %s=%s is not known to the test", problem, key, v);
    return -1;
}

static int flag(const char *problem, const char *key)
{
    char v[16];
    cr_assert(kg_problem_str(problem, key, v, sizeof v), "%s: no key %s", problem, key);
    return !strcmp(v, "true");
}

static float num(const char *problem, const char *key)
{
    double v;
    cr_assert(kg_problem_double(problem, key, &v), "%s: no key %s", problem, key);
    return (float)v;
}

static int dtype_of(const char *problem, const char *key)
{
    char v[16];
    cr_assert(kg_problem_str(problem, key, v, sizeof v), "%s: no key %s", problem, key);
    return !strcmp(key, "weight_dtype") ? kg_wt_fmt_from_name(v) : kg_dtype_from_name(v);
}

/* A clamp key at +-FLT_MAX is "no clamp": the reference gets an infinity. */
static float limit(const char *problem, const char *key)
{
    float v = num(problem, key);
    return fabsf(v) >= 3.4028234e38f ? (v < 0 ? -INFINITY : INFINITY) : v;
}

static opts read_opts(const char *p)
{
    opts o;
    char v[16];
    cr_assert(kg_problem_long(p, "H", &o.H) && kg_problem_long(p, "I", &o.I), "%s", p);
    cr_assert(kg_problem_str(p, "variant", v, sizeof v));
    o.tkg = !strcmp(v, "TKG");
    o.quant = lookup(p, "quantization_type", QUANTS, 5);
    o.act = lookup(p, "activation_fn", ACTS, 4);
    o.norm = lookup(p, "normalization_type", NORMS, 4);
    o.xq = !o.tkg && o.quant != MLP_REF_NONE;
    o.skip_gate = flag(p, "skip_gate_proj"), o.norm_bias = flag(p, "layer_norm_bias");
    o.fused_add = flag(p, "fused_residual_add"), o.store = flag(p, "store_fused_add_result");
    o.gb = flag(p, "gate_bias"), o.ub = flag(p, "up_bias"), o.db = flag(p, "down_bias");
    o.xswz = flag(p, "is_input_swizzled");
    cr_assert(kg_problem_str(p, "weight_layout", v, sizeof v));
    o.wswz = !strcmp(v, "swizzled") && o.quant == MLP_REF_STATIC_MX;
    o.t = (kg_dtype)dtype_of(p, "dtype"), o.ot = (kg_dtype)dtype_of(p, "out_dtype");
    o.wfmt = dtype_of(p, "weight_dtype");
    o.fn = o.wfmt == KG_WT_E4M3FN;
    o.eps = num(p, "eps"), o.clip = num(p, "quant_clipping_bound");
    o.quant_max = num(p, "quant_max");
    o.glo = limit(p, "gate_clamp_lower_limit"), o.ghi = limit(p, "gate_clamp_upper_limit");
    o.ulo = limit(p, "up_clamp_lower_limit"), o.uhi = limit(p, "up_clamp_upper_limit");
    return o;
}

/* The comparator's tolerance for the kernel (common.md: mlp). */
static double rtol_of(const opts *o)
{
    if (o->quant == MLP_REF_MX)
        return 5e-2;
    if (o->xq)
        return o->quant == MLP_REF_ROW ? 4e-2 : 3e-2;
    return 2e-2;
}

/* ---- inputs ---------------------------------------------------------------------------------- */

/* The kernel's tensor arguments, in kg_mlp_fn order (the uniform entry point's t[]). */
enum { A_OUT, A_ADD_OUT, A_HIDDEN, A_ADD, A_GW, A_UW, A_DW, A_GS, A_US, A_DS, A_GUIS, A_DIS,
       A_GAMMA, A_BETA, A_GB, A_UB, A_DB, A_COUNT };

/* Gate, up and down weights (gate absent with skip_gate), their values in logical order for the
 * reference, and (fp8) their per-column dequant scales. */
typedef struct wset {
    kg_wt w[3];
    float *W[3], *sc[3];
} wset;

typedef struct inputs {
    opts o;
    long T;
    void *a[A_COUNT];          /* what the kernel reads (outputs are set per call) */
    wset own_ws;               /* the weights, unless shared from the cache */
    const wset *ws;
    float s_gu, s_down;        /* CTE STATIC activation scales */
    /* the same in logical order and fp32, for the reference */
    float *x, *xa, *dx, *gam, *bet, *bg, *bu, *bd;
    void *owned[32];           /* buffers to free */
    int nowned;
} inputs;

static void *own(inputs *in, void *p)
{
    cr_assert(in->nowned < 32);
    in->owned[in->nowned++] = p;
    return p;
}

/* n values amp * N(0, 1), rounded to t so the reference sees what the kernel reads. */
static float *randv(long n, float amp, kg_dtype t, unsigned long long *seed)
{
    float *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    for (long i = 0; i < n; i++)
        v[i] = kgt_round(t, amp * kgt_normal(seed));
    return v;
}

/* The upstream MX layouts (mlp.md "MX"): a [rows, H] tensor 4H-swizzled (stored q*H/4 +
 * j*128 + p holds h = 512j + 4p + q), and a gate/up bias [P, ceil(I/512), 4] ([p, t, q] holds
 * i = t*4P + q*P + p; P = 128, or I/4 when I < 512). */
static float *swizzle_h(const float *x, long rows, long H)
{
    float *s = malloc((size_t)(rows * H) * sizeof *s);
    for (long r = 0; r < rows; r++)
        for (long q = 0; q < 4; q++)
            for (long j = 0; j < H / 512; j++)
                for (long p = 0; p < 128; p++)
                    s[r * H + q * (H / 4) + j * 128 + p] = x[r * H + 512 * j + 4 * p + q];
    return s;
}

static float *swizzle_bias(const float *b, long I)
{
    long P = I >= 512 ? 128 : I / 4, T5 = I >= 512 ? I / 512 : 1;
    float *s = malloc((size_t)I * sizeof *s);
    for (long p = 0; p < P; p++)
        for (long t = 0; t < T5; t++)
            for (long q = 0; q < 4; q++)
                s[(p * T5 + t) * 4 + q] = b[t * 4 * P + q * P + p];
    return s;
}

/* A [rows, H] float tensor for the kernel (swizzled when the MX layouts say so) and its
 * logical values for the reference. */
static float *tensor(inputs *in, int slot, long rows, float amp, float base,
                     unsigned long long *seed)
{
    long n = rows * in->o.H;
    float *v = randv(n, amp, in->o.t, seed);
    for (long i = 0; i < n; i++)
        v[i] = kgt_round(in->o.t, v[i] + base);
    float *st = in->o.xswz ? swizzle_h(v, rows, in->o.H) : v;
    in->a[slot] = own(in, kgt_encode(in->o.t, st, n));
    if (st != v)
        free(st);
    return own(in, v);
}

static float *bias(inputs *in, int slot, long n, int ibias, unsigned long long *seed)
{
    float *v = randv(n, 0.5f, in->o.t, seed);
    float *st = ibias && in->o.xswz ? swizzle_bias(v, n) : v;
    in->a[slot] = own(in, kgt_encode(in->o.t, st, n));
    if (st != v)
        free(st);
    return own(in, v);
}

/* The CTE fp8 input: ROW rows of H codes then the fp32 dequant scale d (as rmsnorm_quant
 * writes them, |codes| up to quant_max); STATIC plain codes. */
static void fp8_input(inputs *in, unsigned long long *seed)
{
    const opts *o = &in->o;
    int row = o->quant == MLP_REF_ROW;
    long H = o->H, cols = row ? H + 4 : H;
    uint8_t *q = own(in, malloc((size_t)(in->T * cols)));
    in->x = own(in, malloc((size_t)(in->T * H) * sizeof(float)));
    in->dx = own(in, malloc((size_t)(in->T ? in->T : 1) * sizeof(float)));
    for (long t = 0; t < in->T; t++) {
        for (long j = 0; j < H; j++) {
            float v = (row ? 60.0f : 16.0f) * kgt_normal(seed);
            v = v > o->quant_max ? o->quant_max : v < -o->quant_max ? -o->quant_max : v;
            uint8_t c = o->fn ? kg_f32_to_e4m3fn(v) : kg_f32_to_e4m3(v);
            q[t * cols + j] = c;
            in->x[t * H + j] = o->fn ? kg_e4m3fn_to_f32(c) : kg_e4m3_to_f32(c);
        }
        in->dx[t] = 0.004f + 0.002f * fabsf(kgt_normal(seed));
        if (row)
            memcpy(q + t * cols + H, &in->dx[t], 4); /* little-endian host */
    }
    in->a[A_HIDDEN] = q;
}

/* A large logical [K, N] weight, quickly (kgt_wt_random's Box-Muller and fp8 encoder take
 * seconds per Llama-sized matrix): bf16 codes of amp * (an Irwin-Hall approximation of
 * N(0, 1)); fp8 codes drawn directly (random sign, magnitude 0.25 .. 3.75; amp is 1 for fp8).
 * Packed straight from [K, N]; returns the decoded values (malloc'd). */
static float *big_weight(kg_wt *w, int fmt, long K, long N, float amp, unsigned long long seed)
{
    size_t n = (size_t)(K * N), bytes = fmt == KG_WT_BF16 ? 2 : 1;
    cr_assert(fmt == KG_WT_BF16 || fmt == KG_WT_E4M3 || fmt == KG_WT_E4M3FN,
              "big_weight: format %d", fmt);
    unsigned char *codes = malloc(n * bytes);
    float *vals = malloc(n * sizeof *vals), lut[256];
    for (int c = 0; c < 256; c++)
        lut[c] = fmt == KG_WT_E4M3 ? kg_e4m3_to_f32((uint8_t)c) : kg_e4m3fn_to_f32((uint8_t)c);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        if (fmt == KG_WT_BF16) {
            float u = 0.0f;
            for (int k = 0; k < 4; k++)
                u += (float)((seed >> (16 * k)) & 0xffff) * (1.0f / 65536.0f);
            uint16_t c = kg_f32_to_bf16(amp * (u - 2.0f) * 1.7320508f);
            memcpy(codes + 2 * i, &c, 2);
            vals[i] = kg_bf16_to_f32(c);
        } else {
            unsigned r = (unsigned)(seed >> 32);
            uint8_t c = (uint8_t)((r & 0x80) | (5 + (r >> 8) % 4) << 3 | (r >> 16) % 8);
            codes[i] = c;
            vals[i] = lut[c];
        }
    }
    kg_wt_src src = { fmt, KG_WL_KN, K, N, codes, NULL, 0, 0 };
    char err[256];
    cr_assert_eq(kg_wt_pack(w, &src, err, sizeof err), KG_OK, "%s", err);
    free(codes);
    return vals;
}

/* Gate, up and down weights in the kernel's stored layouts, with their dequant scales. */
static void wset_make(wset *ws, const opts *o, unsigned long long seed)
{
    memset(ws, 0, sizeof *ws);
    int mx = o->quant == MLP_REF_MX, fp8 = o->quant != MLP_REF_NONE && !mx;
    int lgu = mx ? KG_WL_MLP_MX_GATE_UP : o->wswz ? KG_WL_MLP_SMX_GATE_UP : KG_WL_KN;
    int ld = mx ? KG_WL_MLP_MX_DOWN : o->wswz ? KG_WL_MLP_SMX_DOWN : KG_WL_KN;
    long K[3] = { o->H, o->H, o->I }, N[3] = { o->I, o->I, o->H };
    for (int i = o->skip_gate ? 1 : 0; i < 3; i++) {
        /* bf16 / fp16 / f32: values ~ 1/sqrt(K); fp8 / fp4 codes use their grid, the dequant
         * (or MX) scales bring them down */
        float amp = fp8 || mx ? (o->wfmt == KG_WT_E2M1 ? 2.0f : 1.0f) : 1.0f / sqrtf((float)K[i]);
        int layout = i < 2 ? lgu : ld;
        unsigned long long s = seed + 101 * (unsigned long long)i;
        if (K[i] * N[i] >= (1l << 22) && layout == KG_WL_KN && !mx)
            ws->W[i] = big_weight(&ws->w[i], o->wfmt, K[i], N[i], amp, s);
        else
            ws->W[i] = kgt_wt_random(&ws->w[i], o->wfmt, layout, K[i], N[i], mx, amp, s, 0, 0);
        if (fp8) {
            ws->sc[i] = malloc((size_t)N[i] * sizeof(float));
            for (long n = 0; n < N[i]; n++)
                ws->sc[i][n] = (0.5f + 0.25f * fabsf(kgt_normal(&seed))) / sqrtf((float)K[i]);
        }
    }
}

static void wset_free(wset *ws)
{
    for (int i = 0; i < 3; i++) {
        kg_wt_free(&ws->w[i]);
        free(ws->W[i]), free(ws->sc[i]);
    }
    memset(ws, 0, sizeof *ws);
}

/* The JIT-vs-AOT loop meets spec kernels that share their weights (the Llama spec's bf16 pair
 * and fp8 pair): it keeps the last two sets, so each Llama-sized set is made once. */
static struct { char key[128]; wset ws; } cache[2];
static int cache_next;

static const wset *cached_wset(const opts *o, unsigned long long seed)
{
    char key[128];
    snprintf(key, sizeof key, "%d %ld %ld %d %d %d %llu", o->wfmt, o->H, o->I, o->quant, o->wswz,
             o->skip_gate, seed);
    for (int i = 0; i < 2; i++)
        if (!strcmp(cache[i].key, key))
            return &cache[i].ws;
    int i = cache_next;
    cache_next = (cache_next + 1) % 2;
    wset_free(&cache[i].ws);
    wset_make(&cache[i].ws, o, seed);
    snprintf(cache[i].key, sizeof cache[i].key, "%s", key);
    return &cache[i].ws;
}

/* Inputs for the kernel of `problem` at T tokens (any T: rows beyond a block cross blocks);
 * with `shared`, the weights come from the cache. */
static void inputs_build_ex(inputs *in, const char *problem, long T, unsigned long long seed,
                            int shared)
{
    memset(in, 0, sizeof *in);
    in->o = read_opts(problem);
    in->T = T;
    const opts *o = &in->o;
    if (o->xq)
        fp8_input(in, &seed);
    else
        in->x = tensor(in, A_HIDDEN, T, 1.0f, 0.0f, &seed);
    if (o->fused_add)
        in->xa = tensor(in, A_ADD, T, 1.0f, 0.0f, &seed);
    if (o->norm == 1 || o->norm == 2)
        in->gam = tensor(in, A_GAMMA, 1, 0.2f, 1.0f, &seed);
    if (o->norm_bias)
        in->bet = tensor(in, A_BETA, 1, 0.3f, 0.0f, &seed);
    if (o->gb)
        in->bg = bias(in, A_GB, o->I, 1, &seed);
    if (o->ub)
        in->bu = bias(in, A_UB, o->I, 1, &seed);
    if (o->db)
        in->bd = bias(in, A_DB, o->H, 0, &seed);
    if (shared)
        in->ws = cached_wset(o, seed);
    else
        wset_make(&in->own_ws, o, seed), in->ws = &in->own_ws;
    for (int i = 0; i < 3; i++) {
        in->a[A_GW + i] = in->ws->W[i] ? (void *)&in->ws->w[i] : NULL;
        in->a[A_GS + i] = in->ws->sc[i];
    }
    in->s_gu = 0.1f, in->s_down = 0.02f;
    in->a[A_GUIS] = &in->s_gu, in->a[A_DIS] = &in->s_down;
}

static void inputs_build(inputs *in, const char *problem, long T, unsigned long long seed)
{
    inputs_build_ex(in, problem, T, seed, 0);
}

static void inputs_free(inputs *in)
{
    wset_free(&in->own_ws);
    for (int i = 0; i < in->nowned; i++)
        free(in->owned[i]);
}

/* The reference on rows [r0, r0 + n) of in. */
static void reference(const inputs *in, float *out, float *add_out, long r0, long n)
{
    const opts *o = &in->o;
    mlp_ref_opts ro = { o->tkg, o->quant, o->act, o->norm, o->skip_gate, o->fn, o->quant_max,
                        o->eps, o->clip, o->glo, o->ghi, o->ulo, o->uhi };
    long H = o->H;
    mlp_ref(out, add_out, in->x + r0 * H, in->xa ? in->xa + r0 * H : NULL,
            in->dx ? in->dx + r0 : NULL, in->ws->W[0], in->ws->W[1], in->ws->W[2], in->ws->sc[0],
            in->ws->sc[1], in->ws->sc[2], in->s_gu, in->s_down, in->gam, in->bet, in->bg, in->bu,
            in->bd, &ro, n, H, o->I);
}

/* ---- running and checking -------------------------------------------------------------------- */

/* Calls k on in's tensors at T tokens into out (and add_out); returns the status. */
static int call(const kg_kernel *k, inputs *in, void *out, void *add_out, long T)
{
    in->a[A_OUT] = out, in->a[A_ADD_OUT] = add_out;
    return k->call(in->a, &T);
}

/* Runs k on in at T tokens and compares rows `rows` (all T when rows == NULL) of out, and of
 * add_out when stored, with the reference at rtol (0: common.md's for the kernel). */
static void check_rows_at(const kg_kernel *k, inputs *in, long T, const long *rows, int nrows,
                          double rtol)
{
    const opts *o = &in->o;
    long H = o->H;
    void *out = kgt_poisoned(o->ot, T * H), *aout = o->store ? kgt_poisoned(o->ot, T * H) : NULL;
    int rc = call(k, in, out, aout, T);
    cr_assert_eq(rc, KG_OK, "%s T=%ld returned %d", k->name, T, rc);
    int n = rows ? nrows : (int)T;
    float *got = kgt_decode(o->ot, out, T * H);
    float *gadd = aout ? kgt_decode(o->ot, aout, T * H) : NULL;
    float *g = malloc((size_t)(n * H) * 4), *w = malloc((size_t)(n * H) * 4);
    float *ga = malloc((size_t)(n * H) * 4), *wa = malloc((size_t)(n * H) * 4);
    for (int i = 0; i < n; i++) {
        long r = rows ? rows[i] : i;
        reference(in, w + i * H, wa + i * H, r, 1);
        memcpy(g + i * H, got + r * H, (size_t)H * 4);
        if (gadd)
            memcpy(ga + i * H, gadd + r * H, (size_t)H * 4);
        for (long j = 0; j < H; j++) {
            w[i * H + j] = kgt_round(o->ot, w[i * H + j]);
            wa[i * H + j] = kgt_round(o->ot, wa[i * H + j]);
        }
    }
    char msg[1024];
    long shape[2] = { n, H };
    cr_assert(kgt_allclose_shaped(g, w, 2, shape, rtol ? rtol : rtol_of(o), 1e-5, msg, sizeof msg),
              "%s T=%ld: out: %s", k->name, T, msg);
    /* the stored sum is the same fp32 addition on both sides, cast once: exact */
    if (gadd)
        cr_assert(kgt_allclose_shaped(ga, wa, 2, shape, 0, 0, msg, sizeof msg),
                  "%s T=%ld: add_out: %s", k->name, T, msg);
    free(out), free(aout), free(got), free(gadd), free(g), free(w), free(ga), free(wa);
}

static void check_rows(const kg_kernel *k, inputs *in, long T, const long *rows, int nrows)
{
    check_rows_at(k, in, T, rows, nrows, 0);
}

/* JIT-compiles problem and checks it at B*S tokens against the reference. */
static void check_problem(const char *problem, long B, long S, unsigned long long seed)
{
    const kg_kernel *k = kgt_jit(problem);
    inputs in;
    inputs_build(&in, k->problem, B * S, seed);
    check_rows(k, &in, B * S, NULL, 0);
    inputs_free(&in);
}

TestSuite(mlp, .init = kgt_suite_init, .fini = kgt_suite_fini);

/* ---- option sweeps on small shapes (H = 256; I = 337 and 345: I % 8 != 0) ---------------- */

/* Every activation x norm x gated / skip_gate; without quantization the variants compute the
 * same, so they alternate (each still meets every activation and norm); biases on half. */
Test(mlp, activations_gating_norms_and_biases)
{
    char p[512];
    for (int a = 0; a < 4; a++)
        for (int n = 0; n < 4; n++)
            for (int sg = 0; sg < 2; sg++) {
                int b = (a + n + sg) % 2, tkg = (a + n) % 2;
                snprintf(p, sizeof p, "mlp:variant=%s,H=256,I=337,activation_fn=%s,"
                         "normalization_type=%s,skip_gate_proj=%s,layer_norm_bias=%s,gate_bias=%s,"
                         "up_bias=%s,down_bias=%s,eps=1e-5", tkg ? "TKG" : "CTE", ACTS[a],
                         NORMS[n], sg ? "true" : "false", n == 2 && b ? "true" : "false",
                         b && !sg ? "true" : "false", b ? "true" : "false", b ? "true" : "false");
                check_problem(p, 1, 7, 11 + (unsigned long long)(a * 16 + n * 2 + sg));
            }
}

/* Each bias alone; the fused add with and without storing, every dtype to every output dtype. */
Test(mlp, biases_fused_add_and_dtypes)
{
    static const char *const dts[] = { "bf16", "fp16", "f32" };
    static const char *const biases[] = { "gate_bias", "up_bias", "down_bias" };
    char p[512];
    for (int b = 0; b < 3; b++) {
        snprintf(p, sizeof p, "mlp:variant=TKG,H=128,I=40,%s=true", biases[b]);
        check_problem(p, 1, 3, 5 + (unsigned long long)b);
    }
    for (int d = 0; d < 3; d++)
        for (int od = 0; od < 3; od++)
            for (int st = 0; st < 2; st++) {
                snprintf(p, sizeof p, "mlp:variant=%s,dtype=%s,out_dtype=%s,H=256,I=344,"
                         "fused_residual_add=true,store_fused_add_result=%s,"
                         "normalization_type=RMS_NORM",
                         (d + od) % 2 ? "TKG" : "CTE", dts[d], dts[od], st ? "true" : "false");
                check_problem(p, 2, 3, 40 + (unsigned long long)(d * 6 + od * 2 + st));
            }
}

/* TKG gate / up clamps: each limit alone, all four, and a lower limit above the upper one
 * (min then max: the lower wins, as upstream). */
Test(mlp, tkg_clamps)
{
    static const char *const clamps[] = {
        "gate_clamp_lower_limit=-0.2", "gate_clamp_upper_limit=0.1", "up_clamp_lower_limit=-0.3",
        "up_clamp_upper_limit=0.25",
        "gate_clamp_lower_limit=-0.6,gate_clamp_upper_limit=0.7,up_clamp_lower_limit=-0.5,"
        "up_clamp_upper_limit=0.8",
        "gate_clamp_lower_limit=0.3,gate_clamp_upper_limit=0.1,activation_fn=GELU",
        "up_clamp_lower_limit=-0.1,up_clamp_upper_limit=0.1,skip_gate_proj=true",
    };
    char p[512];
    for (size_t i = 0; i < sizeof clamps / sizeof clamps[0]; i++) {
        snprintf(p, sizeof p, "mlp:variant=TKG,H=256,I=345,gate_bias=%s,up_bias=true,%s",
                 strstr(clamps[i], "skip") ? "false" : "true", clamps[i]);
        check_problem(p, 1, 4, 70 + (unsigned long long)i);
    }
}

/* The fp8 schemes of each variant: TKG STATIC / ROW weight-only (with norm and fused add), CTE
 * STATIC / ROW on fp8 input (ROW with and without the clipping bound), CTE STATIC_MX with
 * logical and swizzled weights, e4m3 and e4m3fn, quant_max 240 and the format's. */
Test(mlp, fp8_quantization_per_variant)
{
    static const char *const cases[] = {
        "variant=TKG,quantization_type=STATIC,normalization_type=RMS_NORM,fused_residual_add=true,"
        "store_fused_add_result=true",
        "variant=TKG,quantization_type=ROW,normalization_type=LAYER_NORM,gate_bias=true",
        "variant=TKG,quantization_type=ROW,fp8=e4m3fn,skip_gate_proj=true,down_bias=true",
        "variant=TKG,quantization_type=STATIC,weight_dtype=e4m3fn,up_clamp_upper_limit=0.5",
        "variant=CTE,quantization_type=STATIC,gate_bias=true,up_bias=true",
        "variant=CTE,quantization_type=STATIC,fp8=e4m3fn,activation_fn=GELU",
        "variant=CTE,quantization_type=ROW",
        "variant=CTE,quantization_type=ROW,quant_clipping_bound=0.05,up_bias=true",
        "variant=CTE,quantization_type=ROW,fp8=e4m3fn,skip_gate_proj=true,out_dtype=f32",
        "variant=CTE,quantization_type=ROW,fp8=e4m3fn,quant_max=240,quant_clipping_bound=0.1",
        "variant=CTE,quantization_type=STATIC_MX",
        "variant=CTE,quantization_type=STATIC_MX,weight_dtype=e4m3fn,quant_max=240",
        "variant=CTE,quantization_type=STATIC_MX,weight_layout=swizzled,gate_bias=true",
        "variant=CTE,quantization_type=STATIC_MX,weight_layout=swizzled,weight_dtype=e4m3fn,"
        "quant_max=240,dtype=fp16",
    };
    char p[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int big = strstr(cases[i], "STATIC_MX") != NULL; /* the swizzles need 512 multiples */
        snprintf(p, sizeof p, "mlp:H=%d,I=%d,%s", big ? 512 : 256, big ? 1024 : 343, cases[i]);
        check_problem(p, 2, 3, 90 + (unsigned long long)i);
    }
}

/* TKG's fp8 schemes are weight-only (mlp.md step 4): x and h are not quantized. At a tenth of
 * the tolerance the unquantized reference still holds, which fp8 activations (about 2^-4
 * relative per element) would break. */
Test(mlp, tkg_fp8_quantization_is_weight_only)
{
    static const char *const cases[] = {
        "mlp:variant=TKG,H=512,I=344,quantization_type=ROW,normalization_type=RMS_NORM,"
        "out_dtype=f32",
        "mlp:variant=TKG,H=512,I=344,quantization_type=STATIC,up_bias=true,out_dtype=f32",
    };
    for (int i = 0; i < 2; i++) {
        const kg_kernel *k = kgt_jit(cases[i]);
        inputs in;
        inputs_build(&in, k->problem, 4, 50 + (unsigned long long)i);
        check_rows_at(k, &in, 4, NULL, 0, 4e-3);
        inputs_free(&in);
    }
}

/* The clip bound changes the result (the check above could pass with it ignored only if no
 * |h| exceeded it): with a tiny bound every h saturates, so out must differ from no bound. */
Test(mlp, cte_row_clip_bound_takes_effect)
{
    const kg_kernel *k0 = kgt_jit("mlp:variant=CTE,H=128,I=64,quantization_type=ROW");
    const kg_kernel *k1 = kgt_jit("mlp:variant=CTE,H=128,I=64,quantization_type=ROW,"
                                  "quant_clipping_bound=0.001");
    inputs in;
    inputs_build(&in, k0->problem, 2, 3);
    uint16_t *o0 = kgt_poisoned(KG_BF16, 2 * 128), *o1 = kgt_poisoned(KG_BF16, 2 * 128);
    cr_assert_eq(call(k0, &in, o0, NULL, 2), KG_OK);
    cr_assert_eq(call(k1, &in, o1, NULL, 2), KG_OK);
    cr_assert_neq(memcmp(o0, o1, 2 * 128 * 2), 0, "quant_clipping_bound changed nothing");
    in.o.clip = 0.001f; /* and the clipped kernel still matches its reference */
    check_rows(k1, &in, 2, NULL, 0);
    free(o0), free(o1);
    inputs_free(&in);
}

/* TKG MX: fp4 e2m1, fp8 e4m3fn and e5m2 weights in the upstream MX layouts, hidden / gamma /
 * biases logical or in the upstream layouts, I < 512 (one short tile) and I = 1024 (two). */
Test(mlp, tkg_mx_weights_and_layouts)
{
    static const char *const fmts[] = { "e2m1", "e4m3fn", "e5m2" };
    char p[512];
    for (int f = 0; f < 3; f++)
        for (int swz = 0; swz < 2; swz++) {
            snprintf(p, sizeof p, "mlp:variant=TKG,quantization_type=MX,weight_dtype=%s,"
                     "is_input_swizzled=%s,H=512,I=384,normalization_type=RMS_NORM,gate_bias=true,"
                     "up_bias=true,down_bias=true", fmts[f], swz ? "true" : "false");
            check_problem(p, 2, 1, 120 + (unsigned long long)(f * 2 + swz));
            snprintf(p, sizeof p, "mlp:variant=TKG,quantization_type=MX,weight_dtype=%s,"
                     "is_input_swizzled=%s,H=1024,I=1024,normalization_type=LAYER_NORM,"
                     "layer_norm_bias=true,up_bias=true,activation_fn=Swish,out_dtype=f32",
                     fmts[f], swz ? "true" : "false");
            check_problem(p, 1, 3, 130 + (unsigned long long)(f * 2 + swz));
        }
    check_problem("mlp:variant=TKG,quantization_type=MX,H=512,I=96,skip_gate_proj=true,"
                  "is_input_swizzled=true,up_bias=true,dtype=f32,up_clamp_lower_limit=-1", 1, 1,
                  140);
}

/* Packs exact e4m3fn values vals [K, N] as an MX weight in `layout`, every block scale 2^0. */
static void mx_from_values(kg_wt *w, int layout, long K, long N, const float *vals)
{
    long kb = kgt_wt_kb(layout);
    uint32_t *codes = malloc((size_t)(K * N) * sizeof *codes);
    uint8_t *e8 = malloc((size_t)((K + kb - 1) / kb * N));
    for (long i = 0; i < K * N; i++)
        codes[i] = kg_f32_to_e4m3fn(vals[i]);
    memset(e8, 127, (size_t)((K + kb - 1) / kb * N));
    void *scale, *data = kgt_wt_store(KG_WT_E4M3FN, layout, K, N, codes, e8, &scale);
    kg_wt_src src = { KG_WT_E4M3FN, layout, K, N, data, scale, 0, 0 };
    char err[256];
    cr_assert_eq(kg_wt_pack(w, &src, err, sizeof err), KG_OK, "%s", err);
    free(codes), free(e8), free(data), free(scale);
}

/* h's MX blocks are the 8 consecutive p of each of the 4 q (i = q*P + p for I < 512), not 32
 * consecutive i: u = the up bias (zero up weight), huge (2^20) where q = 0 and 1 elsewhere; a
 * block then holds 8 huge values, whose exponent flushes its 24 small ones to 0. The down
 * weight reads only the small ones, so out is exactly 0; blocks of 32 consecutive i would
 * keep them (out ~ 35). */
Test(mlp, tkg_mx_h_blocks_are_8p_by_4q)
{
    const kg_kernel *k = kgt_jit("mlp:variant=TKG,quantization_type=MX,weight_dtype=e4m3fn,"
                                 "H=512,I=64,skip_gate_proj=true,up_bias=true");
    inputs in;
    inputs_build(&in, k->problem, 1, 31);
    const long H = 512, I = 64, P = I / 4;
    for (long i = 0; i < I; i++)
        in.bu[i] = i < P ? 1048576.0f : 1.0f;
    void *ub = kgt_encode(KG_BF16, in.bu, I);
    memcpy(in.a[A_UB], ub, (size_t)I * 2);
    free(ub);
    for (long i = 0; i < H * I; i++)
        in.own_ws.W[1][i] = 0.0f;
    for (long i = 0; i < I * H; i++)
        in.own_ws.W[2][i] = i / H < P ? 0.0f : 1.0f;
    kg_wt_free(&in.own_ws.w[1]), kg_wt_free(&in.own_ws.w[2]);
    mx_from_values(&in.own_ws.w[1], KG_WL_MLP_MX_GATE_UP, H, I, in.own_ws.W[1]);
    mx_from_values(&in.own_ws.w[2], KG_WL_MLP_MX_DOWN, I, H, in.own_ws.W[2]);
    check_rows(k, &in, 1, NULL, 0);
    inputs_free(&in);
}

/* Token counts: one, B > 1 with S > 1, and blocks of 64 with a remainder. */
Test(mlp, token_counts)
{
    static const long BS[][2] = { { 1, 1 }, { 3, 5 }, { 1, 64 }, { 2, 33 }, { 1, 130 } };
    for (size_t i = 0; i < sizeof BS / sizeof BS[0]; i++) {
        check_problem("mlp:variant=CTE,H=128,I=24,normalization_type=RMS_NORM,"
                      "fused_residual_add=true,store_fused_add_result=true,up_bias=true", BS[i][0],
                      BS[i][1], 150 + i);
        check_problem("mlp:variant=CTE,H=128,I=24,quantization_type=ROW", BS[i][0], BS[i][1],
                      160 + i);
    }
}

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
    opts o = read_opts(k->problem);
    long T = 0;
    void *a[A_COUNT] = { 0 };
    static const char *const sn[] = { "gate_w_scale", "up_w_scale", "down_w_scale" };
    for (int i = 0; i < 3; i++) {
        a[A_GW + i] = w[i];
        /* STATIC [128, 1], ROW [128, N]: row 0; MX: the E8M0 scales went into the weight */
        if (o.quant != MLP_REF_NONE && o.quant != MLP_REF_MX && w[i]) {
            a[A_GS + i] = kgt_case_as(c, sn[i], KG_F32);
            cr_assert_not_null(a[A_GS + i], "%s: %s", name, kgt_case_error(c));
        }
    }
    /* activation scales (mlp.md: gate_up_in_scale, down_in_scale; the TKG reference's
     * gate_in_scale / up_in_scale say the same): CTE STATIC reads them, TKG leaves them unused */
    static const char *const gus[] = { "gate_up_in_scale", "gate_in_scale", "up_in_scale" };
    static const char *const ds[] = { "down_in_scale" };
    int stat = v->preq && v->q != MLP_REF_ROW;
    a[A_GUIS] = vector_scale(c, gus, 3, stat), a[A_DIS] = vector_scale(c, ds, 1, stat);
    cr_assert(!stat || (a[A_GUIS] && a[A_DIS]), "%s: CTE %s needs gate_up_in_scale and "
              "down_in_scale", name, v->quant);
    if (v->preq && !o.tkg) {
        a[A_HIDDEN] = vector_fp8_hidden(c, h, v, &T);
    } else {
        a[A_HIDDEN] = vector_tensor(c, h->x, o.t);
        T = kg_npy_count(kgt_case_input(c, h->x)) / o.H;
    }
    a[A_ADD] = h->add ? vector_tensor(c, h->add, o.t) : NULL;
    static const char *const vin[] = { "gamma", "norm_b", "gate_b", "up_b", "down_b" };
    static const int slot[] = { A_GAMMA, A_BETA, A_GB, A_UB, A_DB };
    for (int i = 0; i < 5; i++)
        a[slot[i]] = vector_tensor(c, vin[i], o.t);
    void *out = kgt_poisoned(o.ot, T * o.H), *aout = o.store ? kgt_poisoned(o.ot, T * o.H) : NULL;
    a[A_OUT] = out, a[A_ADD_OUT] = aout;
    cr_assert_eq(k->call(a, &T), KG_OK, "%s: %s", name, k->name);
    vector_compare(c, k->name, "out_out", o.ot, out);
    if (aout)
        vector_compare(c, k->name, "out_add_out", o.ot, aout);
    for (int i = 0; i < 3; i++)
        free(a[A_GS + i]);
    free(a[A_GUIS]), free(a[A_DIS]);
    free(a[A_HIDDEN]), free(a[A_ADD]), free(out), free(aout);
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
        float *xs_ = swz ? swizzle_h(x, T, H) : x, *gs_ = swz ? swizzle_h(gam, 1, H) : gam;
        float *bg_ = swz ? swizzle_bias(bg, I) : bg, *bu_ = swz ? swizzle_bias(bu, I) : bu;
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

/* ---- Llama-3-8B shapes (H 4096, I 14336) ----------------------------------------------------- */

/* bf16 NONE: CTE at T = 128 (two blocks; rows at the block edges checked) and TKG at T = 1 on
 * the same inputs. */
Test(mlp, llama3_8b_bf16_cte_t128_and_tkg_t1, .timeout = 60 * KGT_TIME_SCALE)
{
    const kg_kernel *cte = kgt_jit("mlp:variant=CTE,H=4096,I=14336");
    const kg_kernel *tkg = kgt_jit("mlp:variant=TKG,H=4096,I=14336");
    inputs in;
    inputs_build(&in, cte->problem, 128, 8);
    static const long rows[] = { 0, 63, 64, 127 };
    check_rows(cte, &in, 128, rows, 4);
    in.o.tkg = 1;
    check_rows(tkg, &in, 1, NULL, 0);
    inputs_free(&in);
}

Test(mlp, llama3_8b_fp8_row_tkg_t1, .timeout = 60 * KGT_TIME_SCALE)
{
    const kg_kernel *k = kgt_jit("mlp:variant=TKG,H=4096,I=14336,quantization_type=ROW,"
                                 "normalization_type=RMS_NORM");
    inputs in;
    inputs_build(&in, k->problem, 1, 9);
    check_rows(k, &in, 1, NULL, 0);
    inputs_free(&in);
}

/* ---- rmsnorm_quant ROW -> MLP-CTE ROW -------------------------------------------------------- */

/* A real rmsnorm_quant kernel writes the packed [T, H+4] fp8 rows an MLP-CTE ROW kernel reads;
 * end to end against the two references chained the same way. */
Test(mlp, chain_rmsnorm_quant_row_into_cte_row)
{
    const long B = 2, S = 5, T = B * S, H = 384;
    const kg_kernel *rq = kgt_jit("rmsnorm_quant:dtype=bf16,fp8=e4m3,H=384,norm_type=RMS_NORM,"
                                  "quantization_type=ROW,eps=1e-5");
    const kg_kernel *k = kgt_jit("mlp:variant=CTE,dtype=bf16,fp8=e4m3,H=384,I=344,"
                                 "quantization_type=ROW,up_bias=true");
    inputs in;
    inputs_build(&in, k->problem, T, 21);
    unsigned long long seed = 5;
    float *x = randv(T * H, 2.0f, KG_BF16, &seed), *g = randv(H, 0.2f, KG_BF16, &seed);
    for (long j = 0; j < H; j++)
        g[j] = kgt_round_bf16(g[j] + 1.0f);
    void *xb = kgt_encode(KG_BF16, x, T * H), *gb = kgt_encode(KG_BF16, g, H);
    /* 0xff: NaN codes and scales, so rows the rmsnorm_quant kernel left unwritten fail */
    uint8_t *packed = memset(malloc((size_t)(T * (H + 4))), 0xff, (size_t)(T * (H + 4)));
    uint8_t *packed_ref = calloc((size_t)(T * (H + 4)), 1);
    cr_assert_eq(((kg_rmsnorm_quant_fn *)rq->fn)(packed, xb, gb, NULL, T), KG_OK);
    /* the reference chain: rmsnorm_quant_ref, its rows decoded, then mlp_ref */
    rmsnorm_quant_ref(packed_ref, x, g, 0.0f, 1, 1, 0, 0.0f, 1e-5f, 240.0f, T, H);
    for (long t = 0; t < T; t++) {
        for (long j = 0; j < H; j++)
            in.x[t * H + j] = kg_e4m3_to_f32(packed_ref[t * (H + 4) + j]);
        memcpy(&in.dx[t], packed_ref + t * (H + 4) + H, 4);
    }
    in.a[A_HIDDEN] = packed;
    check_rows(k, &in, T, NULL, 0);
    free(x), free(g), free(xb), free(gb), free(packed), free(packed_ref);
    inputs_free(&in);
}

/* ---- run-time checks ---------------------------------------------------- */

/* Each required tensor NULL, each weight handle wrong (shape, format, MX-ness), T < 0 refused;
 * T == 0 writes nothing and needs no tensor. */
static void refuses_each(const char *problem, const int *slots, int nslots)
{
    const kg_kernel *k = kgt_jit(problem);
    inputs in;
    inputs_build(&in, k->problem, 2, 4);
    long H = in.o.H;
    void *out = kgt_poisoned(in.o.ot, 2 * H), *aout = kgt_poisoned(in.o.ot, 2 * H);
    cr_assert_eq(call(k, &in, out, aout, 2), KG_OK, "%s: the complete call", k->name);
    for (int i = 0; i < nslots; i++) {
        void *keep = slots[i] == A_OUT ? out : slots[i] == A_ADD_OUT ? aout : in.a[slots[i]];
        in.a[slots[i]] = NULL;
        long T = 2;
        in.a[A_OUT] = slots[i] == A_OUT ? NULL : out;
        in.a[A_ADD_OUT] = slots[i] == A_ADD_OUT ? NULL : aout;
        cr_assert_eq(k->call(in.a, &T), KG_EARG, "%s: tensor %d NULL", k->name, slots[i]);
        in.a[slots[i]] = keep;
    }
    /* wrong handles: up as down (shape), and a handle of another format or MX-ness */
    kg_wt other;
    int fmt = in.o.wfmt == KG_WT_BF16 ? KG_WT_E4M3 : KG_WT_BF16;
    free(kgt_wt_random(&other, fmt, KG_WL_KN, H, in.o.I, 0, 1.0f, 3, 0, 0));
    const void *down = in.a[A_DW];
    in.a[A_DW] = in.a[A_UW];
    cr_assert_eq(call(k, &in, out, aout, 2), KG_EARG, "%s: up_w passed as down_w", k->name);
    in.a[A_DW] = (void *)down;
    void *up = in.a[A_UW];
    in.a[A_UW] = &other;
    cr_assert_eq(call(k, &in, out, aout, 2), KG_EARG, "%s: a %s up_w", k->name,
                 kg_wt_fmt_name(fmt));
    in.a[A_UW] = up;
    kg_wt_free(&other);
    cr_assert_eq(call(k, &in, out, aout, -1), KG_EARG, "%s: T < 0", k->name);
    void *none[A_COUNT] = { 0 };
    long zero = 0;
    cr_assert_eq(k->call(none, &zero), KG_OK, "%s: T == 0 is an empty call", k->name);
    free(out), free(aout);
    inputs_free(&in);
}

Test(mlp, run_time_checks)
{
    static const int full[] = { A_OUT, A_ADD_OUT, A_HIDDEN, A_ADD, A_GW, A_UW, A_DW, A_GAMMA,
                                A_BETA, A_GB, A_UB, A_DB };
    refuses_each("mlp:variant=TKG,H=128,I=40,normalization_type=LAYER_NORM,layer_norm_bias=true,"
                 "fused_residual_add=true,store_fused_add_result=true,gate_bias=true,up_bias=true,"
                 "down_bias=true", full, sizeof full / sizeof full[0]);
    static const int scales[] = { A_GS, A_US, A_DS, A_GUIS, A_DIS };
    refuses_each("mlp:variant=CTE,H=128,I=40,quantization_type=STATIC", scales, 5);
    static const int row[] = { A_GS, A_US, A_DS, A_GAMMA };
    refuses_each("mlp:variant=TKG,H=128,I=40,quantization_type=ROW,normalization_type=RMS_NORM",
                 row, 4);
    /* an MX kernel refuses a handle without MX scales */
    const kg_kernel *k = kgt_jit("mlp:variant=TKG,quantization_type=MX,H=512,I=64");
    inputs in;
    inputs_build(&in, k->problem, 1, 6);
    kg_wt plain;
    free(kgt_wt_random(&plain, KG_WT_E4M3FN, KG_WL_KN, 512, 64, 0, 1.0f, 3, 0, 0));
    void *out = kgt_poisoned(KG_BF16, 512);
    cr_assert_eq(call(k, &in, out, NULL, 1), KG_OK);
    in.a[A_GW] = &plain;
    cr_assert_eq(call(k, &in, out, NULL, 1), KG_EARG, "an MX kernel took a plain weight");
    kg_wt_free(&plain);
    free(out);
    inputs_free(&in);
}

/* ---- JIT vs AOT ------------------------------------------------------------------------------ */

/* Both builds of a spec kernel on the same inputs at T = 3 give the same bytes (out and, when
 * stored, add_out), and the AOT build matches the reference on the spec's own shapes. */
static void compare_builds(const kg_kernel *a, const kg_kernel *j)
{
    inputs in;
    inputs_build_ex(&in, a->problem, 3, 12, 1);
    long n = 3 * in.o.H, shape[2] = { 3, in.o.H };
    kg_dtype t = in.o.ot;
    void *oa = kgt_build_output(t, n, KGT_AOT), *oj = kgt_build_output(t, n, KGT_JIT);
    void *aa = kgt_build_output(t, n, KGT_AOT), *aj = kgt_build_output(t, n, KGT_JIT);
    cr_assert_eq(call(a, &in, oa, aa, 3), KG_OK, "%s (AOT)", a->name);
    cr_assert_eq(call(j, &in, oj, aj, 3), KG_OK, "%s (JIT)", a->name);
    char msg[1024];
    cr_assert(kgt_same_bytes(oj, oa, t, n, 2, shape, msg, sizeof msg), "%s: %s", a->name, msg);
    if (in.o.store)
        cr_assert(kgt_same_bytes(aj, aa, t, n, 2, shape, msg, sizeof msg), "%s add_out: %s",
                  a->name, msg);
    static const long last[] = { 2 }; /* a Llama-sized reference is slow: one row there */
    int big = in.o.H * in.o.I > (1l << 22);
    check_rows(a, &in, 3, big ? last : NULL, 1);
    free(oa), free(oj), free(aa), free(aj);
    inputs_free(&in);
}

Test(mlp, jit_and_aot_are_bit_identical, .timeout = 120 * KGT_TIME_SCALE)
{
    cr_assert_gt(kgt_each_aot_jit_pair("mlp", compare_builds), 0,
                 "no AOT-built spec has an mlp kernel");
}
