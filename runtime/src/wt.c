/* wt.c: packing a weight from its stored layout (kgen/kgen.h, kg_wt_layout) into the panels the
 * GEMM primitive reads (kgen/abi.h, kg_wt). Packing rearranges codes and never decodes them, so
 * a packed fp8 weight is still fp8. Done once per weight, at load. The kn layout has a fast
 * path that copies whole runs; every layout also has the element-by-element reference packer,
 * which the environment variable KGEN_WT_PACK=generic forces (tests/test_wt_pack.c compares the
 * two byte for byte). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/ckd.h"
#include "kgen/kgen.h"
#include "prim.h"

static const char *const FMT_NAMES[KG_WT_FMT_COUNT] = {
    "f32", "bf16", "fp16", "e4m3", "e4m3fn", "e5m2", "e2m1",
};
static const int FMT_BITS[KG_WT_FMT_COUNT] = { 32, 16, 16, 8, 8, 8, 4 };

static const char *const LAYOUT_NAMES[KG_WL_COUNT] = {
    "kn", "x4", "x4_interleaved", "mlp_mx_gate_up", "mlp_mx_down", "mlp_smx_gate_up",
    "mlp_smx_down", "nk", "moe_mx_gate_up",
};

const char *kg_wt_fmt_name(int fmt)
{
    return fmt >= 0 && fmt < KG_WT_FMT_COUNT ? FMT_NAMES[fmt] : NULL;
}

int kg_wt_fmt_bits(int fmt)
{
    return fmt >= 0 && fmt < KG_WT_FMT_COUNT ? FMT_BITS[fmt] : 0;
}

int kg_wt_fmt_from_name(const char *name)
{
    for (int i = 0; name && i < KG_WT_FMT_COUNT; i++)
        if (strcmp(FMT_NAMES[i], name) == 0)
            return i;
    return -1;
}

const char *kg_wt_layout_name(int layout)
{
    return layout >= 0 && layout < KG_WL_COUNT ? LAYOUT_NAMES[layout] : NULL;
}

int kg_wt_layout_from_name(const char *name)
{
    for (int i = 0; name && i < KG_WL_COUNT; i++)
        if (strcmp(LAYOUT_NAMES[i], name) == 0)
            return i;
    return -1;
}

/* ---- the stored layouts ---------------------------------------------------------------------- */

static int is_x4(int layout)
{
    return layout != KG_WL_KN && layout != KG_WL_NK && layout != KG_WL_MLP_SMX_GATE_UP &&
           layout != KG_WL_MLP_SMX_DOWN;
}

/* MLP-MX down: P rows of words per 512-row tile, T tiles. */
static long down_p(long K) { return K >= 512 ? 128 : K / 4; }
static long down_t(long K) { return K >= 512 ? K / 512 : 1; }

/* Why src's sizes do not fit its layout, or NULL. */
static const char *layout_misfit(const kg_wt_src *s)
{
    long K = s->K, N = s->N;
    switch (s->layout) {
    case KG_WL_KN:
        return s->scale && K % 32 ? "an MX weight needs K % 32 == 0" : NULL;
    case KG_WL_X4:
    case KG_WL_X4_INTERLEAVED:
        if (K % 4)
            return "an x4 layout needs K % 4 == 0";
        return s->scale && K % 32 ? "an MX weight needs K % 32 == 0" : NULL;
    case KG_WL_MLP_MX_GATE_UP:
        return K % 512 ? "mlp_mx_gate_up needs K % 512 == 0" : NULL;
    case KG_WL_MLP_MX_DOWN:
        return K % 512 == 0 || (K < 512 && K % 32 == 0)
                   ? NULL : "mlp_mx_down needs K % 512 == 0, or K < 512 and K % 32 == 0";
    case KG_WL_MLP_SMX_GATE_UP:
        if (K % 512 || N % 512)
            return "mlp_smx_gate_up needs K % 512 == 0 and N % 512 == 0";
        return s->scale ? "mlp_smx_gate_up is a STATIC_MX layout: no MX scales" : NULL;
    case KG_WL_MLP_SMX_DOWN:
        if (K % 512)
            return "mlp_smx_down needs K % 512 == 0";
        return s->scale ? "mlp_smx_down is a STATIC_MX layout: no MX scales" : NULL;
    case KG_WL_NK:
        return s->scale ? "nk holds no MX scales" : NULL;
    case KG_WL_MOE_MX_GATE_UP:
        return K % 512 || N % 2 ? "moe_mx_gate_up needs K % 512 == 0 and N even (gate | up)"
                                : NULL;
    }
    return "unknown layout";
}

