/* ranks.c: a command run as a tensor-parallel group (kgc_ranks_run): over MPI when mpirun
 * started this process (libkgen_coll_mpi, built when CMake found MPI), else as threads of this
 * process (kg_coll_threads). Each rank's communicator is bound to the thread that runs it, so
 * the model library and the kernels find it (kgp_coll). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kgen/coll.h"
#include "kgen/kgen.h"
#ifdef KGEN_HAVE_MPI
#include <mpi.h>
#endif

/* The world size mpirun gave this process (OpenMPI's, or a PMI launcher's), 0 when it was not
 * started by one. */
static long mpi_world(void)
{
    static const char *const vars[] = { "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE" };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return strtol(v, NULL, 10);
    }
    return getenv("PMIX_RANK") ? 1 : 0;
}

/* ---- threads as ranks ----------------------------------------------------------------------- */

typedef struct job {
    kg_coll *c;
    kgc_rank r;
    kgc_rank_fn *fn;
    void *arg;
    int code;
} job;

static void *run_thread(void *p)
{
    job *j = p;
    kg_coll_bind(j->c);
    kgc_quiet(j->r.rank != 0);
    j->code = j->fn(&j->r, j->arg);
    kg_coll_bind(NULL);
    /* leaving the group at once: a rank that stopped on an error of its own alone then fails
     * the others' collectives (kg_coll_threads), where they would wait for it forever */
    kg_coll_free(j->c);
    return NULL;
}

static int run_threads(const char *cmd, int tp, kgc_rank_fn *fn, void *arg)
{
    kg_coll **c = calloc((size_t)tp, sizeof *c);
    job *jobs = calloc((size_t)tp, sizeof *jobs);
    pthread_t *t = calloc((size_t)tp, sizeof *t);
    if (!c || !jobs || !t || kg_coll_threads(tp, c) != KG_OK) {
        free(c), free(jobs), free(t);
        return kgc_error(KGC_FAIL, "%s: out of memory starting %d ranks", cmd, tp);
    }
    /* the cores the process would use, split over its ranks (read once: the ranks each set
     * the runtime's count when they open their model) */
    int threads = kg_threads() / tp > 0 ? kg_threads() / tp : 1;
    int started = 0;
    for (int r = 0; r < tp; r++) {
        jobs[r] = (job){ c[r], { r, tp, 0, threads }, fn, arg, KGC_OK };
        if (pthread_create(&t[r], NULL, run_thread, &jobs[r]) != 0)
            break;
        started++;
    }
    /* the ranks that did not start leave the group, so the started ones fail their next
     * collective rather than wait for them */
    for (int r = started; r < tp; r++)
        kg_coll_free(c[r]);
    int code = KGC_OK;
    for (int r = 0; r < started; r++) {
        pthread_join(t[r], NULL);
        if (code == KGC_OK)
            code = jobs[r].code;
    }
    free(c), free(jobs), free(t);
    if (started < tp)
        return kgc_error(KGC_FAIL, "%s: could not start rank %d of %d (a thread)", cmd, started,
                         tp);
    return code;
}

/* ---- MPI -------------------------------------------------------------------------------- */

static int run_mpi(const char *cmd, const char *opt, long tp, kgc_rank_fn *fn, void *arg)
{
#ifdef KGEN_HAVE_MPI
    int provided, rank = 0, size = 0;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return kgc_error(KGC_FAIL, "%s: MPI_Init_thread failed", cmd);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    kgc_quiet(rank != 0);
    int code;
    kg_coll *c = NULL;
    if (size != tp) {
        code = kgc_error(KGC_USAGE, "%s: %s %ld, but mpirun started %d processes (one rank "
                         "a process: mpirun -np %ld)", cmd, opt, tp, size, tp);
    } else if (kg_coll_mpi_world(&c) != KG_OK) {
        code = kgc_error(KGC_FAIL, "%s: out of memory", cmd);
    } else {
        kg_coll_bind(c);
        kgc_rank r = { rank, (int)tp, 1, 0 };
        code = fn(&r, arg);
        kg_coll_bind(NULL);
        kg_coll_free(c);
    }
    kgc_quiet(0);
    MPI_Finalize();
    return code;
#else
    (void)fn, (void)arg;
    const char *me = getenv("OMPI_COMM_WORLD_RANK");
    kgc_quiet(me && strcmp(me, "0") != 0);
    int code = kgc_error(KGC_USAGE, "%s: %s %ld under mpirun, but this kgen was built without "
                         "MPI (libopenmpi-dev); without mpirun the ranks are threads", cmd, opt,
                         tp);
    kgc_quiet(0);
    return code;
#endif
}

int kgc_ranks_run(const char *cmd, const char *opt, long tp, kgc_rank_fn *fn, void *arg)
{
    long world = mpi_world();
    /* mpirun -np 1 of a whole model needs no MPI */
    if (world > 1 || (world == 1 && tp > 1))
        return run_mpi(cmd, opt, tp, fn, arg);
    if (tp > 1)
        return run_threads(cmd, (int)tp, fn, arg);
    kgc_rank r = { 0, 1, 0, 0 };
    return fn(&r, arg);
}
