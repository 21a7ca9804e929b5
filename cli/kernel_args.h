/* kernel_args.h: what `kgen run`, `bench`, `list` and `exec` share (kgc_ prefix): a spec's
 * kernels as its manifest describes them (generated in memory from SPEC.lua, or read from a
 * generated folder), the per-call sizes for a token count, a kernel's seeded argument set, and
 * a monotonic clock. */
#ifndef KGEN_KERNEL_ARGS_H
#define KGEN_KERNEL_ARGS_H

#include <stddef.h>

#include "host.h"
#include "kgen/manifest.h"

/* Seconds on the monotonic clock. */
double kgc_now(void);

/* A spec's kernels: the manifest, and (if asked for) each kernel's C text and the file name
 * compile errors are reported against, in manifest order. */
typedef struct kgc_kernels {
    kg_manifest *m;
    char **text, **label;
    double seconds;      /* how long generating (or reading) took */
    int generated;       /* 1: generated in memory from a spec; 0: read from a folder */
} kgc_kernels;

/* SOURCE is a spec file (generated in memory) or a generated folder (its manifest.json and,
 * with texts, the kernel files it lists). Returns KGC_OK or an exit code, the error printed. */
int kgc_kernels_load(const char *source, int texts, kgc_kernels *ks);
void kgc_kernels_free(kgc_kernels *ks);

/* The per-call sizes of a run at `tokens` tokens (0: the nominal sizes): batch axes 1, sequence
 * axes tokens (kgen/manifest.h). Buffers are sized for the nominal sizes, so the run fits when
 * no used argument is bigger at n than at the nominal sizes, and the kernel has a token axis;
 * returns -1 if not. */
int kgc_call_sizes(const kg_manifest_kernel *k, long tokens, long *n);

/* Argument i of k as a buffer description at per-call sizes n. */
void kgc_arg_at(const kg_manifest_kernel *k, int i, const long *n, kgg_arg *a);

/* Allocates every used argument of k at its nominal shape and fills the inputs with seeded
 * values (weights packed); t[] gets one buffer per argument (NULL where unused). Returns 0, or
 * -1 with a message in err (the buffers allocated so far are freed). */
int kgc_args_new(const kg_manifest_kernel *k, void **t, char *err, size_t errlen);
void kgc_args_free(const kg_manifest_kernel *k, void **t);

#endif
