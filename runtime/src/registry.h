/* registry.h: the registry's internals shared by the runtime's own modules (kgr_ prefix). */
#ifndef KGEN_RT_REGISTRY_H
#define KGEN_RT_REGISTRY_H

#include "kgen/kgen.h"

/* Records a one-line error on reg and returns status (printf-style message). */
int kgr_fail(kg_registry *reg, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Hands reg an object to release with `release` when the registry is freed. */
int kgr_own(kg_registry *reg, void *p, void (*release)(void *));

/* Looks a symbol up in a compiled unit (a libtcc state, a dlopen handle). */
typedef void *kgr_lookup(void *unit, const char *name);

/* Registers the n kernels of a compiled unit, shared by the JIT and the gcc loader: looks every
 * kernel up (NAME and NAME__v) before adding any, so a failure leaves no entry behind. Once the
 * lookups succeed the registry owns unit (release frees it with the registry) and *owned is
 * set; while *owned is 0 the caller still owns unit. */
int kgr_add_unit(kg_registry *reg, void *unit, kgr_lookup *lookup, void (*release)(void *),
                 int n, const kg_kernel_info *info, const char *const *labels, int *owned);

/* The ABI of the primitives: kgp_ symbol -> implementation in force, for the JIT. */
typedef struct kgr_symbol { const char *name; void *addr; } kgr_symbol;
int kgr_prim_symbols(const kgr_symbol **syms);

#endif
