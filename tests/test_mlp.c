/* tests/test_mlp.c: the mlp family (variants CTE and TKG) against tests/ref/mlp_ref.c: every
 * activation, gating, norm, bias, fused add, quantization type of each variant, clip bound,
 * clamps, output dtype, MX weight format and layout, on small and edge shapes; Llama-3-8B
 * shapes; rmsnorm_quant ROW feeding an MLP-CTE ROW kernel; run-time checks, and JIT vs AOT
 * bit-identity. The vector adapter is test_mlp_vectors.c. */
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
#include "util/compare.h"
#include "util/jitp.h"
#include "util/mlp_args.h"
#include "util/tensors.h"
#include "util/weights.h"

/* The comparator's tolerance for the kernel (common.md: mlp). */
static double rtol_of(const mlpa_opts *o)
{
    if (o->quant == MLP_REF_MX)
        return 5e-2;
    if (o->xq)
        return o->quant == MLP_REF_ROW ? 4e-2 : 3e-2;
    return 2e-2;
}

/* ---- inputs ---------------------------------------------------------------------------------- */

/* Gate, up and down weights (gate absent with skip_gate), their values in logical order for the
 * reference, and (fp8) their per-column dequant scales. */
typedef struct wset {
    kg_wt w[3];
    float *W[3], *sc[3];
} wset;

