/* prim_avx2_gemm.c: the AVX2 GEMM over packed weights (kgen/abi.h, kgp_gemm_f32). This file
 * alone is compiled with AVX2, FMA and F16C enabled; prim.c calls it only when cpu.c reports
 * AVX2 with FMA.
 *
 * Packed geometry (kgr_wt_geometry): panels of NR = 16 columns, one k per group (kg = 1), so
 * one row of a panel is two ymm of fp32 and, for every format, a contiguous run of codes.
 *
 * AVX2 has no bf16 dot product, so every weight format is widened to fp32 inside the block
 * load (exactly: bf16 by a shift, fp16 by vcvtph2ps, fp8 and fp4 through fp16 bits, see
 * fp8_to_f16) and the MX scales are applied in fp32 as the scalar GEMM does; A is rounded to
 * bf16 (kept in fp32) when the weight is narrow. Then fp32 FMAs only. Blocking: per block of MB
 * rows of A (copied, see a_stride), each 16-column panel streams once front to back in KC-deep
 * pieces, each piece decoded once into a per-thread buffer and swept by micro-tiles of MR rows
 * x 16 columns; a block of at most MR_DIRECT rows (decode) widens the codes inside its one
 * tile instead. */
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/abi.h"
#include "kgen/ckd.h"
#include "kgen/dtype.h"
#include "prim.h"
#include "prim_avx2_fp8.h"

enum {
    NR = 16,  /* panel width: 2 ymm of fp32 accumulators per row */
    MR = 6,   /* rows per micro-tile: 6 x 2 accumulators + 2 weight vectors + 1 broadcast */
    MB = 132, /* rows of A per pass: each decoded piece of a panel serves 22 micro-tiles */
    KC = 256  /* K per pass: a decoded piece is 256 x 16 fp32 = 16 KiB, resident in L1 */
};

void kgr_avx2_geometry(int fmt, long *nr, long *kg)
{
    (void)fmt;
    *nr = NR;
    *kg = 1;
}

/* ---- weight codes to fp32 ------------------------------------------------------------------ */

/* fp16 high bytes of the 16 fp4 codes (the low bytes are all zero: an fp4 value has at most
 * one mantissa bit), built at load from the exact scalar decoders. */
static uint8_t fp4_f16_hi[16];

__attribute__((constructor)) static void build_fp4_table(void)
{
    for (int c = 0; c < 16; c++)
        fp4_f16_hi[c] = (uint8_t)(kg_f32_to_f16(kg_e2m1_to_f32((uint8_t)c)) >> 8);
}

/* Row e of a panel (16 consecutive codes from element e) as fp32 in *v0 (columns 0..7) and *v1
 * (8..15). fmt is a constant after inlining. */
static inline __attribute__((always_inline)) void widen_row(int fmt, const void *data, long e,
                                                            __m256 *v0, __m256 *v1)
{
    if (fmt == KG_WT_BF16) {
        const __m128i *p = (const __m128i *)((const uint16_t *)data + e);
        *v0 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(p)), 16));
        *v1 = _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(p + 1)), 16));
    } else if (fmt == KG_WT_F16) {
        const __m128i *p = (const __m128i *)((const uint16_t *)data + e);
        *v0 = _mm256_cvtph_ps(_mm_loadu_si128(p));
        *v1 = _mm256_cvtph_ps(_mm_loadu_si128(p + 1));
    } else if (fmt == KG_WT_E2M1) {
        /* 8 bytes, low nibble first: split, interleave back into code order, look up */
        const uint8_t *p = (const uint8_t *)data + (unsigned long)e / 2;
        __m128i b = _mm_loadl_epi64((const __m128i *)p);
        __m128i lo = _mm_and_si128(b, _mm_set1_epi8(0x0f));
        __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(0x0f));
        __m128i t = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)fp4_f16_hi),
                                     _mm_unpacklo_epi8(lo, hi));
        *v0 = _mm256_cvtph_ps(_mm_unpacklo_epi8(_mm_setzero_si128(), t));
        *v1 = _mm256_cvtph_ps(_mm_unpackhi_epi8(_mm_setzero_si128(), t));
    } else { /* fp8 */
        __m128i b = _mm_loadu_si128((const __m128i *)((const uint8_t *)data + e));
        __m256i h = fp8_to_f16(fmt, _mm256_cvtepi8_epi16(b));
        __m256 f0 = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
        __m256 f1 = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
        if (fmt != KG_WT_E5M2) { /* undo fp8_to_f16's 2^-8 (exact) */
            f0 = _mm256_mul_ps(f0, _mm256_set1_ps(256.0f));
            f1 = _mm256_mul_ps(f1, _mm256_set1_ps(256.0f));
        }
        *v0 = f0, *v1 = f1;
    }
}

