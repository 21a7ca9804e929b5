/* tests/test_moe_tkg.c: the moe_tkg family against tests/ref/moe_tkg_ref.c: selective and
 * all-expert (with a rank's share of the experts and the mask), NO_SCALE and POST_SCALE, every
 * activation, clamps, biases, NONE and ROW weights, eager affinities, every dtype, on edge
 * shapes (one expert, K = E, T = 1, a block boundary of 64 tokens crossed, odd H and I); the two
 * algorithms against each other bit for bit; unselected experts' weights never read (poisoned);
 * refused problems and calls; JIT vs AOT bit-identity. */
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
#include "util/compare.h"
#include "util/experts.h"
#include "util/jitp.h"
#include "util/tensors.h"
#include "util/weights.h"

TestSuite(moe_tkg, .init = kgt_suite_init, .fini = kgt_suite_fini);

static const char *const ACTS[] = { "SiLU", "GELU", "GELU_Tanh_Approx", "Swish" };

/* One problem: its keys and per-call sizes. */
typedef struct mcase {
    kg_dtype t, ot, at;   /* dtype, out_dtype, affinity_dtype */
    int wfmt;             /* weight format (kg_wt_fmt); fp8 means ROW */
    long T, H, I, E, EL, K, rank;
    int all, post, mask, eager, act, gub, db;
    float glo, ghi, ulo, uhi; /* 0 and 0: no clamp on that projection */
    int dup;              /* expert_index may repeat an expert in a row */
    int mx;               /* MX weights (wfmt e4m3fn, e5m2 or e2m1) */
    int preq;             /* MX all-expert: hidden_input pre-quantized (mx_prequant) */
} mcase;

static int is_fp8(int f) { return f == KG_WT_E4M3 || f == KG_WT_E4M3FN; }

static void problem_of(const mcase *m, char *p, size_t len)
{
    int n = snprintf(p, len, "moe_tkg:dtype=%s,quantization_type=%s,weight_dtype=%s,"
                     "affinity_dtype=%s,out_dtype=%s,H=%ld,I=%ld,E=%ld,E_L=%ld,K=%ld,"
                     "is_all_expert=%s,expert_affinities_scaling_mode=%s,"
                     "mask_unselected_experts=%s,use_eager_affinities=%s,activation_fn=%s,"
                     "gate_up_bias=%s,down_bias=%s", kg_dtype_name(m->t),
                     m->mx ? "MX" : is_fp8(m->wfmt) ? "ROW" : "NONE", kg_wt_fmt_name(m->wfmt),
                     kg_dtype_name(m->at), kg_dtype_name(m->ot), m->H, m->I, m->E, m->EL, m->K,
                     m->all ? "true" : "false", m->post ? "POST_SCALE" : "NO_SCALE",
                     m->mask ? "true" : "false", m->eager ? "true" : "false", ACTS[m->act],
                     m->gub ? "true" : "false", m->db ? "true" : "false");
    if (m->glo != 0 || m->ghi != 0)
        n += snprintf(p + n, len - (size_t)n, ",gate_clamp_lower_limit=%g,"
                      "gate_clamp_upper_limit=%g", m->glo, m->ghi);
    if (m->ulo != 0 || m->uhi != 0)
        n += snprintf(p + n, len - (size_t)n, ",up_clamp_lower_limit=%g,"
                      "up_clamp_upper_limit=%g", m->ulo, m->uhi);
    if (m->preq)
        snprintf(p + n, len - (size_t)n, ",mx_prequant=true");
}

/* hidden_input as the kernel takes it: x [T, H] in dtype t, or (preq) its MX e4m3fn codes
 * with their E8M0 scales in *e8 [T, H/512, 16] (else *e8 = NULL); malloc'd. */
static void *encode_x(const mcase *m, const float *x, uint8_t **e8)
{
    *e8 = NULL;
    if (!m->preq)
        return kgt_encode(m->t, x, m->T * m->H);
    uint8_t *codes = malloc((size_t)(m->T * m->H));
    *e8 = malloc((size_t)(m->T * m->H / 32));
    cr_assert(codes && *e8);
    kgt_mx_quantize_hidden(codes, *e8, x, m->T, m->H);
    return codes;
}

