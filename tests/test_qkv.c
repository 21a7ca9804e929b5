/* tests/test_qkv.c: the qkv family (CTE and TKG) against tests/ref/qkv_ref.c: an option sweep on
 * small shapes (every norm, quantization, weight layout, output layout, bias, fused add, RoPE,
 * flat and block fp8 KV cache, swizzled and fp8 input, B > 1, one head, one token), Llama-3-8B
 * shapes at T = 1 and T = 128, names that parse back, rejected problems, run-time argument
 * checks, and JIT vs AOT bit-identity over the specs' kernels. The vector adapter is
 * test_qkv_vectors.c. */
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
#include "util/tensors.h"
#include "util/weights.h"

/* ---- one problem ----------------------------------------------------------------------------- */

/* The keys of a qkv problem (NULL / 0: the family's default) and the per-call sizes. */
typedef struct qcase {
    const char *variant, *dtype, *quant, *wdtype, *wlayout, *layout, *norm, *kv;
    long H, nq, nkv, d, hact, bs;
    int beta, bias, add, swz, mxs, rope;
    double eps, qmax, kvmax, kvmin; /* 0: default */
    long B, S, L;                   /* L: cache_len */
} qcase;

static const char *or_default(const char *s, const char *d) { return s ? s : d; }
static int is(const char *a, const char *b) { return a && strcmp(a, b) == 0; }
static int is_fp8(const char *dt) { return is(dt, "e4m3") || is(dt, "e4m3fn"); }

/* Fills the defaults in, so the rest of the test reads one complete description. */
static qcase complete(qcase c)
{
    c.variant = or_default(c.variant, "CTE");
    c.dtype = or_default(c.dtype, "bf16");
    c.quant = or_default(c.quant, "NONE");
    if (!c.wdtype)
        c.wdtype = is(c.quant, "NONE") ? (is_fp8(c.dtype) ? "bf16" : c.dtype)
                   : is(c.quant, "MX") ? "e4m3fn" : "e4m3";
    if (!c.wlayout)
        c.wlayout = is(c.quant, "MX") ? "MX_CONTIGUOUS" : "CONTIGUOUS";
    c.layout = or_default(c.layout, "BSD");
    c.norm = or_default(c.norm, "NO_NORM");
    c.kv = or_default(c.kv, "NONE");
    if (!c.hact)
        c.hact = c.H;
    if (c.eps == 0)
        c.eps = 1e-6;
    if (c.qmax == 0)
        c.qmax = is(c.wdtype, "e4m3fn") ? 448 : 240;
    if (c.kvmax == 0)
        c.kvmax = 240;
    if (c.kvmin == 0)
        c.kvmin = -c.kvmax;
    if (c.B == 0)
        c.B = 1;
    if (c.S == 0)
        c.S = 1;
    if (c.L == 0)
        c.L = is(c.kv, "BLOCK") ? (c.B * c.S + c.bs - 1) / c.bs + 2 : c.S + 3;
    return c;
}

/* The problem string of a complete case (every key spelled, so it reads as the case). */
static void problem_of(const qcase *c, char *buf, size_t len)
{
    snprintf(buf, len,
             "qkv:variant=%s,dtype=%s,quantization_type=%s,weight_dtype=%s,H=%ld,nq=%ld,"
             "nkv=%ld,d=%ld,hidden_actual=%ld,output_layout=%s,norm_type=%s,"
             "layer_norm_bias=%d,eps=%.9g,bias=%d,fused_residual_add=%d,weight_layout=%s,"
             "is_input_swizzled=%d,mx_static_dequant=%d,quant_max=%.9g,fused_rope=%d,"
             "kv_cache=%s,block_size=%ld,fp8_max=%.9g,fp8_min=%.9g",
             c->variant, c->dtype, c->quant, c->wdtype, c->H, c->nq, c->nkv, c->d, c->hact,
             c->layout, c->norm, c->beta, c->eps, c->bias, c->add, c->wlayout, c->swz, c->mxs,
             c->qmax, c->rope, c->kv, c->bs, c->kvmax, c->kvmin);
}

/* A complete case from a kernel's canonical problem string (for the specs' kernels). */
static qcase case_of_problem(const char *p)
{
    static char strs[8][32];
    static const char *const skeys[8] = { "variant", "dtype", "quantization_type",
                                          "weight_dtype", "weight_layout", "output_layout",
                                          "norm_type", "kv_cache" };
    for (int i = 0; i < 8; i++)
        cr_assert(kg_problem_str(p, skeys[i], strs[i], sizeof strs[i]), "%s: %s", p, skeys[i]);
    qcase c = { .variant = strs[0], .dtype = strs[1], .quant = strs[2], .wdtype = strs[3],
                .wlayout = strs[4], .layout = strs[5], .norm = strs[6], .kv = strs[7] };
    cr_assert(kg_problem_long(p, "H", &c.H) && kg_problem_long(p, "nq", &c.nq) &&
              kg_problem_long(p, "nkv", &c.nkv) && kg_problem_long(p, "d", &c.d) &&
              kg_problem_long(p, "hidden_actual", &c.hact) &&
              kg_problem_long(p, "block_size", &c.bs) && kg_problem_double(p, "eps", &c.eps) &&
              kg_problem_double(p, "quant_max", &c.qmax) &&
              kg_problem_double(p, "fp8_max", &c.kvmax) &&
              kg_problem_double(p, "fp8_min", &c.kvmin), "%s", p);
    static const char *const bkeys[6] = { "layer_norm_bias", "bias", "fused_residual_add",
                                          "is_input_swizzled", "mx_static_dequant",
                                          "fused_rope" };
    int *bools[6] = { &c.beta, &c.bias, &c.add, &c.swz, &c.mxs, &c.rope };
    for (int i = 0; i < 6; i++) {
        char v[8];
        cr_assert(kg_problem_str(p, bkeys[i], v, sizeof v), "%s: %s", p, bkeys[i]);
        *bools[i] = strcmp(v, "true") == 0;
    }
    return c;
}

/* ---- tensors of one run ---------------------------------------------------------------------- */

typedef struct qrun {
    qcase c;
    qkv_ref_opts o;
    kg_dtype dt, sdt, odt;            /* input, side tensors (bias, gamma, ...), output */
    long T, I, qd, kvd, out_n, cache_n;
    int tkg_add, kv;
    float *input, *mlp, *attn, *gamma, *beta, *bias, *cos, *sin, *W, *ws;
    float in_s, k_s, v_s;
    int32_t *slots;
    void *e_input, *e_mlp, *e_attn, *e_gamma, *e_beta, *e_bias, *e_cos, *e_sin;
    uint8_t *cache0;                  /* the caches' initial bytes (k and v alike) */
    kg_wt w;
} qrun;