/* 2^(e-127) for 8 E8M0 scales (e = 0 is the subnormal 2^-127; 255, NaN, never occurs in
 * packed weights: kg_e8m0_block_exponent stops at 254). */
static inline __m256 e8m0_to_f32(const uint8_t *sc)
{
    __m256i e = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)sc));
    __m256i bits = _mm256_slli_epi32(e, 23);
    __m256i zero = _mm256_cmpeq_epi32(e, _mm256_setzero_si256());
    return _mm256_castsi256_ps(_mm256_blendv_epi8(bits, _mm256_set1_epi32(0x00400000), zero));
}

/* kc rows of a panel (from element e0 of W's data) into dst as fp32, times their MX scales
 * when sc is set (sc: the first row's NR scales, NR more per kb rows). */
static inline __attribute__((always_inline)) void decode_fmt(int fmt, float *dst, const kg_wt *W,
                                                             long e0, long kc, const uint8_t *sc)
{
    long step = sc ? W->kb : kc;
    for (long b = 0; b < kc; b += step) {
        __m256 s0 = _mm256_set1_ps(1.0f), s1 = s0;
        if (sc) {
            const uint8_t *s = sc + (b / W->kb) * NR;
            s0 = e8m0_to_f32(s), s1 = e8m0_to_f32(s + 8);
        }
        long end = b + step < kc ? b + step : kc;
        for (long k = b; k < end; k++) {
            __m256 v0, v1;
            widen_row(fmt, W->data, e0 + k * NR, &v0, &v1);
            if (sc)
                v0 = _mm256_mul_ps(v0, s0), v1 = _mm256_mul_ps(v1, s1);
            _mm256_store_ps(dst + k * NR, v0);
            _mm256_store_ps(dst + k * NR + 8, v1);
        }
    }
}

/* The dispatch switch: one specialized decode loop per format. */
static void decode_block(float *dst, const kg_wt *W, long e0, long kc, const uint8_t *sc)
{
    switch (W->fmt) {
    case KG_WT_BF16: decode_fmt(KG_WT_BF16, dst, W, e0, kc, sc); break;
    case KG_WT_F16: decode_fmt(KG_WT_F16, dst, W, e0, kc, sc); break;
    case KG_WT_E4M3: decode_fmt(KG_WT_E4M3, dst, W, e0, kc, sc); break;
    case KG_WT_E4M3FN: decode_fmt(KG_WT_E4M3FN, dst, W, e0, kc, sc); break;
    case KG_WT_E5M2: decode_fmt(KG_WT_E5M2, dst, W, e0, kc, sc); break;
    default: decode_fmt(KG_WT_E2M1, dst, W, e0, kc, sc); break;
    }
}

/* ---- micro-tiles ---------------------------------------------------------------------------- */

/* A KC-deep piece of one panel as a tile reads it: kc rows of 16 from element e0 of data, in
 * format fmt (KG_WT_F32 for fp32 weights and for pieces decoded into the thread's buffer),
 * times MX scales when sc is set (sc: the piece's first NR scales, NR more per kb rows). */
