/* tests/test_output_projection.c: the output_projection family against
 * tests/ref/output_projection_ref.c: every quantization of each variant, bias, output dtypes,
 * attention layouts, TRANSPOSE_OUT at lnc 1 and 2, MX weights and inputs, edge shapes and the
 * Llama-3-8B shapes; the shared/vectors cases; names; rejected options; run-time checks; JIT vs
 * AOT bit-identity. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/aot.h"
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

/* ---- one kernel's options, read back from its problem string (never retyped) ----------------- */

typedef struct opts {
    char variant[8], quant[16], dtype[8], wdtype[8], odtype[8], layout[8], wlayout[8];
    long N, D, H, K, lnc;
    int bias, preq, tout;
    double max;
    kg_dtype t, ot;  /* dtype, out_dtype */
    int q;           /* upstream QuantizationType code */
    int lay;         /* 0 BNDS, 1 DBNS, 2 BSND (outproj_gather_ref) */
} opts;

static int flag(const char *problem, const char *key)
{
    char v[8];
    cr_assert(kg_problem_str(problem, key, v, sizeof v), "%s: no %s", problem, key);
    return strcmp(v, "true") == 0;
}

static opts read_opts(const char *problem)
{
    opts o;
    cr_assert(kg_problem_str(problem, "variant", o.variant, sizeof o.variant) &&
              kg_problem_str(problem, "quantization_type", o.quant, sizeof o.quant) &&
              kg_problem_str(problem, "dtype", o.dtype, sizeof o.dtype) &&
              kg_problem_str(problem, "weight_dtype", o.wdtype, sizeof o.wdtype) &&
              kg_problem_str(problem, "out_dtype", o.odtype, sizeof o.odtype) &&
              kg_problem_str(problem, "attn_layout", o.layout, sizeof o.layout) &&
              kg_problem_str(problem, "weight_layout", o.wlayout, sizeof o.wlayout) &&
              kg_problem_long(problem, "N", &o.N) && kg_problem_long(problem, "D", &o.D) &&
              kg_problem_long(problem, "H", &o.H) && kg_problem_long(problem, "lnc", &o.lnc) &&
              kg_problem_double(problem, "quant_max", &o.max), "cannot read %s", problem);
    o.bias = flag(problem, "bias");
    o.preq = flag(problem, "mx_prequant");
    o.tout = flag(problem, "transpose_out");
    o.K = o.N * o.D;
    o.t = (kg_dtype)kg_dtype_from_name(o.dtype);
    o.ot = (kg_dtype)kg_dtype_from_name(o.odtype);
    static const char *const quants[] = { "NONE", "STATIC", "ROW", "MX", "STATIC_MX" };
    static const char *const lays[] = { "BNDS", "DBNS", "BSND" };
    o.q = o.lay = -1;
    for (int i = 0; i < 5; i++)
        if (strcmp(o.quant, quants[i]) == 0)
            o.q = i;
    for (int i = 0; i < 3; i++)
        if (strcmp(o.layout, lays[i]) == 0)
            o.lay = i;
    cr_assert(o.q >= 0 && o.lay >= 0, "%s", problem);
    return o;
}

/* Tolerances of common.md for output_projection. */
static double rtol_of(const opts *o)
{
    if (o->q == 0)
        return 2e-2;
    if (o->q == 3 || strcmp(o->variant, "TKG") == 0)
        return 5e-2;
    return 3.6e-2;
}

/* ---- inputs ---------------------------------------------------------------------------------- */

/* Everything a call takes, encoded for the kernel, and the logical values for the reference. */
typedef struct inputs {
    long B, S, T;
    void *attn;        /* as the kernel reads it */
    float *A;          /* [T, K] logical activations (MX pre-quantized: decoded) */
    kg_wt w;
    float *W;          /* [K, H] logical weight values */
    float w_scale_s;   /* STATIC s_w */
    float *w_col;      /* ROW [H] */
    float s_in;        /* STATIC */
    uint8_t *e8;       /* MX pre-quantized activation scales */
    float *bias;       /* [H] values (rounded to dtype) */
    void *bias_enc;
} inputs;

/* A weight format's random spread: bf16-like formats near 1/sqrt(K), fp8 over its grid. */
static float weight_spread(const opts *o)
{
    if (!strcmp(o->wdtype, "e2m1"))
        return 2.0f;
    if (!strcmp(o->wdtype, "e4m3") || !strcmp(o->wdtype, "e4m3fn"))
        return 8.0f;
    return 0.25f;
}

/* MX pre-quantized attention: token rows of A get magnitudes 2^-3 .. 2^3 so the blocks' E8M0
 * exponents differ; each block of 32 features is quantized here (dtype.h one-value casts) and
 * stored as e4m3fn x4 words in the kernel's layout; A keeps the decoded values. */
static void make_prequant(const opts *o, inputs *in, unsigned long long seed)
{
    long T = in->T, K = o->K, nb = K / 32;
    uint8_t *x = malloc((size_t)(T * K));
    in->e8 = malloc((size_t)(T * nb));
    in->A = malloc((size_t)(T * K) * sizeof(float));
    for (long t = 0; t < T; t++) {
        long b = t / in->S, s = t % in->S;
        float mag = ldexpf(1.0f, (int)(t % 7) - 3);
        for (long k0 = 0; k0 < K; k0 += 32) {
            float v[32];
            for (int i = 0; i < 32; i++)
                v[i] = kgt_normal(&seed) * mag;
            uint8_t e = kg_e8m0_block_exponent(v, 32, 8);
            float sc = kg_e8m0_to_f32(e);
            long si = o->lay == 0 ? (b * nb + k0 / 32) * in->S + s : t * nb + k0 / 32;
            in->e8[si] = e;
            for (int i = 0; i < 32; i++) {
                long k = k0 + i;
                float c = v[i] / sc;
                uint8_t code = kg_f32_to_e4m3fn(c > 448 ? 448 : c < -448 ? -448 : c);
                long xi = o->lay == 0 ? ((b * (K / 4) + k / 4) * in->S + s) * 4 + k % 4 : t * K + k;
                x[xi] = code;
                in->A[t * K + k] = kg_e4m3fn_to_f32(code) * sc;
            }
        }
    }
    in->attn = x;
}

