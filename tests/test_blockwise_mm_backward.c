/* tests/test_blockwise_mm_backward.c: the blockwise_mm_backward family against the plain loops
 * of tests/ref/blockwise_mm_backward_ref.c (every gradient, SiLU and Swish, the four clamps,
 * biases, T and -1 padding, accumulating and overwriting hidden gradients, every dtype, bf16
 * and f32 weights; edge shapes: a block of padding only, T = 1, one expert, padding slots that
 * count because the padding row's gradient is not zero), against central finite differences
 * of the forward in double, the shared vector cases (every option mapped), refused problems
 * and calls, and JIT vs AOT bit-identity. */
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
#include "util/vectors.h"

TestSuite(blockwise_mm_backward, .init = kgt_suite_init, .fini = kgt_suite_fini);

/* ---- one problem ------------------------------------------------------------------------------ */

typedef struct bcase {
    kg_dtype t, at; /* dtype, affinity_dtype */
    int wfmt;       /* KG_WT_F32 or KG_WT_BF16 */
    long T, H, I, E, B, K;
    int swish, bias, skip, acc;
    float glo, ghi, ulo, uhi;  /* +-INFINITY: none; float32 as the kernel's keys */
    int extra;      /* padding-only blocks appended to the last expert */
    int dpad;       /* a nonzero output gradient on the padding row T */
} bcase;

static long rows_of(const bcase *m) { return m->skip ? m->T : m->T + 1; }

static void problem_of(const bcase *m, char *p, size_t len)
{
    int n = snprintf(p, len, "blockwise_mm_backward:dtype=%s,affinity_dtype=%s,weight_dtype=%s,"
                     "H=%ld,I=%ld,E=%ld,block_size=%ld,activation_type=%s,bias=%s,"
                     "skip_token=%s,is_tensor_update_accumulating=%s", kg_dtype_name(m->t),
                     kg_dtype_name(m->at), kg_wt_fmt_name(m->wfmt), m->H, m->I, m->E, m->B,
                     m->swish ? "Swish" : "SiLU", m->bias ? "true" : "false",
                     m->skip ? "true" : "false", m->acc ? "true" : "false");
    const float lim[4] = { m->glo, m->ghi, m->ulo, m->uhi };
    static const char *const key[4] = { "gate_clamp_lower_limit", "gate_clamp_upper_limit",
                                        "up_clamp_lower_limit", "up_clamp_upper_limit" };
    for (int i = 0; i < 4; i++)
        if (isfinite(lim[i]))
            n += snprintf(p + n, len - (size_t)n, ",%s=%.9g", key[i], lim[i]);
}

/* A problem's tensors: values in double (each on its dtype's grid), the block layout. */
typedef struct binputs {
    long rows, N;
    double *x, *aff, *wgu, *wd, *bgu, *bd, *ckgu, *ckd, *dout;
    int32_t *ids, *bte;
} binputs;

static unsigned long long step(unsigned long long *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

static double uni(unsigned long long *s) { return (double)(step(s) % 1000000) / 1000000.0; }

static double rnd_t(kg_dtype t, double v) { return kgt_round(t, (float)v); }

static double rnd_w(int fmt, double v) { return fmt == KG_WT_F32 ? (float)v : kgt_round_bf16((float)v); }

static double *dalloc(long n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(double)); }

/* The routing (K distinct experts a token) and moe_cte.md's block layout: per expert
 * ceil(n_e / B) blocks in expert order, tokens ascending, N = the static worst case
 * ceil((T K - (E - 1)) / B) + E - 1 at least, extra blocks padding of the last expert. */
static void layout(const bcase *m, binputs *in, unsigned long long *s, int *routed)
{
    long T = m->T, E = m->E, B = m->B, K = m->K, pad = m->skip ? -1 : T;
    for (long t = 0; t < T; t++)
        for (long k = 0; k < K; k++) {
            long e;
            do
                e = (long)(step(s) % (unsigned long long)E);
            while (routed[t * E + e]);
            routed[t * E + e] = 1;
        }
    long need = 0;
    for (long e = 0; e < E; e++) {
        long n = 0;
        for (long t = 0; t < T; t++)
            n += routed[t * E + e];
        need += (n + B - 1) / B;
    }
    long stat = (T * K - (E - 1) + B - 1) / B + E - 1;
    long N = (need > stat ? need : stat) + m->extra;
    in->N = N;
    in->ids = malloc((size_t)(N * B) * sizeof *in->ids);
    in->bte = malloc((size_t)N * sizeof *in->bte);
    long b = 0;
    for (long e = 0; e < E; e++) {
        long j = 0;
        for (long t = 0; t < T; t++) {
            if (!routed[t * E + e])
                continue;
            if (j == 0)
                in->bte[b] = (int32_t)e;
            in->ids[b * B + j] = (int32_t)t;
            if (++j == B)
                j = 0, b++;
        }
        if (j > 0) {
            for (; j < B; j++)
                in->ids[b * B + j] = (int32_t)pad;
            b++;
        }
    }
    for (; b < N; b++) {
        in->bte[b] = (int32_t)(E - 1);
        for (long j = 0; j < B; j++)
            in->ids[b * B + j] = (int32_t)pad;
    }
}

