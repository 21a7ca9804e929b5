/* prim_avx512.c: the AVX-512 GEMM over packed weights (kgen/abi.h, kgp_gemm_f32). This file
 * alone is compiled with AVX-512 (F, BW, VL, DQ, BF16), FMA and F16C enabled; prim.c calls it
 * only when cpu.c reports AVX-512 with bf16.
 *
 * Packed geometry (kgr_wt_geometry): panels of NR = 64 columns; fp32 and fp16 weights keep one
 * k per group (kg = 1), bf16, fp8 and fp4 weights two (kg = 2), so one 64-byte row of a bf16
 * panel is the k-pair of 16 columns, exactly the operand of vdpbf16ps.
 *
 * Narrow weights (bf16, fp8, fp4, MX) run on vdpbf16ps: A is rounded to bf16 pairs once per
 * block of rows, fp8/fp4 codes are widened to bf16 inside the block load (byte tables in
 * registers, see fp8_to_bf16; exact: every such value is a bf16 value), MX
 * scales are applied in fp32 on the way. fp32 weights run on fp32 FMAs, fp16 weights are
 * widened to fp32 as the tile loads them. Blocking: per pass of up to MB rows of A, each 64-column panel
 * streams once front to back in KC-deep pieces, each piece decoded once and swept by
 * micro-tiles of MR rows x 64 columns (24 accumulators). Up to FUSED_M rows over fp8 (decode,
 * small batches) skip the decoded piece: tiles of FUSED_MR rows widen the codes in registers. */
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/abi.h"
#include "kgen/ckd.h"
#include "kgen/dtype.h"
#include "prim.h"
#include "prim_avx512_bf16.h"

enum {
    NR = 64,      /* panel width: 4 zmm of fp32 accumulators */
    MR = 6,       /* rows per micro-tile: 6 x 4 accumulators + 4 weight vectors + 1 broadcast */
    MB = 144,     /* most rows of A per pass: each pass streams all of W once */
    /* K per piece: a panel piece is 1024 x 64 bf16 or 512 x 64 fp32 = 128 KiB, swept from L2
     * by every tile of the pass. Measured on Zen 4 (K 4096, N 14336, M 512): bf16 KC 128 / 256
     * / 512 / 1024 = 0.87 / 0.90 / 0.94 / 0.95 of the bf16 peak, fp32 KC 128 / 512 = 0.91 /
     * 0.95 of the fp32 peak: longer pieces load and store each tile's accumulators less often,
     * and L2 feeds the weight loads fast enough. */
    KC_BF = 1024,
    KC_F32 = 512,
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

/* fp8 codes widen by table: the bf16 of a magnitude code (7 bits) is two bytes, so two
 * 128-byte tables (high and low bytes) held in four zmm registers map 64 codes at a time with
 * one two-source byte permute each (vpermi2b uses the code's low 7 bits as the index); the sign
 * bit goes straight into the high byte, and two more byte permutes interleave low and high bytes
 * into 16-bit lanes. 6 instructions per 64 codes, exact for every code (subnormal, inf and NaN
 * included, since the tables come from the scalar decoders). fp4 is one 16-bit table. */
typedef struct dec {
    __m512i hi0, hi1, lo0, lo1; /* high / low bf16 bytes of magnitude codes 0..63, 64..127 */
    __m512i even, odd;          /* interleave: bf16 j of lanes 0..31 / 32..63 */
    __m512i fp4;                /* bf16 of the 8 fp4 magnitude codes */
} dec;

static dec make_dec(int fmt)
{
    uint8_t hi[128], lo[128], even[64], odd[64];
    for (int c = 0; c < 128; c++) {
        hi[c] = (uint8_t)(lut[fmt][c] >> 8);
        lo[c] = (uint8_t)lut[fmt][c];
    }
    for (int j = 0; j < 32; j++) { /* in permutex2var(lo, idx, hi), index 64 + i is hi[i] */
        even[2 * j] = (uint8_t)j, even[2 * j + 1] = (uint8_t)(64 + j);
        odd[2 * j] = (uint8_t)(32 + j), odd[2 * j + 1] = (uint8_t)(96 + j);
    }
    dec d;
    d.hi0 = _mm512_loadu_si512(hi), d.hi1 = _mm512_loadu_si512(hi + 64);
    d.lo0 = _mm512_loadu_si512(lo), d.lo1 = _mm512_loadu_si512(lo + 64);
    d.even = _mm512_loadu_si512(even), d.odd = _mm512_loadu_si512(odd);
    uint16_t f4[32] = { 0 };
    memcpy(f4, lut[KG_WT_E2M1], 8 * sizeof f4[0]);
    d.fp4 = _mm512_loadu_si512(f4);
    return d;
}

static dec decs[KG_WT_FMT_COUNT];

static void build_decs(void)
{
    build_luts();
    for (int f = KG_WT_E4M3; f <= KG_WT_E2M1; f++)
        decs[f] = make_dec(f);
}

/* The decoder of format fmt, built once per process (a few thousand cycles: too many to pay
 * per block). */
static const dec *dec_for(int fmt)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, build_decs);
    return &decs[fmt];
}

