/* scratch.c: the per-thread block kernels borrow instead of calling malloc (kgp_scratch in
 * kgen/abi.h). It only grows, so after the first call at a size a kernel allocates nothing;
 * a thread's block is freed when the thread exits. */
#include <pthread.h>
#include <stdlib.h>

#include "kgen/ckd.h"
#include "kgen/kgen.h"

typedef struct block { void *p; long cap; } block;

static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void release(void *b)
{
    free(((block *)b)->p);
    free(b);
}

static void make_key(void)
{
    pthread_key_create(&key, release);
}

void *kgp_scratch(long bytes)
{
    pthread_once(&once, make_key);
    block *b = pthread_getspecific(key);
    if (!b) {
        b = calloc(1, sizeof *b);
        if (!b || pthread_setspecific(key, b) != 0) {
            free(b);
            return NULL;
        }
    }
    if (bytes < 64)
        bytes = 64;
    if (bytes > b->cap) {
        size_t cap; /* whole pages; a request too large to round is out of memory */
        if (kg_ckd_round_up(&cap, (size_t)bytes, 4096) || cap > (size_t)__LONG_MAX__)
            return NULL;
        void *p = aligned_alloc(64, cap);
        if (!p)
            return NULL;
        free(b->p);
        b->p = p;
        b->cap = (long)cap;
    }
    return b->p;
}

int kg_scratch_reserve(long bytes)
{
    return kgp_scratch(bytes) ? KG_OK : KG_ENOMEM;
}
