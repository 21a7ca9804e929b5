/* prim_attn_avx512.c: decode's passes over stored key and value rows (kgp_qk_*, kgp_pv_* in
 * kgen/abi.h) on AVX-512, the same bits as the scalar references. The value pass runs 16-lane
 * fmaf chains (R rows by 32 columns). The score pass must keep the reference's eight lanes, so
 * a zmm holds two keys: its low half the 8 lanes of key j, its high half those of key j + 1,
 * both against the same 8 query elements (broadcast to both halves); the halves are then summed
 * in the reference's order. Widening is exact: bf16 by a shift, fp16 by vcvtph2ps, e4m3
 * through fp16 bits (prim_avx2_fp8.h). The loops over a block's rows and vectors are unrolled
 * by pragma: gcc -O2 left them rolled, the accumulators in memory, each FMA waiting on a store
 * and a load (one Zen 5 thread, bf16 keys and values from L2: 7.8 GB/s before, 22-24 after;
 * from DRAM 7.5 against 15.5). */
#include <immintrin.h>
#include <math.h>

#include "kgen/dtype.h"
#include "prim.h"
#include "prim_attn.h"
#include "prim_avx2_fp8.h"

#define AI static inline __attribute__((always_inline))

enum { F32, BF16, F16, E4M3 }; /* the stored format of the key and value rows */

AI const void *elem(int fmt, const void *x, long e)
{
    return (const char *)x + e * (fmt == F32 ? 4 : fmt == E4M3 ? 1 : 2);
}

AI float widen1(int fmt, const void *x, long e)
{
    if (fmt == F32)
        return ((const float *)x)[e];
    if (fmt == BF16)
        return kg_bf16_to_f32(((const kg_u16 *)x)[e]);
    if (fmt == F16)
        return kg_f16_to_f32(((const kg_u16 *)x)[e]);
    return kg_e4m3_to_f32(((const kg_u8 *)x)[e]);
}

/* 16 narrow elements as fp32: codes in 16-bit lanes (bf16, fp16; e4m3 sign-extended). */
AI __m512 widen_codes(int fmt, __m256i c)
{
    if (fmt == BF16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(c), 16));
    if (fmt == F16)
        return _mm512_cvtph_ps(c);
    return _mm512_mul_ps(_mm512_cvtph_ps(fp8_to_f16(KG_WT_E4M3, c)), _mm512_set1_ps(256.0f));
}

/* 16 consecutive elements of a row. */
AI __m512 widen16(int fmt, const void *x)
{
    if (fmt == F32)
        return _mm512_loadu_ps(x);
    if (fmt == E4M3)
        return widen_codes(fmt, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x)));
    return widen_codes(fmt, _mm256_loadu_si256((const __m256i *)x));
}

/* 8 consecutive elements of row x in the low half, 8 of row y in the high half. */
AI __m512 widen8x2(int fmt, const void *x, const void *y)
{
    if (fmt == F32)
        return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(x)),
                                  _mm256_loadu_ps(y), 1);
    if (fmt == E4M3) {
        __m128i b = _mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)x),
                                       _mm_loadl_epi64((const __m128i *)y));
        return widen_codes(fmt, _mm256_cvtepi8_epi16(b));
    }
    __m256i c = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)x)),
        _mm_loadu_si128((const __m128i *)y), 1);
    return widen_codes(fmt, c);
}

/* ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) of 4 rows' 8-lane accumulators at once. */
AI __m128 sum8x4(__m256 a, __m256 b, __m256 c, __m256 d)
{
    __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/* Per 128-bit block: [x0 + x1, x2 + x3, y0 + y1, y2 + y3] (the reference's first two levels). */
AI __m512 hadd512(__m512 x, __m512 y)
{
    return _mm512_add_ps(_mm512_shuffle_ps(x, y, 0x88), _mm512_shuffle_ps(x, y, 0xDD));
}

/* The 16 scores of 4 rows x 4 keys from their accumulators acc[a][b] (keys 2b and 2b + 1 in
 * the low and high halves), summed in the reference's tree without leaving the registers:
 * pairs, then quads (lanes 0-3 and 4-7 of a key in 128-bit blocks of their own), then the two
 * quads; then the tail t .. d - 1 by fmaf as the reference does. Rows a >= R are not stored. */
AI void reduce4x4(float *s, long lds, __m512 acc[4][2], int fmt, const float *q, long ldq,
                  const void *k, long ldk, long t, long d, int R)
{
    __m512 r01 = hadd512(hadd512(acc[0][0], acc[0][1]), hadd512(acc[1][0], acc[1][1]));
    __m512 r23 = hadd512(hadd512(acc[2][0], acc[2][1]), hadd512(acc[3][0], acc[3][1]));
    __m512 z = _mm512_add_ps(_mm512_shuffle_f32x4(r01, r23, 0x88),
                             _mm512_shuffle_f32x4(r01, r23, 0xDD));
    /* z's lanes: blocks [r0 k0 k2 r1 k0 k2], [r0 k1 k3 r1 k1 k3], then rows 2 and 3 */
    z = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14,
                                                11, 15), z);
    if (t == d) {
        _mm_storeu_ps(s, _mm512_castps512_ps128(z));
        if (R > 1)
            _mm_storeu_ps(s + lds, _mm512_extractf32x4_ps(z, 1));
        if (R > 2)
            _mm_storeu_ps(s + 2 * lds, _mm512_extractf32x4_ps(z, 2));
        if (R > 3)
            _mm_storeu_ps(s + 3 * lds, _mm512_extractf32x4_ps(z, 3));
        return;
    }
    float r[16];
    _mm512_storeu_ps(r, z);
    #pragma GCC unroll 4
    for (int a = 0; a < R; a++)
        for (long key = 0; key < 4; key++) {
            float x = r[a * 4 + key];
            for (long u = t; u < d; u++)
                x = fmaf(q[a * ldq + u], widen1(fmt, k, key * ldk + u), x);
            s[a * lds + key] = x;
        }
}

/* Scores of R query rows (R <= 4) against 2 * KP keys (KP 1 or 2 zmm of key pairs), or against
 * one key (KP = 1, single: the high half repeats it and is dropped). */
AI void qk_block(int fmt, float *s, long lds, const float *q, long ldq, const void *k, long ldk,
                 long d, int R, int KP, int single)
{
    __m512 acc[4][2];
    #pragma GCC unroll 4
    for (int a = 0; a < 4; a++)
        acc[a][0] = acc[a][1] = _mm512_setzero_ps();
    long t = 0;
    for (; t + 8 <= d; t += 8) {
        __m512 kv[2];
        #pragma GCC unroll 4
        for (int b = 0; b < KP; b++) {
            const void *x = elem(fmt, k, 2 * b * ldk + t);
            kv[b] = widen8x2(fmt, x, single ? x : elem(fmt, k, (2 * b + 1) * ldk + t));
        }
        #pragma GCC unroll 4
        for (int a = 0; a < R; a++) {
            __m512 qv = _mm512_broadcast_f32x8(_mm256_loadu_ps(q + a * ldq + t));
            #pragma GCC unroll 4
            for (int b = 0; b < KP; b++)
                acc[a][b] = _mm512_fmadd_ps(qv, kv[b], acc[a][b]);
        }
    }
    if (KP == 2) {
        reduce4x4(s, lds, acc, fmt, q, ldq, k, ldk, t, d, R);
        return;
    }
    #pragma GCC unroll 4
    for (int b = 0; b < KP; b++)
        #pragma GCC unroll 2
        for (int half = 0; half < 2 - single; half++) {
            __m256 x[4];
            #pragma GCC unroll 4
            for (int a = 0; a < 4; a++)
                x[a] = half ? _mm512_extractf32x8_ps(acc[a][b], 1)
                            : _mm512_castps512_ps256(acc[a][b]);
            float r[4];
            _mm_storeu_ps(r, sum8x4(x[0], x[1], x[2], x[3]));
            long key = 2 * b + half;
            #pragma GCC unroll 4
            for (int a = 0; a < R; a++) {
                for (long u = t; u < d; u++)
                    r[a] = fmaf(q[a * ldq + u], widen1(fmt, k, key * ldk + u), r[a]);
                s[a * lds + key] = r[a];
            }
        }
}