/* 64 fp8 codes to bf16: codes 0..31 into *v0, 32..63 into *v1. */
static inline void fp8_to_bf16(const dec *d, __m512i c, __m512i *v0, __m512i *v1)
{
    __m512i hi = _mm512_permutex2var_epi8(d->hi0, c, d->hi1);
    __m512i lo = _mm512_permutex2var_epi8(d->lo0, c, d->lo1);
    hi = _mm512_ternarylogic_epi32(hi, c, _mm512_set1_epi8((char)0x80), 0xf8); /* hi | c & 0x80 */
    *v0 = _mm512_permutex2var_epi8(lo, d->even, hi);
    *v1 = _mm512_permutex2var_epi8(lo, d->odd, hi);
}

/* 64 fp8 codes to bf16 with the two table permutes only: in-lane byte unpacks (no permute)
 * pair each low byte with its high byte, so a 128-bit lane's codes 16L..16L+7 go to *v0's
 * lane L and 16L+8..16L+15 to *v1's. Each 32-bit lane still holds one column's k-pair (codes
 * 2j, 2j+1), for column 8L + j of *v0 and 8L + 4 + j of *v1 (j < 4): the column order of
 * what vdpbf16ps sums into, which columns_in_order puts back. Half the permutes of
 * fp8_to_bf16, the unit fp8 decode GEMVs are bound by (measured on Zen 5, K 4096 x N 128 from
 * L2, one row: 59 GB/s of codes against 145 for bf16 weights). */
static inline void fp8_to_bf16_lanes(const dec *d, __m512i c, __m512i *v0, __m512i *v1)
{
    __m512i hi = _mm512_permutex2var_epi8(d->hi0, c, d->hi1);
    __m512i lo = _mm512_permutex2var_epi8(d->lo0, c, d->lo1);
    hi = _mm512_ternarylogic_epi32(hi, c, _mm512_set1_epi8((char)0x80), 0xf8); /* hi | c & 0x80 */
    *v0 = _mm512_unpacklo_epi8(lo, hi);
    *v1 = _mm512_unpackhi_epi8(lo, hi);
}

/* Sums over fp8_to_bf16_lanes' pair (*a0, *a1), 32 columns, back in column order: *a0 columns
 * 0..15, *a1 16..31 (128-bit blocks: a0 holds columns 8L..8L+3 in block L, a1 8L+4..8L+7). */
static inline void columns_in_order(__m512 *a0, __m512 *a1)
{
    const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
    const __m512i hi = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29,
                                         30, 31);
    __m512 x = *a0, y = *a1;
    *a0 = _mm512_permutex2var_ps(x, lo, y);
    *a1 = _mm512_permutex2var_ps(x, hi, y);
}

/* 32 fp4 codes (16-bit lanes, 0..15) to bf16. */
static inline __m512i fp4_to_bf16(const dec *d, __m512i c)
{
    __m512i v = _mm512_permutexvar_epi16(_mm512_and_si512(c, _mm512_set1_epi16(7)), d->fp4);
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
 * dst as bf16, applying MX scales from sc (64 per block of kb rows, k0 the first row). The codes
 * DECODE_AHEAD bytes on are prefetched: the tiles between two pieces leave DRAM idle, and the
 * next piece's decode then waits on every line (one Zen 5 thread, e4m3 K 4096 x N 14336,
 * medians of interleaved calls: 512 rows 160.5 against 174.4 ms, 128 rows 39.0 against 42.3;
 * 2 and 8 KiB ahead as 4). */
