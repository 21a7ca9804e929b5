/* manifest.c: reads manifest.json (kgen/manifest.h) with jansson into fixed-size records. The
 * text comes from a file kgen wrote or from kgen in memory, but it is still input: every count,
 * rank, size and string length is bounded, and the first problem found is reported as one
 * line, "<file>: field '<path>': <why>". */
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/manifest.h"
#include "readfile.h"

/* ---- errors ------------------------------------------------------------------------------- */

typedef struct reader {
    const char *label;
    char *err;
    size_t errlen;
} reader;

static int bad(const reader *r, const char *field, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(r->err, r->errlen, "%s: field '%s': %s", r->label, field, why);
    return KG_ESPEC;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* ---- typed fields ------------------------------------------------------------------------- */

/* "<path>.<key>" into buf, for messages. Paths are kgen's own field names and indices, a few
 * dozen characters; the bounds in the formats only make that visible to the compiler. */
static const char *join(char *buf, size_t len, const char *path, const char *key)
{
    snprintf(buf, len, "%.100s%s%.40s", path, *path ? "." : "", key);
    return buf;
}

static int get(const reader *r, const json_t *o, const char *path, const char *key,
               json_t **v)
{
    char f[256];
    *v = json_object_get(o, key);
    return *v ? KG_OK : bad(r, join(f, sizeof f, path, key), "missing");
}

/* A string of at most len - 1 bytes into buf (len 0: any length, strdup'ed into *dup). */
static int get_str(const reader *r, const json_t *o, const char *path, const char *key,
                   char *buf, size_t len, char **dup)
{
    char f[256];
    json_t *v;
    int rc = get(r, o, path, key, &v);
    if (rc != KG_OK)
        return rc;
    join(f, sizeof f, path, key);
    if (!json_is_string(v))
        return bad(r, f, "expected a string, got %s", type_name(v));
    const char *s = json_string_value(v);
    if (dup)
        return (*dup = strdup(s)) ? KG_OK : bad(r, f, "out of memory");
    if (strlen(s) >= len)
        return bad(r, f, "longer than %zu characters", len - 1);
    memcpy(buf, s, strlen(s) + 1);
    return KG_OK;
}

static int get_bool(const reader *r, const json_t *o, const char *path, const char *key,
                    int *out)
{
    char f[256];
    json_t *v;
    int rc = get(r, o, path, key, &v);
    if (rc != KG_OK)
        return rc;
    if (!json_is_boolean(v))
        return bad(r, join(f, sizeof f, path, key), "expected a boolean, got %s", type_name(v));
    *out = json_is_true(v);
    return KG_OK;
}

/* An integer in [lo, hi]. */
static int as_long(const reader *r, const json_t *v, const char *field, long lo, long hi,
                   long *out)
{
    if (!json_is_integer(v))
        return bad(r, field, "expected an integer, got %s", type_name(v));
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return bad(r, field, "%lld is outside [%ld, %ld]", (long long)x, lo, hi);
    *out = (long)x;
    return KG_OK;
}

/* A finite number of magnitude below 2^62 (costs: flops and bytes). */
static int as_number(const reader *r, const json_t *v, const char *field, double *out)
{
    if (!json_is_number(v))
        return bad(r, field, "expected a number, got %s", type_name(v));
    double x = json_number_value(v);
    if (!isfinite(x) || fabs(x) >= 0x1p62)
        return bad(r, field, "%g is not a cost", x);
    *out = x;
    return KG_OK;
}

/* An array of at most max elements (its size in *n). */
static int get_array(const reader *r, const json_t *o, const char *path, const char *key,
                     size_t max, json_t **a, int *n)
{
    char f[256];
    *n = 0; /* on every path: a caller that stops at an error never reads a stale count */
    int rc = get(r, o, path, key, a);
    if (rc != KG_OK)
        return rc;
    join(f, sizeof f, path, key);
    if (!json_is_array(*a))
        return bad(r, f, "expected an array, got %s", type_name(*a));
    if (json_array_size(*a) > max)
        return bad(r, f, "%zu elements, more than %zu", json_array_size(*a), max);
    *n = (int)json_array_size(*a);
    return KG_OK;
}

static int expect_object(const reader *r, const json_t *v, const char *field)
{
    return json_is_object(v) ? KG_OK
                             : bad(r, field, "expected an object, got %s", type_name(v));
}

/* ---- one kernel --------------------------------------------------------------------------- */

static const char *const AXES[] = { "none", "batch", "seq" };

static int read_call(const reader *r, const json_t *o, const char *path, kg_manifest_call *c)
{
    char f[256];
    json_t *v;
    int rc = expect_object(r, o, path);
    if (rc == KG_OK)
        rc = get_str(r, o, path, "name", c->name, sizeof c->name, NULL);
    if (rc == KG_OK && (rc = get(r, o, path, "nominal", &v)) == KG_OK)
        rc = as_long(r, v, join(f, sizeof f, path, "nominal"), 1, KG_MANIFEST_MAX_DIM,
                     &c->nominal);
    if (rc != KG_OK || (rc = get(r, o, path, "tokens", &v)) != KG_OK)
        return rc;
    c->tokens = KG_AXIS_NONE;
    if (json_is_null(v))
        return KG_OK;
    for (int a = KG_AXIS_BATCH; a <= KG_AXIS_SEQ; a++)
        if (json_is_string(v) && !strcmp(json_string_value(v), AXES[a]))
            return c->tokens = a, KG_OK;
    return bad(r, join(f, sizeof f, path, "tokens"), "expected \"batch\", \"seq\" or null");
}

/* The index of per-call size `name` in k, or -1. */
static int call_index(const kg_manifest_kernel *k, const char *name)
{
    for (int i = 0; i < k->ncalls; i++)
        if (!strcmp(k->calls[i].name, name))
            return i;
    return -1;
}

/* One axis: an integer, a per-call size's name, or (first axis) "...name". */
static int read_dim(const reader *r, const json_t *v, const char *field, int axis,
                    const kg_manifest_kernel *k, kg_manifest_dim *d)
{
    d->call = -1, d->lead = 0, d->value = 0;
    if (json_is_integer(v))
        return as_long(r, v, field, 0, KG_MANIFEST_MAX_DIM, &d->value);
    if (!json_is_string(v))
        return bad(r, field, "expected an integer or a per-call size, got %s", type_name(v));
    const char *s = json_string_value(v);
    d->lead = strncmp(s, "...", 3) == 0;
    if (d->lead && axis != 0)
        return bad(r, field, "'%s': only the first axis may stand for leading axes", s);
    d->call = call_index(k, s + (d->lead ? 3 : 0));
    return d->call >= 0 ? KG_OK : bad(r, field, "'%s' is not a per-call size of the kernel", s);
}

/* The tokens of a call at the nominal sizes (the product of the batch axes times the first
 * sequence axis) is a size tools allocate from: bounded like any one size. */
static int check_tokens(const reader *r, const char *path, const kg_manifest_kernel *k)
{
    char f[256];
    long n[KG_MANIFEST_MAX_CALLS];
    kg_manifest_sizes(k, 0, n);
    long tokens = kg_manifest_tokens(k, n);
    if (tokens <= KG_MANIFEST_MAX_DIM)
        return KG_OK;
    return bad(r, join(f, sizeof f, path, "calls"),
               "the tokens at the nominal sizes (batch axes times the sequence) pass 2^40");
}

static int read_weight(const reader *r, const json_t *o, const char *path, kg_manifest_arg *a)
{
    char f[256];
    json_t *w = json_object_get(o, "weight");
    a->weight = w != NULL;
    if (!w)
        return KG_OK;
    join(f, sizeof f, path, "weight");
    int rc = expect_object(r, w, f);
    if (rc == KG_OK)
        rc = get_str(r, w, f, "layout", a->wt_layout, sizeof a->wt_layout, NULL);
    if (rc == KG_OK)
        rc = get_bool(r, w, f, "mx", &a->wt_mx);
    return rc;
}

/* "list": { count, given, alt_dtype, alt } of a list argument (absent: a plain one). */
static int read_list(const reader *r, const json_t *o, const char *path, kg_manifest_arg *a)
{
    char f[256], g[300];
    json_t *l = json_object_get(o, "list"), *v;
    long count, given, alt;
    a->list = 0, a->list_given = a->list_alt = 0;
    snprintf(a->alt_dtype, sizeof a->alt_dtype, "%s", a->dtype);
    if (!l)
        return KG_OK;
    join(f, sizeof f, path, "list");
    int rc = expect_object(r, l, f);
    if (rc == KG_OK && (rc = get(r, l, f, "count", &v)) == KG_OK)
        rc = as_long(r, v, join(g, sizeof g, f, "count"), 1, KG_MANIFEST_MAX_LIST, &count);
    long all = rc == KG_OK ? (long)((1UL << count) - 1UL) : 0;
    if (rc == KG_OK && (rc = get(r, l, f, "given", &v)) == KG_OK)
        rc = as_long(r, v, join(g, sizeof g, f, "given"), 0, all, &given);
    if (rc == KG_OK && (rc = get(r, l, f, "alt", &v)) == KG_OK)
        rc = as_long(r, v, join(g, sizeof g, f, "alt"), 0, all, &alt);
    if (rc == KG_OK)
        rc = get_str(r, l, f, "alt_dtype", a->alt_dtype, sizeof a->alt_dtype, NULL);
    if (rc == KG_OK)
        a->list = (int)count, a->list_given = (unsigned long)given,
        a->list_alt = (unsigned long)alt;
    return rc;
}

static int read_arg(const reader *r, const json_t *o, const char *path,
                    const kg_manifest_kernel *k, kg_manifest_arg *a)
{
    static const char *const DIRS[] = { "in", "out", "inout" };
    char f[256], dir[8];
    json_t *shape;
    int rc = expect_object(r, o, path);
    if (rc == KG_OK)
        rc = get_str(r, o, path, "name", a->name, sizeof a->name, NULL);
    if (rc == KG_OK)
        rc = get_str(r, o, path, "dtype", a->dtype, sizeof a->dtype, NULL);
    if (rc == KG_OK)
        rc = get_str(r, o, path, "init", a->init, sizeof a->init, NULL);
    if (rc == KG_OK)
        rc = get_str(r, o, path, "dir", dir, sizeof dir, NULL);
    if (rc != KG_OK)
        return rc;
    a->dir = -1;
    for (int i = 0; i < 3; i++)
        if (!strcmp(dir, DIRS[i]))
            a->dir = i;
    if (a->dir < 0)
        return bad(r, join(f, sizeof f, path, "dir"), "expected in, out or inout, got '%s'", dir);
    if ((rc = get_bool(r, o, path, "used", &a->used)) != KG_OK ||
        (rc = get_bool(r, o, path, "scalar", &a->scalar)) != KG_OK ||
        (rc = get_bool(r, o, path, "first_row", &a->first_row)) != KG_OK ||
        (rc = read_weight(r, o, path, a)) != KG_OK ||
        (rc = read_list(r, o, path, a)) != KG_OK ||
        (rc = get_array(r, o, path, "shape", KG_MANIFEST_MAX_RANK, &shape, &a->rank)) != KG_OK)
        return rc;
    for (int i = 0; i < a->rank && rc == KG_OK; i++) {
        snprintf(f, sizeof f, "%.100s.shape[%d]", path, i);
        rc = read_dim(r, json_array_get(shape, (size_t)i), f, i, k, &a->shape[i]);
    }
    return rc;
}

static const char *const COSTS[] = { "flops", "bytes_read", "bytes_written" };

static int read_costs(const reader *r, const json_t *o, const char *path, kg_manifest_kernel *k)
{
    char f[256], g[300];
    json_t *c, *p;
    int rc = get(r, o, path, "cost", &c);
    if (rc == KG_OK)
        rc = expect_object(r, c, join(f, sizeof f, path, "cost"));
    for (int i = 0; i < 3 && rc == KG_OK; i++) {
        json_t *v;
        if ((rc = get(r, c, f, COSTS[i], &v)) == KG_OK)
            rc = as_number(r, v, join(g, sizeof g, f, COSTS[i]), &k->cost[i]);
    }
    if (rc == KG_OK && (rc = get(r, o, path, "cost_tokens", &p)) == KG_OK)
        rc = expect_object(r, p, join(f, sizeof f, path, "cost_tokens"));
    for (int i = 0; i < 3 && rc == KG_OK; i++) {
        json_t *a;
        int n;
        if ((rc = get_array(r, p, f, COSTS[i], 3, &a, &n)) != KG_OK)
            break;
        if (n != 3)
            return bad(r, join(g, sizeof g, f, COSTS[i]), "expected 3 coefficients, got %d", n);
        for (int j = 0; j < 3 && rc == KG_OK; j++) {
            snprintf(g, sizeof g, "%.100s.%s[%d]", f, COSTS[i], j);
            rc = as_number(r, json_array_get(a, (size_t)j), g, &k->cost_tokens[i][j]);
        }
    }
    return rc;
}

static int read_kernel(const reader *r, const json_t *o, const char *path,
                       kg_manifest_kernel *k)
{
    char f[256];
    json_t *calls, *args;
    int rc = expect_object(r, o, path);
    char **strs[] = { (char **)&k->symbol, (char **)&k->family, (char **)&k->problem,
                      (char **)&k->file, (char **)&k->template_name };
    static const char *const keys[] = { "symbol", "family", "problem", "file", "template" };
    for (int i = 0; i < 5 && rc == KG_OK; i++)
        rc = get_str(r, o, path, keys[i], NULL, 0, strs[i]);
    if (rc == KG_OK && (strchr(k->file, '/') || !strcmp(k->file, "..")))
        rc = bad(r, join(f, sizeof f, path, "file"), "'%s' is not a file name", k->file);
    if (rc == KG_OK)
        rc = get_array(r, o, path, "calls", KG_MANIFEST_MAX_CALLS, &calls, &k->ncalls);
    for (int i = 0; i < k->ncalls && rc == KG_OK; i++) {
        snprintf(f, sizeof f, "%.100s.calls[%d]", path, i);
        rc = read_call(r, json_array_get(calls, (size_t)i), f, &k->calls[i]);
    }
    if (rc == KG_OK)
        rc = check_tokens(r, path, k);
    if (rc == KG_OK)
        rc = get_array(r, o, path, "args", KG_MANIFEST_MAX_ARGS, &args, &k->nargs);
    for (int i = 0; i < k->nargs && rc == KG_OK; i++) {
        snprintf(f, sizeof f, "%.100s.args[%d]", path, i);
        rc = read_arg(r, json_array_get(args, (size_t)i), f, k, &k->args[i]);
    }
    return rc == KG_OK ? read_costs(r, o, path, k) : rc;
}

/* ---- the document ------------------------------------------------------------------------- */

static int read_doc(const reader *r, const json_t *doc, kg_manifest *m)
{
    json_t *ks;
    int rc = expect_object(r, doc, "(top)");
    if (rc == KG_OK)
        rc = get_str(r, doc, "", "spec", NULL, 0, (char **)&m->spec);
    if (rc == KG_OK)
        rc = get_str(r, doc, "", "spec_file", NULL, 0, (char **)&m->spec_file);
    if (rc == KG_OK)
        rc = get_array(r, doc, "", "kernels", KG_MANIFEST_MAX_KERNELS, &ks, &m->nkernels);
    if (rc != KG_OK)
        return rc;
    m->kernels = calloc((size_t)m->nkernels + 1, sizeof *m->kernels);
    if (!m->kernels)
        return m->nkernels = 0, bad(r, "kernels", "out of memory");
    for (int i = 0; i < m->nkernels && rc == KG_OK; i++) {
        char path[64];
        snprintf(path, sizeof path, "kernels[%d]", i);
        rc = read_kernel(r, json_array_get(ks, (size_t)i), path, &m->kernels[i]);
    }
    return rc;
}

int kg_manifest_parse(const char *text, size_t len, const char *label, kg_manifest **out,
                      char *err, size_t errlen)
{
    reader r = { label, err, errlen };
    json_error_t je;
    *out = NULL;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!doc) {
        snprintf(err, errlen, "%s:%d:%d: not JSON: %s", label, je.line, je.column, je.text);
        return KG_ESPEC;
    }
    kg_manifest *m = calloc(1, sizeof *m);
    int rc = m && (m->source = strdup(label)) ? read_doc(&r, doc, m)
                                              : bad(&r, "(top)", "out of memory");
    json_decref(doc);
    if (rc != KG_OK) {
        kg_manifest_free(m);
        return rc;
    }
    *out = m;
    return KG_OK;
}