static void make_inputs(const opts *o, long B, long S, unsigned long long seed, inputs *in)
{
    memset(in, 0, sizeof *in);
    in->B = B, in->S = S, in->T = B * S;
    long T = in->T, K = o->K, H = o->H;
    if (o->preq) {
        make_prequant(o, in, seed);
    } else {
        float *vals = kgt_randn(o->t, T * K, seed); /* in the attention layout */
        in->attn = kgt_encode(o->t, vals, T * K);
        in->A = malloc((size_t)(T * K) * sizeof(float) + 1);
        outproj_gather_ref(in->A, vals, o->lay, B, S, o->N, o->D);
        free(vals);
    }
    int fmt = kg_wt_fmt_from_name(o->wdtype), lay = kg_wt_layout_from_name(o->wlayout);
    cr_assert(fmt >= 0 && lay >= 0, "%s %s", o->wdtype, o->wlayout);
    in->W = kgt_wt_random(&in->w, fmt, lay, K, H, o->q == 3, weight_spread(o), seed + 1, 0, 0);
    in->w_scale_s = 0.02f;
    in->s_in = 0.015f; /* |A| / s_in reaches past 240: the clamp is exercised */
    unsigned long long s2 = seed + 2;
    in->w_col = malloc((size_t)H * sizeof(float));
    for (long h = 0; h < H; h++)
        in->w_col[h] = 0.01f * (1.0f + 0.25f * fabsf(kgt_normal(&s2)));
    in->bias = kgt_randn(o->t, H, seed + 3);
    in->bias_enc = kgt_encode(o->t, in->bias, H);
}

static void free_inputs(inputs *in)
{
    free(in->attn), free(in->A), free(in->W), free(in->w_col), free(in->e8);
    free(in->bias), free(in->bias_enc);
    kg_wt_free(&in->w);
}

static int call(const kg_kernel *k, const opts *o, const inputs *in, void *out)
{
    const void *ws = o->q == 2 ? (const void *)in->w_col : &in->w_scale_s;
    const void *is = o->preq ? (const void *)in->e8 : &in->s_in;
    return ((kg_output_projection_fn *)k->fn)(out, in->attn, &in->w, ws, is,
                                               o->bias ? in->bias_enc : NULL, in->B, in->S);
}

/* The output's shape: [B, S, H], or TRANSPOSE_OUT [128, lnc, R, T]. */
static int out_shape(const opts *o, const inputs *in, long shape[4])
{
    if (o->tout) {
        shape[0] = 128, shape[1] = o->lnc, shape[2] = o->H / (128 * o->lnc), shape[3] = in->T;
        return 4;
    }
    shape[0] = in->B, shape[1] = in->S, shape[2] = o->H;
    return 3;
}

/* The reference output, in the kernel's output layout; malloc'd. */
static float *expected(const opts *o, const inputs *in)
{
    long T = in->T, K = o->K, H = o->H;
    float *A = malloc((size_t)(T * K) * sizeof(float) + 1);
    float *y = malloc((size_t)(T * H) * sizeof(float));
    memcpy(A, in->A, (size_t)(T * K) * sizeof(float));
    int q = o->q;
    if (o->preq)
        q = 0; /* A holds the decoded MX values already */
    else if (q == 3)
        outproj_mx_quant_ref(A, T, K);
    outproj_ref(y, A, in->W, q == 2 ? in->w_col : &in->w_scale_s, in->s_in,
                o->bias ? in->bias : NULL, q, strcmp(o->wdtype, "e4m3fn") == 0, (float)o->max,
                T, K, H);
    free(A);
    if (!o->tout)
        return y;
    float *t = malloc((size_t)(T * H) * sizeof(float));
    outproj_transpose_ref(t, y, T, H, (int)o->lnc);
    free(y);
    return t;
}

/* Runs the kernel of `problem` on B x S tokens and compares it with the reference. */
static void check(const char *problem, long B, long S)
{
    const kg_kernel *k = kgt_jit(problem);
    opts o = read_opts(k->problem);
    inputs in;
    make_inputs(&o, B, S, 1000 + 31 * (unsigned long long)(B * 7 + S), &in);
    long n = in.T * o.H, shape[4];
    void *out = kgt_poisoned(o.ot, n);
    int rc = call(k, &o, &in, out);
    cr_assert_eq(rc, KG_OK, "%s returned %d", k->name, rc);
    float *want = expected(&o, &in);
    char msg[1024];
    int rank = out_shape(&o, &in, shape);
    int ok = kgt_close_to_ref(o.ot, out, want, rank, shape, rtol_of(&o), 1e-5, msg, sizeof msg);
    cr_expect(ok, "%s B=%ld S=%ld: %s", k->name, B, S, msg); /* go on: report every case */
    free(out);
    free(want);
    free_inputs(&in);
}

TestSuite(output_projection, .init = kgt_suite_init, .fini = kgt_suite_fini);

/* ---- option sweep on small and edge shapes --------------------------------------------------- */

#define P "output_projection:"

typedef struct sweep { const char *problem; long B, S; } sweep;

