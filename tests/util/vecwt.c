/* tests/util/vecwt.c: a vector case's quantized weight, from whichever representation the case
 * stores it in, packed for the kernels. The words and stored arrangements are the layouts'
 * (tests/util/weights.c, written from the reference docs); this file only tells the
 * representations apart and converts values or codes into them. */
#include "util/vecwt.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/tensors.h"
#include "util/weights.h"

int kgt_case_wt_fmt(const kgt_case *c, const char *name)
{
    const char *d = kgt_case_input_dtype(c, name);
    if (!d)
        return -1;
    /* e4m3fn before e4m3: the one spelling holds the other */
    static const struct { const char *part; int fmt; } FMTS[] = {
        { "e4m3fn", KG_WT_E4M3FN }, { "e4m3", KG_WT_E4M3 }, { "e5m2", KG_WT_E5M2 },
        { "e2m1", KG_WT_E2M1 },
    };
    for (size_t i = 0; i < sizeof FMTS / sizeof FMTS[0]; i++)
        if (strstr(d, FMTS[i].part))
            return FMTS[i].fmt;
    int t = kgt_case_dtype_from_name(d);
    return t == KG_BF16 ? KG_WT_BF16 : t == KG_F16 ? KG_WT_F16 : t == KG_F32 ? KG_WT_F32 : -1;
}

static int fmt_bits(int fmt)
{
    return fmt == KG_WT_F32 ? 32 : fmt <= KG_WT_F16 ? 16 : fmt == KG_WT_E2M1 ? 4 : 8;
}

static int is_x4(int layout)
{
    return layout == KG_WL_X4 || layout == KG_WL_X4_INTERLEAVED ||
           layout == KG_WL_MLP_MX_GATE_UP || layout == KG_WL_MLP_MX_DOWN ||
           layout == KG_WL_MOE_MX_GATE_UP;
}

/* An integer array: .npy integers, and <u2 files (read as bf16 bit patterns: the vectors store
 * floats as float32, so a 16-bit file holds integers). */
static int is_int_npy(const kg_npy *a)
{
    return a->dtype == KG_U8 || a->dtype == KG_I32 || a->dtype == KG_U32 || a->dtype == KG_I64 ||
           a->dtype == KG_BF16;
}

static int64_t int_at(const kg_npy *a, long i)
{
    switch (a->dtype) {
    case KG_U8: return ((const uint8_t *)a->data)[i];
    case KG_I32: return ((const int32_t *)a->data)[i];
    case KG_U32: return ((const uint32_t *)a->data)[i];
    case KG_BF16: return ((const uint16_t *)a->data)[i];
    default: return ((const int64_t *)a->data)[i];
    }
}

/* Element i of a as fmt's code: a float value on the grid, or an integer code of `bits` bits. */
static uint32_t code_at(const kgt_case *c, const char *name, const kg_npy *a, long i, int fmt)
{
    uint32_t code;
    if (is_int_npy(a)) {
        int64_t v = int_at(a, i);
        int bits = fmt_bits(fmt);
        cr_assert(v >= 0 && (bits == 32 || v < (1ll << bits)), "%s: %s[%ld] = %lld is no %d-bit "
                  "%s code", kgt_case_name(c), name, i, (long long)v, bits, kg_wt_fmt_name(fmt));
        return (uint32_t)v;
    }
    cr_assert(a->dtype == KG_F32, "%s: %s: a float input is stored as float32",
              kgt_case_name(c), name);
    float v = ((const float *)a->data)[i];
    cr_assert(kgt_wt_code(fmt, v, &code), "%s: %s[%ld] = %g is not on the %s grid",
              kgt_case_name(c), name, i, v, kg_wt_fmt_name(fmt));
    return code;
}

