/* kernel_args.h: a kernel's seeded argument sets (kgargs_ prefix), what `kgen run`, `kgen bench`
 * and the gcc-vs-JIT test share: the per-call sizes for a token count, and one buffer per
 * argument at the nominal shapes, inputs filled with seeded values. */
#ifndef KGEN_KERNEL_ARGS_H
#define KGEN_KERNEL_ARGS_H

#include <stddef.h>

#include "host.h"

/* The per-call sizes for a run at `tokens` tokens (0: the nominal sizes): a token count (rows,
 * T) becomes tokens; a [B, S] pair becomes B = 1, S = tokens. Buffers are sized for the nominal
 * sizes, so tokens may not exceed the nominal token count; returns -1 if it does. */
int kgargs_call_sizes(const kgg_kernel *d, long tokens, long *n);

/* The tokens a call at sizes n processes: its rows or T, else B * S; 0 if it has neither. */
long kgargs_call_tokens(const kgg_kernel *d, const long *n);

/* Allocates every used argument of d at its nominal shape and fills the inputs with seeded
 * values (weights packed); t[] gets one buffer per argument (NULL where unused). Returns 0, or
 * -1 with a message in err (the buffers allocated so far are freed). */
int kgargs_new(const kgg_kernel *d, void **t, char *err, size_t errlen);
void kgargs_free(const kgg_kernel *d, void **t);

#endif
