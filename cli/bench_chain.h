/* bench_chain.h: a megakernel timed against the chain of its single-op kernels (kgbc_ prefix),
 * for kgen bench. The generator names the chain (its family's F.chain: per layer the attention
 * block's calls, then the MLP's); each call gets its own seeded arguments at the kernel's nominal
 * sizes (a layer's own weights and caches, as the megakernel reads them), and one timed call runs
 * them all in order. The residual adds between them (one row of H per token) are not timed. */
#ifndef KGEN_BENCH_CHAIN_H
#define KGEN_BENCH_CHAIN_H

#include <stddef.h>

#include "kgen_bench.h"

/* The megakernel itself, to time the chain against in alternating samples. */
typedef struct kgbc_peer {
    kgb_call_fn *fn;
    void *ctx;
} kgbc_peer;

typedef struct kgbc_times {
    double seconds, pace; /* kgb_time's median seconds of one pass of the chain, and its pace */
    int calls;            /* kernel calls of one pass */
    /* with a peer, kgb_time_ab's: the megakernel's and the chain's medians, and the median of
     * chain / megakernel over alternating samples */
    double ab_mega, ab_chain, ab_ratio;
} kgbc_times;

/* Whether the family of `problem` has a chain (a megakernel's). */
int kgbc_has(const char *problem);

/* Times the chain of `problem` (a megakernel's canonical problem string) into *out, compiled
 * with gcc when aot, on `sets` sets of arguments used in turn (at most 16; as many as the
 * megakernel was timed on, so both find their data equally cold); with mega (else NULL), also
 * against it in alternating samples. Returns KG_OK; KG_ENOTFOUND if the family has no chain;
 * else a KG_* status with the reason in err (KG_ESHAPE: its arguments pass the cap on argument
 * memory). */
int kgbc_time(const kgb_options *o, const char *problem, int aot, int sets,
              const kgbc_peer *mega, kgbc_times *out, char *err, size_t errlen);

#endif