#define DECODE_AHEAD 4096
static void decode_block(uint16_t *dst, const kg_wt *W, long e0, long kp2, const uint8_t *sc,
                         long k0)
{
    const dec *d = dec_for(W->fmt);
    int fp4 = W->fmt == KG_WT_E2M1;
    for (long kp = 0; kp < kp2; kp++) {
        long e = e0 + kp * 2 * NR;
        const char *ahead = (const char *)W->data + (fp4 ? e / 2 : e) + DECODE_AHEAD;
        _mm_prefetch(ahead, _MM_HINT_T0);
        if (!fp4)
            _mm_prefetch(ahead + 64, _MM_HINT_T0);
        __m512i v[4]; /* 16 columns x a k-pair each */
        if (fp4) {
            for (int q = 0; q < 4; q++) {
                __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(
                    (const __m128i *)((const uint8_t *)W->data + (e + 32 * q) / 2)));
                __m512i c = _mm512_or_si512(
                    _mm512_and_si512(b, _mm512_set1_epi32(0xf)),
                    _mm512_slli_epi32(_mm512_and_si512(b, _mm512_set1_epi32(0xf0)), 12));
                v[q] = fp4_to_bf16(d, c);
            }
        } else {
            const uint8_t *p = (const uint8_t *)W->data + e;
            fp8_to_bf16(d, _mm512_loadu_si512(p), &v[0], &v[1]);
            fp8_to_bf16(d, _mm512_loadu_si512(p + 64), &v[2], &v[3]);
        }
        for (int q = 0; q < 4; q++) {
            if (sc) {
                long k = k0 + 2 * kp;
                v[q] = scale_pairs(v[q], e8m0_to_f32(_mm_loadu_si128(
                                             (const __m128i *)(sc + (k / W->kb) * NR + 16 * q))));
            }
            _mm512_storeu_si512(dst + kp * 2 * NR + 32 * q, v[q]);
        }
    }
}

/* ---- the bf16 path ------------------------------------------------------------------------ */

/* Rows [m0, m0 + mb) of A, all kc = kpad columns (zero past K), as bf16 pairs: ab[m * sa +
 * kp] holds (a[2kp], a[2kp+1]). */