/* Inputs as the reference document's tests draw them (weights and biases U(+-0.1), hidden
 * U[0, 1), dOut U(+-1), affinities U[0, 1) on the routed pairs), the checkpoints from the
 * double forward, rounded to the dtype. */
static void inputs(const bcase *m, binputs *in, unsigned long long seed)
{
    long T = m->T, H = m->H, I = m->I, E = m->E, B = m->B, rows = rows_of(m);
    unsigned long long s = seed * 2654435761ull + 7;
    in->rows = rows;
    int *routed = calloc((size_t)(T * E), sizeof *routed);
    layout(m, in, &s, routed);
    long N = in->N;
    in->x = dalloc(rows * H), in->aff = dalloc(rows * E), in->dout = dalloc(rows * H);
    in->wgu = dalloc(E * H * 2 * I), in->wd = dalloc(E * I * H);
    in->bgu = dalloc(E * 2 * I), in->bd = dalloc(E * H);
    in->ckgu = dalloc(N * 2 * I * B), in->ckd = dalloc(N * B * H);
    for (long t = 0; t < T; t++)
        for (long h = 0; h < H; h++) {
            in->x[t * H + h] = rnd_t(m->t, uni(&s));
            in->dout[t * H + h] = rnd_t(m->t, 2 * uni(&s) - 1);
        }
    if (m->dpad && !m->skip)
        for (long h = 0; h < H; h++)
            in->dout[T * H + h] = rnd_t(m->t, 2 * uni(&s) - 1);
    for (long t = 0; t < T; t++)
        for (long e = 0; e < E; e++)
            in->aff[t * E + e] = routed[t * E + e] ? rnd_t(m->at, uni(&s)) : 0.0;
    for (long i = 0; i < E * H * 2 * I; i++)
        in->wgu[i] = rnd_w(m->wfmt, 0.2 * uni(&s) - 0.1);
    for (long i = 0; i < E * I * H; i++)
        in->wd[i] = rnd_w(m->wfmt, 0.2 * uni(&s) - 0.1);
    for (long i = 0; i < E * 2 * I; i++)
        in->bgu[i] = m->bias ? 0.2 * uni(&s) - 0.1 : 0.0;
    for (long i = 0; i < E * H; i++)
        in->bd[i] = m->bias ? 0.2 * uni(&s) - 0.1 : 0.0;
    bwmm_ref_opts o = { m->swish, m->glo, m->ghi, m->ulo, m->uhi, m->skip, m->acc };
    double *out = dalloc(rows * H);
    bwmm_fwd_ref(out, in->ckgu, in->ckd, in->x, in->aff, in->wgu, in->wd, in->bgu, in->bd,
                 in->ids, in->bte, &o, rows, N, H, I, E, B);
    for (long i = 0; i < N * 2 * I * B; i++)
        in->ckgu[i] = rnd_t(m->t, in->ckgu[i]);
    for (long i = 0; i < N * B * H; i++)
        in->ckd[i] = rnd_t(m->t, in->ckd[i]);
    free(out), free(routed);
}

static void free_inputs(binputs *in)
{
    free(in->x), free(in->aff), free(in->wgu), free(in->wd), free(in->bgu), free(in->bd);
    free(in->ckgu), free(in->ckd), free(in->dout), free(in->ids), free(in->bte);
}

static float *to_float(const double *x, long n)
{
    float *f = malloc((size_t)(n > 0 ? n : 1) * sizeof *f);
    for (long i = 0; i < n; i++)
        f[i] = (float)x[i];
    return f;
}

static void *enc(kg_dtype t, const double *x, long n)
{
    float *f = to_float(x, n);
    void *p = kgt_encode(t, f, n);
    free(f);
    return p;
}

