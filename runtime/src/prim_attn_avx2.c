/* prim_attn_avx2.c: kgp_tile_fma_f32 on AVX2 + FMA: register tiles of R rows (up to 6) by 16
 * columns, 2R accumulators each one lane-wise fma chain over n ascending (vfmadd rounds once,
 * as fmaf), so the bits are the scalar reference's. Each step loads two vectors of a v row and
 * broadcasts R values of p: 2R FMAs for R + 2 loads, enough independent chains to keep both FMA
 * pipes busy at R = 6. Columns past the last whole 8 go to the reference.
 * Also decode's passes over stored key and value rows, kgp_qk_* and kgp_pv_*: each row widened
 * once (exactly) inside the loop that uses it for up to 4 query rows, no fp32 copy of the
 * cache. */
#include <immintrin.h>
#include <math.h>

#include "kgen/dtype.h"
#include "prim.h"
#include "prim_attn.h"
#include "prim_avx2_fp8.h"

/* Rows [0, R) x columns [t, t + 8 * V) of o, V = 1 or 2 vectors. */
static inline __attribute__((always_inline)) void tile(float *o, long ldo, int from_o,
    const float *p, long ldp, const float *v, long ldv, long n, long t, int R, int V)
{
    __m256 acc[6][2];
#pragma GCC unroll 6
    for (int a = 0; a < R; a++)
#pragma GCC unroll 2
        for (int b = 0; b < V; b++)
            acc[a][b] = from_o ? _mm256_loadu_ps(o + a * ldo + t + 8 * b) : _mm256_setzero_ps();
    for (long j = 0; j < n; j++) {
        __m256 w0 = _mm256_loadu_ps(v + j * ldv + t);
        __m256 w1 = V > 1 ? _mm256_loadu_ps(v + j * ldv + t + 8) : w0;
#pragma GCC unroll 6
        for (int a = 0; a < R; a++) {
            __m256 x = _mm256_broadcast_ss(p + a * ldp + j);
            acc[a][0] = _mm256_fmadd_ps(x, w0, acc[a][0]);
            if (V > 1)
                acc[a][1] = _mm256_fmadd_ps(x, w1, acc[a][1]);
        }
    }
#pragma GCC unroll 6
    for (int a = 0; a < R; a++)
#pragma GCC unroll 2
        for (int b = 0; b < V; b++)
            _mm256_storeu_ps(o + a * ldo + t + 8 * b, acc[a][b]);
}

/* All whole vectors of columns for R rows. */
static inline __attribute__((always_inline)) void rows(float *o, long ldo, int acc,
    const float *p, long ldp, const float *v, long ldv, long n, long d, int R)
{
    long t = 0;
    for (; t + 16 <= d; t += 16)
        tile(o, ldo, acc, p, ldp, v, ldv, n, t, R, 2);
    if (t + 8 <= d)
        tile(o, ldo, acc, p, ldp, v, ldv, n, t, R, 1);
}

void kgp_tile_fma_f32__avx2(float *o, long ldo, int acc, const float *p, long ldp, long m,
                            const float *v, long ldv, long n, long d)
{
    long i = 0;
    for (; i + 6 <= m; i += 6)
        rows(o + i * ldo, ldo, acc, p + i * ldp, ldp, v, ldv, n, d, 6);
    switch (m - i) { /* the last 1 to 5 rows in one tile */
    case 5: rows(o + i * ldo, ldo, acc, p + i * ldp, ldp, v, ldv, n, d, 5); break;
    case 4: rows(o + i * ldo, ldo, acc, p + i * ldp, ldp, v, ldv, n, d, 4); break;
    case 3: rows(o + i * ldo, ldo, acc, p + i * ldp, ldp, v, ldv, n, d, 3); break;
    case 2: rows(o + i * ldo, ldo, acc, p + i * ldp, ldp, v, ldv, n, d, 2); break;
    case 1: rows(o + i * ldo, ldo, acc, p + i * ldp, ldp, v, ldv, n, d, 1); break;
    default: break;
    }
    long t = d / 8 * 8;
    if (t < d)
        kgp_tile_fma_f32__scalar(o + t, ldo, acc, p, ldp, m, v + t, ldv, n, d - t);
}

/* ---- decode's score and value passes on stored rows (kgp_qk_*, kgp_pv_*) ------------------ */

