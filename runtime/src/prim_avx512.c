/* prim_avx512.c: the AVX-512 GEMM over packed weights (kgen/abi.h, kgp_gemm_f32). This file
 * alone is compiled with AVX-512 (F, BW, VL, DQ, BF16), FMA and F16C enabled; prim.c calls it
 * only when cpu.c reports AVX-512 with bf16.
 *
 * Packed geometry (kgr_wt_geometry): panels of NR = 64 columns; fp32 and fp16 weights keep one
 * k per group (kg = 1), bf16, fp8 and fp4 weights two (kg = 2), so one 64-byte row of a bf16
 * panel is the k-pair of 16 columns, exactly the operand of vdpbf16ps.
 *
 * Narrow weights (bf16, fp8, fp4, MX) run on vdpbf16ps: A is rounded to bf16 pairs once per
 * block of rows, fp8/fp4 codes are widened to bf16 inside the block load (exponent arithmetic,
 * small tables for subnormal and inf/NaN codes; exact: every such value is a bf16 value), MX
 * scales are applied in fp32 on the way. fp32 weights run on fp32 FMAs, fp16 weights are
 * widened to fp32 per block. Blocking: per block of MB rows of A, each 64-column panel streams
 * once front to back in KC-deep pieces, each piece decoded once and swept by micro-tiles of MR
 * rows x 64 columns (24 accumulators). */
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/abi.h"
#include "kgen/dtype.h"
#include "prim.h"

enum {
    NR = 64,      /* panel width: 4 zmm of fp32 accumulators */
    MR = 6,       /* rows per micro-tile: 6 x 4 accumulators + 4 weight vectors + 1 broadcast */
    MB = 48,      /* rows of A per pass */
    KC_BF = 256,  /* K per pass, bf16 path: a decoded panel block is 256 x 64 bf16 = 32 KiB */
    KC_F32 = 128, /* K per pass, fp32 path: 128 x 64 fp32 = 32 KiB */
};

void kgr_avx512_geometry(int fmt, long *nr, long *kg)
{
    *nr = NR;
    *kg = fmt == KG_WT_F32 || fmt == KG_WT_F16 ? 1 : 2;
}

/* ---- fp8 / fp4 codes to bf16 ------------------------------------------------------------ */

/* bf16 bits of every magnitude code (7 bits for fp8, 3 for fp4), built once from the exact
 * scalar decoders; NaN and inf codes map to bf16 NaN and inf. */
static uint16_t lut[KG_WT_FMT_COUNT][128];

static void build_luts(void)
{
    for (int c = 0; c < 128; c++) {
        lut[KG_WT_E4M3][c] = kg_f32_to_bf16(kg_e4m3_to_f32((uint8_t)c));
        lut[KG_WT_E4M3FN][c] = kg_f32_to_bf16(kg_e4m3fn_to_f32((uint8_t)c));
        lut[KG_WT_E5M2][c] = kg_f32_to_bf16(kg_e5m2_to_f32((uint8_t)c));
        lut[KG_WT_E2M1][c] = kg_f32_to_bf16(kg_e2m1_to_f32((uint8_t)(c & 7)));
    }
}

/* fp8 codes widen arithmetically: a normal code's bf16 is its magnitude shifted into place plus
 * the exponent bias difference; subnormal and inf/NaN codes, a few per format, come from small
 * tables (one vpermw each) taken from the exact scalar decoders. fp4 is one table. */
typedef struct dec {
    __m512i sub, special;         /* bf16 of codes [0, sublim) and [splim, 128) */
    __m512i shift, add, sublim, splim;
} dec;

