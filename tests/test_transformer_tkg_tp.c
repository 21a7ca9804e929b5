/* tests/test_transformer_tkg_tp.c: transformer_tkg's tensor parallelism on threads as ranks:
 * a group of 2 and 4 ranks, each on its shard of the weights, against one rank on the whole
 * problem, and a tp kernel refused on a single rank. */
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
#include "util/ranks.h"
#include "util/tensors.h"
#include "util/tkg_call.h"

TestSuite(transformer_tkg, .init = kgt_suite_init, .fini = kgt_suite_fini);

/* ---- tensor parallelism: threads as ranks -------------------------------------------------- */
/* The whole problem (G * N query heads on the one KV head, MLP width G * I) on one rank
 * against a group of G ranks, rank r holding query heads r*N .. r*N + N-1 (their W_qkv columns
 * and the K, V columns; W_out's rows), MLP columns r*I .. (W_gate, W_up, their scales; W_down's
 * rows) and the same caches. Every rank leaves with the same bits, within tolerance of the
 * single rank's (the group adds rounded partials). */
typedef struct tp_run {
    const kg_kernel *k;
    tkg_call rc[TKG_GMAX];
    void *out[TKG_GMAX], *kc[TKG_GMAX][TKG_LMAX], *vc[TKG_GMAX][TKG_LMAX];
    int status[TKG_GMAX];
} tp_run;

static void tp_rank(kg_coll *comm, int r, void *arg)
{
    tp_run *a = arg;
    (void)comm; /* the kernel finds it bound to this thread (kgp_coll) */
    a->status[r] = tkg_run_kernel(a->k, &a->rc[r], a->out[r], a->kc[r], a->vc[r]);
}

/* Rank r's shard of the whole tkg_call c (G ranks): deep copies. */
static tkg_call shard(const tkg_call *c, int G, int r)
{
    const tkg_ref_opts *o = &c->o;
    tkg_call s;
    memset(&s, 0, sizeof s);
    s.o = *o, s.t = c->t, s.tp = G;
    s.o.N = o->N / G, s.o.I = o->I / G;
    long H = o->H, D = o->D, N = s.o.N, I = s.o.I, Q = (o->N + 2) * D, q = (N + 2) * D;
    long T = tkg_n_tok(c), hc = D / 2 * T;
    s.X = tkg_dup(c->X, T * H), s.cos = tkg_dup(c->cos, hc), s.sin = tkg_dup(c->sin, hc);
    s.pos = malloc(sizeof(uint32_t) * (size_t)o->B);
    memcpy(s.pos, c->pos, sizeof(uint32_t) * (size_t)o->B);
    s.mask = malloc((size_t)(o->S_ctx * o->B * N * o->S));
    for (long j = 0; j < o->S_ctx * o->B; j++)
        memcpy(s.mask + j * N * o->S, c->mask + (j * o->N + r * N) * o->S, (size_t)(N * o->S));
    for (int l = 0; l < o->L; l++) {
        s.Wqkv[l] = malloc(sizeof(float) * (size_t)(H * q));
        for (long k = 0; k < H; k++) {
            memcpy(s.Wqkv[l] + k * q, c->Wqkv[l] + k * Q + r * N * D,
                   sizeof(float) * (size_t)(N * D));
            memcpy(s.Wqkv[l] + k * q + N * D, c->Wqkv[l] + k * Q + o->N * D,
                   sizeof(float) * (size_t)(2 * D));
        }
        s.Wout[l] = tkg_dup(c->Wout[l] + r * N * D * H, N * D * H);
        s.Wg[l] = malloc(sizeof(float) * (size_t)(H * I));
        s.Wu[l] = malloc(sizeof(float) * (size_t)(H * I));
        for (long k = 0; k < H; k++) {
            memcpy(s.Wg[l] + k * I, c->Wg[l] + k * o->I + r * I, sizeof(float) * (size_t)I);
            memcpy(s.Wu[l] + k * I, c->Wu[l] + k * o->I + r * I, sizeof(float) * (size_t)I);
        }
        s.Wd[l] = tkg_dup(c->Wd[l] + r * I * H, I * H);
        s.gq[l] = tkg_dup(c->gq[l], H), s.gm[l] = tkg_dup(c->gm[l], H);
        if (c->sg[l]) {
            s.sg[l] = tkg_dup(c->sg[l] + r * I, I), s.su[l] = tkg_dup(c->su[l] + r * I, I);
            s.sd[l] = tkg_dup(c->sd[l], H);
        }
        s.K[l] = tkg_dup(c->K[l], tkg_n_cache(c)), s.V[l] = tkg_dup(c->V[l], tkg_n_cache(c));
    }
    return s;
}

