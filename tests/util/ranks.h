/* ranks.h: runs a function on each rank of a threads-as-ranks group (kgen/coll.h), one thread a
 * rank with its communicator bound, and joins them. Criterion's asserts belong to the test's own
 * thread, so rank functions record what they found and the test asserts after the join. */
#ifndef KGT_RANKS_H
#define KGT_RANKS_H

#include "kgen/coll.h"

typedef void kgt_rank_fn(kg_coll *c, int rank, void *arg);

/* fn(c_r, r, arg) on `size` threads at once; returns 0 if the group and threads started. */
int kgt_run_ranks(int size, kgt_rank_fn *fn, void *arg);

#endif