static dec dec_for(int fmt)
{
    static int built;
    if (!built) { /* benign race: every thread writes the same bytes */
        build_luts();
        built = 1;
    }
    /* e4m3, e4m3fn: 3 mantissa bits, bias 7 -> 127 (+120 << 7); e5m2: 2 bits, bias 15 (+112) */
    int e5 = fmt == KG_WT_E5M2;
    int sublim = e5 ? 4 : 8, splim = fmt == KG_WT_E4M3 ? 0x78 : fmt == KG_WT_E4M3FN ? 0x7f : 0x7c;
    uint16_t sub[32] = { 0 }, sp[32] = { 0 };
    for (int i = 0; i < 32; i++) {
        sub[i] = lut[fmt][i < sublim ? i : 0];
        sp[i] = lut[fmt][splim + i < 128 ? splim + i : 127];
    }
    if (fmt == KG_WT_E2M1)
        memcpy(sub, lut[fmt], sizeof sub);
    dec d;
    d.sub = _mm512_loadu_si512(sub);
    d.special = _mm512_loadu_si512(sp);
    d.shift = _mm512_set1_epi16(e5 ? 5 : 4);
    d.add = _mm512_set1_epi16(e5 ? 0x3800 : 0x3c00);
    d.sublim = _mm512_set1_epi16((short)sublim);
    d.splim = _mm512_set1_epi16((short)splim);
    return d;
}

/* 32 fp8 codes (16-bit lanes, 0..255) to bf16. */
static inline __m512i fp8_to_bf16(const dec *d, __m512i c)
{
    __m512i mag = _mm512_and_si512(c, _mm512_set1_epi16(0x7f));
    __m512i v = _mm512_add_epi16(_mm512_sllv_epi16(mag, d->shift), d->add);
    __mmask32 tiny = _mm512_cmplt_epu16_mask(mag, d->sublim);
    __mmask32 special = _mm512_cmpge_epu16_mask(mag, d->splim);
    if (__builtin_expect((tiny | special) != 0, 0)) { /* rare in trained weights */
        v = _mm512_mask_mov_epi16(v, tiny, _mm512_permutexvar_epi16(mag, d->sub));
        v = _mm512_mask_mov_epi16(v, special, _mm512_permutexvar_epi16(
                                                  _mm512_sub_epi16(mag, d->splim), d->special));
    }
    return _mm512_or_si512(v, _mm512_slli_epi16(_mm512_and_si512(c, _mm512_set1_epi16(0x80)), 8));
}

/* 32 fp4 codes (16-bit lanes, 0..15) to bf16. */
static inline __m512i fp4_to_bf16(const dec *d, __m512i c)
{
    __m512i v = _mm512_permutexvar_epi16(_mm512_and_si512(c, _mm512_set1_epi16(7)), d->sub);
    return _mm512_or_si512(v, _mm512_slli_epi16(_mm512_and_si512(c, _mm512_set1_epi16(8)), 12));
}

/* 2^(e-127) for 16 E8M0 scales (e = 0 is the subnormal 2^-127; 255, NaN, never occurs in
 * packed weights: kg_e8m0_block_exponent stops at 254). */
static inline __m512 e8m0_to_f32(__m128i e8)
{
    __m512i e = _mm512_cvtepu8_epi32(e8);
    __m512i bits = _mm512_slli_epi32(e, 23);
    __mmask16 zero = _mm512_cmpeq_epi32_mask(e, _mm512_setzero_si512());
    bits = _mm512_mask_mov_epi32(bits, zero, _mm512_set1_epi32(0x00400000));
    return _mm512_castsi512_ps(bits);
}

/* Multiplies 32 bf16 values (16 columns x a k-pair, column j at lanes 2j, 2j+1) by their
 * columns' scales sv (16 fp32, one per column) and rounds back to bf16 (exact unless the
 * product leaves bf16's normal range). */
static inline __m512i scale_pairs(__m512i v, __m512 sv)
{
    const __m512i dup_lo = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const __m512i dup_hi = _mm512_setr_epi32(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14,
                                             15, 15);
    __m512 lo = _mm512_castsi512_ps(_mm512_slli_epi32(
        _mm512_cvtepu16_epi32(_mm512_castsi512_si256(v)), 16));
    __m512 hi = _mm512_castsi512_ps(_mm512_slli_epi32(
        _mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(v, 1)), 16));
    lo = _mm512_mul_ps(lo, _mm512_permutexvar_ps(dup_lo, sv));
    hi = _mm512_mul_ps(hi, _mm512_permutexvar_ps(dup_hi, sv));
    return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}

/* Decodes kp2 k-pairs of one panel (128 codes each, from element offset e0 of W's data) into
 * dst as bf16, applying MX scales from sc (64 per block of kb rows, k0 the first row). */