/* A problem's inputs (fp32 values, each on its dtype's grid). */
typedef struct minputs {
    float *x, *wgu, *wd, *aff, *eager, *bgu, *bd, *sgu, *sd;
    int32_t *idx;
    kg_wt pgu, pd; /* wgu and wd packed (kg_wt_pack_experts) */
} minputs;

static void inputs(const mcase *m, minputs *in, unsigned long long seed)
{
    long T = m->T, H = m->H, I = m->I, E = m->E, EL = m->EL, K = m->K;
    in->x = kgt_randn(m->t, T * H, seed);
    if (m->mx) {
        /* upstream's MX layouts, each expert stored alone, random E8M0 scales */
        in->wgu = kgt_mx_experts(&in->pgu, m->wfmt, KG_WL_MOE_MX_GATE_UP, EL, H, 2 * I,
                                 seed + 1);
        in->wd = kgt_mx_experts(&in->pd, m->wfmt, KG_WL_MLP_MX_DOWN, EL, I, H, seed + 2);
    } else {
        in->wgu = kgt_randn_fmt(m->wfmt, EL * H * 2 * I, is_fp8(m->wfmt) ? 2.0f : 0.1f,
                                seed + 1);
        in->wd = kgt_randn_fmt(m->wfmt, EL * I * H, is_fp8(m->wfmt) ? 2.0f : 0.1f, seed + 2);
        kgt_pack_experts(&in->pgu, m->wfmt, EL, H, 2 * I, in->wgu);
        kgt_pack_experts(&in->pd, m->wfmt, EL, I, H, in->wd);
    }
    in->bgu = kgt_randn(m->t, EL * 2 * I, seed + 3);
    in->bd = kgt_randn(m->t, EL * H, seed + 4);
    in->sgu = kgt_randn(KG_F32, EL * 2 * I, seed + 5);
    in->sd = kgt_randn(KG_F32, EL * H, seed + 6);
    for (long i = 0; i < EL * 2 * I; i++)
        in->sgu[i] = 0.05f + 0.01f * fabsf(in->sgu[i]);
    for (long i = 0; i < EL * H; i++)
        in->sd[i] = 0.05f + 0.01f * fabsf(in->sd[i]);
    /* expert_index: distinct experts per row (K <= E), or with repeats; affinities: the
     * router's dense output, positive on the row's experts, and (mask) elsewhere too */
    in->idx = malloc((size_t)(T * K) * sizeof *in->idx);
    in->aff = malloc((size_t)(T * E) * sizeof *in->aff);
    in->eager = malloc((size_t)(T * K) * sizeof *in->eager);
    unsigned long long s = seed * 6364136223846793005ull + 1442695040888963407ull;
    for (long t = 0; t < T; t++) {
        for (long k = 0; k < K; k++) {
            long e;
            int again;
            do {
                s = s * 6364136223846793005ull + 1442695040888963407ull;
                e = (long)((s >> 33) % (unsigned long long)E);
                again = 0;
                for (long j = 0; j < k && !m->dup; j++)
                    again |= in->idx[t * K + j] == e;
            } while (again);
            in->idx[t * K + k] = (int32_t)e;
        }
        for (long e = 0; e < E; e++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            float v = 0.1f + (float)((s >> 40) % 1000) / 1000.0f;
            int named = 0;
            for (long k = 0; k < K; k++)
                named |= in->idx[t * K + k] == e;
            in->aff[t * E + e] = kgt_round(m->at, named || m->mask ? v : 0.0f);
        }
        for (long k = 0; k < K; k++)
            in->eager[t * K + k] = in->aff[t * E + in->idx[t * K + k]];
    }
}

static void free_inputs(minputs *in)
{
    free(in->x), free(in->wgu), free(in->wd), free(in->aff), free(in->eager), free(in->bgu);
    free(in->bd), free(in->sgu), free(in->sd), free(in->idx);
    kg_wt_free(&in->pgu), kg_wt_free(&in->pd);
}