/* The weights packed as the kernel takes them: each expert's matrix transposed. */
static void pack_weights(const bcase *m, const binputs *in, kg_wt *wgu, kg_wt *wd)
{
    long H = m->H, I = m->I, E = m->E;
    float *g = malloc((size_t)(E * 2 * I * H) * sizeof *g);
    float *d = malloc((size_t)(E * H * I) * sizeof *d);
    for (long e = 0; e < E; e++)
        for (long h = 0; h < H; h++) {
            for (long q = 0; q < 2 * I; q++)
                g[(e * 2 * I + q) * H + h] = (float)in->wgu[((e * H + h) * 2 + q / I) * I + q % I];
            for (long i = 0; i < I; i++)
                d[(e * H + h) * I + i] = (float)in->wd[(e * I + i) * H + h];
        }
    kgt_pack_experts(wgu, m->wfmt, E, 2 * I, H, g);
    kgt_pack_experts(wd, m->wfmt, E, H, I, d);
    free(g), free(d);
}

/* The six outputs, as the kernel writes them. */
typedef struct bout {
    void *p[6];
} bout;

static kg_dtype out_dtype(const bcase *m, int i)
{
    kg_dtype w = m->wfmt == KG_WT_F32 ? KG_F32 : KG_BF16;
    const kg_dtype d[6] = { m->t, m->at, w, w, KG_F32, KG_F32 };
    return d[i];
}

static long out_count(const bcase *m, long rows, int i)
{
    const long n[6] = { rows * m->H, rows * m->E, m->E * m->H * 2 * m->I, m->E * m->I * m->H,
                        m->E * 2 * m->I, m->E * m->H };
    return n[i];
}

static const char *const OUT_NAMES[6] = { "hidden_states_grad", "expert_affinities_masked_grad",
                                          "gate_up_proj_weight_grad", "down_proj_weight_grad",
                                          "gate_and_up_proj_bias_grad", "down_proj_bias_grad" };

/* Runs kernel k on in; outputs start as `build`'s bytes (-1: NaN bytes). Returns the status. */
static int run(const kg_kernel *k, const bcase *m, const binputs *in, const kg_wt *wgu,
               const kg_wt *wd, bout *o, int build)
{
    long rows = in->rows, N = in->N, H = m->H, I = m->I, E = m->E, B = m->B;
    for (int i = 0; i < 6; i++) {
        long n = out_count(m, rows, i);
        o->p[i] = build < 0 ? kgt_poisoned(out_dtype(m, i), n)
                            : kgt_build_output(out_dtype(m, i), n, build);
    }
    void *x = enc(m->t, in->x, rows * H), *a = enc(m->at, in->aff, rows * E);
    void *cg = enc(m->t, in->ckgu, N * 2 * I * B), *cd = enc(m->t, in->ckd, N * B * H);
    void *dy = enc(m->t, in->dout, rows * H);
    int rc = ((kg_blockwise_mm_backward_fn *)k->fn)(o->p[0], o->p[1], o->p[2], o->p[3],
                                                    m->bias ? o->p[4] : NULL,
                                                    m->bias ? o->p[5] : NULL, x, a, wgu, wd,
                                                    cg, cd, in->ids, in->bte, dy, rows, N);
    free(x), free(a), free(cg), free(cd), free(dy);
    return rc;
}

static void free_out(bout *o)
{
    for (int i = 0; i < 6; i++)
        free(o->p[i]);
}

/* The reference's six gradients, in double. */
static void reference(const bcase *m, const binputs *in, double *g[6])
{
    long rows = in->rows;
    for (int i = 0; i < 6; i++)
        g[i] = dalloc(out_count(m, rows, i));
    bwmm_ref_opts o = { m->swish, m->glo, m->ghi, m->ulo, m->uhi, m->skip, m->acc };
    blockwise_mm_backward_ref(g[0], g[1], g[2], g[3], g[4], g[5], in->x, in->aff, in->wgu,
                              in->wd, in->ckgu, in->ckd, in->ids, in->bte, in->dout, &o, rows,
                              in->N, m->H, m->I, m->E, m->B);
}

/* Kernel outputs against want (double) at rtol, atol (the doc's: 2e-2, 1e-5). */
static void compare(const bcase *m, const bout *o, double *const want[6], long rows,
                    double rtol, double atol, const char *what)
{
    char problem[1024], msg[1024];
    problem_of(m, problem, sizeof problem);
    for (int i = 0; i < (m->bias ? 6 : 4); i++) {
        long n = out_count(m, rows, i);
        float *w = to_float(want[i], n);
        int ok = kgt_close_to_ref(out_dtype(m, i), o->p[i], w, 1, &n, rtol, atol, msg,
                                  sizeof msg);
        cr_assert(ok, "%s %s, %s: %s", what, problem, OUT_NAMES[i], msg);
        free(w);
    }
}

