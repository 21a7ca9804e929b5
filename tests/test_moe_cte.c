/* tests/test_moe_cte.c: the moe_cte family against tests/ref/moe_cte_ref.c on block layouts
 * built by kg_moe_blocks (kgen/moe_blocks.h) from random router outputs: dropless (padding
 * slots, padding-only blocks, the conditions stop, skip_token) and capacity dropping; every
 * scaling mode, activation, biases, clamps, fp8 weights with per-column (and shared) scales,
 * accumulating and overwriting updates, the checkpoints, MX weights (fp4, e4m3fn, e5m2) in
 * upstream's MX layouts, dequantized by the reference's plain loops; edge shapes (one expert,
 * K = E, T = 1, E not a power of two, odd H and I, a pass of more than 256 slots); refused
 * problems and calls; JIT vs AOT bit-identity. */
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
#include "util/compare.h"
#include "util/experts.h"
#include "util/jitp.h"
#include "util/tensors.h"
#include "util/weights.h"

TestSuite(moe_cte, .init = kgt_suite_init, .fini = kgt_suite_fini);

static const char *const ACTS[] = { "SiLU", "GELU", "GELU_Tanh_Approx", "Swish" };
static const char *const MODES[] = { "NO_SCALE", "POST_SCALE", "PRE_SCALE",
                                     "PRE_SCALE_DELAYED" };

/* One problem: its keys and per-call sizes. */
typedef struct ccase {
    kg_dtype t;
    int wfmt;           /* weight format (kg_wt_fmt); fp8 has scales */
    long T, H, I, E, K, B;
    int mode, act, bias, clamp, acc, ckpt, moi, skip, cond, drop, shared;
    long extra;         /* padding-only blocks past the static count (dropless) */
    int mx;             /* MX weights (wfmt e4m3fn, e5m2 or e2m1) in upstream's MX layouts */
} ccase;

static int is_fp8(int f) { return f == KG_WT_E4M3 || f == KG_WT_E4M3FN; }
static int is_row(const ccase *m) { return is_fp8(m->wfmt) && !m->mx; }
static const char *tf(int b) { return b ? "true" : "false"; }

static long blocks_of(const ccase *m)
{
    return m->drop ? m->E : kg_moe_blocks_count(m->T, m->K, m->E, m->B) + m->extra;
}

static void problem_of(const ccase *m, char *p, size_t len)
{
    int n = snprintf(p, len, "moe_cte:dtype=%s,weight_dtype=%s,H=%ld,I=%ld,E=%ld,K=%ld,B=%ld,"
                     "capacity_dropping=%s,activation_function=%s,"
                     "expert_affinities_scaling_mode=%s,bias=%s,shared_scales=%s,"
                     "is_tensor_update_accumulating=%s,checkpoint_activation=%s,"
                     "expert_affinity_multiply_on_I=%s,skip_token=%s,conditions=%s",
                     kg_dtype_name(m->t), kg_wt_fmt_name(m->wfmt), m->H, m->I, m->E, m->K, m->B,
                     tf(m->drop), ACTS[m->act], MODES[m->mode], tf(m->bias), tf(m->shared),
                     tf(m->acc), tf(m->ckpt), tf(m->moi), tf(m->skip), tf(m->cond));
    if (m->drop)
        n += snprintf(p + n, len - (size_t)n, ",N=%ld", m->E);
    if (m->mx)
        n += snprintf(p + n, len - (size_t)n, ",quantization_type=MX");
    if (m->clamp)
        snprintf(p + n, len - (size_t)n, ",gate_clamp_lower_limit=-0.5,gate_clamp_upper_limit="
                 "0.25,up_clamp_lower_limit=-0.125,up_clamp_upper_limit=0.5");
}

/* A problem's inputs (fp32 values on their dtype's grid): R = T + 1 rows (row T zero). */
typedef struct cinputs {
    float *x, *aff, *wgu, *wd, *bgu, *bd, *sgu, *sd;
    int32_t *tpi, *b2e, *cond;
    long N;
    void **st;  /* MX: per expert its gate/up words, scales, down words, scales (as stored) */
    long nst;   /* entries of st */
} cinputs;

/* MX experts as upstream stores them (moe_cte.md "MX variants"): each expert's x4 words and
 * E8M0 scales drawn by kgt_wt_random_stored, dequantized by the reference's plain loops into
 * in->wgu [E, H, 2, I] and in->wd [E, I, H] (and checked against the values the draw meant). */