static void pack_a_bf16(uint32_t *ab, long sa, const float *A, long lda, long m0, long mb,
                        long kc, long K)
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
                _mm512_storeu_si512(ab + m * sa + k / 2, v);
            else
                _mm512_mask_storeu_epi32(ab + m * sa + k / 2,
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

/* Rounds 16 accumulators to bf16 and stores them, masked (by the instruction where
 * kgr_bf16_hw_ok allows, else by the reference lane by lane). */
static inline void put_bf16(uint16_t *c, __m512 acc, __mmask16 m)
{
    if (kgr_bf16_hw_ok(acc)) {
        _mm256_mask_storeu_epi16(c, m, (__m256i)_mm512_cvtneps_pbh(acc));
        return;
    }
    float t[16];
    _mm512_storeu_ps(t, acc);
    for (int j = 0; j < 16; j++)
        if (m >> j & 1)
            c[j] = kg_f32_to_bf16(t[j]);
}

static inline __mmask16 col_mask(long col, long n1)
{
    long left = n1 - col;
    return left >= 16 ? 0xffff : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
}

/* The decode rows' accumulators: np panels (up to 4) of 4 vectors, zeroed, and put at c (panel
 * s at c + s * NR, masked to n1 - col0) as the tiles put theirs. */
static inline __attribute__((always_inline)) void zero_panels(__m512 acc[4][4], int np)
{
    #pragma GCC unroll 4
    for (int s = 0; s < np; s++)
        #pragma GCC unroll 4
        for (int i = 0; i < 4; i++)
            acc[s][i] = _mm512_setzero_ps();
}

static inline __attribute__((always_inline)) void put_panels(float *c, __m512 acc[4][4], int np,
                                                             long col0, long n1, int first)
{
    #pragma GCC unroll 4
    for (int s = 0; s < np; s++)
        #pragma GCC unroll 4
        for (int i = 0; i < 4; i++)
            put(c + s * NR + 16 * i, acc[s][i], col_mask(col0 + s * NR + 16 * i, n1), first);
}

/* The tiles' loops over rows and vectors are unrolled (GCC unroll pragmas) so the 24
 * accumulators live in registers; without that gcc -O2 keeps them on the stack.
 * C rows [0, mr) x 64 columns at c (stride ldc, masked to n1 - col0) += ab (pairs, stride sa)
 * @ the panel's kp2 k-pairs x 64 columns: bf16 at b, or, when q is not NULL, fp8 codes at q
 * widened in registers on the way (the decode path of few rows: no decoded block is written
 * and read back; its accumulators hold the columns in fp8_to_bf16_lanes' order until the
 * end). mr <= MR, and whether q is NULL, are constants after inlining. */
static inline __attribute__((always_inline)) void tile_bf16(float *c, uint16_t *c16, long ldc,
                                                            const uint32_t *ab, long sa,
                                                            const uint16_t *b, const uint8_t *q,
                                                            const dec *d, long kp2, int mr,
                                                            long col0, long n1, int first)
{
    __m512 acc[MR][4];
    #pragma GCC unroll 8
    for (int r = 0; r < mr; r++)
        #pragma GCC unroll 8
        for (int i = 0; i < 4; i++)
            acc[r][i] = _mm512_setzero_ps();
    /* the tables stay in registers across the loop; zero without codes (never read then, but
     * gcc cannot see that through the unrolled tiles) */
    const dec t = q ? *d : (dec){ 0 };
    for (long kp = 0; kp < kp2; kp++) {
        __m512i v[4];
        if (q) {
            fp8_to_bf16_lanes(&t, _mm512_loadu_si512(q + kp * 2 * NR), &v[0], &v[1]);
            fp8_to_bf16_lanes(&t, _mm512_loadu_si512(q + kp * 2 * NR + 64), &v[2], &v[3]);
        } else {
            #pragma GCC unroll 8
            for (int i = 0; i < 4; i++)
                v[i] = _mm512_loadu_si512(b + kp * 2 * NR + 32 * i);
        }
        #pragma GCC unroll 8
        for (int r = 0; r < mr; r++) {
            __m512bh a = (__m512bh)_mm512_set1_epi32((int)ab[r * sa + kp]);
            #pragma GCC unroll 8
            for (int i = 0; i < 4; i++)
                acc[r][i] = _mm512_dpbf16_ps(acc[r][i], a, (__m512bh)v[i]);
        }
    }
    if (q)
        #pragma GCC unroll 8
        for (int r = 0; r < mr; r++) {
            columns_in_order(&acc[r][0], &acc[r][1]);
            columns_in_order(&acc[r][2], &acc[r][3]);
        }
    #pragma GCC unroll 8
    for (int r = 0; r < mr; r++)
        #pragma GCC unroll 8
        for (int i = 0; i < 4; i++)
            if (c16)
                put_bf16(c16 + r * ldc + 16 * i, acc[r][i], col_mask(col0 + 16 * i, n1));
            else
                put(c + r * ldc + 16 * i, acc[r][i], col_mask(col0 + 16 * i, n1), first);
}

/* Rows [0, mb) in tiles of MR and one remainder tile, over bf16 b, into C in fp32 (c) or, when
 * the piece is all of K (first), C rounded to bf16 (c16): tiles_bf16 and tiles_bf16_out below,
 * each its own code after inlining. */
static inline __attribute__((always_inline)) void tiles(float *c, uint16_t *c16, long ldc,
                                                        const uint32_t *ab, long sa,
                                                        const uint16_t *b, long kp2, long mb,
                                                        long col0, long n1, int first)
{
    long r = 0;
#define TILE(mr) tile_bf16(c ? c + r * ldc : NULL, c16 ? c16 + r * ldc : NULL, ldc, ab + r * sa, \
                           sa, b, NULL, NULL, kp2, mr, col0, n1, first)
    for (; r + MR <= mb; r += MR)
        TILE(MR);
    switch (mb - r) {
    case 5: TILE(5); break;
    case 4: TILE(4); break;
    case 3: TILE(3); break;
    case 2: TILE(2); break;
    case 1: TILE(1); break;
    }
#undef TILE
}

static void tiles_bf16(float *c, long ldc, const uint32_t *ab, long sa, const uint16_t *b,
                       long kp2, long mb, long col0, long n1, int first)
{
    tiles(c, NULL, ldc, ab, sa, b, kp2, mb, col0, n1, first);
}

static void tiles_bf16_out(uint16_t *c16, long ldc, const uint32_t *ab, long sa,
                           const uint16_t *b, long kp2, long mb, long col0, long n1)
{
    tiles(NULL, c16, ldc, ab, sa, b, kp2, mb, col0, n1, 1);
}

/* Up to FUSED_M rows over fp8 codes q, widened in the tile FUSED_MR rows at a time: 4 table
 * registers, 4 weight vectors and 4 accumulators per row must fit in the 32 zmm registers. Each
 * group of rows widens the piece's codes again (from L1 or L2 after the first), which up to
 * about 96 rows costs less than decoding the piece into a block and reading that back (one Zen 5
 * thread, e4m3 K 4096 x N 14336, medians of interleaved calls: 5 rows 3.2 against 8.0 ms, 16
 * rows 5.7 against 10.7, 48 rows 14.9 against 16.3 with the block prefetched, 96 rows even,
 * 256 rows 80.0 against 78.1). */
