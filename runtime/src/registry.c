/* registry.c: kernel name -> kernel, filled by the JIT or the AOT library, read without locks
 * (also while another thread adds). Also owns the libtcc states whose code the kernels live in. */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/kgen.h"
#include "registry.h"

/* Kernels live in chunks that never move: chunk c holds CHUNK0 << c entries, so a pointer a
 * lookup returned stays valid while other threads add, and 28 chunks hold more than the
 * int count can number. Adders serialize on `lock` and publish each entry by a release store of
 * `count`; a lookup loads `count` with acquire and reads only the entries below it, without
 * a lock (and entries never change once published). */
enum { CHUNK0 = 16, NCHUNKS = 28 };

struct kg_registry {
    kg_kernel *chunk[NCHUNKS];
    _Atomic int count;
    pthread_mutex_t lock;  /* adders, the owned list and the error message */
    void **owned;          /* libtcc states (or other code holders) freed with the registry */
    void (**owned_free)(void *);
    int nowned;
    char error[1024];
};

/* Entry i: chunk c = floor(log2(i / CHUNK0 + 1)), which starts at CHUNK0 * (2^c - 1). */
static kg_kernel *slot(const kg_registry *reg, int i)
{
    unsigned long q = (unsigned long)i / CHUNK0 + 1;
    int c = (int)(8 * sizeof q - 1) - __builtin_clzl(q);
    return &reg->chunk[c][i - CHUNK0 * ((1L << c) - 1)];
}

kg_registry *kg_registry_new(void)
{
    kg_registry *reg = calloc(1, sizeof(kg_registry));
    if (reg && pthread_mutex_init(&reg->lock, NULL) != 0) {
        free(reg);
        return NULL;
    }
    return reg;
}

static void free_strings(kg_kernel *k)
{
    free((char *)k->name);
    free((char *)k->family);
    free((char *)k->problem);
}

void kg_registry_free(kg_registry *reg)
{
    if (!reg)
        return;
    int n = atomic_load(&reg->count);
    for (int i = 0; i < n; i++)
        free_strings(slot(reg, i));
    for (int i = 0; i < reg->nowned; i++)
        reg->owned_free[i](reg->owned[i]);
    for (int c = 0; c < NCHUNKS; c++)
        free(reg->chunk[c]);
    free(reg->owned);
    free(reg->owned_free);
    pthread_mutex_destroy(&reg->lock);
    free(reg);
}

const char *kg_registry_error(const kg_registry *reg)
{
    return reg->error;
}

/* The message is written under the lock, so two threads failing at once do not interleave
 * their bytes (kgen.h says which thread may read it). */
int kgr_fail(kg_registry *reg, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&reg->lock);
    vsnprintf(reg->error, sizeof reg->error, fmt, ap);
    pthread_mutex_unlock(&reg->lock);
    va_end(ap);
    return status;
}

static int own_locked(kg_registry *reg, void *p, void (*release)(void *))
{
    void **o = realloc(reg->owned, (size_t)(reg->nowned + 1) * sizeof *o);
    if (!o)
        return KG_ENOMEM;
    reg->owned = o;
    void (**f)(void *) = realloc(reg->owned_free, (size_t)(reg->nowned + 1) * sizeof *f);
    if (!f)
        return KG_ENOMEM;
    reg->owned_free = f;
    reg->owned[reg->nowned] = p;
    reg->owned_free[reg->nowned] = release;
    reg->nowned++;
    return KG_OK;
}

int kgr_own(kg_registry *reg, void *p, void (*release)(void *))
{
    pthread_mutex_lock(&reg->lock);
    int rc = own_locked(reg, p, release);
    pthread_mutex_unlock(&reg->lock);
    return rc;
}