typedef struct inputs {
    mlpa_opts o;
    long T;
    void *a[MLPA_COUNT];       /* what the kernel reads (outputs are set per call) */
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

/* A [rows, H] float tensor for the kernel (swizzled when the MX layouts say so) and its
 * logical values for the reference. */
static float *tensor(inputs *in, int slot, long rows, float amp, float base,
                     unsigned long long *seed)
{
    long n = rows * in->o.H;
    float *v = randv(n, amp, in->o.t, seed);
    for (long i = 0; i < n; i++)
        v[i] = kgt_round(in->o.t, v[i] + base);
    float *st = in->o.xswz ? mlpa_swizzle_h(v, rows, in->o.H) : v;
    in->a[slot] = own(in, kgt_encode(in->o.t, st, n));
    if (st != v)
        free(st);
    return own(in, v);
}

static float *bias(inputs *in, int slot, long n, int ibias, unsigned long long *seed)
{
    float *v = randv(n, 0.5f, in->o.t, seed);
    float *st = ibias && in->o.xswz ? mlpa_swizzle_bias(v, n) : v;
    in->a[slot] = own(in, kgt_encode(in->o.t, st, n));
    if (st != v)
        free(st);
    return own(in, v);
}

/* The CTE fp8 input: ROW rows of H codes then the fp32 dequant scale d (as rmsnorm_quant
 * writes them, |codes| up to quant_max); STATIC plain codes. */
static void fp8_input(inputs *in, unsigned long long *seed)
{
    const mlpa_opts *o = &in->o;
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
    in->a[MLPA_HIDDEN] = q;
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
static void wset_make(wset *ws, const mlpa_opts *o, unsigned long long seed)
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

static const wset *cached_wset(const mlpa_opts *o, unsigned long long seed)
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
    in->o = mlpa_read_opts(problem);
    in->T = T;
    const mlpa_opts *o = &in->o;
    if (o->xq)
        fp8_input(in, &seed);
    else
        in->x = tensor(in, MLPA_HIDDEN, T, 1.0f, 0.0f, &seed);
    if (o->fused_add)
        in->xa = tensor(in, MLPA_ADD, T, 1.0f, 0.0f, &seed);
    if (o->norm == 1 || o->norm == 2)
        in->gam = tensor(in, MLPA_GAMMA, 1, 0.2f, 1.0f, &seed);
    if (o->norm_bias)
        in->bet = tensor(in, MLPA_BETA, 1, 0.3f, 0.0f, &seed);
    if (o->gb)
        in->bg = bias(in, MLPA_GB, o->I, 1, &seed);
    if (o->ub)
        in->bu = bias(in, MLPA_UB, o->I, 1, &seed);
    if (o->db)
        in->bd = bias(in, MLPA_DB, o->H, 0, &seed);
    if (shared)
        in->ws = cached_wset(o, seed);
    else
        wset_make(&in->own_ws, o, seed), in->ws = &in->own_ws;
    for (int i = 0; i < 3; i++) {
        in->a[MLPA_GW + i] = in->ws->W[i] ? (void *)&in->ws->w[i] : NULL;
        in->a[MLPA_GS + i] = in->ws->sc[i];
    }
    in->s_gu = 0.1f, in->s_down = 0.02f;
    in->a[MLPA_GUIS] = &in->s_gu, in->a[MLPA_DIS] = &in->s_down;
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
    const mlpa_opts *o = &in->o;
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
    in->a[MLPA_OUT] = out, in->a[MLPA_ADD_OUT] = add_out;
    return k->call(in->a, &T);
}

/* Runs k on in at T tokens and compares rows `rows` (all T when rows == NULL) of out, and of
 * add_out when stored, with the reference at rtol (0: common.md's for the kernel). */
static void check_rows_at(const kg_kernel *k, inputs *in, long T, const long *rows, int nrows,
                          double rtol)
{
    const mlpa_opts *o = &in->o;
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
                         "up_bias=%s,down_bias=%s,eps=1e-5", tkg ? "TKG" : "CTE", mlpa_acts[a],
                         mlpa_norms[n], sg ? "true" : "false", n == 2 && b ? "true" : "false",
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
    memcpy(in.a[MLPA_UB], ub, (size_t)I * 2);
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
    in.a[MLPA_HIDDEN] = packed;
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
        void *keep = slots[i] == MLPA_OUT ? out : slots[i] == MLPA_ADD_OUT ? aout : in.a[slots[i]];
        in.a[slots[i]] = NULL;
        long T = 2;
        in.a[MLPA_OUT] = slots[i] == MLPA_OUT ? NULL : out;
        in.a[MLPA_ADD_OUT] = slots[i] == MLPA_ADD_OUT ? NULL : aout;
        cr_assert_eq(k->call(in.a, &T), KG_EARG, "%s: tensor %d NULL", k->name, slots[i]);
        in.a[slots[i]] = keep;
    }
    /* wrong handles: up as down (shape), and a handle of another format or MX-ness */
    kg_wt other;
    int fmt = in.o.wfmt == KG_WT_BF16 ? KG_WT_E4M3 : KG_WT_BF16;
    free(kgt_wt_random(&other, fmt, KG_WL_KN, H, in.o.I, 0, 1.0f, 3, 0, 0));
    const void *down = in.a[MLPA_DW];
    in.a[MLPA_DW] = in.a[MLPA_UW];
    cr_assert_eq(call(k, &in, out, aout, 2), KG_EARG, "%s: up_w passed as down_w", k->name);
    in.a[MLPA_DW] = (void *)down;
    void *up = in.a[MLPA_UW];
    in.a[MLPA_UW] = &other;
    cr_assert_eq(call(k, &in, out, aout, 2), KG_EARG, "%s: a %s up_w", k->name,
                 kg_wt_fmt_name(fmt));
    in.a[MLPA_UW] = up;
    kg_wt_free(&other);
    cr_assert_eq(call(k, &in, out, aout, -1), KG_EARG, "%s: T < 0", k->name);
    void *none[MLPA_COUNT] = { 0 };
    long zero = 0;
    cr_assert_eq(k->call(none, &zero), KG_OK, "%s: T == 0 is an empty call", k->name);
    free(out), free(aout);
    inputs_free(&in);
}

Test(mlp, run_time_checks)
{
    static const int full[] = { MLPA_OUT, MLPA_ADD_OUT, MLPA_HIDDEN, MLPA_ADD, MLPA_GW, MLPA_UW,
                                MLPA_DW, MLPA_GAMMA, MLPA_BETA, MLPA_GB, MLPA_UB, MLPA_DB };
    refuses_each("mlp:variant=TKG,H=128,I=40,normalization_type=LAYER_NORM,layer_norm_bias=true,"
                 "fused_residual_add=true,store_fused_add_result=true,gate_bias=true,up_bias=true,"
                 "down_bias=true", full, sizeof full / sizeof full[0]);
    static const int scales[] = { MLPA_GS, MLPA_US, MLPA_DS, MLPA_GUIS, MLPA_DIS };
    refuses_each("mlp:variant=CTE,H=128,I=40,quantization_type=STATIC", scales, 5);
    static const int row[] = { MLPA_GS, MLPA_US, MLPA_DS, MLPA_GAMMA };
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
    in.a[MLPA_GW] = &plain;
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