/* The lines of rows [j, j + cnt) of x: a prefetch never faults, so rows past the caller's n
 * (the next tile's, in a flat cache) cost nothing when absent. */
AI void prefetch_rows(int fmt, const void *x, long ldx, long j, long cnt, long d)
{
    long row_bytes = (const char *)elem(fmt, x, d) - (const char *)x;
    for (long r = j; r < j + cnt; r++)
        for (long b = 0; b < row_bytes; b += 64)
            _mm_prefetch((const char *)elem(fmt, x, r * ldx) + b, _MM_HINT_T0);
}

enum { QK_AHEAD = 16 }; /* key rows prefetched ahead of the block being scored */

AI void qk_rows(int fmt, float *s, long lds, const float *q, long ldq, long n, const void *k,
                long ldk, long d, int R)
{
    long j = 0;
    for (; j + 4 <= n; j += 4) {
        prefetch_rows(fmt, k, ldk, j + QK_AHEAD, 4, d);
        qk_block(fmt, s + j, lds, q, ldq, elem(fmt, k, j * ldk), ldk, d, R, 2, 0);
    }
    for (; j + 2 <= n; j += 2)
        qk_block(fmt, s + j, lds, q, ldq, elem(fmt, k, j * ldk), ldk, d, R, 1, 0);
    if (j < n)
        qk_block(fmt, s + j, lds, q, ldq, elem(fmt, k, j * ldk), ldk, d, R, 1, 1);
}

AI void qk(int fmt, float *s, long lds, const float *q, long ldq, long m, const void *k,
           long ldk, long n, long d)
{
    long i = 0;
    for (; i + 4 <= m; i += 4)
        qk_rows(fmt, s + i * lds, lds, q + i * ldq, ldq, n, k, ldk, d, 4);
    switch (m - i) {
    case 3: qk_rows(fmt, s + i * lds, lds, q + i * ldq, ldq, n, k, ldk, d, 3); break;
    case 2: qk_rows(fmt, s + i * lds, lds, q + i * ldq, ldq, n, k, ldk, d, 2); break;
    case 1: qk_rows(fmt, s + i * lds, lds, q + i * ldq, ldq, n, k, ldk, d, 1); break;
    default: break;
    }
}

void kgp_qk_f32__avx512(float *s, long lds, const float *q, long ldq, long m, const float *k,
                        long ldk, long n, long d)
{
    qk(F32, s, lds, q, ldq, m, k, ldk, n, d);
}

void kgp_qk_bf16__avx512(float *s, long lds, const float *q, long ldq, long m, const kg_u16 *k,
                         long ldk, long n, long d)
{
    qk(BF16, s, lds, q, ldq, m, k, ldk, n, d);
}

void kgp_qk_f16__avx512(float *s, long lds, const float *q, long ldq, long m, const kg_u16 *k,
                        long ldk, long n, long d)
{
    qk(F16, s, lds, q, ldq, m, k, ldk, n, d);
}

void kgp_qk_e4m3__avx512(float *s, long lds, const float *q, long ldq, long m, const kg_u8 *k,
                         long ldk, long n, long d)
{
    qk(E4M3, s, lds, q, ldq, m, k, ldk, n, d);
}

