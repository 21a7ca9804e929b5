/* npy_io.c: kernel arguments from and to .npy files (kgio_), for `kgen exec`. */
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kgen/ckd.h"
#include "kgen/kgen.h"
#include "npy_io.h"
#include "tensor.h"

/* Formats a message into err and returns status. */
__attribute__((format(printf, 4, 5)))
static int fail(int status, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return status;
}

/* The numpy name of a dtype as kg_npy_read reports it (uint16 files come back as KG_BF16). */
static const char *npy_type(kg_dtype t)
{
    switch (t) {
    case KG_F32: return "float32";
    case KG_F16: return "float16";
    case KG_BF16: return "uint16";
    case KG_U8: return "uint8";
    case KG_I32: return "int32";
    case KG_I64: return "int64";
    case KG_U32: return "uint32";
    default: return "unknown";
    }
}

/* A kernel dtype name without its "_rowscaled" suffix, as a kg_dtype (-1 if unknown). */
static int base_dtype(const char *dtype, int *rowscaled)
{
    char base[32];
    snprintf(base, sizeof base, "%s", dtype);
    char *suffix = strstr(base, "_rowscaled");
    if (rowscaled)
        *rowscaled = suffix != NULL;
    if (suffix)
        *suffix = '\0';
    return kg_dtype_from_name(base);
}

static int is_float(int t)
{
    return t == KG_F32 || t == KG_BF16 || t == KG_F16 || t == KG_E4M3 || t == KG_E4M3FN
        || t == KG_E5M2;
}

static int is_byte_code(int t)
{
    return t == KG_E4M3 || t == KG_E4M3FN || t == KG_E5M2 || t == KG_E2M1 || t == KG_E8M0
        || t == KG_U8;
}

static int is_int(int t)
{
    return t == KG_I32 || t == KG_U32 || t == KG_I64;
}

/* Integers into another integer type (an int64 file of position ids into an int32 argument, a
 * uint32 block table into an int32 one): element by element, -1 if any value does not fit. */
static int convert_int(const kg_npy *x, int t, void *buf, long n)
{
    for (long i = 0; i < n; i++) {
        long long v = x->dtype == KG_I32   ? ((const int32_t *)x->data)[i]
                      : x->dtype == KG_U32 ? (long long)((const uint32_t *)x->data)[i]
                                           : (long long)((const int64_t *)x->data)[i];
        if (t == KG_I64)
            ((int64_t *)buf)[i] = v;
        else if (t == KG_I32 && v >= INT32_MIN && v <= INT32_MAX)
            ((int32_t *)buf)[i] = (int32_t)v;
        else if (t == KG_U32 && v >= 0 && v <= (long long)UINT32_MAX)
            ((uint32_t *)buf)[i] = (uint32_t)v;
        else
            return -1;
    }
    return 0;
}

/* ---- inputs ------------------------------------------------------------------------------- */

/* Copies (bit patterns, integers) or rounds (float values) the file's n elements into buf,
 * laid out as the argument's dtype. Returns -1 if the file's dtype cannot carry it. */
static int convert(const kg_npy *x, const kgg_arg *a, void *buf)
{
    int rowscaled, t = base_dtype(a->dtype, &rowscaled);
    long n = kg_npy_count(x);
    size_t bytes;
    if (n < 0 || kg_ckd_mul(&bytes, (size_t)n, (size_t)kgbuf_dtype_bytes(a->dtype)))
        return -1;
    if (x->dtype == KG_U8 && (rowscaled || is_byte_code(t)))
        return memcpy(buf, x->data, bytes), 0;
    if (rowscaled)
        return -1;
    if (is_int((int)x->dtype) && is_int(t))
        return convert_int(x, t, buf, n);
    int same = (int)x->dtype == t && t == KG_F16;
    if (same || (x->dtype == KG_BF16 && (t == KG_BF16 || t == KG_F16)))
        return memcpy(buf, x->data, bytes), 0;
    if (x->dtype == KG_F32 && is_float(t))
        return kgbuf_from_f32(a->dtype, x->data, buf, n);
    if (x->dtype == KG_F16 && is_float(t)) {
        float *f = kg_ckd_mul(&bytes, (size_t)(n > 0 ? n : 1), sizeof *f) ? NULL : malloc(bytes);
        int rc = f ? kgbuf_to_f32("fp16", x->data, f, n) : -1;
        rc = rc == 0 ? kgbuf_from_f32(a->dtype, f, buf, n) : rc;
        free(f);
        return rc;
    }
    return -1;
}

