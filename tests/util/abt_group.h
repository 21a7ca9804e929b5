/* tests/util/abt_group.h: a KV-data-parallel group (kvdp > 1) of attention_block_tkg calls on
 * threads as ranks (util/ranks.h), for the KVDP tests and the vector adapter's KVDP cases.
 *
 * A group of G ranks of B = G * bl sequences: rank r owns the caches of sequences r * bl ..
 * r * bl + bl - 1 and holds its own Q columns of W_qkv and its own W_out; all share X, cos, sin
 * and the KV head's K and V columns. Rank r's outputs must be the bits of the kvdp = 1 kernel on
 * rank r's whole problem (all B sequences, the caches of the group put together, rank r's heads
 * of the group's mask and sinks). */
#ifndef KGT_ABT_GROUP_H
#define KGT_ABT_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include "kgen/coll.h"
#include "kgen/kgen.h"
#include "ref/ref.h"
#include "util/abt_call.h"

enum { ABT_KVDP_MAX = 4 }; /* the largest KV-data-parallel group the tests run */

typedef struct abt_group {
    int G;
    long bl, P;                    /* sequences a rank; blocks in a rank's pool (block caches) */
    abt_call c;                    /* the whole problem, rank 0's weights */
    float *Wq[ABT_KVDP_MAX], *Wo[ABT_KVDP_MAX]; /* rank r's W_qkv [H, I] and W_out [N*D, H] */
    uint8_t *gmask;                /* [S_ctx, B, G*N, S]: the group's heads, rank-major */
    float *gsink;                  /* [G*N] */
} abt_group;

/* A random group of G ranks of bl sequences each on options o (dtype t). */
void abt_make_group(abt_group *g, const attn_block_ref_opts *o, kg_dtype t, int G, long bl,
                    unsigned long long seed);
void abt_group_free(abt_group *g);
/* Rank r's whole problem for the kvdp = 1 kernel (shallow: free its mask only). */
abt_call abt_whole_of(const abt_group *g, int r);
/* Where rank r's cache starts in the whole problem's: element offset. */
long abt_cache_offset(const abt_group *g, int r);
/* Rank r's call of the kvdp kernel (shallow: free its mask, idx and table): B all sequences,
 * its caches, indices, table and mask rows, the group's sinks. */
abt_call abt_rank_of(const abt_group *g, int r);
/* The problem strings of the group's kernels: kvdp = 1 and kvdp = G. */
void abt_group_problems(const abt_group *g, char *plain, char *kv, size_t len);

/* ---- running a group ------------------------------------------------------------------------- */

/* One group's KVDP call: per rank its call, buffers and the kernel's status. */
typedef struct abt_kvdp_run {
    const kg_kernel *k;
    int G;
    abt_call rc[ABT_KVDP_MAX];
    void *out[ABT_KVDP_MAX], *kc[ABT_KVDP_MAX], *vc[ABT_KVDP_MAX], *kt[ABT_KVDP_MAX];
    void *vt[ABT_KVDP_MAX];
    int status[ABT_KVDP_MAX];
} abt_kvdp_run;

/* The rank function (util/ranks.h): rank r of the abt_kvdp_run at arg runs its call. */
void abt_kvdp_rank(kg_coll *comm, int r, void *arg);
/* Kernel k's (kvdp = g->G) calls on the group, outputs started as build's fill (KGT_JIT,
 * KGT_AOT); abt_run_group also runs them (asserts the ranks' threads ran). */
void abt_prepare_group(abt_kvdp_run *a, const kg_kernel *k, const abt_group *g, int build);
void abt_run_group(abt_kvdp_run *a, const kg_kernel *k, const abt_group *g, int build);
void abt_run_free(abt_kvdp_run *a);

#endif
