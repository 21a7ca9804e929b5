/* coll_mpi.c: the MPI back end (libkgen_coll_mpi, built when CMake finds MPI). Sizes are agreed
 * first with one small MPI_Allreduce, so a rank with other (or bad) arguments makes every rank
 * return KG_EARG instead of a mismatched collective. The all-reduce gathers every rank's x and
 * sums in rank order, the threads back end's bits exactly (MPI_SUM's order is MPI's own).
 * A rank that frees its communicator leaves: it answers the others' agreements with "leaving"
 * until every rank has left, and each of their collectives meanwhile fails. A rank that stopped
 * on an error of its own alone so ends the others' next collective instead of leaving them in
 * it forever (a process cannot wake another from inside MPI_Allreduce, but it can answer it). */
#include <limits.h>
#include <mpi.h>
#include <stdlib.h>

#include "coll_impl.h"

/* The agreement every collective opens with: each rank's n, dtype and whether it is leaving,
 * each with its negation, so one MPI_MAX gives the most and the least of every one. */
enum { AGREE_LONGS = 6 };

static int exchange(const long v[AGREE_LONGS], long m[AGREE_LONGS])
{
    return MPI_Allreduce(v, m, AGREE_LONGS, MPI_LONG, MPI_MAX, MPI_COMM_WORLD) == MPI_SUCCESS;
}

/* Whether every rank is here (none leaving) and passed the same n >= 0 and dtype. */
static int agree(long n, int dtype)
{
    long v[AGREE_LONGS] = { n, -n, dtype, -dtype, 0, 0 }, m[AGREE_LONGS];
    if (!exchange(v, m) || m[4] > 0)
        return 0;
    return m[0] == -m[1] && m[0] >= 0 && m[2] == -m[3];
}

/* Answers the other ranks' agreements with "leaving" until every rank is leaving. */
static void leave(void)
{
    long v[AGREE_LONGS] = { -1, 1, -1, 1, 1, -1 }, m[AGREE_LONGS];
    while (exchange(v, m) && m[5] != -1) {
    }
}

static int mpi_gather(kg_coll *c, void *y, const void *x, long bytes)
{
    (void)c;
    if (!agree(bytes, 0) || bytes > INT_MAX)
        return KG_EARG;
    int rc = MPI_Allgather(x, (int)bytes, MPI_BYTE, y, (int)bytes, MPI_BYTE, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? KG_OK : KG_EARG;
}

static int mpi_reduce(kg_coll *c, float *acc, const void *x, long n, int dtype)
{
    int es = kgcoll_dtype_size(dtype);
    if (!agree(n, dtype) || n * es > INT_MAX)
        return KG_EARG;
    if (n == 0)
        return KG_OK;
    /* every rank learns whether every rank has the memory before any gathers */
    char *all = malloc((size_t)c->size * (size_t)n * (size_t)es);
    int have = all != NULL, everyone = 0;
    MPI_Allreduce(&have, &everyone, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!everyone) {
        free(all);
        return KG_ENOMEM;
    }
    int rc = MPI_Allgather(x, (int)(n * es), MPI_BYTE, all, (int)(n * es), MPI_BYTE,
                           MPI_COMM_WORLD);
    for (int r = 0; rc == MPI_SUCCESS && r < c->size; r++)
        kgcoll_accumulate(acc, all + (size_t)r * (size_t)n * (size_t)es, n, dtype, r > 0);
    free(all);
    return rc == MPI_SUCCESS ? KG_OK : KG_EARG;
}

/* The agreement is an all-reduce: no rank leaves it before every rank has entered it. */
static int mpi_barrier(kg_coll *c)
{
    (void)c;
    return agree(0, 0) ? KG_OK : KG_EARG;
}

static void mpi_release(kg_coll *c)
{
    if (c->size > 1)
        leave();
    free(c);
}

static const kgcoll_ops mpi_ops = { mpi_gather, mpi_reduce, mpi_barrier, mpi_release };

int kg_coll_mpi_world(kg_coll **c)
{
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (!(*c = malloc(sizeof **c)))
        return KG_ENOMEM;
    **c = (kg_coll){ &mpi_ops, rank, size, NULL };
    return KG_OK;
}