static void mx_inputs(const ccase *m, cinputs *in, unsigned long long seed)
{
    long E = m->E, H = m->H, I = m->I;
    int bits = m->wfmt == KG_WT_E2M1 ? 4 : 8;
    float (*dec)(uint8_t) = m->wfmt == KG_WT_E2M1 ? kg_e2m1_to_f32
                            : m->wfmt == KG_WT_E5M2 ? kg_e5m2_to_f32 : kg_e4m3fn_to_f32;
    in->st = calloc((size_t)(4 * E), sizeof *in->st);
    in->nst = 4 * E;
    in->wgu = malloc((size_t)(E * H * 2 * I) * sizeof *in->wgu);
    in->wd = malloc((size_t)(E * I * H) * sizeof *in->wd);
    cr_assert(in->st && in->wgu && in->wd);
    for (long e = 0; e < E; e++) {
        void **st = in->st + 4 * e;
        float *gu = in->wgu + e * H * 2 * I, *d = in->wd + e * I * H;
        float *v = kgt_wt_random_stored(m->wfmt, KG_WL_MOE_MX_GATE_UP, H, 2 * I, 1, 1.0f,
                                        seed + 10 + (unsigned long long)e, &st[0], &st[1]);
        moe_mx_gate_up_ref(gu, st[0], st[1], bits, dec, H, I);
        cr_assert_eq(memcmp(gu, v, (size_t)(H * 2 * I) * sizeof *v), 0, "gate/up MX mapping");
        free(v);
        v = kgt_wt_random_stored(m->wfmt, KG_WL_MLP_MX_DOWN, I, H, 1, 1.0f,
                                 seed + 50 + (unsigned long long)e, &st[2], &st[3]);
        moe_mx_down_ref(d, st[2], st[3], bits, dec, H, I);
        cr_assert_eq(memcmp(d, v, (size_t)(I * H) * sizeof *v), 0, "down MX mapping");
        free(v);
    }
}

/* The problem's expert weights packed as the kernel takes them (kg_wt_pack_experts). */
static void pack(const ccase *m, const cinputs *in, kg_wt *wgu, kg_wt *wd)
{
    long E = m->E, H = m->H, I = m->I;
    if (!m->mx) {
        kgt_pack_experts(wgu, m->wfmt, E, H, 2 * I, in->wgu);
        kgt_pack_experts(wd, m->wfmt, E, I, H, in->wd);
        return;
    }
    kg_wt_src *gp = calloc((size_t)E, sizeof *gp), *dp = calloc((size_t)E, sizeof *dp);
    cr_assert(gp && dp);
    for (long e = 0; e < E; e++) {
        gp[e] = (kg_wt_src){ m->wfmt, KG_WL_MOE_MX_GATE_UP, H, 2 * I, in->st[4 * e],
                             in->st[4 * e + 1], 0, 0 };
        dp[e] = (kg_wt_src){ m->wfmt, KG_WL_MLP_MX_DOWN, I, H, in->st[4 * e + 2],
                             in->st[4 * e + 3], 0, 0 };
    }
    char err[256] = "";
    cr_assert_eq(kg_wt_pack_experts(wgu, gp, (int)E, 1, err, sizeof err), KG_OK, "%s", err);
    cr_assert_eq(kg_wt_pack_experts(wd, dp, (int)E, 1, err, sizeof err), KG_OK, "%s", err);
    free(gp), free(dp);
}