typedef struct piece {
    const void *data;
    long e0, kc;
    const uint8_t *sc;
    long kb;
} piece;

/* Row k of a piece as fp32. fmt is a constant after inlining. */
static inline __attribute__((always_inline)) void piece_row(int fmt, const piece *pc, long k,
                                                            __m256 *w0, __m256 *w1)
{
    if (fmt == KG_WT_F32) {
        const float *b = (const float *)pc->data + pc->e0 + k * NR;
        *w0 = _mm256_load_ps(b), *w1 = _mm256_load_ps(b + 8);
    } else {
        widen_row(fmt, pc->data, pc->e0 + k * NR, w0, w1);
    }
}

/* Stores (first pass) or adds (later passes) 8 accumulators into C, masked to `left` columns. */
static inline void put(float *c, __m256 acc, long left, int first)
{
    if (left >= 8) {
        if (!first)
            acc = _mm256_add_ps(acc, _mm256_loadu_ps(c));
        _mm256_storeu_ps(c, acc);
    } else if (left > 0) {
        __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)left),
                                       _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        if (!first)
            acc = _mm256_add_ps(acc, _mm256_maskload_ps(c, m));
        _mm256_maskstore_ps(c, m, acc);
    }
}

/* acc[u][r] += a[r][k] * row k of the piece, for the ku rows k = k0 + u. */
#define TILE_STEP(U, K)                                                                        \
    do {                                                                                       \
        __m256 w0, w1;                                                                         \
        piece_row(fmt, pc, (K), &w0, &w1);                                                     \
        if (pc->sc)                                                                            \
            w0 = _mm256_mul_ps(w0, s0), w1 = _mm256_mul_ps(w1, s1);                            \
        _Pragma("GCC unroll 8") for (int r = 0; r < mr; r++) {                                 \
            __m256 x = _mm256_broadcast_ss(a + r * lda + (K));                                 \
            acc[U][r][0] = _mm256_fmadd_ps(x, w0, acc[U][r][0]);                               \
            acc[U][r][1] = _mm256_fmadd_ps(x, w1, acc[U][r][1]);                               \
        }                                                                                      \
    } while (0)

/* C rows [0, mr) x 16 columns at c (stride ldc, masked to n1 - col0) += a (stride lda) @ the
 * piece. fmt, mr <= MR and ku are constants after inlining: short tiles keep ku partial sums
 * over interleaved k (8 or more independent accumulators hide the FMA latency). The loops are
 * unrolled (GCC unroll pragmas) so the accumulators live in registers. */
static inline __attribute__((always_inline)) void tile(int fmt, float *c, long ldc,
                                                       const float *a, long lda, const piece *pc,
                                                       int mr, long col0, long n1, int first)
{
    enum { KU = 4 };
    const int ku = mr == 1 ? 4 : mr <= 3 ? 2 : 1;
    __m256 acc[KU][MR][2];
    #pragma GCC unroll 4
    for (int u = 0; u < ku; u++)
        #pragma GCC unroll 8
        for (int r = 0; r < mr; r++)
            acc[u][r][0] = acc[u][r][1] = _mm256_setzero_ps();
    long kc = pc->kc, step = pc->sc ? pc->kb : kc;
    const uint8_t *sc = pc->sc;
    for (long b = 0; b < kc; b += step) {
        __m256 s0 = _mm256_setzero_ps(), s1 = s0;
        if (sc) {
            s0 = e8m0_to_f32(sc), s1 = e8m0_to_f32(sc + 8);
            sc += NR;
        }
        long end = b + step < kc ? b + step : kc, k = b;
        for (; k + ku <= end; k += ku) {
            #pragma GCC unroll 4
            for (int u = 0; u < ku; u++)
                TILE_STEP(u, k + u);
        }
        for (; k < end; k++)
            TILE_STEP(0, k);
    }
    #pragma GCC unroll 8
    for (int r = 0; r < mr; r++) {
        #pragma GCC unroll 4
        for (int u = 1; u < ku; u++) {
            acc[0][r][0] = _mm256_add_ps(acc[0][r][0], acc[u][r][0]);
            acc[0][r][1] = _mm256_add_ps(acc[0][r][1], acc[u][r][1]);
        }
        put(c + r * ldc, acc[0][r][0], n1 - col0, first);
        put(c + r * ldc + 8, acc[0][r][1], n1 - col0 - 8, first);
    }
}