static void check_tp(const tkg_ref_opts *o, kg_dtype t, int G)
{
    tkg_call c;
    tkg_call_random(&c, o, t, t, 300 + (unsigned long long)G);
    long nx = tkg_n_tok(&c) * o->H, nc = tkg_n_cache(&c);
    size_t w = kgt_dtype_size(t);
    char problem[1024];
    tkg_problem_of(&c, problem, sizeof problem);
    const kg_kernel *k1 = kgt_jit(problem);
    void *out = kgt_poisoned(t, nx), *kc[TKG_LMAX], *vc[TKG_LMAX];
    for (int l = 0; l < o->L; l++)
        kc[l] = kgt_encode(t, c.K[l], nc), vc[l] = kgt_encode(t, c.V[l], nc);
    cr_assert_eq(tkg_run_kernel(k1, &c, out, kc, vc), KG_OK, "%s", k1->name);
    tp_run a;
    memset(&a, 0, sizeof a);
    for (int r = 0; r < G; r++) {
        a.rc[r] = shard(&c, G, r);
        a.out[r] = kgt_poisoned(t, nx);
        for (int l = 0; l < o->L; l++)
            a.kc[r][l] = kgt_encode(t, c.K[l], nc), a.vc[r][l] = kgt_encode(t, c.V[l], nc);
    }
    tkg_problem_of(&a.rc[0], problem, sizeof problem);
    a.k = kgt_jit(problem);
    cr_assert_eq(kgt_run_ranks(G, tp_rank, &a), 0, "the ranks' threads");
    float *want = kgt_decode(t, out, nx);
    char msg[1024];
    long xs[2] = { tkg_n_tok(&c), o->H }, cshape[1] = { nc };
    for (int r = 0; r < G; r++) {
        cr_assert_eq(a.status[r], KG_OK, "%s rank %d refused", a.k->name, r);
        cr_assert_eq(memcmp(a.out[r], a.out[0], (size_t)nx * w), 0, "%s: rank %d's out is not "
                     "rank 0's", a.k->name, r);
        cr_assert(kgt_close_to_ref(t, a.out[r], want, 2, xs, TKG_RTOL, TKG_ATOL, msg, sizeof msg),
                  "%s rank %d against one rank: %s", a.k->name, r, msg);
        for (int l = 0; l < o->L; l++) {
            float *kw = kgt_decode(t, kc[l], nc), *vw = kgt_decode(t, vc[l], nc);
            cr_assert(kgt_close_to_ref(t, a.kc[r][l], kw, 1, cshape, TKG_RTOL, TKG_ATOL, msg,
                                       sizeof msg), "%s rank %d K_caches[%d]: %s", a.k->name,
                      r, l, msg);
            cr_assert(kgt_close_to_ref(t, a.vc[r][l], vw, 1, cshape, TKG_RTOL, TKG_ATOL, msg,
                                       sizeof msg), "%s rank %d V_caches[%d]: %s", a.k->name,
                      r, l, msg);
            free(kw), free(vw), free(a.kc[r][l]), free(a.vc[r][l]);
        }
        tkg_call_free(&a.rc[r]);
    }
    for (int r = 0; r < G; r++)
        free(a.out[r]);
    for (int l = 0; l < o->L; l++)
        free(kc[l]), free(vc[l]);
    free(want), free(out);
    tkg_call_free(&c);
}

Test(transformer_tkg, tp_threads_as_ranks, .timeout = 300 * KGT_TIME_SCALE)
{
    for (int G = 2; G <= 4; G += 2) {
        tkg_ref_opts o = tkg_small_opts();
        o.N = 2 * G, o.I = 96 * G, o.L = 2, o.B = 2, o.S = 2, o.S_ctx = 19;
        check_tp(&o, KG_BF16, G);
        o.L = 3, o.fp8 = 2, o.B = 3, o.S = 1, o.update = 0;
        check_tp(&o, KG_F32, G);
    }
}

Test(transformer_tkg, tp_refusals)
{
    tkg_ref_opts o = tkg_small_opts();
    tkg_call c;
    tkg_call_random(&c, &o, KG_BF16, KG_BF16, 77);
    c.tp = 2;
    char problem[1024];
    tkg_problem_of(&c, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    void *out = kgt_poisoned(KG_BF16, tkg_n_tok(&c) * o.H), *kc[TKG_LMAX], *vc[TKG_LMAX];
    for (int l = 0; l < o.L; l++)
        kc[l] = kgt_encode(KG_BF16, c.K[l], tkg_n_cache(&c)),
        vc[l] = kgt_encode(KG_BF16, c.V[l], tkg_n_cache(&c));
    cr_assert_eq(tkg_run_kernel(k, &c, out, kc, vc), KG_EARG, "a tp = 2 kernel on a single rank");
    for (int l = 0; l < o.L; l++)
        free(kc[l]), free(vc[l]);
    free(out);
    tkg_call_free(&c);
}