/* Runs problem m on in; returns the output (decoded, malloc'd). */
static float *run_kernel(const mcase *m, const minputs *in, kg_wt *wgu, kg_wt *wd)
{
    char problem[1024];
    problem_of(m, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    long T = m->T, H = m->H, I = m->I, E = m->E, EL = m->EL;
    uint8_t *e8;
    void *xe = encode_x(m, in->x, &e8), *ae = kgt_encode(m->at, in->aff, T * E);
    void *bge = kgt_encode(m->t, in->bgu, EL * 2 * I), *bde = kgt_encode(m->t, in->bd, EL * H);
    void *out = kgt_poisoned(m->ot, T * H);
    uint32_t rank = (uint32_t)m->rank;
    int rc = ((kg_moe_tkg_fn *)k->fn)(out, xe, wgu, wd, ae, in->idx, &rank, bge, bde, in->sgu,
                                      in->sd, e8, in->eager, T);
    cr_assert_eq(rc, KG_OK, "%s returned %d", k->name, rc);
    float *got = kgt_decode(m->ot, out, T * H);
    free(xe), free(e8), free(ae), free(bge), free(bde), free(out);
    return got;
}

static void check(const mcase *m, unsigned long long seed)
{
    long T = m->T, H = m->H, I = m->I;
    minputs in;
    inputs(m, &in, seed);
    float *got = run_kernel(m, &in, &in.pgu, &in.pd);
    float *want = malloc((size_t)(T * H) * sizeof *want);
    int narrow = m->wfmt != KG_WT_F32 && m->wfmt != KG_WT_F16; /* the GEMM rounds A to bf16 */
    int gc = m->glo != 0 || m->ghi != 0, uc = m->ulo != 0 || m->uhi != 0;
    moe_ref_opts o = { m->all, m->post, m->mask, m->eager, m->act, gc ? m->glo : -INFINITY,
                       gc ? m->ghi : INFINITY, uc ? m->ulo : -INFINITY, uc ? m->uhi : INFINITY,
                       narrow ? kgt_round_bf16 : NULL, m->mx };
    int row = is_fp8(m->wfmt) && !m->mx;
    moe_tkg_ref(want, in.x, in.wgu, in.wd, in.aff, in.idx, m->rank, m->gub ? in.bgu : NULL,
                m->db ? in.bd : NULL, row ? in.sgu : NULL, row ? in.sd : NULL, in.eager, &o, T,
                H, I, m->E, m->EL, m->K);
    char problem[1024], msg[1024];
    problem_of(m, problem, sizeof problem);
    for (long i = 0; i < T * H; i++)
        want[i] = kgt_round(m->ot, want[i]);
    long shape[2] = { T, H };
    /* MX (moe_tkg.md "Tolerances": 5e-2): a product a rounding away from a block's boundary
     * may round the other way in the kernel's fp32 than in the reference's double */
    double rtol = m->mx ? 5e-2 : m->ot != KG_F32 || narrow ? 1e-2 : 1e-4;
    cr_assert(kgt_allclose_shaped(got, want, 2, shape, rtol, 1e-5, msg, sizeof msg),
              "%s T=%ld rank=%ld: %s", problem, T, m->rank, msg);
    free_inputs(&in), free(got), free(want);
}

/* ---- sweeps ----------------------------------------------------------------------------------- */

/* T, H, I, E, K: one expert; K = E; T = 1; 70 tokens (past a block of 64); odd H and I. */
static const long SHAPES[][5] = { { 1, 1, 1, 1, 1 }, { 3, 64, 96, 4, 2 }, { 1, 33, 17, 3, 3 },
                                  { 70, 40, 24, 5, 2 }, { 5, 130, 70, 6, 4 } };

Test(moe_tkg, selective_every_option_on_edge_shapes, .timeout = 240 * KGT_TIME_SCALE)
{
    unsigned long long seed = 1;
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++)
        for (int v = 0; v < 8; v++) {
            const long *z = SHAPES[s];
            mcase m = { KG_BF16, KG_BF16, KG_F32, KG_WT_BF16, z[0], z[1], z[2], z[3], z[3],
                        z[4], 0, 0, v & 1, 0, 0, v % 4, (v >> 1) & 1, (v >> 2) & 1, 0, 0, 0, 0,
                        v == 5, 0, 0 };
            if (v == 6)
                m.eager = 1, m.post = 1;
            if (v == 7)
                m.glo = -0.5f, m.ghi = 0.25f, m.ulo = -0.125f, m.uhi = 0.5f;
            check(&m, seed++);
        }
}

