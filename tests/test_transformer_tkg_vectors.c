/* tests/test_transformer_tkg_vectors.c: the transformer_tkg vector adapter: every
 * shared/vectors/transformer_tkg case mapped onto a call (util/tkg_call.h) and the kernel it
 * fits, its output and updated caches against the case's; an option or input convention the
 * adapter cannot map fails the case. */
#include <criterion/criterion.h>

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
#include "util/tkg_call.h"
#include "util/vectors.h"

TestSuite(transformer_tkg, .init = kgt_suite_init, .fini = kgt_suite_fini);

/* ---- shared/vectors/transformer_tkg ------------------------------------------------------ */

static long opt_long(kgt_case *c, const char *key)
{
    double v;
    cr_assert(kgt_case_opt_num(c, key, &v), "%s: option %s", kgt_case_name(c), key);
    return (long)v;
}

/* An input's values as fp32 (or u8/u32), malloc'd. */
static void *input_as(kgt_case *c, const char *name, kg_dtype t)
{
    void *p = kgt_case_as(c, name, t);
    cr_assert(p, "%s: %s", kgt_case_name(c), kgt_case_error(c));
    return p;
}

/* List `name`'s L elements as fp32 into dst (each must be listed). */
static void list_as(kgt_case *vc, const char *name, int L, float **dst)
{
    cr_assert_eq(kgt_case_list_len(vc, name), L, "%s: list %s has %d elements, num_layers %d",
                 kgt_case_name(vc), name, kgt_case_list_len(vc, name), L);
    for (int l = 0; l < L; l++) {
        cr_assert(kgt_case_list_input(vc, name, l), "%s: %s", kgt_case_name(vc),
                  kgt_case_error(vc));
        dst[l] = input_as(vc, kgt_case_list_name(vc, name, l), KG_F32);
    }
}

/* Rows [0, n_keep) of each of `rows` rows of length `len` in p, tkg_packed: a cache's first S_ctx
 * slots as the case stores them. */
static void *first_slots(const void *p, size_t w, long rows, long len, long keep, long inner)
{
    char *y = malloc((size_t)(rows * keep * inner) * w);
    for (long r = 0; r < rows; r++)
        memcpy(y + (size_t)(r * keep * inner) * w, (const char *)p + (size_t)(r * len * inner) * w,
               (size_t)(keep * inner) * w);
    return y;
}

static void expect(kgt_case *vc, const char *name, kg_dtype t, const void *got, const char *k)
{
    char msg[1024];
    int ok = kgt_close_to_case(vc, name, t, got, msg, sizeof msg);
    cr_assert(ok >= 0, "%s: no tolerance for %s", kgt_case_name(vc), name);
    cr_assert(ok, "vector %s (%s): %s %s", kgt_case_name(vc), k, name, msg);
}

