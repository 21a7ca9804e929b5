/* kernel_args.h: a kernel's seeded argument sets (kgargs_ prefix), what `kgen run`, `bench`,
 * `list`, `exec` and the gcc-vs-JIT test share: the per-call sizes for a token count, an
 * argument as a buffer description, and one buffer per argument at the nominal shapes, inputs
 * filled with seeded values, as the manifest (kgen/manifest.h) describes the kernel. */
#ifndef KGEN_KERNEL_ARGS_H
#define KGEN_KERNEL_ARGS_H

#include <stddef.h>

#include "host.h"
#include "kgen/manifest.h"

/* The per-call sizes of a run at `tokens` tokens (0: the nominal sizes): batch axes 1, sequence
 * axes tokens (kgen/manifest.h). Buffers are sized for the nominal sizes, so the run fits when
 * no used argument is bigger at n than at the nominal sizes, and the kernel has a token axis;
 * returns -1 if not. */
int kgargs_call_sizes(const kg_manifest_kernel *k, long tokens, long *n);

/* Argument i of k as a buffer description at per-call sizes n. */
void kgargs_arg_at(const kg_manifest_kernel *k, int i, const long *n, kgg_arg *a);

/* The bytes one set of k's arguments takes at the nominal sizes into *total; KG_OK, or
 * KG_ESHAPE with a message in err when that passes the cap on argument memory (tensor.h:
 * kgbuf_budget), KG_ESPEC when the cap's variable is malformed. */
int kgargs_bytes(const kg_manifest_kernel *k, size_t *total, char *err, size_t errlen);
/* kgargs_bytes for kernels sel[0 .. n) of m (every kernel when sel is NULL), so a command
 * refuses a spec before it compiles or probes anything; the first refusal's status. */
int kgargs_check(const kg_manifest *m, const int *sel, int n, char *err, size_t errlen);
/* Allocates every used argument of k at its nominal shape and fills the inputs with seeded
 * values (weights packed); t[] gets one buffer per argument (NULL where unused). Returns KG_OK,
 * or with a message in err (the buffers allocated so far freed) kgargs_bytes' refusal before
 * anything is allocated, or KG_ENOMEM. */
int kgargs_new(const kg_manifest_kernel *k, void **t, char *err, size_t errlen);
void kgargs_free(const kg_manifest_kernel *k, void **t);

#endif