static void decode_block(uint16_t *dst, const kg_wt *W, long e0, long kp2, const uint8_t *sc,
                         long k0)
{
    dec d = dec_for(W->fmt);
    for (long kp = 0; kp < kp2; kp++) {
        long e = e0 + kp * 2 * NR;
        for (int q = 0; q < 4; q++) { /* 16 columns = 32 codes at a time */
            __m512i v;
            if (W->fmt == KG_WT_E2M1) {
                __m512i b = _mm512_cvtepu8_epi32(
                    _mm_loadu_si128((const __m128i *)((const uint8_t *)W->data + (e + 32 * q) / 2)));
                __m512i c = _mm512_or_si512(_mm512_and_si512(b, _mm512_set1_epi32(0xf)),
                                            _mm512_slli_epi32(_mm512_and_si512(b, _mm512_set1_epi32(0xf0)), 12));
                v = fp4_to_bf16(&d, c);
            } else {
                __m512i c = _mm512_cvtepu8_epi16(
                    _mm256_loadu_si256((const __m256i *)((const uint8_t *)W->data + e + 32 * q)));
                v = fp8_to_bf16(&d, c);
            }
            if (sc) {
                long k = k0 + 2 * kp;
                v = scale_pairs(v, e8m0_to_f32(_mm_loadu_si128(
                                       (const __m128i *)(sc + (k / W->kb) * NR + 16 * q))));
            }
            _mm512_storeu_si512(dst + kp * 2 * NR + 32 * q, v);
        }
    }
}

/* ---- the bf16 path ------------------------------------------------------------------------ */

/* Rows [m0, m0 + mb) of A, all kc = kpad columns (zero past K), as bf16 pairs: ab[m * kc/2
 * + kp] holds (a[2kp], a[2kp+1]). */
static void pack_a_bf16(uint32_t *ab, const float *A, long lda, long m0, long mb, long kc,
                        long K)
{
    const long k0 = 0;
    for (long m = 0; m < mb; m++) {
        const float *a = A + (m0 + m) * lda;
        for (long k = 0; k < kc; k += 32) {
            long left = K - (k0 + k);
            __mmask16 lo = left >= 16 ? 0xffff : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
            __mmask16 hi = left >= 32 ? 0xffff : left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : 0;
            __m512 x0 = _mm512_maskz_loadu_ps(lo, a + k0 + k);
            __m512 x1 = _mm512_maskz_loadu_ps(hi, a + k0 + k + 16);
            __m512i v = (__m512i)_mm512_cvtne2ps_pbh(x1, x0);
            if (k + 32 <= kc)
                _mm512_storeu_si512(ab + m * (kc / 2) + k / 2, v);
            else
                _mm512_mask_storeu_epi32(ab + m * (kc / 2) + k / 2,
                                         (__mmask16)((1u << ((kc - k) / 2)) - 1), v);
        }
    }
}

/* Stores (first pass) or adds (later passes) 16 accumulators into C, masked to n < n1. */
static inline void put(float *c, __m512 acc, __mmask16 m, int first)
{
    if (!first)
        acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(m, c));
    _mm512_mask_storeu_ps(c, m, acc);
}

static inline __mmask16 col_mask(long col, long n1)
{
    long left = n1 - col;
    return left >= 16 ? 0xffff : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
}

/* The tiles' loops over rows and vectors are unrolled (GCC unroll pragmas) so the 24
 * accumulators live in registers; without that gcc -O2 keeps them on the stack.
 * C rows [0, mr) x 64 columns at c (stride ldc, masked to n1 - col0) += ab (pairs, stride
 * KC_BF/2) @ b (kp2 k-pairs x 64 columns bf16). mr <= MR, a constant after inlining. */
static inline __attribute__((always_inline)) void tile_bf16(float *c, long ldc, const uint32_t *ab,
                                                            long sa, const uint16_t *b, long kp2,
                                                            int mr, long col0, long n1, int first)
{
    __m512 acc[MR][4];
    #pragma GCC unroll 8
    for (int r = 0; r < mr; r++)
        #pragma GCC unroll 8
        for (int i = 0; i < 4; i++)
            acc[r][i] = _mm512_setzero_ps();
    for (long kp = 0; kp < kp2; kp++) {
        __m512bh w[4];
        #pragma GCC unroll 8
        for (int i = 0; i < 4; i++)
            w[i] = (__m512bh)_mm512_loadu_si512(b + kp * 2 * NR + 32 * i);
        #pragma GCC unroll 8
        for (int r = 0; r < mr; r++) {
            __m512bh a = (__m512bh)_mm512_set1_epi32((int)ab[r * sa + kp]);
            #pragma GCC unroll 8
            for (int i = 0; i < 4; i++)
                acc[r][i] = _mm512_dpbf16_ps(acc[r][i], a, w[i]);
        }
    }
    #pragma GCC unroll 8
    for (int r = 0; r < mr; r++)
        #pragma GCC unroll 8
        for (int i = 0; i < 4; i++)
            put(c + r * ldc + 16 * i, acc[r][i], col_mask(col0 + 16 * i, n1), first);
}