static const sweep CTE[] = {
    /* NONE: every activation dtype and output dtype, every attention layout, odd H and D,
     * one head, one token, B > 1, weights in another float format */
    { P "N=2,D=32,H=96,bias=true", 2, 3 },
    { P "N=3,D=5,H=77,dtype=fp16,out_dtype=f32,attn_layout=DBNS", 1, 4 },
    { P "N=1,D=7,H=33,dtype=f32,attn_layout=BSND", 3, 1 },
    { P "N=2,D=3,H=20,dtype=f32,out_dtype=f32,attn_layout=BSND,bias=true", 2, 2 },
    { P "N=2,D=6,H=10,dtype=f32,out_dtype=f32,attn_layout=BSND", 2, 2 }, /* no scratch */
    { P "N=2,D=4,H=24,dtype=f32,out_dtype=fp16,weight_dtype=bf16,attn_layout=BNDS", 1, 1 },
    { P "N=3,D=4,H=17,dtype=bf16,weight_dtype=fp16,out_dtype=f32,attn_layout=BSND", 2, 5 },
    /* more tokens than a block (256 rows here): blocks that start mid-sequence */
    { P "N=2,D=8,H=40,dtype=bf16,attn_layout=BNDS,bias=true", 2, 150 },
    { P "N=2,D=8,H=40,dtype=fp16,attn_layout=DBNS", 3, 100 },
    /* STATIC: N and D both odd (the hardware's "N or D even" is not a CPU rule), e4m3fn, a
     * lower clamp, fp32 activations and outputs */
    { P "quantization_type=STATIC,N=3,D=5,H=40,bias=true", 2, 5 },
    { P "quantization_type=STATIC,N=2,D=16,H=48,dtype=fp16,weight_dtype=e4m3fn,"
        "out_dtype=f32,attn_layout=BSND,quant_max=300", 1, 3 },
    { P "quantization_type=STATIC,N=1,D=9,H=31,dtype=f32,attn_layout=DBNS,quant_max=120", 3, 2 },
    /* STATIC_MX: the x4 pre-swizzle and the logical kn layout, odd N*D with kn */
    { P "quantization_type=STATIC_MX,N=2,D=32,H=64,out_dtype=fp16,bias=true", 2, 3 },
    { P "quantization_type=STATIC_MX,N=3,D=3,H=19,weight_layout=kn,dtype=f32", 1, 2 },
    /* MX: fp4 and fp8 weights, x4 and kn layouts, online and pre-quantized input */
    { P "quantization_type=MX,N=2,D=32,H=48,bias=true", 2, 3 },
    { P "quantization_type=MX,N=4,D=16,H=37,weight_dtype=e4m3fn,dtype=f32,attn_layout=DBNS", 1, 5 },
    { P "quantization_type=MX,N=1,D=96,H=24,dtype=fp16,attn_layout=BSND,weight_layout=kn", 2, 2 },
    { P "quantization_type=MX,mx_prequant=true,N=2,D=64,H=40,bias=true", 2, 3 },
    { P "quantization_type=MX,mx_prequant=true,N=4,D=8,H=21,weight_dtype=e4m3fn,"
        "attn_layout=BSND,weight_layout=kn,dtype=f32", 1, 4 },
};

static const sweep TKG[] = {
    /* NONE: decode shapes (S = 1), B > 1, odd H, every layout */
    { P "variant=TKG,N=2,D=32,H=77,bias=true", 3, 1 },
    { P "variant=TKG,N=1,D=5,H=16,dtype=f32,attn_layout=BNDS", 1, 1 },
    { P "variant=TKG,N=3,D=4,H=29,dtype=fp16,attn_layout=BSND", 2, 4 },
    /* STATIC and ROW, both fp8 formats */
    { P "variant=TKG,quantization_type=STATIC,N=1,D=3,H=40", 2, 2 },
    { P "variant=TKG,quantization_type=STATIC,N=2,D=8,H=33,dtype=fp16,weight_dtype=e4m3fn,"
        "attn_layout=BSND,bias=true", 1, 3 },
    { P "variant=TKG,quantization_type=ROW,N=2,D=16,H=50,bias=true", 4, 1 },
    { P "variant=TKG,quantization_type=ROW,N=3,D=7,H=23,dtype=f32,weight_dtype=e4m3fn,"
        "attn_layout=BNDS", 2, 3 },
    /* TRANSPOSE_OUT at lnc 1 and 2, every dtype */
    { P "variant=TKG,transpose_out=true,N=2,D=8,H=256,bias=true", 2, 3 },
    { P "variant=TKG,quantization_type=ROW,transpose_out=true,lnc=2,N=2,D=8,H=512", 3, 1 },
    { P "variant=TKG,quantization_type=STATIC,transpose_out=true,lnc=2,dtype=f32,N=1,D=4,"
        "H=256", 1, 2 },
    { P "variant=TKG,transpose_out=true,dtype=fp16,attn_layout=BSND,N=1,D=3,H=128", 1, 1 },
};

Test(output_projection, cte_option_sweep)
{
    for (size_t i = 0; i < sizeof CTE / sizeof CTE[0]; i++)
        check(CTE[i].problem, CTE[i].B, CTE[i].S);
}

Test(output_projection, tkg_option_sweep)
{
    for (size_t i = 0; i < sizeof TKG / sizeof TKG[0]; i++)
        check(TKG[i].problem, TKG[i].B, TKG[i].S);
}

/* The reference and the kernel agree too closely for the comparator to miss a slip: a wrong
 * dequant scale or a misplaced feature must fail. */
Test(output_projection, a_wrong_scale_fails)
{
    const char *problem = P "quantization_type=STATIC,N=2,D=16,H=48";
    const kg_kernel *k = kgt_jit(problem);
    opts o = read_opts(k->problem);
    inputs in;
    make_inputs(&o, 1, 3, 5, &in);
    void *out = kgt_poisoned(o.ot, in.T * o.H);
    cr_assert_eq(call(k, &o, &in, out), KG_OK);
    in.w_scale_s *= 1.1f; /* the reference now expects 10% more */
    float *want = expected(&o, &in);
    long shape[4];
    int rank = out_shape(&o, &in, shape);
    cr_assert_not(kgt_close_to_ref(o.ot, out, want, rank, shape, rtol_of(&o), 1e-5, NULL, 0),
                  "a 10%% scale error passed the comparator");
    free(out), free(want);
    free_inputs(&in);
}

/* ---- Llama-3-8B shapes (N 32, D 128, H 4096): few, the scalar GEMM is slow ------------------- */

Test(output_projection, llama3_8b_cte_t128_bf16_none)
{
    check(P "variant=CTE,N=32,D=128,H=4096,dtype=bf16", 1, 128);
}

Test(output_projection, llama3_8b_cte_t128_fp8_static)
{
    check(P "variant=CTE,quantization_type=STATIC,N=32,D=128,H=4096,dtype=bf16", 1, 128);
}