/* Index of logical element (k, n) in the stored data, in elements (an x4 word is 4). */
static long data_index(const kg_wt_src *s, long k, long n)
{
    long K = s->K, N = s->N;
    switch (s->layout) {
    case KG_WL_X4:
        return ((k / 4) * N + n) * 4 + k % 4;
    case KG_WL_X4_INTERLEAVED: {
        long half = K / 2, a = k / half, rem = k % half;
        return ((rem / 2) * N + n) * 4 + 2 * a + rem % 2;
    }
    case KG_WL_MLP_MX_GATE_UP:
        return (((k % 512) / 4 * (K / 512) + k / 512) * N + n) * 4 + k % 4;
    case KG_WL_MLP_MX_DOWN: {
        long P = down_p(K), T = down_t(K), t, q, p;
        if (K >= 512)
            t = k / 512, q = (k % 512) / 128, p = k % 128;
        else
            t = 0, q = k / P, p = k % P;
        return ((p * T + t) * N + n) * 4 + q;
    }
    case KG_WL_MLP_SMX_GATE_UP: {
        long H5 = K / 512, I5 = N / 512;
        long a3 = k % 2, a2 = (k / 2) % 128, a1 = (k / 256) % H5, a0 = k / 256 / H5;
        long a6 = n % 4, a5 = (n / 4) % 128, a4 = n / 512;
        return (((((a2 * H5 + a1) * I5 + a4) * 4 + a6) * 128 + a5) * 2 + a0) * 2 + a3;
    }
    case KG_WL_MLP_SMX_DOWN:
        return (((k / 4) % 128 * (K / 512) + k / 512) * N + n) * 4 + k % 4;
    case KG_WL_NK:
        return n * K + k;
    case KG_WL_MOE_MX_GATE_UP: {
        long q = k / (K / 4), j = (k % (K / 4)) / 128, p = k % 128, g = n / (N / 2);
        return (((p * 2 + g) * (K / 512) + j) * (N / 2) + n % (N / 2)) * 4 + q;
    }
    default:
        return k * N + n;
    }
}

/* The MX block length of a layout's scales, and the index of (k, n)'s scale. */
static int layout_kb(int layout)
{
    return layout == KG_WL_MLP_MX_DOWN || layout == KG_WL_MOE_MX_GATE_UP ? 8 : 32;
}

static long scale_index(const kg_wt_src *s, long k, long n)
{
    long K = s->K, N = s->N;
    switch (s->layout) {
    case KG_WL_MLP_MX_GATE_UP:
        return (((k % 512) / 32) * (K / 512) + k / 512) * N + n;
    case KG_WL_MLP_MX_DOWN: {
        long P = down_p(K), T = down_t(K);
        long t = K >= 512 ? k / 512 : 0, p = K >= 512 ? k % 128 : k % P;
        return ((p / 8) * T + t) * N + n;
    }
    case KG_WL_MOE_MX_GATE_UP: {
        long j = (k % (K / 4)) / 128, p = k % 128, g = n / (N / 2);
        return (((p / 8) * 2 + g) * (K / 512) + j) * (N / 2) + n % (N / 2);
    }
    default:
        return (k / 32) * N + n;
    }
}