static void run_vector(kgt_case *vc)
{
    const char *name = kgt_case_name(vc);
    tkg_call c;
    memset(&c, 0, sizeof c);
    tkg_ref_opts *o = &c.o;
    o->B = opt_long(vc, "B"), o->H = opt_long(vc, "H"), o->I = opt_long(vc, "I");
    o->S = opt_long(vc, "S_tkg"), o->S_ctx = opt_long(vc, "S_ctx");
    o->S_max = opt_long(vc, "S_max"), o->D = opt_long(vc, "d_head");
    o->N = opt_long(vc, "q_heads_per_rank"), o->L = (int)opt_long(vc, "num_layers");
    cr_assert(o->L >= 1 && o->L <= TKG_LMAX, "%s: num_layers %d is not mapped", name, o->L);
    double eps, cb;
    cr_assert(kgt_case_opt_num(vc, "eps", &eps) && kgt_case_opt_num(vc, "clamp_bound", &cb),
              "%s: eps, clamp_bound", name);
    o->eps = (float)eps, o->clamp = (float)cb;
    int upd;
    cr_assert(kgt_case_opt_bool(vc, "cache_update", &upd), "%s: cache_update", name);
    o->update = upd;
    const char *s;
    cr_assert(kgt_case_opt_str(vc, "fp8_layers", &s) && !strcmp(s, "none"),
              "%s: fp8_layers = %s is not mapped (ROW layers with bf16 weights)", name, s);
    cr_assert(o->clamp == 0, "%s: clamp_bound without fp8 layers", name);
    cr_assert(kgt_case_opt_str(vc, "replica_groups", &s) && !strncmp(s, "single rank", 11),
              "%s: replica_groups = %s is not mapped", name, s);
    cr_assert(kgt_case_opt_str(vc, "W_down_layout", &s) && !strncmp(s, "logical", 7),
              "%s: W_down_layout = %s is not mapped", name, s);
    const char *xdt = kgt_case_input_dtype(vc, "X");
    cr_assert(xdt, "%s: no X", name);
    c.t = (kg_dtype)kg_dtype_from_name(xdt), c.tp = 1;
    cr_assert(c.t == KG_BF16 || c.t == KG_F16 || c.t == KG_F32, "%s: X dtype %s", name, xdt);
    c.X = input_as(vc, "X", KG_F32);
    c.cos = input_as(vc, "RoPE_cos", KG_F32), c.sin = input_as(vc, "RoPE_sin", KG_F32);
    c.mask = input_as(vc, "mask_cache", KG_U8);
    cr_assert_eq(kg_npy_count(kgt_case_input(vc, "mask_cache")), o->S_ctx * o->B * o->N * o->S,
                 "%s: mask_cache shape", name);
    /* mask_active: the reference's input only, the unified mask carries it (transformer_tkg.md) */
    uint8_t *ma = input_as(vc, "mask_active", KG_U8);
    free(ma);
    if (o->update) {
        uint32_t *p = input_as(vc, "position_ids", KG_U32);
        cr_assert_eq(kg_npy_count(kgt_case_input(vc, "position_ids")), o->B,
                     "%s: position_ids [B, 1]", name);
        c.pos = p;
    } else {
        c.pos = calloc((size_t)o->B, sizeof(uint32_t));
    }
    list_as(vc, "W_qkvs", o->L, c.Wqkv), list_as(vc, "W_outs", o->L, c.Wout);
    list_as(vc, "W_gates", o->L, c.Wg), list_as(vc, "W_ups", o->L, c.Wu);
    list_as(vc, "W_downs", o->L, c.Wd), list_as(vc, "W_gamma_qkvs", o->L, c.gq);
    list_as(vc, "W_gamma_mlps", o->L, c.gm);
    list_as(vc, "K_caches", o->L, c.K), list_as(vc, "V_caches", o->L, c.V);
    cr_assert_eq(kgt_case_list_len(vc, "W_gate_scales"), 0, "%s: fp8 scales", name);
    const kg_npy *k0 = kgt_case_list_input(vc, "K_caches", 0);
    cr_assert(k0->rank == 4 && k0->shape[0] == o->B && k0->shape[1] == 1 &&
              k0->shape[2] == o->D && k0->shape[3] == o->S_max, "%s: K_caches [B, 1, D, S_max]",
              name);
    char problem[1024];
    tkg_problem_of(&c, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    long nx = tkg_n_tok(&c) * o->H, nc = tkg_n_cache(&c);
    void *out = kgt_poisoned(c.t, nx), *kc[TKG_LMAX], *vc2[TKG_LMAX];
    for (int l = 0; l < o->L; l++)
        kc[l] = kgt_encode(c.t, c.K[l], nc), vc2[l] = kgt_encode(c.t, c.V[l], nc);
    cr_assert_eq(tkg_run_kernel(k, &c, out, kc, vc2), KG_OK, "%s: %s refused", name, k->name);
    expect(vc, "out_out", c.t, out, k->name);
    size_t w = kgt_dtype_size(c.t);
    for (int l = 0; l < o->L; l++) {
        char kn[64], vn[64];
        snprintf(kn, sizeof kn, "out_K_cache_%d", l), snprintf(vn, sizeof vn, "out_V_cache_%d", l);
        cr_assert(kgt_case_has_output(vc, kn) == o->update && kgt_case_has_output(vc, vn) ==
                  o->update, "%s: the updated caches are expected iff cache_update", name);
        if (o->update) {
            /* the case stores the first S_ctx slots: K [B, 1, D, S_ctx], V [B, 1, S_ctx, D] */
            void *ks = first_slots(kc[l], w, o->B * o->D, o->S_max, o->S_ctx, 1);
            void *vs = first_slots(vc2[l], w, o->B, o->S_max, o->S_ctx, o->D);
            expect(vc, kn, c.t, ks, k->name);
            expect(vc, vn, c.t, vs, k->name);
            free(ks), free(vs);
        }
        free(kc[l]), free(vc2[l]);
    }
    free(out);
    tkg_call_free(&c);
}

Test(transformer_tkg, shared_vectors) { kgt_each_case("transformer_tkg", run_vector); }