Test(output_projection, llama3_8b_tkg_t1_bf16_none_and_fp8_row)
{
    check(P "variant=TKG,N=32,D=128,H=4096,dtype=bf16", 1, 1);
    check(P "variant=TKG,quantization_type=ROW,N=32,D=128,H=4096,dtype=bf16", 1, 1);
}

/* ---- shared/vectors/output_projection_{cte,tkg} ---------------------------------------------- */

/* The case's float input `name` encoded in t; NULL if the case has none. */
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

/* The TKG TRANSPOSE_OUT option (either spelling) and its core count: the case's "lnc", else
 * the torch reference's guess (2 when H % 256 == 0, output_projection.md). */
static int vector_transpose_out(kgt_case *c, long H, int *lnc)
{
    int tout = 0;
    double l = 0;
    if (!kgt_case_opt_bool(c, "TRANSPOSE_OUT", &tout))
        kgt_case_opt_bool(c, "transpose_out", &tout);
    kgt_case_opt_num(c, "lnc", &l);
    *lnc = l > 0 ? (int)l : H % 256 == 0 ? 2 : 1;
    return tout;
}

/* MX pre-quantized attention (output_projection.md 6) as the kernel reads it: e4m3fn codes of
 * feature k = n*D + d at [b, k/4, s, k%4] (x4 words [B, 1, N*D/4, S]); from the words
 * (integers), their elements [B, 1, N*D/4, S, 4], or the logical [B, N, D, S] (fp8 values or
 * codes). malloc'd. */
static uint8_t *vector_prequant(kgt_case *c, long B, long S, long N, long D)
{
    const char *name = kgt_case_name(c);
    const kg_npy *a = kgt_case_input(c, "attention");
    long K = N * D, n = B * K * S;
    cr_assert(a && kg_npy_count(a) * (a->rank == 4 && a->shape[1] == 1 ? 4 : 1) == n,
              "%s: pre-quantized attention of %ld values: %s", name, n, kgt_case_error(c));
    uint8_t *x = malloc((size_t)n);
    cr_assert(x);
    if (a->rank == 4 && a->shape[1] == 1) { /* words [B, 1, K/4, S] */
        uint32_t *wd = kgt_case_as(c, "attention", KG_U32);
        cr_assert(wd, "%s: %s", name, kgt_case_error(c));
        for (long i = 0; i < n / 4; i++)
            for (int q = 0; q < 4; q++)
                x[4 * i + q] = (uint8_t)(wd[i] >> (8 * q));
        free(wd);
        return x;
    }
    uint8_t *q = kgt_case_codes8(c, "attention", KG_WT_E4M3FN);
    if (a->rank == 5) { /* [B, 1, K/4, S, 4]: the words' elements in order */
        memcpy(x, q, (size_t)n);
    } else {
        cr_assert(a->rank == 4 && a->shape[0] == B && a->shape[1] == N && a->shape[2] == D &&
                  a->shape[3] == S, "%s: pre-quantized attention [B, N, D, S]", name);
        for (long b = 0; b < B; b++)
            for (long k = 0; k < K; k++)
                for (long s = 0; s < S; s++)
                    x[((b * (K / 4) + k / 4) * S + s) * 4 + k % 4] = q[(b * K + k) * S + s];
    }
    free(q);
    return x;
}

/* The weight format of a quantized case: its dtype's name; integer codes without one are e4m3
 * (STATIC, ROW) or e4m3fn (STATIC_MX), x4 words fp8 when a word passes 16 bits, else fp4 (MX's
 * two formats). */
static int vector_wt_fmt(kgt_case *c, const char *quant)
{
    int f = kgt_case_wt_fmt(c, "weight");
    if (f >= 0 || strcmp(quant, "MX"))
        return f >= 0 ? f : !strcmp(quant, "STATIC_MX") ? KG_WT_E4M3FN : KG_WT_E4M3;
    f = kgt_case_x4_word_fmt(c, "weight");
    cr_assert(f >= 0, "%s: MX weight of dtype %s names no format", kgt_case_name(c),
              kgt_case_input_dtype(c, "weight"));
    return f;
}

/* One case of output_projection_cte / _tkg: every option mapped to its key (quantization NONE,
 * STATIC, ROW, STATIC_MX, MX online or with pre-quantized attention; output dtype; TKG
 * TRANSPOSE_OUT), the dtypes from the case, the weight in any representation kgt_case_wt
 * accepts (STATIC_MX / MX: a [N*D, H] weight is the logical one, x4 words or their elements the
 * stored one). */
