/* tests/util/abt_group.c: KV-data-parallel groups of attention_block_tkg calls, threads as
 * ranks (util/abt_group.h). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "kgen/dtype.h"
#include "kgen/kgen.h"
#include "ref/ref.h"
#include "util/abt_group.h"
#include "util/jitp.h"
#include "util/ranks.h"
#include "util/tensors.h"

static float *copy_f(const float *x, long n)
{
    float *y = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    memcpy(y, x, sizeof(float) * (size_t)n);
    return y;
}

void abt_make_group(abt_group *g, const attn_block_ref_opts *o0, kg_dtype t, int G, long bl,
                    unsigned long long seed)
{
    attn_block_ref_opts o = *o0;
    memset(g, 0, sizeof *g);
    g->G = G, g->bl = bl;
    o.B = G * bl, o.nblk = o.blk ? o.S_max / o.blk : 0;
    g->P = o.blk ? bl * o.nblk + 1 : 0;
    o.n_cache = o.blk ? G * g->P : o.B;
    abt_make_call(&g->c, &o, t, seed);
    abt_call *c = &g->c;
    long I = abt_n_qkv(c), ND = o.N * o.D, GN = G * o.N, W = o.S_ctx, S = o.S;
    for (int r = 0; r < G; r++) {
        g->Wq[r] = copy_f(c->W_qkv, o.H * I);
        float *q = abt_randn(t, o.H * ND, seed + 40 + (unsigned long long)r, 1 / sqrtf((float)o.H));
        for (long h = 0; r > 0 && h < o.H; h++) /* rank r's own Q columns */
            for (long j = 0; j < ND; j++)
                g->Wq[r][h * I + j] = o.static_qkv ? kg_e4m3_to_f32(kg_f32_to_e4m3(
                                                         q[h * ND + j] * 8.0f))
                                                   : q[h * ND + j];
        free(q);
        g->Wo[r] = o.wout ? abt_randn(t, ND * o.H, seed + 50 + (unsigned long long)r,
                                      1 / sqrtf((float)ND)) : NULL;
        for (long i = 0; o.static_out && i < ND * o.H; i++)
            g->Wo[r][i] = kg_e4m3_to_f32(kg_f32_to_e4m3(g->Wo[r][i] * 16.0f));
    }
    g->gmask = malloc((size_t)(W * o.B * GN * S));
    unsigned long long z = seed * 2862933555777941757ull + 3;
    for (long j = 0; j < W; j++)
        for (long b = 0; b < o.B; b++)
            for (long n = 0; n < GN; n++)
                for (long s = 0; s < S; s++) {
                    long len = W - S - b > 0 ? W - S - b : 0;
                    z = z * 6364136223846793005ull + 1442695040888963407ull;
                    int on = j < len || (j >= W - S && j - (W - S) <= s);
                    g->gmask[((j * o.B + b) * GN + n) * S + s] = (uint8_t)(on && (z >> 33) % 8);
                }
    g->gsink = o.sink ? abt_randn(KG_F32, GN, seed + 60, 2.0f) : NULL;
    for (long b = 0; o.blk && b < o.B; b++) { /* rank r's sequences use blocks of its pool */
        long r = b / bl, lb = b % bl;
        for (long j = 0; j < o.nblk; j++)
            c->table[b * o.nblk + j] = (uint32_t)(r * g->P + ((lb * o.nblk + j) * 7 + 3) % g->P);
        c->idx[b] = (uint32_t)(r * g->P * o.blk + (lb * 13 + 2) % (g->P * o.blk - S + 1));
    }
    if (o.B > 2)
        c->idx[2] = 0xFFFFFFFFu;
}

void abt_group_free(abt_group *g)
{
    for (int r = 0; r < g->G; r++)
        free(g->Wq[r]), free(g->Wo[r]);
    free(g->gmask), free(g->gsink);
    abt_call_free(&g->c);
}

/* Rank r's whole problem for the kvdp = 1 kernel (shallow: free its mask only). */
abt_call abt_whole_of(const abt_group *g, int r)
{
    abt_call w = g->c;
    const attn_block_ref_opts *o = &g->c.o;
    long W = o->S_ctx, N = o->N, S = o->S, GN = g->G * N;
    w.W_qkv = g->Wq[r], w.W_out = g->Wo[r], w.sink = g->gsink ? g->gsink + r * N : NULL;
    w.mask = malloc((size_t)(W * o->B * N * S));
    for (long j = 0; j < W; j++)
        for (long b = 0; b < o->B; b++)
            for (long n = 0; n < N; n++)
                for (long s = 0; s < S; s++)
                    w.mask[((j * o->B + b) * N + n) * S + s] =
                        g->gmask[((j * o->B + b) * GN + r * N + n) * S + s];
    return w;
}

