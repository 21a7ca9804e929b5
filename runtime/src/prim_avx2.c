/* prim_avx2.c: AVX2 (+ FMA, F16C) versions of the element-wise and reduction primitives, 8 fp32
 * lanes. The primitives themselves live in prim_simd_body.h, shared with prim_avx512_ew.c; this
 * file supplies its vector vocabulary. This file alone is built with -mavx2 -mfma -mf16c; prim.c
 * calls it only when cpu.c reports AVX2 with FMA. The AVX2 GEMM is prim_avx2_gemm.c. */
#include <immintrin.h>
#include <string.h>

#include "kgen/abi.h"
#include "kgen/dtype.h"
#include "prim.h"

#define W 8
#define FN(name) kgp_##name##__avx2

typedef __m256 vf;
typedef __m256i vi;
typedef __m256i vm; /* all-ones / all-zeros 32-bit lanes */

static inline vf ld(const float *p) { return _mm256_loadu_ps(p); }
static inline void st(float *p, vf v) { _mm256_storeu_ps(p, v); }
/* the first n < W lanes (vmaskmovps: nothing past them read or written; the rest loaded as 0) */
static inline __m256i first_n(long n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline vf ldn(const float *p, long n) { return _mm256_maskload_ps(p, first_n(n)); }
static inline void stn(float *p, vf v, long n) { _mm256_maskstore_ps(p, first_n(n), v); }
static inline vf set1(float s) { return _mm256_set1_ps(s); }
static inline vf vadd(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf vsub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf vmul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf vmax(vf a, vf b) { return _mm256_max_ps(a, b); }
static inline vf vmin(vf a, vf b) { return _mm256_min_ps(a, b); }
static inline vf vdiv(vf a, vf b) { return _mm256_div_ps(a, b); }
static inline vf vfma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline vf vabs(vf a) { return _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff))); }

static inline vi bits(vf a) { return _mm256_castps_si256(a); }
static inline vf fbits(vi a) { return _mm256_castsi256_ps(a); }
static inline vi iset1(int v) { return _mm256_set1_epi32(v); }
static inline vi iand(vi a, vi b) { return _mm256_and_si256(a, b); }
static inline vi ior(vi a, vi b) { return _mm256_or_si256(a, b); }
static inline vi iadd(vi a, vi b) { return _mm256_add_epi32(a, b); }
static inline vi isub(vi a, vi b) { return _mm256_sub_epi32(a, b); }
#define srli(a, n) _mm256_srli_epi32(a, n)
#define slli(a, n) _mm256_slli_epi32(a, n)

static inline vm igt(vi a, vi b) { return _mm256_cmpgt_epi32(a, b); }
static inline vi isel(vm m, vi a, vi b) { return _mm256_blendv_epi8(b, a, m); }
static inline vf fsel(vm m, vf a, vf b) { return _mm256_blendv_ps(b, a, _mm256_castsi256_ps(m)); }
static inline vm flt(vf a, vf b) { return _mm256_castps_si256(_mm256_cmp_ps(a, b, _CMP_LT_OQ)); }
/* nearest integer (even on ties), and p * 2^n for integral n in [-126, 127] (lse's exp) */
static inline vf vround(vf a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static inline vf vscalef(vf p, vf n)
{
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}
/* y - floor(y) and p * 2^floor(y) rounded once, for y clamped to +-KGR_EXP2_CLAMP as the
 * reference does (a NaN kept: vmaxps/vminps return the second operand): 2^n in two factors
 * 2^(n >> 1) 2^(n - (n >> 1)), each a normal number, so only the second product rounds */
static inline vf exp2_clamp(vf y)
{
    return _mm256_min_ps(_mm256_set1_ps(KGR_EXP2_CLAMP), _mm256_max_ps(_mm256_set1_ps(-KGR_EXP2_CLAMP), y));
}
static inline vf vfrac(vf y)
{
    y = exp2_clamp(y);
    return _mm256_sub_ps(y, _mm256_floor_ps(y));
}
static inline vf vldexp(vf p, vf y)
{
    __m256i n = _mm256_cvttps_epi32(_mm256_floor_ps(exp2_clamp(y))), h = _mm256_srai_epi32(n, 1);
    __m256i b = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h, b), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(n, h), b), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}
/* 2W bf16 widened into two vectors in vpunpck{l,h}wd's lane order, for sums and maxima */
static inline void ld2_bf16(const kg_u16 *p, vf *a, vf *b)
{
    __m256i v = _mm256_loadu_si256((const __m256i *)p), z = _mm256_setzero_si256();
    *a = _mm256_castsi256_ps(_mm256_unpacklo_epi16(z, v));
    *b = _mm256_castsi256_ps(_mm256_unpackhi_epi16(z, v));
}
static inline vm fgt(vf a, vf b) { return _mm256_castps_si256(_mm256_cmp_ps(a, b, _CMP_GT_OQ)); }
static inline vm isnanv(vf a) { return _mm256_castps_si256(_mm256_cmp_ps(a, a, _CMP_UNORD_Q)); }
static inline int anym(vm m) { return !_mm256_testz_si256(m, m); }