/* The stored format of the key and value rows. E4M3S: e4m3 codes known to be finite, widened
 * to their value / 2^8 (fp16's reading of the code, no multiply), the other operand scaled by
 * 2^8 instead: (2^8 x) (y / 2^8) is x y exactly, so every fmaf rounds the same (see e4m3s_f16,
 * scaled_rows). */
enum { F32, BF16, F16, E4M3, E4M3S };

static inline __attribute__((always_inline)) const void *elem(int fmt, const void *x, long e)
{
    return (const char *)x + e * (fmt == F32 ? 4 : fmt >= E4M3 ? 1 : 2);
}

/* Element e of a row, exactly widened (the scalar references' conversions). */
static inline __attribute__((always_inline)) float widen1(int fmt, const void *x, long e)
{
    if (fmt == F32)
        return ((const float *)x)[e];
    if (fmt == BF16)
        return kg_bf16_to_f32(((const kg_u16 *)x)[e]);
    if (fmt == F16)
        return kg_f16_to_f32(((const kg_u16 *)x)[e]);
    if (fmt == E4M3S)
        return kg_e4m3_to_f32(((const kg_u8 *)x)[e]) * 0x1p-8f;
    return kg_e4m3_to_f32(((const kg_u8 *)x)[e]);
}

/* fp16 bits of 16 finite e4m3 codes (sign-extended to 16-bit lanes): the value / 2^8, as
 * fp8_to_f16 without its lift of exponent 15. */
static inline __attribute__((always_inline)) __m256i e4m3s_f16(__m256i c)
{
    return _mm256_and_si256(_mm256_slli_epi16(c, 7), _mm256_set1_epi16((short)0xbf80));
}

/* 8 consecutive elements as fp32, exactly: bf16 by a shift, fp16 by vcvtph2ps, e4m3 through
 * fp16 bits. */
static inline __attribute__((always_inline)) __m256 widen8(int fmt, const void *x)
{
    if (fmt == F32)
        return _mm256_loadu_ps(x);
    if (fmt == BF16)
        return _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)x)), 16));
    if (fmt == F16)
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)x));
    if (fmt == E4M3S)
        return _mm256_cvtph_ps(_mm256_castsi256_si128(
            e4m3s_f16(_mm256_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)x)))));
    __m256i h = fp8_to_f16(KG_WT_E4M3, _mm256_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)x)));
    return _mm256_mul_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(h)), _mm256_set1_ps(256.0f));
}

/* 16 consecutive elements: *a the first 8, *b the next 8 (e4m3 widens 16 codes at once). */
static inline __attribute__((always_inline)) void widen16(int fmt, const void *x, __m256 *a,
                                                          __m256 *b)
{
    if (fmt == E4M3S) {
        __m256i h = e4m3s_f16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x)));
        *a = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
        *b = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
        return;
    }
    if (fmt != E4M3) {
        *a = widen8(fmt, x), *b = widen8(fmt, elem(fmt, x, 8));
        return;
    }
    __m256i h = fp8_to_f16(KG_WT_E4M3, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x)));
    *a = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(h)), _mm256_set1_ps(256.0f));
    *b = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(h, 1)), _mm256_set1_ps(256.0f));
}

/* Scores of R query rows (R <= 4) against KB keys (1 or 2): 4 x KB lane-chain accumulators,
 * each key's 16 elements widened once for the R rows; three hadds give each row's
 * ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)), the reference's order. */
