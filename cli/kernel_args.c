/* kernel_args.c: per-call sizes and seeded argument sets of a kernel (kgargs_). */
#include <stdio.h>
#include <string.h>

#include "kernel_args.h"
#include "tensor.h"

/* The index of call size `name` in d, or -1. */
static int call_index(const kgg_kernel *d, const char *name)
{
    for (int i = 0; i < d->ncalls; i++)
        if (!strcmp(d->calls[i], name))
            return i;
    return -1;
}

/* Whether call size i of d is a token count (rows or T). */
static int is_tokens(const kgg_kernel *d, int i)
{
    return !strcmp(d->calls[i], "rows") || !strcmp(d->calls[i], "T");
}

int kgargs_call_sizes(const kgg_kernel *d, long tokens, long *n)
{
    int b = call_index(d, "B"), s = call_index(d, "S"), fits = 1, any = 0;
    for (int i = 0; i < d->ncalls; i++) {
        n[i] = d->nominal[i];
        if (is_tokens(d, i) && tokens) {
            fits &= tokens <= n[i], any = 1;
            n[i] = tokens;
        }
    }
    if (b >= 0 && s >= 0 && tokens) {
        fits &= tokens <= n[b] * n[s], any = 1;
        n[b] = 1, n[s] = tokens;
    }
    /* every token count must fit the buffers (a kernel with T and [B, S] has both) */
    return tokens && !(fits && any) ? -1 : 0;
}

long kgargs_call_tokens(const kgg_kernel *d, const long *n)
{
    int b = call_index(d, "B"), s = call_index(d, "S");
    for (int i = 0; i < d->ncalls; i++)
        if (is_tokens(d, i))
            return n[i];
    return b >= 0 && s >= 0 ? n[b] * n[s] : 0;
}

int kgargs_new(const kgg_kernel *d, void **t, char *err, size_t errlen)
{
    char why[256];
    for (int i = 0; i < KGG_MAX_ARGS; i++)
        t[i] = NULL;
    if (d->nargs > KGG_MAX_ARGS) {
        snprintf(err, errlen, "%s: %d arguments, more than this kgen holds (KGG_MAX_ARGS = %d)",
                 d->name, d->nargs, KGG_MAX_ARGS);
        return -1;
    }
    for (int i = 0; i < d->nargs; i++) {
        const kgg_arg *a = &d->args[i];
        if (!a->used)
            continue;
        if (!(t[i] = kgbuf_alloc(a))) {
            snprintf(err, errlen, "%s: out of memory for argument '%s'", d->name, a->name);
            kgargs_free(d, t);
            return -1;
        }
        if (!a->out && kgbuf_fill(a, t[i], 0x5eedull + (unsigned long long)i, why, sizeof why)) {
            snprintf(err, errlen, "%s: %s", d->name, why);
            kgargs_free(d, t);
            return -1;
        }
    }
    return 0;
}

void kgargs_free(const kgg_kernel *d, void **t)
{
    for (int i = 0; i < d->nargs && i < KGG_MAX_ARGS; i++) {
        kgbuf_free(&d->args[i], t[i]);
        t[i] = NULL;
    }
}
