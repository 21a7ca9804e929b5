/* parallel.c: kgp_parallel_for on OpenMP threads. One contiguous range per thread (static
 * split) so threads never write next to each other except at the range edges. */
#include <omp.h>
#include <stdatomic.h>

#include "kgen/kgen.h"

/* 0: OpenMP's default. Atomic because any thread may set it while kernels on others read it;
 * relaxed is enough: it guards no other data, a call sees the old count or the new one. */
static _Atomic int nthreads;

int kg_set_threads(int n)
{
    if (n < 0 || n > KG_MAX_THREADS)
        return KG_EARG;
    atomic_store_explicit(&nthreads, n, memory_order_relaxed);
    return KG_OK;
}

int kg_threads(void)
{
    int n = atomic_load_explicit(&nthreads, memory_order_relaxed);
    if (n > 0)
        return n;
    n = omp_get_max_threads(); /* OMP_NUM_THREADS may ask for any count: bounded here too */
    return n < 1 ? 1 : n > KG_MAX_THREADS ? KG_MAX_THREADS : n;
}

void kgp_parallel_for(kg_range_fn *fn, void *ctx, long n, long grain)
{
    if (n <= 0)
        return;
    if (grain < 1)
        grain = 1;
    long tasks = n / grain; /* each at least grain long */
    int t = kg_threads();
    if (tasks < t)
        t = (int)tasks;
    /* one thread, or already inside a parallel region: run inline, no team start */
    if (t <= 1 || omp_in_parallel()) {
        fn(ctx, 0, n);
        return;
    }
#pragma omp parallel num_threads(t)
    {
        long i = omp_get_thread_num(), nt = omp_get_num_threads();
        long b = n * i / nt, e = n * (i + 1) / nt;
        if (b < e)
            fn(ctx, b, e);
    }
}