enum { FUSED_MR = 4, FUSED_M = 64 };

static void tiles_fp8(float *c, long ldc, const uint32_t *ab, long sa, const uint8_t *q,
                      const dec *d, long kp2, long mb, long col0, long n1, int first)
{
    long r = 0;
#define TILE(mr) tile_bf16(c + r * ldc, NULL, ldc, ab + r * sa, sa, NULL, q, d, kp2, mr, col0, n1, \
                           first)
    for (; r + FUSED_MR < mb; r += FUSED_MR)
        TILE(FUSED_MR);
    switch (mb - r) {
    case 4: TILE(4); break;
    case 3: TILE(3); break;
    case 2: TILE(2); break;
    case 1: TILE(1); break;
    }
#undef TILE
}

/* One row over the fp8 codes of np panels at once (q, q + ps, ...), the decode GEMV's case: a
 * row's tile feeds each of its four accumulators one vdpbf16ps per k-pair, so it waits on that
 * instruction's latency; two panels give eight independent chains (measured on Zen 5, K 4096
 * from L2: 65 -> ~100 GB/s of codes), and four panels read four streams at once, which DRAM
 * serves faster: one Zen 5 thread, K 4096 x N 14336, medians of 60 calls interleaved in one
 * process: 1.77 against 2.20-2.32 ms for two panels (the same 74-77 GB/s from L2). 16
 * accumulators, 4 table registers and 4 weight vectors fit the 32 registers. Each column sums
 * as in tile_bf16: the same bits.
 * Each panel's codes FP8_AHEAD bytes on are prefetched: from DRAM the decode and the reads
 * barely overlapped (74 GB/s of codes from L2, 40 from DRAM, 24-29 together); with the
 * prefetch 6-12% faster (two panels, measured as above; 1 and 4 KiB no better). The bf16 tiles
 * read 12% slower with such a prefetch: the hardware's alone serves them. */
#define FP8_AHEAD 2048
static inline __attribute__((always_inline)) void rows_fp8(float *c, const uint32_t *ab,
                                                           const uint8_t *q, long ps,
                                                           const dec *d, long kp2, long col0,
                                                           long n1, int first, int np)
{
    __m512 acc[4][4];
    zero_panels(acc, np);
    dec t = *d;
    for (long kp = 0; kp < kp2; kp++) {
        __m512bh a = (__m512bh)_mm512_set1_epi32((int)ab[kp]);
        #pragma GCC unroll 4
        for (int s = 0; s < np; s++) {
            const uint8_t *qs = q + s * ps + kp * 2 * NR;
            __m512i v[4];
            _mm_prefetch((const char *)qs + FP8_AHEAD, _MM_HINT_T0);
            _mm_prefetch((const char *)qs + FP8_AHEAD + 64, _MM_HINT_T0);
            fp8_to_bf16_lanes(&t, _mm512_loadu_si512(qs), &v[0], &v[1]);
            fp8_to_bf16_lanes(&t, _mm512_loadu_si512(qs + 64), &v[2], &v[3]);
            #pragma GCC unroll 4
            for (int i = 0; i < 4; i++)
                acc[s][i] = _mm512_dpbf16_ps(acc[s][i], a, (__m512bh)v[i]);
        }
    }
    #pragma GCC unroll 4
    for (int s = 0; s < np; s++) {
        columns_in_order(&acc[s][0], &acc[s][1]);
        columns_in_order(&acc[s][2], &acc[s][3]);
        #pragma GCC unroll 4
        for (int i = 0; i < 4; i++)
            put(c + s * NR + 16 * i, acc[s][i], col_mask(col0 + s * NR + 16 * i, n1), first);
    }
}

/* rows_fp8 with np a constant: the accumulators stay in registers */
static void row2_fp8(float *c, const uint32_t *ab, const uint8_t *q, long ps, const dec *d,
                     long kp2, long col0, long n1, int first)
{
    rows_fp8(c, ab, q, ps, d, kp2, col0, n1, first, 2);
}

static void row4_fp8(float *c, const uint32_t *ab, const uint8_t *q, long ps, const dec *d,
                     long kp2, long col0, long n1, int first)
{
    rows_fp8(c, ab, q, ps, d, kp2, col0, n1, first, 4);
}

/* One row over the bf16 weights of np panels at once, rows_fp8's loop without the decode: from
 * DRAM the four streams read faster than one panel at a time (one Zen 5 thread, K 4096 x
 * N 14336, medians of 100 calls interleaved in one process: 2.87-2.88 ms for four panels,
 * 2.99-3.12 for two, 3.19-3.32 for one; the same ~97 GB/s from L2). Each column sums as in
 * tile_bf16: the same bits. */
