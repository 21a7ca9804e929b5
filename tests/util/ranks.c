/* ranks.c: threads as ranks for the tests (ranks.h). */
#include <pthread.h>
#include <stdlib.h>

#include "util/ranks.h"

typedef struct job {
    kg_coll *c;
    int rank;
    kgt_rank_fn *fn;
    void *arg;
} job;

static void *run(void *p)
{
    job *j = p;
    kg_coll *old = kg_coll_bind(j->c);
    j->fn(j->c, j->rank, j->arg);
    kg_coll_bind(old == kg_coll_single() ? NULL : old);
    return NULL;
}

int kgt_run_ranks(int size, kgt_rank_fn *fn, void *arg)
{
    kg_coll *c[KG_COLL_MAX_RANKS];
    job jobs[KG_COLL_MAX_RANKS];
    pthread_t t[KG_COLL_MAX_RANKS];
    if (kg_coll_threads(size, c) != KG_OK)
        return -1;
    for (int r = 0; r < size; r++) {
        jobs[r] = (job){ c[r], r, fn, arg };
        if (pthread_create(&t[r], NULL, run, &jobs[r]) != 0)
            abort(); /* the ranks started would wait for this one forever */
    }
    for (int r = 0; r < size; r++)
        pthread_join(t[r], NULL);
    for (int r = 0; r < size; r++)
        kg_coll_free(c[r]);
    return 0;
}