/* A buffer of a's dtype holding every element of x (a scalar argument reads element 0 of
 * whatever shape it was given). */
static int make_input(const kgg_arg *a, const kg_npy *x, const char *file, void **buf,
                      char *err, size_t errlen)
{
    long n = kg_npy_count(x), want = kgbuf_count(a);
    if (want < 0 || (!a->scalar && n != want))
        return fail(KG_ESHAPE, err, errlen, "input '%s' (%s): %ld elements, the kernel expects "
                    "%ld", a->name, file, n, want);
    size_t size;
    if (kg_ckd_mul(&size, (size_t)(n > want ? n : want), (size_t)kgbuf_dtype_bytes(a->dtype)))
        return fail(KG_ESHAPE, err, errlen, "input '%s' (%s): its size overflows", a->name, file);
    if (!(*buf = calloc(size ? size : 1, 1)))
        return fail(KG_ENOMEM, err, errlen, "input '%s': out of memory", a->name);
    if (convert(x, a, *buf) != 0)
        return fail(KG_ESHAPE, err, errlen, "input '%s' (%s): a .npy of %s cannot hold %s "
                    "values", a->name, file, npy_type(x->dtype), a->dtype);
    return KG_OK;
}

/* The weight's codes in its stored order from x: uint8 bytes as they are, else (layout kn
 * only) [K, N] values rounded to the format. */
static int weight_codes(const kgg_arg *a, const kg_npy *x, const char *file,
                        unsigned char *codes, size_t bytes, char *err, size_t errlen)
{
    long n = kgbuf_count(a);
    int fp4 = strcmp(a->dtype, "e2m1") == 0;
    if (x->dtype == KG_U8 && (size_t)kg_npy_count(x) == bytes)
        return memcpy(codes, x->data, bytes), KG_OK;
    if (strcmp(a->wt_layout, "kn") != 0 || kg_npy_count(x) != n)
        return fail(KG_ESHAPE, err, errlen, "weight '%s' (%s): layout %s wants %zu bytes of %s "
                    "codes as uint8%s", a->name, file, a->wt_layout, bytes, a->dtype,
                    strcmp(a->wt_layout, "kn") == 0 ? ", or [K, N] values" : "");
    if (fp4 && x->dtype == KG_F32) {
        for (long e = 0; e < n; e++)
            codes[e / 2] |= (unsigned char)(kg_f32_to_e2m1(((const float *)x->data)[e])
                                            << (e % 2 * 4));
        return KG_OK;
    }
    kgg_arg codes_arg = *a;
    codes_arg.weight = 0;
    if (fp4 || convert(x, &codes_arg, codes) != 0)
        return fail(KG_ESHAPE, err, errlen, "weight '%s' (%s): a .npy of %s cannot hold %s "
                    "values", a->name, file, npy_type(x->dtype), a->dtype);
    return KG_OK;
}

