/* tests/test_router_topk_vectors.c: the router_topk vector adapter: every shared/vectors/
 * router_topk case, and synthetic cases (util/casew.h) for what the shared sample lacks (ACT1,
 * norm_topk_prob, eager affinities, skipped indices, upstream's x_hbm_layout spelling, a [E]
 * bias, the hardware-only flags), expected from tests/ref/router_topk_ref.c. */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/dtype.h"
#include "kgen/kernels.h"
#include "kgen/kgen.h"
#include "ref/moe_ref.h"
#include "util/casew.h"
#include "util/compare.h"
#include "util/jitp.h"
#include "util/tensors.h"
#include "util/vectors.h"
#include "util/vecwt.h"

TestSuite(router_topk, .init = kgt_suite_init, .fini = kgt_suite_fini);

/* The names an eager [T, K] output may have in a case. */
static const char *const EAGER_OUT[] = { "out_eager_affinities", "out_expert_affinities_eager",
                                         "out_eager_affi" };

/* The router options of a case (router_topk.md "Options"). */
typedef struct vopts {
    const char *act;
    long K;
    int pre, norm, bias, ht, eager, skipidx;
} vopts;

/* A boolean option, default `def`. */
static int opt_bool(kgt_case *c, const char *key, int def)
{
    int v = def;
    kgt_case_opt_bool(c, key, &v);
    return v;
}

/* x's layout: x_layout ("[T,H]" or "[H,T] ...") and / or upstream's x_hbm_layout (1: [T, H],
 * 0: [H, T]); the two must agree when both are given. */
static int vector_layout(kgt_case *c)
{
    const char *name = kgt_case_name(c), *s;
    int ht = -1;
    double hbm;
    if (kgt_case_opt_str(c, "x_layout", &s)) {
        cr_assert(!strncmp(s, "[T,H]", 5) || !strncmp(s, "[H,T]", 5),
                  "%s: x_layout '%s' is not mapped", name, s);
        ht = !strncmp(s, "[H,T]", 5);
    }
    if (kgt_case_opt_num(c, "x_hbm_layout", &hbm)) {
        cr_assert(hbm == 0 || hbm == 1, "%s: x_hbm_layout %g is not 0 or 1", name, hbm);
        cr_assert(ht < 0 || ht == (hbm == 0), "%s: x_layout and x_hbm_layout disagree", name);
        ht = hbm == 0;
    }
    return ht > 0;
}

static void vector_opts(kgt_case *c, vopts *o)
{
    const char *name = kgt_case_name(c);
    double k = 0;
    memset(o, 0, sizeof *o);
    cr_assert(kgt_case_opt_num(c, "k", &k) && k >= 1 && k <= 8 && k == (long)k,
              "%s: option k missing or not in 1..8", name);
    o->K = (long)k;
    o->act = "SOFTMAX";
    if (kgt_case_opt_str(c, "act_fn", &o->act)) {
        if (strstr(o->act, "SIGMOID")) /* also "RouterActFnType.SIGMOID" */
            o->act = "SIGMOID";
        else if (strstr(o->act, "SOFTMAX"))
            o->act = "SOFTMAX";
        else
            cr_assert_fail("%s: act_fn '%s' is not mapped", name, o->act);
    }
    o->pre = opt_bool(c, "router_pre_norm", 1);
    o->norm = opt_bool(c, "norm_topk_prob", 0);
    o->eager = opt_bool(c, "return_eager_affi", 0);
    o->skipidx = opt_bool(c, "skip_store_expert_index", 0);
    cr_assert(!opt_bool(c, "skip_store_router_logits", 0),
              "%s: skip_store_router_logits = true (upstream rejects it)", name);
    o->ht = vector_layout(c);
    int has_bias = kgt_case_input_dtype(c, "w_bias") != NULL;
    o->bias = opt_bool(c, "bias", has_bias);
    cr_assert(o->bias == has_bias, "%s: bias=%d but w_bias is %s", name, o->bias,
              has_bias ? "given" : "absent");
    /* hardware scheduling, no CPU meaning (router_topk.md "Hardware scheduling"): the SBUF
     * placements of the same [T, H] data, column tiling, the scatter variant, the bias
     * broadcast, the LNC token split */
    static const char *const hw[] = { "x_sb_layout", "use_column_tiling",
                                      "use_indirect_dma_scatter", "use_PE_broadcast_w_bias",
                                      "shard_on_tokens" };
    for (size_t i = 0; i < sizeof hw / sizeof hw[0]; i++)
        kgt_case_opt_has(c, hw[i]);
}