/* Columns [t, t + 16 * TB) of R output rows (R <= 4, TB 1 or 2) over the n value rows. */
AI void pv_block(int fmt, float *o, long ldo, const float *p, long ldp, const void *v, long ldv,
                 long n, long t, int R, int TB)
{
    __m512 acc[4][2];
    #pragma GCC unroll 4
    for (int a = 0; a < R; a++)
        #pragma GCC unroll 4
        for (int b = 0; b < TB; b++)
            acc[a][b] = _mm512_loadu_ps(o + a * ldo + t + 16 * b);
    for (long j = 0; j < n; j++) {
        __m512 w[2];
        #pragma GCC unroll 4
        for (int b = 0; b < TB; b++)
            w[b] = widen16(fmt, elem(fmt, v, j * ldv + t + 16 * b));
        #pragma GCC unroll 4
        for (int a = 0; a < R; a++) {
            __m512 x = _mm512_set1_ps(p[a * ldp + j]);
            #pragma GCC unroll 4
            for (int b = 0; b < TB; b++)
                acc[a][b] = _mm512_fmadd_ps(x, w[b], acc[a][b]);
        }
    }
    #pragma GCC unroll 4
    for (int a = 0; a < R; a++)
        #pragma GCC unroll 4
        for (int b = 0; b < TB; b++)
            _mm512_storeu_ps(o + a * ldo + t + 16 * b, acc[a][b]);
}

AI void pv_rows(int fmt, float *o, long ldo, const float *p, long ldp, const void *v, long ldv,
                long n, long d, int R)
{
    long t = 0;
    for (; t + 32 <= d; t += 32)
        pv_block(fmt, o, ldo, p, ldp, v, ldv, n, t, R, 2);
    if (t + 16 <= d)
        pv_block(fmt, o, ldo, p, ldp, v, ldv, n, t, R, 1);
}

/* As the AVX2 version: groups of PV_GROUP value rows, each prefetched row by row first (the
 * column-block order defeats the hardware prefetchers). */
enum { PV_GROUP = 64 };

AI void pv(int fmt, float *o, long ldo, const float *p, long ldp, long m, const void *v,
           long ldv, long n, long d)
{
    for (long j0 = 0; j0 < n; j0 += PV_GROUP) {
        long nj = n - j0 < PV_GROUP ? n - j0 : PV_GROUP;
        const void *vj = elem(fmt, v, j0 * ldv);
        if (j0 == 0)
            prefetch_rows(fmt, vj, ldv, 0, nj, d);
        prefetch_rows(fmt, vj, ldv, PV_GROUP, PV_GROUP, d);
        long i = 0;
        for (; i + 4 <= m; i += 4)
            pv_rows(fmt, o + i * ldo, ldo, p + i * ldp + j0, ldp, vj, ldv, nj, d, 4);
        switch (m - i) {
        case 3: pv_rows(fmt, o + i * ldo, ldo, p + i * ldp + j0, ldp, vj, ldv, nj, d, 3); break;
        case 2: pv_rows(fmt, o + i * ldo, ldo, p + i * ldp + j0, ldp, vj, ldv, nj, d, 2); break;
        case 1: pv_rows(fmt, o + i * ldo, ldo, p + i * ldp + j0, ldp, vj, ldv, nj, d, 1); break;
        default: break;
        }
    }
}

/* The columns past the last whole 16 go to the AVX2 version (8 wide, then the reference). */
void kgp_pv_bf16__avx512(float *o, long ldo, const float *p, long ldp, long m, const kg_u16 *v,
                         long ldv, long n, long d)
{
    pv(BF16, o, ldo, p, ldp, m, v, ldv, n, d);
    long t = d / 16 * 16;
    if (t < d)
        kgp_pv_bf16__avx2(o + t, ldo, p, ldp, m, v + t, ldv, n, d - t);
}

void kgp_pv_f16__avx512(float *o, long ldo, const float *p, long ldp, long m, const kg_u16 *v,
                        long ldv, long n, long d)
{
    pv(F16, o, ldo, p, ldp, m, v, ldv, n, d);
    long t = d / 16 * 16;
    if (t < d)
        kgp_pv_f16__avx2(o + t, ldo, p, ldp, m, v + t, ldv, n, d - t);
}

