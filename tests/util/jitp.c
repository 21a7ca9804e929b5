/* jitp.c: problem string -> JIT-compiled kernel, for tests that sweep options. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>

#include "host.h"
#include "util/jitp.h"

const kg_kernel *kgt_jit_problem(kg_registry *reg, const char *problem)
{
    kgg *g = kgg_new();
    kgg_kernel k;
    int rc = kgg_problem(g, problem, &k);
    cr_assert_eq(rc, KG_OK, "generating %s: %s", problem, kgg_error(g));
    const kg_kernel *found = kg_registry_find(reg, k.name);
    if (!found) {
        kg_kernel_info info = { k.family, k.name, k.problem, k.flops, k.read, k.written };
        char label[512];
        snprintf(label, sizeof label, "%s.c", k.name);
        const char *labels[1] = { label }, *srcs[1] = { k.text };
        rc = kg_jit_compile(reg, 1, &info, labels, srcs, NULL);
        cr_assert_eq(rc, KG_OK, "JIT of %s: %s", problem, kg_registry_error(reg));
        found = kg_registry_find(reg, k.name);
    }
    kgg_kernel_clear(&k);
    kgg_free(g);
    return found;
}

const char *kgt_source_dir(void)
{
    return KGEN_SOURCE_DIR;
}

float kgt_normal(unsigned long long *s)
{
    double u[2];
    for (int i = 0; i < 2; i++) {
        unsigned long long z = (*s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        u[i] = ((double)(z >> 11) + 0.5) / 9007199254740992.0;
    }
    return (float)(sqrt(-2.0 * log(u[0])) * cos(6.283185307179586 * u[1]));
}
