/* tests/util/weights.c: test weights in every stored layout. The layouts are written from the
 * reference docs' own formulas (numpy reshape/transpose read as nested loops over the stored
 * array), not from the runtime's packer, so a packer bug cannot hide behind a shared mistake. */
#include "util/weights.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/dtype.h"
#include "util/jitp.h"

static int fmt_bits(int fmt)
{
    static const int bits[KG_WT_FMT_COUNT] = { 32, 16, 16, 8, 8, 8, 4 };
    return bits[fmt];
}

int kgt_wt_kb(int layout)
{
    return layout == KG_WL_MLP_MX_DOWN || layout == KG_WL_MOE_MX_GATE_UP ? 8 : 32;
}

void kgt_put_code(void *p, int bits, long e, uint32_t v)
{
    unsigned char *b = p;
    if (bits == 32)
        memcpy(b + 4 * e, &v, 4);
    else if (bits == 16) {
        uint16_t h = (uint16_t)v;
        memcpy(b + 2 * e, &h, 2);
    } else if (bits == 8)
        b[e] = (unsigned char)v;
    else
        b[e / 2] |= (unsigned char)((v & 0xf) << (e % 2 * 4));
}

/* An x4 word of the four codes of rows r[0..3] in column n: element q in bits [bq, bq + b). */
static uint32_t word4(const uint32_t *codes, long N, const long r[4], long n, int bits)
{
    uint32_t w = 0;
    for (int q = 0; q < 4; q++)
        w |= (codes[r[q] * N + n] & ((1u << bits) - 1)) << (bits * q);
    return w;
}