int kg_wt_stored_shape(const kg_wt_src *s, int which, long shape[8])
{
    long K = s->K, N = s->N;
    if (K <= 0 || N <= 0 || s->layout < 0 || s->layout >= KG_WL_COUNT)
        return 0;
    if (which == 1) {
        switch (s->layout) {
        case KG_WL_MLP_MX_GATE_UP:
            shape[0] = 16, shape[1] = K / 512, shape[2] = N;
            return 3;
        case KG_WL_MLP_MX_DOWN:
            shape[0] = down_p(K) / 8, shape[1] = down_t(K), shape[2] = N;
            return 3;
        case KG_WL_MOE_MX_GATE_UP:
            shape[0] = 16, shape[1] = 2, shape[2] = K / 512, shape[3] = N / 2;
            return 4;
        case KG_WL_MLP_SMX_GATE_UP:
        case KG_WL_MLP_SMX_DOWN:
        case KG_WL_NK:
            return 0;
        default:
            shape[0] = K / 32, shape[1] = N;
            return 2;
        }
    }
    switch (s->layout) {
    case KG_WL_X4:
    case KG_WL_X4_INTERLEAVED:
        shape[0] = K / 4, shape[1] = N;
        return 2;
    case KG_WL_MLP_MX_GATE_UP:
        shape[0] = 128, shape[1] = K / 512, shape[2] = N;
        return 3;
    case KG_WL_MLP_MX_DOWN:
        shape[0] = down_p(K), shape[1] = down_t(K), shape[2] = N;
        return 3;
    case KG_WL_MOE_MX_GATE_UP:
        shape[0] = 128, shape[1] = 2, shape[2] = K / 512, shape[3] = N / 2;
        return 4;
    case KG_WL_MLP_SMX_GATE_UP: {
        static const long base[7] = { 128, 0, 0, 4, 128, 2, 2 };
        for (int i = 0; i < 7; i++)
            shape[i] = base[i];
        shape[1] = K / 512, shape[2] = N / 512;
        return 7;
    }
    case KG_WL_MLP_SMX_DOWN:
        shape[0] = 128, shape[1] = K / 512, shape[2] = N, shape[3] = 4;
        return 4;
    case KG_WL_NK:
        shape[0] = N, shape[1] = K;
        return 2;
    default:
        shape[0] = K, shape[1] = N;
        return 2;
    }
}

/* ---- packing: the plan ----------------------------------------------------------------------- */

static long gcd(long a, long b) { while (b) { long t = a % b; a = b; b = t; } return a; }

/* The sizes of one packed weight, all fixed before a byte is written. */
typedef struct plan {
    int bits, kb;          /* element bits; MX block length, 0 without scales */
    long nr, kg, kpad, panels;
    size_t dbytes, dalloc; /* the panels' bytes, and that rounded up to 64 (zeroed too) */
    size_t sbytes;         /* the scales' bytes, from mem + dalloc on */
    size_t total;          /* dalloc, the scales rounded up to 64, and 64 spare */
} plan;

/* Fills pl for s; nonzero if a size overflows (K and N come from a caller's file: every
 * product is checked, so a [2^40, 2^40] weight is refused rather than wrapped small). */
static int make_plan(const kg_wt_src *s, plan *pl)
{
    *pl = (plan){ .bits = FMT_BITS[s->fmt], .nr = s->nr, .kg = s->kg };
    if (pl->nr <= 0 || pl->kg <= 0)
        kgr_wt_geometry(s->fmt, pl->nr <= 0 ? &pl->nr : &(long){ 0 },
                        pl->kg <= 0 ? &pl->kg : &(long){ 0 });
    pl->kb = s->scale ? layout_kb(s->layout) : 0;
    long unit = pl->kb ? pl->kg / gcd(pl->kg, pl->kb) * pl->kb : pl->kg;
    size_t kpad, panels, elems, sbytes = 0, tail;
    if (kg_ckd_round_up(&kpad, (size_t)s->K, (size_t)unit) ||
        kg_ckd_round_up(&panels, (size_t)s->N, (size_t)pl->nr) ||
        kg_ckd_mul(&elems, kpad, panels) || elems > (size_t)__LONG_MAX__ / 4)
        return 1;
    pl->kpad = (long)kpad, pl->panels = (long)(panels / (size_t)pl->nr);
    pl->dbytes = pl->bits == 4 ? (elems + 1) / 2 : elems * (size_t)(pl->bits / 8);
    pl->dalloc = (pl->dbytes + 63) / 64 * 64;
    if (pl->kb)
        sbytes = elems / (size_t)pl->kb; /* panels * (kpad / kb) * nr */
    pl->sbytes = sbytes;
    tail = (sbytes + 63) / 64 * 64 + 64;
    return kg_ckd_add(&pl->total, pl->dalloc, tail);
}

/* ---- packing: the reference, any layout ------------------------------------------------------ */

/* Element e of an array of `bits`-bit codes (fp4: low nibble first), as raw bits. */
static unsigned get_code(const void *p, int bits, long e)
{
    const unsigned char *b = p;
    switch (bits) {
    case 32: { unsigned v; memcpy(&v, b + 4 * e, 4); return v; }
    case 16: { unsigned short v; memcpy(&v, b + 2 * e, 2); return v; }
    case 8: return b[e];
    default: return (b[e / 2] >> (e % 2 * 4)) & 0xf;
    }
}

