/* wt.c: packing a weight from its stored layout (kgen/kgen.h, kg_wt_layout) into the panels the
 * GEMM primitive reads (kgen/abi.h, kg_wt). Packing rearranges codes and never decodes them, so
 * a packed fp8 weight is still fp8. Done once per weight, at load. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/kgen.h"
#include "prim.h"

static const char *const FMT_NAMES[KG_WT_FMT_COUNT] = {
    "f32", "bf16", "fp16", "e4m3", "e4m3fn", "e5m2", "e2m1",
};
static const int FMT_BITS[KG_WT_FMT_COUNT] = { 32, 16, 16, 8, 8, 8, 4 };

static const char *const LAYOUT_NAMES[KG_WL_COUNT] = {
    "kn", "x4", "x4_interleaved", "mlp_mx_gate_up", "mlp_mx_down", "mlp_smx_gate_up",
    "mlp_smx_down",
};

const char *kg_wt_fmt_name(int fmt)
{
    return fmt >= 0 && fmt < KG_WT_FMT_COUNT ? FMT_NAMES[fmt] : NULL;
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
    return layout != KG_WL_KN && layout != KG_WL_MLP_SMX_GATE_UP && layout != KG_WL_MLP_SMX_DOWN;
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
    default:
        return k * N + n;
    }
}

/* The MX block length of a layout's scales, and the index of (k, n)'s scale. */
static int layout_kb(int layout)
{
    return layout == KG_WL_MLP_MX_DOWN ? 8 : 32;
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
        case KG_WL_MLP_SMX_GATE_UP:
        case KG_WL_MLP_SMX_DOWN:
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
    default:
        shape[0] = K, shape[1] = N;
        return 2;
    }
}

/* ---- packing --------------------------------------------------------------------------------- */

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

static long round_up(long x, long m) { return (x + m - 1) / m * m; }
static long gcd(long a, long b) { while (b) { long t = a % b; a = b; b = t; } return a; }

#define FAIL(code, ...) do { if (err && errlen) snprintf(err, errlen, __VA_ARGS__); return code; } while (0)

int kg_wt_pack(kg_wt *w, const kg_wt_src *s, char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
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
    long nr = s->nr, kg = s->kg;
    if (nr <= 0 || kg <= 0)
        kgr_wt_geometry(s->fmt, nr <= 0 ? &nr : &(long){ 0 }, kg <= 0 ? &kg : &(long){ 0 });
    int kb = s->scale ? layout_kb(s->layout) : 0;
    long unit = kb ? kg / gcd(kg, kb) * kb : kg;
    long kpad = round_up(s->K, unit), panels = (s->N + nr - 1) / nr;
    long elems = panels * kpad * nr;
    size_t dbytes = bits == 4 ? (size_t)(elems + 1) / 2 : (size_t)elems * (size_t)(bits / 8);
    size_t sbytes = kb ? (size_t)(panels * (kpad / kb) * nr) : 0;
    size_t dalloc = (dbytes + 63) / 64 * 64;
    unsigned char *mem = aligned_alloc(64, dalloc + (sbytes + 63) / 64 * 64 + 64);
    if (!mem)
        FAIL(KG_ENOMEM, "out of memory packing a [%ld, %ld] weight", s->K, s->N);
    memset(mem, 0, dalloc);
    unsigned char *scale = kb ? mem + dalloc : NULL;
    if (scale)
        memset(scale, 127, sbytes);
    for (long k = 0; k < s->K; k++) {
        for (long n = 0; n < s->N; n++) {
            long p = n / nr, j = n % nr;
            long e = p * kpad * nr + (k / kg) * nr * kg + j * kg + k % kg;
            put_code(mem, bits, e, get_code(s->data, bits, data_index(s, k, n)));
            if (scale && k % kb == 0)
                scale[p * (kpad / kb) * nr + (k / kb) * nr + j] =
                    ((const unsigned char *)s->scale)[scale_index(s, k, n)];
        }
    }
    w->fmt = s->fmt, w->kb = kb, w->K = s->K, w->N = s->N;
    w->nr = nr, w->kg = kg, w->kpad = kpad;
    w->data = mem, w->scale = scale, w->mem = mem;
    return KG_OK;
}

void kg_wt_free(kg_wt *w)
{
    if (w) {
        free(w->mem);
        memset(w, 0, sizeof *w);
    }
}
