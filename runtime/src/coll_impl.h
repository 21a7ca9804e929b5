/* coll_impl.h: what a collectives back end provides (kgcoll_ prefix): its operations on
 * arguments coll.c has already checked, and the fp32 sum every back end shares. */
#ifndef KGEN_COLL_IMPL_H
#define KGEN_COLL_IMPL_H

#include "kgen/coll.h"

typedef struct kgcoll_ops {
    /* y [size * bytes] = every rank's x, rank-major; KG_EARG on every rank if bytes differ */
    int (*all_gather)(kg_coll *c, void *y, const void *x, long bytes);
    /* acc [n] (fp32) = sum over ranks of x widened, in rank order; KG_EARG if n differs.
     * y == NULL or acc written after every rank has read every x (y may be x) */
    int (*all_reduce)(kg_coll *c, float *acc, const void *x, long n, int dtype);
    int (*barrier)(kg_coll *c);
    void (*release)(kg_coll *c);
} kgcoll_ops;

struct kg_coll {
    const kgcoll_ops *ops;
    int rank, size;
    void *impl; /* the back end's */
};

/* Element size of an all-reduce dtype (0: not one). */
int kgcoll_dtype_size(int dtype);

/* acc[i] (+)= x[i] widened to fp32, i < n; add == 0 sets acc. */
void kgcoll_accumulate(float *acc, const void *x, long n, int dtype, int add);

#endif /* KGEN_COLL_IMPL_H */
