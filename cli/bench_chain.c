/* bench_chain.c: the chain of single-op kernels a megakernel equals, timed (kgbc_). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_chain.h"
#include "host.h"
#include "kgen/gcc.h"
#include "kgen/kgen.h"
#include "tensor.h"

/* At most this many kernel calls a pass: num_layers * kv_heads attention blocks (at most 63, as
 * a list holds), num_layers (at most 32) output projections and as many MLPs. */
enum { MAX_CALLS = 128, MAX_KERNELS = 8, MAX_SETS = 16 };

typedef struct chain {
    kgg_kernel kk[MAX_KERNELS]; /* the distinct kernels, as generated */
    int nk;
    const kg_kernel *k[MAX_CALLS];
    const kgg_kernel *desc[MAX_CALLS];
    void *t[MAX_SETS][MAX_CALLS][KGG_MAX_ARGS]; /* argument sets, used in turn */
    int n, sets, next;
} chain;

static int call_chain(void *ctx)
{
    chain *c = ctx;
    int s = c->next;
    c->next = (s + 1) % c->sets;
    for (int i = 0; i < c->n; i++) {
        int rc = c->k[i]->call(c->t[s][i], c->desc[i]->nominal);
        if (rc != KG_OK)
            return rc;
    }
    return KG_OK;
}

/* The chain's kernels (from the generator's "chain" lines "CALLS PROBLEM") into c, distinct
 * ones generated once, each call's kernel in c->desc. */
static int read_chain(kgg *g, const char *text, chain *c, char *err, size_t errlen)
{
    const char *line = text;
    char prob[4096];
    int calls;
    while (*line) {
        const char *end = strchr(line, '\n');
        if (!end || sscanf(line, "%d %4095s", &calls, prob) != 2 || calls < 1)
            return snprintf(err, errlen, "a chain line is not 'CALLS PROBLEM'"), KG_ESPEC;
        int j = 0;
        while (j < c->nk && strcmp(c->kk[j].problem, prob) != 0)
            j++;
        if (j == c->nk) {
            if (c->nk == MAX_KERNELS)
                return snprintf(err, errlen, "more than %d kernels in a chain", MAX_KERNELS),
                       KG_ESPEC;
            if (kgg_problem(g, prob, &c->kk[j]) != KG_OK)
                return snprintf(err, errlen, "%s", kgg_error(g)), KG_ESPEC;
            c->nk++;
        }
        for (int r = 0; r < calls; r++) {
            if (c->n == MAX_CALLS)
                return snprintf(err, errlen, "more than %d calls in a chain", MAX_CALLS),
                       KG_ESPEC;
            c->desc[c->n++] = &c->kk[j];
        }
        line = end + 1;
    }
    return KG_OK;
}

static int compile(kg_registry *reg, chain *c, int aot, char *err, size_t errlen)
{
    kg_kernel_info info[MAX_KERNELS];
    const char *labels[MAX_KERNELS], *srcs[MAX_KERNELS];
    char names[MAX_KERNELS][512];
    for (int j = 0; j < c->nk; j++) {
        const kgg_kernel *k = &c->kk[j];
        info[j] = (kg_kernel_info){ k->family, k->name, k->problem, k->flops, k->read,
                                    k->written };
        snprintf(names[j], sizeof names[j], "%s.c", k->name);
        labels[j] = names[j], srcs[j] = k->text;
    }
    int rc = aot ? kg_gcc_compile(reg, c->nk, info, labels, srcs, NULL)
                 : kg_jit_compile(reg, c->nk, info, labels, srcs, NULL);
    if (rc != KG_OK)
        snprintf(err, errlen, "%s", kg_registry_error(reg));
    for (int i = 0; rc == KG_OK && i < c->n; i++)
        c->k[i] = kg_registry_find(reg, c->desc[i]->name);
    return rc;
}

/* Every call's own arguments, inputs seeded (per call, so each layer has its weights), in
 * c->sets sets (fewer if the cap on argument memory holds fewer; one at least). */
static int make_args(chain *c, char *err, size_t errlen)
{
    size_t total = 0;
    for (int s = 0; s < c->sets; s++)
        for (int i = 0; i < c->n; i++) {
            int rc = kgbuf_budget(c->desc[i]->name, c->desc[i]->args, c->desc[i]->nargs, &total,
                                  err, errlen);
            if (rc != KG_OK && s == 0)
                return rc;
            if (rc != KG_OK) {
                c->sets = s;
                break;
            }
        }
    for (int s = 0; s < c->sets; s++)
        for (int i = 0; i < c->n; i++)
        for (int a = 0; a < c->desc[i]->nargs; a++) {
            const kgg_arg *x = &c->desc[i]->args[a];
            if (!x->used)
                continue;
            if (!(c->t[s][i][a] = kgbuf_alloc(x)))
                return snprintf(err, errlen, "%s: out of memory", c->desc[i]->name), KG_ENOMEM;
            if (!x->out && kgbuf_fill(x, c->t[s][i][a], 0xc4a1ull * (unsigned)(i + 1) +
                                      (unsigned)a + 977ull * (unsigned)s, err, errlen))
                return KG_ENOMEM;
        }
    return KG_OK;
}

int kgbc_has(const char *problem)
{
    kgg *g = kgg_new();
    char *text = NULL;
    int has = g && kgg_string_call(g, "chain", problem, &text) == KG_OK && text && *text;
    free(text);
    kgg_free(g);
    return has;
}

int kgbc_time(const kgb_options *o, const char *problem, int aot, int sets,
              const kgbc_peer *mega, kgbc_times *out, char *err, size_t errlen)
{
    *out = (kgbc_times){ 0 };
    chain *c = calloc(1, sizeof *c);
    if (c)
        c->sets = sets < 1 ? 1 : sets > MAX_SETS ? MAX_SETS : sets;
    kgg *g = kgg_new();
    kg_registry *reg = kg_registry_new();
    char *text = NULL;
    int rc = c && g && reg ? KG_OK : KG_ENOMEM;
    if (rc != KG_OK)
        snprintf(err, errlen, "out of memory");
    if (rc == KG_OK && (rc = kgg_string_call(g, "chain", problem, &text)) != KG_OK)
        snprintf(err, errlen, "%s", kgg_error(g));
    if (rc == KG_OK && !*text)
        rc = KG_ENOTFOUND;
    if (rc == KG_OK)
        rc = read_chain(g, text, c, err, errlen);
    if (rc == KG_OK)
        rc = compile(reg, c, aot, err, errlen);
    if (rc == KG_OK)
        rc = make_args(c, err, errlen);
    if (rc == KG_OK && (rc = kgb_time(o, call_chain, c, &out->seconds, &out->pace)) != KG_OK)
        snprintf(err, errlen, "a chain kernel returned status %d", rc);
    if (rc == KG_OK && mega &&
        (rc = kgb_time_ab(o, mega->fn, mega->ctx, call_chain, c, &out->ab_mega, &out->ab_chain,
                          &out->ab_ratio)) != KG_OK)
        snprintf(err, errlen, "the megakernel or a chain kernel returned status %d", rc);
    if (rc == KG_OK)
        out->calls = c->n;
    for (int s = 0; c && s < MAX_SETS; s++)
        for (int i = 0; i < c->n; i++)
            for (int a = 0; a < c->desc[i]->nargs; a++)
                kgbuf_free(&c->desc[i]->args[a], c->t[s][i][a]);
    for (int j = 0; c && j < c->nk; j++)
        kgg_kernel_clear(&c->kk[j]);
    free(text);
    free(c);
    kg_registry_free(reg);
    kgg_free(g);
    return rc;
}
