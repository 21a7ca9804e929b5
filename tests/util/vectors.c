/* tests/util/vectors.c: loads shared/vectors/<kernel>/<case>/ folders: case.json through jansson,
 * the .npy arrays through kg_npy_read on first use, tolerances by the conventions.json rules. */
#define _POSIX_C_SOURCE 200809L
#include "util/vectors.h"

#include <dirent.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef KGEN_SHARED_DIR
#error "compile tests with -DKGEN_SHARED_DIR='\"/path/to/shared\"'"
#endif

/* An array read on demand; the list owns it until kgt_case_free. */
typedef struct loaded {
    char *name;
    kg_npy arr;
    struct loaded *next;
} loaded;

struct kgt_case {
    char *dir;
    char *base;          /* the folder's base name, the fallback case name */
    json_t *root;        /* case.json */
    loaded *arrays;
    json_t *compared;    /* output name -> true, as the test records comparisons */
    char err[512];       /* why the last array look-up failed */
};

const char *kgt_shared_dir(void)
{
    const char *env = getenv("KGEN_SHARED_DIR");
    return env && *env ? env : KGEN_SHARED_DIR;
}

/* ---- small helpers ------------------------------------------------------------------------ */

/* a + "/" + b + suffix, malloc'd (NULL on allocation failure). */
static char *join(const char *a, const char *b, const char *suffix)
{
    size_t n = strlen(a) + strlen(b) + strlen(suffix) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%s%s", a, b, suffix);
    return s;
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The entry of the array root[list] whose "name" equals name, or NULL. */
static json_t *find_named(const json_t *root, const char *list, const char *name)
{
    json_t *arr = json_object_get(root, list), *item;
    size_t i;
    json_array_foreach(arr, i, item) {
        const char *n = json_string_value(json_object_get(item, "name"));
        if (n && strcmp(n, name) == 0)
            return item;
    }
    return NULL;
}

/* '*' matches any run of characters (possibly empty); everything else matches itself. */
static int glob_match(const char *pat, const char *s)
{
    if (*pat == '\0')
        return *s == '\0';
    if (*pat == '*') {
        for (;; s++) {
            if (glob_match(pat + 1, s))
                return 1;
            if (*s == '\0')
                return 0;
        }
    }
    return *s == *pat && glob_match(pat + 1, s + 1);
}

/* Characters of a pattern other than '*': how specific a wildcard key is. */
static size_t literal_len(const char *pat)
{
    size_t n = 0;
    for (; *pat; pat++)
        n += *pat != '*';
    return n;
}

/* ---- listing -------------------------------------------------------------------------------- */

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int kgt_case_list(const char *kernel_dir, char ***names, int *count)
{
    *names = NULL;
    *count = 0;
    DIR *d = opendir(kernel_dir);
    if (!d)
        return -1;
    char **v = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *path = join(kernel_dir, e->d_name, "/case.json");
        int keep = path && is_file(path);
        free(path);
        if (!keep)
            continue;
        if (n == cap) {
            char **grown = realloc(v, (size_t)(cap ? 2 * cap : 16) * sizeof *v);
            if (!grown)
                goto fail;
            v = grown;
            cap = cap ? 2 * cap : 16;
        }
        if (!(v[n] = strdup(e->d_name)))
            goto fail;
        n++;
    }
    closedir(d);
    if (n)
        qsort(v, (size_t)n, sizeof *v, cmp_names);
    *names = v;
    *count = n;
    return 0;
fail:
    closedir(d);
    kgt_case_list_free(v, n);
    return -1;
}

