/* bench_coll.c: kgen bench --coll: the latency of the collectives' all-reduce (kgen/coll.h) on
 * a tensor-parallel group (ranks.c: threads of this process, or one process a rank under
 * mpirun), at the sizes a decode step reduces: one value, one token's hidden state [1, 4096]
 * fp32 (twice a layer at --tp), and a 16-token prefill chunk. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kgen/coll.h"
#include "kgen/kgen.h"

typedef struct coll_args { long calls; } coll_args;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

enum { SAMPLES = 21 };

/* One rank: for each size, a warm-up, then SAMPLES blocks of calls/SAMPLES all-reduces each
 * (a barrier before each block so the ranks start together); rank 0 prints the median and the
 * fastest block's time per call. */
static int rank_bench(const kgc_rank *r, void *arg)
{
    const coll_args *a = arg;
    static const long sizes[] = { 1, 4096, 16 * 4096 };
    static const char *const shapes[] = { "[1]", "[1, 4096]", "[16, 4096]" };
    kg_coll *c = kgp_coll();
    float *x = malloc((size_t)16 * 4096 * sizeof *x), *y = malloc((size_t)16 * 4096 * sizeof *y);
    int ok = x && y;
    for (long i = 0; ok && i < 16 * 4096; i++)
        x[i] = (float)(i % 7) * 0.25f + (float)r->rank;
    long block = a->calls / SAMPLES > 0 ? a->calls / SAMPLES : 1;
    if (ok && r->rank == 0)
        printf("all-reduce (sum, fp32), %d ranks (%s): us per call, median of %d blocks of %ld "
               "calls (fastest block)\n", r->tp, r->mpi ? "MPI, one process a rank"
               : r->tp > 1 ? "threads of one process" : "a single rank", SAMPLES, block);
    for (size_t s = 0; ok && s < sizeof sizes / sizeof sizes[0]; s++) {
        long n = sizes[s];
        double t[SAMPLES];
        for (long i = 0; ok && i < block; i++) /* warm-up */
            ok = kgp_all_reduce(c, y, x, n, KG_COLL_F32) == KG_OK;
        for (int b = 0; ok && b < SAMPLES; b++) {
            ok = kgp_barrier(c) == KG_OK;
            double t0 = kgc_now();
            for (long i = 0; ok && i < block; i++)
                ok = kgp_all_reduce(c, y, x, n, KG_COLL_F32) == KG_OK;
            t[b] = (kgc_now() - t0) / (double)block;
        }
        if (!ok)
            break;
        qsort(t, SAMPLES, sizeof *t, cmp_double);
        if (r->rank == 0)
            printf("  %-11s fp32 (%6ld bytes): %9.2f us (%.2f)\n", shapes[s], n * 4,
                   t[SAMPLES / 2] * 1e6, t[0] * 1e6);
    }
    free(x), free(y);
    return ok ? KGC_OK : kgc_error(KGC_FAIL, "bench --coll: an all-reduce failed");
}

int kgc_bench_coll(int argc, char **argv)
{
    const char *ranks = NULL, *calls = NULL;
    int coll = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char **slot = !strcmp(o, "--ranks") ? &ranks : !strcmp(o, "--calls") ? &calls
                                                                                     : NULL;
        if (!strcmp(o, "--coll")) {
            coll = 1;
            continue;
        }
        if (!slot)
            return kgc_error(KGC_USAGE, "bench: --coll takes only --ranks N and --calls N, not "
                             "'%s'", o);
        if (i + 1 == argc)
            return kgc_error(KGC_USAGE, "bench: %s wants a value", o);
        if (kgc_set_once("bench", o, slot, argv[++i]) != KGC_OK)
            return KGC_USAGE;
    }
    if (!coll)
        return kgc_error(KGC_USAGE, "bench: --ranks and --calls go with --coll");
    long tp = 2;
    coll_args a = { 20000 };
    if (ranks && kgc_int_option("bench", "--ranks", ranks, 1, KG_COLL_MAX_RANKS, &tp))
        return KGC_USAGE;
    if (calls && kgc_int_option("bench", "--calls", calls, 1, 100000000, &a.calls))
        return KGC_USAGE;
    return kgc_ranks_run("bench", "--ranks", tp, rank_bench, &a);
}