static void inputs(const ccase *m, cinputs *in, unsigned long long seed)
{
    long T = m->T, H = m->H, I = m->I, E = m->E, K = m->K, R = T + 1;
    float ws = is_fp8(m->wfmt) ? 2.0f : 0.1f;
    in->x = kgt_randn(m->t, R * H, seed);
    for (long h = 0; h < H; h++)
        in->x[T * H + h] = 0; /* the padding token */
    in->st = NULL, in->nst = 0;
    if (m->mx) {
        mx_inputs(m, in, seed);
    } else {
        in->wgu = kgt_randn_fmt(m->wfmt, E * H * 2 * I, ws, seed + 1);
        in->wd = kgt_randn_fmt(m->wfmt, E * I * H, ws, seed + 2);
    }
    in->bgu = kgt_randn(m->t, E * 2 * I, seed + 3);
    in->bd = kgt_randn(m->t, E * H, seed + 4);
    in->sgu = kgt_randn(KG_F32, E * 2 * I, seed + 5);
    in->sd = kgt_randn(KG_F32, E * H, seed + 6);
    for (long i = 0; i < E * 2 * I; i++)
        in->sgu[i] = 0.02f + 0.01f * fabsf(in->sgu[i]);
    for (long i = 0; i < E * H; i++)
        in->sd[i] = 0.05f + 0.01f * fabsf(in->sd[i]);
    /* the router: K distinct experts a token, its affinities masked to them */
    uint32_t *idx = malloc((size_t)(T * K + 1) * sizeof *idx);
    float *dense = malloc((size_t)(R * E) * sizeof *dense);
    in->aff = malloc((size_t)(R * E) * sizeof *in->aff);
    unsigned long long s = seed * 6364136223846793005ull + 1442695040888963407ull;
    for (long t = 0; t < T; t++)
        for (long k = 0; k < K; k++) {
            uint32_t e;
            int again;
            do {
                s = s * 6364136223846793005ull + 1442695040888963407ull;
                e = (uint32_t)((s >> 33) % (unsigned long long)E);
                again = 0;
                for (long j = 0; j < k; j++)
                    again |= idx[t * K + j] == e;
            } while (again);
            idx[t * K + k] = e;
        }
    for (long i = 0; i < R * E; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        dense[i] = kgt_round(m->t, 0.1f + (float)((s >> 40) % 1000) / 1000.0f);
    }
    cr_assert_eq(kg_moe_mask_affinities(in->aff, dense, idx, T, K, E), KG_OK);
    for (long e = 0; e < E; e++)
        in->aff[T * E + e] = 0; /* the padding row */
    in->N = blocks_of(m);
    in->tpi = malloc((size_t)(in->N * m->B) * sizeof *in->tpi);
    in->b2e = malloc((size_t)in->N * sizeof *in->b2e);
    in->cond = malloc((size_t)(in->N + 1) * sizeof *in->cond);
    if (m->drop) {
        cr_assert_eq(kg_moe_blocks_dropping(in->tpi, NULL, idx, T, K, E, m->B, m->skip), KG_OK);
        for (long b = 0; b < in->N; b++)
            in->b2e[b] = (int32_t)b, in->cond[b] = 1; /* neither is read */
        in->cond[in->N] = 0;
    } else {
        long used;
        cr_assert_eq(kg_moe_blocks(in->tpi, in->b2e, in->cond, &used, idx, T, K, E, m->B,
                                   in->N, m->skip), KG_OK);
        cr_assert_leq(used, in->N);
    }
    free(idx), free(dense);
}

static void free_inputs(cinputs *in)
{
    free(in->x), free(in->aff), free(in->wgu), free(in->wd), free(in->bgu), free(in->bd);
    free(in->sgu), free(in->sd), free(in->tpi), free(in->b2e), free(in->cond);
    for (long i = 0; i < in->nst; i++)
        free(in->st[i]);
    free(in->st);
}

/* The kernel's outputs, decoded: out [T + 1, H] (row T untouched), the checkpoints. */
typedef struct couts {
    float *out, *gu, *d;
} couts;