static void tiles_bf16(float *c, long ldc, const uint32_t *ab, long sa, const uint16_t *b,
                       long kp2, long mb, long col0, long n1, int first)
{
    long r = 0;
    for (; r + MR <= mb; r += MR)
        tile_bf16(c + r * ldc, ldc, ab + r * sa, sa, b, kp2, MR, col0, n1, first);
    switch (mb - r) {
    case 5: tile_bf16(c + r * ldc, ldc, ab + r * sa, sa, b, kp2, 5, col0, n1, first); break;
    case 4: tile_bf16(c + r * ldc, ldc, ab + r * sa, sa, b, kp2, 4, col0, n1, first); break;
    case 3: tile_bf16(c + r * ldc, ldc, ab + r * sa, sa, b, kp2, 3, col0, n1, first); break;
    case 2: tile_bf16(c + r * ldc, ldc, ab + r * sa, sa, b, kp2, 2, col0, n1, first); break;
    case 1: tile_bf16(c + r * ldc, ldc, ab + r * sa, sa, b, kp2, 1, col0, n1, first); break;
    }
}

/* A thread's buffer for MB rows of A as bf16 pairs over the whole K; grows, never shrinks (a
 * few hundred KiB at the model sizes), released with the thread. */
static __thread uint32_t *abuf;
static __thread long abuf_cap;

static uint32_t *a_pairs(long n)
{
    if (n > abuf_cap) {
        free(abuf);
        abuf = aligned_alloc(64, (size_t)(n + 16) * sizeof *abuf);
        abuf_cap = abuf ? n : 0;
    }
    return abuf;
}

/* Panels outer, K inner: each panel of W streams once, front to back, per block of rows. */
static void gemm_bf16(float *C, long ldc, const float *A, long lda, long M, const kg_wt *W,
                      long n0, long n1)
{
    static __thread uint16_t bb[KC_BF * NR] __attribute__((aligned(64)));
    long sa = W->kpad / 2;
    uint32_t *ab = a_pairs((M < MB ? M : MB) * sa);
    if (!ab) { /* no memory for the bf16 copy of A: the scalar GEMM needs none */
        kgp_gemm_f32__scalar(C, ldc, A, lda, M, W, n0, n1);
        return;
    }
    for (long m0 = 0; m0 < M; m0 += MB) {
        long mb = M - m0 < MB ? M - m0 : MB;
        pack_a_bf16(ab, A, lda, m0, mb, W->kpad, W->K);
        for (long p = n0 / NR; p * NR < n1; p++) {
            for (long k0 = 0; k0 < W->kpad; k0 += KC_BF) {
                long kc = W->kpad - k0 < KC_BF ? W->kpad - k0 : KC_BF;
                long e0 = p * W->kpad * NR + k0 * NR;
                const uint16_t *b;
                if (W->fmt == KG_WT_BF16) {
                    b = (const uint16_t *)W->data + e0;
                } else {
                    const uint8_t *sc = W->kb ? W->scale + p * (W->kpad / W->kb) * NR : NULL;
                    decode_block(bb, W, e0, kc / 2, sc, k0);
                    b = bb;
                }
                tiles_bf16(C + m0 * ldc + p * NR, ldc, ab + k0 / 2, sa, b, kc / 2, mb, p * NR,
                           n1, k0 == 0);
            }
        }
    }
}

/* ---- the fp32 path ------------------------------------------------------------------------ */