static int norm_code(const char *n)
{
    return is(n, "RMS_NORM") ? 1 : is(n, "LAYER_NORM") ? 2 : is(n, "RMS_NORM_SKIP_GAMMA") ? 3 : 0;
}

static int quant_code(const char *q)
{
    return is(q, "STATIC") ? 1 : is(q, "ROW") ? 2 : is(q, "MX") ? 3 : 0;
}

/* The output dtype: bf16 for fp8 input and for CTE STATIC without the KV cache (qkv.md). */
static kg_dtype out_dtype(const qcase *c, kg_dtype dt)
{
    if (is_fp8(c->dtype))
        return KG_BF16;
    if (is(c->variant, "CTE") && is(c->quant, "STATIC") && is(c->kv, "NONE"))
        return KG_BF16;
    return dt;
}

static float *randn_scaled(kg_dtype t, long n, float scale, unsigned long long seed)
{
    float *x = malloc((size_t)(n ? n : 1) * sizeof *x);
    for (long i = 0; i < n; i++)
        x[i] = kgt_round(t, kgt_normal(&seed) * scale);
    return x;
}

/* fp8 input: 4 N(0, 1) values on the format's grid, and their codes. */
static float *fp8_input(int fn, long n, unsigned long long seed, void **codes)
{
    float *x = malloc((size_t)n * sizeof *x);
    uint8_t *q = malloc((size_t)n);
    for (long i = 0; i < n; i++) {
        float v = kgt_normal(&seed) * 4.0f;
        q[i] = fn ? kg_f32_to_e4m3fn(v) : kg_f32_to_e4m3(v);
        x[i] = fn ? kg_e4m3fn_to_f32(q[i]) : kg_e4m3_to_f32(q[i]);
    }
    *codes = q;
    return x;
}

/* Zeroes the padding columns h >= hidden_actual of rows [rows, H], then stores each row in
 * the swizzled order if asked (stored q*H/4 + 128j + p holds h = 512j + 4p + q). */
static void pad_and_store(float *x, long rows, const qcase *c)
{
    long H = c->H;
    float *tmp = malloc((size_t)H * sizeof *tmp);
    for (long r = 0; r < rows; r++) {
        float *row = x + r * H;
        for (long h = c->hact; h < H; h++)
            row[h] = 0.0f;
        if (!c->swz)
            continue;
        for (long j = 0; j < H / 512; j++)
            for (long p = 0; p < 128; p++)
                for (long q = 0; q < 4; q++)
                    tmp[q * (H / 4) + 128 * j + p] = row[512 * j + 4 * p + q];
        memcpy(row, tmp, (size_t)H * sizeof *tmp);
    }
    free(tmp);
}

/* The weight, by quantization: its values W [H, I] (what the GEMM reads) and packed handle. */
static void make_weight(qrun *r, unsigned long long seed)
{
    const qcase *c = &r->c;
    int fmt = kg_wt_fmt_from_name(c->wdtype);
    int layout = is(c->wlayout, "MX_CONTIGUOUS") ? KG_WL_X4
                 : is(c->wlayout, "MX_INTERLEAVED") ? KG_WL_X4_INTERLEAVED : KG_WL_KN;
    int mx = is(c->quant, "MX") && !c->mxs;
    float inv_sqrt = 1.0f / sqrtf((float)c->H);
    /* NONE: y ~ N(0, 1) per unit input; fp8: N(0, 1) codes, the scales bring y back to O(1);
     * MX: small codes (the random E8M0 block scales span 2^-5 .. 2^4) */
    float scale = is(c->quant, "NONE") ? inv_sqrt : mx ? 0.25f * inv_sqrt : 1.0f;
    r->W = kgt_wt_random(&r->w, fmt, layout, c->H, r->I, mx, scale, seed, 0, 0);
}

/* Scales: STATIC / MX static w_scale [3] and in_scale; ROW w_scale [I]; KV k and v scales. */
static void make_scales(qrun *r, unsigned long long seed)
{
    const qcase *c = &r->c;
    float inv_sqrt = 1.0f / sqrtf((float)c->H);
    int q = quant_code(c->quant);
    long n = q == 2 ? r->I : 3;
    r->ws = malloc((size_t)n * sizeof *r->ws);
    for (long i = 0; i < n; i++) /* inv_sqrt times a value in (0.75, 1.25) */
        r->ws[i] = inv_sqrt * (1.0f + 0.25f * tanhf(kgt_normal(&seed)));
    /* STATIC: x / s_in reaches past +-quant_max now and then, so the clamp is exercised */
    r->in_s = c->mxs ? 1.0f / 64.0f : 2.5f / (float)c->qmax;
    r->k_s = 0.02f, r->v_s = 0.015f;
}

/* cos and sin [B, S, d] of random angles, with duplicated halves (the HF tables). */
static void make_tables(qrun *r, unsigned long long seed)
{
    long d = r->c.d, half = d / 2, n = r->T * d;
    r->cos = malloc((size_t)n * sizeof *r->cos);
    r->sin = malloc((size_t)n * sizeof *r->sin);
    for (long t = 0; t < r->T; t++)
        for (long j = 0; j < half; j++) {
            float a = 3.0f * kgt_normal(&seed);
            float cv = kgt_round(r->sdt, cosf(a)), sv = kgt_round(r->sdt, sinf(a));
            r->cos[t * d + j] = r->cos[t * d + j + half] = cv;
            r->sin[t * d + j] = r->sin[t * d + j + half] = sv;
        }
    if (d % 2) /* an odd d has no rotation; keep the last column defined */
        for (long t = 0; t < r->T; t++)
            r->cos[t * d + d - 1] = r->sin[t * d + d - 1] = 0.0f;
    r->e_cos = kgt_encode(r->sdt, r->cos, n);
    r->e_sin = kgt_encode(r->sdt, r->sin, n);
}

/* Block cache: T distinct slots drawn from the L * bs of the cache. */
static void make_slots(qrun *r, unsigned long long seed)
{
    long n = r->c.L * r->c.bs;
    cr_assert(n >= r->T, "block cache of %ld slots for %ld tokens", n, r->T);
    int32_t *all = malloc((size_t)n * sizeof *all);
    for (long i = 0; i < n; i++)
        all[i] = (int32_t)i;
    for (long i = n - 1; i > 0; i--) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        long j = (long)((seed >> 33) % (unsigned long long)(i + 1));
        int32_t t = all[i];
        all[i] = all[j], all[j] = t;
    }
    r->slots = all;
}

