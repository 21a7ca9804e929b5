/* coll.c: the collectives of kgen/abi.h over any back end: argument checks that keep the ranks
 * in step, the fp32 sum and its rounding, the calling thread's communicator, and the
 * single-rank back end. coll_threads.c and coll_mpi.c are the other two. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coll_impl.h"
#include "kgen/dtype.h"

/* ---- element formats ------------------------------------------------------------------------ */

int kgcoll_dtype_size(int dtype)
{
    return dtype == KG_COLL_F32 ? 4 : dtype == KG_COLL_BF16 || dtype == KG_COLL_F16 ? 2 : 0;
}

void kgcoll_accumulate(float *acc, const void *x, long n, int dtype, int add)
{
    for (long i = 0; i < n; i++) {
        float v = dtype == KG_COLL_F32 ? ((const float *)x)[i]
                : dtype == KG_COLL_BF16 ? kg_bf16_to_f32(((const uint16_t *)x)[i])
                : kg_f16_to_f32(((const uint16_t *)x)[i]);
        acc[i] = add ? acc[i] + v : v;
    }
}

/* y [n] of format dtype = acc rounded to nearest even. */
static void narrow(void *y, const float *acc, long n, int dtype)
{
    for (long i = 0; i < n; i++) {
        if (dtype == KG_COLL_F32)
            ((float *)y)[i] = acc[i];
        else if (dtype == KG_COLL_BF16)
            ((uint16_t *)y)[i] = kg_f32_to_bf16(acc[i]);
        else
            ((uint16_t *)y)[i] = kg_f32_to_f16(acc[i]);
    }
}

/* ---- the single rank ------------------------------------------------------------------------- */

static int single_gather(kg_coll *c, void *y, const void *x, long bytes)
{
    (void)c;
    if (bytes < 0)
        return KG_EARG;
    if (bytes > 0)
        memcpy(y, x, (size_t)bytes);
    return KG_OK;
}

static int single_reduce(kg_coll *c, float *acc, const void *x, long n, int dtype)
{
    (void)c;
    if (n < 0)
        return KG_EARG;
    kgcoll_accumulate(acc, x, n, dtype, 0);
    return KG_OK;
}

static int single_barrier(kg_coll *c)
{
    (void)c;
    return KG_OK;
}

static void single_release(kg_coll *c) { (void)c; }

static const kgcoll_ops single_ops = { single_gather, single_reduce, single_barrier,
                                       single_release };
static kg_coll single = { &single_ops, 0, 1, NULL };

kg_coll *kg_coll_single(void) { return &single; }

/* ---- binding --------------------------------------------------------------------------------- */

static _Thread_local kg_coll *bound;

kg_coll *kg_coll_bind(kg_coll *c)
{
    kg_coll *old = bound ? bound : &single;
    bound = c;
    return old;
}

kg_coll *kgp_coll(void) { return bound ? bound : &single; }

int kgp_coll_rank(const kg_coll *c) { return c ? c->rank : 0; }
int kgp_coll_size(const kg_coll *c) { return c ? c->size : 1; }

void kg_coll_free(kg_coll *c)
{
    if (c && c != &single)
        c->ops->release(c);
}

/* ---- the collectives ------------------------------------------------------------------------- */
/* A rank whose own arguments are bad still takes part, with a size of -1: every rank then sees
 * sizes that disagree (or are negative) and returns KG_EARG, so none is left waiting. */

int kgp_all_gather(kg_coll *c, void *y, const void *x, long bytes)
{
    if (!c)
        return KG_EARG;
    if (bytes > 0 && (!y || !x || c->size > 0x7fffffffffffffffL / bytes))
        bytes = -1;
    int rc = c->ops->all_gather(c, y, x, bytes);
    return bytes < 0 ? KG_EARG : rc;
}

int kgp_all_reduce(kg_coll *c, void *y, const void *x, long n, int dtype)
{
    if (!c)
        return KG_EARG;
    int es = kgcoll_dtype_size(dtype);
    if (n > 0 && (!y || !x || n > 0x7fffffffffffffffL / 4))
        n = -1;
    if (!es)
        n = -1, dtype = KG_COLL_F32;
    float *acc = n > 0 ? malloc(sizeof(float) * (size_t)n) : NULL;
    int oom = n > 0 && !acc;
    int rc = c->ops->all_reduce(c, acc, x, oom ? -1 : n, dtype);
    if (rc == KG_OK && n > 0)
        narrow(y, acc, n, dtype);
    free(acc);
    return oom ? KG_ENOMEM : n < 0 ? KG_EARG : rc;
}

int kgp_barrier(kg_coll *c)
{
    return c ? c->ops->barrier(c) : KG_EARG;
}
