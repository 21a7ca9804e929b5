/* internal.h: what the files of the benchmark library share (kgbi_ prefix), not exported. */
#ifndef KGEN_BENCH_INTERNAL_H
#define KGEN_BENCH_INTERNAL_H

/* Seconds on the monotonic clock. */
double kgbi_now(void);
/* The median of n values (sorts x in place); 0 if n == 0. */
double kgbi_median(double *x, int n);

#endif