static inline __attribute__((always_inline)) void qk_block(int fmt, float *s, long lds,
    const float *q, long ldq, const void *k, long ldk, long d, int R, int KB)
{
    __m256 acc[4][2];
#pragma GCC unroll 4
    for (int a = 0; a < 4; a++)
        acc[a][0] = acc[a][1] = _mm256_setzero_ps();
    long t = 0;
    for (; t + 16 <= d; t += 16) {
        __m256 kv[2][2];
#pragma GCC unroll 2
        for (int b = 0; b < KB; b++)
            widen16(fmt, elem(fmt, k, b * ldk + t), &kv[b][0], &kv[b][1]);
#pragma GCC unroll 4
        for (int a = 0; a < R; a++) {
            __m256 q0 = _mm256_loadu_ps(q + a * ldq + t);
            __m256 q1 = _mm256_loadu_ps(q + a * ldq + t + 8);
#pragma GCC unroll 2
            for (int b = 0; b < KB; b++)
                acc[a][b] = _mm256_fmadd_ps(q1, kv[b][1],
                                            _mm256_fmadd_ps(q0, kv[b][0], acc[a][b]));
        }
    }
    if (t + 8 <= d) {
#pragma GCC unroll 2
        for (int b = 0; b < KB; b++) {
            __m256 kv = widen8(fmt, elem(fmt, k, b * ldk + t));
#pragma GCC unroll 4
            for (int a = 0; a < R; a++)
                acc[a][b] = _mm256_fmadd_ps(_mm256_loadu_ps(q + a * ldq + t), kv, acc[a][b]);
        }
        t += 8;
    }
#pragma GCC unroll 2
    for (int b = 0; b < KB; b++) {
        __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(acc[0][b], acc[1][b]),
                                  _mm256_hadd_ps(acc[2][b], acc[3][b]));
        float r[4];
        _mm_storeu_ps(r, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
        for (int a = 0; a < R; a++) {
            for (long u = t; u < d; u++)
                r[a] = fmaf(q[a * ldq + u], widen1(fmt, k, b * ldk + u), r[a]);
            s[a * lds + b] = r[a];
        }
    }
}

/* Key rows prefetched ahead of the pair being scored: a prefetch never faults, so rows past
 * the caller's n (the next tile's, in a flat cache) cost nothing when absent. */
enum { QK_AHEAD = 16 };

static inline __attribute__((always_inline)) void qk_rows(int fmt, float *s, long lds,
    const float *q, long ldq, long n, const void *k, long ldk, long d, int R)
{
    long row_bytes = (const char *)elem(fmt, k, d) - (const char *)k;
    long j = 0;
    for (; j + 2 <= n; j += 2) {
        for (long r = j + QK_AHEAD; r < j + QK_AHEAD + 2; r++)
            for (long b = 0; b < row_bytes; b += 64)
                _mm_prefetch((const char *)elem(fmt, k, r * ldk) + b, _MM_HINT_T0);
        qk_block(fmt, s + j, lds, q, ldq, elem(fmt, k, j * ldk), ldk, d, R, 2);
    }
    if (j < n)
        qk_block(fmt, s + j, lds, q, ldq, elem(fmt, k, j * ldk), ldk, d, R, 1);
}

/* R = r (1 to 4) rows as a constant. */
static inline __attribute__((always_inline)) void qk_some_rows(int fmt, float *s, long lds,
    const float *q, long ldq, long n, const void *k, long ldk, long d, long r)
{
    switch (r) {
    case 4: qk_rows(fmt, s, lds, q, ldq, n, k, ldk, d, 4); break;
    case 3: qk_rows(fmt, s, lds, q, ldq, n, k, ldk, d, 3); break;
    case 2: qk_rows(fmt, s, lds, q, ldq, n, k, ldk, d, 2); break;
    default: qk_rows(fmt, s, lds, q, ldq, n, k, ldk, d, 1); break;
    }
}

/* The fast e4m3 path's limit: rows of at most E4M3S_D elements are scaled on the stack. */
enum { E4M3S_D = 256 };

/* Whether n rows of d e4m3 codes (row stride ld) are all finite (magnitude code < 0x78). The
 * scan is also the rows' first touch, bringing them into L1 for the pass. */
static int e4m3_finite(const kg_u8 *x, long ld, long n, long d)
{
    __m256i bad = _mm256_setzero_si256();
    for (long j = 0; j < n; j++) {
        const kg_u8 *r = x + j * ld;
        long t = 0;
        for (; t + 32 <= d; t += 32) {
            __m256i c = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(r + t)),
                                         _mm256_set1_epi8(0x7f));
            bad = _mm256_or_si256(bad, _mm256_cmpgt_epi8(c, _mm256_set1_epi8(0x77)));
        }
        for (; t < d; t++)
            if ((r[t] & 0x7f) >= 0x78)
                return 0;
    }
    return _mm256_testz_si256(bad, bad);
}

/* y [r, n] = 2^8 x [r, n] (row stride ldx; y's is n); 0 if some finite |x| >= 2^120, whose
 * scaled value would overflow where x did not (the exact path runs instead). */