/* The kernel's expert_index (u32) against the case's, stored as any integer or whole floats. */
static void compare_index(kgt_case *c, const uint32_t *got, long n)
{
    const char *name = kgt_case_name(c);
    const kg_npy *a = kgt_case_output(c, "out_expert_index");
    cr_assert(a && kg_npy_count(a) == n, "%s: out_expert_index: %s", name, kgt_case_error(c));
    for (long i = 0; i < n; i++) {
        double want;
        switch (a->dtype) {
        case KG_I32: want = ((const int32_t *)a->data)[i]; break;
        case KG_U32: want = ((const uint32_t *)a->data)[i]; break;
        case KG_I64: want = (double)((const int64_t *)a->data)[i]; break;
        case KG_F32: want = ((const float *)a->data)[i]; break;
        default: cr_assert_fail("%s: out_expert_index has an unmapped dtype", name); return;
        }
        cr_assert(got[i] == want, "%s: expert_index[%ld] = %u, want %g", name, i, got[i], want);
    }
    kgt_case_compared(c, "out_expert_index");
}

static void run_vector(kgt_case *c)
{
    const char *name = kgt_case_name(c);
    vopts o;
    vector_opts(c, &o);
    static const char *const fn[] = { "x", "w", "w_bias" };
    int t = kgt_case_float_dtype(c, fn, 3);
    cr_assert(t >= 0, "%s: %s", name, kgt_case_error(c));
    const kg_npy *xa = kgt_case_input(c, "x");
    cr_assert(xa && xa->rank == 2, "%s: x must be 2-D: %s", name, kgt_case_error(c));
    long T = o.ht ? xa->shape[1] : xa->shape[0], H = o.ht ? xa->shape[0] : xa->shape[1];
    float *x = kgt_case_as(c, "x", KG_F32);
    float *b = o.bias ? kgt_case_as(c, "w_bias", KG_F32) : NULL;
    cr_assert(x && (!o.bias || b), "%s: %s", name, kgt_case_error(c));
    int fmt = t == KG_F32 ? KG_WT_F32 : t == KG_F16 ? KG_WT_F16 : KG_WT_BF16;
    kg_wt w;
    long E = kgt_case_wt(c, "w", NULL, fmt, KG_WL_KN, H, &w);
    if (o.bias) {
        const kg_npy *ba = kgt_case_input(c, "w_bias");
        cr_assert(kg_npy_count(ba) == E, "%s: w_bias holds %ld values for E = %ld", name,
                  kg_npy_count(ba), E);
    }

    char problem[512];
    snprintf(problem, sizeof problem, "router_topk:dtype=%s,out_dtype=f32,H=%ld,E=%ld,k=%ld,"
             "act_fn=%s,router_pre_norm=%s,norm_topk_prob=%s,bias=%s,x_layout=%s,"
             "return_eager_affi=%s,skip_store_expert_index=%s", kg_dtype_name((kg_dtype)t), H,
             E, o.K, o.act, o.pre ? "true" : "false", o.norm ? "true" : "false",
             o.bias ? "true" : "false", o.ht ? "HT" : "TH", o.eager ? "true" : "false",
             o.skipidx ? "true" : "false");
    const kg_kernel *k = kgt_jit(problem);
    void *xe = kgt_encode((kg_dtype)t, x, T * H), *be = o.bias ? kgt_encode((kg_dtype)t, b, E)
                                                               : NULL;
    float *lo = kgt_poisoned(KG_F32, T * E), *ao = kgt_poisoned(KG_F32, T * E);
    float *eo = o.eager ? kgt_poisoned(KG_F32, T * o.K) : NULL;
    uint32_t *io = o.skipidx ? NULL : kgt_poisoned(KG_F32, T * o.K);
    int rc = ((kg_router_topk_fn *)k->fn)(lo, io, ao, eo, xe, &w, be, T);
    cr_assert_eq(rc, KG_OK, "%s: %s returned %d", name, k->name, rc);

    char msg[1024];
    int ok = kgt_close_to_case(c, "out_router_logits", KG_F32, lo, msg, sizeof msg);
    cr_assert(ok > 0, "vector %s (%s) router_logits: %s", name, k->name,
              ok < 0 ? "no tolerance" : msg);
    ok = kgt_close_to_case(c, "out_expert_affinities", KG_F32, ao, msg, sizeof msg);
    cr_assert(ok > 0, "vector %s (%s) expert_affinities: %s", name, k->name,
              ok < 0 ? "no tolerance" : msg);
    if (io)
        compare_index(c, io, T * o.K);
    for (size_t i = 0; eo && i < sizeof EAGER_OUT / sizeof EAGER_OUT[0]; i++)
        if (kgt_case_has_output(c, EAGER_OUT[i])) {
            ok = kgt_close_to_case(c, EAGER_OUT[i], KG_F32, eo, msg, sizeof msg);
            cr_assert(ok > 0, "vector %s (%s) %s: %s", name, k->name, EAGER_OUT[i],
                      ok < 0 ? "no tolerance" : msg);
        }
    kg_wt_free(&w);
    free(x), free(b), free(xe), free(be), free(lo), free(ao), free(eo), free(io);
}

Test(router_topk, shared_vectors) { kgt_each_case("router_topk", run_vector); }

/* ---- synthetic cases --------------------------------------------------------------------- */