/* mb rows through an fp32 piece: full tiles of MR rows, then the remainder. */
static void tiles_f32(float *c, long ldc, const float *a, long lda, const piece *pc, long mb,
                      long col0, long n1, int first)
{
    const int F = KG_WT_F32;
    long r = 0;
    for (; r + MR <= mb; r += MR)
        tile(F, c + r * ldc, ldc, a + r * lda, lda, pc, MR, col0, n1, first);
    switch (mb - r) {
    case 5: tile(F, c + r * ldc, ldc, a + r * lda, lda, pc, 5, col0, n1, first); break;
    case 4: tile(F, c + r * ldc, ldc, a + r * lda, lda, pc, 4, col0, n1, first); break;
    case 3: tile(F, c + r * ldc, ldc, a + r * lda, lda, pc, 3, col0, n1, first); break;
    case 2: tile(F, c + r * ldc, ldc, a + r * lda, lda, pc, 2, col0, n1, first); break;
    case 1: tile(F, c + r * ldc, ldc, a + r * lda, lda, pc, 1, col0, n1, first); break;
    }
}

/* mb <= MR_DIRECT rows, one tile reading W's codes directly: with a single tile a decoded
 * buffer would be written and read once each for nothing (the decode GEMV). */
static inline __attribute__((always_inline)) void tile_codes(int fmt, float *c, long ldc,
                                                             const float *a, long lda,
                                                             const piece *pc, long mb,
                                                             long col0, long n1, int first)
{
    switch (mb) {
    case 1: tile(fmt, c, ldc, a, lda, pc, 1, col0, n1, first); break;
    case 2: tile(fmt, c, ldc, a, lda, pc, 2, col0, n1, first); break;
    case 3: tile(fmt, c, ldc, a, lda, pc, 3, col0, n1, first); break;
    default: tile(fmt, c, ldc, a, lda, pc, 4, col0, n1, first); break;
    }
}

enum { MR_DIRECT = 4 };

/* The dispatch switch of the direct path: one specialized tile set per format. */
static void tiles_codes(int fmt, float *c, long ldc, const float *a, long lda, const piece *pc,
                        long mb, long col0, long n1, int first)
{
    switch (fmt) {
    case KG_WT_BF16: tile_codes(KG_WT_BF16, c, ldc, a, lda, pc, mb, col0, n1, first); break;
    case KG_WT_F16: tile_codes(KG_WT_F16, c, ldc, a, lda, pc, mb, col0, n1, first); break;
    case KG_WT_E4M3: tile_codes(KG_WT_E4M3, c, ldc, a, lda, pc, mb, col0, n1, first); break;
    case KG_WT_E4M3FN: tile_codes(KG_WT_E4M3FN, c, ldc, a, lda, pc, mb, col0, n1, first); break;
    case KG_WT_E5M2: tile_codes(KG_WT_E5M2, c, ldc, a, lda, pc, mb, col0, n1, first); break;
    default: tile_codes(KG_WT_E2M1, c, ldc, a, lda, pc, mb, col0, n1, first); break;
    }
}

/* ---- the primitive -------------------------------------------------------------------------- */

/* A thread's buffer for MB rows of A over the whole K; grows, never shrinks (a few MiB at most
 * at the model sizes) and lives as long as the thread's storage. */
static __thread float *abuf;
static __thread long abuf_cap;

/* The row stride of the copy of A: whole cache lines, and rows a line apart modulo 4 KiB so the
 * rows of a tile do not share L1 sets (a power-of-two K, as in most models, would). */