int kgt_case_x4_word_fmt(const kgt_case *c, const char *name)
{
    const kg_npy *a = kgt_case_input(c, name);
    cr_assert(a, "%s: %s", kgt_case_name(c), kgt_case_error(c));
    if (!is_int_npy(a))
        return -1;
    for (long i = 0; i < kg_npy_count(a); i++) {
        int64_t v = int_at(a, i);
        if (v < 0 || v > 0xffff)
            return KG_WT_E4M3FN;
    }
    return KG_WT_E2M1;
}

static int same_shape(const kg_npy *a, const long *shape, int rank)
{
    if (a->rank != rank)
        return 0;
    for (int i = 0; i < rank; i++)
        if (a->shape[i] != shape[i])
            return 0;
    return 1;
}

enum { LOGICAL, WORDS, UNPACKED, STORED };

/* Which representation a is for W [K, N] (N found), or -1. */
static int representation(const kg_npy *a, int fmt, int layout, long K, long *N)
{
    if (a->rank == 2 && a->shape[0] == K) {
        *N = a->shape[1];
        return LOGICAL;
    }
    /* N is the last dimension (or the one before an unpacked x4's 4), 512 times the third
     * (the STATIC_MX gate/up swizzle), or twice either (moe_mx_gate_up's [.., 2, .., N/2]) */
    long last = a->shape[a->rank - 1], before = a->rank >= 2 ? a->shape[a->rank - 2] : 0;
    long cand[5] = { last, before, a->rank >= 3 ? a->shape[2] * 512 : 0, 2 * last, 2 * before };
    for (int i = 0; i < 5; i++) {
        long s[8];
        kg_wt_src src = { fmt, layout, K, cand[i], NULL, NULL, 0, 0 };
        int r = cand[i] > 0 ? kg_wt_stored_shape(&src, 0, s) : 0;
        if (!r)
            continue;
        *N = cand[i];
        if (same_shape(a, s, r))
            return is_x4(layout) ? (is_int_npy(a) ? WORDS : -1) : STORED;
        s[r] = 4;
        if (is_x4(layout) && same_shape(a, s, r + 1))
            return UNPACKED;
    }
    return -1;
}

/* The E8M0 scales e8 (taken over; a's shape, a the input `scale_name` or one expert's view of
 * it) of W [K, N] in layout's stored arrangement; malloc'd. */
static uint8_t *stored_scales(const kgt_case *c, const char *scale_name, const kg_npy *a,
                              uint8_t *e8, int fmt, int layout, long K, long N)
{
    const char *cn = kgt_case_name(c);
    long s[8], kb = kgt_wt_kb(layout), lg[2] = { (K + kb - 1) / kb, N };
    kg_wt_src src = { fmt, layout, K, N, NULL, NULL, 0, 0 };
    int r = kg_wt_stored_shape(&src, 1, s);
    cr_assert(r > 0, "%s: %s: layout %s has no MX scales", cn, scale_name,
              kg_wt_layout_name(layout));
    if (same_shape(a, s, r))
        return e8;
    cr_assert(same_shape(a, lg, 2), "%s: %s: shape is neither the %s scales' stored shape nor "
              "the logical [%ld, %ld]", cn, scale_name, kg_wt_layout_name(layout), lg[0], N);
    if (layout == KG_WL_MLP_MX_DOWN) /* a stored scale serves the four q runs of a p run */
        for (long k = 0; k < K; k += 8) {
            long k0 = K >= 512 ? k / 512 * 512 + k % 128 : k % (K / 4);
            for (long n = 0; n < N; n++)
                cr_assert(e8[(k / 8) * N + n] == e8[(k0 / 8) * N + n], "%s: %s: rows %ld.. and "
                          "%ld.. share a stored scale but differ", cn, scale_name, k, k0);
        }
    if (layout == KG_WL_MOE_MX_GATE_UP) /* the same, the four q runs K/4 apart */
        for (long k = 0; k < K; k += 8)
            for (long n = 0; n < N; n++)
                cr_assert(e8[(k / 8) * N + n] == e8[(k % (K / 4) / 8) * N + n], "%s: %s: rows "
                          "%ld.. and %ld.. share a stored scale but differ", cn, scale_name, k,
                          k % (K / 4));
    uint32_t *zero = calloc((size_t)(K * N), sizeof *zero);
    void *sc = NULL;
    cr_assert(zero);
    free(kgt_wt_store(fmt, layout, K, N, zero, e8, &sc));
    free(zero), free(e8);
    return sc;
}

