/* registry.c: kernel name -> kernel, filled by the JIT or the AOT library at start-up and read
 * without locks afterwards. Also owns the libtcc states whose code the kernels live in. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/kgen.h"
#include "registry.h"

struct kg_registry {
    kg_kernel *items;
    int count, cap;
    void **owned;          /* libtcc states (or other code holders) freed with the registry */
    void (**owned_free)(void *);
    int nowned;
    char error[1024];
};

kg_registry *kg_registry_new(void)
{
    return calloc(1, sizeof(kg_registry));
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
    for (int i = 0; i < reg->count; i++)
        free_strings(&reg->items[i]);
    for (int i = 0; i < reg->nowned; i++)
        reg->owned_free[i](reg->owned[i]);
    free(reg->items);
    free(reg->owned);
    free(reg->owned_free);
    free(reg);
}

const char *kg_registry_error(const kg_registry *reg)
{
    return reg->error;
}

int kgr_fail(kg_registry *reg, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reg->error, sizeof reg->error, fmt, ap);
    va_end(ap);
    return status;
}

int kgr_own(kg_registry *reg, void *p, void (*release)(void *))
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

/* Linear search: registries hold tens of kernels and lookups happen once per kernel at
 * start-up, after which callers keep the pointer. */
static kg_kernel *find(kg_registry *reg, const char *name)
{
    for (int i = 0; i < reg->count; i++)
        if (strcmp(reg->items[i].name, name) == 0)
            return &reg->items[i];
    return NULL;
}

int kg_registry_add(kg_registry *reg, const kg_kernel_info *info, void (*fn)(void),
                    kg_kernel_v *call)
{
    kg_kernel *old = find(reg, info->name);
    if (old) {
        if (old->fn == fn)
            return KG_OK;
        return kgr_fail(reg, KG_ESPEC, "kernel %s is already registered with other code",
                        info->name);
    }
    if (reg->count == reg->cap) {
        int cap = reg->cap ? 2 * reg->cap : 16;
        kg_kernel *items = realloc(reg->items, (size_t)cap * sizeof *items);
        if (!items)
            return kgr_fail(reg, KG_ENOMEM, "out of memory");
        reg->items = items;
        reg->cap = cap;
    }
    kg_kernel *k = &reg->items[reg->count];
    k->name = strdup(info->name);
    k->family = strdup(info->family ? info->family : "");
    k->problem = strdup(info->problem ? info->problem : "");
    if (!k->name || !k->family || !k->problem) {
        free_strings(k);
        return kgr_fail(reg, KG_ENOMEM, "out of memory");
    }
    k->fn = fn;
    k->call = call;
    k->flops = info->flops;
    k->bytes_read = info->bytes_read;
    k->bytes_written = info->bytes_written;
    reg->count++;
    return KG_OK;
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
    return reg->count;
}

const kg_kernel *kg_registry_at(const kg_registry *reg, int i)
{
    return i >= 0 && i < reg->count ? &reg->items[i] : NULL;
}