Test(moe_tkg, all_expert_every_option_on_edge_shapes, .timeout = 240 * KGT_TIME_SCALE)
{
    unsigned long long seed = 100;
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++)
        for (int v = 0; v < 6; v++) {
            const long *z = SHAPES[s];
            /* v 4, 5: two ranks of half the experts each (E even), rank 1 */
            long EL = v >= 4 && z[3] % 2 == 0 ? z[3] / 2 : z[3];
            mcase m = { KG_BF16, KG_F32, KG_BF16, KG_WT_BF16, z[0], z[1], z[2], z[3], EL,
                        z[4], EL < z[3] ? 1 : 0, 1, v & 1, (v >> 1) & 1, 0, 3 - v % 4, v & 1,
                        (v >> 1) & 1, 0, 0, 0, 0, 0, 0, 0 };
            if (!m.post)
                m.mask = 0;
            check(&m, seed++);
        }
}

Test(moe_tkg, every_dtype_and_row_weights, .timeout = 240 * KGT_TIME_SCALE)
{
    static const int wf[] = { KG_WT_F32, KG_WT_BF16, KG_WT_F16, KG_WT_E4M3, KG_WT_E4M3FN };
    unsigned long long seed = 300;
    for (size_t d = 0; d < KGT_FLOAT_DTYPES; d++)
        for (size_t f = 0; f < sizeof wf / sizeof wf[0]; f++)
            for (int all = 0; all < 2; all++) {
                kg_dtype t = kgt_float_dtypes[d];
                mcase m = { t, kgt_float_dtypes[(d + 1) % 3], t, wf[f], 4, 48, 40, 4, 4, 2, 0,
                            all, 1, all, 0, (int)f % 4, 1, 1, 0, 0, 0, 0, 0, 0, 0 };
                check(&m, seed++);
            }
}

/* MX weights (fp8 e4m3fn, e5m2, fp4 e2m1) in upstream's MX layouts: selective and all-expert,
 * both scaling modes, biases, clamps, I below and at 512, T past a block of 64. */
Test(moe_tkg, mx_weights, .timeout = 240 * KGT_TIME_SCALE)
{
    static const int wf[] = { KG_WT_E4M3FN, KG_WT_E5M2, KG_WT_E2M1 };
    static const long shapes[][5] = { { 1, 512, 32, 1, 1 }, { 5, 512, 96, 4, 2 },
                                      { 70, 512, 64, 3, 3 }, { 2, 1024, 512, 4, 2 } };
    unsigned long long seed = 400;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t f = 0; f < sizeof wf / sizeof wf[0]; f++)
            for (int v = 0; v < 2; v++) {
                const long *z = shapes[s];
                mcase m = { KG_BF16, v ? KG_F32 : KG_BF16, KG_F32, wf[f], z[0], z[1], z[2], z[3],
                            z[3], z[4], 0, v, 1 - (int)(s % 2) * v, v, 0, (int)(f + s) % 4, v,
                            1 - v, 0, 0, 0, 0, 0, 1, 0 };
                if (s == 2)
                    m.glo = -0.5f, m.ghi = 0.25f, m.ulo = -0.125f, m.uhi = 0.5f;
                if (!m.post)
                    m.mask = 0;
                check(&m, seed++);
            }
}

