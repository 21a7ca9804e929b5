/* coll_threads.c: the threads-as-ranks back end. The ranks of a group share one table: each
 * posts its buffer and size, waits for all (a mutex and condition barrier, with a short spin
 * first when every rank can have a core), reads every rank's buffer, and waits again so no
 * buffer is reused while another rank still reads it.
 * A rank whose communicator is freed has left: from then on every wait of the group fails at
 * once, and the ranks already waiting wake and fail, so a rank that stopped early (it failed
 * where the others did not) leaves none of them waiting for it forever. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "coll_impl.h"

typedef struct group {
    pthread_mutex_t m;
    pthread_cond_t cv;
    int size, arrived, refs;
    long spin_ns; /* how long a waiter spins before it sleeps (0: never spins) */
    atomic_ulong gen; /* written under m; read without it by a spinning waiter */
    atomic_int left;  /* ranks gone (their communicators freed); as gen */
    const void *src[KG_COLL_MAX_RANKS];
    long n[KG_COLL_MAX_RANKS];
    int dtype[KG_COLL_MAX_RANKS];
} group;

/* A waiter spins this long for the last rank before it sleeps on the condition variable: an
 * all-reduce between balanced ranks then costs a few cache-line transfers, not a futex wake
 * and a reschedule (tens of microseconds). Only when every rank can have a core of its own;
 * after YIELD_NS it yields the core between checks, in case a late rank waits for it (a busy
 * machine). */
enum { SPIN_NS = 50000, YIELD_NS = 5000 };

static long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#endif
}

/* Whether generation gen ended within g->spin_ns (the last rank's increment, a release that the
 * acquire load pairs with, so its writes and the other ranks' before it are visible); it stops
 * early when a rank leaves (the caller then sees that under m). */
static int spin_for(group *g, unsigned long gen)
{
    if (g->spin_ns <= 0)
        return 0;
    long t0 = now_ns(), t;
    for (;;) {
        for (int i = 0; i < 64; i++) {
            if (atomic_load_explicit(&g->gen, memory_order_acquire) != gen)
                return 1;
            if (atomic_load_explicit(&g->left, memory_order_relaxed))
                return 0;
            cpu_relax();
        }
        if ((t = now_ns() - t0) > g->spin_ns)
            return 0;
        if (t > YIELD_NS)
            sched_yield();
    }
}

/* Waits for every rank; 1 when all came, 0 when one has left the group (before or while the
 * others waited: the group is broken for good). */
static int wait_all(group *g)
{
    pthread_mutex_lock(&g->m);
    unsigned long gen = atomic_load_explicit(&g->gen, memory_order_relaxed);
    if (atomic_load_explicit(&g->left, memory_order_relaxed)) {
        pthread_mutex_unlock(&g->m);
        return 0;
    }
    if (++g->arrived == g->size) {
        g->arrived = 0;
        atomic_store_explicit(&g->gen, gen + 1, memory_order_release);
        pthread_cond_broadcast(&g->cv);
        pthread_mutex_unlock(&g->m);
        return 1;
    }
    pthread_mutex_unlock(&g->m);
    if (spin_for(g, gen))
        return 1;
    /* the generation and `left` change under m, so checking them under m and waiting loses no
     * wake-up */
    pthread_mutex_lock(&g->m);
    while (atomic_load_explicit(&g->gen, memory_order_relaxed) == gen &&
           !atomic_load_explicit(&g->left, memory_order_relaxed))
        pthread_cond_wait(&g->cv, &g->m);
    int all = atomic_load_explicit(&g->gen, memory_order_relaxed) != gen;
    pthread_mutex_unlock(&g->m);
    return all;
}

/* Posts rank c's buffer, waits for all; whether every rank came and posted the same size >= 0
 * and the same dtype. */
static int post(kg_coll *c, const void *x, long n, int dtype)
{
    group *g = c->impl;
    g->src[c->rank] = x, g->n[c->rank] = n, g->dtype[c->rank] = dtype;
    if (!wait_all(g))
        return 0;
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
    if (!wait_all(g))
        ok = 0;
    return ok ? KG_OK : KG_EARG;
}

static int th_reduce(kg_coll *c, float *acc, const void *x, long n, int dtype)
{
    group *g = c->impl;
    int ok = post(c, x, n, dtype);
    for (int r = 0; ok && r < g->size; r++)
        kgcoll_accumulate(acc, g->src[r], n, dtype, r > 0);
    if (!wait_all(g))
        ok = 0;
    return ok ? KG_OK : KG_EARG;
}

static int th_barrier(kg_coll *c)
{
    return wait_all(c->impl) ? KG_OK : KG_EARG;
}

static void th_release(kg_coll *c)
{
    group *g = c->impl;
    pthread_mutex_lock(&g->m);
    int last = --g->refs == 0;
    atomic_fetch_add_explicit(&g->left, 1, memory_order_relaxed);
    pthread_cond_broadcast(&g->cv);
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
    atomic_init(&g->gen, 0);
    atomic_init(&g->left, 0);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    g->spin_ns = size > 1 && cpus >= size ? SPIN_NS : 0;
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