static long a_stride(long K)
{
    long sa = (K + 15) / 16 * 16 + 16;
    return sa % 1024 == 0 ? sa + 16 : sa;
}

static float *a_buffer(long n)
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

/* Panels outer, K inner: each panel of W streams once, front to back, per block of rows. Only
 * k < K is read (rows of A past K do not exist; the packed padding is zero anyway). The block
 * of rows is copied first (into ab, rounded to bf16 for narrow weights). fp32 weights are read
 * in place; other formats are decoded once per piece into the thread's buffer, or, for a block
 * of at most MR_DIRECT rows, inside the tile. */
static void gemm(float *C, long ldc, const float *A, long lda, long M, const kg_wt *W, long n0,
                 long n1, float *ab)
{
    static __thread float bb[KC * NR] __attribute__((aligned(64)));
    long K = W->K, sa = a_stride(K);
    int round = W->fmt != KG_WT_F32 && W->fmt != KG_WT_F16;
    for (long m0 = 0; m0 < M; m0 += MB) {
        long mb = M - m0 < MB ? M - m0 : MB;
        for (long m = 0; m < mb; m++) {
            if (round)
                kgp_round_bf16_f32__avx2(ab + m * sa, A + (m0 + m) * lda, K);
            else
                memcpy(ab + m * sa, A + (m0 + m) * lda, (size_t)K * sizeof *ab);
        }
        int direct = W->fmt == KG_WT_F32 || mb <= MR_DIRECT;
        for (long p = n0 / NR; p * NR < n1; p++) {
            const uint8_t *sc = W->kb ? W->scale + p * (W->kpad / W->kb) * NR : NULL;
            for (long k0 = 0; k0 < K; k0 += KC) {
                long kc = K - k0 < KC ? K - k0 : KC;
                piece pc = { W->data, p * W->kpad * NR + k0 * NR, kc,
                             sc ? sc + (k0 / W->kb) * NR : NULL, W->kb };
                float *c = C + m0 * ldc + p * NR;
                if (direct && W->fmt != KG_WT_F32) {
                    tiles_codes(W->fmt, c, ldc, ab + k0, sa, &pc, mb, p * NR, n1, k0 == 0);
                    continue;
                }
                if (!direct) {
                    decode_block(bb, W, pc.e0, kc, pc.sc);
                    pc = (piece){ bb, 0, kc, NULL, 0 };
                }
                tiles_f32(c, ldc, ab + k0, sa, &pc, mb, p * NR, n1, k0 == 0);
            }
        }
    }
}

void kgp_gemm_f32__avx2(float *C, long ldc, const float *A, long lda, long M, const kg_wt *W,
                        long n0, long n1)
{
    if (M <= 0 || n1 <= n0)
        return;
    /* a weight packed for another geometry (e.g. under the scalar ISA) is still read right */
    long nr, kg;
    kgr_avx2_geometry(W->fmt, &nr, &kg);
    if (W->nr != nr || W->kg != kg) {
        kgp_gemm_f32__scalar(C, ldc, A, lda, M, W, n0, n1);
        return;
    }
    float *ab = a_buffer((M < MB ? M : MB) * a_stride(W->K));
    if (!ab) { /* no memory for the copy of A: the scalar GEMM needs none */
        kgp_gemm_f32__scalar(C, ldc, A, lda, M, W, n0, n1);
        return;
    }
    gemm(C, ldc, A, lda, M, W, n0, n1, ab);
}

void kgp_gemm_bf16__avx2(kg_u16 *C, long ldc, const float *A, long lda, long M, const kg_wt *W,
                         long n0, long n1)
{
    /* stripes of a pass of rows (the tiles' heights, so the bits, follow from where the pass
     * starts) by 4 panels */
    kgr_gemm_bf16_via_f32(kgp_gemm_f32__avx2, kgp_cvt_f32_bf16__avx2, MB, 4 * NR, C, ldc, A, lda,
                          M, W, n0, n1);
}