/* A packed weight (a kg_wt) from x and, for MX, its scales sc. */
static int make_weight(const kgg_arg *a, const kg_npy *x, const char *file, const kg_npy *sc,
                       void **buf, char *err, size_t errlen)
{
    long n = kgbuf_count(a);
    int fp4 = strcmp(a->dtype, "e2m1") == 0;
    size_t bytes = n < 0 ? 0 : fp4 ? (size_t)n / 2 + (size_t)n % 2 : kgbuf_bytes(a);
    unsigned char *codes = bytes ? calloc(bytes, 1) : NULL;
    int rc = KG_OK;
    if (!bytes)
        rc = fail(KG_ESHAPE, err, errlen, "weight '%s': its size overflows", a->name);
    else if (!(*buf = kgbuf_alloc(a)) || !codes)
        rc = fail(KG_ENOMEM, err, errlen, "weight '%s': out of memory", a->name);
    if (rc == KG_OK)
        rc = weight_codes(a, x, file, codes, bytes, err, errlen);
    if (rc == KG_OK && a->wt_mx && !sc)
        rc = fail(KG_ESHAPE, err, errlen, "weight '%s' is MX: give its E8M0 scales as --in "
                  "%s_scale=FILE", a->name, a->name);
    if (rc == KG_OK && sc && sc->dtype != KG_U8)
        rc = fail(KG_ESHAPE, err, errlen, "%s_scale: E8M0 scales are uint8, not %s", a->name,
                  npy_type(sc->dtype));
    char why[256];
    if (rc == KG_OK && kgbuf_pack(a, *buf, codes, sc ? sc->data : NULL, why, sizeof why) != 0)
        rc = fail(KG_ESHAPE, err, errlen, "weight '%s': %s", a->name, why);
    free(codes);
    return rc;
}

/* The index of the input named name, or nin. */
static int input_index(int nin, const char *const *names, const char *name)
{
    int k = 0;
    while (k < nin && strcmp(names[k], name) != 0)
        k++;
    return k;
}

/* Whether an input of this name is the MX scales of one of k's weights. */
static int is_scale(const kgg_kernel *k, const char *name)
{
    for (int i = 0; i < k->nargs; i++) {
        const kgg_arg *a = &k->args[i];
        size_t l = strlen(a->name);
        if (a->weight && a->wt_mx && strncmp(name, a->name, l) == 0 && !strcmp(name + l, "_scale"))
            return 1;
    }
    return 0;
}

/* The list argument an input NAME_l is element l of (its index in k, l in *l), or -1. */
static int list_of(const kgg_kernel *k, const char *name, int *l)
{
    for (int i = 0; i < k->nargs; i++) {
        const kgg_arg *a = &k->args[i];
        size_t n = strlen(a->name);
        char *end;
        if (!a->list || strncmp(name, a->name, n) != 0 || name[n] != '_' || !isdigit(name[n + 1]))
            continue;
        long v = strtol(name + n + 1, &end, 10);
        if (*end == '\0' && v < a->list) {
            *l = (int)v;
            return i;
        }
    }
    return -1;
}

/* The first element of list a that is given (the others may be NULL). */
static int first_given(const kgg_arg *a)
{
    for (int l = 0; l < a->list; l++)
        if ((a->list_given >> l) & 1)
            return l;
    return 0;
}

/* Matches the inputs' shapes to the kernel (kgg_bind). An MX weight's scales travel with the
 * weight; a weight's dims are the kernel's constants (its file is checked when packed). */
static int bind_shapes(kgg *g, const kgg_kernel *k, int nin, const char *const *names,
                       const kg_npy *in, kgg_arg *args, int *nargs, long *n, int *ncalls,
                       char *err, size_t errlen)
{
    const char *bnames[KGG_MAX_ARGS];
    int ranks[KGG_MAX_ARGS], nb = 0;
    long shapes[KGG_MAX_ARGS][KGG_MAX_RANK];
    char lnames[KGG_MAX_ARGS][64];
    for (int i = 0; i < nin; i++) {
        if (is_scale(k, names[i]))
            continue;
        int l, a = list_of(k, names[i], &l);
        if (a >= 0 && l != first_given(&k->args[a]))
            continue; /* a list binds by its first element; each is checked when made */
        if (nb == KGG_MAX_ARGS)
            return fail(KG_ESPEC, err, errlen, "too many inputs");
        if (a >= 0) {
            snprintf(lnames[nb], sizeof lnames[nb], "%s", k->args[a].name);
            bnames[nb] = lnames[nb];
        } else {
            bnames[nb] = names[i];
        }
        ranks[nb] = in[i].rank;
        memcpy(shapes[nb], in[i].shape, sizeof shapes[nb]);
        for (int a = 0; a < k->nargs; a++)
            if (k->args[a].weight && !strcmp(k->args[a].name, bnames[nb])) {
                ranks[nb] = k->args[a].rank;
                memcpy(shapes[nb], k->args[a].shape, sizeof shapes[nb]);
            }
        nb++;
    }
    const long (*cshapes)[KGG_MAX_RANK] = (const long (*)[KGG_MAX_RANK])shapes;
    int rc = kgg_bind(g, k->problem, nb, bnames, ranks, cshapes, n, ncalls, args, nargs);
    if (rc != KG_OK)
        return fail(rc, err, errlen, "%s", kgg_error(g));
    if (*nargs > KGG_MAX_ARGS || *ncalls > KGG_MAX_CALLS)
        return fail(KG_EARG, err, errlen, "%s: too many arguments or calls", k->name);
    return KG_OK;
}