/* MX all-expert on pre-quantized input (upstream's hidden_input_scale): e4m3fn codes with
 * their E8M0 scales, against the reference quantizing the same rows itself; both modes, a
 * rank's share, I below and at 512, T past a block of 64; a NULL scale array is refused. */
Test(moe_tkg, mx_prequant_input, .timeout = 240 * KGT_TIME_SCALE)
{
    static const int wf[] = { KG_WT_E4M3FN, KG_WT_E2M1, KG_WT_E5M2 };
    static const long shapes[][5] = { { 1, 512, 32, 2, 1 }, { 70, 512, 96, 4, 2 },
                                      { 3, 1024, 512, 4, 2 } };
    unsigned long long seed = 800;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int v = 0; v < 2; v++) {
            const long *z = shapes[s];
            long EL = v ? z[3] / 2 : z[3];
            mcase m = { KG_BF16, KG_F32, KG_BF16, wf[(s + v) % 3], z[0], z[1], z[2], z[3], EL,
                        z[4], EL < z[3], 1, v, v, 0, 3 - v, v, 1 - v, 0, 0, 0, 0, 0, 1, 1 };
            check(&m, seed++);
        }
    const kg_kernel *k = kgt_jit("moe_tkg:dtype=f32,quantization_type=MX,H=512,I=32,E=1,K=1,"
                                 "is_all_expert=true,expert_affinities_scaling_mode=NO_SCALE,"
                                 "mx_prequant=true");
    kg_wt gu, d;
    float *vgu = kgt_mx_experts(&gu, KG_WT_E4M3FN, KG_WL_MOE_MX_GATE_UP, 1, 512, 64, 1);
    float *vd = kgt_mx_experts(&d, KG_WT_E4M3FN, KG_WL_MLP_MX_DOWN, 1, 32, 512, 2);
    uint8_t codes[512] = { 0 }, e8[16] = { 127 };
    float out[512];
    uint32_t rank = 0;
    kg_moe_tkg_fn *fn = (kg_moe_tkg_fn *)k->fn;
    cr_assert_eq(fn(out, codes, &gu, &d, 0, 0, &rank, 0, 0, 0, 0, 0, 0, 1), KG_EARG,
                 "NULL hidden_input_scale");
    cr_assert_eq(fn(out, codes, &gu, &d, 0, 0, &rank, 0, 0, 0, 0, e8, 0, 1), KG_OK);
    kg_wt_free(&gu), kg_wt_free(&d), free(vgu), free(vd);
}

/* An MX kernel refuses expert weights whose scales run over 32 rows (kb 32, a kn MX weight):
 * its activations are quantized over the kb 8 blocks. */
Test(moe_tkg, mx_refuses_other_blocks)
{
    const kg_kernel *k = kgt_jit("moe_tkg:dtype=f32,quantization_type=MX,H=512,I=32,E=1,K=1");
    kg_wt gu, d, gu32;
    float *vgu = kgt_mx_experts(&gu, KG_WT_E4M3FN, KG_WL_MOE_MX_GATE_UP, 1, 512, 64, 1);
    float *vd = kgt_mx_experts(&d, KG_WT_E4M3FN, KG_WL_MLP_MX_DOWN, 1, 32, 512, 2);
    float *v32 = kgt_mx_experts(&gu32, KG_WT_E4M3FN, KG_WL_KN, 1, 512, 64, 3);
    cr_assert_eq(gu32.kb, 32);
    float *x = calloc(512, sizeof *x), *out = calloc(512, sizeof *out), aff[1] = { 1 };
    uint32_t idx[1] = { 0 }, rank = 0;
    kg_moe_tkg_fn *fn = (kg_moe_tkg_fn *)k->fn;
    cr_assert_eq(fn(out, x, &gu, &d, aff, idx, &rank, 0, 0, 0, 0, 0, 0, 1), KG_OK);
    cr_assert_eq(fn(out, x, &gu32, &d, aff, idx, &rank, 0, 0, 0, 0, 0, 0, 1), KG_EARG);
    kg_wt_free(&gu), kg_wt_free(&d), kg_wt_free(&gu32);
    free(vgu), free(vd), free(v32), free(x), free(out);
}

