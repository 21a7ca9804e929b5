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

#include "kgen/dtype.h"
#include "kgen/kgen.h"
#include "util/weights.h"

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

void kgt_casew_opt_json(kgt_casew *w, const char *key, const char *json)
{
    json_error_t err;
    json_t *v = json_loads(json, JSON_DECODE_ANY, &err);
    cr_assert_not_null(v, "option %s: not JSON: %s (%s)", key, json, err.text);
    set_opt(w, key, v);
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

/* The value of code c of format fmt (an 8- or 4-bit format, or bf16 / fp16 / f32 bits). */
static float code_value(int fmt, uint32_t c)
{
    float f;
    switch (fmt) {
    case KG_WT_F32: memcpy(&f, &c, 4); return f;
    case KG_WT_BF16: return kg_bf16_to_f32((uint16_t)c);
    case KG_WT_F16: return kg_f16_to_f32((uint16_t)c);
    case KG_WT_E4M3: return kg_e4m3_to_f32((uint8_t)c);
    case KG_WT_E4M3FN: return kg_e4m3fn_to_f32((uint8_t)c);
    case KG_WT_E5M2: return kg_e5m2_to_f32((uint8_t)c);
    default: return kg_e2m1_to_f32((uint8_t)c);
    }
}

static int is_x4_layout(int layout)
{
    return layout == KG_WL_X4 || layout == KG_WL_X4_INTERLEAVED ||
           layout == KG_WL_MLP_MX_GATE_UP || layout == KG_WL_MLP_MX_DOWN ||
           layout == KG_WL_MOE_MX_GATE_UP;
}

void kgt_casew_wt(kgt_casew *w, const char *name, const char *scale_name, int fmt, int layout,
                  long K, long N, const uint32_t *codes, const uint8_t *e8, int rep)
{
    static const char *const x4name[KG_WT_FMT_COUNT] = {
        "f32", "bf16", "fp16", "float8_e4m3_x4", "float8_e4m3fn_x4", "float8_e5m2_x4",
        "float4_e2m1fn_x4" };
    static const char *const vname[KG_WT_FMT_COUNT] = {
        "f32", "bf16", "fp16", "fp8_e4m3", "fp8_e4m3fn", "fp8_e5m2", "fp4_e2m1" };
    int bits = fmt == KG_WT_E2M1 ? 4 : fmt >= KG_WT_E4M3 ? 8 : fmt == KG_WT_F32 ? 32 : 16;
    int x4 = is_x4_layout(layout);
    cr_assert(x4 || rep >= KGT_WREP_LOGICAL, "kgt_casew_wt: words of a non-x4 layout");
    void *sc = NULL;
    void *st = kgt_wt_store(fmt, layout, K, N, codes, e8, e8 ? &sc : NULL);
    kg_wt_src src = { fmt, layout, K, N, NULL, NULL, 0, 0 };
    kg_npy a = { KG_F32, 0, { 0 }, NULL };
    a.rank = kg_wt_stored_shape(&src, 0, a.shape);
    long n = kg_npy_count(&a); /* words (x4) or elements */
    if (rep == KGT_WREP_WORDS || rep == KGT_WREP_WORDS_I32) {
        uint32_t *wd = malloc((size_t)n * sizeof *wd);
        cr_assert(wd);
        for (long i = 0; i < n; i++) /* fp4 words are 16 bits */
            wd[i] = bits == 4 ? ((uint16_t *)st)[i] : ((uint32_t *)st)[i];
        a.dtype = rep == KGT_WREP_WORDS ? KG_U32 : KG_I32, a.data = wd;
        kgt_casew_input_npy(w, name, rep == KGT_WREP_WORDS ? x4name[fmt] : "i32", &a);
        free(wd);
    } else if (rep == KGT_WREP_LOGICAL) {
        float *v = malloc((size_t)(K * N) * sizeof *v);
        cr_assert(v);
        for (long i = 0; i < K * N; i++)
            v[i] = code_value(fmt, codes[i]);
        long ls[2] = { K, N };
        kgt_casew_input(w, name, vname[fmt], v, 2, ls);
        free(v);
    } else {
        long m = x4 ? 4 * n : n;
        float *v = malloc((size_t)m * sizeof *v);
        cr_assert(v);
        for (long i = 0; i < m; i++) {
            uint32_t c;
            if (x4) { /* element q of word i/4 */
                uint32_t word = bits == 4 ? ((uint16_t *)st)[i / 4] : ((uint32_t *)st)[i / 4];
                c = (word >> (bits * (i % 4))) & ((1u << bits) - 1);
            } else if (bits == 4) {
                c = (((uint8_t *)st)[i / 2] >> (4 * (i % 2))) & 0xf;
            } else {
                c = 0;
                memcpy(&c, (char *)st + i * (bits / 8), (size_t)(bits / 8));
            }
            v[i] = code_value(fmt, c);
        }
        if (x4)
            a.shape[a.rank++] = 4;
        kgt_casew_input(w, name, vname[fmt], v, a.rank, a.shape);
        free(v);
    }
    if (e8) {
        kg_npy s = { KG_U8, 0, { 0 }, sc };
        s.rank = kg_wt_stored_shape(&src, 1, s.shape);
        long kb = kgt_wt_kb(layout), ls[2] = { (K + kb - 1) / kb, N };
        if (rep == KGT_WREP_WORDS || rep == KGT_WREP_WORDS_I32) {
            kgt_casew_input_npy(w, scale_name, "u8", &s);
        } else {
            int logical = rep == KGT_WREP_LOGICAL;
            long m = logical ? ls[0] * N : kg_npy_count(&s);
            float *f = malloc((size_t)m * sizeof *f);
            cr_assert(f);
            for (long i = 0; i < m; i++)
                f[i] = logical ? e8[i] : ((uint8_t *)sc)[i];
            kgt_casew_input(w, scale_name, "f32", f, logical ? 2 : s.rank,
                            logical ? ls : s.shape);
            free(f);
        }
    }
    free(st), free(sc);
}

void kgt_casew_mx_experts(kgt_casew *w, const char *name, const char *scale_name, int fmt,
                          int layout, long E, long K, long N, float *vals,
                          unsigned long long seed)
{
    static const char *const x4name[KG_WT_FMT_COUNT] = {
        [KG_WT_E4M3FN] = "float8_e4m3fn_x4", [KG_WT_E5M2] = "float8_e5m2_x4",
        [KG_WT_E2M1] = "float4_e2m1fn_x4" };
    cr_assert(fmt >= 0 && fmt < KG_WT_FMT_COUNT && x4name[fmt], "MX experts: format %d", fmt);
    kg_wt_src src = { fmt, layout, K, N, NULL, NULL, 0, 0 };
    long ws[8], ss[8];
    int r = kg_wt_stored_shape(&src, 0, ws), rs = kg_wt_stored_shape(&src, 1, ss);
    cr_assert(r > 0 && rs > 0, "MX experts: layout %s has no MX scales",
              kg_wt_layout_name(layout));
    kg_npy a = { KG_U32, r + 1, { E }, NULL }, sa = { KG_U8, rs + 1, { E }, NULL };
    for (int i = 0; i < r; i++)
        a.shape[i + 1] = ws[i];
    for (int i = 0; i < rs; i++)
        sa.shape[i + 1] = ss[i];
    long nw = kg_npy_count(&a) / E, ns = kg_npy_count(&sa) / E;
    uint32_t *words = malloc((size_t)(E * nw) * sizeof *words);
    uint8_t *scales = malloc((size_t)(E * ns));
    cr_assert(words && scales);
    for (long e = 0; e < E; e++) {
        void *d, *sc;
        float *v = kgt_wt_random_stored(fmt, layout, K, N, 1, 1.0f, seed + (unsigned)e, &d, &sc);
        memcpy(vals + e * K * N, v, (size_t)(K * N) * sizeof *v);
        for (long i = 0; i < nw; i++) /* fp4 words are 16 bits */
            words[e * nw + i] = fmt == KG_WT_E2M1 ? ((uint16_t *)d)[i] : ((uint32_t *)d)[i];
        memcpy(scales + e * ns, sc, (size_t)ns);
        free(v), free(d), free(sc);
    }
    a.data = words, sa.data = scales;
    kgt_casew_input_npy(w, name, x4name[fmt], &a);
    kgt_casew_input_npy(w, scale_name, "u8", &sa);
    free(words), free(scales);
}

void kgt_casew_mx_gate_up_bias(kgt_casew *w, const char *name, const char *dtype,
                               const float *b, long E, long I)
{
    long P = I >= 512 ? 128 : I / 4, T5 = I >= 512 ? I / 512 : 1;
    long shape[5] = { E, P, 2, T5, 4 };
    float *m = malloc((size_t)(E * P * 2 * T5 * 4) * sizeof *m);
    cr_assert(m);
    for (long e = 0; e < E; e++)
        for (long p = 0; p < P; p++)
            for (long g = 0; g < 2; g++)
                for (long j = 0; j < T5; j++)
                    for (long q = 0; q < 4; q++)
                        m[(((e * P + p) * 2 + g) * T5 + j) * 4 + q] =
                            b[(e * 2 + g) * I + j * 512 + q * P + p];
    kgt_casew_input(w, name, dtype, m, 5, shape);
    free(m);
}
