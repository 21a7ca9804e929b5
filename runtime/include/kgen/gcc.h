/* kgen/gcc.h: generated kernels built by gcc at run time (kg_gcc_ API): the same sources the
 * JIT takes, compiled with the flags of the AOT library into one shared object per call, cached
 * on disk, loaded with dlopen and registered like JIT-compiled kernels.
 *
 * The shared object leaves the runtime's primitives (kgp_*) undefined and binds them from the
 * executable that loads it, so that executable must export its symbols: link it with
 * -rdynamic (CMake: set_target_properties(prog PROPERTIES ENABLE_EXPORTS ON)). Without that,
 * kg_gcc_compile fails with KG_ECOMPILE and says so. */
#ifndef KGEN_GCC_H
#define KGEN_GCC_H

#include "kgen/kgen.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kg_gcc_options {
    /* Where built objects are kept; NULL: $KGEN_CACHE_DIR, else $XDG_CACHE_HOME/kgen, else
     * $HOME/.cache/kgen. Created if missing. */
    const char *cache_dir;
    /* The compiler to run; NULL: $KGEN_CC, else "gcc". */
    const char *cc;
} kg_gcc_options;

/* Compiles n generated sources with one compiler run into one shared object and registers
 * their kernels, like kg_jit_compile: each source is prefixed with kg_abi_text and a #line
 * naming labels[i], so no include folder is needed and a compile error reads
 * "generated/<spec>/<kernel>.c:LINE:COL: error: ...". The flags are the AOT library's
 * (-std=gnu11 -O2 -ffp-contract=off, no fast-math) plus -fPIC -shared, so outputs are
 * bit-identical to the JIT's and to libkgen_aot's. The object is cached under a hash of the
 * sources, labels, flags and the compiler's version: a second call with the same input loads
 * it without compiling. If seconds is not NULL, seconds[0 .. n) are 0 (one run builds all the
 * sources) and seconds[n] receives the time of the build (if any) and the load.
 * Returns KG_OK, or KG_ECOMPILE with the compiler's first error line (or why it could not
 * run or load), KG_EIO if the cache folder cannot be written, KG_ENOMEM. */
int kg_gcc_compile(kg_registry *reg, int n, const kg_kernel_info *info,
                   const char *const *labels, const char *const *sources, double *seconds);

/* kg_gcc_compile with options (NULL: the defaults). */
int kg_gcc_compile_with(kg_registry *reg, const kg_gcc_options *opt, int n,
                        const kg_kernel_info *info, const char *const *labels,
                        const char *const *sources, double *seconds);

#ifdef __cplusplus
}
#endif
#endif /* KGEN_GCC_H */