void *kgt_wt_store(int fmt, int layout, long K, long N, const uint32_t *codes,
                   const uint8_t *e8, void **scale_out)
{
    int bits = fmt_bits(fmt), wbits = 4 * bits; /* an x4 word */
    size_t total = (size_t)(K * N);
    void *d = calloc(bits == 4 ? (total + 1) / 2 + 1 : total * (size_t)(bits / 8) + 1, 1);
    uint8_t *sc = NULL;
    if (e8)
        sc = calloc((size_t)(K * N), 1);
    cr_assert(d && (!e8 || sc));
    long e = 0; /* stored element (or word) counter */
    switch (layout) {
    case KG_WL_KN:
        for (long i = 0; i < K * N; i++)
            kgt_put_code(d, bits, i, codes[i]);
        if (e8)
            memcpy(sc, e8, (size_t)(K / 32 * N));
        break;
    case KG_WL_X4:
    case KG_WL_X4_INTERLEAVED: {
        /* h_idx = arange(K).reshape(2, K/4, 2).transpose(1, 0, 2).flatten(); rows permuted by
         * it, then packed: word (r, n) slot q = permuted row 4r + q */
        long *perm = malloc((size_t)K * sizeof *perm);
        for (long j = 0; j < K; j++)
            perm[j] = j;
        if (layout == KG_WL_X4_INTERLEAVED)
            for (long b = 0; b < K / 4; b++)
                for (long a = 0; a < 2; a++)
                    for (long c = 0; c < 2; c++)
                        perm[(b * 2 + a) * 2 + c] = a * (K / 4) * 2 + b * 2 + c;
        for (long r = 0; r < K / 4; r++)
            for (long n = 0; n < N; n++) {
                long rows[4] = { perm[4 * r], perm[4 * r + 1], perm[4 * r + 2], perm[4 * r + 3] };
                kgt_put_code(d, wbits, e++, word4(codes, N, rows, n, bits));
            }
        free(perm);
        if (e8)
            memcpy(sc, e8, (size_t)(K / 32 * N));
        break;
    }
    case KG_WL_MLP_MX_GATE_UP:
        /* [128, K/512, N]: [p, j, n] packs rows 512j + 4p + q; scales [16, K/512, N]: [s, j, n]
         * covers rows 512j + 32s .. +31 */
        for (long p = 0; p < 128; p++)
            for (long j = 0; j < K / 512; j++)
                for (long n = 0; n < N; n++) {
                    long h = 512 * j + 4 * p;
                    long rows[4] = { h, h + 1, h + 2, h + 3 };
                    kgt_put_code(d, wbits, e++, word4(codes, N, rows, n, bits));
                }
        if (e8)
            for (long s = 0, i = 0; s < 16; s++)
                for (long j = 0; j < K / 512; j++)
                    for (long n = 0; n < N; n++)
                        sc[i++] = e8[((512 * j + 32 * s) / 32) * N + n];
        break;
    case KG_WL_MLP_MX_DOWN: {
        /* [P, T, N]: [p, t, n] packs rows 512t + 128q + p (K < 512: q*K/4 + p); scales
         * [P/8, T, N]: [s, t, n] covers p in [8s, 8s+8) for every q */
        long P = K >= 512 ? 128 : K / 4, T = K >= 512 ? K / 512 : 1;
        for (long p = 0; p < P; p++)
            for (long t = 0; t < T; t++)
                for (long n = 0; n < N; n++) {
                    long rows[4];
                    for (int q = 0; q < 4; q++)
                        rows[q] = K >= 512 ? 512 * t + 128 * q + p : q * (K / 4) + p;
                    kgt_put_code(d, wbits, e++, word4(codes, N, rows, n, bits));
                }
        if (e8)
            for (long s = 0, i = 0; s < P / 8; s++)
                for (long t = 0; t < T; t++)
                    for (long n = 0; n < N; n++) {
                        long row = K >= 512 ? 512 * t + 8 * s : 8 * s; /* the q = 0 run */
                        sc[i++] = e8[(row / 8) * N + n];
                    }
        break;
    }
    case KG_WL_MLP_SMX_GATE_UP: {
        /* w.reshape(2, K/512, 128, 2, N/512, 128, 4).transpose(2, 1, 4, 6, 5, 0, 3) */
        long H5 = K / 512, I5 = N / 512;
        for (long a2 = 0; a2 < 128; a2++)
        for (long a1 = 0; a1 < H5; a1++)
        for (long a4 = 0; a4 < I5; a4++)
        for (long a6 = 0; a6 < 4; a6++)
        for (long a5 = 0; a5 < 128; a5++)
        for (long a0 = 0; a0 < 2; a0++)
        for (long a3 = 0; a3 < 2; a3++) {
            long flat = (((((a0 * H5 + a1) * 128 + a2) * 2 + a3) * I5 + a4) * 128 + a5) * 4 + a6;
            kgt_put_code(d, bits, e++, codes[flat]);
        }
        break;
    }
    case KG_WL_MOE_MX_GATE_UP: {
        /* moe_cte.md "MX variants": gate_up [128, 2, H/512, I], element (p, g, j, i) packs
         * W[h = q*H/4 + j*128 + p, g*I + i] for q = 0..3; scale [16, 2, H/512, I], (s, g, j, i)
         * covers p in [8s, 8s+8) and every q */
        long I2 = N / 2, J = K / 512;
        for (long p = 0; p < 128; p++)
            for (long g = 0; g < 2; g++)
                for (long j = 0; j < J; j++)
                    for (long i = 0; i < I2; i++) {
                        long rows[4];
                        for (int q = 0; q < 4; q++)
                            rows[q] = q * (K / 4) + j * 128 + p;
                        kgt_put_code(d, wbits, e++, word4(codes, N, rows, g * I2 + i, bits));
                    }
        if (e8)
            for (long sb = 0, i = 0; sb < 16; sb++)
                for (long g = 0; g < 2; g++)
                    for (long j = 0; j < J; j++)
                        for (long c = 0; c < I2; c++)
                            sc[i++] = e8[((j * 128 + 8 * sb) / 8) * N + g * I2 + c];
        break;
    }
    case KG_WL_MLP_SMX_DOWN:
        /* w.reshape(K/512, 128, 4, N).transpose(1, 0, 3, 2) */
        for (long b1 = 0; b1 < 128; b1++)
            for (long b0 = 0; b0 < K / 512; b0++)
                for (long n = 0; n < N; n++)
                    for (long b2 = 0; b2 < 4; b2++)
                        kgt_put_code(d, bits, e++, codes[((b0 * 128 + b1) * 4 + b2) * N + n]);
        break;
    default:
        cr_assert_fail("kgt_wt_store: layout %d", layout);
    }
    if (scale_out)
        *scale_out = sc;
    else
        free(sc);
    return d;
}

/* ---- random weights -------------------------------------------------------------------------- */