static void put_code(void *p, int bits, long e, unsigned v)
{
    unsigned char *b = p;
    switch (bits) {
    case 32: memcpy(b + 4 * e, &v, 4); break;
    case 16: { unsigned short h = (unsigned short)v; memcpy(b + 2 * e, &h, 2); break; }
    case 8: b[e] = (unsigned char)v; break;
    default: b[e / 2] = (unsigned char)((b[e / 2] & ~(0xf << (e % 2 * 4))) | (v << (e % 2 * 4)));
    }
}

/* Element by element through data_index and scale_index: slow (~0.4 s for a bf16 4096 x 14336
 * weight) but written straight from the kg_wt layout comment, so it is the reference the fast
 * path is tested against (KGEN_WT_PACK=generic forces it). */
static void pack_generic(const kg_wt_src *s, const plan *pl, unsigned char *mem,
                         unsigned char *scale)
{
    long nr = pl->nr, kg = pl->kg, kpad = pl->kpad, kb = pl->kb;
    memset(mem, 0, pl->dalloc);
    if (scale)
        memset(scale, 127, pl->sbytes);
    for (long k = 0; k < s->K; k++) {
        for (long n = 0; n < s->N; n++) {
            long p = n / nr, j = n % nr;
            long e = p * kpad * nr + (k / kg) * nr * kg + j * kg + k % kg;
            put_code(mem, pl->bits, e, get_code(s->data, pl->bits, data_index(s, k, n)));
            if (scale && k % kb == 0)
                scale[p * (kpad / kb) * nr + (k / kb) * nr + j] =
                    ((const unsigned char *)s->scale)[scale_index(s, k, n)];
        }
    }
}

/* ---- packing: the kn fast path --------------------------------------------------------------- */
/* In the kn layout the cnt columns of panel p in row k are one run of the stored data, so each
 * k-group of a panel (nr * kg elements, contiguous in the packed weight) is built from kg runs:
 * copied as they are for kg = 1, interleaved pair-wise for kg = 2. */

/* Element types that may sit at any address and alias the bytes they come from: the stored
 * data is whatever a file held, with no alignment promised. */
typedef kg_u8 u8a;
typedef kg_u16 u16a __attribute__((aligned(1), may_alias));
typedef kg_u32 u32a __attribute__((aligned(1), may_alias));

/* One k-group of a panel: d[j * kg + r] = rows[r][j] for j < cnt (a NULL row, k >= K, gives
 * zeros), zeros for cnt <= j < nr. Plain loops, which gcc vectorises. */
#define DEF_GROUP(name, T)                                                                  \
    static void name(void *dst, const void *const *rows, long kg, long cnt, long nr)       \
    {                                                                                       \
        T *restrict d = dst;                                                                \
        const T *a = rows[0], *b = kg == 2 ? rows[1] : NULL;                               \
        if (kg == 1 && a) {                                                                 \
            memcpy(d, a, (size_t)cnt * sizeof *d);                                          \
        } else if (kg == 2 && a && b) {                                                     \
            for (long j = 0; j < cnt; j++)                                                  \
                d[2 * j] = a[j], d[2 * j + 1] = b[j];                                       \
        } else {                                                                            \
            for (long r = 0; r < kg; r++) {                                                 \
                const T *x = rows[r];                                                       \
                for (long j = 0; j < cnt; j++)                                              \
                    d[j * kg + r] = x ? x[j] : 0;                                           \
            }                                                                               \
        }                                                                                   \
        memset(d + cnt * kg, 0, (size_t)((nr - cnt) * kg) * sizeof *d);                     \
    }
DEF_GROUP(group_u8, u8a)
DEF_GROUP(group_u16, u16a)
DEF_GROUP(group_u32, u32a)
#undef DEF_GROUP

/* cnt fp4 codes from nibble o of s on, one per byte of t. */
static void unpack_nibbles(kg_u8 *restrict t, const kg_u8 *s, long o, long cnt)
{
    long j = 0;
    if (o % 2 && cnt > 0)
        t[j++] = s[o / 2] >> 4;
    const kg_u8 *b = s + (o + j) / 2;
    for (; j + 1 < cnt; j += 2, b++)
        t[j] = *b & 0xf, t[j + 1] = *b >> 4;
    if (j < cnt)
        t[j] = *b & 0xf;
}

