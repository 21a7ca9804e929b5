/* registry.h: the registry's internals shared by the runtime's own modules (kgr_ prefix). */
#ifndef KGEN_RT_REGISTRY_H
#define KGEN_RT_REGISTRY_H

#include "kgen/kgen.h"

/* Records a one-line error on reg and returns status (printf-style message). */
int kgr_fail(kg_registry *reg, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Hands reg an object to release with `release` when the registry is freed. */
int kgr_own(kg_registry *reg, void *p, void (*release)(void *));

/* The ABI of the primitives: kgp_ symbol -> implementation in force, for the JIT. */
typedef struct kgr_symbol { const char *name; void *addr; } kgr_symbol;
int kgr_prim_symbols(const kgr_symbol **syms);

#endif
