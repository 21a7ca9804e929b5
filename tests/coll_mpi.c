/* tests/coll_mpi.c: the MPI back end of the collectives, run by CTest as `mpirun -np 2`: on
 * odd sizes and every dtype, each rank's all-reduce and all-gather against tests/ref/coll_ref.c
 * bit for bit (so against the threads back end, held to the same loops in test_coll.c, and
 * checked here too on the same data), then sizes that disagree between ranks, which must fail
 * on every rank, and a rank that leaves early, which must fail the other's collectives. A
 * plain program (Criterion's forked workers and MPI do not mix); exit 0 when everything held,
 * 1 with a line on stderr otherwise. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "coll_data.h"
#include "kgen/coll.h"
#include "ref/ref.h"
#include "util/ranks.h"

static int failures;

static void fail(int rank, const char *what, long n, int dtype)
{
    fprintf(stderr, "coll_mpi rank %d: %s (n %ld, dtype %d)\n", rank, what, n, dtype);
    failures++;
}

/* threads as ranks on the same data: rank r's all-reduce result into out[r] */
typedef struct th { long n; int dtype; void *out[2]; int rc[2]; } th;

static void th_rank(kg_coll *c, int r, void *arg)
{
    th *a = arg;
    void *x = coll_data(r, a->n, a->dtype);
    a->rc[r] = kgp_all_reduce(c, a->out[r], x, a->n, a->dtype);
    free(x);
}

static void one_size(kg_coll *c, long n, int dtype)
{
    int R = kgp_coll_size(c), me = kgp_coll_rank(c), es = dtype ? 2 : 4;
    void *x[2], *y = malloc((size_t)(n * es + 1)), *g = malloc((size_t)(n * es * R + 1));
    void *want = malloc((size_t)(n * es + 1)), *wantg = malloc((size_t)(n * es * R + 1));
    for (int r = 0; r < R; r++)
        x[r] = coll_data(r, n, dtype);
    all_reduce_ref(want, (const void *const *)x, R, n, dtype);
    all_gather_ref(wantg, (const void *const *)x, R, n * es);
    if (kgp_all_reduce(c, y, x[me], n, dtype) != KG_OK || memcmp(y, want, (size_t)(n * es)))
        fail(me, "all-reduce differs from the reference", n, dtype);
    if (kgp_all_gather(c, g, x[me], n * es) != KG_OK || memcmp(g, wantg, (size_t)(n * es * R)))
        fail(me, "all-gather differs from the reference", n, dtype);
    /* in place */
    if (kgp_all_reduce(c, x[me], x[me], n, dtype) != KG_OK || memcmp(x[me], want, (size_t)(n * es)))
        fail(me, "in-place all-reduce differs", n, dtype);
    th t = { n, dtype, { malloc((size_t)(n * es + 1)), malloc((size_t)(n * es + 1)) }, { 0, 0 } };
    if (kgt_run_ranks(R, th_rank, &t) != 0 || t.rc[me] != KG_OK ||
        memcmp(t.out[me], y, (size_t)(n * es)))
        fail(me, "threads back end differs from MPI", n, dtype);
    free(t.out[0]), free(t.out[1]);
    for (int r = 0; r < R; r++)
        free(x[r]);
    free(y), free(g), free(want), free(wantg);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    kg_coll *c;
    if (kg_coll_mpi_world(&c) != KG_OK) {
        fprintf(stderr, "coll_mpi: no communicator\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    int me = kgp_coll_rank(c), R = kgp_coll_size(c);
    if (R != 2)
        fail(me, "run with mpirun -np 2", R, 0);
    static const long SIZES[] = { 0, 1, 7, 33, 1001 };
    for (int dt = 0; R == 2 && dt < 3; dt++)
        for (size_t i = 0; i < sizeof SIZES / sizeof SIZES[0]; i++)
            one_size(c, SIZES[i], dt);
    /* disagreeing arguments fail on both ranks, and the communicator still works after */
    float x[4] = { 1, 2, 3, 4 }, y[8];
    if (kgp_all_reduce(c, y, x, me ? 4 : 3, KG_COLL_F32) != KG_EARG)
        fail(me, "all-reduce of sizes that differ was not refused", 3, 0);
    if (kgp_all_reduce(c, y, x, 2, me ? KG_COLL_BF16 : KG_COLL_F32) != KG_EARG)
        fail(me, "all-reduce of dtypes that differ was not refused", 2, 0);
    if (kgp_all_gather(c, y, me ? NULL : x, 8) != KG_EARG)
        fail(me, "all-gather with one NULL buffer was not refused", 8, 0);
    if (kgp_all_gather(c, y, x, me ? 16 : 12) != KG_EARG)
        fail(me, "all-gather of sizes that differ was not refused", 12, 0);
    if (kgp_all_reduce(c, y, x, 4, KG_COLL_F32) != KG_OK || y[3] != 8.0f)
        fail(me, "the communicator after refusals", 4, 0);
    if (kgp_barrier(c) != KG_OK)
        fail(me, "barrier", 0, 0);
    /* a rank that leaves early (frees its communicator): the other's collectives fail rather
     * than wait for it, both frees return, and the group works again after */
    kg_coll *c2 = NULL;
    if (kg_coll_mpi_world(&c2) != KG_OK) {
        fail(me, "a second communicator", 0, 0);
    } else if (me == 1) {
        kg_coll_free(c2);
    } else {
        if (kgp_all_reduce(c2, y, x, 4, KG_COLL_F32) != KG_EARG)
            fail(me, "all-reduce after the other rank left was not refused", 4, 0);
        if (kgp_barrier(c2) != KG_EARG)
            fail(me, "barrier after the other rank left was not refused", 0, 0);
        kg_coll_free(c2);
    }
    if (kgp_all_reduce(c, y, x, 4, KG_COLL_F32) != KG_OK || y[3] != 8.0f)
        fail(me, "the communicator after a rank left", 4, 0);
    kg_coll_bind(c);
    if (kgp_coll() != c)
        fail(me, "binding", 0, 0);
    kg_coll_bind(NULL);
    kg_coll_free(c);
    int all = 0;
    MPI_Allreduce(&failures, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (me == 0)
        printf("coll_mpi: %d ranks, %s\n", R, all ? "FAILED" : "all checks passed");
    MPI_Finalize();
    return all ? 1 : 0;
}