static void run_vector(kgt_case *c, const char *variant)
{
    const char *name = kgt_case_name(c), *quant = "NONE", *odt = NULL;
    double B, S, N, D, H;
    int bias = 0;
    cr_assert(kgt_case_opt_num(c, "B", &B) && kgt_case_opt_num(c, "S", &S) &&
              kgt_case_opt_num(c, "N", &N) && kgt_case_opt_num(c, "D", &D) &&
              kgt_case_opt_num(c, "H", &H), "%s: shape options", name);
    kgt_case_opt_bool(c, "bias", &bias);
    kgt_case_opt_str(c, "quantization_type", &quant);
    kgt_case_opt_str(c, "output_dtype", &odt);
    /* hardware placement of the output (SBUF instead of HBM), SBUF management: no effect on
     * the values (output_projection.md) */
    kgt_case_opt_has(c, "OUT_IN_SB");
    kgt_case_opt_has(c, "sbm");
    int fp8 = !strcmp(quant, "STATIC") || !strcmp(quant, "ROW"), mx = !strcmp(quant, "MX");
    int smx = !strcmp(quant, "STATIC_MX");
    cr_assert(fp8 || mx || smx || !strcmp(quant, "NONE"), "%s: quantization_type %s is not "
              "mapped", name, quant);
    int tkg = strcmp(variant, "TKG") == 0;
    const char *sname = tkg ? "weight_scale" : "weight_scales";
    const char *iname = tkg ? "input_scale" : "input_scales";
    const kg_npy *attn = kgt_case_input(c, "attention"), *wt = kgt_case_input(c, "weight");
    cr_assert(attn && wt && (!bias || kgt_case_input_dtype(c, "bias")), "%s: %s", name,
              kgt_case_error(c));
    /* MX with fp8 or integer attention: pre-quantized (x4 words and E8M0 input scales) */
    int at = kgt_case_dtype(c, "attention");
    int preq = mx && (at < 0 || at == KG_E4M3FN || at == KG_E4M3 || at == KG_U8 ||
                      at == KG_I32 || at == KG_U32 || at == KG_I64);
    const char *const fl[] = { preq ? NULL : "attention", "bias" };
    int t = preq && !bias ? KG_BF16 : kgt_case_float_dtype(c, fl, 2);
    cr_assert(t >= 0, "%s: %s", name, kgt_case_error(c));
    int wfmt;
    if (fp8 || mx || smx) {
        wfmt = vector_wt_fmt(c, quant);
    } else {
        static const char *const wl[] = { "weight" };
        int wdt = kgt_case_float_dtype(c, wl, 1);
        cr_assert(wdt >= 0, "%s: %s", name, kgt_case_error(c));
        wfmt = kg_wt_fmt_from_name(kg_dtype_name((kg_dtype)wdt));
    }
    int ot = odt ? kgt_case_dtype_from_name(odt) : mx ? KG_BF16 : t;
    cr_assert(ot >= 0, "%s: output_dtype '%s'", name, odt);
    int lnc, tout = vector_transpose_out(c, (long)H, &lnc);

    char problem[320];
    snprintf(problem, sizeof problem, P "variant=%s,quantization_type=%s,dtype=%s,weight_dtype=%s,"
             "out_dtype=%s,N=%ld,D=%ld,H=%ld,bias=%s,mx_prequant=%s", variant, quant,
             kg_dtype_name((kg_dtype)t), kg_wt_fmt_name(wfmt), kg_dtype_name((kg_dtype)ot),
             (long)N, (long)D, (long)H, bias ? "true" : "false", preq ? "true" : "false");
    if (tout)
        snprintf(problem + strlen(problem), sizeof problem - strlen(problem),
                 ",transpose_out=true,lnc=%d", lnc);
    const kg_kernel *k = kgt_jit(problem);
    long K = (long)(N * D), T = (long)(B * S);
    kg_wt w;
    long Hw = kgt_case_wt(c, "weight", mx ? sname : NULL, wfmt, mx || smx ? KG_WL_X4 : KG_WL_KN,
                          K, &w);
    cr_assert_eq(Hw, (long)H, "%s: weight of %ld columns for H = %g", name, Hw, H);
    void *ae = preq ? vector_prequant(c, (long)B, (long)S, (long)N, (long)D)
                    : vector_tensor(c, "attention", (kg_dtype)t);
    void *be = bias ? vector_tensor(c, "bias", (kg_dtype)t) : NULL;
    float *ws = !mx && kgt_case_input_dtype(c, sname) ? kgt_case_as(c, sname, KG_F32) : NULL;
    void *is = kgt_case_input_dtype(c, iname) ? kgt_case_as(c, iname, preq ? KG_U8 : KG_F32)
                                              : NULL;
    cr_assert(!preq || is, "%s: pre-quantized MX attention needs %s [B, N*D/32, S]: %s", name,
              iname, kgt_case_error(c));
    void *out = kgt_poisoned((kg_dtype)ot, T * (long)H);
    int rc = ((kg_output_projection_fn *)k->fn)(out, ae, &w, ws, is, be, (long)B, (long)S);
    cr_assert_eq(rc, KG_OK, "%s: %s returned %d", name, k->name, rc);
    char msg[1024];
    int ok = kgt_close_to_case(c, "out_out", (kg_dtype)ot, out, msg, sizeof msg);
    cr_assert(ok >= 0, "%s: no tolerance", name);
    cr_assert(ok, "vector %s/%s (%s): %s", variant, name, k->name, msg);
    free(ae), free(be), free(ws), free(is), free(out);
    kg_wt_free(&w);
}

static void run_cte(kgt_case *c) { run_vector(c, "CTE"); }
static void run_tkg(kgt_case *c) { run_vector(c, "TKG"); }

Test(output_projection, shared_vectors_cte) { kgt_each_case("output_projection_cte", run_cte); }
Test(output_projection, shared_vectors_tkg) { kgt_each_case("output_projection_tkg", run_tkg); }

/* A synthetic output_projection_tkg case for what the shared sample lacks: f32 activations and
 * bias, ROW fp8 weights, and TRANSPOSE_OUT without an "lnc" (the torch reference's guess: 2
 * when H % 256 == 0), so the output is [128, 2, H / 256, B * S]; expected from tests/ref. */
Test(output_projection, synthetic_vector_tkg_f32_row_transpose_out)
{
    enum { B = 2, S = 3, N = 2, D = 64, H = 256, K = N * D, T = B * S };
    float *attn = kgt_randn(KG_F32, D * B * N * S, 601), *bias = kgt_randn(KG_F32, H, 602);
    float *W = kgt_randn(KG_F32, K * H, 603), *ws = malloc(sizeof(float) * 128 * H);
    for (long i = 0; i < K * H; i++)
        W[i] = kg_e4m3_to_f32(kg_f32_to_e4m3(W[i] * 20.0f));
    for (long r = 0; r < 128; r++)
        for (long h = 0; h < H; h++)
            ws[r * H + h] = 0.002f + 0.00001f * (float)h;
    float *A = malloc(sizeof(float) * T * K), *y = malloc(sizeof(float) * T * H);
    float *o = malloc(sizeof(float) * T * H);
    outproj_gather_ref(A, attn, 1, B, S, N, D);
    outproj_ref(y, A, W, ws, 1.0f, bias, 2, 0, 240.0f, T, K, H);
    outproj_transpose_ref(o, y, T, H, 2);
    kgt_casew *w = kgt_casew_new("output_projection_tkg", "row_f32_tout_b2_s3");
    long as[4] = { D, B, N, S }, wsh[2] = { K, H }, bs[2] = { 1, H }, ss[2] = { 128, H };
    long os[4] = { 128, 2, H / 256, T };
    kgt_casew_input(w, "attention", "f32", attn, 4, as);
    kgt_casew_input(w, "weight", "fp8_e4m3", W, 2, wsh);
    kgt_casew_input(w, "weight_scale", "f32", ws, 2, ss);
    kgt_casew_input(w, "bias", "f32", bias, 2, bs);
    kgt_casew_opt_num(w, "B", B), kgt_casew_opt_num(w, "S", S), kgt_casew_opt_num(w, "N", N);
    kgt_casew_opt_num(w, "D", D), kgt_casew_opt_num(w, "H", H);
    kgt_casew_opt_bool(w, "bias", 1), kgt_casew_opt_str(w, "quantization_type", "ROW");
    kgt_casew_opt_bool(w, "TRANSPOSE_OUT", 1);
    kgt_casew_output(w, "out_out", o, 4, os, 5e-2, 1e-5);
    kgt_run_case(kgt_casew_finish(w), run_tkg);
    kgt_casew_free(w);
    free(attn), free(bias), free(W), free(ws), free(A), free(y), free(o);
}