/* The byte every output starts as: 0xff is a NaN in each float dtype (f32, bf16, f16 and the
 * fp8 formats; a rowscaled row's codes and its scale), -1 in the integer ones. A kernel that
 * leaves an output, or part of one, unwritten shows NaN (or -1) there instead of zeros that
 * look computed. */
enum { UNWRITTEN = 0xff };

/* A list argument's array: element l from input NAME_l (each given element must be there, no
 * other may be), or an output's elements filled with UNWRITTEN. */
static int make_list(const kgg_arg *a, int nin, const char *const *names,
                     const char *const *files, const kg_npy *in, void **buf, char *err,
                     size_t errlen)
{
    kgg_arg e;
    if (a->out) {
        if (!(*buf = kgbuf_alloc(a)))
            return fail(KG_ENOMEM, err, errlen, "output '%s': out of memory", a->name);
        for (int l = 0; l < a->list; l++)
            if (kgbuf_elem(a, l, &e))
                memset(((void **)*buf)[l], UNWRITTEN, kgbuf_bytes(&e));
        return KG_OK;
    }
    void **p = calloc((size_t)a->list, sizeof(void *));
    int rc = p ? KG_OK : fail(KG_ENOMEM, err, errlen, "input '%s': out of memory", a->name);
    *buf = p;
    for (int l = 0; l < a->list && rc == KG_OK; l++) {
        char name[80];
        snprintf(name, sizeof name, "%.60s_%d", a->name, l);
        int k = input_index(nin, names, name), given = kgbuf_elem(a, l, &e);
        if (!given && k < nin)
            rc = fail(KG_ESHAPE, err, errlen, "input '%s': element %d of list %s is not used "
                      "by this kernel (it is NULL)", name, l, a->name);
        else if (given && k == nin)
            rc = fail(KG_ESHAPE, err, errlen, "input '%s' is missing (list %s has %d elements: "
                      "%s_0 .. %s_%d)", name, a->name, a->list, a->name, a->name, a->list - 1);
        else if (given && a->weight)
            rc = make_weight(&e, &in[k], files[k], NULL, &p[l], err, errlen);
        else if (given)
            rc = make_input(&e, &in[k], files[k], &p[l], err, errlen);
    }
    return rc;
}

/* Fills t[]: converted inputs, packed weights, outputs filled with UNWRITTEN, NULL for unused
 * arguments; a list argument an array of its elements. */
static int make_tensors(const kgg_arg *args, int nargs, int nin, const char *const *names,
                        const char *const *files, const kg_npy *in, void **t, char *err,
                        size_t errlen)
{
    int rc = KG_OK;
    for (int i = 0; i < nargs && rc == KG_OK; i++) {
        const kgg_arg *a = &args[i];
        int k = input_index(nin, names, a->name);
        if (!a->used)
            continue;
        if (a->list) {
            rc = make_list(a, nin, names, files, in, &t[i], err, errlen);
            continue;
        }
        if (a->out && !(t[i] = kgbuf_alloc(a)))
            rc = fail(KG_ENOMEM, err, errlen, "output '%s': out of memory", a->name);
        else if (a->out && !a->weight)
            memset(t[i], UNWRITTEN, kgbuf_bytes(a));
        else if (a->weight && k < nin) {
            char sname[80];
            snprintf(sname, sizeof sname, "%s_scale", a->name);
            int s = input_index(nin, names, sname);
            rc = make_weight(a, &in[k], files[k], s < nin ? &in[s] : NULL, &t[i], err, errlen);
        } else if (!a->out && k < nin)
            rc = make_input(a, &in[k], files[k], &t[i], err, errlen);
    }
    return rc;
}