static void make_options(qrun *r)
{
    const qcase *c = &r->c;
    qkv_ref_opts o = {
        .tkg = is(c->variant, "TKG"), .H = c->H, .nq = c->nq, .nkv = c->nkv, .d = c->d,
        .hidden_actual = c->hact, .norm = norm_code(c->norm), .quant = quant_code(c->quant),
        .mx_static = c->mxs, .static_fn = is(c->wdtype, "e4m3fn"), .quant_max = (float)c->qmax,
        .eps = (float)c->eps, .swizzled = c->swz, .rope = c->rope,
        .nbsd = is(c->layout, "NBSd"), .fused_add = c->add,
        .kv = is(c->kv, "FLAT") ? 1 : is(c->kv, "BLOCK") ? 2 : 0, .block_size = c->bs,
        .kv_max = (float)c->kvmax, .kv_min = (float)c->kvmin,
        .round_in = r->dt == KG_BF16 ? kgt_round_bf16 : r->dt == KG_F16 ? kgt_round_f16 : NULL,
    };
    r->o = o;
}

/* Every input of case c (complete), seeded. */
static void setup(qrun *r, const qcase *c, unsigned long long seed)
{
    memset(r, 0, sizeof *r);
    r->c = *c;
    long H = c->H, N = c->nq + 2 * c->nkv;
    r->T = c->B * c->S, r->I = N * c->d, r->qd = c->nq * c->d, r->kvd = c->nkv * c->d;
    r->dt = (kg_dtype)kg_dtype_from_name(c->dtype);
    r->sdt = is_fp8(c->dtype) ? KG_BF16 : r->dt;
    r->odt = out_dtype(c, r->dt);
    r->kv = !is(c->kv, "NONE");
    r->tkg_add = is(c->variant, "TKG") && c->add;
    r->out_n = r->T * (r->kv ? r->qd : r->I);
    r->cache_n = (is(c->kv, "BLOCK") ? c->L * c->bs : c->B * c->L) * r->kvd;
    make_options(r);
    if (is_fp8(c->dtype)) {
        r->input = fp8_input(is(c->dtype, "e4m3fn"), r->T * H, seed, &r->e_input);
        pad_and_store(r->input, r->T, c);
        for (long i = 0; i < r->T * H; i++) /* re-encode after the permutation */
            ((uint8_t *)r->e_input)[i] = is(c->dtype, "e4m3fn") ? kg_f32_to_e4m3fn(r->input[i])
                                                                : kg_f32_to_e4m3(r->input[i]);
    } else {
        r->input = kgt_randn(r->dt, r->T * H, seed);
        pad_and_store(r->input, r->T, c);
        r->e_input = kgt_encode(r->dt, r->input, r->T * H);
    }
    if (c->add) {
        r->mlp = kgt_randn(r->dt, r->T * H, seed + 1);
        r->attn = kgt_randn(r->dt, r->T * H, seed + 2);
        pad_and_store(r->mlp, r->T, c);
        pad_and_store(r->attn, r->T, c);
        r->e_mlp = kgt_encode(r->dt, r->mlp, r->T * H);
        r->e_attn = kgt_encode(r->dt, r->attn, r->T * H);
    }
    if (is(c->norm, "RMS_NORM") || is(c->norm, "LAYER_NORM")) {
        r->gamma = randn_scaled(r->sdt, H, 1.0f, seed + 3);
        pad_and_store(r->gamma, 1, &(qcase){ .H = H, .hact = H, .swz = c->swz });
        r->e_gamma = kgt_encode(r->sdt, r->gamma, H);
    }
    if (c->beta) {
        r->beta = randn_scaled(r->sdt, H, 1.0f, seed + 4);
        pad_and_store(r->beta, 1, &(qcase){ .H = H, .hact = H, .swz = c->swz });
        r->e_beta = kgt_encode(r->sdt, r->beta, H);
    }
    if (c->bias) {
        r->bias = randn_scaled(r->sdt, r->I, 1.0f, seed + 5);
        r->e_bias = kgt_encode(r->sdt, r->bias, r->I);
    }
    if (c->rope)
        make_tables(r, seed + 6);
    make_weight(r, seed + 7);
    make_scales(r, seed + 8);
    if (is(c->kv, "BLOCK"))
        make_slots(r, seed + 9);
    if (r->kv) {
        r->cache0 = malloc((size_t)r->cache_n);
        for (long i = 0; i < r->cache_n; i++)
            r->cache0[i] = (uint8_t)((i * 37 + 11) & 0x77); /* finite e4m3 codes */
    }
}

static void teardown(qrun *r)
{
    void *ps[] = { r->input, r->mlp, r->attn, r->gamma, r->beta, r->bias, r->cos, r->sin,
                   r->W, r->ws, r->slots, r->e_input, r->e_mlp, r->e_attn, r->e_gamma,
                   r->e_beta, r->e_bias, r->e_cos, r->e_sin, r->cache0 };
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        free(ps[i]);
    kg_wt_free(&r->w);
}

/* ---- running --------------------------------------------------------------------------------- */

/* What a kernel (or the reference) wrote. */
typedef struct qout {
    void *out, *fused; /* kernel dtype bytes */
    uint8_t *kc, *vc;
} qout;

static void qout_free(qout *o)
{
    free(o->out), free(o->fused), free(o->kc), free(o->vc);
    memset(o, 0, sizeof *o);
}

/* The byte the reference runs' outputs start as: NaN in bf16, fp16, f32 and e4m3, so an element
 * the kernel leaves unwritten fails the comparator. */
#define POISON 0xff

/* n bytes of `byte`; malloc'd. */
static void *filled(long n, int byte)
{
    return memset(malloc((size_t)(n ? n : 1)), byte, (size_t)(n ? n : 1));
}

/* The cache rows a call at r's sizes writes (flags, calloc'd): rows 0..S-1 of each sequence
 * (FLAT) or the slots (BLOCK; slots out of range skipped, for the tests that pass bad ones). */
static char *written_rows(const qrun *r)
{
    long rows = r->cache_n / r->kvd;
    char *written = calloc((size_t)rows, 1);
    for (long t = 0; t < r->T; t++) {
        long row = is(r->c.kv, "BLOCK") ? r->slots[t] : t / r->c.S * r->c.L + t % r->c.S;
        if (row >= 0 && row < rows)
            written[row] = 1;
    }
    return written;
}

