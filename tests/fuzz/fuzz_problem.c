/* fuzz_problem.c: libFuzzer target of the problem string parser (kgg_problem), what
 * `kgen exec PROBLEM` reads. Any string must give a kernel or a one-line message. A kernel it
 * gives must be whole (name, canonical problem, text, arguments within kgg_kernel's arrays),
 * its canonical problem must give the same kernel again, and its C must compile: an accepted
 * problem whose code the JIT rejects would fail only at run time. */
#include "fuzz.h"

#include "host.h"
#include "kgen/kgen.h"

static kgg *g;

/* The kernel's text through libtcc, as `kgen exec` compiles it. */
static void compile(const kgg_kernel *k)
{
    kg_registry *reg = kg_registry_new();
    FZ_CHECK(reg != NULL, "out of memory");
    kg_kernel_info info = { k->family, k->name, k->problem, k->flops, k->read, k->written };
    const char *label = "fuzz_problem.c", *src = k->text;
    int rc = kg_jit_compile(reg, 1, &info, &label, &src, NULL);
    FZ_CHECK(rc == KG_OK, "problem '%s' was accepted but its C does not compile: %s",
             k->problem, kg_registry_error(reg));
    FZ_CHECK(kg_registry_find(reg, k->name) != NULL, "compiled, but %s is not registered",
             k->name);
    kg_registry_free(reg);
}

static void check_kernel(const char *problem, const kgg_kernel *k)
{
    FZ_CHECK(k->name && k->family && k->problem && k->text, "'%s': a field is missing",
             problem);
    FZ_CHECK(k->nargs > 0 && k->nargs <= KGG_MAX_ARGS, "'%s': %d arguments", problem, k->nargs);
    FZ_CHECK(k->ncalls >= 0 && k->ncalls <= KGG_MAX_CALLS, "'%s': %d per-call sizes", problem,
             k->ncalls);
    for (int i = 0; i < k->nargs; i++)
        FZ_CHECK(k->args[i].rank >= 0 && k->args[i].rank <= KGG_MAX_RANK, "'%s': rank %d",
                 problem, k->args[i].rank);
    /* the canonical string is a fixed point: it names the same kernel */
    kgg_kernel again;
    int rc = kgg_problem(g, k->problem, &again);
    FZ_CHECK(rc == KG_OK, "canonical '%s' of '%s' is refused: %s", k->problem, problem,
             kgg_error(g));
    FZ_CHECK(strcmp(again.name, k->name) == 0 && strcmp(again.problem, k->problem) == 0,
             "'%s' gives %s, its canonical string gives %s; canonical strings: '%s', '%s'",
             problem, k->name, again.name, k->problem, again.problem);
    FZ_CHECK(strcmp(again.text, k->text) == 0, "'%s': the text is not deterministic", problem);
    kgg_kernel_clear(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g)
        FZ_CHECK((g = kgg_new()) != NULL, "kgg_new failed");
    char *problem = fz_string(data, size);
    kgg_kernel k;
    int rc = kgg_problem(g, problem, &k);
    if (rc != KG_OK) {
        FZ_CHECK(rc == KG_ESPEC, "'%s': rc %d", problem, rc);
        FZ_CHECK(kgg_error(g)[0] != '\0', "'%s' refused without a message", problem);
    } else {
        check_kernel(problem, &k);
        compile(&k);
        kgg_kernel_clear(&k);
    }
    free(problem);
    return 0;
}
