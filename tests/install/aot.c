/* aot.c: links kgen::aot (libkgen_aot.a, the bundled specs' kernels built ahead of time) from
 * an installed kgen: registers the kernels of spec argv[1] and prints how many, one line
 * "aot kernels: N". Exit 0 when the spec is there and has kernels, else 1. */
#include <stdio.h>

#include <kgen/aot.h>

int main(int argc, char **argv)
{
    kg_registry *reg = kg_registry_new();
    if (argc != 2 || !reg)
        return 1;
    int rc = kg_aot_register(reg, argv[1]);
    int n = kg_registry_count(reg);
    kg_registry_free(reg);
    printf("aot kernels: %d\n", n);
    return rc == KG_OK && n > 0 ? 0 : 1;
}