/* Synthetic output_projection_cte cases for MX (online: fp4 and fp8 weights; pre-quantized
 * attention as x4 words or logical fp8 values with E8M0 input scales) and STATIC_MX (e4m3fn,
 * clamp 448), each weight representation once; expected from tests/ref. */
Test(output_projection, synthetic_vector_cte_mx_and_static_mx)
{
    enum { B = 2, S = 3, N = 2, D = 64, H = 40, K = N * D, T = B * S };
    for (int rep = 0; rep < KGT_WREP_COUNT; rep++)
        for (int kind = 0; kind < 3; kind++) { /* 0 MX online, 1 MX pre-quantized, 2 STATIC_MX */
            int mx = kind < 2, fmt = mx && rep % 2 == 0 ? KG_WT_E2M1 : KG_WT_E4M3FN;
            unsigned long long seed = 800 + 10 * (unsigned long long)rep + (unsigned)kind;
            uint32_t *codes = malloc(sizeof(uint32_t) * K * H);
            uint8_t *e8 = mx ? malloc(K / 32 * H) : NULL;
            float *W = malloc(sizeof(float) * K * H);
            for (long b = 0; mx && b < K / 32 * H; b++)
                e8[b] = (uint8_t)(122 + (b * 7 + rep) % 8);
            for (long i = 0; i < K * H; i++) {
                float v = kgt_normal(&seed) * (fmt == KG_WT_E2M1 ? 2.0f : 8.0f), m = 6.0f;
                if (fmt != KG_WT_E2M1)
                    m = 448.0f;
                v = v > m ? m : v < -m ? -m : v;
                kgt_wt_code(fmt, v, &codes[i]);
                W[i] = (fmt == KG_WT_E2M1 ? kg_e2m1_to_f32((uint8_t)codes[i])
                                          : kg_e4m3fn_to_f32((uint8_t)codes[i])) *
                       (mx ? kg_e8m0_to_f32(e8[(i / H / 32) * H + i % H]) : 1.0f);
            }
            float *attn = kgt_randn(KG_BF16, B * N * D * S, seed + 1);
            float *bias = kgt_randn(KG_BF16, H, seed + 2);
            float *A = malloc(sizeof(float) * T * K), *y = malloc(sizeof(float) * T * H);
            outproj_gather_ref(A, attn, 0, B, S, N, D);
            kgt_casew *w = kgt_casew_new("output_projection_cte", "mx_synthetic");
            long as[4] = { B, N, D, S }, bs[2] = { 1, H }, os[3] = { B, S, H };
            float ws = 0.02f, is = 0.015f;
            if (kind == 1) { /* attention MX-quantized here: codes and scales [B, K/32, S] */
                float *codes8 = malloc(sizeof(float) * B * K * S), *sc = malloc(sizeof(float) *
                                                                               B * K / 32 * S);
                for (long t = 0; t < T; t++)
                    for (long k0 = 0; k0 < K; k0 += 32) {
                        uint8_t e = kg_e8m0_block_exponent(A + t * K + k0, 32, 8);
                        long b = t / S, s = t % S;
                        sc[(b * (K / 32) + k0 / 32) * S + s] = e;
                        for (long k = k0; k < k0 + 32; k++) {
                            float c = A[t * K + k] / kg_e8m0_to_f32(e);
                            c = kg_e4m3fn_to_f32(kg_f32_to_e4m3fn(c > 448 ? 448 : c < -448 ? -448
                                                                                         : c));
                            codes8[(b * K + k) * S + s] = c;
                            A[t * K + k] = c * kg_e8m0_to_f32(e);
                        }
                    }
                long ss[3] = { B, K / 32, S };
                if (rep % 2) { /* the logical [B, N, D, S] fp8 values */
                    kgt_casew_input(w, "attention", "fp8_e4m3fn", codes8, 4, as);
                } else { /* x4 words [B, 1, K/4, S] */
                    uint32_t *wd = calloc((size_t)(B * K / 4 * S), 4);
                    for (long b = 0; b < B; b++)
                        for (long k = 0; k < K; k++)
                            for (long s = 0; s < S; s++)
                                wd[(b * (K / 4) + k / 4) * S + s] |=
                                    (uint32_t)kg_f32_to_e4m3fn(codes8[(b * K + k) * S + s])
                                    << (8 * (k % 4));
                    kg_npy a = { KG_U32, 4, { B, 1, K / 4, S }, wd };
                    kgt_casew_input_npy(w, "attention", "float8_e4m3fn_x4", &a);
                    free(wd);
                }
                kgt_casew_input(w, "input_scales", "u8", sc, 3, ss);
                free(codes8), free(sc);
            } else {
                kgt_casew_input(w, "attention", "bf16", attn, 4, as);
                if (kind == 0)
                    outproj_mx_quant_ref(A, T, K);
            }
            outproj_ref(y, A, W, &ws, is, bias, kind == 1 ? 0 : mx ? 3 : 4, 1, 448.0f, T, K, H);
            kgt_casew_wt(w, "weight", "weight_scales", fmt, KG_WL_X4, K, H, codes, e8, rep);
            if (kind == 2) {
                float wsv[128], isv[128];
                long s1[2] = { 128, 1 };
                for (int r = 0; r < 128; r++)
                    wsv[r] = ws, isv[r] = is;
                kgt_casew_input(w, "weight_scales", "f32", wsv, 2, s1);
                kgt_casew_input(w, "input_scales", "f32", isv, 2, s1);
            }
            kgt_casew_input(w, "bias", "bf16", bias, 2, bs);
            kgt_casew_opt_num(w, "B", B), kgt_casew_opt_num(w, "S", S);
            kgt_casew_opt_num(w, "N", N), kgt_casew_opt_num(w, "D", D);
            kgt_casew_opt_num(w, "H", H), kgt_casew_opt_bool(w, "bias", 1);
            kgt_casew_opt_str(w, "quantization_type", mx ? "MX" : "STATIC_MX");
            kgt_casew_output(w, "out_out", y, 3, os, 5e-2, 1e-5);
            kgt_run_case(kgt_casew_finish(w), run_cte);
            kgt_casew_free(w);
            free(codes), free(e8), free(W), free(attn), free(bias), free(A), free(y);
        }
}

