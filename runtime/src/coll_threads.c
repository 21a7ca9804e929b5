/* coll_threads.c: the threads-as-ranks back end. The ranks of a group share one table: each
 * posts its buffer and size, waits for all (a mutex and condition barrier: ranks may outnumber
 * cores, so nobody spins), reads every rank's buffer, and waits again so no buffer is reused
 * while another rank still reads it. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "coll_impl.h"

typedef struct group {
    pthread_mutex_t m;
    pthread_cond_t cv;
    int size, arrived, refs;
    unsigned long gen;
    const void *src[KG_COLL_MAX_RANKS];
    long n[KG_COLL_MAX_RANKS];
    int dtype[KG_COLL_MAX_RANKS];
} group;

static void wait_all(group *g)
{
    pthread_mutex_lock(&g->m);
    unsigned long gen = g->gen;
    if (++g->arrived == g->size) {
        g->arrived = 0, g->gen++;
        pthread_cond_broadcast(&g->cv);
    } else {
        while (gen == g->gen)
            pthread_cond_wait(&g->cv, &g->m);
    }
    pthread_mutex_unlock(&g->m);
}

/* Posts rank c's buffer, waits for all; whether every rank posted the same size >= 0 and the
 * same dtype. */
static int post(kg_coll *c, const void *x, long n, int dtype)
{
    group *g = c->impl;
    g->src[c->rank] = x, g->n[c->rank] = n, g->dtype[c->rank] = dtype;
    wait_all(g);
    for (int r = 0; r < g->size; r++)
        if (g->n[r] != n || g->dtype[r] != dtype || n < 0)
            return 0;
    return 1;
}

static int th_gather(kg_coll *c, void *y, const void *x, long bytes)
{
    group *g = c->impl;
    int ok = post(c, x, bytes, 0);
    for (int r = 0; ok && bytes > 0 && r < g->size; r++)
        memcpy((char *)y + (size_t)r * (size_t)bytes, g->src[r], (size_t)bytes);
    wait_all(g);
    return ok ? KG_OK : KG_EARG;
}

static int th_reduce(kg_coll *c, float *acc, const void *x, long n, int dtype)
{
    group *g = c->impl;
    int ok = post(c, x, n, dtype);
    for (int r = 0; ok && r < g->size; r++)
        kgcoll_accumulate(acc, g->src[r], n, dtype, r > 0);
    wait_all(g);
    return ok ? KG_OK : KG_EARG;
}

static int th_barrier(kg_coll *c)
{
    wait_all(c->impl);
    return KG_OK;
}

static void th_release(kg_coll *c)
{
    group *g = c->impl;
    pthread_mutex_lock(&g->m);
    int last = --g->refs == 0;
    pthread_mutex_unlock(&g->m);
    if (last) {
        pthread_mutex_destroy(&g->m);
        pthread_cond_destroy(&g->cv);
        free(g);
    }
    free(c);
}

static const kgcoll_ops threads_ops = { th_gather, th_reduce, th_barrier, th_release };

int kg_coll_threads(int size, kg_coll **ranks)
{
    if (size < 1 || size > KG_COLL_MAX_RANKS || !ranks)
        return KG_EARG;
    group *g = calloc(1, sizeof *g);
    if (!g)
        return KG_ENOMEM;
    pthread_mutex_init(&g->m, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->size = size;
    for (int r = 0; r < size; r++) {
        ranks[r] = malloc(sizeof **ranks);
        if (!ranks[r]) {
            for (int i = 0; i < r; i++)
                th_release(ranks[i]);
            if (r == 0)
                free(g);
            return KG_ENOMEM;
        }
        *ranks[r] = (kg_coll){ &threads_ops, r, size, g };
        g->refs++;
    }
    return KG_OK;
}
