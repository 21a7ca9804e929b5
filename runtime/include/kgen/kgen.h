/* kgen/kgen.h: the kgen runtime's public API. A program fills a registry with generated kernels
 * (JIT-compiled from their C text with libtcc, or linked ahead of time), looks kernels up by
 * name once, and calls them through their family's typed signature (kgen/kernels.h). */
#ifndef KGEN_H
#define KGEN_H

#include <stddef.h>
#include "kgen/abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- kernels ------------------------------------------------------------------------------ */

/* Every kernel also has a uniform entry point: tensors in signature order, per-call sizes. */
typedef int kg_kernel_v(void *const *t, const long *n);

/* What the registry knows of one kernel; strings live as long as the registry. */
typedef struct kg_kernel {
    const char *name;     /* symbol, e.g. kg_rmsnorm_quant_bf16_e4m3__h4096_rms_row__avx512 */
    const char *family;   /* e.g. rmsnorm_quant; selects the typed signature */
    const char *problem;  /* canonical "family:key=value,..." string */
    void (*fn)(void);     /* the kernel; cast to its family's kg_<family>_fn * */
    kg_kernel_v *call;    /* the uniform entry point */
    double flops, bytes_read, bytes_written;  /* per call at the spec's nominal sizes */
} kg_kernel;

/* What a kernel is before it is compiled (the fields of a kernels.inc line). */
typedef struct kg_kernel_info {
    const char *family, *name, *problem;
    double flops, bytes_read, bytes_written;
} kg_kernel_info;

/* ---- the registry ----------------------------------------------------------------------- */

typedef struct kg_registry kg_registry;

kg_registry *kg_registry_new(void);
void kg_registry_free(kg_registry *reg);

/* The message of the last failed call on reg (one line, names file:line where known). */
const char *kg_registry_error(const kg_registry *reg);

/* Adds an already compiled kernel (the AOT library does this). Adding a name twice keeps the
 * first and returns KG_OK if it is the same function, KG_ESPEC otherwise. */
int kg_registry_add(kg_registry *reg, const kg_kernel_info *info, void (*fn)(void),
                    kg_kernel_v *call);

/* Looks a kernel up; NULL (and KG_ENOTFOUND in kg_registry_error) if absent. Lookups after
 * start-up are plain reads: call them from any thread once adding is done. */
const kg_kernel *kg_registry_find(kg_registry *reg, const char *name);

int kg_registry_count(const kg_registry *reg);
const kg_kernel *kg_registry_at(const kg_registry *reg, int i);

/* ---- JIT (libtcc) ------------------------------------------------------------------------ */

/* Compiles n generated sources in one libtcc state and registers their kernels. labels[i] is
 * the file name compile errors are reported against (e.g. "generated/tiny/kg_....c").
 * If seconds is not NULL, seconds[i] receives the compile time of source i and seconds[n]
 * the time of the final link. Returns KG_OK or KG_ECOMPILE with "file:line: message". */
int kg_jit_compile(kg_registry *reg, int n, const kg_kernel_info *info,
                   const char *const *labels, const char *const *sources, double *seconds);

/* JIT-compiles every kernel listed in DIR/kernels.inc from DIR/<symbol>.c. */
int kg_jit_load_dir(kg_registry *reg, const char *dir, double *seconds_total);

/* The text the JIT puts before every generated file (kgen/abi.h). */
extern const char kg_abi_text[];

/* ---- primitives and threads ------------------------------------------------------------- */

/* Chooses the primitive implementations: "scalar", "avx2", "avx512", or NULL for the best
 * this CPU has (the KGEN_ISA environment variable, if set, overrides NULL). Called once at
 * start-up automatically; call it before any JIT compile to change the choice, since JIT code
 * binds the implementation in force when it is compiled. Returns KG_ESPEC for an ISA this CPU
 * lacks or that the runtime was built without. */
int kg_prim_select(const char *isa);
const char *kg_prim_isa(void);

/* The address of primitive "kgp_NAME" as currently selected, or NULL. */
void *kg_prim_lookup(const char *symbol);

/* Threads used by kgp_parallel_for (default: OpenMP's default, usually one per core). */
void kg_set_threads(int n);
int kg_threads(void);

/* ---- problem strings --------------------------------------------------------------------- */

/* Reads key `key` of a "family:key=value,..." string. Return 1 if found. */
int kg_problem_long(const char *problem, const char *key, long *value);
int kg_problem_double(const char *problem, const char *key, double *value);
int kg_problem_str(const char *problem, const char *key, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* KGEN_H */