static uint32_t encode(int fmt, float v, float *back)
{
    uint32_t c;
    switch (fmt) {
    case KG_WT_F32: memcpy(&c, &v, 4); *back = v; return c;
    case KG_WT_BF16: c = kg_f32_to_bf16(v); *back = kg_bf16_to_f32((uint16_t)c); return c;
    case KG_WT_F16: c = kg_f32_to_f16(v); *back = kg_f16_to_f32((uint16_t)c); return c;
    case KG_WT_E4M3:
        v = v > 240 ? 240 : v < -240 ? -240 : v;
        c = kg_f32_to_e4m3(v); *back = kg_e4m3_to_f32((uint8_t)c); return c;
    case KG_WT_E4M3FN:
        v = v > 448 ? 448 : v < -448 ? -448 : v;
        c = kg_f32_to_e4m3fn(v); *back = kg_e4m3fn_to_f32((uint8_t)c); return c;
    case KG_WT_E5M2:
        v = v > 57344 ? 57344 : v < -57344 ? -57344 : v;
        c = kg_f32_to_e5m2(v); *back = kg_e5m2_to_f32((uint8_t)c); return c;
    default:
        v = v > 6 ? 6 : v < -6 ? -6 : v;
        c = kg_f32_to_e2m1(v); *back = kg_e2m1_to_f32((uint8_t)c); return c;
    }
}

static void pack(kg_wt *w, int fmt, int layout, long K, long N, const void *data,
                 const void *scale, long nr, long kg)
{
    kg_wt_src src = { fmt, layout, K, N, data, scale, nr, kg };
    char err[256];
    int rc = kg_wt_pack(w, &src, err, sizeof err);
    cr_assert_eq(rc, KG_OK, "kg_wt_pack(%s, %s, [%ld, %ld]): %s", kg_wt_fmt_name(fmt),
                 kg_wt_layout_name(layout), K, N, err);
}

float *kgt_wt_random(kg_wt *w, int fmt, int layout, long K, long N, int mx, float scale,
                     unsigned long long seed, long nr, long kg)
{
    void *data, *scale_st;
    float *vals = kgt_wt_random_stored(fmt, layout, K, N, mx, scale, seed, &data, &scale_st);
    pack(w, fmt, layout, K, N, data, scale_st, nr, kg);
    free(data), free(scale_st);
    return vals;
}

float *kgt_wt_random_stored(int fmt, int layout, long K, long N, int mx, float scale,
                            unsigned long long seed, void **data_out, void **scale_out)
{
    long n = K * N, kb = kgt_wt_kb(layout);
    uint32_t *codes = malloc((size_t)n * sizeof *codes);
    float *vals = malloc((size_t)n * sizeof *vals);
    uint8_t *e8 = mx ? malloc((size_t)((K + kb - 1) / kb * N)) : NULL;
    cr_assert(codes && vals && (!mx || e8));
    for (long i = 0; i < n; i++)
        codes[i] = encode(fmt, kgt_normal(&seed) * scale, &vals[i]);
    if (mx) {
        for (long b = 0; b < (K + kb - 1) / kb * N; b++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            e8[b] = (uint8_t)(122 + (seed >> 33) % 10);
        }
        if (layout == KG_WL_MLP_MX_DOWN) /* one stored scale serves the four q runs of a p run */
            for (long k = 0; k < K; k += 8) {
                long k0 = K >= 512 ? k / 512 * 512 + k % 128 : k % (K / 4);
                for (long j = 0; j < N; j++)
                    e8[(k / 8) * N + j] = e8[(k0 / 8) * N + j];
            }
        if (layout == KG_WL_MOE_MX_GATE_UP) /* the same, the q runs K/4 apart */
            for (long k = 0; k < K; k += 8)
                for (long j = 0; j < N; j++)
                    e8[(k / 8) * N + j] = e8[(k % (K / 4) / 8) * N + j];
        for (long k = 0; k < K; k++)
            for (long j = 0; j < N; j++)
                vals[k * N + j] *= kg_e8m0_to_f32(e8[(k / kb) * N + j]);
    }
    *scale_out = NULL;
    *data_out = kgt_wt_store(fmt, layout, K, N, codes, e8, mx ? scale_out : NULL);
    free(codes), free(e8);
    return vals;
}

int kgt_wt_code(int fmt, float v, uint32_t *code)
{
    float back;
    *code = encode(fmt, v, &back);
    return back == v || (back != back && v != v);
}

void kgt_wt_from_values(kg_wt *w, int fmt, int layout, long K, long N, const float *vals)
{
    uint32_t *codes = malloc((size_t)(K * N) * sizeof *codes);
    cr_assert(codes);
    for (long i = 0; i < K * N; i++) {
        float back;
        codes[i] = encode(fmt, vals[i], &back);
        cr_assert(back == vals[i] || (back != back && vals[i] != vals[i]),
                  "kgt_wt_from_values: W[%ld] = %g is not on the %s grid", i, vals[i],
                  kg_wt_fmt_name(fmt));
    }
    void *data = kgt_wt_store(fmt, layout, K, N, codes, NULL, NULL);
    pack(w, fmt, layout, K, N, data, NULL, 0, 0);
    free(data), free(codes);
}