static inline vi ld16(const kg_u16 *p) { return _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)); }
/* every lane holds a value below 2^16, so the unsigned-saturating pack is a truncation */
static inline void st16(kg_u16 *p, vi v)
{
    _mm_storeu_si128((__m128i *)p, _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
}
/* through a copy on the stack: AVX2 has no 16-bit masked loads and stores */
static inline vi ld16_in(const kg_u16 *x, long j, long w)
{
    kg_u16 t[W] = { 0 };
    for (long i = 0; i < W; i++)
        if (j + i >= 0 && j + i < w)
            t[i] = x[j + i];
    return ld16(t);
}
static inline void st16n(kg_u16 *p, vi v, long n)
{
    kg_u16 t[W];
    st16(t, v);
    memcpy(p, t, (size_t)n * sizeof *t);
}
/* every lane holds a value below 2^8: the two unsigned-saturating packs truncate */
static inline void st8(kg_u8 *p, vi v)
{
    __m128i h = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    _mm_storel_epi64((__m128i *)p, _mm_packus_epi16(h, h));
}
static inline vf ld_ph(const kg_u16 *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
static inline vi ps2ph(vf v)
{
    return _mm256_cvtepu16_epi32(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
static inline vf ph_to_ps(vi h)
{
    return _mm256_cvtph_ps(_mm_packus_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1)));
}

static inline vf dup2(const float *c)
{
    const __m256i idx = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
    return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(c)), idx);
}
static inline vf swap2(vf v) { return _mm256_permute_ps(v, 0xb1); }
static inline vf subadd(vf a, vf b) { return _mm256_addsub_ps(a, b); }

static inline vi imin(vi a, vi b) { return _mm256_min_epi32(a, b); }

/* no bf16 conversion instruction: prim_simd_body.h's integer rounding runs */
static inline int st_bf16_hw(kg_u16 *p, vf v) { (void)p, (void)v; return 0; }
static inline int round_bf16_hw(vf v, vf *r) { (void)v, (void)r; return 0; }

static inline float hsum(vf v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline float hmax(vf v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 8 x 8 transpose: rows r[i] become columns (lane k of r[c] is old r[k][c]). Pairs of rows
 * interleave, quads of rows gather a column in each 128-bit half, then the halves combine. */
static inline void transpose(vf r[W])
{
    vf t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) { /* half k of u[i + c]: column 4k + c of rows i..i+3 */
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
    for (int c = 0; c < 4; c++) {
        r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
        r[4 + c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
    }
}

/* doubles, W / 2 lanes: the activations run in double (prim_simd_body.h) */
typedef __m256d vd;
typedef __m256d vmd; /* all-ones / all-zeros 64-bit lanes */
static inline vd dlo(vf v) { return _mm256_cvtps_pd(_mm256_castps256_ps128(v)); }
static inline vd dhi(vf v) { return _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)); }
static inline vf fpack(vd lo, vd hi)
{
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm256_cvtpd_ps(lo)), _mm256_cvtpd_ps(hi), 1);
}
static inline vd dset1(double s) { return _mm256_set1_pd(s); }
static inline vd dadd(vd a, vd b) { return _mm256_add_pd(a, b); }
static inline vd dsub(vd a, vd b) { return _mm256_sub_pd(a, b); }
static inline vd dmul(vd a, vd b) { return _mm256_mul_pd(a, b); }
static inline vd ddiv(vd a, vd b) { return _mm256_div_pd(a, b); }
static inline vd dabs(vd a) { return _mm256_andnot_pd(_mm256_set1_pd(-0.0), a); }
static inline vmd dlt(vd a, vd b) { return _mm256_cmp_pd(a, b, _CMP_LT_OQ); }
static inline vmd dgt(vd a, vd b) { return _mm256_cmp_pd(a, b, _CMP_GT_OQ); }
static inline vd dsel(vmd m, vd a, vd b) { return _mm256_blendv_pd(b, a, m); }
static inline vi dbits(vd a) { return _mm256_castpd_si256(a); }
static inline vd dfbits(vi a) { return _mm256_castsi256_pd(a); }
static inline vi iadd64(vi a, long long b) { return _mm256_add_epi64(a, _mm256_set1_epi64x(b)); }
#define slli64(a, n) _mm256_slli_epi64(a, n)

#include "prim_simd_body.h"
#include "prim_simd_attn_body.h"
#include "prim_simd_loss_body.h"
