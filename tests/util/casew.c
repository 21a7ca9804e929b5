/* tests/util/casew.c: synthetic vector cases (case.json through jansson, arrays through
 * kg_npy_write) in a mkdtemp folder that kgt_casew_free removes. */
#define _POSIX_C_SOURCE 200809L
#include "util/casew.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kgen/kgen.h"

struct kgt_casew {
    char root[64];       /* the mkdtemp folder */
    char dir[320];       /* root/<name>: the case */
    json_t *j;           /* case.json being built */
    char names[64][128]; /* the .npy files written, to remove */
    int nnames;
};

kgt_casew *kgt_casew_new(const char *kernel, const char *name)
{
    kgt_casew *w = calloc(1, sizeof *w);
    cr_assert_not_null(w);
    snprintf(w->root, sizeof w->root, "/tmp/kgt_case_XXXXXX");
    cr_assert_not_null(mkdtemp(w->root), "mkdtemp");
    snprintf(w->dir, sizeof w->dir, "%s/%s", w->root, name);
    cr_assert_eq(mkdir(w->dir, 0700), 0, "mkdir %s", w->dir);
    w->j = json_pack("{s:s, s:s, s:[], s:[], s:{}, s:{}}", "case", name, "kernel", kernel,
                     "inputs", "outputs", "options", "tolerance");
    cr_assert_not_null(w->j);
    return w;
}

static void set_opt(kgt_casew *w, const char *key, json_t *v)
{
    json_object_set_new(json_object_get(w->j, "options"), key, v);
}

void kgt_casew_opt_str(kgt_casew *w, const char *key, const char *val)
{
    set_opt(w, key, json_string(val));
}

void kgt_casew_opt_num(kgt_casew *w, const char *key, double val)
{
    set_opt(w, key, json_real(val));
}

void kgt_casew_opt_bool(kgt_casew *w, const char *key, int val)
{
    set_opt(w, key, json_boolean(val));
}

/* Writes a as dir/name.npy and appends {name, dtype, shape, stored} to case.json's `list`. */
static void add_array(kgt_casew *w, const char *list, const char *name, const char *dtype,
                      const kg_npy *a)
{
    char path[512], err[256];
    cr_assert_lt(w->nnames, 64);
    snprintf(path, sizeof path, "%s/%s.npy", w->dir, name);
    cr_assert_eq(kg_npy_write(path, a, err, sizeof err), KG_OK, "%s", err);
    snprintf(w->names[w->nnames++], sizeof w->names[0], "%s", name);
    json_t *shape = json_array();
    for (int i = 0; i < a->rank; i++)
        json_array_append_new(shape, json_integer(a->shape[i]));
    json_t *e = json_pack("{s:s, s:o, s:s}", "name", name, "shape", shape, "stored",
                          kg_dtype_name(a->dtype));
    if (dtype)
        json_object_set_new(e, "dtype", json_string(dtype));
    json_array_append_new(json_object_get(w->j, list), e);
}

static kg_npy f32_array(const float *x, int rank, const long *shape)
{
    kg_npy a = { .dtype = KG_F32, .rank = rank, .data = (void *)x };
    memcpy(a.shape, shape, (size_t)rank * sizeof *shape);
    return a;
}

void kgt_casew_input(kgt_casew *w, const char *name, const char *dtype, const float *x,
                     int rank, const long *shape)
{
    kg_npy a = f32_array(x, rank, shape);
    add_array(w, "inputs", name, dtype, &a);
}

void kgt_casew_input_npy(kgt_casew *w, const char *name, const char *dtype, const kg_npy *a)
{
    add_array(w, "inputs", name, dtype, a);
}

void kgt_casew_list(kgt_casew *w, const char *name, int n)
{
    json_t *lists = json_object_get(w->j, "list_inputs");
    if (!lists) {
        lists = json_object();
        json_object_set_new(w->j, "list_inputs", lists);
    }
    json_t *elems = json_array();
    for (int i = 0; i < n; i++) {
        char e[160];
        snprintf(e, sizeof e, "%s_%d", name, i);
        json_array_append_new(elems, json_string(e));
    }
    json_object_set_new(lists, name, elems);
}

void kgt_casew_output(kgt_casew *w, const char *name, const float *x, int rank,
                      const long *shape, double rtol, double atol)
{
    kg_npy a = f32_array(x, rank, shape);
    add_array(w, "outputs", name, NULL, &a);
    json_object_set_new(json_object_get(w->j, "tolerance"), name,
                        json_pack("{s:f, s:f, s:s}", "rtol", rtol, "atol", atol, "mode", "max"));
}

const char *kgt_casew_finish(kgt_casew *w)
{
    char path[512];
    snprintf(path, sizeof path, "%s/case.json", w->dir);
    cr_assert_eq(json_dump_file(w->j, path, JSON_INDENT(1) | JSON_SORT_KEYS), 0, "%s", path);
    return w->dir;
}

void kgt_casew_free(kgt_casew *w)
{
    char path[512];
    for (int i = 0; i < w->nnames; i++) {
        snprintf(path, sizeof path, "%s/%s.npy", w->dir, w->names[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/case.json", w->dir);
    unlink(path);
    rmdir(w->dir);
    rmdir(w->root);
    json_decref(w->j);
    free(w);
}
