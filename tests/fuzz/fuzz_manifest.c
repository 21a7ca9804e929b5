/* fuzz_manifest.c: libFuzzer target of the manifest reader (kg_manifest_parse). A generated
 * folder's manifest.json is what run, bench and exec trust for shapes and costs, and a folder
 * may come from elsewhere: any text must be read or refused with one line naming the file,
 * and what it accepts must answer every question tools ask of it without overflow. */
#include "fuzz.h"

#include "kgen/manifest.h"

#define LABEL "fuzz/manifest.json"

/* The questions kgen run and bench ask of a kernel: sizes at the nominal point and at a few
 * token counts, the tokens of those sizes, the cost polynomial, and every argument's shape. */
static void ask(const kg_manifest *m, const kg_manifest_kernel *k)
{
    static const long TOKENS[] = { 0, 1, 7, 4096 };
    FZ_CHECK(k->ncalls >= 0 && k->ncalls <= KG_MANIFEST_MAX_CALLS, "ncalls %d", k->ncalls);
    FZ_CHECK(k->nargs >= 0 && k->nargs <= KG_MANIFEST_MAX_ARGS, "nargs %d", k->nargs);
    FZ_CHECK(kg_manifest_find(m, k->symbol) != NULL, "a kernel's own symbol is not found");
    kg_kernel_info info = kg_manifest_info(k);
    FZ_CHECK(info.name == k->symbol, "kg_manifest_info names another kernel");
    for (size_t t = 0; t < sizeof TOKENS / sizeof *TOKENS; t++) {
        long n[KG_MANIFEST_MAX_CALLS], shape[KG_MANIFEST_MAX_RANK];
        double cost[3];
        kg_manifest_sizes(k, TOKENS[t], n);
        volatile long tokens = kg_manifest_tokens(k, n);
        (void)tokens;
        kg_manifest_cost(k, TOKENS[t], cost);
        for (int a = 0; a < k->nargs; a++) {
            int rank = kg_manifest_shape(&k->args[a], n, shape);
            FZ_CHECK(rank >= 0 && rank <= KG_MANIFEST_MAX_RANK, "rank %d", rank);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512] = "";
    kg_manifest *m = (kg_manifest *)&err; /* must be overwritten */
    int rc = kg_manifest_parse((const char *)data, size, LABEL, &m, err, sizeof err);
    if (rc != KG_OK) {
        FZ_CHECK(rc == KG_ESPEC, "rc %d", rc);
        FZ_CHECK(m == NULL, "a refused manifest returned a manifest");
        FZ_CHECK(strncmp(err, LABEL ":", strlen(LABEL) + 1) == 0,
                 "the message does not start with the file: %s", err);
        FZ_CHECK(strchr(err, '\n') == NULL, "the message is not one line: %s", err);
        return 0;
    }
    FZ_CHECK(m && m->spec && m->spec_file && m->source, "accepted with a field missing");
    FZ_CHECK(m->nkernels >= 0 && m->nkernels <= KG_MANIFEST_MAX_KERNELS, "%d kernels",
             m->nkernels);
    for (int i = 0; i < m->nkernels; i++)
        ask(m, &m->kernels[i]);
    kg_manifest_free(m);
    return 0;
}