static void run_kernel(const ccase *m, const cinputs *in, const kg_wt *wgu, const kg_wt *wd,
                       couts *o)
{
    char problem[1024];
    problem_of(m, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    long T = m->T, H = m->H, I = m->I, E = m->E, R = T + 1, N = in->N, B = m->B;
    float *zeros = calloc((size_t)(R * H), sizeof *zeros);
    void *out = kgt_encode(m->t, zeros, R * H);
    void *xe = kgt_encode(m->t, in->x, R * H), *ae = kgt_encode(m->t, in->aff, R * E);
    void *bge = kgt_encode(m->t, in->bgu, E * 2 * I), *bde = kgt_encode(m->t, in->bd, E * H);
    void *guc = kgt_poisoned(m->t, N * 2 * I * B), *dc = kgt_poisoned(m->t, N * B * H);
    int rc = ((kg_moe_cte_fn *)k->fn)(out, xe, ae, wgu, wd, in->tpi, in->b2e, in->cond, bge,
                                      bde, in->sgu, in->sd, guc, dc, T, N);
    cr_assert_eq(rc, KG_OK, "%s returned %d", k->name, rc);
    o->out = kgt_decode(m->t, out, R * H);
    o->gu = kgt_decode(m->t, guc, N * 2 * I * B);
    o->d = kgt_decode(m->t, dc, N * B * H);
    free(zeros), free(out), free(xe), free(ae), free(bge), free(bde), free(guc), free(dc);
}

static float nanf_(void) { return nanf(""); }

static void check(const ccase *m, unsigned long long seed)
{
    long T = m->T, H = m->H, I = m->I, E = m->E, R = T + 1, B = m->B;
    cinputs in;
    inputs(m, &in, seed);
    long N = in.N;
    kg_wt wgu, wd;
    pack(m, &in, &wgu, &wd);
    couts got;
    run_kernel(m, &in, &wgu, &wd, &got);
    int narrow = m->wfmt != KG_WT_F32 && m->wfmt != KG_WT_F16; /* the GEMM rounds A to bf16 */
    moe_cte_ref_opts o = { m->act, m->mode, m->acc, m->moi, m->skip,
                           m->clamp ? -0.5f : -INFINITY, m->clamp ? 0.25f : INFINITY,
                           m->clamp ? -0.125f : -INFINITY, m->clamp ? 0.5f : INFINITY,
                           narrow ? kgt_round_bf16 : NULL,
                           m->t == KG_BF16 ? kgt_round_bf16 : m->t == KG_F16 ? kgt_round_f16
                                                                           : NULL, m->mx };
    float *want = calloc((size_t)(R * H), sizeof *want);
    float *wgc = malloc((size_t)(N * 2 * I * B) * sizeof *wgc);
    float *wdc = malloc((size_t)(N * B * H) * sizeof *wdc);
    for (long i = 0; i < N * 2 * I * B; i++)
        wgc[i] = nanf_();
    for (long i = 0; i < N * B * H; i++)
        wdc[i] = nanf_();
    int fp8 = is_row(m);
    moe_cte_ref(want, wgc, wdc, in.x, in.aff, in.wgu, in.wd, in.tpi, m->drop ? NULL : in.b2e,
                m->cond ? in.cond : NULL, m->bias ? in.bgu : NULL, m->bias ? in.bd : NULL,
                fp8 ? in.sgu : NULL, fp8 ? in.sd : NULL, m->shared, &o, T, H, I, E, B, N);
    /* the kernel computes no padding slot: its checkpoint entries are 0, row T untouched */
    long stop = N;
    for (long b = 0; m->cond && b < N; b++)
        if (in.cond[b] == 0) {
            stop = b;
            break;
        }
    for (long s = 0; s < stop * B; s++) {
        if (in.tpi[s] >= 0 && in.tpi[s] < T)
            continue;
        long b = s / B, j = s % B;
        for (long i = 0; i < 2 * I; i++)
            wgc[(b * 2 * I + i) * B + j] = 0;
        for (long h = 0; h < H; h++)
            wdc[s * H + h] = 0;
    }
    char problem[1024], msg[1024];
    problem_of(m, problem, sizeof problem);
    /* MX (moe_cte.md "Tolerances" with fp8: 5e-2): a product a rounding away from a block's
     * boundary may round the other way in the kernel's order of sums */
    double rtol = m->mx ? 5e-2 : m->t != KG_F32 || narrow ? 2e-2 : 1e-4;
    long shape[2] = { T, H };
    for (long i = 0; i < T * H; i++)
        want[i] = kgt_round(m->t, want[i]);
    cr_assert(kgt_allclose_shaped(got.out, want, 2, shape, rtol, 1e-5, msg, sizeof msg),
              "%s T=%ld N=%ld: output: %s", problem, T, N, msg);
    for (long h = 0; h < H; h++)
        cr_assert_eq(got.out[T * H + h], 0.0f, "%s: row T written", problem);
    if (m->ckpt) {
        long gs[4] = { N, 2, I, B }, ds[3] = { N, B, H };
        for (long i = 0; i < N * 2 * I * B; i++)
            wgc[i] = kgt_round(m->t, wgc[i]);
        cr_assert(kgt_allclose_shaped(got.gu, wgc, 4, gs, rtol, 1e-5, msg, sizeof msg),
                  "%s: gate_up_activations_T: %s", problem, msg);
        if (!m->moi) {
            for (long i = 0; i < N * B * H; i++)
                wdc[i] = kgt_round(m->t, wdc[i]);
            cr_assert(kgt_allclose_shaped(got.d, wdc, 3, ds, rtol, 1e-5, msg, sizeof msg),
                      "%s: down_activations: %s", problem, msg);
        }
    }
    kg_wt_free(&wgu), kg_wt_free(&wd);
    free_inputs(&in), free(got.out), free(got.gu), free(got.d), free(want), free(wgc);
    free(wdc);
}

/* ---- sweeps ----------------------------------------------------------------------------------- */

/* T, H, I, E, K, B: one expert; K = E; T = 1; E = 5 and 7 (not powers of two); odd H and I;
 * blocks larger than the tokens (only padding past them); 300 routings of one expert (a pass
 * of 256 slots, then another). */
static const long SHAPES[][6] = { { 4, 16, 8, 1, 1, 2 }, { 3, 64, 96, 4, 4, 4 },
                                  { 1, 33, 17, 3, 2, 4 }, { 9, 40, 24, 5, 2, 3 },
                                  { 6, 130, 70, 7, 3, 16 }, { 300, 32, 16, 1, 1, 128 } };

Test(moe_cte, dropless_every_option_on_edge_shapes, .timeout = 600 * KGT_TIME_SCALE)
{
    unsigned long long seed = 1;
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++)
        for (int v = 0; v < 8; v++) {
            const long *z = SHAPES[s];
            ccase m = { KG_BF16, KG_WT_BF16, z[0], z[1], z[2], z[3], z[4], z[5], v % 4, v % 4,
                        (v >> 1) & 1, v == 7, v != 3, v >= 4, 0, v == 2, v & 1, 0, 0, v % 3, 0 };
            if (v == 5)
                m.moi = 1, m.mode = 1;
            check(&m, seed++);
        }
}