void kgt_case_list_free(char **names, int count)
{
    for (int i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

/* ---- loading -------------------------------------------------------------------------------- */

/* Formats a load error if the caller asked for one. */
static void load_error(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

kgt_case *kgt_case_load(const char *dir, char *err, size_t errlen)
{
    char *path = join(dir, "case.json", "");
    kgt_case *c = calloc(1, sizeof *c);
    json_error_t jerr;
    if (!path || !c) {
        load_error(err, errlen, "%s: out of memory", dir);
        free(path);
        free(c);
        return NULL;
    }
    c->root = json_load_file(path, 0, &jerr);
    if (!c->root || !json_is_object(c->root) ||
        !json_is_array(json_object_get(c->root, "inputs")) ||
        !json_is_array(json_object_get(c->root, "outputs"))) {
        if (!c->root && jerr.line > 0)
            load_error(err, errlen, "%s:%d: %s", path, jerr.line, jerr.text);
        else if (!c->root)
            load_error(err, errlen, "%s", jerr.text);  /* "unable to open PATH: ..." */
        else
            load_error(err, errlen, "%s: not a case (needs \"inputs\" and \"outputs\" lists)",
                       path);
        free(path);
        kgt_case_free(c);
        return NULL;
    }
    free(path);
    c->dir = strdup(dir);
    const char *slash = strrchr(dir, '/');
    c->base = strdup(slash && slash[1] ? slash + 1 : dir);
    return c;
}

void kgt_case_free(kgt_case *c)
{
    if (!c)
        return;
    for (loaded *l = c->arrays, *next; l; l = next) {
        next = l->next;
        kg_npy_free(&l->arr);
        free(l->name);
        free(l);
    }
    json_decref(c->root);
    json_decref(c->compared);
    free(c->dir);
    free(c->base);
    free(c);
}

const char *kgt_case_name(const kgt_case *c)
{
    const char *name = json_string_value(json_object_get(c->root, "case"));
    return name ? name : c->base;
}

const char *kgt_case_error(const kgt_case *c)
{
    return c->err;
}

/* The array `name` if it is listed in c's `list`: from the cache, else read from NAME.npy.
 * Caching through a const case is the one mutation a reader causes; the case is never const
 * at allocation, so the cast is defined. */
static const kg_npy *get_array(const kgt_case *cc, const char *list, const char *name)
{
    kgt_case *c = (kgt_case *)cc;
    c->err[0] = '\0';
    for (loaded *l = c->arrays; l; l = l->next)
        if (strcmp(l->name, name) == 0)
            return &l->arr;
    if (!find_named(c->root, list, name)) {
        snprintf(c->err, sizeof c->err, "%s: no %s named '%s' in case.json", c->dir,
                 strcmp(list, "inputs") == 0 ? "input" : "output", name);
        return NULL;
    }
    char *path = join(c->dir, name, ".npy");
    loaded *l = calloc(1, sizeof *l);
    if (!path || !l || !(l->name = strdup(name)) ||
        kg_npy_read(path, &l->arr, c->err, sizeof c->err) != 0) {
        if (!c->err[0])
            snprintf(c->err, sizeof c->err, "%s: out of memory", c->dir);
        free(path);
        if (l)
            free(l->name);
        free(l);
        return NULL;
    }
    free(path);
    l->next = c->arrays;
    c->arrays = l;
    return &l->arr;
}

const kg_npy *kgt_case_input(const kgt_case *c, const char *name)
{
    return get_array(c, "inputs", name);
}

const kg_npy *kgt_case_output(const kgt_case *c, const char *out_name)
{
    return get_array(c, "outputs", out_name);
}

const char *kgt_case_input_dtype(const kgt_case *c, const char *name)
{
    return json_string_value(json_object_get(find_named(c->root, "inputs", name), "dtype"));
}

/* ---- options and tolerances ----------------------------------------------------------------- */

static json_t *option(const kgt_case *c, const char *key)
{
    return json_object_get(json_object_get(c->root, "options"), key);
}

int kgt_case_opt_str(const kgt_case *c, const char *key, const char **val)
{
    json_t *v = option(c, key);
    if (!json_is_string(v))
        return 0;
    *val = json_string_value(v);
    return 1;
}

int kgt_case_opt_num(const kgt_case *c, const char *key, double *val)
{
    json_t *v = option(c, key);
    if (!json_is_number(v))
        return 0;
    *val = json_number_value(v);
    return 1;
}

int kgt_case_opt_bool(const kgt_case *c, const char *key, int *val)
{
    json_t *v = option(c, key);
    if (!json_is_boolean(v))
        return 0;
    *val = json_is_true(v);
    return 1;
}

/* The "tolerance" entry for out_name: exact key first, else the matching wildcard key with
 * the most literal characters (the first listed on a tie). */
static json_t *tol_entry(const kgt_case *c, const char *out_name)
{
    json_t *tol = json_object_get(c->root, "tolerance"), *v, *best = NULL;
    json_t *exact = json_object_get(tol, out_name);
    const char *key;
    size_t best_len = 0;
    if (exact)
        return exact;
    json_object_foreach(tol, key, v) {
        size_t len = literal_len(key);
        if (strchr(key, '*') && glob_match(key, out_name) && (!best || len > best_len))
            best = v, best_len = len;
    }
    return best;
}

int kgt_case_tol(const kgt_case *c, const char *out_name, double *rtol, double *atol)
{
    *rtol = *atol = 0;
    json_t *e = find_named(c->root, "outputs", out_name) ? tol_entry(c, out_name) : NULL;
    if (!json_is_object(e) || json_is_true(json_object_get(e, "exact")))
        return 0;
    json_t *r = json_object_get(e, "rtol"), *a = json_object_get(e, "atol");
    *rtol = json_is_number(r) ? json_number_value(r) : 1e-5;
    *atol = json_is_number(a) ? json_number_value(a) : 1e-8;
    return 1;
}

/* ---- what a test compared ------------------------------------------------------------------ */

/* Recording through a const case, as get_array caches: the case is never const at allocation. */
void kgt_case_compared(const kgt_case *cc, const char *out_name)
{
    kgt_case *c = (kgt_case *)cc;
    if (!c->compared)
        c->compared = json_object();
    json_object_set_new(c->compared, out_name, json_true());
}

const char *kgt_case_uncompared(const kgt_case *c)
{
    json_t *item;
    size_t i;
    json_array_foreach(json_object_get(c->root, "outputs"), i, item) {
        const char *name = json_string_value(json_object_get(item, "name"));
        if (name && tol_entry(c, name) && !json_object_get(c->compared, name))
            return name;
    }
    return NULL;
}
