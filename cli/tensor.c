/* tensor.c: kernel argument buffers (kgbuf_): sizes, seeded contents, packing, conversions. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/ckd.h"
#include "kgen/dtype.h"
#include "kgen/kgen.h"
#include "tensor.h"

/* "e4m3_rowscaled": fp8 rows with a packed fp32 scale, one byte per column. */
static int base_dtype(const char *dtype)
{
    char base[32];
    snprintf(base, sizeof base, "%s", dtype);
    char *suffix = strstr(base, "_rowscaled");
    if (suffix)
        *suffix = '\0';
    return kg_dtype_from_name(base);
}

int kgbuf_dtype_bytes(const char *dtype)
{
    int t = base_dtype(dtype);
    return t < 0 ? 0 : (kg_dtype_bits(t) + 7) / 8;
}

long kgbuf_count(const kgg_arg *a)
{
    size_t n;
    if (kg_ckd_shape(&n, 1, a->shape, a->rank) || n > (size_t)LONG_MAX)
        return -1;
    return (long)n;
}

int kgbuf_elem(const kgg_arg *a, int l, kgg_arg *e)
{
    *e = *a;
    e->list = 0, e->list_given = e->list_alt = 0;
    if (!a->list)
        return 1;
    if (l < 0 || l >= a->list || !((a->list_given >> l) & 1))
        return 0;
    if ((a->list_alt >> l) & 1)
        snprintf(e->dtype, sizeof e->dtype, "%s", a->alt_dtype);
    snprintf(e->name, sizeof e->name, "%.50s_%d", a->name, l);
    return 1;
}

/* One tensor's bytes (not a list). */
static size_t tensor_bytes(const kgg_arg *a)
{
    long n = kgbuf_count(a);
    size_t bytes;
    if (n < 0 || kg_ckd_mul(&bytes, (size_t)(n > 0 ? n : 1), (size_t)kgbuf_dtype_bytes(a->dtype)))
        return 0;
    return bytes;
}

size_t kgbuf_bytes(const kgg_arg *a)
{
    if (!a->list)
        return tensor_bytes(a);
    size_t sum = (size_t)a->list * sizeof(void *);
    kgg_arg e;
    for (int l = 0; l < a->list; l++)
        if (kgbuf_elem(a, l, &e)) {
            size_t b = tensor_bytes(&e);
            if (!b || kg_ckd_add(&sum, sum, b))
                return 0;
        }
    return sum;
}

/* ---- the cap on argument memory ----------------------------------------------------------- */

size_t kgbuf_limit(void)
{
    const char *s = getenv("KGEN_MAX_ARG_BYTES");
    if (!s || !*s)
        return KGBUF_DEFAULT_LIMIT;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    const char *units = "KMGT", *u = *end ? strchr(units, *end) : NULL;
    size_t r = (size_t)v;
    if (errno || *s == '-' || end == s || v == 0 || (*end && (!u || end[1])))
        return 0;
    for (long shift = u ? (u - units + 1) * 10 : 0; shift > 0; shift -= 10)
        if (kg_ckd_mul(&r, r, 1024))
            return 0;
    return r;
}

int kgbuf_limit_error(char *err, size_t errlen)
{
    snprintf(err, errlen, "KGEN_MAX_ARG_BYTES='%s': expected a byte count such as 8589934592 "
             "or 8G", getenv("KGEN_MAX_ARG_BYTES"));
    return KG_ESPEC;
}

int kgbuf_budget(const char *who, const kgg_arg *args, int n, size_t *total, char *err,
                 size_t errlen)
{
    size_t limit = kgbuf_limit(), sum = *total;
    if (!limit)
        return kgbuf_limit_error(err, errlen);
    for (int i = 0; i < n; i++) {
        const kgg_arg *a = &args[i];
        size_t bytes = a->used ? kgbuf_bytes(a) : 0;
        if (!a->used)
            continue;
        if (bytes == 0 || kg_ckd_add(&sum, sum, bytes) || sum > limit) {
            if (bytes)
                snprintf(err, errlen, "%s: tensor '%s' would take %zu bytes, which brings its "
                         "arguments past the limit of %zu bytes (KGEN_MAX_ARG_BYTES)", who,
                         a->name, bytes, limit);
            else
                snprintf(err, errlen, "%s: tensor '%s': its size overflows", who, a->name);
            return KG_ESHAPE;
        }
    }
    *total = sum;
    return KG_OK;
}

/* Zeroed, on huge pages when large (kg_stream_alloc), like the packed weights and the bench's
 * read probe, so a kernel's figure is not its arguments' TLB misses. */