/* Where pack_kn keeps a group's row pointers and, for fp4, the codes one per byte: kg rows
 * of nr, then the interleaved group of nr * kg. */
typedef struct kn_work {
    const void **rows;
    kg_u8 *codes, *group;
} kn_work;

/* fp4: each row unpacked, interleaved as bytes, then two codes per byte, low nibble first (nr
 * * kg is even, so a group starts and ends on a byte). */
static void group_fp4(kg_u8 *d, const kg_wt_src *s, const plan *pl, kn_work *wk, long k0,
                      long n0, long cnt)
{
    long nr = pl->nr, kg = pl->kg;
    for (long r = 0; r < kg; r++) {
        wk->rows[r] = k0 + r < s->K ? wk->codes + r * nr : NULL;
        if (wk->rows[r])
            unpack_nibbles(wk->codes + r * nr, s->data, (k0 + r) * s->N + n0, cnt);
    }
    group_u8(wk->group, (const void *const *)wk->rows, kg, cnt, nr);
    for (long i = 0; i < nr * kg / 2; i++)
        d[i] = (kg_u8)(wk->group[2 * i] | wk->group[2 * i + 1] << 4);
}

/* k-group by k-group, each across all panels: the stored rows are read front to back (panel
 * by panel, reading kg rows a panel apart, was 2-3x slower: a TLB miss per run). */
static void pack_kn_data(const kg_wt_src *s, const plan *pl, kg_u8 *mem, kn_work *wk)
{
    long nr = pl->nr, kg = pl->kg, N = s->N, es = pl->bits / 8;
    const kg_u8 *data = s->data;
    for (long k0 = 0; k0 < pl->kpad; k0 += kg) {
        for (long p = 0; p < pl->panels; p++) {
            long n0 = p * nr, cnt = N - n0 < nr ? N - n0 : nr;
            long e = (p * pl->kpad + k0) * nr; /* the group's first element */
            if (pl->bits == 4) {
                group_fp4(mem + e / 2, s, pl, wk, k0, n0, cnt);
                continue;
            }
            for (long r = 0; r < kg; r++)
                wk->rows[r] = k0 + r < s->K ? data + ((k0 + r) * N + n0) * es : NULL;
            void (*group)(void *, const void *const *, long, long, long) =
                es == 1 ? group_u8 : es == 2 ? group_u16 : group_u32;
            group(mem + e * es, (const void *const *)wk->rows, kg, cnt, nr);
        }
    }
    memset(mem + pl->dbytes, 0, pl->dalloc - pl->dbytes);
}

/* Scale row b of panel p is the run of cnt scales of stored row b; the padding is 127. */
static void pack_kn_scales(const kg_wt_src *s, const plan *pl, kg_u8 *scale)
{
    long nr = pl->nr, rows = pl->kpad / pl->kb, N = s->N;
    for (long p = 0; p < pl->panels; p++) {
        long n0 = p * nr, cnt = N - n0 < nr ? N - n0 : nr;
        for (long b = 0; b < rows; b++) {
            kg_u8 *d = scale + (p * rows + b) * nr;
            long have = b * pl->kb < s->K ? cnt : 0;
            memcpy(d, (const kg_u8 *)s->scale + b * N + n0, (size_t)have);
            memset(d + have, 127, (size_t)(nr - have));
        }
    }
}

/* The fast path, or -1 (nothing written) if it does not apply or its work space is missing. */
static int pack_kn(const kg_wt_src *s, const plan *pl, kg_u8 *mem, kg_u8 *scale)
{
    if (s->layout != KG_WL_KN || (pl->bits == 4 && pl->nr * pl->kg % 2))
        return -1;
    const char *force = getenv("KGEN_WT_PACK");
    if (force && strcmp(force, "generic") == 0)
        return -1;
    size_t ncodes = pl->bits == 4 ? (size_t)(2 * pl->nr * pl->kg) : 0;
    kn_work wk = { .rows = malloc((size_t)pl->kg * sizeof *wk.rows + ncodes) };
    if (!wk.rows)
        return -1;
    wk.codes = (kg_u8 *)(wk.rows + pl->kg), wk.group = wk.codes + pl->nr * pl->kg;
    pack_kn_data(s, pl, mem, &wk);
    if (scale)
        pack_kn_scales(s, pl, scale);
    free(wk.rows);
    return 0;
}

