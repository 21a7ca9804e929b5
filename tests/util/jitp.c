/* jitp.c: problem string -> JIT-compiled kernel, for tests that sweep options; the suite fixture
 * and the name, bad-problem, vector-case and JIT-vs-AOT loops of the kernel-family tests. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/aot.h"
#include "util/compare.h"
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

/* ---- the suite fixture ----------------------------------------------------------------------- */

/* Criterion runs each test in its own process, so these start fresh in every test. */
static kgg *gen;
static kg_registry *reg;

void kgt_suite_init(void)
{
    gen = kgg_new();
    reg = kg_registry_new();
    cr_assert_not_null(gen);
    cr_assert_not_null(reg);
}

void kgt_suite_fini(void)
{
    kg_registry_free(reg);
    kgg_free(gen);
}

kgg *kgt_gen(void) { return gen; }

const kg_kernel *kgt_jit(const char *problem)
{
    return kgt_jit_problem(reg, problem);
}

/* ---- checks every family repeats ------------------------------------------------------------- */

/* A bad key must be named, so a user of kgen exec learns which one. */
void kgt_problem_rejected(const char *problem, const char *want)
{
    kgg_kernel k = { 0 };
    cr_assert_neq(kgg_problem(gen, problem, &k), KG_OK, "%s was accepted", problem);
    cr_assert(strstr(kgg_error(gen), want), "%s: message '%s' lacks \"%s\"", problem,
              kgg_error(gen), want);
}

/* Names are a grammar (STYLE 9): the generator's parse_name must give back exactly the keys the
 * name spells (named_keys of its problem). */
void kgt_name_parses_back(const char *problem, char *name, size_t len)
{
    kgg_kernel k = { 0 };
    cr_assert_eq(kgg_problem(gen, problem, &k), KG_OK, "%s", kgg_error(gen));
    char *parsed, *named;
    cr_assert_eq(kgg_string_call(gen, "parse_name", k.name, &parsed), KG_OK, "%s",
                 kgg_error(gen));
    cr_assert_eq(kgg_string_call(gen, "named_keys", k.problem, &named), KG_OK);
    cr_assert_str_eq(parsed, named, "%s parses back to %s", k.name, parsed);
    snprintf(name, len, "%s", k.name);
    free(parsed);
    free(named);
    kgg_kernel_clear(&k);
}

void kgt_run_case(const char *dir, void (*run)(kgt_case *c))
{
    char err[512] = "";
    kgt_case *c = kgt_case_load(dir, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    run(c);
    char unmapped[512];
    cr_assert_not(kgt_case_unmapped(c, unmapped, sizeof unmapped),
                  "%s: the adapter did not map %s", dir, unmapped);
    const char *missed = kgt_case_uncompared(c);
    cr_assert_null(missed, "%s: the expected output %s was never compared", dir, missed);
    kgt_case_free(c);
}

/* An empty or missing folder fails the test: a vector set that silently vanished tests nothing. */
void kgt_each_case(const char *kernel, void (*run)(kgt_case *c))
{
    char dir[512], **names;
    int count;
    snprintf(dir, sizeof dir, "%s/vectors/%s", kgt_shared_dir(), kernel);
    cr_assert_eq(kgt_case_list(dir, &names, &count), 0, "cannot list %s", dir);
    cr_assert_gt(count, 0, "no cases in %s", dir);
    for (int i = 0; i < count; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        kgt_run_case(path, run);
    }
    kgt_case_list_free(names, count);
}

/* The kernels of `family` in reg. */
static int family_count(const kg_registry *reg, const char *family)
{
    int n = 0;
    for (int i = 0; i < kg_registry_count(reg); i++)
        n += strcmp(kg_registry_at(reg, i)->family, family) == 0;
    return n;
}

/* Spec by spec, so a kernel missing from one spec's generated/ folder is named with its spec.
 * The AOT side is kernels.inc through the preprocessor (the AOT registration), the JIT side
 * manifest.json through kg_jit_load_dir: their counts must agree, or a kernel of the list would
 * go uncompared. */
int kgt_each_aot_jit_pair(const char *family, kgt_pair_fn *fn)
{
    int pairs = 0;
    for (int s = 0; s < kg_aot_spec_count(); s++) {
        const char *spec = kg_aot_spec_name(s);
        kg_registry *aot = kg_registry_new(), *jitreg = kg_registry_new();
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/generated/%s", kgt_source_dir(), spec);
        cr_assert_eq(kg_aot_register(aot, spec), KG_OK, "%s", kg_registry_error(aot));
        cr_assert_eq(kg_jit_load_dir(jitreg, dir, NULL), KG_OK, "%s", kg_registry_error(jitreg));
        int in_spec = 0;
        for (int i = 0; i < kg_registry_count(aot); i++) {
            const kg_kernel *a = kg_registry_at(aot, i);
            if (strcmp(a->family, family) != 0)
                continue;
            const kg_kernel *j = kg_registry_find(jitreg, a->name);
            cr_assert_not_null(j, "%s: %s is not in %s", spec, a->name, dir);
            long before = kgt_builds_compared();
            fn(a, j);
            cr_assert_gt(kgt_builds_compared(), before, "%s: %s: the JIT and AOT outputs were "
                         "never compared", spec, a->name);
            in_spec++;
        }
        int listed = family_count(jitreg, family);
        cr_assert_eq(in_spec, listed, "%s: %d %s kernels in the AOT build, %d in %s/manifest.json",
                     spec, in_spec, family, listed, dir);
        pairs += in_spec;
        kg_registry_free(aot);
        kg_registry_free(jitreg);
    }
    cr_assert_gt(pairs, 0, "no AOT-built spec has a %s kernel", family);
    return pairs;
}