int kgr_add_unit(kg_registry *reg, void *unit, kgr_lookup *lookup, void (*release)(void *),
                 int n, const kg_kernel_info *info, const char *const *labels, int *owned)
{
    void (**fns)(void) = calloc((size_t)n + 1, sizeof *fns);
    kg_kernel_v **calls = calloc((size_t)n + 1, sizeof *calls);
    int rc = fns && calls ? KG_OK : kgr_fail(reg, KG_ENOMEM, "out of memory");
    *owned = 0;
    for (int i = 0; rc == KG_OK && i < n; i++) {
        char vname[512];
        snprintf(vname, sizeof vname, "%s__v", info[i].name);
        void *fn = lookup(unit, info[i].name), *call = lookup(unit, vname);
        if (!fn || !call)
            rc = kgr_fail(reg, KG_ECOMPILE, "%s: does not define %s and %s", labels[i],
                          info[i].name, vname);
        /* object pointer to function pointer, as POSIX allows for dlsym */
        memcpy(&fns[i], &fn, sizeof fns[i]);
        memcpy(&calls[i], &call, sizeof calls[i]);
    }
    if (rc == KG_OK && (rc = kgr_own(reg, unit, release)) == KG_OK)
        *owned = 1;
    for (int i = 0; rc == KG_OK && i < n; i++)
        rc = kg_registry_add(reg, &info[i], fns[i], calls[i]);
    free(fns);
    free(calls);
    return rc;
}

/* Linear search over the published entries: registries hold tens of kernels and lookups
 * happen once per kernel at start-up, after which callers keep the pointer. */
static kg_kernel *find(const kg_registry *reg, const char *name)
{
    int n = atomic_load_explicit(&reg->count, memory_order_acquire);
    for (int i = 0; i < n; i++) {
        kg_kernel *k = slot(reg, i);
        if (strcmp(k->name, name) == 0)
            return k;
    }
    return NULL;
}

/* Fills the next entry and publishes it; called with the lock held. */
static int add_locked(kg_registry *reg, const kg_kernel_info *info, void (*fn)(void),
                      kg_kernel_v *call, char *why, size_t whylen)
{
    kg_kernel *old = find(reg, info->name);
    if (old) {
        if (old->fn == fn)
            return KG_OK;
        snprintf(why, whylen, "kernel %s is already registered with other code", info->name);
        return KG_ESPEC;
    }
    int n = atomic_load_explicit(&reg->count, memory_order_relaxed);
    unsigned long q = (unsigned long)n / CHUNK0 + 1;
    int c = (int)(8 * sizeof q - 1) - __builtin_clzl(q);
    if (c >= NCHUNKS || n == __INT_MAX__) {
        snprintf(why, whylen, "the registry is full");
        return KG_ENOMEM;
    }
    if (!reg->chunk[c] && !(reg->chunk[c] = calloc((size_t)CHUNK0 << c, sizeof(kg_kernel)))) {
        snprintf(why, whylen, "out of memory");
        return KG_ENOMEM;
    }
    kg_kernel *k = slot(reg, n);
    k->name = strdup(info->name);
    k->family = strdup(info->family ? info->family : "");
    k->problem = strdup(info->problem ? info->problem : "");
    if (!k->name || !k->family || !k->problem) {
        free_strings(k);
        snprintf(why, whylen, "out of memory");
        return KG_ENOMEM;
    }
    k->fn = fn;
    k->call = call;
    k->flops = info->flops;
    k->bytes_read = info->bytes_read;
    k->bytes_written = info->bytes_written;
    atomic_store_explicit(&reg->count, n + 1, memory_order_release);
    return KG_OK;
}

int kg_registry_add(kg_registry *reg, const kg_kernel_info *info, void (*fn)(void),
                    kg_kernel_v *call)
{
    char why[sizeof reg->error];
    pthread_mutex_lock(&reg->lock);
    int rc = add_locked(reg, info, fn, call, why, sizeof why);
    pthread_mutex_unlock(&reg->lock);
    return rc == KG_OK ? KG_OK : kgr_fail(reg, rc, "%s", why);
}

const kg_kernel *kg_registry_find(kg_registry *reg, const char *name)
{
    kg_kernel *k = find(reg, name);
    if (!k)
        kgr_fail(reg, KG_ENOTFOUND, "kernel %s is not in the registry", name);
    return k;
}

int kg_registry_count(const kg_registry *reg)
{
    return atomic_load_explicit(&reg->count, memory_order_acquire);
}

const kg_kernel *kg_registry_at(const kg_registry *reg, int i)
{
    return i >= 0 && i < kg_registry_count(reg) ? slot(reg, i) : NULL;
}
