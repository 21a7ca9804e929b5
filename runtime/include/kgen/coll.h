/* kgen/coll.h: communicators for the collectives of kgen/abi.h (kgp_all_reduce, kgp_all_gather,
 * kgp_barrier). Three back ends: one process (a single rank, always there), threads as ranks
 * inside one process (tests, one machine), and MPI (a build option: libkgen_coll_mpi, present
 * when CMake found MPI). A generated kernel uses the communicator bound to its calling thread. */
#ifndef KGEN_COLL_H
#define KGEN_COLL_H

#include "kgen/abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The single-rank communicator (rank 0 of 1): the collectives copy (all-reduce casts through
 * fp32, which gives the same bits back). Static; kg_coll_free ignores it. */
kg_coll *kg_coll_single(void);

/* A group of `size` ranks (1 .. KG_COLL_MAX_RANKS) that are threads of this process:
 * ranks[r] is rank r's communicator, to be used by one thread at a time. KG_EARG for a size
 * out of range, KG_ENOMEM. Free each rank's communicator with kg_coll_free (the group goes with
 * the last one). */
#define KG_COLL_MAX_RANKS 256
int kg_coll_threads(int size, kg_coll **ranks);

/* MPI_COMM_WORLD as a communicator (libkgen_coll_mpi only; the program called MPI_Init or
 * MPI_Init_thread, and calls MPI_Finalize after kg_coll_free). KG_ENOMEM. */
int kg_coll_mpi_world(kg_coll **c);

/* Frees c: its rank leaves the group. From then on the other ranks' collectives fail with
 * KG_EARG (threads: at once, and those already waiting wake; MPI: the free itself returns when
 * every rank has freed its communicator, refusing the others' collectives until then), so a
 * rank that stopped on an error of its own alone leaves none of the others waiting for it. */
void kg_coll_free(kg_coll *c);

/* Binds c to the calling thread: kgp_coll() on this thread returns it from now on (NULL: the
 * single rank again). Returns the communicator bound before. */
kg_coll *kg_coll_bind(kg_coll *c);

#ifdef __cplusplus
}
#endif
#endif /* KGEN_COLL_H */