/* ---- names ----------------------------------------------------------------------------------- */

/* Every sweep problem's name parses back to the keys it spells, and distinct kernels have
 * distinct names. */
Test(output_projection, names_parse_back_and_are_unique)
{
    enum { MAXN = 64 };
    static char names[MAXN][256];
    int n = 0;
    const sweep *lists[2] = { CTE, TKG };
    size_t counts[2] = { sizeof CTE / sizeof CTE[0], sizeof TKG / sizeof TKG[0] };
    for (int l = 0; l < 2; l++)
        for (size_t i = 0; i < counts[l] && n < MAXN; i++, n++) {
            kgt_name_parses_back(lists[l][i].problem, names[n], sizeof names[0]);
            for (int j = 0; j < n; j++)
                cr_assert_str_neq(names[j], names[n], "two problems share the name %s", names[n]);
        }
}

/* The stored weight layout only tells the packer where codes sit; the kernel reads the packed
 * handle, so the layout is not part of the name (the same code serves both). */
Test(output_projection, weight_layout_is_not_in_the_name)
{
    char a[256], b[256];
    kgt_name_parses_back(P "quantization_type=MX,N=2,D=16,H=8,weight_layout=x4", a, sizeof a);
    kgt_name_parses_back(P "quantization_type=MX,N=2,D=16,H=8,weight_layout=kn", b, sizeof b);
    cr_assert_str_eq(a, b);
}

/* ---- rejected combinations ------------------------------------------------------------------- */