/* ---- packing: the nk fast path and concatenated parts --------------------------------------- */
/* In the nk layout ([N, K], a Hugging Face linear weight) column n of W is stored row n, read
 * front to back; its values go kg at a time into the panel's column, nr * kg elements apart
 * (stepped, not divided: a division an element cost more than the copy). A panel (kpad * nr
 * elements) stays in the cache while its nr columns are written. */

#define DEF_COLUMN(name, T)                                                                 \
    static void name(void *panel, const void *col, long xs, long K, long kg, long nr,      \
                     long j)                                                                \
    {                                                                                       \
        T *restrict d = (T *)panel + j * kg;                                                \
        const T *x = col;                                                                   \
        for (long k = 0; k < K; d += nr * kg)                                               \
            for (long r = 0; r < kg && k < K; r++, k++)                                     \
                d[r] = x[k * xs];                                                           \
    }
DEF_COLUMN(column_u8, u8a)
DEF_COLUMN(column_u16, u16a)
DEF_COLUMN(column_u32, u32a)
#undef DEF_COLUMN

typedef struct cols { const kg_wt_src *s; const plan *pl; kg_u8 *mem; long n_off; } cols;

/* Columns [n0, n1) of s into packed columns n_off + n0.. of the zeroed panels at mem: the nk
 * and kn layouts of whole-byte elements column by column (a column is contiguous in nk, N
 * elements apart in kn), any other layout element by element. MX scales are not written here
 * (pack_col_scales). */
static void cols_range(void *ctx, long n0, long n1)
{
    const cols *c = ctx;
    const kg_wt_src *s = c->s;
    const plan *pl = c->pl;
    kg_u8 *mem = c->mem;
    long n_off = c->n_off, nr = pl->nr, kg = pl->kg, kpad = pl->kpad, es = pl->bits / 8;
    for (long n = n0; n < n1; n++) {
        long p = (n_off + n) / nr, j = (n_off + n) % nr;
        if ((s->layout == KG_WL_NK || s->layout == KG_WL_KN) && pl->bits >= 8) {
            void (*column)(void *, const void *, long, long, long, long, long) =
                es == 1 ? column_u8 : es == 2 ? column_u16 : column_u32;
            int nk = s->layout == KG_WL_NK;
            column(mem + p * kpad * nr * es, (const kg_u8 *)s->data + n * (nk ? s->K : 1) * es,
                   nk ? 1 : s->N, s->K, kg, nr, j);
            continue;
        }
        for (long k = 0; k < s->K; k++)
            put_code(mem, pl->bits, p * kpad * nr + (k / kg) * nr * kg + j * kg + k % kg,
                     get_code(s->data, pl->bits, data_index(s, k, n)));
    }
}

/* The MX scales of s into packed columns n_off.. of the scales at scale (already 127). */
static void pack_col_scales(const kg_wt_src *s, const plan *pl, kg_u8 *scale, long n_off)
{
    long nr = pl->nr, kb = pl->kb, rows = pl->kpad / kb;
    const kg_u8 *src = s->scale;
    for (long n = 0; n < s->N; n++) {
        long p = (n_off + n) / nr, j = (n_off + n) % nr;
        for (long k = 0; k < s->K; k += kb)
            scale[(p * rows + k / kb) * nr + j] = src[scale_index(s, k, n)];
    }
}

/* All columns of s, split over the runtime's threads where each column is whole bytes (nk, kn):
 * a thread's columns are whole panels but at its range's ends, and columns never share an
 * element. fp4 codes share bytes, so fp4 runs on one thread. */
static void pack_cols(const kg_wt_src *s, const plan *pl, kg_u8 *mem, long n_off)
{
    cols c = { s, pl, mem, n_off };
    if ((s->layout == KG_WL_NK || s->layout == KG_WL_KN) && pl->bits >= 8)
        kgp_parallel_for(cols_range, &c, s->N, pl->nr);
    else
        cols_range(&c, 0, s->N);
}

/* ---- packing: the entry point ---------------------------------------------------------------- */

#define FAIL(code, ...) do { if (err && errlen) snprintf(err, errlen, __VA_ARGS__); return code; } while (0)

static int check_src(const kg_wt_src *s, char *err, size_t errlen);

/* Checks s, plans its packing into *pl and allocates w's memory (w's fields set, nothing
 * packed yet). */