/* The input files' data is read whole (kg_npy_read_max, at the same cap) before the kernel is
 * bound: their sizes count against the cap on argument memory first, so a 100 GiB file (a
 * sparse one is cheap to make) is refused before it is read. *total gets their sum. */
static int budget_files(int nin, const char *const *names, const char *const *files,
                        size_t *total, char *err, size_t errlen)
{
    size_t limit = kgbuf_limit();
    struct stat st;
    *total = 0;
    if (!limit)
        return kgbuf_limit_error(err, errlen);
    for (int i = 0; i < nin; i++) {
        if (stat(files[i], &st) != 0 || !S_ISREG(st.st_mode))
            continue;   /* kg_npy_read names what is wrong with it */
        if (kg_ckd_add(total, *total, (size_t)st.st_size) || *total > limit)
            return fail(KG_ESHAPE, err, errlen, "input '%s': %s: %lld bytes, which brings the "
                        "inputs past the limit of %zu bytes (KGEN_MAX_ARG_BYTES)", names[i],
                        files[i], (long long)st.st_size, limit);
    }
    return KG_OK;
}

int kgio_bind(kgg *g, const kgg_kernel *k, int nin, const char *const *names,
              const char *const *files, kgg_arg *args, int *nargs, long *n, int *ncalls,
              void **t, char *err, size_t errlen)
{
    char why[512];
    size_t total = 0;
    int rc = nin <= KGIO_MAX_INPUTS ? KG_OK : fail(KG_ESPEC, err, errlen, "too many inputs");
    kg_npy *in = rc == KG_OK ? calloc((size_t)(nin > 0 ? nin : 1), sizeof *in) : NULL;
    if (rc == KG_OK && !in)
        rc = fail(KG_ENOMEM, err, errlen, "out of memory");
    if (rc == KG_OK)
        rc = budget_files(nin, names, files, &total, err, errlen);
    for (int i = 0; i < nin && rc == KG_OK; i++)
        if ((rc = kg_npy_read_max(files[i], kgbuf_limit(), &in[i], why, sizeof why)) != KG_OK)
            fail(rc, err, errlen, "input '%s': %s", names[i], why);
    if (rc == KG_OK)
        rc = bind_shapes(g, k, nin, names, in, args, nargs, n, ncalls, err, errlen);
    if (rc == KG_OK)
        rc = kgbuf_budget(k->name, args, *nargs, &total, err, errlen);
    if (rc == KG_OK)
        rc = make_tensors(args, *nargs, nin, names, files, in, t, err, errlen);
    for (int i = 0; in && i < nin; i++)
        kg_npy_free(&in[i]);
    free(in);
    return rc;
}

/* ---- outputs ------------------------------------------------------------------------------ */

/* Writes one .npy into dir and appends its name to the list. */
static int save(const char *dir, const char *file, kg_npy *a, char *list, size_t len,
                char *err, size_t errlen)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int rc = kg_npy_write(path, a, err, errlen);
    if (rc != KG_OK)
        return rc;
    size_t used = strlen(list);
    snprintf(list + used, len - used, "%s%s", used ? ", " : "", file);
    return KG_OK;
}

/* A *_rowscaled output [..., H+4]: decoded values [..., H] and one fp32 scale per row [...],
 * or with raw the packed bytes as they are. */