static inline __attribute__((always_inline)) void rows_bf16(float *c, const uint32_t *ab,
                                                            const uint16_t *b, long ps, long kp2,
                                                            long col0, long n1, int first, int np)
{
    __m512 acc[4][4];
    zero_panels(acc, np);
    for (long kp = 0; kp < kp2; kp++) {
        __m512bh a = (__m512bh)_mm512_set1_epi32((int)ab[kp]);
        #pragma GCC unroll 4
        for (int s = 0; s < np; s++)
            #pragma GCC unroll 4
            for (int i = 0; i < 4; i++)
                acc[s][i] = _mm512_dpbf16_ps(acc[s][i], a,
                    (__m512bh)_mm512_loadu_si512(b + s * ps + kp * 2 * NR + 32 * i));
    }
    put_panels(c, acc, np, col0, n1, first);
}
/* rows_bf16 with np a constant */
static void row2_bf16(float *c, const uint32_t *ab, const uint16_t *b, long ps, long kp2,
                      long col0, long n1, int first)
{
    rows_bf16(c, ab, b, ps, kp2, col0, n1, first, 2);
}
static void row4_bf16(float *c, const uint32_t *ab, const uint16_t *b, long ps, long kp2,
                      long col0, long n1, int first)
{
    rows_bf16(c, ab, b, ps, kp2, col0, n1, first, 4);
}

/* Rows per pass for M rows: as few passes as MB allows, of equal size rounded up to whole
 * tiles (512 rows: 4 passes of 132, 132, 132, 116 rather than 144, 144, 144, 80). Measured on
 * Zen 4 at K 4096, N 14336, M 512: MB 48 -> 144 is +10% for bf16 and fp32, +15% for fp8 (fewer
 * passes re-stream and re-decode W); beyond about 150 rows it drops again. */
static long pass_rows(long M)
{
    long passes = (M + MB - 1) / MB, mb = (M + passes - 1) / passes;
    return (mb + MR - 1) / MR * MR;
}

/* A thread's buffer for a pass of rows of A as bf16 pairs over the whole K; grows, never
 * shrinks (up to 144 x K x 2 bytes: 1.2 MiB at K 4096, 4 MiB at K 14336), released with the
 * thread. */
static __thread uint32_t *abuf;
static __thread long abuf_cap;

static uint32_t *a_pairs(long n)
{
    if (n > abuf_cap) {
        /* aligned_alloc wants a size that is a multiple of the alignment */
        size_t bytes;
        free(abuf);
        abuf = NULL;
        if (!kg_ckd_mul(&bytes, (size_t)n + 16, sizeof *abuf) &&
            !kg_ckd_round_up(&bytes, bytes, 64))
            abuf = aligned_alloc(64, bytes);
        abuf_cap = abuf ? n : 0;
    }
    return abuf;
}

/* Panels outer, K inner: each panel of W streams once, front to back, per block of rows. With
 * C16 (C NULL; W bf16, all of K one piece) the tiles round C to bf16 in their store. */
