/* blas.c: OpenBLAS sgemm/sgemv on a kernel's GEMM shapes. OpenBLAS is loaded with dlopen when a
 * benchmark first needs it, not linked: it reads OPENBLAS_CORETYPE while it loads (a forced
 * Haswell core halves its sgemm), so the variable is removed from the environment just before,
 * and no other kgen command pays for its start-up and its thread pool. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h> /* the prototypes only; every call goes through dlsym */

#include "kgen_bench.h"

#ifndef KGB_OPENBLAS_LIB
#define KGB_OPENBLAS_LIB "libopenblas.so.0"
#endif

struct kgb_blas {
    __typeof__(&cblas_sgemm) sgemm;
    __typeof__(&cblas_sgemv) sgemv;
    char describe[256];
};

/* The library: the one pkg-config named at build time, else whatever the loader finds. */
static void *load(const char **path)
{
    static const char *const paths[] = { KGB_OPENBLAS_LIB, "libopenblas.so.0" };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        void *h = dlopen(paths[i], RTLD_NOW | RTLD_LOCAL);
        if (h) {
            *path = paths[i];
            return h;
        }
    }
    return NULL;
}

kgb_blas *kgb_blas_open(int threads, char *err, size_t errlen)
{
    /* too late to clear the variables if this process already has OpenBLAS loaded */
    void *early = dlopen(KGB_OPENBLAS_LIB, RTLD_NOW | RTLD_NOLOAD);
    const char *forced = getenv("OPENBLAS_CORETYPE");
    int stale = early && forced;
    if (early)
        dlclose(early);
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv("OPENBLAS_L2_SIZE");
    const char *path = NULL;
    void *h = load(&path);
    if (!h) {
        snprintf(err, errlen, "cannot load OpenBLAS (%s): %s", KGB_OPENBLAS_LIB, dlerror());
        return NULL;
    }
    kgb_blas *b = calloc(1, sizeof *b);
    __typeof__(&openblas_set_num_threads) set_threads = dlsym(h, "openblas_set_num_threads");
    __typeof__(&openblas_get_config) config = dlsym(h, "openblas_get_config");
    if (b) {
        b->sgemm = (__typeof__(&cblas_sgemm))dlsym(h, "cblas_sgemm");
        b->sgemv = (__typeof__(&cblas_sgemv))dlsym(h, "cblas_sgemv");
    }
    if (!b || !b->sgemm || !b->sgemv || !set_threads || !config) {
        snprintf(err, errlen, "%s: no cblas_sgemm, cblas_sgemv or openblas_set_num_threads",
                 path);
        free(b);
        return NULL; /* the library stays loaded: unloading a threaded BLAS is not safe */
    }
    set_threads(threads);
    snprintf(b->describe, sizeof b->describe, "%s, %d thread%s%s", config(), threads,
             threads == 1 ? "" : "s",
             stale ? " (loaded before OPENBLAS_CORETYPE could be cleared)" : "");
    return b;
}

const char *kgb_blas_describe(const kgb_blas *b)
{
    return b->describe;
}

void kgb_blas_close(kgb_blas *b)
{
    free(b);
}

/* ---- timing one GEMM ------------------------------------------------------------------------ */

typedef struct gemm_call {
    const kgb_blas *b;
    kgb_gemm g;
    float *A, *W, *C;
} gemm_call;

/* C[M, N] = A[M, K] W[K, N], row-major; for M == 1, y = W^T x, which reads W as stored. */
static int call_gemm(void *ctx)
{
    const gemm_call *c = ctx;
    int M = (int)c->g.M, K = (int)c->g.K, N = (int)c->g.N;
    if (M == 1)
        c->b->sgemv(CblasRowMajor, CblasTrans, K, N, 1.0f, c->W, N, c->A, 1, 0.0f, c->C, 1);
    else
        c->b->sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, c->A, K, c->W, N,
                    0.0f, c->C, N);
    return 0;
}

/* n floats of small values (no denormals, no overflow in any sum). */
static float *seeded(long n)
{
    float *x = malloc((size_t)n * sizeof *x);
    for (long i = 0; x && i < n; i++)
        x[i] = (float)((i * 7919) % 201 - 100) * 1e-3f;
    return x;
}

int kgb_blas_time(kgb_blas *b, const kgb_options *o, const kgb_result *r, double *seconds)
{
    kgb_options plain = *o;
    plain.reader = NULL; /* the ratio to OpenBLAS is of medians: no paired read */
    *seconds = 0;
    for (int i = 0; i < r->ngemm; i++) {
        gemm_call c = { b, r->gemm[i], NULL, NULL, NULL };
        long M = c.g.M, K = c.g.K, N = c.g.N;
        if (M < 1 || K < 1 || N < 1 || M > 1L << 30 || K > 1L << 30 || N > 1L << 30)
            return -1;
        c.A = seeded(M * K), c.W = seeded(K * N), c.C = calloc((size_t)(M * N), sizeof(float));
        double t = 0;
        int ok = c.A && c.W && c.C && kgb_time(&plain, call_gemm, &c, &t, NULL) == 0;
        free(c.A), free(c.W), free(c.C);
        if (!ok)
            return -1;
        *seconds += t;
    }
    return 0;
}