Test(moe_cte, capacity_dropping, .timeout = 240 * KGT_TIME_SCALE)
{
    unsigned long long seed = 100;
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0] - 1; s++)
        for (int v = 0; v < 4; v++) {
            const long *z = SHAPES[s];
            /* capacities below and above the routings an expert gets */
            long cap = v < 2 ? 2 : z[0] + 1;
            ccase m = { KG_BF16, KG_WT_BF16, z[0], z[1], z[2], z[3], z[4], cap, v, 3 - v,
                        v & 1, v == 2, 1, 1, 0, v == 3, 0, 1, 0, 0, 0 };
            check(&m, seed++);
        }
}

Test(moe_cte, every_dtype_and_fp8_weights, .timeout = 240 * KGT_TIME_SCALE)
{
    static const int wf[] = { KG_WT_F32, KG_WT_BF16, KG_WT_F16, KG_WT_E4M3, KG_WT_E4M3FN };
    unsigned long long seed = 300;
    for (size_t d = 0; d < KGT_FLOAT_DTYPES; d++)
        for (size_t f = 0; f < sizeof wf / sizeof wf[0]; f++)
            for (int sh = 0; sh < 1 + is_fp8(wf[f]); sh++) {
                ccase m = { kgt_float_dtypes[d], wf[f], 7, 48, 40, 4, 2, 4, (int)f % 4,
                            (int)(f + d) % 4, 1, (int)f & 1, 1, 1, 0, 0, 0, 0, sh, 1, 0 };
                check(&m, seed++);
            }
}

/* MX weights in upstream's layouts: fp4, e4m3fn and e5m2; I below 512 (one tile of I/4
 * partitions) and 512 (128 partitions); every scaling mode, multiply_on_I (the product scaled
 * before its MX rounding), biases, clamps, the checkpoints, skip_token, dropping. */
Test(moe_cte, mx_weights, .timeout = 600 * KGT_TIME_SCALE)
{
    static const int wf[] = { KG_WT_E2M1, KG_WT_E4M3FN, KG_WT_E5M2 };
    unsigned long long seed = 500;
    for (int v = 0; v < 6; v++) {
        long I = v % 3 == 1 ? 512 : 64 + 32 * (v % 2);
        /* t, wfmt, T, H, I, E, K, B, mode, act, bias, clamp, acc, ckpt, moi, skip, cond,
         * drop, shared, extra, mx */
        ccase m = { v < 3 ? KG_BF16 : KG_F32, wf[v % 3], 6, 512, I, 3, 2, 4, v % 4,
                    v == 1 ? 3 : 0, v & 1, v == 2, v != 4, v < 2, v == 0, v == 3, 0, v == 5,
                    0, 1, 1 };
        if (v == 0)
            m.mode = 1; /* multiply_on_I goes with POST_SCALE */
        check(&m, seed++);
    }
}

/* An MX kernel refuses packed weights whose scales run over 32 rows (kb 32: a kn MX weight),
 * not the 8 of upstream's MX layouts its activations are quantized over. */