static void gemm_bf16(float *C, uint16_t *C16, long ldc, const float *A, long lda, long M,
                      const kg_wt *W, long n0, long n1)
{
    static __thread uint16_t bb[KC_BF * NR] __attribute__((aligned(64)));
    /* a row of pairs and one cache line: rows a power of two apart (K 4096: 8 KiB) would share
     * L1 sets with each other and with the panel block (Zen 4, K 4096, M 512: +1-3%) */
    long sa = W->kpad / 2 + 16;
    long rows = pass_rows(M);
    uint32_t *ab = a_pairs((M < rows ? M : rows) * sa);
    if (!ab) { /* no memory for the bf16 copy of A: the scalar GEMM needs none */
        if (C16)
            kgp_gemm_bf16__scalar(C16, ldc, A, lda, M, W, n0, n1);
        else
            kgp_gemm_f32__scalar(C, ldc, A, lda, M, W, n0, n1);
        return;
    }
    /* few rows of A (decode, small batches) over unscaled fp8: widen in the tile, where a
     * decoded block would cost a store and a load per weight vector for a few dot products */
    int fp8 = W->fmt >= KG_WT_E4M3 && W->fmt <= KG_WT_E5M2;
    int fused = fp8 && !W->kb && M <= FUSED_M;
    for (long m0 = 0; m0 < M; m0 += rows) {
        long mb = M - m0 < rows ? M - m0 : rows;
        pack_a_bf16(ab, sa, A, lda, m0, mb, W->kpad, W->K);
        for (long p = n0 / NR, np; p * NR < n1; p += np) {
            /* one row (decode) over four panels at a time, else two, while there are as many:
             * more streams read at once (rows_fp8, rows_bf16) */
            int rowwise = !C16 && mb == 1 && (W->fmt == KG_WT_BF16 || fused);
            np = !rowwise ? 1 : (p + 3) * NR < n1 ? 4 : (p + 1) * NR < n1 ? 2 : 1;
            for (long k0 = 0; k0 < W->kpad; k0 += KC_BF) {
                long kc = W->kpad - k0 < KC_BF ? W->kpad - k0 : KC_BF;
                long e0 = p * W->kpad * NR + k0 * NR;
                const uint16_t *b;
                if (np > 1 && W->fmt == KG_WT_BF16) {
                    (np == 4 ? row4_bf16 : row2_bf16)(C + m0 * ldc + p * NR, ab + k0 / 2,
                                                      (const uint16_t *)W->data + e0,
                                                      W->kpad * NR, kc / 2, p * NR, n1, k0 == 0);
                    continue;
                } else if (np > 1) {
                    (np == 4 ? row4_fp8 : row2_fp8)(C + m0 * ldc + p * NR, ab + k0 / 2,
                                                    (const uint8_t *)W->data + e0, W->kpad * NR,
                                                    dec_for(W->fmt), kc / 2, p * NR, n1, k0 == 0);
                    continue;
                } else if (C16) {
                    tiles_bf16_out(C16 + m0 * ldc + p * NR, ldc, ab + k0 / 2, sa,
                                   (const uint16_t *)W->data + e0, kc / 2, mb, p * NR, n1);
                    continue;
                } else if (W->fmt == KG_WT_BF16) {
                    b = (const uint16_t *)W->data + e0;
                } else if (fused) {
                    tiles_fp8(C + m0 * ldc + p * NR, ldc, ab + k0 / 2, sa,
                              (const uint8_t *)W->data + e0, dec_for(W->fmt), kc / 2, mb, p * NR,
                              n1, k0 == 0);
                    continue;
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
                                                           long lda, const float *b,
                                                           const uint16_t *h, long kc, int mr,
                                                           long col0, long n1, int first)
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
            w[i] = h ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + k * NR + 16 * i)))
                     : _mm512_loadu_ps(b + k * NR + 16 * i);
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

/* The tiles over fp32 weights b, or fp16 weights h widened in the tile: no widened copy of
 * the piece to store and read back (one Zen 5 thread, K 4096 x N 14336, medians of interleaved
 * calls: 2 rows 3.4 against 8.4 ms, 8 rows 6.1 against 11.9, 32 rows 21.2 against 24.8, 512
 * rows even). */
#define TILES_F32(name, B, H)                                                                  \
    static void name(float *c, long ldc, const float *a, long lda, const void *w, long kc,     \
                     long mb, long col0, long n1, int first)                                   \
    {                                                                                          \
        long r = 0;                                                                            \
        (void)w;                                                                               \
        for (; r + MR <= mb; r += MR)                                                          \
            tile_f32(c + r * ldc, ldc, a + r * lda, lda, B, H, kc, MR, col0, n1, first);       \
        switch (mb - r) {                                                                      \
        case 5: tile_f32(c + r * ldc, ldc, a + r * lda, lda, B, H, kc, 5, col0, n1, first); break; \
        case 4: tile_f32(c + r * ldc, ldc, a + r * lda, lda, B, H, kc, 4, col0, n1, first); break; \
        case 3: tile_f32(c + r * ldc, ldc, a + r * lda, lda, B, H, kc, 3, col0, n1, first); break; \
        case 2: tile_f32(c + r * ldc, ldc, a + r * lda, lda, B, H, kc, 2, col0, n1, first); break; \
        case 1: tile_f32(c + r * ldc, ldc, a + r * lda, lda, B, H, kc, 1, col0, n1, first); break; \
        }                                                                                      \
    }
TILES_F32(tiles_f32, (const float *)w, NULL)
TILES_F32(tiles_f16, NULL, (const uint16_t *)w)
#undef TILES_F32

/* One row over the fp32 weights of np panels at once (fp16: widened in the load, exactly),
 * rows_bf16's loop on fp32 FMAs: four streams from DRAM read faster than one, and fp16 skips
 * the widened copy of each piece (one Zen 5 thread, K 4096 x N 14336, medians of 60 calls
 * interleaved in one process: fp32 5.7 against 7.6 ms one panel at a time, fp16 2.7 against
 * 8.4). Each column sums as in tile_f32: the same bits. */
static inline __attribute__((always_inline)) void rows_f32(float *c, const float *a,
                                                           const void *b, int f16, long ps,
                                                           long kc, long col0, long n1,
                                                           int first, int np)
{
    const float *bf = b;
    const uint16_t *bh = b;
    __m512 acc[4][4];
    zero_panels(acc, np);
    for (long k = 0; k < kc; k++) {
        __m512 x = _mm512_set1_ps(a[k]);
        #pragma GCC unroll 4
        for (int s = 0; s < np; s++)
            #pragma GCC unroll 4
            for (int i = 0; i < 4; i++) {
                long at = s * ps + k * NR + 16 * i;
                __m512 w = f16 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(bh + at)))
                               : _mm512_loadu_ps(bf + at);
                acc[s][i] = _mm512_fmadd_ps(x, w, acc[s][i]);
            }
    }
    put_panels(c, acc, np, col0, n1, first);
}