/* W [K, N] from a (the input `name`, or one expert's view of it) in layout's stored
 * arrangement (malloc'd); *N found from a. */
static void *stored_data(const kgt_case *c, const char *name, const kg_npy *a, int fmt,
                         int layout, long K, long *Nout)
{
    const char *cn = kgt_case_name(c);
    long N = 0;
    int rep = representation(a, fmt, layout, K, &N);
    cr_assert(rep >= 0, "%s: %s (%s, rank %d) is no representation of a %s [%ld, N] weight in "
              "layout %s", cn, name, kgt_case_input_dtype(c, name), a->rank,
              kg_wt_fmt_name(fmt), K, kg_wt_layout_name(layout));
    long n = kg_npy_count(a);
    int bits = fmt_bits(fmt);
    void *data;
    if (rep == LOGICAL) {
        uint32_t *codes = malloc((size_t)n * sizeof *codes);
        cr_assert(codes);
        for (long i = 0; i < n; i++)
            codes[i] = code_at(c, name, a, i, fmt);
        data = kgt_wt_store(fmt, layout, K, N, codes, NULL, NULL);
        free(codes);
    } else if (rep == WORDS) {
        data = calloc((size_t)n, 4);
        cr_assert(data);
        for (long i = 0; i < n; i++) {
            int64_t v = int_at(a, i);
            /* numpy's int32 view of a uint32 word is negative past 2^31 */
            if (a->dtype == KG_I32 && v < 0 && bits == 8)
                v += (int64_t)1 << 32;
            cr_assert(v >= 0 && v < ((int64_t)1 << (4 * bits)), "%s: %s word %ld = %lld is no "
                      "%d-bit x4 word", cn, name, i, (long long)v, 4 * bits);
            kgt_put_code(data, 4 * bits, i, (uint32_t)v);
        }
    } else if (rep == UNPACKED) {
        data = calloc((size_t)(n / 4), 4);
        cr_assert(data);
        for (long i = 0; i < n / 4; i++) {
            uint32_t word = 0;
            for (int q = 0; q < 4; q++)
                word |= code_at(c, name, a, 4 * i + q, fmt) << (bits * q);
            kgt_put_code(data, 4 * bits, i, word);
        }
    } else {
        data = calloc((size_t)n + 1, 4);
        cr_assert(data);
        for (long i = 0; i < n; i++)
            kgt_put_code(data, bits, i, code_at(c, name, a, i, fmt));
    }
    *Nout = N;
    return data;
}

long kgt_case_wt(const kgt_case *c, const char *name, const char *scale_name, int fmt,
                 int layout, long K, kg_wt *w)
{
    const char *cn = kgt_case_name(c);
    const kg_npy *a = kgt_case_input(c, name);
    cr_assert(a, "%s: %s", cn, kgt_case_error(c));
    cr_assert(fmt >= 0 && fmt < KG_WT_FMT_COUNT, "%s: %s: no weight format (dtype '%s')", cn,
              name, kgt_case_input_dtype(c, name));
    long N = 0;
    void *data = stored_data(c, name, a, fmt, layout, K, &N);
    uint8_t *sc = NULL;
    if (scale_name) {
        const kg_npy *sa = kgt_case_input(c, scale_name);
        cr_assert(sa, "%s: MX scales: %s", cn, kgt_case_error(c));
        uint8_t *e8 = kgt_case_as(c, scale_name, KG_U8);
        cr_assert(e8, "%s: %s", cn, kgt_case_error(c));
        sc = stored_scales(c, scale_name, sa, e8, fmt, layout, K, N);
    }
    kg_wt_src src = { fmt, layout, K, N, data, sc, 0, 0 };
    char err[256];
    int rc = kg_wt_pack(w, &src, err, sizeof err);
    cr_assert_eq(rc, KG_OK, "%s: %s: kg_wt_pack(%s, %s, [%ld, %ld]): %s", cn, name,
                 kg_wt_fmt_name(fmt), kg_wt_layout_name(layout), K, N, err);
    free(data), free(sc);
    return N;
}

