/* tsan_registry.c: what kgen.h promises about threads, run under ThreadSanitizer (built with
 * -fsanitize=thread, its own CTest; a race TSan sees makes it exit 66). One thread adds kernels
 * to a registry, by kg_registry_add and by JIT-compiling them, while two threads look them up,
 * walk the list and call what they find, and one changes the thread count the others read.
 * Then the threads-as-ranks all-reduce (kgen/coll.h, its spin-then-sleep barrier) between 2
 * and 3 ranks, each checking every sum. Plain C with pthreads (no Criterion: its runner's own
 * threads are not what is under test). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/coll.h"
#include "kgen/kgen.h"

enum { NADD = 300, NJIT = 4, NREADERS = 2 };

static kg_registry *reg;
static atomic_int writer_done;
static atomic_int failures;

#define CHECK(cond, ...)                                                                      \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "tsan_registry: " __VA_ARGS__);                                   \
            fputc('\n', stderr);                                                              \
            atomic_fetch_add(&failures, 1);                                                   \
        }                                                                                     \
    } while (0)

/* The uniform entry point of the added (not compiled) kernels: returns its n[0]. */
static int echo_call(void *const *t, const long *n)
{
    (void)t;
    return (int)n[0];
}

static void echo_fn(void) {}

static void add_plain(int i)
{
    char name[64], problem[64];
    snprintf(name, sizeof name, "kg_plain_%d", i);
    snprintf(problem, sizeof problem, "plain:i=%d", i);
    kg_kernel_info info = { .family = "plain", .name = name, .problem = problem, .flops = i };
    int rc = kg_registry_add(reg, &info, echo_fn, echo_call);
    CHECK(rc == KG_OK, "add %s: %d (%s)", name, rc, kg_registry_error(reg));
}

/* A JIT-compiled kernel whose entry point returns its index plus 1000. */
static void add_jit(int j)
{
    char name[64], label[96], src[512];
    snprintf(name, sizeof name, "kg_jit_%d", j);
    snprintf(label, sizeof label, "tsan/%s.c", name);
    snprintf(src, sizeof src,
             "int %s(void) { return %d; }\n"
             "int %s__v(void *const *t, const long *n) { (void)t; (void)n; return %s(); }\n",
             name, 1000 + j, name, name);
    const char *labels[1] = { label }, *sources[1] = { src };
    kg_kernel_info info = { .family = "jit", .name = name, .problem = "jit" };
    int rc = kg_jit_compile(reg, 1, &info, labels, sources, NULL);
    CHECK(rc == KG_OK, "JIT %s: %d (%s)", name, rc, kg_registry_error(reg));
}

static void *writer(void *arg)
{
    (void)arg;
    for (int i = 0; i < NADD; i++) {
        add_plain(i);
        if (i % (NADD / NJIT) == 0)
            add_jit(i / (NADD / NJIT));
    }
    atomic_store(&writer_done, 1);
    return NULL;
}

/* Every listed entry is whole and is what a lookup by its name returns; calling it gives what
 * it was registered to give. Returns how many entries it saw. */
static int walk(void)
{
    int n = kg_registry_count(reg);
    for (int i = 0; i < n; i++) {
        const kg_kernel *k = kg_registry_at(reg, i);
        CHECK(k && k->name && k->call, "entry %d of %d is missing or torn", i, n);
        if (!k)
            continue;
        CHECK(kg_registry_find(reg, k->name) == k, "find(%s) is not entry %d", k->name, i);
        long arg = (long)k->flops;
        int want = strcmp(k->family, "jit") == 0 ? 1000 + atoi(k->name + 7) : (int)arg;
        CHECK(k->call(NULL, &arg) == want, "%s returned the wrong value", k->name);
    }
    return n;
}

static void *reader(void *arg)
{
    (void)arg;
    const kg_kernel *first = NULL;
    int last = 0;
    while (!atomic_load(&writer_done)) {
        int n = walk();
        CHECK(n >= last, "the count went back from %d to %d", last, n);
        last = n;
        if (!first)
            first = kg_registry_find(reg, "kg_plain_0");
        (void)kg_threads();
    }
    walk();
    /* a pointer taken while the registry grew still points at the same entry */
    CHECK(!first || kg_registry_find(reg, "kg_plain_0") == first, "kg_plain_0 moved");
    return NULL;
}

static void *thread_setter(void *arg)
{
    (void)arg;
    for (int i = 0; !atomic_load(&writer_done); i++)
        kg_set_threads(1 + i % 4);
    return NULL;
}

/* ---- the threads-as-ranks all-reduce ------------------------------------------------------ */

enum { NRED = 400, NVAL = 37 };

typedef struct rank_arg {
    kg_coll *c;
    int r, size;
} rank_arg;

/* NRED all-reduces of NVAL values (rank r's value i of call k: r + i + k), every sum checked,
 * a barrier every 50 calls. */
static void *rank_main(void *arg)
{
    rank_arg *a = arg;
    float x[NVAL], y[NVAL];
    for (int k = 0; k < NRED; k++) {
        for (int i = 0; i < NVAL; i++)
            x[i] = (float)(a->r + i + k);
        int rc = kgp_all_reduce(a->c, y, x, NVAL, KG_COLL_F32);
        CHECK(rc == KG_OK, "rank %d all-reduce %d: %d", a->r, k, rc);
        for (int i = 0; rc == KG_OK && i < NVAL; i++) {
            float want = (float)(a->size * (i + k) + a->size * (a->size - 1) / 2);
            CHECK(y[i] == want, "rank %d call %d value %d: %g, expected %g", a->r, k, i,
                  (double)y[i], (double)want);
        }
        if (k % 50 == 0)
            CHECK(kgp_barrier(a->c) == KG_OK, "rank %d barrier %d", a->r, k);
    }
    return NULL;
}

static void all_reduce_ranks(int size)
{
    kg_coll *c[3];
    rank_arg a[3];
    pthread_t t[3];
    CHECK(kg_coll_threads(size, c) == KG_OK, "kg_coll_threads(%d)", size);
    for (int r = 0; r < size; r++) {
        a[r] = (rank_arg){ c[r], r, size };
        pthread_create(&t[r], NULL, rank_main, &a[r]);
    }
    for (int r = 0; r < size; r++)
        pthread_join(t[r], NULL);
    for (int r = 0; r < size; r++)
        kg_coll_free(c[r]);
}

int main(void)
{
    reg = kg_registry_new();
    if (!reg)
        return 1;
    pthread_t w, s, r[NREADERS];
    pthread_create(&w, NULL, writer, NULL);
    pthread_create(&s, NULL, thread_setter, NULL);
    for (int i = 0; i < NREADERS; i++)
        pthread_create(&r[i], NULL, reader, NULL);
    pthread_join(w, NULL);
    pthread_join(s, NULL);
    for (int i = 0; i < NREADERS; i++)
        pthread_join(r[i], NULL);
    int n = kg_registry_count(reg);
    CHECK(n == NADD + NJIT, "%d kernels registered, expected %d", n, NADD + NJIT);
    CHECK(kg_registry_find(reg, "kg_nope") == NULL, "found a kernel never added");
    kg_registry_free(reg);
    all_reduce_ranks(2);
    all_reduce_ranks(3);
    int bad = atomic_load(&failures);
    printf("tsan_registry: %d kernels added while %d threads looked them up, %d all-reduces "
           "between 2 and 3 ranks: %s\n", n, NREADERS, NRED, bad ? "FAILED" : "ok");
    return bad ? 1 : 0;
}
