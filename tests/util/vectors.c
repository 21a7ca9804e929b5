/* tests/util/vectors.c: loads shared/vectors/<kernel>/<case>/ folders: case.json through jansson,
 * the .npy arrays through kg_npy_read on first use, tolerances by the conventions.json rules. */
#define _POSIX_C_SOURCE 200809L
#include "util/vectors.h"

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
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
    json_t *read;        /* "o:KEY" / "i:NAME" -> true: the options and inputs the adapter read */
    char list_name[256]; /* kgt_case_list_name's answer */
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
    json_decref(c->read);
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

/* Records that the adapter read option or input `name` (kind 'o' or 'i'). Through a const case
 * as get_array caches: the case is never const at allocation. */
static void mark_read(const kgt_case *cc, char kind, const char *name)
{
    kgt_case *c = (kgt_case *)cc;
    char key[300];
    snprintf(key, sizeof key, "%c:%s", kind, name);
    if (!c->read)
        c->read = json_object();
    json_object_set_new(c->read, key, json_true());
}

static int was_read(const kgt_case *c, char kind, const char *name)
{
    char key[300];
    snprintf(key, sizeof key, "%c:%s", kind, name);
    return json_object_get(c->read, key) != NULL;
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
    if (find_named(c->root, "inputs", name))
        mark_read(c, 'i', name);
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
    mark_read(c, 'o', key);
    return json_object_get(json_object_get(c->root, "options"), key);
}

int kgt_case_opt_has(const kgt_case *c, const char *key)
{
    return option(c, key) != NULL;
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

/* The numbers of a (nested) JSON array in order into v[n..max); the new count, or -1 if an
 * element is neither a number nor an array, or there are more than max. */
static int flatten(json_t *a, double *v, int n, int max)
{
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e) {
        if (json_is_array(e))
            n = flatten(e, v, n, max);
        else if (json_is_number(e) && n < max)
            v[n++] = json_number_value(e);
        else
            return -1;
        if (n < 0)
            return -1;
    }
    return n;
}