void *kgbuf_alloc(const kgg_arg *a)
{
    if (a->list) {
        void **p = calloc((size_t)a->list, sizeof(void *));
        kgg_arg e;
        for (int l = 0; p && l < a->list; l++)
            if (kgbuf_elem(a, l, &e) && !(p[l] = kgbuf_alloc(&e))) {
                kgbuf_free(a, p);
                return NULL;
            }
        return p;
    }
    if (a->weight)
        return calloc(1, sizeof(kg_wt));
    size_t bytes = kgbuf_bytes(a);
    void *p = kg_stream_alloc(bytes);
    return p ? memset(p, 0, bytes) : NULL;
}

/* splitmix64, then Box-Muller: reproducible on every machine. */
static unsigned long long next(unsigned long long *s)
{
    unsigned long long z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double uniform(unsigned long long *s)
{
    return ((double)(next(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* n floats (at least one), malloc'd; NULL if out of memory or n * 4 does not fit. */
static float *floats(long n)
{
    size_t bytes;
    if (n < 0 || kg_ckd_mul(&bytes, (size_t)(n > 0 ? n : 1), sizeof(float)))
        return NULL;
    return malloc(bytes);
}

/* Block tables (moe_cte's): "cycle:A:M:P" is i % M for the first A slots, P after them (tokens
 * then padding); "spread:NB:E" is i * E / NB, at most E - 1 (NB blocks over E experts in
 * ascending order, the rest on the last). 1 and the value if init is one of them. */
static int table_value(const char *init, long i, float *v)
{
    long a, m, p;
    if (sscanf(init, "cycle:%ld:%ld:%ld", &a, &m, &p) == 3 && m > 0) {
        *v = (float)(i < a ? i % m : p);
        return 1;
    }
    if (sscanf(init, "spread:%ld:%ld", &a, &m) == 2 && a > 0 && m > 0) {
        long e = i < a ? (long)((double)i * (double)m / (double)a) : m - 1;
        *v = (float)(e < m ? e : m - 1);
        return 1;
    }
    return 0;
}

/* n seeded values: normal(0,1), or 0.5 +- 0.1 for init "scale", 0, 1, 2, ... for "slots",
 * 1 for "ones", 0 for "zeros", 2^20 for "positions", the block tables of table_value;
 * malloc'd, NULL if out of memory. */
static float *seeded(const kgg_arg *a, long n, unsigned long long seed)
{
    float *x = floats(n);
    unsigned long long s = seed;
    if (!x)
        return NULL;
    for (long i = 0; i < n; i++) {
        if (table_value(a->init, i, &x[i]))
            continue;
        double g = sqrt(-2.0 * log(uniform(&s))) * cos(6.283185307179586 * uniform(&s));
        x[i] = strcmp(a->init, "scale") == 0 ? (float)(0.5 + 0.1 * g)
               : strcmp(a->init, "slots") == 0 ? (float)i /* distinct cache slots 0, 1, ... */
               : strcmp(a->init, "ones") == 0 ? 1.0f  /* a mask that attends everywhere */
               : strcmp(a->init, "zeros") == 0 ? 0.0f
               /* positions past any context: every cache slot attends */
               : strcmp(a->init, "positions") == 0 ? 1048576.0f
               : (float)g;
    }
    return x;
}

int kgbuf_pack(const kgg_arg *a, void *buf, const void *data, const void *scale, char *err,
             size_t errlen)
{
    kg_wt_src src = { kg_wt_fmt_from_name(a->dtype), kg_wt_layout_from_name(a->wt_layout),
                      a->shape[0], a->shape[1], data, scale, 0, 0 };
    if (a->rank != 2 || src.fmt < 0 || src.layout < 0) {
        snprintf(err, errlen, "weight '%s': format %s, layout %s: not a packable weight",
                 a->name, a->dtype, a->wt_layout);
        return -1;
    }
    int rc = kg_wt_pack(buf, &src, err, errlen);
    return rc == KG_OK ? 0 : -1;
}

/* Random weight codes: every stored layout is a permutation of the K*N codes (x4 words are four
 * consecutive codes), so seeded codes in stored order are a valid weight for any of them. */
static int fill_weight(const kgg_arg *a, void *buf, unsigned long long seed, char *err,
                       size_t errlen)
{
    long n = kgbuf_count(a);
    /* uniform in [-2, 2) from the seed's stream: a weight has millions of elements, and
     * Box-Muller per element would dominate a timing run's set-up */
    float *x = floats(n);
    int fmt = kg_wt_fmt_from_name(a->dtype), fp4 = fmt == KG_WT_E2M1;
    size_t bytes = fp4 ? (size_t)(n + 1) / 2 : kgbuf_bytes(a);
    unsigned char *codes = x && bytes ? calloc(bytes, 1) : NULL;
    unsigned char *scale = codes && a->wt_mx ? malloc((size_t)(n / 8 + 1)) : NULL;
    if (!codes || (a->wt_mx && !scale)) {
        free(x), free(codes), free(scale);
        snprintf(err, errlen, "weight '%s': out of memory", a->name);
        return -1;
    }
    unsigned long long s = seed;
    for (long i = 0; i < n; i++)
        x[i] = (float)((double)(next(&s) >> 40) * (4.0 / 16777216.0) - 2.0);
    if (fp4) {
        for (long i = 0; i < n; i++)
            codes[i / 2] |= (unsigned char)(kg_f32_to_e2m1(x[i]) << (i % 2 * 4));
    } else {
        /* fp8 formats: a normal(0,1) value is within range of every one */
        kgbuf_from_f32(a->dtype, x, codes, n);
    }
    if (scale)
        memset(scale, 127, (size_t)(n / 8 + 1));
    int rc = kgbuf_pack(a, buf, codes, scale, err, errlen);
    free(x), free(codes), free(scale);
    return rc;
}

int kgbuf_fill(const kgg_arg *a, void *buf, unsigned long long seed, char *err, size_t errlen)
{
    if (a->list) {
        kgg_arg e;
        for (int l = 0; l < a->list; l++)
            if (kgbuf_elem(a, l, &e) &&
                kgbuf_fill(&e, ((void **)buf)[l], seed + 0x100000ull * (unsigned)(l + 1), err,
                           errlen))
                return -1;
        return 0;
    }
    if (a->weight)
        return fill_weight(a, buf, seed, err, errlen);
    long n = kgbuf_count(a);
    float *x = seeded(a, n, seed);
    if (!x) {
        snprintf(err, errlen, "argument '%s': out of memory", a->name);
        return -1;
    }
    kgbuf_from_f32(a->dtype, x, buf, n);
    free(x);
    return 0;
}

void kgbuf_free(const kgg_arg *a, void *buf)
{
    if (a && a->list && buf) {
        kgg_arg e;
        for (int l = 0; l < a->list; l++)
            if (kgbuf_elem(a, l, &e))
                kgbuf_free(&e, ((void **)buf)[l]);
        free(buf);
        return;
    }
    if (a && a->weight && buf)
        kg_wt_free(buf);
    free(buf);
}

int kgbuf_from_f32(const char *dtype, const float *x, void *out, long n)
{
    int t = base_dtype(dtype);
    for (long i = 0; i < n; i++) {
        switch (t) {
        case KG_F32: ((float *)out)[i] = x[i]; break;
        case KG_BF16: ((uint16_t *)out)[i] = kg_f32_to_bf16(x[i]); break;
        case KG_F16: ((uint16_t *)out)[i] = kg_f32_to_f16(x[i]); break;
        case KG_E4M3: ((uint8_t *)out)[i] = kg_f32_to_e4m3(x[i]); break;
        case KG_E4M3FN: ((uint8_t *)out)[i] = kg_f32_to_e4m3fn(x[i]); break;
        case KG_E5M2: ((uint8_t *)out)[i] = kg_f32_to_e5m2(x[i]); break;
        /* an E8M0 scale: the power of two at or below |x| (a seeded 0.5 is 2^-1) */
        case KG_E8M0: ((uint8_t *)out)[i] = kg_e8m0_block_exponent(&x[i], 1, 0); break;
        case KG_U8: ((uint8_t *)out)[i] = (uint8_t)x[i]; break;
        case KG_I32: ((int32_t *)out)[i] = (int32_t)x[i]; break;
        case KG_I64: ((int64_t *)out)[i] = (int64_t)x[i]; break;
        case KG_U32: ((uint32_t *)out)[i] = (uint32_t)x[i]; break;
        default: return -1;
        }
    }
    return 0;
}

int kgbuf_to_f32(const char *dtype, const void *in, float *y, long n)
{
    int t = base_dtype(dtype);
    for (long i = 0; i < n; i++) {
        switch (t) {
        case KG_F32: y[i] = ((const float *)in)[i]; break;
        case KG_BF16: y[i] = kg_bf16_to_f32(((const uint16_t *)in)[i]); break;
        case KG_F16: y[i] = kg_f16_to_f32(((const uint16_t *)in)[i]); break;
        case KG_E4M3: y[i] = kg_e4m3_to_f32(((const uint8_t *)in)[i]); break;
        case KG_E4M3FN: y[i] = kg_e4m3fn_to_f32(((const uint8_t *)in)[i]); break;
        case KG_E5M2: y[i] = kg_e5m2_to_f32(((const uint8_t *)in)[i]); break;
        case KG_E8M0: y[i] = kg_e8m0_to_f32(((const uint8_t *)in)[i]); break;
        case KG_U8: y[i] = ((const uint8_t *)in)[i]; break;
        case KG_I32: y[i] = (float)((const int32_t *)in)[i]; break;
        case KG_I64: y[i] = (float)((const int64_t *)in)[i]; break;
        case KG_U32: y[i] = (float)((const uint32_t *)in)[i]; break;
        default: return -1;
        }
    }
    return 0;
}