int kg_manifest_load(const char *dir, kg_manifest **m, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    *m = NULL;
    size_t len;
    char *text = kgrf_read(path, KG_MANIFEST_MAX_BYTES, &len, err, errlen);
    if (!text)
        return KG_EIO;
    int rc = kg_manifest_parse(text, len, path, m, err, errlen);
    free(text);
    return rc;
}

void kg_manifest_free(kg_manifest *m)
{
    if (!m)
        return;
    for (int i = 0; m->kernels && i < m->nkernels; i++) {
        kg_manifest_kernel *k = &m->kernels[i];
        free((char *)k->symbol), free((char *)k->family), free((char *)k->problem);
        free((char *)k->file), free((char *)k->template_name);
    }
    free(m->kernels);
    free((char *)m->spec), free((char *)m->spec_file), free((char *)m->source);
    free(m);
}

/* ---- questions tools ask ------------------------------------------------------------------ */

const kg_manifest_kernel *kg_manifest_find(const kg_manifest *m, const char *symbol)
{
    for (int i = 0; i < m->nkernels; i++)
        if (!strcmp(m->kernels[i].symbol, symbol))
            return &m->kernels[i];
    return NULL;
}

kg_kernel_info kg_manifest_info(const kg_manifest_kernel *k)
{
    return (kg_kernel_info){ k->family, k->symbol, k->problem, k->cost[KG_COST_FLOPS],
                             k->cost[KG_COST_READ], k->cost[KG_COST_WRITTEN] };
}