/* A cache as a call starts with it: the initial bytes, but the rows the call writes are `fill`
 * bytes, so a row it leaves unwritten shows (the kernel reads no cache row); malloc'd. */
static uint8_t *cache_start(const qrun *r, int fill)
{
    uint8_t *c = malloc((size_t)r->cache_n);
    memcpy(c, r->cache0, (size_t)r->cache_n);
    char *written = written_rows(r);
    for (long row = 0; row < r->cache_n / r->kvd; row++)
        if (written[row])
            memset(c + row * r->kvd, fill, (size_t)r->kvd);
    free(written);
    return c;
}

/* Calls kernel k on r's inputs with the given per-call sizes; the outputs, and the cache rows
 * the call writes, start as `fill` bytes (POISON against the reference, a build's own byte for
 * JIT vs AOT), the other cache rows at their initial bytes. Returns the kernel's status. */
static int run_kernel_sized(const qrun *r, const kg_kernel *k, qout *o, long B, long S, long L,
                            int fill)
{
    memset(o, 0, sizeof *o);
    o->out = filled(r->out_n * (long)kgt_dtype_size(r->odt), fill);
    if (r->tkg_add)
        o->fused = filled(r->T * r->c.H * (long)kgt_dtype_size(r->dt), fill);
    if (r->kv)
        o->kc = cache_start(r, fill), o->vc = cache_start(r, fill);
    int q = quant_code(r->c.quant), stat = q == 1 || r->c.mxs;
    return ((kg_qkv_fn *)k->fn)(o->out, o->fused, o->kc, o->vc, r->e_input, &r->w,
                                stat || q == 2 ? r->ws : NULL, stat ? &r->in_s : NULL,
                                r->e_bias, r->e_mlp, r->e_attn, r->e_gamma, r->e_beta,
                                r->e_cos, r->e_sin, r->kv ? &r->k_s : NULL,
                                r->kv ? &r->v_s : NULL, r->slots, B, S, L);
}

static int run_kernel(const qrun *r, const kg_kernel *k, qout *o)
{
    return run_kernel_sized(r, k, o, r->c.B, r->c.S, r->c.L, POISON);
}

/* The reference's outputs, as fp32 (out, fused) and e4m3 codes (caches). */
static void run_ref(const qrun *r, float **out, float **fused, uint8_t **kc, uint8_t **vc)
{
    *out = malloc((size_t)r->out_n * sizeof **out);
    *fused = r->tkg_add ? malloc((size_t)(r->T * r->c.H) * sizeof **fused) : NULL;
    *kc = *vc = NULL;
    if (r->kv) {
        *kc = malloc((size_t)r->cache_n), *vc = malloc((size_t)r->cache_n);
        memcpy(*kc, r->cache0, (size_t)r->cache_n);
        memcpy(*vc, r->cache0, (size_t)r->cache_n);
    }
    qkv_ref(*out, *fused, *kc, *vc, r->input, r->W, r->ws, r->in_s, r->bias, r->mlp, r->attn,
            r->gamma, r->beta, r->cos, r->sin, r->k_s, r->v_s, r->slots, &r->o, r->c.B,
            r->c.S, r->c.L);
}

/* ---- checking -------------------------------------------------------------------------------- */

/* common.md's tolerances: qkv_tkg 2e-2 (NONE) / 4e-2 (quant), atol 1e-5; qkv_cte 2e-2, STATIC
 * 5e-2 / 2e-2, MX 5e-2 / 1e-2. */
static void tolerance(const qcase *c, double *rtol, double *atol)
{
    *rtol = 2e-2, *atol = 1e-5;
    if (is(c->variant, "TKG") && !is(c->quant, "NONE"))
        *rtol = 4e-2;
    else if (is(c->variant, "CTE") && is(c->quant, "STATIC"))
        *rtol = 5e-2, *atol = 2e-2;
    else if (is(c->variant, "CTE") && is(c->quant, "MX"))
        *rtol = 5e-2, *atol = 1e-2;
}

/* A cache against the reference's: rows the call must not write are byte-identical to the
 * initial cache; the whole cache, decoded, agrees at common.md's fp8 KV tolerance (1e-1). */
static void check_cache(const qrun *r, const uint8_t *got, const uint8_t *want, const char *what,
                        const char *label)
{
    long rows = r->cache_n / r->kvd;
    char *written = written_rows(r);
    for (long row = 0; row < rows; row++)
        if (!written[row])
            cr_assert(memcmp(got + row * r->kvd, r->cache0 + row * r->kvd, (size_t)r->kvd) == 0,
                      "%s: %s row %ld was not to be written", label, what, row);
    free(written);
    float *g = malloc((size_t)r->cache_n * sizeof *g), *w = malloc((size_t)r->cache_n * sizeof *w);
    for (long i = 0; i < r->cache_n; i++)
        g[i] = kg_e4m3_to_f32(got[i]), w[i] = kg_e4m3_to_f32(want[i]);
    char msg[1024];
    long shape[2] = { rows, r->kvd };
    cr_assert(kgt_allclose_shaped(g, w, 2, shape, 1e-1, 1e-5, msg, sizeof msg), "%s: %s: %s",
              label, what, msg);
    free(g), free(w);
}

static void check_outputs(const qrun *r, const qout *o, const char *label)
{
    float *want, *fused;
    uint8_t *kc, *vc;
    run_ref(r, &want, &fused, &kc, &vc);
    double rtol, atol;
    tolerance(&r->c, &rtol, &atol);
    const qcase *c = &r->c;
    long N = c->nq + 2 * c->nkv;
    long bsd[3] = { c->B, c->S, r->kv ? r->qd : r->I }, nbsd[4] = { N, c->B, c->S, c->d };
    int nb = is(c->layout, "NBSd");
    char msg[1024];
    cr_assert(kgt_close_to_ref(r->odt, o->out, want, nb ? 4 : 3, nb ? nbsd : bsd, rtol, atol,
                               msg, sizeof msg), "%s: out: %s", label, msg);
    if (r->tkg_add) {
        long hs[3] = { c->B, c->S, c->H };
        cr_assert(kgt_close_to_ref(r->dt, o->fused, fused, 3, hs, rtol, atol, msg, sizeof msg),
                  "%s: fused_hidden: %s", label, msg);
    }
    if (r->kv) {
        check_cache(r, o->kc, kc, "k_cache", label);
        check_cache(r, o->vc, vc, "v_cache", label);
    }
    free(want), free(fused), free(kc), free(vc);
}