static int write_rowscaled(const char *dir, const kgg_arg *a, const unsigned char *buf,
                           int raw, char *list, size_t len, char *err, size_t errlen)
{
    char file[128];
    kg_npy v = { KG_U8, a->rank, { 0 }, (void *)buf };
    memcpy(v.shape, a->shape, sizeof v.shape);
    snprintf(file, sizeof file, "%s.npy", a->name);
    if (raw)
        return save(dir, file, &v, list, len, err, errlen);
    long hp4 = a->rank ? a->shape[a->rank - 1] : 0, h = hp4 - 4;
    long rows = h > 0 ? kgbuf_count(a) / hp4 : 0;
    if (h < 1)
        return fail(KG_EARG, err, errlen, "output '%s': a rowscaled row needs more than 4 "
                    "bytes", a->name);
    size_t ny, ns;   /* rows * h + 1 floats and rows + 1: within the output, bounded already */
    int over = kg_ckd_mul(&ny, (size_t)rows, (size_t)h) || kg_ckd_add(&ny, ny, 1) ||
               kg_ckd_mul(&ny, ny, sizeof(float)) || kg_ckd_mul(&ns, (size_t)rows + 1, 4);
    float *y = over ? NULL : malloc(ny), *s = over ? NULL : malloc(ns);
    int rc = y && s ? KG_OK : fail(KG_ENOMEM, err, errlen, "output '%s': out of memory",
                                   a->name);
    for (long r = 0; rc == KG_OK && r < rows; r++) {
        kgbuf_to_f32(a->dtype, buf + r * hp4, y + r * h, h);
        memcpy(&s[r], buf + r * hp4 + h, 4);   /* little-endian host, as the kernel wrote it */
    }
    kg_npy vy = { KG_F32, a->rank, { 0 }, y }, vs = { KG_F32, a->rank - 1, { 0 }, s };
    memcpy(vy.shape, a->shape, sizeof vy.shape);
    vy.shape[a->rank - 1] = h;
    memcpy(vs.shape, a->shape, sizeof vs.shape);
    if (rc == KG_OK)
        rc = save(dir, file, &vy, list, len, err, errlen);
    snprintf(file, sizeof file, "%s_scale.npy", a->name);
    if (rc == KG_OK)
        rc = save(dir, file, &vs, list, len, err, errlen);
    free(y);
    free(s);
    return rc;
}

/* Any other output: decoded to float32 (integers stay integers), or with raw its bits. */
static int write_plain(const char *dir, const kgg_arg *a, void *buf, int raw, char *list,
                       size_t len, char *err, size_t errlen)
{
    int t = base_dtype(a->dtype, NULL);
    char file[128];
    kg_npy v = { (kg_dtype)t, a->rank, { 0 }, buf };
    memcpy(v.shape, a->shape, sizeof v.shape);
    snprintf(file, sizeof file, "%s.npy", a->name);
    if (t == KG_F32 || t == KG_U8 || t == KG_I32 || t == KG_I64 || t == KG_U32)
        return save(dir, file, &v, list, len, err, errlen);
    if (raw && (t == KG_BF16 || t == KG_F16 || is_byte_code(t))) {
        v.dtype = kgbuf_dtype_bytes(a->dtype) == 2 ? KG_BF16 : KG_U8;
        return save(dir, file, &v, list, len, err, errlen);
    }
    long n = kgbuf_count(a);
    size_t bytes;
    float *y = n < 0 || kg_ckd_mul(&bytes, (size_t)(n > 0 ? n : 1), sizeof *y) ? NULL
                                                                              : malloc(bytes);
    if (!y || kgbuf_to_f32(a->dtype, buf, y, n) != 0) {
        free(y);
        return fail(KG_EARG, err, errlen, "output '%s': cannot decode %s (try --raw)", a->name,
                    a->dtype);
    }
    v.dtype = KG_F32;
    v.data = y;
    int rc = save(dir, file, &v, list, len, err, errlen);
    free(y);
    return rc;
}

int kgio_write(const char *dir, const kgg_arg *a, void *buf, int raw, char *list, size_t len,
               char *err, size_t errlen)
{
    if (a->list) {
        kgg_arg e;
        int rc = KG_OK;
        for (int l = 0; l < a->list && rc == KG_OK; l++)
            if (kgbuf_elem(a, l, &e))
                rc = kgio_write(dir, &e, ((void **)buf)[l], raw, list, len, err, errlen);
        return rc;
    }
    int rowscaled;
    base_dtype(a->dtype, &rowscaled);
    return rowscaled ? write_rowscaled(dir, a, buf, raw, list, len, err, errlen)
                     : write_plain(dir, a, buf, raw, list, len, err, errlen);
}
