/* tests/test_transformer_tkg.c: the transformer_tkg megakernel against
 * tests/ref/transformer_tkg_ref.c on sweeps (layers, batch, new tokens, odd windows, fp8 ROW
 * layers among plain ones, clamp_bound, no cache update), against the chain of its single-op
 * kernels (attention_block_tkg + mlp, the residual adds between) bit for bit, refused calls and
 * problems naming their key, and JIT vs AOT (gcc) bit-identity. Tensor parallelism is
 * test_transformer_tkg_tp.c's, the shared vectors test_transformer_tkg_vectors.c's; the call
 * they share is util/tkg_call.c. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "kgen/dtype.h"
#include "kgen/gcc.h"
#include "kgen/kernels.h"
#include "kgen/kgen.h"
#include "ref/ref.h"
#include "util/compare.h"
#include "util/jitp.h"
#include "util/tensors.h"
#include "util/tkg_call.h"
#include "util/weights.h"

/* The plain weights' dtype of the next calls made (weight_dtype); unset: the dtype's. */
static int plain_weights_set;
static kg_dtype plain_weights;

static void make_call(tkg_call *c, const tkg_ref_opts *o, kg_dtype t, unsigned long long seed)
{
    tkg_call_random(c, o, t, plain_weights_set ? plain_weights : t, seed);
}

static const char *tf(int b) { return b ? "true" : "false"; }

/* The reference on c: out [T, H]; kw[l], vw[l] the updated caches (malloc'd). */
static float *run_ref(const tkg_call *c, float **kw, float **vw)
{
    const tkg_ref_opts *o = &c->o;
    for (int e = 0; e < tkg_n_el(c); e++)
        kw[e] = tkg_dup(c->K[e], tkg_n_cache(c)), vw[e] = tkg_dup(c->V[e], tkg_n_cache(c));
    tkg_ref_in in = { .X = c->X, .cos = c->cos, .sin = c->sin, .mask = c->mask, .pos = c->pos,
                      .W_qkv = (const float *const *)c->Wqkv,
                      .W_out = (const float *const *)c->Wout,
                      .W_gate = (const float *const *)c->Wg, .W_up = (const float *const *)c->Wu,
                      .W_down = (const float *const *)c->Wd, .g_qkv = (const float *const *)c->gq,
                      .g_mlp = (const float *const *)c->gm, .s_gate = (const float *const *)c->sg,
                      .s_up = (const float *const *)c->su, .s_down = (const float *const *)c->sd };
    float *want = malloc(sizeof(float) * (size_t)(tkg_n_tok(c) * o->H));
    transformer_tkg_ref(want, kw, vw, &in, o);
    return want;
}

