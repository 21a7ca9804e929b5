/* jit.c: generated C to callable kernels in memory, with libtcc. Each source is compiled as its
 * own translation unit after the ABI text, under a #line that names the reviewed file, so a
 * compile error reads "generated/<spec>/<kernel>.c:LINE: error: ...". */
#include <libtcc.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kgen/ckd.h"
#include "kgen/kgen.h"
#include "registry.h"

/* libtcc keeps global state: compiles are serialized process-wide. */
static pthread_mutex_t jit_lock = PTHREAD_MUTEX_INITIALIZER;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Debian's 0.9.27 snapshot takes (state, address); newer tinycc takes only the state. */
static int relocate(TCCState *s)
{
#ifdef TCC_RELOCATE_AUTO
    return tcc_relocate(s, TCC_RELOCATE_AUTO);
#else
    return tcc_relocate(s);
#endif
}

/* Keeps the first error (warnings are not failures); tcc already prefixes file:line. */
static void on_message(void *opaque, const char *msg)
{
    char *first = opaque;
    if (first[0] == '\0' && !strstr(msg, "warning:"))
        snprintf(first, 1024, "%s", msg);
}

static void release_state(void *s)
{
    tcc_delete(s);
}

/* Everything generated code may call: the primitives in force, the parallel-for, scratch, the
 * threaded matmul and the weight check, the collectives, and the few libc/libm functions that
 * tcc itself may emit calls to or that abi.h declares. Linking with -nostdlib and handing these over means
 * no libtcc1.a or libc path can break the JIT. */
static void add_symbols(TCCState *s)
{
    const kgr_symbol *syms;
    int n = kgr_prim_symbols(&syms);
    for (int i = 0; i < n; i++)
        tcc_add_symbol(s, syms[i].name, syms[i].addr);
    tcc_add_symbol(s, "kgp_parallel_for", (void *)kgp_parallel_for);
    tcc_add_symbol(s, "kgp_scratch", (void *)kgp_scratch);
    tcc_add_symbol(s, "kgp_matmul_f32", (void *)kgp_matmul_f32);
    tcc_add_symbol(s, "kgp_matmul_bf16", (void *)kgp_matmul_bf16);
    tcc_add_symbol(s, "kgp_wt_is", (void *)kgp_wt_is);
    tcc_add_symbol(s, "kgp_pack_act_bytes", (void *)kgp_pack_act_bytes);
    tcc_add_symbol(s, "kgp_pack_act_f32", (void *)kgp_pack_act_f32);
    tcc_add_symbol(s, "kgp_coll", (void *)kgp_coll);
    tcc_add_symbol(s, "kgp_coll_rank", (void *)kgp_coll_rank);
    tcc_add_symbol(s, "kgp_coll_size", (void *)kgp_coll_size);
    tcc_add_symbol(s, "kgp_all_reduce", (void *)kgp_all_reduce);
    tcc_add_symbol(s, "kgp_all_gather", (void *)kgp_all_gather);
    tcc_add_symbol(s, "kgp_barrier", (void *)kgp_barrier);
    tcc_add_symbol(s, "sqrtf", (void *)sqrtf);
    tcc_add_symbol(s, "expf", (void *)expf);
    tcc_add_symbol(s, "logf", (void *)logf);
    tcc_add_symbol(s, "tanhf", (void *)tanhf);
    tcc_add_symbol(s, "erff", (void *)erff);
    tcc_add_symbol(s, "sinf", (void *)sinf);
    tcc_add_symbol(s, "cosf", (void *)cosf);
    tcc_add_symbol(s, "memcpy", (void *)memcpy);
    tcc_add_symbol(s, "memmove", (void *)memmove);
    tcc_add_symbol(s, "memset", (void *)memset);
}

static char *with_prelude(const char *label, const char *src)
{
    size_t n;
    if (kg_ckd_add(&n, strlen(kg_abi_text) + strlen(label) + 32, strlen(src)))
        return NULL; /* a source as large as the address space: out of memory */
    char *text = malloc(n);
    if (text)
        snprintf(text, n, "%s\n#line 1 \"%s\"\n%s", kg_abi_text, label, src);
    return text;
}

static void *lookup(void *s, const char *name)
{
    return tcc_get_symbol(s, name);
}

static int compile_locked(kg_registry *reg, TCCState *s, int n, const kg_kernel_info *info,
                          const char *const *labels, const char *const *sources,
                          double *seconds, char *first, int *owned)
{
    tcc_set_error_func(s, first, on_message);
    tcc_set_options(s, "-nostdlib");
    tcc_set_output_type(s, TCC_OUTPUT_MEMORY);
    for (int i = 0; i < n; i++) {
        char *text = with_prelude(labels[i], sources[i]);
        if (!text)
            return kgr_fail(reg, KG_ENOMEM, "out of memory");
        double t0 = now();
        int rc = tcc_compile_string(s, text);
        free(text);
        if (seconds)
            seconds[i] = now() - t0;
        if (rc < 0)
            return kgr_fail(reg, KG_ECOMPILE, "%s", first[0] ? first : labels[i]);
    }
    add_symbols(s);
    double t0 = now();
    if (relocate(s) < 0)
        return kgr_fail(reg, KG_ECOMPILE, "JIT link: %s", first[0] ? first : "failed");
    if (seconds)
        seconds[n] = now() - t0;
    return kgr_add_unit(reg, s, lookup, release_state, n, info, labels, owned);
}

int kg_jit_compile(kg_registry *reg, int n, const kg_kernel_info *info,
                   const char *const *labels, const char *const *sources, double *seconds)
{
    char first[1024] = "";
    int owned = 0;
    pthread_mutex_lock(&jit_lock);
    TCCState *s = tcc_new();
    int rc = s ? compile_locked(reg, s, n, info, labels, sources, seconds, first, &owned)
               : kgr_fail(reg, KG_ENOMEM, "tcc_new failed");
    if (s && !owned)
        tcc_delete(s);
    pthread_mutex_unlock(&jit_lock);
    return rc;
}