/* Where rank r's cache starts in the whole problem's: element offset. */
long abt_cache_offset(const abt_group *g, int r)
{
    const attn_block_ref_opts *o = &g->c.o;
    return o->blk ? r * g->P * o->blk * o->D : r * g->bl * o->S_max * o->D;
}

/* Rank r's call of the kvdp kernel (shallow: free its mask, idx and table): B all sequences,
 * its caches, indices, table and mask rows, the group's sinks. */
abt_call abt_rank_of(const abt_group *g, int r)
{
    abt_call c = g->c;
    const attn_block_ref_opts *o = &g->c.o;
    long W = o->S_ctx, S = o->S, GN = g->G * o->N, bl = g->bl, b0 = r * bl;
    c.o.n_cache = o->blk ? g->P : bl;
    c.W_qkv = g->Wq[r], c.W_out = g->Wo[r], c.sink = g->gsink;
    c.K_cache = g->c.K_cache + abt_cache_offset(g, r);
    c.V_cache = g->c.V_cache + abt_cache_offset(g, r);
    c.mask = malloc((size_t)(W * bl * GN * S));
    for (long j = 0; j < W; j++)
        memcpy(c.mask + j * bl * GN * S, g->gmask + (j * o->B + b0) * GN * S,
               (size_t)(bl * GN * S));
    c.idx = malloc(sizeof(uint32_t) * (size_t)bl);
    for (long lb = 0; lb < bl; lb++) {
        uint32_t v = g->c.idx[b0 + lb];
        c.idx[lb] = v == 0xFFFFFFFFu || !o->blk ? v : v - (uint32_t)(r * g->P * o->blk);
    }
    c.table = NULL;
    if (o->blk) {
        c.table = malloc(sizeof(uint32_t) * (size_t)(bl * o->nblk));
        for (long i = 0; i < bl * o->nblk; i++)
            c.table[i] = g->c.table[b0 * o->nblk + i] - (uint32_t)(r * g->P);
    }
    return c;
}

void abt_kvdp_rank(kg_coll *comm, int r, void *arg)
{
    abt_kvdp_run *a = arg;
    (void)comm; /* the kernel finds it bound to this thread (kgp_coll) */
    a->status[r] = abt_run_kernel(a->k, &a->rc[r], a->out[r], a->kc[r], a->vc[r], a->kt[r],
                                  a->vt[r]);
}

/* Kernel k's (kvdp = g->G) calls on the group, outputs started as build's fill. */
void abt_prepare_group(abt_kvdp_run *a, const kg_kernel *k, const abt_group *g, int build)
{
    memset(a, 0, sizeof *a);
    a->k = k, a->G = g->G;
    long nk = g->bl * g->c.o.S * g->c.o.D;
    size_t w = abt_kv_size(&g->c);
    for (int r = 0; r < g->G; r++) {
        abt_call *c = &a->rc[r];
        *c = abt_rank_of(g, r);
        long nc = abt_n_cache_el(c);
        a->out[r] = kgt_build_output(c->t, abt_n_xout(c), build);
        a->kc[r] = abt_kv_encode(c, c->K_cache, nc), a->vc[r] = abt_kv_encode(c, c->V_cache, nc);
        a->kt[r] = c->o.update ? NULL : kgt_filled((size_t)nk * w, build);
        a->vt[r] = c->o.update ? NULL : kgt_filled((size_t)nk * w, build);
    }
}

void abt_run_group(abt_kvdp_run *a, const kg_kernel *k, const abt_group *g, int build)
{
    abt_prepare_group(a, k, g, build);
    cr_assert_eq(kgt_run_ranks(g->G, abt_kvdp_rank, a), 0, "the ranks' threads");
}

void abt_run_free(abt_kvdp_run *a)
{
    for (int r = 0; r < a->G; r++) {
        free(a->out[r]), free(a->kc[r]), free(a->vc[r]), free(a->kt[r]), free(a->vt[r]);
        free(a->rc[r].mask), free(a->rc[r].idx), free(a->rc[r].table);
    }
}

/* The problem strings of the group's kernels: kvdp = 1 and kvdp = G. */
void abt_group_problems(const abt_group *g, char *plain, char *kv, size_t len)
{
    abt_problem_of(&g->c, plain, len);
    snprintf(kv, len, "%s,kvdp=%d,B=%ld", plain, g->G, g->c.o.B);
}