Test(moe_cte, mx_refuses_other_blocks)
{
    const kg_kernel *k = kgt_jit("moe_cte:dtype=f32,weight_dtype=e4m3fn,quantization_type=MX,"
                                 "H=512,I=32,E=1,K=1,B=2");
    kg_wt gu, d, gu32;
    float *vgu = kgt_mx_experts(&gu, KG_WT_E4M3FN, KG_WL_MOE_MX_GATE_UP, 1, 512, 64, 1);
    float *vd = kgt_mx_experts(&d, KG_WT_E4M3FN, KG_WL_MLP_MX_DOWN, 1, 32, 512, 2);
    float *v32 = kgt_mx_experts(&gu32, KG_WT_E4M3FN, KG_WL_KN, 1, 512, 64, 3);
    float *x = calloc(2 * 512, sizeof *x), *out = calloc(2 * 512, sizeof *out);
    float aff[2] = { 1, 1 };
    int32_t tpi[2] = { 0, 1 }, b2e[1] = { 0 };
    kg_moe_cte_fn *fn = (kg_moe_cte_fn *)k->fn;
    cr_assert_eq(fn(out, x, aff, &gu32, &d, tpi, b2e, 0, 0, 0, 0, 0, 0, 0, 2, 1), KG_EARG);
    cr_assert_eq(fn(out, x, aff, &gu, &d, tpi, b2e, 0, 0, 0, 0, 0, 0, 0, 2, 1), KG_OK);
    kg_wt_free(&gu), kg_wt_free(&d), kg_wt_free(&gu32);
    free(vgu), free(vd), free(v32), free(x), free(out);
}

/* The conditions stop: blocks past the first 0 are neither computed nor checked (their ids
 * may be anything). */
Test(moe_cte, conditions_stop_early)
{
    ccase m = { KG_F32, KG_WT_F32, 5, 32, 16, 3, 2, 2, 1, 0, 0, 0, 1, 1, 0, 0, 1, 0, 0, 2, 0 };
    check(&m, 41);
    cinputs in;
    inputs(&m, &in, 42);
    long used = 0;
    while (used < in.N && in.cond[used])
        used++;
    cr_assert_lt(used, in.N, "no padding block to stop at");
    kg_wt wgu, wd;
    pack(&m, &in, &wgu, &wd);
    couts a, b;
    run_kernel(&m, &in, &wgu, &wd, &a);
    for (long s = used * m.B; s < in.N * m.B; s++)
        in.tpi[s] = 1 << 30; /* out of range, never read */
    in.b2e[in.N - 1] = 99;
    run_kernel(&m, &in, &wgu, &wd, &b);
    cr_assert_eq(memcmp(a.out, b.out, (size_t)((m.T + 1) * m.H) * sizeof(float)), 0);
    kg_wt_free(&wgu), kg_wt_free(&wd);
    free_inputs(&in), free(a.out), free(a.gu), free(a.d), free(b.out), free(b.gu), free(b.d);
}

/* ---- refusals ----------------------------------------------------------------------------------- */