static void check(const bcase *m, unsigned long long seed)
{
    char problem[1024];
    problem_of(m, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    binputs in;
    inputs(m, &in, seed);
    kg_wt wgu, wd;
    pack_weights(m, &in, &wgu, &wd);
    bout o;
    int rc = run(k, m, &in, &wgu, &wd, &o, -1);
    cr_assert_eq(rc, KG_OK, "%s returned %d", k->name, rc);
    double *want[6];
    reference(m, &in, want);
    compare(m, &o, want, in.rows, 2e-2, 1e-5, "reference");
    for (int i = 0; i < 6; i++)
        free(want[i]);
    free_out(&o), kg_wt_free(&wgu), kg_wt_free(&wd), free_inputs(&in);
}

static bcase base(void)
{
    bcase m = { KG_BF16, KG_BF16, KG_WT_BF16, 20, 40, 24, 4, 8, 2, 0, 0, 0, 1,
                -INFINITY, INFINITY, -INFINITY, INFINITY, 0, 0 };
    return m;
}

/* ---- against the reference -------------------------------------------------------------------- */

Test(blockwise_mm_backward, silu_and_swish_every_dtype)
{
    const kg_dtype ts[3] = { KG_BF16, KG_F16, KG_F32 };
    for (int ti = 0; ti < 3; ti++)
        for (int sw = 0; sw < 2; sw++) {
            bcase m = base();
            m.t = m.at = ts[ti];
            m.wfmt = ts[ti] == KG_F32 ? KG_WT_F32 : KG_WT_BF16;
            m.swish = sw;
            check(&m, 10 + (unsigned long long)(ti * 2 + sw));
        }
    bcase m = base();
    m.t = KG_F32, m.at = KG_BF16, m.wfmt = KG_WT_BF16; /* mixed: bf16 weights, f32 rows */
    check(&m, 20);
}

Test(blockwise_mm_backward, four_clamps_bias_and_skip_token)
{
    bcase m = base();
    m.swish = 1, m.bias = 1;
    m.glo = -0.02f, m.ghi = 0.03f, m.ulo = -0.025f, m.uhi = 0.02f; /* a good share clamped */
    check(&m, 30);
    m.skip = 1;
    check(&m, 31);
    m.glo = -INFINITY, m.uhi = INFINITY; /* only two of the four */
    m.t = m.at = KG_F32, m.wfmt = KG_WT_F32;
    check(&m, 32);
}

Test(blockwise_mm_backward, overwriting_hidden_gradients_top1)
{
    bcase m = base();
    m.acc = 0, m.K = 1, m.bias = 1;
    check(&m, 40);
    m.skip = 1;
    check(&m, 41);
}

Test(blockwise_mm_backward, edge_shapes)
{
    bcase m = base();
    m.extra = 2; /* blocks of padding only */
    check(&m, 50);
    m.skip = 1;
    check(&m, 51);
    m = base(), m.T = 1, m.K = 1, m.acc = 0; /* one token */
    check(&m, 52);
    m = base(), m.T = 1; /* one token in two experts' blocks */
    check(&m, 53);
    m = base(), m.E = 1, m.K = 1, m.B = 3, m.H = 17, m.I = 9; /* one expert, odd sizes */
    check(&m, 54);
    m = base(), m.E = 5, m.K = 1, m.T = 3; /* experts with no token: zero gradients */
    check(&m, 55);
    m = base(), m.H = 130, m.I = 70, m.B = 16, m.T = 40; /* past a 64-column panel */
    check(&m, 56);
    m = base(), m.B = 1, m.T = 5; /* blocks of one slot */
    check(&m, 57);
    /* bf16 weight gradients in fp32 tiles: more than one tile of 132 rows and of 512 columns */
    m = base(), m.H = 150, m.I = 300, m.E = 2, m.T = 10;
    check(&m, 58);
}

Test(blockwise_mm_backward, padding_row_with_a_gradient_counts)
{
    /* output_hidden_states_grad[T] nonzero: padding slots are tokens as upstream reads them */
    bcase m = base();
    m.dpad = 1, m.extra = 1, m.bias = 1, m.t = m.at = KG_F32, m.wfmt = KG_WT_F32;
    check(&m, 60);
}

/* ---- finite differences ----------------------------------------------------------------------- */

/* L = sum dout * out of the forward in double. */
static double loss(const bcase *m, const binputs *in, double *out, double *ckgu, double *ckd)
{
    bwmm_ref_opts o = { m->swish, m->glo, m->ghi, m->ulo, m->uhi, m->skip, m->acc };
    bwmm_fwd_ref(out, ckgu, ckd, in->x, in->aff, in->wgu, in->wd, in->bgu, in->bd, in->ids,
                 in->bte, &o, in->rows, in->N, m->H, m->I, m->E, m->B);
    double l = 0;
    for (long i = 0; i < in->rows * m->H; i++)
        l += in->dout[i] * out[i];
    return l;
}

/* d L / d p[i] for every i < n by central differences (step 1e-4 in double). */
static double *fd(const bcase *m, binputs *in, double *p, long n)
{
    double *g = dalloc(n);
    double *out = dalloc(in->rows * m->H), *cg = dalloc(in->N * 2 * m->I * m->B);
    double *cd = dalloc(in->N * m->B * m->H);
    for (long i = 0; i < n; i++) {
        double v = p[i], h = 1e-4;
        p[i] = v + h;
        double lp = loss(m, in, out, cg, cd);
        p[i] = v - h;
        double lm = loss(m, in, out, cg, cd);
        p[i] = v;
        g[i] = (lp - lm) / (2 * h);
    }
    free(out), free(cg), free(cd);
    return g;
}

static void fd_check(bcase m, unsigned long long seed)
{
    m.t = m.at = KG_F32, m.wfmt = KG_WT_F32; /* fp32 throughout: the kernel's own error is tiny */
    char problem[1024];
    problem_of(&m, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    binputs in;
    inputs(&m, &in, seed);
    kg_wt wgu, wd;
    pack_weights(&m, &in, &wgu, &wd);
    bout o;
    cr_assert_eq(run(k, &m, &in, &wgu, &wd, &o, -1), KG_OK);
    double *want[6] = {
        fd(&m, &in, in.x, in.rows * m.H), fd(&m, &in, in.aff, in.rows * m.E),
        fd(&m, &in, in.wgu, m.E * m.H * 2 * m.I), fd(&m, &in, in.wd, m.E * m.I * m.H),
        fd(&m, &in, in.bgu, m.E * 2 * m.I), fd(&m, &in, in.bd, m.E * m.H),
    };
    compare(&m, &o, want, in.rows, 1e-4, 1e-6, "finite differences");
    for (int i = 0; i < 6; i++)
        free(want[i]);
    free_out(&o), kg_wt_free(&wgu), kg_wt_free(&wd), free_inputs(&in);
}

Test(blockwise_mm_backward, gradients_match_finite_differences)
{
    bcase m = base();
    m.T = 6, m.H = 7, m.I = 5, m.E = 3, m.B = 3, m.K = 2, m.bias = 1;
    fd_check(m, 70);               /* SiLU, T padding, accumulating */
    m.swish = 1, m.skip = 1;
    m.glo = -0.01f, m.ghi = 0.02f, m.ulo = -0.02f, m.uhi = 0.015f;
    fd_check(m, 71);               /* Swish, -1 padding, the four clamps */
    m.K = 1, m.acc = 0, m.skip = 0, m.extra = 1;
    fd_check(m, 72);               /* top-1 overwriting, a padding block */
}

/* ---- refusals ----------------------------------------------------------------------------------- */

Test(blockwise_mm_backward, refused_problems_name_the_key)
{
    kgt_problem_rejected("blockwise_mm_backward:H=8,I=8,E=2,block_size=4,activation_type=GELU",
                         "activation_type");
    kgt_problem_rejected("blockwise_mm_backward:H=8,I=8,E=2,block_size=4,"
                         "activation_type=GELU_Tanh_Approx", "activation_type");
    kgt_problem_rejected("blockwise_mm_backward:H=8,I=8,E=2,block_size=4,"
                         "gate_clamp_lower_limit=1,gate_clamp_upper_limit=1",
                         "gate_clamp_lower_limit");
    kgt_problem_rejected("blockwise_mm_backward:H=8,I=8,E=2,block_size=4,weight_dtype=e4m3",
                         "weight_dtype");
    char name[512];
    kgt_name_parses_back("blockwise_mm_backward:H=8,I=8,E=2,block_size=4,activation_type=Swish,"
                         "up_clamp_upper_limit=7,bias=true,skip_token=true", name, sizeof name);
}

Test(blockwise_mm_backward, refused_calls)
{
    bcase m = base();
    m.T = 4, m.H = 8, m.I = 8, m.B = 4, m.E = 2;
    char problem[1024];
    problem_of(&m, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    binputs in;
    inputs(&m, &in, 80);
    kg_wt wgu, wd;
    pack_weights(&m, &in, &wgu, &wd);
    bout o;
    cr_assert_eq(run(k, &m, &in, &wgu, &wd, &o, -1), KG_OK);
    free_out(&o);
    int32_t keep = in.ids[0];
    in.ids[0] = (int32_t)m.T + 1; /* past the padding row */
    cr_assert_eq(run(k, &m, &in, &wgu, &wd, &o, -1), KG_EARG, "token id past T");
    free_out(&o);
    in.ids[0] = -1; /* -1 without skip_token */
    cr_assert_eq(run(k, &m, &in, &wgu, &wd, &o, -1), KG_EARG, "-1 without skip_token");
    free_out(&o);
    in.ids[0] = keep;
    in.bte[0] = (int32_t)m.E;
    cr_assert_eq(run(k, &m, &in, &wgu, &wd, &o, -1), KG_EARG, "expert past E");
    free_out(&o);
    in.bte[0] = 0;
    cr_assert_eq(run(k, &m, &in, &wd, &wd, &o, -1), KG_EARG, "the down weight as gate | up");
    free_out(&o);
    kg_wt_free(&wgu), kg_wt_free(&wd), free_inputs(&in);
}

/* ---- the shared vectors ------------------------------------------------------------------------ */

/* clamp_limits: "none", or the reference's "linear_<upper>_<lower>_non_linear_<upper>_<lower>"
 * (each a number or None); up = linear, gate = non_linear. 1 if it parsed. */
static int parse_clamps(const char *s, double lim[4])
{
    lim[0] = lim[2] = -INFINITY, lim[1] = lim[3] = INFINITY;
    if (strcmp(s, "none") == 0)
        return 1;
    char lu[32], ll[32], gu[32], gl[32];
    if (sscanf(s, "linear_%31[^_]_%31[^_]_non_linear_%31[^_]_%31s", lu, ll, gu, gl) != 4)
        return 0;
    const char *v[4] = { gl, gu, ll, lu }; /* gate lower, gate upper, up lower, up upper */
    for (int i = 0; i < 4; i++)
        if (strcmp(v[i], "None") != 0)
            lim[i] = atof(v[i]);
    return 1;
}

static double *case_d(kgt_case *c, const char *name, long n)
{
    const kg_npy *a = kgt_case_input(c, name);
    cr_assert(a && kg_npy_count(a) == n, "%s: %s: %s", kgt_case_name(c), name,
              kgt_case_error(c));
    float *f = kgt_case_as(c, name, KG_F32);
    cr_assert(f, "%s: %s", kgt_case_name(c), kgt_case_error(c));
    double *d = dalloc(n);
    for (long i = 0; i < n; i++)
        d[i] = f[i];
    free(f);
    return d;
}

static void run_vector(kgt_case *c)
{
    const char *name = kgt_case_name(c), *s;
    bcase m = base();
    double v;
    int acc = 1, bias = 0;
    /* ---- options */
    cr_assert(kgt_case_opt_str(c, "activation_type", &s), "%s: activation_type", name);
    cr_assert(strstr(s, "SiLU") || strstr(s, "Swish"), "%s: activation_type %s is not mapped "
              "(refused: only SiLU and Swish have a backward)", name, s);
    m.swish = strstr(s, "Swish") != NULL;
    kgt_case_opt_bool(c, "bias", &bias);
    kgt_case_opt_bool(c, "is_tensor_update_accumulating", &acc);
    m.bias = bias, m.acc = acc;
    double lim[4];
    s = "none";
    kgt_case_opt_str(c, "clamp_limits", &s);
    cr_assert(parse_clamps(s, lim), "%s: clamp_limits %s is not mapped", name, s);
    m.glo = (float)lim[0], m.ghi = (float)lim[1], m.ulo = (float)lim[2], m.uhi = (float)lim[3];
    s = "none";
    kgt_case_opt_str(c, "skip_dma", &s);
    cr_assert(strcmp(s, "none") == 0 || strstr(s, "skip_token") || strstr(s, "skip_weight"),
              "%s: skip_dma %s is not mapped", name, s);
    /* skip_weight is hardware scheduling (reuse of loaded weights): no CPU meaning */
    m.skip = strstr(s, "skip_token=True") || strcmp(s, "skip_token") == 0 ||
             (strstr(s, "skip_token") && !strstr(s, "skip_token=False"));
    /* ---- sizes */
    const kg_npy *hx = kgt_case_input(c, "hidden_states");
    const kg_npy *gu = kgt_case_input(c, "gate_up_proj_weight");
    const kg_npy *ck = kgt_case_input(c, "gate_up_proj_act_checkpoint_T");
    cr_assert(hx && gu && ck && hx->rank == 2 && gu->rank == 4 && ck->rank == 4,
              "%s: hidden_states [rows, H], gate_up_proj_weight [E, H, 2, I], "
              "gate_up_proj_act_checkpoint_T [N, 2, I, B]: %s", name, kgt_case_error(c));
    long rows = hx->shape[0];
    m.H = hx->shape[1], m.E = gu->shape[0], m.I = gu->shape[3], m.B = ck->shape[3];
    m.T = m.skip ? rows : rows - 1;
    long N = ck->shape[0];
    static const char *const sz[] = { "H", "I", "E", "T", "block_size" };
    const long have[] = { m.H, m.I, m.E, m.T, m.B };
    for (int i = 0; i < 5; i++)
        if (kgt_case_opt_num(c, sz[i], &v))
            cr_assert(v == (double)have[i], "%s: %s = %g, the tensors give %ld", name, sz[i], v,
                      have[i]);
    if (kgt_case_opt_num(c, "top_k", &v)) {
        m.K = (long)v;
        cr_assert(acc || m.K == 1, "%s: overwriting hidden gradients with top_k %ld", name,
                  m.K);
    }
    /* ---- dtypes: the golden is fp32 on these values, so is the kernel unless they are bf16 */
    static const char *const hn[] = { "hidden_states", "output_hidden_states_grad",
                                      "gate_up_proj_act_checkpoint_T",
                                      "down_proj_act_checkpoint" };
    static const char *const wn[] = { "gate_up_proj_weight", "down_proj_weight" };
    static const char *const an[] = { "expert_affinities_masked" };
    int t = kgt_case_float_dtype(c, hn, 4), w = kgt_case_float_dtype(c, wn, 2);
    int at = kgt_case_float_dtype(c, an, 1);
    cr_assert(t >= 0 && w >= 0 && at >= 0, "%s: %s", name, kgt_case_error(c));
    m.t = (kg_dtype)t, m.at = (kg_dtype)at;
    m.wfmt = w == KG_BF16 ? KG_WT_BF16 : KG_WT_F32;
    cr_assert(w == KG_BF16 || w == KG_F32, "%s: weights of dtype %d", name, w);
    /* ---- tensors */
    binputs in;
    memset(&in, 0, sizeof in);
    in.rows = rows, in.N = N;
    long H = m.H, I = m.I, E = m.E, B = m.B;
    in.x = case_d(c, "hidden_states", rows * H);
    in.aff = case_d(c, "expert_affinities_masked", rows * E);
    in.wgu = case_d(c, "gate_up_proj_weight", E * H * 2 * I);
    in.wd = case_d(c, "down_proj_weight", E * I * H);
    in.ckgu = case_d(c, "gate_up_proj_act_checkpoint_T", N * 2 * I * B);
    in.ckd = case_d(c, "down_proj_act_checkpoint", N * B * H);
    in.dout = case_d(c, "output_hidden_states_grad", rows * H);
    in.ids = kgt_case_as(c, "token_position_to_id", KG_I32);
    in.bte = kgt_case_as(c, "block_to_expert", KG_I32);
    cr_assert(in.ids && in.bte, "%s: %s", name, kgt_case_error(c));
    /* the forward's biases only made the checkpoints: the forward in double with them must
     * give the case's checkpoints (the convention the kernel relies on, moe_cte.md step 7) */
    in.bgu = kgt_case_input_dtype(c, "gate_up_proj_bias") ? case_d(c, "gate_up_proj_bias", E * 2 * I)
                                                          : dalloc(E * 2 * I);
    in.bd = kgt_case_input_dtype(c, "down_proj_bias") ? case_d(c, "down_proj_bias", E * H)
                                                      : dalloc(E * H);
    bwmm_ref_opts o = { m.swish, m.glo, m.ghi, m.ulo, m.uhi, m.skip, m.acc };
    double *out = dalloc(rows * H), *cg = dalloc(N * 2 * I * B), *cd = dalloc(N * B * H);
    bwmm_fwd_ref(out, cg, cd, in.x, in.aff, in.wgu, in.wd, in.bgu, in.bd, in.ids, in.bte, &o,
                 rows, N, H, I, E, B);
    float *f = to_float(cg, N * 2 * I * B), *g = to_float(in.ckgu, N * 2 * I * B);
    char msg[1024];
    cr_assert(kgt_allclose(f, g, N * 2 * I * B, 1e-4, 1e-6, msg, sizeof msg),
              "%s: gate | up checkpoint against the forward: %s", name, msg);
    free(f), free(g);
    f = to_float(cd, N * B * H), g = to_float(in.ckd, N * B * H);
    cr_assert(kgt_allclose(f, g, N * B * H, 1e-4, 1e-6, msg, sizeof msg),
              "%s: down checkpoint against the forward: %s", name, msg);
    free(f), free(g), free(out), free(cg), free(cd);
    /* ---- the kernel */
    char problem[1024];
    problem_of(&m, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    kg_wt pgu, pd;
    pack_weights(&m, &in, &pgu, &pd);
    bout r;
    int rc = run(k, &m, &in, &pgu, &pd, &r, -1);
    cr_assert_eq(rc, KG_OK, "%s: %s returned %d", name, k->name, rc);
    static const char *const outs[6] = {
        "out_hidden_states_grad", "out_expert_affinities_masked_grad",
        "out_gate_up_proj_weight_grad", "out_down_proj_weight_grad",
        "out_gate_and_up_proj_bias_grad", "out_down_proj_bias_grad" };
    for (int i = 0; i < (m.bias ? 6 : 4); i++) {
        int ok = kgt_close_to_case(c, outs[i], out_dtype(&m, i), r.p[i], msg, sizeof msg);
        cr_assert(ok > 0, "vector %s (%s) %s: %s", name, k->name, outs[i],
                  ok < 0 ? "no tolerance" : msg);
    }
    free_out(&r), kg_wt_free(&pgu), kg_wt_free(&pd);
    free(in.x), free(in.aff), free(in.wgu), free(in.wd), free(in.ckgu), free(in.ckd);
    free(in.dout), free(in.ids), free(in.bte), free(in.bgu), free(in.bd);
}

Test(blockwise_mm_backward, shared_vectors, .timeout = 120 * KGT_TIME_SCALE)
{
    kgt_each_case("blockwise_mm_backward", run_vector);
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

static double key_num(const char *problem, const char *key)
{
    char v[64];
    cr_assert(kg_problem_str(problem, key, v, sizeof v), "%s: no %s", problem, key);
    double d = atof(v);
    return fabs(d) >= 3.4e38 ? (d < 0 ? -INFINITY : INFINITY) : d;
}

static kg_dtype key_dtype(const char *problem, const char *key)
{
    char v[16];
    cr_assert(kg_problem_str(problem, key, v, sizeof v), "%s: no %s", problem, key);
    return (kg_dtype)kg_dtype_from_name(v);
}

/* AOT (a) and JIT (j) builds on the same inputs: the same bytes in every output. */
static void compare_builds(const kg_kernel *a, const kg_kernel *j)
{
    const char *p = a->problem;
    char wdt[16], act[32];
    cr_assert(kg_problem_str(p, "weight_dtype", wdt, sizeof wdt));
    cr_assert(kg_problem_str(p, "activation_type", act, sizeof act));
    bcase m = base();
    m.t = key_dtype(p, "dtype"), m.at = key_dtype(p, "affinity_dtype");
    m.wfmt = kg_wt_fmt_from_name(wdt);
    m.H = key_long(p, "H"), m.I = key_long(p, "I"), m.E = key_long(p, "E");
    m.B = key_long(p, "block_size");
    m.swish = strcmp(act, "Swish") == 0, m.bias = key_bool(p, "bias");
    m.skip = key_bool(p, "skip_token"), m.acc = key_bool(p, "is_tensor_update_accumulating");
    m.glo = (float)key_num(p, "gate_clamp_lower_limit");
    m.ghi = (float)key_num(p, "gate_clamp_upper_limit");
    m.ulo = (float)key_num(p, "up_clamp_lower_limit");
    m.uhi = (float)key_num(p, "up_clamp_upper_limit");
    m.T = 5, m.K = m.acc && m.E > 1 ? 2 : 1, m.extra = 1;
    binputs in;
    inputs(&m, &in, 90);
    kg_wt wgu, wd;
    pack_weights(&m, &in, &wgu, &wd);
    bout o[2];
    for (int b = 0; b < 2; b++) {
        int rc = run(b == KGT_AOT ? a : j, &m, &in, &wgu, &wd, &o[b], b);
        cr_assert_eq(rc, KG_OK, "%s (%s): %d", a->name, b == KGT_AOT ? "AOT" : "JIT", rc);
    }
    char msg[1024];
    for (int i = 0; i < (m.bias ? 6 : 4); i++) {
        long n = out_count(&m, in.rows, i);
        cr_assert(kgt_same_bytes(o[KGT_JIT].p[i], o[KGT_AOT].p[i], out_dtype(&m, i), n, 1, &n,
                                 msg, sizeof msg), "%s %s: %s", a->name, OUT_NAMES[i], msg);
    }
    free_out(&o[0]), free_out(&o[1]), kg_wt_free(&wgu), kg_wt_free(&wd), free_inputs(&in);
}

Test(blockwise_mm_backward, jit_and_aot_are_bit_identical)
{
    cr_assert_gt(kgt_each_aot_jit_pair("blockwise_mm_backward", compare_builds), 0,
                 "no AOT-built spec has a blockwise_mm_backward kernel");
}