/* Bytes of one element of a case array's dtype. */
static long elem_bytes(const kg_npy *a)
{
    return a->dtype == KG_U8 ? 1 : a->dtype == KG_BF16 || a->dtype == KG_F16 ? 2
           : a->dtype == KG_I64 ? 8 : 4;
}

/* Expert e's view of a [E, ...]: the rest of the shape, its data from element e * count / E
 * on (the view owns nothing). */
static kg_npy expert_view(const kg_npy *a, long e)
{
    kg_npy v = *a;
    v.rank = a->rank - 1;
    for (int i = 0; i < v.rank; i++)
        v.shape[i] = a->shape[i + 1];
    v.data = (char *)a->data + e * (kg_npy_count(a) / a->shape[0]) * elem_bytes(a);
    return v;
}

void kgt_case_experts_wt(const kgt_case *c, const char *name, const char *scale_name, int fmt,
                         int layout, long E, long K, long N, kg_wt *w)
{
    const char *cn = kgt_case_name(c);
    const kg_npy *a = kgt_case_input(c, name);
    cr_assert(a && a->rank >= 2 && a->shape[0] == E, "%s: %s: experts [%ld, ...]: %s", cn,
              name, E, a ? "shape" : kgt_case_error(c));
    cr_assert(fmt >= 0 && fmt < KG_WT_FMT_COUNT, "%s: %s: no weight format (dtype '%s')", cn,
              name, kgt_case_input_dtype(c, name));
    const kg_npy *sa = scale_name ? kgt_case_input(c, scale_name) : NULL;
    uint8_t *e8 = scale_name ? kgt_case_as(c, scale_name, KG_U8) : NULL;
    cr_assert(!scale_name || (sa && e8 && sa->rank >= 2 && sa->shape[0] == E),
              "%s: %s: experts' scales [%ld, ...]: %s", cn, scale_name, E, kgt_case_error(c));
    kg_wt_src *parts = calloc((size_t)E, sizeof *parts);
    cr_assert(parts);
    for (long e = 0; e < E; e++) {
        kg_npy v = expert_view(a, e);
        /* a logical gate | up [K, 2, I] is W [K, N = 2I] */
        if (v.rank == 3 && v.shape[0] == K && v.shape[1] == 2 && 2 * v.shape[2] == N)
            v.rank = 2, v.shape[1] = N;
        long n = 0;
        void *data = stored_data(c, name, &v, fmt, layout, K, &n);
        cr_assert_eq(n, N, "%s: %s: expert %ld holds %ld columns, not %ld", cn, name, e, n, N);
        uint8_t *sc = NULL;
        if (scale_name) {
            kg_npy sv = expert_view(sa, e);
            long cnt = kg_npy_count(&sv);
            uint8_t *mine = malloc((size_t)cnt);
            cr_assert(mine);
            memcpy(mine, e8 + e * cnt, (size_t)cnt);
            sc = stored_scales(c, scale_name, &sv, mine, fmt, layout, K, N);
        }
        parts[e] = (kg_wt_src){ fmt, layout, K, N, data, sc, 0, 0 };
    }
    char err[256];
    int rc = kg_wt_pack_experts(w, parts, (int)E, 1, err, sizeof err);
    cr_assert_eq(rc, KG_OK, "%s: %s: kg_wt_pack_experts(%s, %s, %ld x [%ld, %ld]): %s", cn, name,
                 kg_wt_fmt_name(fmt), kg_wt_layout_name(layout), E, K, N, err);
    for (long e = 0; e < E; e++)
        free((void *)parts[e].data), free((void *)parts[e].scale);
    free(parts), free(e8);
}

