/* kgen/ckd.h: checked size arithmetic, the one helper every size formed from outside input (a
 * file's header, a tensor's shape, a weight's K and N) goes through before it reaches malloc or
 * an index. Each returns nonzero when the exact result does not fit, as C23's ckd_mul does
 * (gcc 12 has no <stdckdint.h>; its __builtin_*_overflow are what that header wraps). */
#ifndef KGEN_CKD_H
#define KGEN_CKD_H

#include <stddef.h>

/* *r = a * b; nonzero (and *r unspecified) if the product overflows. */
static inline int kg_ckd_mul(size_t *r, size_t a, size_t b)
{
    return __builtin_mul_overflow(a, b, r);
}

/* *r = a + b; nonzero if the sum overflows. */
static inline int kg_ckd_add(size_t *r, size_t a, size_t b)
{
    return __builtin_add_overflow(a, b, r);
}

/* *r = elem * dims[0] * ... * dims[n-1], multiplied in order; nonzero if a dimension is
 * negative or a partial product overflows (even one a later zero would have cancelled: a
 * shape whose product cannot be formed is refused, not reduced to an empty tensor). */
static inline int kg_ckd_shape(size_t *r, size_t elem, const long *dims, int n)
{
    size_t p = elem;
    for (int i = 0; i < n; i++)
        if (dims[i] < 0 || kg_ckd_mul(&p, p, (size_t)dims[i]))
            return 1;
    *r = p;
    return 0;
}

/* x rounded up to a multiple of m (m > 0); nonzero if that overflows. */
static inline int kg_ckd_round_up(size_t *r, size_t x, size_t m)
{
    if (kg_ckd_add(r, x, m - 1))
        return 1;
    *r = *r / m * m;
    return 0;
}

#endif /* KGEN_CKD_H */