void kgp_pv_e4m3__avx512(float *o, long ldo, const float *p, long ldp, long m, const kg_u8 *v,
                         long ldv, long n, long d)
{
    pv(E4M3, o, ldo, p, ldp, m, v, ldv, n, d);
    long t = d / 16 * 16;
    if (t < d)
        kgp_pv_e4m3__avx2(o + t, ldo, p, ldp, m, v + t, ldv, n, d - t);
}

/* ---- attention's tile product (kgp_tile_fma_f32) ----------------------------------------- */

/* Rows [0, R) x columns [t, t + 16 * V) of o, V = 1 or 2 zmm: the AVX2 register tile at twice
 * the width (2R lane-wise fma chains over n ascending, the reference's bits). Zen 5 runs
 * 512-bit FMAs at full width, so this doubles the product there; on Zen 4 (two halves) it
 * matches the AVX2 tile. */
AI void tile(float *o, long ldo, int from_o, const float *p, long ldp, const float *v, long ldv,
             long n, long t, int R, int V)
{
    __m512 acc[6][2];
    #pragma GCC unroll 8
    for (int a = 0; a < R; a++)
        #pragma GCC unroll 4
        for (int b = 0; b < V; b++)
            acc[a][b] = from_o ? _mm512_loadu_ps(o + a * ldo + t + 16 * b) : _mm512_setzero_ps();
    for (long j = 0; j < n; j++) {
        __m512 w0 = _mm512_loadu_ps(v + j * ldv + t);
        __m512 w1 = V > 1 ? _mm512_loadu_ps(v + j * ldv + t + 16) : w0;
        #pragma GCC unroll 8
        for (int a = 0; a < R; a++) {
            __m512 x = _mm512_set1_ps(p[a * ldp + j]);
            acc[a][0] = _mm512_fmadd_ps(x, w0, acc[a][0]);
            if (V > 1)
                acc[a][1] = _mm512_fmadd_ps(x, w1, acc[a][1]);
        }
    }
    #pragma GCC unroll 8
    for (int a = 0; a < R; a++)
        #pragma GCC unroll 4
        for (int b = 0; b < V; b++)
            _mm512_storeu_ps(o + a * ldo + t + 16 * b, acc[a][b]);
}

/* All whole zmm of columns for R rows. */
AI void tile_rows(float *o, long ldo, int acc, const float *p, long ldp, const float *v,
                  long ldv, long n, long d, int R)
{
    long t = 0;
    for (; t + 32 <= d; t += 32)
        tile(o, ldo, acc, p, ldp, v, ldv, n, t, R, 2);
    if (t + 16 <= d)
        tile(o, ldo, acc, p, ldp, v, ldv, n, t, R, 1);
}

/* The columns past the last whole 16 go to the AVX2 version (8 wide, then the reference). */
void kgp_tile_fma_f32__avx512(float *o, long ldo, int acc, const float *p, long ldp, long m,
                              const float *v, long ldv, long n, long d)
{
    long i = 0;
    for (; i + 6 <= m; i += 6)
        tile_rows(o + i * ldo, ldo, acc, p + i * ldp, ldp, v, ldv, n, d, 6);
    switch (m - i) { /* the last 1 to 5 rows in one tile */
    case 5: tile_rows(o + i * ldo, ldo, acc, p + i * ldp, ldp, v, ldv, n, d, 5); break;
    case 4: tile_rows(o + i * ldo, ldo, acc, p + i * ldp, ldp, v, ldv, n, d, 4); break;
    case 3: tile_rows(o + i * ldo, ldo, acc, p + i * ldp, ldp, v, ldv, n, d, 3); break;
    case 2: tile_rows(o + i * ldo, ldo, acc, p + i * ldp, ldp, v, ldv, n, d, 2); break;
    case 1: tile_rows(o + i * ldo, ldo, acc, p + i * ldp, ldp, v, ldv, n, d, 1); break;
    default: break;
    }
    long t = d / 16 * 16;
    if (t < d)
        kgp_tile_fma_f32__avx2(o + t, ldo, acc, p, ldp, m, v + t, ldv, n, d - t);
}