/* ---- the two algorithms, and the weights a call reads ----------------------------------------- */

/* Runs m selective and all-expert (masked POST_SCALE, or NO_SCALE with every expert in every
 * row) on the same inputs: the same bits. */
static void same_both_ways(mcase m, unsigned long long seed)
{
    minputs in;
    inputs(&m, &in, seed);
    m.all = 0, m.mask = 0;
    float *sel = run_kernel(&m, &in, &in.pgu, &in.pd);
    m.all = 1, m.mask = m.post;
    float *all = run_kernel(&m, &in, &in.pgu, &in.pd);
    cr_assert_eq(memcmp(sel, all, (size_t)(m.T * m.H) * sizeof *sel), 0,
                 "selective and all-expert differ (post=%d)", m.post);
    long nonzero = 0;
    for (long i = 0; i < m.T * m.H; i++)
        nonzero += sel[i] != 0;
    cr_assert_gt(nonzero, 0);
    free_inputs(&in), free(sel), free(all);
}

Test(moe_tkg, selective_and_all_expert_agree_bit_for_bit)
{
    /* POST_SCALE: the dense affinities (positive everywhere) masked to the selected experts */
    mcase m = { KG_BF16, KG_F32, KG_F32, KG_WT_BF16, 9, 64, 48, 6, 6, 2, 0, 0, 1, 1, 0, 0, 1, 1,
                0, 0, 0, 0, 0, 0, 0 };
    same_both_ways(m, 11);
    m.wfmt = KG_WT_E4M3, m.act = 3;
    same_both_ways(m, 12);
    /* NO_SCALE: K = E, every row names every expert once */
    mcase n = { KG_BF16, KG_F32, KG_F32, KG_WT_BF16, 5, 64, 32, 3, 3, 3, 0, 0, 0, 0, 0, 2, 0, 1,
                0, 0, 0, 0, 0, 0, 0 };
    same_both_ways(n, 13);
    /* MX fp4 */
    mcase x = { KG_BF16, KG_F32, KG_F32, KG_WT_E2M1, 9, 512, 96, 6, 6, 2, 0, 0, 1, 1, 0, 0, 1,
                1, 0, 0, 0, 0, 0, 1, 0 };
    same_both_ways(x, 14);
}

/* The experts no token routes to are never read: their panels of both packed weights are set
 * to NaN, and the output is still the reference's, finite. */
Test(moe_tkg, unselected_experts_are_not_read)
{
    mcase m = { KG_BF16, KG_F32, KG_F32, KG_WT_BF16, 2, 64, 96, 8, 8, 2, 0, 0, 1, 0, 0, 0, 0, 0,
                0, 0, 0, 0, 0, 0, 0 };
    minputs in;
    inputs(&m, &in, 21);
    int used[8] = { 0 };
    for (long i = 0; i < m.T * m.K; i++)
        used[in.idx[i]] = 1;
    kg_wt wgu = in.pgu, wd = in.pd; /* freed with the inputs */
    float *clean = run_kernel(&m, &in, &wgu, &wd);
    int poisoned = 0;
    for (long e = 0; e < m.EL; e++) {
        if (used[e])
            continue;
        long off, n = kgt_expert_bytes(&wgu, e, 2 * m.I, &off);
        memset((char *)wgu.data + off, 0xff, (size_t)n); /* bf16 NaN */
        n = kgt_expert_bytes(&wd, e, m.H, &off);
        memset((char *)wd.data + off, 0xff, (size_t)n);
        poisoned++;
    }
    cr_assert_gt(poisoned, 0, "every expert was selected");
    float *got = run_kernel(&m, &in, &wgu, &wd);
    cr_assert_eq(memcmp(got, clean, (size_t)(m.T * m.H) * sizeof *got), 0,
                 "the output changed when unselected experts were poisoned");
    m.all = 1, m.mask = 1; /* all-expert skips them too (their affinities are masked to 0) */
    float *all = run_kernel(&m, &in, &wgu, &wd);
    for (long i = 0; i < m.T * m.H; i++)
        cr_assert(isfinite(all[i]), "all-expert read a poisoned expert: out[%ld] = %g", i,
                  all[i]);
    free_inputs(&in), free(clean), free(got), free(all);
}