void kg_manifest_sizes(const kg_manifest_kernel *k, long tokens, long *n)
{
    for (int i = 0; i < k->ncalls; i++) {
        int axis = tokens ? k->calls[i].tokens : KG_AXIS_NONE;
        n[i] = axis == KG_AXIS_BATCH ? 1 : axis == KG_AXIS_SEQ ? tokens : k->calls[i].nominal;
    }
}

long kg_manifest_tokens(const kg_manifest_kernel *k, const long *n)
{
    long batch = 1, seq = 0, tokens;
    int over = 0;
    for (int i = 0; i < k->ncalls; i++) {
        if (k->calls[i].tokens == KG_AXIS_BATCH)
            over |= __builtin_mul_overflow(batch, n[i], &batch);
        else if (k->calls[i].tokens == KG_AXIS_SEQ && !seq)
            seq = n[i];
    }
    over |= __builtin_mul_overflow(batch, seq, &tokens);
    return over ? LONG_MAX : tokens;
}

void kg_manifest_cost(const kg_manifest_kernel *k, long tokens, double cost[3])
{
    double t = (double)tokens;
    for (int i = 0; i < 3; i++)
        cost[i] = k->cost_tokens[i][0] + k->cost_tokens[i][1] * t + k->cost_tokens[i][2] * t * t;
}

int kg_manifest_shape(const kg_manifest_arg *a, const long *n, long *shape)
{
    for (int i = 0; i < a->rank; i++)
        shape[i] = a->shape[i].call < 0 ? a->shape[i].value : n[a->shape[i].call];
    return a->rank;
}