/* JIT-compiles case c, runs it and the reference on the same seeded inputs, compares. */
static void check(qcase c0)
{
    qcase c = complete(c0);
    char problem[1024];
    problem_of(&c, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    qrun r;
    setup(&r, &c, 1000 + (unsigned long long)(c.H * 31 + c.B * 7 + c.S));
    qout o;
    int rc = run_kernel(&r, k, &o);
    cr_assert_eq(rc, KG_OK, "%s (B=%ld S=%ld L=%ld) returned %d", k->name, c.B, c.S, c.L, rc);
    char label[1200];
    snprintf(label, sizeof label, "%s B=%ld S=%ld", k->name, c.B, c.S);
    check_outputs(&r, &o, label);
    qout_free(&o);
    teardown(&r);
}

/* ---- the option sweep on small shapes -------------------------------------------------------- */

TestSuite(qkv, .init = kgt_suite_init, .fini = kgt_suite_fini,
          .timeout = 120 * KGT_TIME_SCALE);

/* I = (2 + 2) * 32 = 128 unless a case says otherwise. */
#define SMALL .H = 128, .nq = 2, .nkv = 1, .d = 32

Test(qkv, dtypes_and_norms_both_variants)
{
    static const char *const dts[3] = { "bf16", "fp16", "f32" };
    static const char *const vs[2] = { "CTE", "TKG" };
    for (int v = 0; v < 2; v++)
        for (int t = 0; t < 3; t++) {
            check((qcase){ SMALL, .variant = vs[v], .dtype = dts[t], .B = 2, .S = 3 });
            check((qcase){ SMALL, .variant = vs[v], .dtype = dts[t], .norm = "RMS_NORM",
                           .bias = 1, .B = 2, .S = 3, .eps = 1e-5 });
            check((qcase){ SMALL, .variant = vs[v], .dtype = dts[t], .norm = "LAYER_NORM",
                           .beta = 1, .B = 1, .S = 4 });
            check((qcase){ SMALL, .variant = vs[v], .dtype = dts[t], .norm = "LAYER_NORM",
                           .B = 3, .S = 1 });
            check((qcase){ .H = 256, .nq = 4, .nkv = 2, .d = 64, .variant = vs[v],
                           .dtype = dts[t], .norm = "RMS_NORM", .hact = 200, .bias = 1,
                           .B = 1, .S = 9 });
        }
    check((qcase){ SMALL, .norm = "RMS_NORM_SKIP_GAMMA", .B = 2, .S = 2 });
    check((qcase){ SMALL, .norm = "RMS_NORM_SKIP_GAMMA", .hact = 100, .bias = 1, .S = 5 });
}

Test(qkv, fused_add_and_layouts)
{
    static const char *const vs[2] = { "CTE", "TKG" };
    for (int v = 0; v < 2; v++) {
        check((qcase){ SMALL, .variant = vs[v], .add = 1, .norm = "RMS_NORM", .B = 2, .S = 3 });
        check((qcase){ SMALL, .variant = vs[v], .dtype = "fp16", .add = 1, .B = 1, .S = 2 });
        check((qcase){ SMALL, .variant = vs[v], .dtype = "f32", .add = 1, .norm = "LAYER_NORM",
                       .beta = 1, .bias = 1, .B = 2, .S = 1 });
    }
    /* NBSd: TKG any d; CTE needs d == 128 */
    check((qcase){ SMALL, .variant = "TKG", .layout = "NBSd", .bias = 1, .B = 2, .S = 3 });
    check((qcase){ .H = 128, .nq = 1, .nkv = 1, .d = 128, .layout = "NBSd", .B = 2, .S = 2,
                   .norm = "RMS_NORM" });
    check((qcase){ .H = 128, .nq = 2, .nkv = 1, .d = 128, .layout = "NBSd", .rope = 1,
                   .bias = 1, .B = 1, .S = 3 });
}

Test(qkv, shapes_heads_tokens_and_blocks)
{
    /* one head each, one token */
    check((qcase){ .H = 128, .nq = 1, .nkv = 1, .d = 16, .B = 1, .S = 1 });
    check((qcase){ .H = 128, .nq = 1, .nkv = 1, .d = 16, .variant = "TKG", .B = 1, .S = 1,
                   .norm = "RMS_NORM" });
    /* more KV heads than Q heads (upstream's TKG MX case), I = 36 * 3 = 108 */
    check((qcase){ .H = 384, .nq = 2, .nkv = 5, .d = 9, .variant = "TKG", .B = 4, .S = 1,
                   .bias = 1 });
    /* I = 9, not a multiple of any tile */
    check((qcase){ .H = 128, .nq = 1, .nkv = 1, .d = 3, .B = 2, .S = 5, .norm = "RMS_NORM" });
    /* more tokens than one block of rows (128 here): 300 rows in three blocks */
    check((qcase){ SMALL, .B = 2, .S = 150, .norm = "RMS_NORM", .bias = 1 });
    check((qcase){ SMALL, .B = 3, .S = 101, .rope = 1, .kv = "FLAT", .quant = "ROW" });
}

Test(qkv, static_and_row_quantization)
{
    static const char *const vs[2] = { "CTE", "TKG" };
    for (int v = 0; v < 2; v++) {
        check((qcase){ SMALL, .variant = vs[v], .quant = "STATIC", .B = 2, .S = 3 });
        check((qcase){ SMALL, .variant = vs[v], .quant = "STATIC", .wdtype = "e4m3fn",
                       .norm = "RMS_NORM", .bias = 1, .B = 1, .S = 4 });
        check((qcase){ SMALL, .variant = vs[v], .quant = "STATIC", .dtype = "f32",
                       .qmax = 200, .add = 1, .B = 2, .S = 2 });
        check((qcase){ .H = 128, .nq = 1, .nkv = 1, .d = v ? 32 : 128, .variant = vs[v],
                       .quant = "STATIC", .dtype = "fp16", .layout = "NBSd", .B = 2, .S = 1 });
        check((qcase){ SMALL, .variant = vs[v], .quant = "ROW", .B = 2, .S = 3 });
        check((qcase){ SMALL, .variant = vs[v], .quant = "ROW", .wdtype = "e4m3fn",
                       .dtype = "fp16", .norm = "LAYER_NORM", .bias = 1, .B = 1, .S = 3 });
    }
}

Test(qkv, mx_quantization_and_weight_layouts)
{
    static const char *const vs[2] = { "CTE", "TKG" };
    static const char *const wl[2] = { "MX_CONTIGUOUS", "MX_INTERLEAVED" };
    for (int v = 0; v < 2; v++)
        for (int l = 0; l < 2; l++) {
            check((qcase){ .H = 512, .nq = 2, .nkv = 1, .d = 32, .variant = vs[v],
                           .quant = "MX", .wlayout = wl[l], .B = 2, .S = 2 });
            check((qcase){ .H = 1024, .nq = 2, .nkv = 5, .d = 16, .variant = vs[v],
                           .quant = "MX", .wlayout = wl[l], .norm = "RMS_NORM", .bias = 1,
                           .dtype = "fp16", .B = 3, .S = 1 });
        }
    /* the CTE MX test's options: SKIP_GAMMA, bias, rope */
    check((qcase){ .H = 512, .nq = 1, .nkv = 1, .d = 128, .quant = "MX",
                   .norm = "RMS_NORM_SKIP_GAMMA", .bias = 1, .rope = 1, .B = 1, .S = 6 });
    /* MX static dequant: MX_INTERLEAVED + in_scale, per-group w_scale */
    for (int v = 0; v < 2; v++)
        check((qcase){ .H = 512, .nq = 2, .nkv = 1, .d = 32, .variant = vs[v], .quant = "MX",
                       .wlayout = "MX_INTERLEAVED", .mxs = 1, .norm = "RMS_NORM", .B = 2,
                       .S = 2 });
    /* MX with the KV cache */
    check((qcase){ .H = 512, .nq = 2, .nkv = 1, .d = 32, .quant = "MX", .kv = "FLAT",
                   .rope = 1, .B = 2, .S = 3 });
}

Test(qkv, swizzled_and_fp8_input)
{
    /* CTE: no norm, no add with a swizzled input */
    check((qcase){ .H = 1024, .nq = 2, .nkv = 1, .d = 32, .quant = "MX", .swz = 1, .bias = 1,
                   .B = 2, .S = 2 });
    check((qcase){ .H = 512, .nq = 2, .nkv = 1, .d = 32, .quant = "MX", .swz = 1,
                   .wlayout = "MX_INTERLEAVED", .mxs = 1, .B = 1, .S = 3 });
    /* TKG: RMS norm with a swizzled gamma (upstream's TKG MX case), and more */
    check((qcase){ .H = 1024, .nq = 2, .nkv = 5, .d = 16, .variant = "TKG", .quant = "MX",
                   .swz = 1, .norm = "RMS_NORM", .bias = 1, .B = 4, .S = 1 });
    check((qcase){ .H = 512, .nq = 2, .nkv = 1, .d = 32, .variant = "TKG", .quant = "MX",
                   .swz = 1, .norm = "RMS_NORM", .hact = 300, .add = 1, .B = 2, .S = 2 });
    check((qcase){ .H = 512, .nq = 2, .nkv = 1, .d = 32, .variant = "TKG", .quant = "MX",
                   .swz = 1, .norm = "LAYER_NORM", .beta = 1, .B = 1, .S = 2 });
    /* fp8 input (CTE MX): neutral activation scales, bf16 output, bf16 bias and tables */
    check((qcase){ .H = 512, .nq = 2, .nkv = 1, .d = 32, .dtype = "e4m3fn", .quant = "MX",
                   .bias = 1, .rope = 1, .B = 2, .S = 3 });
    check((qcase){ .H = 512, .nq = 2, .nkv = 1, .d = 32, .dtype = "e4m3", .quant = "MX",
                   .wlayout = "MX_INTERLEAVED", .swz = 1, .B = 1, .S = 2 });
}

Test(qkv, rope_and_kv_cache)
{
    check((qcase){ SMALL, .rope = 1, .B = 2, .S = 3 });
    check((qcase){ SMALL, .rope = 1, .norm = "RMS_NORM", .bias = 1, .add = 1, .dtype = "f32",
                   .B = 1, .S = 5 });
    check((qcase){ .H = 128, .nq = 3, .nkv = 1, .d = 6, .rope = 1, .B = 2, .S = 2 });
    /* flat: rows 0..S-1 of each sequence, cache longer than S */
    check((qcase){ SMALL, .kv = "FLAT", .B = 2, .S = 3, .L = 7 });
    check((qcase){ SMALL, .kv = "FLAT", .rope = 1, .norm = "RMS_NORM", .B = 1, .S = 4, .L = 4 });
    check((qcase){ SMALL, .kv = "FLAT", .dtype = "fp16", .quant = "STATIC", .B = 2, .S = 2 });
    check((qcase){ SMALL, .kv = "FLAT", .kvmax = 200, .kvmin = -30, .B = 2, .S = 3 });
    /* block: slots scattered over the blocks */
    check((qcase){ SMALL, .kv = "BLOCK", .bs = 4, .B = 2, .S = 5 });
    check((qcase){ SMALL, .kv = "BLOCK", .bs = 16, .L = 3, .rope = 1, .bias = 1,
                   .quant = "ROW", .dtype = "f32", .B = 3, .S = 4 });
    check((qcase){ SMALL, .kv = "BLOCK", .bs = 3, .kvmax = 120, .kvmin = -240, .B = 1, .S = 7 });
}

/* ---- Llama-3-8B shapes ----------------------------------------------------------------------- */

#define LLAMA .H = 4096, .nq = 32, .nkv = 8, .d = 128, .eps = 1e-5

Test(qkv, llama3_8b_decode_t1)
{
    check((qcase){ LLAMA, .variant = "TKG", .norm = "RMS_NORM", .add = 1, .B = 1, .S = 1 });
    check((qcase){ LLAMA, .variant = "TKG", .quant = "ROW", .norm = "RMS_NORM", .B = 1, .S = 1 });
}

Test(qkv, llama3_8b_prefill_t128_none)
{
    check((qcase){ LLAMA, .norm = "RMS_NORM", .B = 1, .S = 128 });
}

Test(qkv, llama3_8b_prefill_t128_fp8_rope_kv)
{
    check((qcase){ LLAMA, .quant = "ROW", .norm = "RMS_NORM", .rope = 1, .kv = "FLAT",
                   .B = 2, .S = 64, .L = 80 });
}

/* ---- per-call sizes and pointers ------------------------------------------------------------- */

Test(qkv, run_time_checks)
{
    qcase c = complete((qcase){ SMALL, .norm = "RMS_NORM", .bias = 1, .B = 2, .S = 2 });
    char problem[1024];
    problem_of(&c, problem, sizeof problem);
    kg_qkv_fn *fn = (kg_qkv_fn *)kgt_jit(problem)->fn;
    qrun r;
    setup(&r, &c, 5);
    uint16_t out[2 * 2 * 128];
    const void *in = r.e_input, *g = r.e_gamma, *bi = r.e_bias;
    cr_assert_eq(fn(out, 0, 0, 0, in, &r.w, 0, 0, bi, 0, 0, g, 0, 0, 0, 0, 0, 0, 2, 2, 0), KG_OK);
    cr_assert_eq(fn(out, 0, 0, 0, in, &r.w, 0, 0, bi, 0, 0, g, 0, 0, 0, 0, 0, 0, -1, 2, 0),
                 KG_EARG, "B < 0");
    cr_assert_eq(fn(out, 0, 0, 0, in, &r.w, 0, 0, bi, 0, 0, g, 0, 0, 0, 0, 0, 0, 2, -1, 0),
                 KG_EARG, "S < 0");
    cr_assert_eq(fn(out, 0, 0, 0, in, &r.w, 0, 0, bi, 0, 0, g, 0, 0, 0, 0, 0, 0, 2, 2, -1),
                 KG_EARG, "cache_len < 0");
    cr_assert_eq(fn(out, 0, 0, 0, in, &r.w, 0, 0, bi, 0, 0, g, 0, 0, 0, 0, 0, 0, 1L << 40,
                    1L << 40, 0), KG_EARG, "B*S overflows");
    cr_assert_eq(fn(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0), KG_OK,
                 "B = 0 is an empty call");
    cr_assert_eq(fn(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0), KG_OK,
                 "S = 0 is an empty call");
    cr_assert_eq(fn(0, 0, 0, 0, in, &r.w, 0, 0, bi, 0, 0, g, 0, 0, 0, 0, 0, 0, 2, 2, 0), KG_EARG,
                 "NULL out");
    cr_assert_eq(fn(out, 0, 0, 0, 0, &r.w, 0, 0, bi, 0, 0, g, 0, 0, 0, 0, 0, 0, 2, 2, 0), KG_EARG,
                 "NULL input");
    cr_assert_eq(fn(out, 0, 0, 0, in, 0, 0, 0, bi, 0, 0, g, 0, 0, 0, 0, 0, 0, 2, 2, 0), KG_EARG,
                 "NULL weight");
    cr_assert_eq(fn(out, 0, 0, 0, in, &r.w, 0, 0, 0, 0, 0, g, 0, 0, 0, 0, 0, 0, 2, 2, 0), KG_EARG,
                 "NULL bias");
    cr_assert_eq(fn(out, 0, 0, 0, in, &r.w, 0, 0, bi, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 0), KG_EARG,
                 "NULL gamma (RMS_NORM)");
    /* tensors the kernel would not read: upstream rejects them */
    cr_assert_eq(fn(out, 0, 0, 0, in, &r.w, 0, 0, bi, in, in, g, 0, 0, 0, 0, 0, 0, 2, 2, 0),
                 KG_EARG, "residuals without fused_residual_add");
    cr_assert_eq(fn(out, 0, 0, 0, in, &r.w, 0, 0, bi, 0, 0, g, g, 0, 0, 0, 0, 0, 2, 2, 0),
                 KG_EARG, "beta without LAYER_NORM");
    cr_assert_eq(fn(out, 0, 0, 0, in, &r.w, 0, 0, bi, 0, 0, g, 0, in, in, 0, 0, 0, 2, 2, 0),
                 KG_EARG, "cos, sin without fused_rope");
    /* weight handles of the wrong size, format or MX-ness */
    kg_wt other;
    float *v = kgt_wt_random(&other, KG_WT_BF16, KG_WL_KN, 128, 96, 0, 1.0f, 3, 0, 0);
    cr_assert_eq(fn(out, 0, 0, 0, in, &other, 0, 0, bi, 0, 0, g, 0, 0, 0, 0, 0, 0, 2, 2, 0),
                 KG_EARG, "a [128, 96] weight for I = 128");
    kg_wt_free(&other), free(v);
    v = kgt_wt_random(&other, KG_WT_F16, KG_WL_KN, 128, 128, 0, 1.0f, 3, 0, 0);
    cr_assert_eq(fn(out, 0, 0, 0, in, &other, 0, 0, bi, 0, 0, g, 0, 0, 0, 0, 0, 0, 2, 2, 0),
                 KG_EARG, "an fp16 weight for a bf16 kernel");
    kg_wt_free(&other), free(v);
    v = kgt_wt_random(&other, KG_WT_E4M3FN, KG_WL_KN, 128, 128, 1, 1.0f, 3, 0, 0);
    cr_assert_eq(fn(out, 0, 0, 0, in, &other, 0, 0, bi, 0, 0, g, 0, 0, 0, 0, 0, 0, 2, 2, 0),
                 KG_EARG, "an MX weight for a NONE kernel");
    kg_wt_free(&other), free(v);
    teardown(&r);
}

Test(qkv, run_time_checks_gamma_and_quant)
{
    /* CTE rejects a gamma with NO_NORM and RMS_NORM_SKIP_GAMMA; TKG ignores it */
    static const char *const norms[2] = { "NO_NORM", "RMS_NORM_SKIP_GAMMA" };
    for (int n = 0; n < 2; n++) {
        qcase c = complete((qcase){ SMALL, .norm = norms[n], .B = 1, .S = 2 });
        char problem[1024];
        problem_of(&c, problem, sizeof problem);
        kg_qkv_fn *fn = (kg_qkv_fn *)kgt_jit(problem)->fn;
        qrun r;
        setup(&r, &c, 6);
        uint16_t out[2 * 128], gamma[128] = { 0 };
        cr_assert_eq(fn(out, 0, 0, 0, r.e_input, &r.w, 0, 0, 0, 0, 0, gamma, 0, 0, 0, 0, 0, 0,
                        1, 2, 0), KG_EARG, "CTE %s with a gamma", norms[n]);
        teardown(&r);
    }
    qcase c = complete((qcase){ SMALL, .variant = "TKG", .quant = "STATIC", .add = 1, .B = 1,
                                .S = 2 });
    char problem[1024];
    problem_of(&c, problem, sizeof problem);
    kg_qkv_fn *fn = (kg_qkv_fn *)kgt_jit(problem)->fn;
    qrun r;
    setup(&r, &c, 7);
    uint16_t out[2 * 128], fused[2 * 128], gamma[128] = { 0 };
    const void *in = r.e_input, *m = r.e_mlp, *a = r.e_attn;
    cr_assert_eq(fn(out, fused, 0, 0, in, &r.w, r.ws, &r.in_s, 0, m, a, gamma, 0, 0, 0, 0, 0, 0,
                    1, 2, 0), KG_OK, "TKG ignores a gamma it does not read");
    cr_assert_eq(fn(out, 0, 0, 0, in, &r.w, r.ws, &r.in_s, 0, m, a, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0),
                 KG_EARG, "NULL fused_hidden");
    cr_assert_eq(fn(out, fused, 0, 0, in, &r.w, 0, &r.in_s, 0, m, a, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0),
                 KG_EARG, "NULL w_scale");
    cr_assert_eq(fn(out, fused, 0, 0, in, &r.w, r.ws, 0, 0, m, a, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0),
                 KG_EARG, "NULL in_scale");
    cr_assert_eq(fn(out, fused, 0, 0, in, &r.w, r.ws, &r.in_s, 0, 0, a, 0, 0, 0, 0, 0, 0, 0, 1, 2,
                    0), KG_EARG, "NULL mlp_prev");
    teardown(&r);
}

Test(qkv, run_time_checks_kv_cache)
{
    /* flat: S must fit the cache */
    qcase c = complete((qcase){ SMALL, .kv = "FLAT", .B = 2, .S = 3, .L = 3 });
    char problem[1024];
    problem_of(&c, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    qrun r;
    setup(&r, &c, 8);
    qout o;
    cr_assert_eq(run_kernel_sized(&r, k, &o, 2, 3, 3, POISON), KG_OK);
    qout_free(&o);
    cr_assert_eq(run_kernel_sized(&r, k, &o, 1, 3, 2, POISON), KG_EARG, "S = 3 > cache_len = 2");
    qout_free(&o);
    kg_qkv_fn *fn = (kg_qkv_fn *)k->fn;
    uint16_t out[2 * 3 * 64];
    uint8_t kc[2 * 3 * 32], vc[2 * 3 * 32];
    float ks = 1.0f;
    const void *in = r.e_input;
    cr_assert_eq(fn(out, 0, 0, vc, in, &r.w, 0, 0, 0, 0, 0, 0, 0, 0, 0, &ks, &ks, 0, 2, 3, 3),
                 KG_EARG, "NULL k_cache");
    cr_assert_eq(fn(out, 0, kc, vc, in, &r.w, 0, 0, 0, 0, 0, 0, 0, 0, 0, &ks, 0, 0, 2, 3, 3),
                 KG_EARG, "NULL v_scale");
    teardown(&r);

    /* block: every slot inside [0, cache_len * block_size), checked before any write */
    c = complete((qcase){ SMALL, .kv = "BLOCK", .bs = 4, .B = 2, .S = 3, .L = 2 });
    problem_of(&c, problem, sizeof problem);
    k = kgt_jit(problem);
    setup(&r, &c, 9);
    static const int32_t bad[][6] = { { 0, 1, 2, 3, 4, 8 }, { 0, 1, -1, 3, 4, 5 } };
    for (int b = 0; b < 2; b++) {
        memcpy(r.slots, bad[b], sizeof bad[b]);
        cr_assert_eq(run_kernel(&r, k, &o), KG_EARG, "slot set %d is out of range", b);
        uint8_t *start = cache_start(&r, POISON);
        cr_assert(memcmp(o.kc, start, (size_t)r.cache_n) == 0 &&
                  memcmp(o.vc, start, (size_t)r.cache_n) == 0,
                  "a refused call wrote to the cache");
        free(start);
        qout_free(&o);
    }
    fn = (kg_qkv_fn *)k->fn;
    cr_assert_eq(fn(out, 0, kc, vc, r.e_input, &r.w, 0, 0, 0, 0, 0, 0, 0, 0, 0, &ks, &ks, 0, 2,
                    3, 2), KG_EARG, "NULL slot_mapping");
    teardown(&r);
}

/* ---- JIT vs AOT ------------------------------------------------------------------------------ */

/* Runs kernels a (AOT) and j (JIT) on the same inputs at B = 2, S = 2 (a block cache gets the
 * slots it needs); every output must be the same bytes. Each build's outputs and the cache rows
 * it writes start as its own fill byte, so what neither build writes differs. */
static void compare_builds(const kg_kernel *a, const kg_kernel *j)
{
    qcase c = case_of_problem(a->problem);
    c.B = 2, c.S = 2, c.L = 0;
    c = complete(c);
    qrun r;
    setup(&r, &c, 77);
    qout oa, oj;
    cr_assert_eq(run_kernel_sized(&r, a, &oa, c.B, c.S, c.L, kgt_fill_byte(KGT_AOT)), KG_OK,
                 "AOT %s", a->name);
    cr_assert_eq(run_kernel_sized(&r, j, &oj, c.B, c.S, c.L, kgt_fill_byte(KGT_JIT)), KG_OK,
                 "JIT %s", j->name);
    char msg[1024];
    long n[1] = { r.out_n };
    cr_assert(kgt_same_bytes(oj.out, oa.out, r.odt, r.out_n, 1, n, msg, sizeof msg), "%s: out: %s",
              a->name, msg);
    if (r.tkg_add) {
        long h[1] = { r.T * c.H };
        cr_assert(kgt_same_bytes(oj.fused, oa.fused, r.dt, h[0], 1, h, msg, sizeof msg),
                  "%s: fused_hidden: %s", a->name, msg);
    }
    if (r.kv) {
        cr_assert(kgt_builds_equal(oj.kc, oa.kc, r.cache_n, 1, msg, sizeof msg),
                  "%s: k_cache: %s", a->name, msg);
        cr_assert(kgt_builds_equal(oj.vc, oa.vc, r.cache_n, 1, msg, sizeof msg),
                  "%s: v_cache: %s", a->name, msg);
    }
    qout_free(&oa), qout_free(&oj);
    teardown(&r);
}

/* Every qkv kernel of every AOT-built spec, JIT-compiled from generated/<spec>/, gives the same
 * bytes as its gcc build. */
Test(qkv, jit_and_aot_are_bit_identical)
{
    cr_assert_gt(kgt_each_aot_jit_pair("qkv", compare_builds), 0,
                 "no AOT-built spec has a qkv kernel");
}