Test(output_projection, rejected_combinations_name_the_key)
{
    static const struct { const char *problem, *want; } bad[] = {
        /* quantization per variant */
        { P "variant=CTE,quantization_type=ROW", "key 'quantization_type'" },
        { P "variant=TKG,quantization_type=MX", "key 'quantization_type'" },
        { P "variant=TKG,quantization_type=STATIC_MX", "key 'quantization_type'" },
        /* weight formats */
        { P "quantization_type=STATIC,weight_dtype=bf16", "key 'weight_dtype'" },
        { P "quantization_type=STATIC_MX,weight_dtype=e4m3", "e4m3fn" },
        { P "quantization_type=MX,weight_dtype=e4m3", "key 'weight_dtype'" },
        { P "quantization_type=NONE,weight_dtype=e4m3", "key 'weight_dtype'" },
        { P "variant=TKG,quantization_type=ROW,weight_dtype=e2m1", "key 'weight_dtype'" },
        /* output dtype */
        { P "variant=TKG,dtype=bf16,out_dtype=f32", "key 'out_dtype'" },
        { P "quantization_type=MX,out_dtype=f32", "key 'out_dtype'" },
        /* MX shapes and input */
        { P "quantization_type=MX,N=3,D=5", "key 'D'" },
        { P "quantization_type=MX,N=1,D=48", "key 'D'" },
        { P "quantization_type=STATIC,mx_prequant=true", "key 'mx_prequant'" },
        { P "quantization_type=MX,mx_prequant=true,attn_layout=DBNS", "key 'attn_layout'" },
        /* stored layouts */
        { P "quantization_type=NONE,weight_layout=x4", "key 'weight_layout'" },
        { P "quantization_type=STATIC_MX,N=3,D=3,weight_layout=x4", "key 'weight_layout'" },
        /* TRANSPOSE_OUT */
        { P "variant=CTE,transpose_out=true", "key 'transpose_out'" },
        { P "variant=TKG,lnc=2", "key 'lnc'" },
        { P "variant=TKG,transpose_out=true,H=200", "key 'H'" },
        { P "variant=TKG,transpose_out=true,lnc=2,H=384", "key 'H'" },
        { P "variant=TKG,transpose_out=true,lnc=3,H=384", "key 'lnc'" },
        /* the clamp */
        { P "quantization_type=STATIC,quant_max=300", "key 'quant_max'" },
        { P "quantization_type=NONE,quant_max=100", "key 'quant_max'" },
        { P "variant=TKG,quantization_type=ROW,quant_max=100", "key 'quant_max'" },
        /* plain key errors */
        { P "variant=XYZ", "key 'variant'" },
        { P "N=0", "key 'N'" },
        { P "attn_layout=NBSD", "key 'attn_layout'" },
        { P "out_in_sb=true", "key 'out_in_sb'" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        kgt_problem_rejected(bad[i].problem, bad[i].want);
}

/* ---- run-time argument checks ---------------------------------------------------------------- */

Test(output_projection, run_time_checks)
{
    const kg_kernel *k = kgt_jit(P "quantization_type=STATIC,N=2,D=16,H=24,bias=true");
    kg_output_projection_fn *fn = (kg_output_projection_fn *)k->fn;
    opts o = read_opts(k->problem);
    inputs in;
    make_inputs(&o, 1, 2, 3, &in);
    void *out = kgt_poisoned(o.ot, 2 * 24);
    const void *a = in.attn, *ws = &in.w_scale_s, *is = &in.s_in, *b = in.bias_enc;
    const kg_wt *w = &in.w;
    cr_assert_eq(fn(out, a, w, ws, is, b, 1, 2), KG_OK);
    cr_assert_eq(fn(out, a, w, ws, is, b, -1, 2), KG_EARG, "B < 0");
    cr_assert_eq(fn(out, a, w, ws, is, b, 1, -2), KG_EARG, "S < 0");
    cr_assert_eq(fn(NULL, NULL, NULL, NULL, NULL, NULL, 0, 2), KG_OK, "B = 0 is an empty call");
    cr_assert_eq(fn(NULL, NULL, NULL, NULL, NULL, NULL, 3, 0), KG_OK, "S = 0 is an empty call");
    cr_assert_eq(fn(out, a, w, ws, is, b, 1L << 40, 1L << 40), KG_EARG, "B*S overflows");
    cr_assert_eq(fn(NULL, a, w, ws, is, b, 1, 2), KG_EARG, "NULL out");
    cr_assert_eq(fn(out, NULL, w, ws, is, b, 1, 2), KG_EARG, "NULL attention");
    cr_assert_eq(fn(out, a, NULL, ws, is, b, 1, 2), KG_EARG, "NULL weight");
    cr_assert_eq(fn(out, a, w, NULL, is, b, 1, 2), KG_EARG, "NULL w_scale");
    cr_assert_eq(fn(out, a, w, ws, NULL, b, 1, 2), KG_EARG, "NULL in_scale");
    cr_assert_eq(fn(out, a, w, ws, is, NULL, 1, 2), KG_EARG, "NULL bias");
    /* weights that are not the kernel's: other K, other H, other format */
    kg_wt bad;
    free(kgt_wt_random(&bad, KG_WT_E4M3, KG_WL_KN, 31, 24, 0, 8.0f, 1, 0, 0));
    cr_assert_eq(fn(out, a, &bad, ws, is, b, 1, 2), KG_EARG, "weight K 31, not 32");
    kg_wt_free(&bad);
    free(kgt_wt_random(&bad, KG_WT_E4M3, KG_WL_KN, 32, 25, 0, 8.0f, 1, 0, 0));
    cr_assert_eq(fn(out, a, &bad, ws, is, b, 1, 2), KG_EARG, "weight H 25, not 24");
    kg_wt_free(&bad);
    free(kgt_wt_random(&bad, KG_WT_E4M3FN, KG_WL_KN, 32, 24, 0, 8.0f, 1, 0, 0));
    cr_assert_eq(fn(out, a, &bad, ws, is, b, 1, 2), KG_EARG, "e4m3fn weight, kernel is e4m3");
    kg_wt_free(&bad);
    free(out);
    free_inputs(&in);
}

Test(output_projection, run_time_checks_row_and_mx)
{
    const kg_kernel *row = kgt_jit(P "variant=TKG,quantization_type=ROW,N=2,D=16,H=24");
    kg_output_projection_fn *fr = (kg_output_projection_fn *)row->fn;
    opts o = read_opts(row->problem);
    inputs in;
    make_inputs(&o, 1, 1, 4, &in);
    void *out = kgt_poisoned(KG_BF16, 64 * 64);
    cr_assert_eq(fr(out, in.attn, &in.w, in.w_col, NULL, NULL, 1, 1), KG_OK);
    cr_assert_eq(fr(out, in.attn, &in.w, NULL, NULL, NULL, 1, 1), KG_EARG, "ROW: NULL w_scale");
    free_inputs(&in);

    const kg_kernel *mx = kgt_jit(P "quantization_type=MX,mx_prequant=true,N=2,D=32,H=24");
    kg_output_projection_fn *fm = (kg_output_projection_fn *)mx->fn;
    o = read_opts(mx->problem);
    make_inputs(&o, 1, 1, 4, &in);
    cr_assert_eq(fm(out, in.attn, &in.w, NULL, in.e8, NULL, 1, 1), KG_OK);
    cr_assert_eq(fm(out, in.attn, &in.w, NULL, NULL, NULL, 1, 1), KG_EARG,
                 "pre-quantized MX: NULL in_scale");
    kg_wt bad;
    /* an e2m1 weight without MX scales, and one with blocks of 8 (mlp_mx_down) */
    free(kgt_wt_random(&bad, KG_WT_E2M1, KG_WL_X4, 64, 24, 0, 2.0f, 1, 0, 0));
    cr_assert_eq(fm(out, in.attn, &bad, NULL, in.e8, NULL, 1, 1), KG_EARG, "no MX scales");
    kg_wt_free(&bad);
    free(kgt_wt_random(&bad, KG_WT_E2M1, KG_WL_MLP_MX_DOWN, 64, 24, 1, 2.0f, 1, 0, 0));
    cr_assert_eq(bad.kb, 8);
    cr_assert_eq(fm(out, in.attn, &bad, NULL, in.e8, NULL, 1, 1), KG_EARG, "MX blocks of 8");
    kg_wt_free(&bad);
    free(out);
    free_inputs(&in);
}

/* ---- JIT vs AOT ------------------------------------------------------------------------------ */

/* Runs kernels a (AOT) and j (JIT) on the same inputs at B = 2, S = 3; the outputs must be the
 * same bytes. */
static void compare_builds(const kg_kernel *a, const kg_kernel *j)
{
    opts o = read_opts(a->problem);
    inputs in;
    make_inputs(&o, 2, 3, 77, &in);
    long n = in.T * o.H, shape[4];
    void *oa = kgt_build_output(o.ot, n, KGT_AOT), *oj = kgt_build_output(o.ot, n, KGT_JIT);
    cr_assert_eq(call(a, &o, &in, oa), KG_OK, "%s (AOT)", a->name);
    cr_assert_eq(call(j, &o, &in, oj), KG_OK, "%s (JIT)", j->name);
    int rank = out_shape(&o, &in, shape);
    char msg[1024];
    cr_assert(kgt_same_bytes(oj, oa, o.ot, n, rank, shape, msg, sizeof msg), "%s: %s", a->name,
              msg);
    free(oa), free(oj);
    free_inputs(&in);
}

Test(output_projection, jit_and_aot_are_bit_identical)
{
    cr_assert_gt(kgt_each_aot_jit_pair("output_projection", compare_builds), 0,
                 "no AOT-built spec has an output_projection kernel");
}
