/* kernel_args.c: per-call sizes and seeded argument sets of a manifest's kernel (kgargs_). */
#include <stdio.h>
#include <string.h>

#include "kernel_args.h"
#include "kgen/kgen.h"
#include "tensor.h"

/* ---- sizes and arguments ------------------------------------------------------------------ */

_Static_assert(KG_MANIFEST_MAX_RANK <= KGG_MAX_RANK && KG_MANIFEST_MAX_ARGS <= KGG_MAX_ARGS &&
               KG_MANIFEST_MAX_CALLS <= KGG_MAX_CALLS && KG_MANIFEST_MAX_LIST <= KGG_MAX_LIST,
               "a manifest's kernel fits a kgg_kernel");

void kgargs_arg_at(const kg_manifest_kernel *k, int i, const long *n, kgg_arg *a)
{
    const kg_manifest_arg *m = &k->args[i];
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", m->name);
    snprintf(a->dtype, sizeof a->dtype, "%s", m->dtype);
    snprintf(a->init, sizeof a->init, "%s", m->init);
    snprintf(a->wt_layout, sizeof a->wt_layout, "%s", m->wt_layout);
    a->out = m->dir == KG_ARG_OUT;
    a->inout = m->dir == KG_ARG_INOUT;
    a->used = m->used;
    a->scalar = m->scalar || m->first_row;
    a->weight = m->weight;
    a->wt_mx = m->wt_mx;
    a->rank = kg_manifest_shape(m, n, a->shape);
    a->list = m->list, a->list_given = m->list_given, a->list_alt = m->list_alt;
    snprintf(a->alt_dtype, sizeof a->alt_dtype, "%s", m->alt_dtype);
}

int kgargs_call_sizes(const kg_manifest_kernel *k, long tokens, long *n)
{
    long nominal[KG_MANIFEST_MAX_CALLS];
    kg_manifest_sizes(k, 0, nominal);
    kg_manifest_sizes(k, tokens, n);
    if (!tokens)
        return 0;
    int axes = 0;
    for (int i = 0; i < k->ncalls; i++)
        axes += k->calls[i].tokens != KG_AXIS_NONE;
    for (int i = 0; i < k->nargs; i++) {
        kgg_arg at, nom;
        kgargs_arg_at(k, i, n, &at);
        kgargs_arg_at(k, i, nominal, &nom);
        long count = kgbuf_count(&at);
        if (at.used && (count < 0 || count > kgbuf_count(&nom)))
            return -1;
    }
    return axes ? 0 : -1;
}

int kgargs_bytes(const kg_manifest_kernel *k, size_t *total, char *err, size_t errlen)
{
    long nominal[KG_MANIFEST_MAX_CALLS];
    kgg_arg a[KG_MANIFEST_MAX_ARGS];
    kg_manifest_sizes(k, 0, nominal);
    for (int i = 0; i < k->nargs; i++)
        kgargs_arg_at(k, i, nominal, &a[i]);
    *total = 0;
    return kgbuf_budget(k->symbol, a, k->nargs, total, err, errlen);
}

int kgargs_check(const kg_manifest *m, const int *sel, int n, char *err, size_t errlen)
{
    size_t bytes;
    for (int i = 0; i < n; i++) {
        int rc = kgargs_bytes(&m->kernels[sel ? sel[i] : i], &bytes, err, errlen);
        if (rc != KG_OK)
            return rc;
    }
    return KG_OK;
}

int kgargs_new(const kg_manifest_kernel *k, void **t, char *err, size_t errlen)
{
    char why[256];
    long nominal[KG_MANIFEST_MAX_CALLS];
    size_t total;
    kg_manifest_sizes(k, 0, nominal);
    for (int i = 0; i < KG_MANIFEST_MAX_ARGS; i++)
        t[i] = NULL;
    int rc = kgargs_bytes(k, &total, err, errlen);
    for (int i = 0; rc == KG_OK && i < k->nargs; i++) {
        kgg_arg a;
        kgargs_arg_at(k, i, nominal, &a);
        if (!a.used)
            continue;
        if (!(t[i] = kgbuf_alloc(&a))) {
            snprintf(err, errlen, "%s: out of memory for argument '%s'", k->symbol, a.name);
            rc = KG_ENOMEM;
        } else if (!a.out &&
                   kgbuf_fill(&a, t[i], 0x5eedull + (unsigned long long)i, why, sizeof why)) {
            snprintf(err, errlen, "%s: %s", k->symbol, why);
            rc = KG_ENOMEM;
        }
    }
    if (rc != KG_OK)
        kgargs_free(k, t);
    return rc;
}

void kgargs_free(const kg_manifest_kernel *k, void **t)
{
    long nominal[KG_MANIFEST_MAX_CALLS];
    kg_manifest_sizes(k, 0, nominal);
    for (int i = 0; i < k->nargs; i++) {
        kgg_arg a;
        kgargs_arg_at(k, i, nominal, &a);
        kgbuf_free(&a, t[i]);
        t[i] = NULL;
    }
}