static int scaled_rows(float *y, const float *x, long ldx, long r, long n)
{
    const __m256 lo = _mm256_set1_ps(0x1p120f), hi = _mm256_set1_ps(0x1.fffffep127f);
    const __m256 abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 bad = _mm256_setzero_ps();
    for (long i = 0; i < r; i++) {
        long t = 0;
        for (; t + 8 <= n; t += 8) {
            __m256 v = _mm256_loadu_ps(x + i * ldx + t), a = _mm256_and_ps(v, abs);
            bad = _mm256_or_ps(bad, _mm256_and_ps(_mm256_cmp_ps(a, lo, _CMP_GE_OQ),
                                                  _mm256_cmp_ps(a, hi, _CMP_LE_OQ)));
            _mm256_storeu_ps(y + i * n + t, _mm256_mul_ps(v, _mm256_set1_ps(256.0f)));
        }
        for (; t < n; t++) {
            float v = x[i * ldx + t], a = fabsf(v);
            if (a >= 0x1p120f && a <= 0x1.fffffep127f)
                return 0;
            y[i * n + t] = v * 256.0f;
        }
    }
    return _mm256_testz_ps(bad, bad);
}

/* Rows in blocks of 4, each key row widened once per block (d = 128, the 4 query heads of a
 * KV head in one block: once). Finite e4m3 keys take the E4M3S path (q scaled instead). */
static inline __attribute__((always_inline)) void qk(int fmt, float *s, long lds,
    const float *q, long ldq, long m, const void *k, long ldk, long n, long d)
{
    int fast = fmt == E4M3 && d <= E4M3S_D && e4m3_finite(k, ldk, n, d);
    for (long i = 0; i < m; i += 4) {
        long r = m - i < 4 ? m - i : 4;
        float qs[4 * E4M3S_D];
        if (fast && scaled_rows(qs, q + i * ldq, ldq, r, d))
            qk_some_rows(E4M3S, s + i * lds, lds, qs, d, n, k, ldk, d, r);
        else
            qk_some_rows(fmt, s + i * lds, lds, q + i * ldq, ldq, n, k, ldk, d, r);
    }
}

void kgp_qk_f32__avx2(float *s, long lds, const float *q, long ldq, long m, const float *k,
                      long ldk, long n, long d)
{
    qk(F32, s, lds, q, ldq, m, k, ldk, n, d);
}

void kgp_qk_bf16__avx2(float *s, long lds, const float *q, long ldq, long m, const kg_u16 *k,
                       long ldk, long n, long d)
{
    qk(BF16, s, lds, q, ldq, m, k, ldk, n, d);
}

void kgp_qk_f16__avx2(float *s, long lds, const float *q, long ldq, long m, const kg_u16 *k,
                      long ldk, long n, long d)
{
    qk(F16, s, lds, q, ldq, m, k, ldk, n, d);
}

void kgp_qk_e4m3__avx2(float *s, long lds, const float *q, long ldq, long m, const kg_u8 *k,
                       long ldk, long n, long d)
{
    qk(E4M3, s, lds, q, ldq, m, k, ldk, n, d);
}

/* Columns [t, t + 8 * TB) of R output rows (R <= 4, TB 1 or 2) over the n value rows: each
 * value vector widened once for the R rows, each lane the reference's fmaf chain over j. */
static inline __attribute__((always_inline)) void pv_block(int fmt, float *o, long ldo,
    const float *p, long ldp, const void *v, long ldv, long n, long t, int R, int TB)
{
    __m256 acc[4][2];
#pragma GCC unroll 4
    for (int a = 0; a < R; a++)
#pragma GCC unroll 2
        for (int b = 0; b < TB; b++)
            acc[a][b] = _mm256_loadu_ps(o + a * ldo + t + 8 * b);
    for (long j = 0; j < n; j++) {
        __m256 w0, w1;
        if (TB == 2)
            widen16(fmt, elem(fmt, v, j * ldv + t), &w0, &w1);
        else
            w0 = w1 = widen8(fmt, elem(fmt, v, j * ldv + t));
#pragma GCC unroll 4
        for (int a = 0; a < R; a++) {
            __m256 x = _mm256_broadcast_ss(p + a * ldp + j);
            acc[a][0] = _mm256_fmadd_ps(x, w0, acc[a][0]);
            if (TB == 2)
                acc[a][1] = _mm256_fmadd_ps(x, w1, acc[a][1]);
        }
    }
#pragma GCC unroll 4
    for (int a = 0; a < R; a++)
#pragma GCC unroll 2
        for (int b = 0; b < TB; b++)
            _mm256_storeu_ps(o + a * ldo + t + 8 * b, acc[a][b]);
}