/* ---- refusals ----------------------------------------------------------------------------------- */

Test(moe_tkg, refused_problems_name_the_key)
{
    static const struct { const char *problem, *want; } bad[] = {
        { "moe_tkg:quantization_type=STATIC", "key 'quantization_type'" },
        { "moe_tkg:quantization_type=MX,H=256", "key 'H'" },
        { "moe_tkg:quantization_type=MX,H=512,I=100", "key 'I'" },
        { "moe_tkg:quantization_type=MX,H=512,I=64,weight_dtype=e4m3", "key 'weight_dtype'" },
        { "moe_tkg:quantization_type=ROW,weight_dtype=e2m1", "key 'weight_dtype'" },
        { "moe_tkg:expert_affinities_scaling_mode=PRE_SCALE",
          "key 'expert_affinities_scaling_mode'" },
        { "moe_tkg:expert_affinities_scaling_mode=PRE_SCALE_DELAYED",
          "key 'expert_affinities_scaling_mode'" },
        { "moe_tkg:is_all_expert=true,use_eager_affinities=true", "key 'use_eager_affinities'" },
        { "moe_tkg:mask_unselected_experts=true", "key 'mask_unselected_experts'" },
        { "moe_tkg:E=8,E_L=4", "key 'E_L'" },
        { "moe_tkg:is_all_expert=true,E=8,E_L=3", "key 'E_L'" },
        { "moe_tkg:E=2,K=3", "key 'K'" },
        { "moe_tkg:quantization_type=ROW,weight_dtype=bf16", "key 'weight_dtype'" },
        { "moe_tkg:weight_dtype=e4m3", "key 'weight_dtype'" },
        { "moe_tkg:activation_fn=ReLU", "key 'activation_fn'" },
        { "moe_tkg:mx_prequant=true", "key 'mx_prequant'" },
        { "moe_tkg:quantization_type=MX,H=512,I=64,mx_prequant=true", "key 'mx_prequant'" },
        { "moe_tkg:quantization_type=ROW,is_all_expert=true,mx_prequant=true",
          "key 'mx_prequant'" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        kgt_problem_rejected(bad[i].problem, bad[i].want);
}

Test(moe_tkg, refused_calls)
{
    const kg_kernel *k = kgt_jit("moe_tkg:dtype=f32,H=8,I=4,E=4,E_L=2,K=2,is_all_expert=true");
    kg_moe_tkg_fn *fn = (kg_moe_tkg_fn *)k->fn;
    float x[8] = { 1 }, out[8], aff[4] = { 1, 1, 1, 1 };
    uint32_t idx[2] = { 0, 1 }, rank = 0, rank2 = 2;
    float *wgu = calloc(2 * 8 * 8, 4), *wd = calloc(2 * 4 * 8, 4);
    kg_wt gu, d, bad;
    kgt_pack_experts(&gu, KG_WT_F32, 2, 8, 8, wgu);
    kgt_pack_experts(&d, KG_WT_F32, 2, 4, 8, wd);
    kgt_pack_experts(&bad, KG_WT_F32, 1, 8, 8, wgu);
    cr_assert_eq(fn(out, x, &gu, &d, aff, idx, &rank, 0, 0, 0, 0, 0, 0, -1), KG_EARG, "T < 0");
    cr_assert_eq(fn(0, 0, &gu, &d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), KG_OK, "T = 0 is empty");
    cr_assert_eq(fn(out, x, &gu, &d, aff, idx, NULL, 0, 0, 0, 0, 0, 0, 1), KG_EARG, "NULL rank");
    cr_assert_eq(fn(out, x, &gu, &d, NULL, idx, &rank, 0, 0, 0, 0, 0, 0, 1), KG_EARG, "NULL aff");
    cr_assert_eq(fn(out, x, &gu, &d, aff, idx, &rank2, 0, 0, 0, 0, 0, 0, 1), KG_EARG,
                 "rank 2 of 2 ranks");
    cr_assert_eq(fn(out, x, &bad, &d, aff, idx, &rank, 0, 0, 0, 0, 0, 0, 1), KG_EARG,
                 "one expert's weight where two are expected");
    cr_assert_eq(fn(out, x, &gu, &d, aff, idx, &rank, 0, 0, 0, 0, 0, 0, 1), KG_OK);
    kg_wt_free(&gu), kg_wt_free(&d), kg_wt_free(&bad), free(wgu), free(wd);
}

/* ---- JIT vs AOT --------------------------------------------------------------------------------- */

static long key_long(const char *problem, const char *key)
{
    long v;
    cr_assert(kg_problem_long(problem, key, &v), "%s: no %s", problem, key);
    return v;
}

static kg_dtype key_dtype(const char *problem, const char *key)
{
    char v[16];
    cr_assert(kg_problem_str(problem, key, v, sizeof v), "%s: no %s", problem, key);
    return (kg_dtype)kg_dtype_from_name(v);
}

/* AOT (a) and JIT (j) builds on the same inputs, T = 3, every optional input given: the same
 * output bytes. */
static void compare_builds(const kg_kernel *a, const kg_kernel *j)
{
    const char *p = a->problem;
    char wdt[16], q[16];
    cr_assert(kg_problem_str(p, "weight_dtype", wdt, sizeof wdt));
    cr_assert(kg_problem_str(p, "quantization_type", q, sizeof q));
    mcase m = { key_dtype(p, "dtype"), key_dtype(p, "out_dtype"), key_dtype(p, "affinity_dtype"),
                kg_wt_fmt_from_name(wdt), 3, key_long(p, "H"), key_long(p, "I"), key_long(p, "E"),
                key_long(p, "E_L"), key_long(p, "K"), 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    m.rank = m.E / m.EL - 1;
    m.mx = strcmp(q, "MX") == 0;
    char pq[8];
    m.preq = kg_problem_str(p, "mx_prequant", pq, sizeof pq) && strcmp(pq, "true") == 0;
    minputs in;
    inputs(&m, &in, 5);
    uint8_t *e8;
    void *xe = encode_x(&m, in.x, &e8), *ae = kgt_encode(m.at, in.aff, m.T * m.E);
    void *bge = kgt_encode(m.t, in.bgu, m.EL * 2 * m.I), *bde = kgt_encode(m.t, in.bd, m.EL * m.H);
    uint32_t rank = (uint32_t)m.rank;
    void *out[2];
    for (int b = 0; b < 2; b++) {
        out[b] = kgt_build_output(m.ot, m.T * m.H, b);
        const kg_kernel *k = b == KGT_AOT ? a : j;
        int rc = ((kg_moe_tkg_fn *)k->fn)(out[b], xe, &in.pgu, &in.pd, ae, in.idx, &rank, bge, bde,
                                          in.sgu, in.sd, e8, in.eager, m.T);
        cr_assert_eq(rc, KG_OK, "%s (%s): %d", a->name, b == KGT_AOT ? "AOT" : "JIT", rc);
    }
    char msg[1024];
    long shape[2] = { m.T, m.H };
    cr_assert(kgt_same_bytes(out[KGT_JIT], out[KGT_AOT], m.ot, m.T * m.H, 2, shape, msg,
                             sizeof msg), "%s: %s", a->name, msg);
    free_inputs(&in), free(xe), free(e8), free(ae), free(bge), free(bde), free(out[0]);
    free(out[1]);
}

Test(moe_tkg, jit_and_aot_are_bit_identical)
{
    cr_assert_gt(kgt_each_aot_jit_pair("moe_tkg", compare_builds), 0,
                 "no AOT-built spec has a moe_tkg kernel");
}
