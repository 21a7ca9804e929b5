/* kgen/aot.h: the kernels of the bundled specs, compiled ahead of time by gcc (libkgen_aot). */
#ifndef KGEN_AOT_H
#define KGEN_AOT_H

#include "kgen/kgen.h"

/* Registers the AOT kernels of `spec` (its name, e.g. "llama3_8b"), or of every bundled spec
 * when spec is NULL. KG_ENOTFOUND if this build has no such spec. */
int kg_aot_register(kg_registry *reg, const char *spec);
int kg_aot_spec_count(void);
const char *kg_aot_spec_name(int i);

#endif
