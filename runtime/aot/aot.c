/* aot.c: the kernels of every bundled spec, compiled by gcc into this library; registers them
 * by spec name. The list of specs comes from the build (aot_specs.inc). */
#include <string.h>

#include "kgen/aot.h"
#include "registry.h"

#define KG_AOT_SPEC(spec) int kg_aot_register_##spec(kg_registry *reg);
#include "aot_specs.inc"
#undef KG_AOT_SPEC

static const struct { const char *name; int (*add)(kg_registry *); } specs[] = {
#define KG_AOT_SPEC(spec) { #spec, kg_aot_register_##spec },
#include "aot_specs.inc"
#undef KG_AOT_SPEC
};

int kg_aot_register(kg_registry *reg, const char *spec)
{
    int found = 0;
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        if (spec && strcmp(spec, specs[i].name) != 0)
            continue;
        found = 1;
        int rc = specs[i].add(reg);
        if (rc != KG_OK)
            return rc;
    }
    if (!found)
        return kgr_fail(reg, KG_ENOTFOUND, "spec %s has no AOT-compiled kernels in this build",
                        spec);
    return KG_OK;
}

int kg_aot_spec_count(void)
{
    return (int)(sizeof specs / sizeof specs[0]);
}

const char *kg_aot_spec_name(int i)
{
    return i >= 0 && i < kg_aot_spec_count() ? specs[i].name : NULL;
}
