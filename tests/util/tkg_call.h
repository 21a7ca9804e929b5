/* tests/util/tkg_call.h: one call of a transformer_tkg megakernel for its tests (the reference
 * sweeps and the chain, tensor parallelism on threads as ranks, the vector adapter): the inputs
 * in fp32 on their dtypes' grids, random calls, the problem string of the kernel they fit, the
 * weights packed and the kernel run on them. One copy, so the three test files cannot drift
 * apart on what a call is. */
#ifndef KGT_TKG_CALL_H
#define KGT_TKG_CALL_H

#include <stddef.h>
#include <stdint.h>

#include "kgen/dtype.h"
#include "kgen/kgen.h"
#include "ref/ref.h"

enum { TKG_LMAX = 4, TKG_GMAX = 4, TKG_EMAX = 16 }; /* layers, ranks, (layer, KV head) pairs */

/* The transformer_tkg.md tolerance (maxAllClose max mode on the output): rtol 2.5e-2, atol
 * 1e-2; the caches hold the new K, V of hidden states that differ by as much. */
#define TKG_RTOL 2.5e-2
#define TKG_ATOL 1e-2

/* The inputs of one call in fp32 (on the grids of their dtypes), per layer l < o.L. */
typedef struct tkg_call {
    tkg_ref_opts o;
    kg_dtype t, wt; /* the activations' dtype, the plain weights' (weight_dtype) */
    int tp;
    float *X, *cos, *sin;
    uint8_t *mask;
    uint32_t *pos;
    float *Wg[TKG_LMAX], *Wu[TKG_LMAX], *Wd[TKG_LMAX], *gq[TKG_LMAX], *gm[TKG_LMAX];
    float *sg[TKG_LMAX], *su[TKG_LMAX], *sd[TKG_LMAX];
    /* W_qkv [H, nkv (N + 2) D]: the nkv N Q heads, the nkv K heads, the nkv V heads; W_out
     * [nkv N D, H] */
    float *Wqkv[TKG_LMAX], *Wout[TKG_LMAX];
    /* per (layer l, KV head g), element l * nkv + g */
    float *K[TKG_EMAX], *V[TKG_EMAX];
} tkg_call;

/* Sizes: tokens (B * S), elements of one cache, KV heads, W_qkv's columns, W_out's rows, the
 * elements of the per-(layer, KV head) lists; whether layer l's MLP is ROW fp8. */
long tkg_n_tok(const tkg_call *c);
long tkg_n_cache(const tkg_call *c);
int tkg_n_kv(const tkg_call *c);
long tkg_n_qkv(const tkg_call *c);
long tkg_n_att(const tkg_call *c);
int tkg_n_el(const tkg_call *c);
int tkg_is_fp8(const tkg_call *c, int l);

void tkg_call_free(tkg_call *c);
/* A malloc'd copy of x[0, n). */
float *tkg_dup(const float *x, long n);

/* The small problem the tests start from: B 2, S 1, H 128, I 96, 2 query heads of d_head 32 on
 * one KV head, a window of 21 of 40 slots, 2 layers, the caches updated. */
tkg_ref_opts tkg_small_opts(void);

/* Random inputs for options o, activations in t, plain weights in wt (t, or bf16/fp16 under
 * f32 activations): weights N(0, 1/sqrt(fan_in)), gammas around 1, caches and X N(0, 1);
 * sequence b's cache length S_ctx - S - b (at least 0), its mask the prior slots below it and
 * the causal tail. */
void tkg_call_random(tkg_call *c, const tkg_ref_opts *o, kg_dtype t, kg_dtype wt,
                     unsigned long long seed);

/* The problem string of c's kernel. */
void tkg_problem_of(const tkg_call *c, char *buf, size_t len);
/* The kg_wt format of plain weights in dtype t. */
int tkg_wt_fmt(kg_dtype t);

/* A call's weights packed for the kernels, per layer. */
typedef struct tkg_packed {
    kg_wt qkv[TKG_LMAX], out[TKG_LMAX], g[TKG_LMAX], u[TKG_LMAX], d[TKG_LMAX];
    void *gq[TKG_LMAX], *gm[TKG_LMAX];
} tkg_packed;

void tkg_pack(tkg_packed *p, const tkg_call *c);
void tkg_pack_free(tkg_packed *p, const tkg_call *c);

/* Runs the megakernel k on c: out, the caches kc[e], vc[e] (encoded, updated in place).
 * Returns the kernel's status. */
int tkg_run_kernel(const kg_kernel *k, const tkg_call *c, void *out, void **kc, void **vc);

#endif