Test(moe_cte, refused_problems_name_the_key)
{
    static const struct { const char *problem, *want; } bad[] = {
        { "moe_cte:quantization_type=MX", "key 'weight_dtype'" },
        { "moe_cte:quantization_type=MX,weight_dtype=e2m1,H=256", "key 'H'" },
        { "moe_cte:quantization_type=MX,weight_dtype=e2m1,H=512,I=100", "key 'I'" },
        { "moe_cte:quantization_type=MX,weight_dtype=e4m3fn,H=512,I=64,shared_scales=true",
          "key 'shared_scales'" },
        { "moe_cte:weight_dtype=e2m1", "key 'weight_dtype'" },
        { "moe_cte:weight_dtype=e5m2,quantization_type=ROW", "key 'weight_dtype'" },
        { "moe_cte:weight_dtype=e4m3,quantization_type=NONE", "key 'quantization_type'" },
        { "moe_cte:quantization_type=ROW", "key 'quantization_type'" },
        { "moe_cte:weight_dtype=mxfp4", "key 'weight_dtype'" },
        { "moe_cte:shared_scales=true", "key 'shared_scales'" },
        { "moe_cte:E=2,K=3", "key 'K'" },
        { "moe_cte:capacity_dropping=true,conditions=true", "key 'conditions'" },
        { "moe_cte:capacity_dropping=true,E=4,N=5", "key 'N'" },
        { "moe_cte:expert_affinity_multiply_on_I=true,expert_affinities_scaling_mode=NO_SCALE",
          "key 'expert_affinity_multiply_on_I'" },
        { "moe_cte:activation_function=ReLU", "key 'activation_function'" },
        { "moe_cte:B=0", "key 'B'" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        kgt_problem_rejected(bad[i].problem, bad[i].want);
}

Test(moe_cte, refused_calls_write_nothing)
{
    const kg_kernel *k = kgt_jit("moe_cte:dtype=f32,weight_dtype=f32,H=8,I=4,E=2,K=1,B=2");
    kg_moe_cte_fn *fn = (kg_moe_cte_fn *)k->fn;
    float x[3 * 8] = { 1, 2, 3 }, out[3 * 8] = { 0 }, aff[3 * 2] = { 1, 1, 1, 1 };
    int32_t tpi[4] = { 0, 1, 2, 2 }, b2e[2] = { 0, 1 };
    float *w1 = calloc(2 * 8 * 64, 4), *w2 = calloc(2 * 4 * 64, 4);
    kg_wt gu, d, bad;
    kgt_pack_experts(&gu, KG_WT_F32, 2, 8, 8, w1);
    kgt_pack_experts(&d, KG_WT_F32, 2, 4, 8, w2);
    kgt_pack_experts(&bad, KG_WT_F32, 1, 8, 8, w1);
    cr_assert_eq(fn(out, x, aff, &gu, &d, tpi, b2e, 0, 0, 0, 0, 0, 0, 0, -1, 2), KG_EARG, "T<0");
    cr_assert_eq(fn(out, x, aff, &gu, &d, tpi, b2e, 0, 0, 0, 0, 0, 0, 0, 2, -1), KG_EARG, "N<0");
    cr_assert_eq(fn(out, x, aff, &gu, &d, tpi, b2e, 0, 0, 0, 0, 0, 0, 0, 2, 0), KG_OK, "N = 0");
    cr_assert_eq(fn(out, x, NULL, &gu, &d, tpi, b2e, 0, 0, 0, 0, 0, 0, 0, 2, 2), KG_EARG,
                 "NULL affinities");
    cr_assert_eq(fn(out, x, aff, &bad, &d, tpi, b2e, 0, 0, 0, 0, 0, 0, 0, 2, 2), KG_EARG,
                 "one expert's weight where two are expected");
    int32_t b2e_bad[2] = { 0, 2 }, tpi_bad[4] = { 0, 3, 2, 2 }, tpi_neg[4] = { 0, -1, 2, 2 };
    cr_assert_eq(fn(out, x, aff, &gu, &d, tpi, b2e_bad, 0, 0, 0, 0, 0, 0, 0, 2, 2), KG_EARG,
                 "expert 2 of 2");
    cr_assert_eq(fn(out, x, aff, &gu, &d, tpi_bad, b2e, 0, 0, 0, 0, 0, 0, 0, 2, 2), KG_EARG,
                 "token 3 of 2 (padding is 2)");
    cr_assert_eq(fn(out, x, aff, &gu, &d, tpi_neg, b2e, 0, 0, 0, 0, 0, 0, 0, 2, 2), KG_EARG,
                 "-1 without skip_token");
    for (int i = 0; i < 3 * 8; i++)
        cr_assert_eq(out[i], 0.0f, "a refused call wrote output[%d]", i);
    cr_assert_eq(fn(out, x, aff, &gu, &d, tpi, b2e, 0, 0, 0, 0, 0, 0, 0, 2, 2), KG_OK);
    kg_wt_free(&gu), kg_wt_free(&d), kg_wt_free(&bad), free(w1), free(w2);
}

/* ---- JIT vs AOT --------------------------------------------------------------------------------- */

static long key_long(const char *problem, const char *key)
{
    long v;
    cr_assert(kg_problem_long(problem, key, &v), "%s: no %s", problem, key);
    return v;
}

static int key_bool(const char *problem, const char *key)
{
    char v[16];
    cr_assert(kg_problem_str(problem, key, v, sizeof v), "%s: no %s", problem, key);
    return strcmp(v, "true") == 0;
}

static int key_index(const char *problem, const char *key, const char *const *names, int n)
{
    char v[32];
    cr_assert(kg_problem_str(problem, key, v, sizeof v), "%s: no %s", problem, key);
    for (int i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0)
            return i;
    cr_assert_fail("%s: %s = %s", problem, key, v);
    return 0;
}

/* AOT (a) and JIT (j) builds on the same inputs, T = 9, every optional input given: the same
 * output bytes (outputs start as the same zeros: they are updated in place). */
static void compare_builds(const kg_kernel *a, const kg_kernel *j)
{
    const char *p = a->problem;
    char dt[16], wdt[16], q[16];
    cr_assert(kg_problem_str(p, "dtype", dt, sizeof dt));
    cr_assert(kg_problem_str(p, "weight_dtype", wdt, sizeof wdt));
    cr_assert(kg_problem_str(p, "quantization_type", q, sizeof q));
    ccase m = { (kg_dtype)kg_dtype_from_name(dt), kg_wt_fmt_from_name(wdt), 9, key_long(p, "H"),
                key_long(p, "I"), key_long(p, "E"), key_long(p, "K"), key_long(p, "B"),
                key_index(p, "expert_affinities_scaling_mode", MODES, 4),
                key_index(p, "activation_function", ACTS, 4), key_bool(p, "bias"), 0,
                key_bool(p, "is_tensor_update_accumulating"),
                key_bool(p, "checkpoint_activation"),
                key_bool(p, "expert_affinity_multiply_on_I"), key_bool(p, "skip_token"),
                key_bool(p, "conditions"), key_bool(p, "capacity_dropping"),
                key_bool(p, "shared_scales"), 1, strcmp(q, "MX") == 0 };
    cinputs in;
    inputs(&m, &in, 5);
    kg_wt wgu, wd;
    pack(&m, &in, &wgu, &wd);
    long R = m.T + 1, N = in.N, E = m.E, H = m.H, I = m.I;
    float *zeros = calloc((size_t)(R * H), sizeof *zeros);
    void *xe = kgt_encode(m.t, in.x, R * H), *ae = kgt_encode(m.t, in.aff, R * E);
    void *bge = kgt_encode(m.t, in.bgu, E * 2 * I), *bde = kgt_encode(m.t, in.bd, E * H);
    size_t ob = (size_t)(R * H) * kgt_dtype_size(m.t);
    size_t gb = (size_t)(N * 2 * I * m.B) * kgt_dtype_size(m.t);
    size_t db = (size_t)(N * m.B * H) * kgt_dtype_size(m.t);
    void *out[2], *gc[2], *dc[2];
    for (int b = 0; b < 2; b++) {
        out[b] = kgt_encode(m.t, zeros, R * H);
        gc[b] = kgt_poisoned(m.t, N * 2 * I * m.B), dc[b] = kgt_poisoned(m.t, N * m.B * H);
        const kg_kernel *k = b == KGT_AOT ? a : j;
        int rc = ((kg_moe_cte_fn *)k->fn)(out[b], xe, ae, &wgu, &wd, in.tpi, in.b2e, in.cond,
                                          bge, bde, in.sgu, in.sd, gc[b], dc[b], m.T, N);
        cr_assert_eq(rc, KG_OK, "%s (%s): %d", a->name, b == KGT_AOT ? "AOT" : "JIT", rc);
    }
    char msg[1024];
    size_t w = kgt_dtype_size(m.t);
    /* updated in place from the same zeros: the rows no slot routes to stay zero in both */
    cr_assert(kgt_builds_equal(out[KGT_JIT], out[KGT_AOT], (long)(ob / w), w, msg, sizeof msg),
              "%s: output: %s", a->name, msg);
    if (m.ckpt) {
        cr_assert(kgt_builds_equal(gc[KGT_JIT], gc[KGT_AOT], (long)(gb / w), w, msg, sizeof msg),
                  "%s: gate_up_activations_T: %s", a->name, msg);
        if (!m.moi)
            cr_assert(kgt_builds_equal(dc[KGT_JIT], dc[KGT_AOT], (long)(db / w), w, msg,
                                       sizeof msg), "%s: down_activations: %s", a->name, msg);
    }
    kg_wt_free(&wgu), kg_wt_free(&wd);
    free_inputs(&in), free(zeros), free(xe), free(ae), free(bge), free(bde);
    for (int b = 0; b < 2; b++)
        free(out[b]), free(gc[b]), free(dc[b]);
}

Test(moe_cte, jit_and_aot_are_bit_identical)
{
    cr_assert_gt(kgt_each_aot_jit_pair("moe_cte", compare_builds), 0,
                 "no AOT-built spec has a moe_cte kernel");
}