static int prepare(kg_wt *w, const kg_wt_src *s, plan *pl, char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    int rc = check_src(s, err, errlen);
    if (rc != KG_OK)
        return rc;
    if (make_plan(s, pl))
        FAIL(KG_ESHAPE, "weight [%ld, %ld]: its packed size overflows", s->K, s->N);
    /* a big packed weight is every GEMV's whole read: huge pages (kg_stream_alloc) */
    unsigned char *mem = kg_stream_alloc(pl->total);
    if (!mem)
        FAIL(KG_ENOMEM, "out of memory packing a [%ld, %ld] weight", s->K, s->N);
    w->fmt = s->fmt, w->kb = pl->kb, w->K = s->K, w->N = s->N;
    w->nr = pl->nr, w->kg = pl->kg, w->kpad = pl->kpad;
    w->data = mem, w->scale = pl->kb ? mem + pl->dalloc : NULL, w->mem = mem;
    return KG_OK;
}

/* Whether s is a weight kg_wt_pack can read: KG_OK, or the error with its reason in err. */
static int check_src(const kg_wt_src *s, char *err, size_t errlen)
{
    if (s->fmt < 0 || s->fmt >= KG_WT_FMT_COUNT)
        FAIL(KG_ESPEC, "weight format %d is not a kg_wt_fmt", s->fmt);
    if (s->layout < 0 || s->layout >= KG_WL_COUNT)
        FAIL(KG_ESPEC, "weight layout %d is not a kg_wt_layout", s->layout);
    if (s->K <= 0 || s->N <= 0)
        FAIL(KG_ESHAPE, "weight [%ld, %ld]: K and N must be positive", s->K, s->N);
    if (!s->data)
        FAIL(KG_ESHAPE, "weight data is NULL");
    int bits = FMT_BITS[s->fmt];
    if (s->scale && bits > 8)
        FAIL(KG_ESPEC, "MX scales on a %s weight (MX needs fp8 or fp4 elements)",
             FMT_NAMES[s->fmt]);
    if (is_x4(s->layout) && bits > 8)
        FAIL(KG_ESPEC, "layout %s packs fp8 or fp4 codes, not %s", LAYOUT_NAMES[s->layout],
             FMT_NAMES[s->fmt]);
    const char *why = layout_misfit(s);
    if (why)
        FAIL(KG_ESHAPE, "weight [%ld, %ld] in layout %s: %s", s->K, s->N,
             LAYOUT_NAMES[s->layout], why);
    return KG_OK;
}

int kg_wt_pack(kg_wt *w, const kg_wt_src *s, char *err, size_t errlen)
{
    plan pl;
    int rc = prepare(w, s, &pl, err, errlen);
    if (rc != KG_OK)
        return rc;
    unsigned char *mem = w->mem, *scale = (unsigned char *)w->scale;
    const char *force = getenv("KGEN_WT_PACK");
    if (s->layout == KG_WL_NK && !(force && strcmp(force, "generic") == 0)) {
        memset(mem, 0, pl.dalloc);
        pack_cols(s, &pl, mem, 0);
    } else if (pack_kn(s, &pl, mem, scale) != 0) {
        pack_generic(s, &pl, mem, scale);
    }
    return KG_OK;
}

int kg_wt_pack_parts(kg_wt *w, const kg_wt_src *parts, int n, char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    if (n < 1)
        FAIL(KG_ESHAPE, "no weight parts to pack");
    if (n == 1)
        return kg_wt_pack(w, parts, err, errlen);
    kg_wt_src all = parts[0];
    size_t N = 0;
    for (int i = 0; i < n; i++) {
        const kg_wt_src *s = &parts[i];
        if (s->fmt != all.fmt || s->K != all.K || s->nr != all.nr || s->kg != all.kg)
            FAIL(KG_ESHAPE, "weight part %d: format, K or geometry differs from part 0", i);
        if (s->scale || (s->layout != KG_WL_KN && s->layout != KG_WL_NK))
            FAIL(KG_ESPEC, "weight part %d: parts must be kn or nk without MX scales", i);
        if (s->N <= 0 || !s->data || kg_ckd_add(&N, N, (size_t)s->N) || N > (size_t)__LONG_MAX__)
            FAIL(KG_ESHAPE, "weight part %d: N %ld or its data is not usable", i, s->N);
    }
    all.N = (long)N;
    plan pl;
    int rc = prepare(w, &all, &pl, err, errlen); /* checks K and the format, allocates */
    if (rc != KG_OK)
        return rc;
    memset(w->mem, 0, pl.dalloc);
    for (long i = 0, off = 0; i < n; off += parts[i].N, i++)
        pack_cols(&parts[i], &pl, w->mem, off);
    return KG_OK;
}