/* n bf16-exact values on a grid of `step` (an LCG), so the logits are exact in fp32 and the
 * indices compare exactly. */
static float *grid(long n, unsigned seed, int span, float step)
{
    float *x = malloc((size_t)n * sizeof *x);
    unsigned s = seed * 2654435761u + 7u;
    for (long i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)((int)((s >> 8) % (unsigned)span) - span / 2) * step;
    }
    return x;
}

/* A case of T tokens, H, E, K with options o, written by the reference: x given [T, H] or, with
 * o->ht, [H, T] spelled as upstream's x_hbm_layout = 0 only; bias [E] (not [1, E]); the
 * hardware-only flags set. */
static void synthetic(const char *cname, const vopts *o, long T, long H, long E, unsigned seed)
{
    long K = o->K;
    float *x = grid(T * H, seed, 5, 0.5f), *W = grid(H * E, seed + 1, 17, 1.0f / 16);
    float *b = grid(E, seed + 2, 9, 0.25f);
    float *l = malloc((size_t)(T * E) * 4), *a = malloc((size_t)(T * E) * 4);
    float *eg = malloc((size_t)(T * K) * 4), *idxf = malloc((size_t)(T * K) * 4);
    int32_t *idx = malloc((size_t)(T * K) * 4);
    router_ref_opts ro = { !strcmp(o->act, "SOFTMAX"), o->pre, o->norm && o->pre, o->ht };
    router_topk_ref(l, idx, a, eg, x, W, o->bias ? b : NULL, &ro, T, H, E, K);
    for (long i = 0; i < T * K; i++)
        idxf[i] = (float)idx[i];
    kgt_casew *cw = kgt_casew_new("router_topk", cname);
    long xs[2] = { o->ht ? H : T, o->ht ? T : H }, ws[2] = { H, E }, bs[1] = { E };
    long ls[2] = { T, E }, ks[2] = { T, K };
    kgt_casew_input(cw, "x", "bf16", x, 2, xs);
    kgt_casew_input(cw, "w", "bf16", W, 2, ws);
    if (o->bias)
        kgt_casew_input(cw, "w_bias", "bf16", b, 1, bs);
    kgt_casew_opt_str(cw, "act_fn", o->act);
    kgt_casew_opt_num(cw, "k", (double)K);
    kgt_casew_opt_bool(cw, "router_pre_norm", o->pre);
    kgt_casew_opt_bool(cw, "norm_topk_prob", o->norm);
    kgt_casew_opt_bool(cw, "bias", o->bias);
    kgt_casew_opt_num(cw, "x_hbm_layout", o->ht ? 0 : 1);
    kgt_casew_opt_num(cw, "x_sb_layout", 2);
    kgt_casew_opt_bool(cw, "use_column_tiling", 1);
    kgt_casew_opt_bool(cw, "use_indirect_dma_scatter", 1);
    kgt_casew_opt_bool(cw, "use_PE_broadcast_w_bias", 1);
    kgt_casew_opt_bool(cw, "shard_on_tokens", 1);
    kgt_casew_opt_bool(cw, "skip_store_router_logits", 0);
    kgt_casew_opt_bool(cw, "return_eager_affi", o->eager);
    kgt_casew_opt_bool(cw, "skip_store_expert_index", o->skipidx);
    kgt_casew_output(cw, "out_router_logits", l, 2, ls, 2e-2, 1e-5);
    kgt_casew_output(cw, "out_expert_affinities", a, 2, ls, 2e-2, 1e-5);
    if (!o->skipidx)
        kgt_casew_output(cw, "out_expert_index", idxf, 2, ks, 0, 0);
    if (o->eager)
        kgt_casew_output(cw, "out_eager_affinities", eg, 2, ks, 2e-2, 1e-5);
    kgt_run_case(kgt_casew_finish(cw), run_vector);
    kgt_casew_free(cw);
    free(x), free(W), free(b), free(l), free(a), free(eg), free(idxf), free(idx);
}

Test(router_topk, synthetic_vectors_every_option)
{
    static const vopts opts[] = {
        { "SIGMOID", 8, 1, 1, 1, 1, 1, 0 },  /* deepseek-style: sigmoid ACT1 + norm, x [H, T] */
        { "SOFTMAX", 2, 1, 1, 0, 0, 1, 0 },  /* Mixtral: softmax ACT1 + norm */
        { "SOFTMAX", 4, 1, 0, 1, 0, 1, 1 },  /* ACT1, the full matrix; no indices stored */
        { "SIGMOID", 3, 0, 0, 1, 1, 1, 0 },  /* ACT2 sigmoid, eager */
        { "SOFTMAX", 1, 0, 1, 0, 0, 0, 0 },  /* norm ignored without pre_norm */
    };
    char cname[64];
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        snprintf(cname, sizeof cname, "synthetic_%zu", i);
        synthetic(cname, &opts[i], 9, 96, i == 0 ? 16 : 10, 50 + (unsigned)i);
    }
}