/* rows_f32 with the format and np constants */
#define ROWS_F32(name, f16, np)                                                                 \
    static void name(float *c, const float *a, const void *b, long ps, long kc, long col0,     \
                     long n1, int first)                                                       \
    {                                                                                          \
        rows_f32(c, a, b, f16, ps, kc, col0, n1, first, np);                                   \
    }
ROWS_F32(row2_f32, 0, 2)
ROWS_F32(row4_f32, 0, 4)
ROWS_F32(row2_f16, 1, 2)
ROWS_F32(row4_f16, 1, 4)
#undef ROWS_F32
typedef void row_f32_fn(float *c, const float *a, const void *b, long ps, long kc, long col0,
                        long n1, int first);

static void gemm_f32(float *C, long ldc, const float *A, long lda, long M, const kg_wt *W,
                     long n0, long n1)
{
    /* A is read in place: rows past K are never touched because kc stops at K here (fp32 and
     * fp16 panels have kg = 1, so kpad == K) */
    long rows = pass_rows(M);
    for (long m0 = 0; m0 < M; m0 += rows) {
        long mb = M - m0 < rows ? M - m0 : rows;
        for (long p = n0 / NR, np; p * NR < n1; p += np) {
            /* one row (decode) over four panels at a time, else two, as gemm_bf16's */
            np = mb > 1 ? 1 : (p + 3) * NR < n1 ? 4 : (p + 1) * NR < n1 ? 2 : 1;
            row_f32_fn *row = W->fmt == KG_WT_F32 ? (np == 4 ? row4_f32 : row2_f32)
                                                  : (np == 4 ? row4_f16 : row2_f16);
            for (long k0 = 0; k0 < W->K; k0 += KC_F32) {
                long kc = W->K - k0 < KC_F32 ? W->K - k0 : KC_F32;
                long e0 = p * W->kpad * NR + k0 * NR;
                const void *w = W->fmt == KG_WT_F32
                                    ? (const void *)((const float *)W->data + e0)
                                    : (const void *)((const uint16_t *)W->data + e0);
                float *c = C + m0 * ldc + p * NR;
                if (np > 1)
                    row(c, A + m0 * lda + k0, w, W->kpad * NR, kc, p * NR, n1, k0 == 0);
                else
                    (W->fmt == KG_WT_F32 ? tiles_f32 : tiles_f16)(c, ldc, A + m0 * lda + k0, lda,
                                                                  w, kc, mb, p * NR, n1, k0 == 0);
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
        gemm_bf16(C, NULL, ldc, A, lda, M, W, n0, n1);
}

void kgp_gemm_bf16__avx512(kg_u16 *C, long ldc, const float *A, long lda, long M,
                           const kg_wt *W, long n0, long n1)
{
    if (M <= 0 || n1 <= n0)
        return;
    long nr, kg;
    kgr_avx512_geometry(W->fmt, &nr, &kg);
    if (W->fmt == KG_WT_BF16 && W->nr == nr && W->kg == kg && W->kpad <= KC_BF)
        gemm_bf16(NULL, C, ldc, A, lda, M, W, n0, n1);
    else /* sums over several pieces of K, or other formats: rounded from fp32 stripes */
        kgr_gemm_bf16_via_f32(kgp_gemm_f32__avx512, kgp_cvt_f32_bf16__avx512, 16, 512, C, ldc,
                              A, lda, M, W, n0, n1); /* rows: any split has the same bits */
}