static inline __attribute__((always_inline)) void pv_rows(int fmt, float *o, long ldo,
    const float *p, long ldp, const void *v, long ldv, long n, long d, int R)
{
    long t = 0;
    for (; t + 16 <= d; t += 16)
        pv_block(fmt, o, ldo, p, ldp, v, ldv, n, t, R, 2);
    if (t + 8 <= d)
        pv_block(fmt, o, ldo, p, ldp, v, ldv, n, t, R, 1);
}

/* R = r (1 to 4) rows as a constant. */
static inline __attribute__((always_inline)) void pv_some_rows(int fmt, float *o, long ldo,
    const float *p, long ldp, const void *v, long ldv, long n, long d, long r)
{
    switch (r) {
    case 4: pv_rows(fmt, o, ldo, p, ldp, v, ldv, n, d, 4); break;
    case 3: pv_rows(fmt, o, ldo, p, ldp, v, ldv, n, d, 3); break;
    case 2: pv_rows(fmt, o, ldo, p, ldp, v, ldv, n, d, 2); break;
    default: pv_rows(fmt, o, ldo, p, ldp, v, ldv, n, d, 1); break;
    }
}

/* Value rows are consumed 16 columns at a time down all the rows of a group, a strided order
 * the hardware prefetchers follow poorly (the pass ran at 0.6 of the read probe); a group is
 * prefetched row by row first, PV_GROUP rows of at most 256 bytes staying well inside L1.
 * Finite e4m3 groups take the E4M3S path (p scaled instead). */
enum { PV_GROUP = 64 };

/* Rows in blocks of 4 over groups of value rows in order (o accumulates, so each element's
 * chain still runs over j ascending); the last d % 8 columns go to the reference. */
static inline __attribute__((always_inline)) void pv(int fmt, float *o, long ldo,
    const float *p, long ldp, long m, const void *v, long ldv, long n, long d)
{
    long row_bytes = (const char *)elem(fmt, v, d) - (const char *)v;
    for (long j0 = 0; j0 < n; j0 += PV_GROUP) {
        long nj = n - j0 < PV_GROUP ? n - j0 : PV_GROUP;
        const void *vj = elem(fmt, v, j0 * ldv);
        for (long j = 0; j < nj; j++)
            for (long b = 0; b < row_bytes; b += 64)
                _mm_prefetch((const char *)elem(fmt, vj, j * ldv) + b, _MM_HINT_T0);
        int fast = fmt == E4M3 && e4m3_finite(vj, ldv, nj, d);
        for (long i = 0; i < m; i += 4) {
            long r = m - i < 4 ? m - i : 4;
            float ps[4 * PV_GROUP];
            if (fast && scaled_rows(ps, p + i * ldp + j0, ldp, r, nj))
                pv_some_rows(E4M3S, o + i * ldo, ldo, ps, nj, vj, ldv, nj, d, r);
            else
                pv_some_rows(fmt, o + i * ldo, ldo, p + i * ldp + j0, ldp, vj, ldv, nj, d, r);
        }
    }
}

void kgp_pv_bf16__avx2(float *o, long ldo, const float *p, long ldp, long m, const kg_u16 *v,
                       long ldv, long n, long d)
{
    pv(BF16, o, ldo, p, ldp, m, v, ldv, n, d);
    long t = d / 8 * 8;
    if (t < d)
        kgp_pv_bf16__scalar(o + t, ldo, p, ldp, m, v + t, ldv, n, d - t);
}

void kgp_pv_f16__avx2(float *o, long ldo, const float *p, long ldp, long m, const kg_u16 *v,
                      long ldv, long n, long d)
{
    pv(F16, o, ldo, p, ldp, m, v, ldv, n, d);
    long t = d / 8 * 8;
    if (t < d)
        kgp_pv_f16__scalar(o + t, ldo, p, ldp, m, v + t, ldv, n, d - t);
}

void kgp_pv_e4m3__avx2(float *o, long ldo, const float *p, long ldp, long m, const kg_u8 *v,
                       long ldv, long n, long d)
{
    pv(E4M3, o, ldo, p, ldp, m, v, ldv, n, d);
    long t = d / 8 * 8;
    if (t < d)
        kgp_pv_e4m3__scalar(o + t, ldo, p, ldp, m, v + t, ldv, n, d - t);
}
