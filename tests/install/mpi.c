/* mpi.c: a program linking the installed MPI back end of the collectives (kgen::coll_mpi):
 * one rank's all-reduce over MPI_COMM_WORLD. Run as a singleton (no mpirun) by run.sh: prints
 * "mpi: ok" when the sum of one rank is its own values. */
#include <mpi.h>
#include <stdio.h>

#include <kgen/coll.h>

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    kg_coll *c;
    float x[3] = { 1, 2, 3 }, y[3] = { 0 };
    int ok = kg_coll_mpi_world(&c) == KG_OK &&
             kgp_all_reduce(c, y, x, 3, KG_COLL_F32) == KG_OK && kgp_coll_size(c) >= 1;
    for (int i = 0; ok && i < 3; i++)
        ok = y[i] == x[i] * (float)kgp_coll_size(c);
    if (ok)
        kg_coll_free(c);
    MPI_Finalize();
    printf("mpi: %s\n", ok ? "ok" : "failed");
    return ok ? 0 : 1;
}
