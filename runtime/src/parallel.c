/* parallel.c: kgp_parallel_for on OpenMP threads. One contiguous range per thread (static
 * split) so threads never write next to each other except at the range edges. */
#include <omp.h>

#include "kgen/kgen.h"

static int nthreads; /* 0: OpenMP's default */

void kg_set_threads(int n)
{
    nthreads = n > 0 ? n : 0;
}

int kg_threads(void)
{
    return nthreads > 0 ? nthreads : omp_get_max_threads();
}

void kgp_parallel_for(kg_range_fn *fn, void *ctx, long n, long grain)
{
    if (n <= 0)
        return;
    if (grain < 1)
        grain = 1;
    long tasks = (n + grain - 1) / grain;
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