int kgt_case_opt_nums(const kgt_case *c, const char *key, double *val, int max)
{
    json_t *v = option(c, key);
    if (json_is_number(v) && max >= 1) {
        val[0] = json_number_value(v);
        return 1;
    }
    return json_is_array(v) ? flatten(v, val, 0, max) : 0;
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

/* ---- dtypes and conversions ----------------------------------------------------------------- */

/* The case.json dtype names (conventions.json) and the spellings of kg_dtype_name. */
static const struct { const char *name; kg_dtype t; } DTYPES[] = {
    { "bf16", KG_BF16 }, { "f32", KG_F32 }, { "fp32", KG_F32 }, { "fp16", KG_F16 },
    { "f16", KG_F16 }, { "fp8_e4m3", KG_E4M3 }, { "fp8_e4m3fn", KG_E4M3FN },
    { "fp8_e5m2", KG_E5M2 }, { "u8", KG_U8 }, { "i32", KG_I32 }, { "i64", KG_I64 },
    { "u32", KG_U32 },
};

int kgt_case_dtype_from_name(const char *d)
{
    for (size_t i = 0; d && i < sizeof DTYPES / sizeof DTYPES[0]; i++)
        if (strcmp(d, DTYPES[i].name) == 0)
            return (int)DTYPES[i].t;
    return -1;
}

int kgt_case_dtype(const kgt_case *cc, const char *name)
{
    kgt_case *c = (kgt_case *)cc;
    const char *d = kgt_case_input_dtype(c, name);
    if (!find_named(c->root, "inputs", name)) {
        snprintf(c->err, sizeof c->err, "%s: no input named '%s' in case.json", c->dir, name);
        return -1;
    }
    int t = kgt_case_dtype_from_name(d);
    if (t >= 0)
        return t;
    snprintf(c->err, sizeof c->err, "%s: input '%s' has dtype '%s', which no convention names",
             c->dir, name, d ? d : "(none)");
    return -1;
}

int kgt_case_float_dtype(const kgt_case *cc, const char *const *names, int n)
{
    kgt_case *c = (kgt_case *)cc;
    int any = 0, bf16 = 0, f16 = 0, f32 = 0;
    for (int i = 0; i < n; i++) {
        if (!names[i] || !find_named(c->root, "inputs", names[i]))
            continue;
        int t = kgt_case_dtype(c, names[i]);
        if (t < 0)
            return -1;
        if (t != KG_BF16 && t != KG_F16 && t != KG_F32 && t != KG_E4M3 && t != KG_E4M3FN &&
            t != KG_E5M2) {
            snprintf(c->err, sizeof c->err, "%s: input '%s' has dtype '%s', not a float", c->dir,
                     names[i], kgt_case_input_dtype(c, names[i]));
            return -1;
        }
        any = 1;  /* fp8 values fit bf16 and fp16 alike */
        bf16 |= t == KG_BF16, f16 |= t == KG_F16, f32 |= t == KG_F32;
    }
    if (!any) {
        snprintf(c->err, sizeof c->err, "%s: none of the inputs %s... is listed", c->dir,
                 n ? names[0] : "");
        return -1;
    }
    return f32 || (bf16 && f16) ? KG_F32 : f16 ? KG_F16 : KG_BF16;
}

/* Element i of a, which is an integer array, as int64. */
static int64_t int_at(const kg_npy *a, long i)
{
    switch (a->dtype) {
    case KG_U8: return ((const uint8_t *)a->data)[i];
    case KG_I32: return ((const int32_t *)a->data)[i];
    case KG_U32: return ((const uint32_t *)a->data)[i];
    default: return ((const int64_t *)a->data)[i];
    }
}

static double float_at(const kg_npy *a, long i)
{
    if (a->dtype == KG_F32)
        return ((const float *)a->data)[i];
    uint16_t h = ((const uint16_t *)a->data)[i];
    return a->dtype == KG_BF16 ? kg_bf16_to_f32(h) : kg_f16_to_f32(h);
}

static int is_int_dtype(kg_dtype t)
{
    return t == KG_U8 || t == KG_I32 || t == KG_U32 || t == KG_I64;
}

/* Stores v (exact: checked by the caller) as element i of dst in dtype t. */
static void put(void *dst, kg_dtype t, long i, int64_t iv, double fv)
{
    switch (t) {
    case KG_F32: ((float *)dst)[i] = (float)fv; break;
    case KG_U8: ((uint8_t *)dst)[i] = (uint8_t)iv; break;
    case KG_I32: ((int32_t *)dst)[i] = (int32_t)iv; break;
    case KG_U32: ((uint32_t *)dst)[i] = (uint32_t)iv; break;
    default: ((int64_t *)dst)[i] = iv; break;
    }
}

/* 1 if the whole number v fits integer dtype t. */
static int int_fits(kg_dtype t, int64_t v)
{
    switch (t) {
    case KG_U8: return v >= 0 && v <= UINT8_MAX;
    case KG_I32: return v >= INT32_MIN && v <= INT32_MAX;
    case KG_U32: return v >= 0 && v <= (int64_t)UINT32_MAX;
    default: return 1;
    }
}

void *kgt_case_as(const kgt_case *cc, const char *name, kg_dtype t)
{
    kgt_case *c = (kgt_case *)cc;
    if (t != KG_F32 && !is_int_dtype(t)) {
        snprintf(c->err, sizeof c->err, "%s: kgt_case_as to %s", c->dir, kg_dtype_name(t));
        return NULL;
    }
    const kg_npy *a = kgt_case_input(c, name);
    if (!a)
        return NULL;
    long n = kg_npy_count(a);
    size_t w = t == KG_U8 ? 1 : t == KG_I64 ? 8 : 4;
    void *dst = malloc((size_t)(n > 0 ? n : 1) * w);
    if (!dst) {
        snprintf(c->err, sizeof c->err, "%s: out of memory", c->dir);
        return NULL;
    }
    int src_int = is_int_dtype(a->dtype);
    for (long i = 0; i < n; i++) {
        int64_t iv = src_int ? int_at(a, i) : 0;
        double fv = src_int ? (double)iv : float_at(a, i);
        int ok;
        if (t == KG_F32)
            ok = !src_int || (iv >= -(1 << 24) && iv <= (1 << 24));
        else if (src_int)
            ok = int_fits(t, iv);
        else {
            ok = isfinite(fv) && fv == floor(fv) && fabs(fv) < 9.2e18;
            iv = ok ? (int64_t)fv : 0;
            ok = ok && int_fits(t, iv);
        }
        if (!ok) {
            snprintf(c->err, sizeof c->err, "%s: input '%s' element %ld (%.17g) is not a %s "
                     "value", c->dir, name, i, fv, kg_dtype_name(t));
            free(dst);
            return NULL;
        }
        put(dst, t, i, iv, fv);
    }
    return dst;
}

/* ---- list inputs ---------------------------------------------------------------------------- */

/* "list_inputs"[name], if the case has it as an array. */
static json_t *list_entry(const kgt_case *c, const char *name)
{
    json_t *l = json_object_get(json_object_get(c->root, "list_inputs"), name);
    return json_is_array(l) ? l : NULL;
}

const char *kgt_case_list_name(const kgt_case *cc, const char *name, int i)
{
    kgt_case *c = (kgt_case *)cc;
    json_t *l = list_entry(c, name);
    const char *listed = l ? json_string_value(json_array_get(l, (size_t)i)) : NULL;
    if (listed)
        snprintf(c->list_name, sizeof c->list_name, "%s", listed);
    else
        snprintf(c->list_name, sizeof c->list_name, "%s_%d", name, i);
    return c->list_name;
}

int kgt_case_list_len(const kgt_case *c, const char *name)
{
    json_t *l = list_entry(c, name);
    if (l)
        return (int)json_array_size(l);
    int n = 0;
    while (find_named(c->root, "inputs", kgt_case_list_name(c, name, n)))
        n++;
    return n;
}

const kg_npy *kgt_case_list_input(const kgt_case *c, const char *name, int i)
{
    char elem[256];
    snprintf(elem, sizeof elem, "%s", kgt_case_list_name(c, name, i));
    return kgt_case_input(c, elem);
}

int kgt_case_has_output(const kgt_case *c, const char *out_name)
{
    return find_named(c->root, "outputs", out_name) != NULL;
}

/* ---- what the adapter left unmapped --------------------------------------------------------- */

int kgt_case_unmapped(const kgt_case *c, char *buf, size_t len)
{
    const char *key;
    json_t *v, *item;
    size_t i;
    buf[0] = '\0';
    json_object_foreach(json_object_get(c->root, "options"), key, v) {
        if (was_read(c, 'o', key))
            continue;
        char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        snprintf(buf, len, "option '%s' (= %s)", key, text ? text : "?");
        free(text);
        return 1;
    }
    json_array_foreach(json_object_get(c->root, "inputs"), i, item) {
        const char *name = json_string_value(json_object_get(item, "name"));
        if (name && !was_read(c, 'i', name)) {
            snprintf(buf, len, "input '%s'", name);
            return 1;
        }
    }
    return 0;
}