static inline __attribute__((always_inline)) void tile_f32(float *c, long ldc, const float *a,
                                                           long lda, const float *b, long kc,
                                                           int mr, long col0, long n1, int first)
{
    __m512 acc[MR][4];
    #pragma GCC unroll 8
    for (int r = 0; r < mr; r++)
        #pragma GCC unroll 8
        for (int i = 0; i < 4; i++)
            acc[r][i] = _mm512_setzero_ps();
    for (long k = 0; k < kc; k++) {
        __m512 w[4];
        #pragma GCC unroll 8
        for (int i = 0; i < 4; i++)
            w[i] = _mm512_loadu_ps(b + k * NR + 16 * i);
        #pragma GCC unroll 8
        for (int r = 0; r < mr; r++) {
            __m512 x = _mm512_set1_ps(a[r * lda + k]);
            #pragma GCC unroll 8
            for (int i = 0; i < 4; i++)
                acc[r][i] = _mm512_fmadd_ps(x, w[i], acc[r][i]);
        }
    }
    #pragma GCC unroll 8
    for (int r = 0; r < mr; r++)
        #pragma GCC unroll 8
        for (int i = 0; i < 4; i++)
            put(c + r * ldc + 16 * i, acc[r][i], col_mask(col0 + 16 * i, n1), first);
}

static void tiles_f32(float *c, long ldc, const float *a, long lda, const float *b, long kc,
                      long mb, long col0, long n1, int first)
{
    long r = 0;
    for (; r + MR <= mb; r += MR)
        tile_f32(c + r * ldc, ldc, a + r * lda, lda, b, kc, MR, col0, n1, first);
    switch (mb - r) {
    case 5: tile_f32(c + r * ldc, ldc, a + r * lda, lda, b, kc, 5, col0, n1, first); break;
    case 4: tile_f32(c + r * ldc, ldc, a + r * lda, lda, b, kc, 4, col0, n1, first); break;
    case 3: tile_f32(c + r * ldc, ldc, a + r * lda, lda, b, kc, 3, col0, n1, first); break;
    case 2: tile_f32(c + r * ldc, ldc, a + r * lda, lda, b, kc, 2, col0, n1, first); break;
    case 1: tile_f32(c + r * ldc, ldc, a + r * lda, lda, b, kc, 1, col0, n1, first); break;
    }
}

static void gemm_f32(float *C, long ldc, const float *A, long lda, long M, const kg_wt *W,
                     long n0, long n1)
{
    static __thread float bb[KC_F32 * NR] __attribute__((aligned(64)));
    /* A is read in place: rows past K are never touched because kc stops at K here (fp32 and
     * fp16 panels have kg = 1, so kpad == K) */
    for (long m0 = 0; m0 < M; m0 += MB) {
        long mb = M - m0 < MB ? M - m0 : MB;
        for (long p = n0 / NR; p * NR < n1; p++) {
            for (long k0 = 0; k0 < W->K; k0 += KC_F32) {
                long kc = W->K - k0 < KC_F32 ? W->K - k0 : KC_F32;
                long e0 = p * W->kpad * NR + k0 * NR;
                const float *b;
                if (W->fmt == KG_WT_F32) {
                    b = (const float *)W->data + e0;
                } else {
                    const uint16_t *h = (const uint16_t *)W->data + e0;
                    for (long i = 0; i < kc * NR; i += 16)
                        _mm512_store_ps(bb + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + i))));
                    b = bb;
                }
                tiles_f32(C + m0 * ldc + p * NR, ldc, A + m0 * lda + k0, lda, b, kc, mb, p * NR,
                          n1, k0 == 0);
            }
        }
    }
}

/* ---- the primitive -------------------------------------------------------------------------- */

void kgp_gemm_f32__avx512(float *C, long ldc, const float *A, long lda, long M, const kg_wt *W,
                          long n0, long n1)
{
    if (M <= 0 || n1 <= n0)
        return;
    /* a weight packed for another geometry (e.g. under the scalar ISA) is still read right */
    long nr, kg;
    kgr_avx512_geometry(W->fmt, &nr, &kg);
    if (W->nr != nr || W->kg != kg) {
        kgp_gemm_f32__scalar(C, ldc, A, lda, M, W, n0, n1);
        return;
    }
    if (W->fmt == KG_WT_F32 || W->fmt == KG_WT_F16)
        gemm_f32(C, ldc, A, lda, M, W, n0, n1);
    else
        gemm_bf16(C, ldc, A, lda, M, W, n0, n1);
}