static void check(const tkg_ref_opts *o, kg_dtype t)
{
    tkg_call c;
    make_call(&c, o, t, 7 + (unsigned long long)(o->S_ctx * 31 + o->B * 7 + o->S + o->L * 3));
    char problem[1024];
    tkg_problem_of(&c, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    long nx = tkg_n_tok(&c) * o->H, nc = tkg_n_cache(&c);
    void *out = kgt_poisoned(t, nx), *kc[TKG_EMAX], *vc[TKG_EMAX];
    for (int e = 0; e < tkg_n_el(&c); e++)
        kc[e] = kgt_encode(t, c.K[e], nc), vc[e] = kgt_encode(t, c.V[e], nc);
    cr_assert_eq(tkg_run_kernel(k, &c, out, kc, vc), KG_OK, "%s refused the call", k->name);
    float *kw[TKG_EMAX], *vw[TKG_EMAX], *want = run_ref(&c, kw, vw);
    char msg[1024];
    long xs[2] = { tkg_n_tok(&c), o->H }, cshape[1] = { nc };
    cr_assert(kgt_close_to_ref(t, out, want, 2, xs, TKG_RTOL, TKG_ATOL, msg, sizeof msg),
              "%s: out %s", k->name, msg);
    for (int e = 0; e < tkg_n_el(&c); e++) {
        cr_assert(kgt_close_to_ref(t, kc[e], kw[e], 1, cshape, TKG_RTOL, TKG_ATOL, msg, sizeof msg),
                  "%s: K_caches[%d] %s", k->name, e, msg);
        cr_assert(kgt_close_to_ref(t, vc[e], vw[e], 1, cshape, TKG_RTOL, TKG_ATOL, msg, sizeof msg),
                  "%s: V_caches[%d] %s", k->name, e, msg);
        free(kc[e]), free(vc[e]), free(kw[e]), free(vw[e]);
    }
    free(out), free(want);
    tkg_call_free(&c);
}

TestSuite(transformer_tkg, .init = kgt_suite_init, .fini = kgt_suite_fini);

Test(transformer_tkg, every_dtype)
{
    static const kg_dtype T[] = { KG_BF16, KG_F16, KG_F32 };
    for (size_t i = 0; i < 3; i++) {
        tkg_ref_opts o = tkg_small_opts();
        check(&o, T[i]);
    }
}

/* weight_dtype: f32 activations with bf16 (or fp16) weights, as the model runner decodes;
 * the GEMM rounds its activation operand to the weights' format. */
Test(transformer_tkg, weight_dtype)
{
    static const kg_dtype W[] = { KG_BF16, KG_F16 };
    for (size_t i = 0; i < 2; i++) {
        plain_weights_set = 1, plain_weights = W[i];
        tkg_ref_opts o = tkg_small_opts();
        check(&o, KG_F32);
        o.fp8 = 2; /* layer 1's MLP fp8, its attention bf16 */
        check(&o, KG_F32);
        o.fp8 = 0, o.nkv = 2;
        check(&o, KG_F32);
    }
    plain_weights_set = 0;
}

Test(transformer_tkg, sweeps, .timeout = 300 * KGT_TIME_SCALE)
{
    for (int L = 1; L <= 3; L++)
        for (long B = 1; B <= 4; B++)
            for (long S = 1; S <= 3; S++) {
                tkg_ref_opts o = tkg_small_opts();
                o.L = L, o.B = B, o.S = S, o.S_ctx = 9 + 4 * B + S; /* odd and even windows */
                o.fp8 = (unsigned)((B * 3 + S) % (1 << L)); /* plain and ROW layers mixed */
                o.update = (B + S + L) % 4 != 0;
                check(&o, KG_BF16);
            }
}

Test(transformer_tkg, fp8_layers_and_clamp)
{
    tkg_ref_opts o = tkg_small_opts();
    o.L = 3, o.fp8 = 5; /* layers 0 and 2 ROW fp8, layer 1 plain */
    check(&o, KG_BF16);
    o.clamp = 0.75f, o.B = 3, o.S = 2, o.S_ctx = 17;
    check(&o, KG_BF16);
    o.update = 0, o.fp8 = 7, o.clamp = 1.5f;
    check(&o, KG_F32);
}

Test(transformer_tkg, shapes)
{
    tkg_ref_opts o = tkg_small_opts();
    o.H = 256, o.I = 200, o.N = 3, o.D = 34, o.S_ctx = 40, o.S_max = 40, o.S = 3;
    check(&o, KG_BF16);
    o.S_ctx = 3, o.B = 1, o.L = 1; /* a window of only the new tokens */
    check(&o, KG_BF16);
    o = tkg_small_opts();
    o.S_ctx = 1100, o.S_max = 1200, o.B = 1; /* three chunks of the attention core */
    check(&o, KG_BF16);
}

/* ---- the chain of single-op kernels ------------------------------------------------------ */
/* Per layer: per KV head g, attention_block_tkg without its output projection (X = h, W_qkv
 * the columns of g's Q heads, K and V, its caches, its heads' mask rows) -> its attention rows
 * [B, N, D, S] in dtype; output_projection (CTE, attention [B, S, nkv N, D]) of them all -> a;
 * mlp TKG (hidden = a, add = h, add_out = h1, fused RMSNorm) -> y; h = dtype(h1 + y). The
 * megakernel runs the same code on the same values: bit for bit. */
static void run_chain(const tkg_call *c, void *out, void **kc, void **vc)
{
    const tkg_ref_opts *o = &c->o;
    kg_dtype t = c->t;
    int G = tkg_n_kv(c);
    long T = tkg_n_tok(c), H = o->H, N = o->N, D = o->D, S = o->S, B = o->B;
    long hc = D / 2 * T, nk = T * D, NA = tkg_n_att(c), q = (N + 2) * D, Q = tkg_n_qkv(c);
    char pa[1024], po[1024], pm[1024], pm8[1100];
    const char *dt = kg_dtype_name(t), *wt = kg_dtype_name(c->wt);
    snprintf(pa, sizeof pa, "attention_block_tkg:dtype=%s,weight_dtype=%s,H=%ld,q_heads=%ld,"
             "d_head=%ld,S_tkg=%ld,S_max=%ld,rmsnorm_X_enabled=true,rmsnorm_X_eps=%.9g,"
             "K_cache_transposed=true,update_cache=%s,W_out=false", dt, wt, H, N, D, S, o->S_max,
             (double)o->eps, tf(o->update));
    snprintf(po, sizeof po, "output_projection:variant=CTE,dtype=%s,weight_dtype=%s,N=%ld,D=%ld,"
             "H=%ld,attn_layout=BSND", dt, wt, G * N, D, H);
    snprintf(pm, sizeof pm, "mlp:variant=TKG,dtype=%s,weight_dtype=%s,H=%ld,I=%ld,"
             "normalization_type=RMS_NORM,eps=%.9g,fused_residual_add=true,"
             "store_fused_add_result=true", dt, wt, H, o->I, (double)o->eps);
    snprintf(pm8, sizeof pm8, "mlp:variant=TKG,dtype=%s,H=%ld,I=%ld,normalization_type=RMS_NORM,"
             "eps=%.9g,fused_residual_add=true,store_fused_add_result=true,"
             "quantization_type=ROW,weight_dtype=e4m3", dt, H, o->I, (double)o->eps);
    const kg_kernel *ka = kgt_jit(pa), *ko = kgt_jit(po), *km = kgt_jit(pm);
    const kg_kernel *km8 = o->fp8 ? kgt_jit(pm8) : NULL;
    tkg_packed p;
    tkg_pack(&p, c);
    /* KV head g's columns of each layer's W_qkv: its N Q heads, its K, its V */
    cr_assert(G <= TKG_GMAX, "at most %d KV heads in a chain test", TKG_GMAX);
    kg_wt hq[TKG_LMAX][TKG_GMAX];
    float *wcol = malloc(sizeof(float) * (size_t)(H * q));
    for (int l = 0; l < o->L; l++)
        for (int g = 0; g < G; g++) {
            for (long k = 0; k < H; k++) {
                const float *src = c->Wqkv[l] + k * Q;
                float *dst = wcol + k * q;
                memcpy(dst, src + g * N * D, sizeof(float) * (size_t)(N * D));
                memcpy(dst + N * D, src + NA + g * D, sizeof(float) * (size_t)D);
                memcpy(dst + (N + 1) * D, src + NA + (G + g) * D, sizeof(float) * (size_t)D);
            }
            kgt_wt_from_values(&hq[l][g], tkg_wt_fmt(c->wt), KG_WL_KN, H, q, wcol);
        }
    free(wcol);
    size_t w = kgt_dtype_size(t);
    void *h = kgt_encode(t, c->X, T * H), *a = kgt_poisoned(t, T * H), *y = kgt_poisoned(t, T * H);
    void *h1 = kgt_poisoned(t, T * H), *xo = kgt_poisoned(t, T * N * D);
    char *att = kgt_poisoned(t, T * NA);
    void *cs = kgt_encode(t, c->cos, hc), *sn = kgt_encode(t, c->sin, hc);
    void *kt = kgt_poisoned(t, nk), *vt = kgt_poisoned(t, nk);
    /* KV head g's mask: query heads g * N .. of [S_ctx, B, nkv * N, S] */
    long NS = N * S, nm = o->S_ctx * B * NS;
    uint8_t *mk = malloc((size_t)(G * nm));
    for (int g = 0; g < G; g++)
        for (long jb = 0; jb < o->S_ctx * B; jb++)
            memcpy(mk + g * nm + jb * NS, c->mask + (jb * G + g) * NS, (size_t)NS);
    for (int l = 0; l < o->L; l++) {
        for (int g = 0; g < G; g++) {
            int e = l * G + g;
            cr_assert_eq(((kg_attention_block_tkg_fn *)ka->fn)(
                             xo, kt, vt, kc[e], vc[e], h, p.gq[l], &hq[l][g], NULL, NULL, NULL,
                             NULL, cs, sn, NULL, mk + g * nm, NULL, NULL, NULL,
                             o->update ? c->pos : NULL, NULL, NULL, NULL, NULL, B, o->S_ctx, B),
                         KG_OK, "%s layer %d", ka->name, l);
            /* [B, N, D, S] into head rows g * N.. of [B, S, nkv * N, D] */
            for (long b = 0; b < B; b++)
                for (long n = 0; n < N; n++)
                    for (long d = 0; d < D; d++)
                        for (long s = 0; s < S; s++)
                            memcpy(att + (((b * S + s) * G * N + g * N + n) * D + d) * w,
                                   (char *)xo + (((b * N + n) * D + d) * S + s) * w, w);
        }
        cr_assert_eq(((kg_output_projection_fn *)ko->fn)(a, att, &p.out[l], NULL, NULL, NULL, B,
                                                         S), KG_OK, "%s layer %d", ko->name, l);
        const kg_kernel *m = tkg_is_fp8(c, l) ? km8 : km;
        cr_assert_eq(((kg_mlp_fn *)m->fn)(y, h1, a, h, &p.g[l], &p.u[l], &p.d[l], c->sg[l],
                                          c->su[l], c->sd[l], NULL, NULL, p.gm[l], NULL, NULL,
                                          NULL, NULL, T), KG_OK, "%s layer %d", m->name, l);
        float *f1 = kgt_decode(t, h1, T * H), *fy = kgt_decode(t, y, T * H);
        for (long i = 0; i < T * H; i++)
            f1[i] = kgt_round(t, f1[i] + fy[i]);
        free(h);
        h = kgt_encode(t, f1, T * H);
        free(f1), free(fy);
    }
    memcpy(out, h, (size_t)(T * H) * w);
    free(h), free(a), free(y), free(h1), free(xo), free(att), free(cs), free(sn), free(kt);
    free(vt), free(mk);
    for (int l = 0; l < o->L; l++)
        for (int g = 0; g < G; g++)
            kg_wt_free(&hq[l][g]);
    tkg_pack_free(&p, c);
}

static void check_chain(const tkg_ref_opts *o, kg_dtype t)
{
    tkg_call c;
    make_call(&c, o, t, 41 + (unsigned long long)(o->B * 5 + o->S));
    char problem[1024];
    tkg_problem_of(&c, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    long nx = tkg_n_tok(&c) * o->H, nc = tkg_n_cache(&c);
    void *out = kgt_poisoned(t, nx), *cout = kgt_poisoned(t, nx);
    void *kc[TKG_EMAX], *vc[TKG_EMAX], *kc2[TKG_EMAX], *vc2[TKG_EMAX];
    for (int e = 0; e < tkg_n_el(&c); e++) {
        kc[e] = kgt_encode(t, c.K[e], nc), vc[e] = kgt_encode(t, c.V[e], nc);
        kc2[e] = kgt_encode(t, c.K[e], nc), vc2[e] = kgt_encode(t, c.V[e], nc);
    }
    cr_assert_eq(tkg_run_kernel(k, &c, out, kc, vc), KG_OK, "%s refused the call", k->name);
    run_chain(&c, cout, kc2, vc2);
    size_t w = kgt_dtype_size(t);
    cr_assert_eq(memcmp(out, cout, (size_t)nx * w), 0, "%s: out differs from the chain's",
                 k->name);
    for (int e = 0; e < tkg_n_el(&c); e++) {
        cr_assert_eq(memcmp(kc[e], kc2[e], (size_t)nc * w), 0, "%s: K_caches[%d]", k->name, e);
        cr_assert_eq(memcmp(vc[e], vc2[e], (size_t)nc * w), 0, "%s: V_caches[%d]", k->name, e);
        free(kc[e]), free(vc[e]), free(kc2[e]), free(vc2[e]);
    }
    free(out), free(cout);
    tkg_call_free(&c);
}

Test(transformer_tkg, chain_of_single_ops_bit_for_bit, .timeout = 120 * KGT_TIME_SCALE)
{
    tkg_ref_opts o = tkg_small_opts();
    check_chain(&o, KG_BF16);
    o.L = 3, o.fp8 = 2, o.B = 3, o.S = 2, o.S_ctx = 23;
    check_chain(&o, KG_BF16);
    o.update = 0, o.fp8 = 5;
    check_chain(&o, KG_F32);
    o = tkg_small_opts();
    o.L = 1, o.B = 4, o.S = 3;
    check_chain(&o, KG_F16);
    o = tkg_small_opts();
    o.nkv = 3, o.fp8 = 1; /* three KV heads: three attention blocks a layer, one projection */
    check_chain(&o, KG_BF16);
    o.B = 3, o.S = 2, o.S_ctx = 23;
    check_chain(&o, KG_F16);
    plain_weights_set = 1, plain_weights = KG_BF16; /* the runner's: f32 with bf16 weights */
    check_chain(&o, KG_F32);
    plain_weights_set = 0;
}

Test(transformer_tkg, kv_heads)
{
    tkg_ref_opts o = tkg_small_opts();
    o.nkv = 2;
    check(&o, KG_BF16);
    o.nkv = 4, o.L = 3, o.B = 3, o.S = 2, o.fp8 = 2, o.update = 0;
    check(&o, KG_F32);
}

/* ---- per-call checks and refused problems --------------------------------------------------- */

Test(transformer_tkg, per_call_checks)
{
    tkg_ref_opts o = tkg_small_opts();
    tkg_call c;
    make_call(&c, &o, KG_BF16, 5);
    char problem[1024];
    tkg_problem_of(&c, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    long nx = tkg_n_tok(&c) * o.H, nc = tkg_n_cache(&c);
    void *out = kgt_poisoned(KG_BF16, nx), *kc[TKG_LMAX], *vc[TKG_LMAX];
    for (int l = 0; l < o.L; l++)
        kc[l] = kgt_encode(KG_BF16, c.K[l], nc), vc[l] = kgt_encode(KG_BF16, c.V[l], nc);
    void *keep = kgt_encode(KG_BF16, c.K[0], nc);
    c.o.S_ctx = o.S_max + 1;
    cr_assert_eq(tkg_run_kernel(k, &c, out, kc, vc), KG_EARG, "S_ctx > S_max");
    c.o.S_ctx = 0;
    cr_assert_eq(tkg_run_kernel(k, &c, out, kc, vc), KG_EARG, "S_ctx < S_tkg");
    c.o.S_ctx = o.S_ctx, c.pos[1] = (uint32_t)o.S_max;
    cr_assert_eq(tkg_run_kernel(k, &c, out, kc, vc), KG_EARG, "a write past the cache row");
    cr_assert_eq(memcmp(keep, kc[0], (size_t)nc * 2), 0, "a refused call wrote the cache");
    void *kc1 = kc[1];
    kc[1] = NULL, c.pos[1] = 0;
    cr_assert_eq(tkg_run_kernel(k, &c, out, kc, vc), KG_EARG, "a NULL layer cache");
    kc[1] = kc1;
    c.o.B = 0;
    cr_assert_eq(tkg_run_kernel(k, &c, out, kc, vc), KG_OK, "B = 0 does nothing");
    for (int l = 0; l < o.L; l++)
        free(kc[l]), free(vc[l]);
    free(out), free(keep);
    tkg_call_free(&c);
}

Test(transformer_tkg, bad_problems_name_the_key)
{
    static const char *const BAD[][2] = {
        { "transformer_tkg:H=200", "key 'H'" },
        { "transformer_tkg:d_head=63", "key 'd_head'" },
        { "transformer_tkg:S_tkg=9", "key 'S_tkg'" },
        { "transformer_tkg:num_layers=2,fp8_layers=4", "key 'fp8_layers'" },
        { "transformer_tkg:clamp_bound=0.5", "key 'clamp_bound'" },
        { "transformer_tkg:S_max=64,S_ctx=65", "key 'S_ctx'" },
        { "transformer_tkg:tp=0", "key 'tp'" },
        { "transformer_tkg:num_layers=33", "key 'num_layers'" },
        { "transformer_tkg:num_layers=16,kv_heads=4", "key 'kv_heads'" },
        { "transformer_tkg:I=0", "key 'I'" },
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++)
        kgt_problem_rejected(BAD[i][0], BAD[i][1]);
}

Test(transformer_tkg, names_parse_back)
{
    char name[512];
    kgt_name_parses_back("transformer_tkg:num_layers=3,fp8_layers=5,clamp_bound=0.5,tp=4,"
                         "update_cache=false,dtype=f32,H=256,I=96", name, sizeof name);
    cr_assert(strstr(name, "fp8l5") && strstr(name, "tp4") && strstr(name, "noupd"), "%s", name);
}

/* ---- JIT against AOT (gcc) ----------------------------------------------------------------- */

static const kg_kernel *gcc_build(kg_registry *reg, const char *problem)
{
    kgg_kernel k;
    cr_assert_eq(kgg_problem(kgt_gen(), problem, &k), KG_OK, "%s: %s", problem,
                 kgg_error(kgt_gen()));
    kg_kernel_info info = { k.family, k.name, k.problem, k.flops, k.read, k.written };
    char label[512];
    snprintf(label, sizeof label, "%s.c", k.name);
    const char *labels[1] = { label }, *srcs[1] = { k.text };
    kg_gcc_options opt = { .cache_dir = KGEN_TEST_CACHE_DIR, .cc = NULL };
    cr_assert_eq(kg_gcc_compile_with(reg, &opt, 1, &info, labels, srcs, NULL), KG_OK,
                 "gcc build of %s: %s", k.name, kg_registry_error(reg));
    const kg_kernel *found = kg_registry_find(reg, k.name);
    kgg_kernel_clear(&k);
    return found;
}

Test(transformer_tkg, jit_and_aot_are_bit_identical, .timeout = 300 * KGT_TIME_SCALE)
{
    kg_registry *reg = kg_registry_new();
    long compared = kgt_builds_compared();
    for (int i = 0; i < 3; i++) {
        tkg_ref_opts o = tkg_small_opts();
        kg_dtype t = i == 2 ? KG_F32 : KG_BF16;
        if (i == 1)
            o.L = 3, o.fp8 = 6, o.clamp = 0.5f, o.B = 3, o.S = 2, o.nkv = 2;
        if (i == 2)
            o.update = 0, o.fp8 = 1;
        tkg_call c;
        make_call(&c, &o, t, 900 + (unsigned long long)i);
        char problem[1024];
        tkg_problem_of(&c, problem, sizeof problem);
        const kg_kernel *kj = kgt_jit(problem), *ka = gcc_build(reg, problem);
        long nx = tkg_n_tok(&c) * o.H, nc = tkg_n_cache(&c);
        size_t w = kgt_dtype_size(t);
        void *out[2], *kc[2][TKG_EMAX], *vc[2][TKG_EMAX];
        const kg_kernel *ks[2] = { kj, ka };
        for (int b = 0; b < 2; b++) {
            out[b] = kgt_build_output(t, nx, b == 0 ? KGT_JIT : KGT_AOT);
            for (int e = 0; e < tkg_n_el(&c); e++)
                kc[b][e] = kgt_encode(t, c.K[e], nc), vc[b][e] = kgt_encode(t, c.V[e], nc);
            cr_assert_eq(tkg_run_kernel(ks[b], &c, out[b], kc[b], vc[b]), KG_OK, "%s", kj->name);
        }
        char msg[1024];
        cr_assert(kgt_builds_equal(out[0], out[1], nx, w, msg, sizeof msg), "%s out: %s",
                  kj->name, msg);
        for (int e = 0; e < tkg_n_el(&c); e++) {
            cr_assert(kgt_builds_equal(kc[0][e], kc[1][e], nc, w, msg, sizeof msg), "%s K[%d]: %s",
                      kj->name, e, msg);
            cr_assert(kgt_builds_equal(vc[0][e], vc[1][e], nc, w, msg, sizeof msg), "%s V[%d]: %s",
                      kj->name, e, msg);
            for (int b = 0; b < 2; b++)
                free(kc[b][e]), free(vc[b][e]);
        }
        free(out[0]), free(out[1]);
        tkg_call_free(&c);
    }
    cr_assert_eq(kgt_builds_compared() - compared, 1 + 2 * 2 + 1 + 2 * 6 + 1 + 2 * 2,
                 "every output compared");
    kg_registry_free(reg);
}