long kg_wt_expert_cols(long n)
{
    size_t r;
    if (n < 1 || kg_ckd_round_up(&r, (size_t)n, KG_WT_EXPERT_ALIGN) || r > (size_t)__LONG_MAX__)
        return -1;
    return (long)r;
}

int kg_wt_pack_experts(kg_wt *w, const kg_wt_src *parts, int E, int nparts, char *err,
                       size_t errlen)
{
    memset(w, 0, sizeof *w);
    if (E < 1 || nparts < 1)
        FAIL(KG_ESHAPE, "%d experts of %d parts: both must be at least 1", E, nparts);
    size_t n_all, cols = 0;
    if (kg_ckd_mul(&n_all, (size_t)E, (size_t)nparts) || n_all > (size_t)__INT_MAX__)
        FAIL(KG_ESHAPE, "%d experts of %d parts: too many parts", E, nparts);
    const kg_wt_src *p0 = &parts[0];
    int kb0 = p0->scale ? layout_kb(p0->layout) : 0;
    for (long i = 0; i < (long)n_all; i++) {
        const kg_wt_src *s = &parts[i];
        long e = i / nparts, q = i % nparts;
        int rc = check_src(s, err, errlen);
        if (rc != KG_OK) {
            char why[200];
            snprintf(why, sizeof why, "%s", err && errlen ? err : "");
            FAIL(rc, "expert %ld part %ld: %s", e, q, why);
        }
        int kb = s->scale ? layout_kb(s->layout) : 0;
        if (s->fmt != p0->fmt || s->K != p0->K || s->nr != p0->nr || s->kg != p0->kg ||
            kb != kb0)
            FAIL(KG_ESHAPE, "expert %ld part %ld: format, K, geometry or MX block length "
                 "differs from expert 0 part 0", e, q);
        if (s->N != parts[q].N)
            FAIL(KG_ESHAPE, "expert %ld part %ld: N %ld, expert 0's is %ld", e, q, s->N,
                 parts[q].N);
        if (e == 0 && kg_ckd_add(&cols, cols, (size_t)s->N))
            FAIL(KG_ESHAPE, "expert 0's parts: their columns overflow");
    }
    long P = cols > (size_t)__LONG_MAX__ ? -1 : kg_wt_expert_cols((long)cols);
    size_t N;
    if (P < 0 || kg_ckd_mul(&N, (size_t)E, (size_t)P) || N > (size_t)__LONG_MAX__)
        FAIL(KG_ESHAPE, "%d experts of %zu columns: the packed size overflows", E, cols);
    /* the whole: kn (kb 32) or mlp_mx_down (kb 8) only to carry the block length and its K
     * check; its columns come from the parts */
    kg_wt_src all = *p0;
    all.layout = kb0 == 8 ? KG_WL_MLP_MX_DOWN : KG_WL_KN;
    all.N = (long)N;
    all.scale = kb0 ? p0->scale : NULL;
    plan pl;
    int rc = prepare(w, &all, &pl, err, errlen);
    if (rc != KG_OK)
        return rc;
    if (KG_WT_EXPERT_ALIGN % pl.nr) {
        kg_wt_free(w);
        FAIL(KG_ESHAPE, "panel width %ld does not divide an expert's %d-column alignment",
             pl.nr, KG_WT_EXPERT_ALIGN);
    }
    memset(w->mem, 0, pl.dalloc);
    if (pl.kb)
        memset((kg_u8 *)w->scale, 127, pl.sbytes);
    for (long e = 0; e < E; e++)
        for (long q = 0, off = e * P; q < nparts; off += parts[q].N, q++) {
            const kg_wt_src *s = &parts[e * nparts + q];
            pack_cols(s, &pl, w->mem, off);
            if (pl.kb)
                pack_col_scales(s, &pl, (kg_u8 *)w->scale, off);
        }
    return KG_OK;
}

void kg_wt_free(kg_wt *w)
{
    if (w) {
        free(w->mem);
        memset(w, 0, sizeof *w);
    }
}