uint8_t *kgt_case_codes8(const kgt_case *c, const char *name, int fmt)
{
    const kg_npy *a = kgt_case_input(c, name);
    cr_assert(a, "%s: %s", kgt_case_name(c), kgt_case_error(c));
    cr_assert(fmt_bits(fmt) == 8, "%s: %s: codes of %s", kgt_case_name(c), name,
              kg_wt_fmt_name(fmt));
    long n = kg_npy_count(a);
    uint8_t *q = malloc((size_t)(n > 0 ? n : 1));
    cr_assert(q);
    for (long i = 0; i < n; i++)
        q[i] = (uint8_t)code_at(c, name, a, i, fmt);
    return q;
}

static float fp8_value(int fmt, uint8_t q)
{
    return fmt == KG_WT_E4M3 ? kg_e4m3_to_f32(q) : fmt == KG_WT_E4M3FN ? kg_e4m3fn_to_f32(q)
                                                                      : kg_e5m2_to_f32(q);
}

int kgt_codes_close_to_case(const kgt_case *c, const char *out_name, int fmt, const uint8_t *got,
                            long n, char *msg, size_t len)
{
    const kg_npy *want = kgt_case_output(c, out_name);
    if (!want) {
        snprintf(msg, len, "%s", kgt_case_error(c));
        return 0;
    }
    if (kg_npy_count(want) != n) {
        snprintf(msg, len, "%s has %ld elements, the kernel wrote %ld", out_name,
                 kg_npy_count(want), n);
        return 0;
    }
    if (is_int_npy(want)) {
        kgt_case_compared(c, out_name);
        for (long i = 0; i < n; i++)
            if (int_at(want, i) != got[i]) {
                snprintf(msg, len, "%s[%ld]: code 0x%02x, want 0x%02llx", out_name, i, got[i],
                         (unsigned long long)int_at(want, i));
                return 0;
            }
        return 1;
    }
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    cr_assert(v);
    for (long i = 0; i < n; i++)
        v[i] = fp8_value(fmt, got[i]);
    int ok = kgt_close_to_case(c, out_name, KG_F32, v, msg, len);
    free(v);
    return ok;
}

float *kgt_case_mx_gate_up_bias(kgt_case *c, const char *name, float *b, long E, long I)
{
    const kg_npy *a = kgt_case_input(c, name);
    long P = I >= 512 ? 128 : I / 4, T5 = I >= 512 ? I / 512 : 1;
    cr_assert(a, "%s: %s: %s", kgt_case_name(c), name, kgt_case_error(c));
    if (a->rank == 3) {
        cr_assert(a->shape[0] == E && a->shape[1] == 2 && a->shape[2] == I, "%s: %s [E, 2, I]",
                  kgt_case_name(c), name);
        return b;
    }
    cr_assert(a->rank == 5 && a->shape[0] == E && a->shape[1] == P && a->shape[2] == 2 &&
              a->shape[3] == T5 && a->shape[4] == 4, "%s: MX %s is neither [E, 2, I] nor "
              "[E, %ld, 2, %ld, 4]", kgt_case_name(c), name, P, T5);
    float *l = malloc((size_t)(E * 2 * I) * sizeof *l);
    cr_assert(l);
    for (long e = 0; e < E; e++)
        for (long p = 0; p < P; p++)
            for (long g = 0; g < 2; g++)
                for (long j = 0; j < T5; j++)
                    for (long q = 0; q < 4; q++)
                        l[(e * 2 + g) * I + j * 512 + q * P + p] =
                            b[(((e * P + p) * 2 + g) * T5 + j) * 4 + q];
    free(b);
    return l;
}
