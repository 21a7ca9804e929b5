/* prim_avx512_ew.c: AVX-512 (F, BW, VL, DQ) versions of the element-wise and reduction
 * primitives, 16 fp32 lanes. The primitives themselves live in prim_simd_body.h, shared with
 * prim_avx2.c; this file supplies its vector vocabulary. Built with the flags of prim_avx512.c;
 * prim.c calls it only when cpu.c reports AVX-512. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "kgen/abi.h"
#include "kgen/dtype.h"
#include "prim.h"
#include "prim_avx512_bf16.h"

#define W 16
#define FN(name) kgp_##name##__avx512

typedef __m512 vf;
typedef __m512i vi;
typedef __mmask16 vm;

static inline vf ld(const float *p) { return _mm512_loadu_ps(p); }
static inline void st(float *p, vf v) { _mm512_storeu_ps(p, v); }
/* the first n < W lanes (masked: nothing past them read or written; the rest loaded as 0) */
static inline __mmask16 first_n(long n) { return (__mmask16)((1u << n) - 1); }
static inline vf ldn(const float *p, long n) { return _mm512_maskz_loadu_ps(first_n(n), p); }
static inline void stn(float *p, vf v, long n) { _mm512_mask_storeu_ps(p, first_n(n), v); }
static inline vf set1(float s) { return _mm512_set1_ps(s); }
static inline vf vadd(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf vsub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf vmul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf vmax(vf a, vf b) { return _mm512_max_ps(a, b); }
static inline vf vmin(vf a, vf b) { return _mm512_min_ps(a, b); }
static inline vf vdiv(vf a, vf b) { return _mm512_div_ps(a, b); }
static inline vf vfma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline vf vabs(vf a) { return _mm512_abs_ps(a); }

static inline vi bits(vf a) { return _mm512_castps_si512(a); }
static inline vf fbits(vi a) { return _mm512_castsi512_ps(a); }
static inline vi iset1(int v) { return _mm512_set1_epi32(v); }
static inline vi iand(vi a, vi b) { return _mm512_and_si512(a, b); }
static inline vi ior(vi a, vi b) { return _mm512_or_si512(a, b); }
static inline vi iadd(vi a, vi b) { return _mm512_add_epi32(a, b); }
static inline vi isub(vi a, vi b) { return _mm512_sub_epi32(a, b); }
#define srli(a, n) _mm512_srli_epi32(a, n)
#define slli(a, n) _mm512_slli_epi32(a, n)

static inline vm igt(vi a, vi b) { return _mm512_cmpgt_epi32_mask(a, b); }
static inline vi isel(vm m, vi a, vi b) { return _mm512_mask_blend_epi32(m, b, a); }
static inline vf fsel(vm m, vf a, vf b) { return _mm512_mask_blend_ps(m, b, a); }
static inline vm flt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
/* nearest integer (even on ties), and p * 2^n for integral n (vscalefps) */
static inline vf vround(vf a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static inline vf vscalef(vf p, vf n) { return _mm512_scalef_ps(p, n); }
/* y - floor(y), exact (vreduceps rounding down, no fraction bits kept: 0 for +-inf), and
 * p * 2^floor(y) rounded once (vscalefps): the training rows' exponential (prim.h) needs no
 * clamp, beyond +-200 both give what the reference's clamped y gives */
static inline vf vfrac(vf y) { return _mm512_reduce_ps(y, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
static inline vf vldexp(vf p, vf y) { return _mm512_scalef_ps(p, y); }
/* 2W bf16 widened into two vectors in vpunpck{l,h}wd's lane order, for sums and maxima */
static inline void ld2_bf16(const kg_u16 *p, vf *a, vf *b)
{
    __m512i v = _mm512_loadu_si512(p), z = _mm512_setzero_si512();
    *a = _mm512_castsi512_ps(_mm512_unpacklo_epi16(z, v));
    *b = _mm512_castsi512_ps(_mm512_unpackhi_epi16(z, v));
}
static inline vm fgt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
static inline vm isnanv(vf a) { return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q); }
static inline int anym(vm m) { return m != 0; }

static inline vi ld16(const kg_u16 *p)
{
    return _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
}
static inline void st16(kg_u16 *p, vi v) { _mm256_storeu_si256((__m256i *)p, _mm512_cvtepi32_epi16(v)); }
/* masked: the lanes outside x[0, w) are neither read nor faulted on, wherever x + j points */
static inline vi ld16_in(const kg_u16 *x, long j, long w)
{
    long lo = j < 0 ? (-j < W ? -j : W) : 0, hi = w - j < W ? (w - j > lo ? w - j : lo) : W;
    const kg_u16 *p = (const kg_u16 *)((uintptr_t)x + (uintptr_t)j * sizeof *x);
    __mmask16 m = (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
    return _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
}
static inline void st16n(kg_u16 *p, vi v, long n)
{
    _mm256_mask_storeu_epi16(p, n < W ? first_n(n) : 0xffff, _mm512_cvtepi32_epi16(v));
}
static inline void st8(kg_u8 *p, vi v) { _mm_storeu_si128((__m128i *)p, _mm512_cvtepi32_epi8(v)); }
static inline vf ld_ph(const kg_u16 *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
static inline vi ps2ph(vf v)
{
    return _mm512_cvtepu16_epi32(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
static inline vf ph_to_ps(vi h) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(h)); }

static inline vf dup2(const float *c)
{
    const __m512i idx = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    return _mm512_permutexvar_ps(idx, _mm512_castps256_ps512(_mm256_loadu_ps(c)));
}
static inline vf swap2(vf v) { return _mm512_permute_ps(v, 0xb1); }
static inline vf subadd(vf a, vf b) { return _mm512_mask_sub_ps(_mm512_add_ps(a, b), 0x5555, a, b); }

static inline vi imin(vi a, vi b) { return _mm512_min_epi32(a, b); }

static inline int st_bf16_hw(kg_u16 *p, vf v)
{
    if (!kgr_bf16_hw_ok(v))
        return 0;
    _mm256_storeu_si256((__m256i *)p, (__m256i)_mm512_cvtneps_pbh(v));
    return 1;
}
static inline int round_bf16_hw(vf v, vf *r)
{
    if (!kgr_bf16_hw_ok(v))
        return 0;
    *r = _mm512_cvtpbh_ps(_mm512_cvtneps_pbh(v));
    return 1;
}

static inline float hsum(vf v) { return _mm512_reduce_add_ps(v); }
static inline float hmax(vf v) { return _mm512_reduce_max_ps(v); }

/* doubles, W / 2 lanes: the activations run in double (prim_simd_body.h) */
typedef __m512d vd;
typedef __mmask8 vmd;
static inline vd dlo(vf v) { return _mm512_cvtps_pd(_mm512_castps512_ps256(v)); }
static inline vd dhi(vf v) { return _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)); }
static inline vf fpack(vd lo, vd hi)
{
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(lo)), _mm512_cvtpd_ps(hi), 1);
}
static inline vd dset1(double s) { return _mm512_set1_pd(s); }
static inline vd dadd(vd a, vd b) { return _mm512_add_pd(a, b); }
static inline vd dsub(vd a, vd b) { return _mm512_sub_pd(a, b); }
static inline vd dmul(vd a, vd b) { return _mm512_mul_pd(a, b); }
static inline vd ddiv(vd a, vd b) { return _mm512_div_pd(a, b); }
static inline vd dabs(vd a) { return _mm512_abs_pd(a); }
static inline vmd dlt(vd a, vd b) { return _mm512_cmp_pd_mask(a, b, _CMP_LT_OQ); }
static inline vmd dgt(vd a, vd b) { return _mm512_cmp_pd_mask(a, b, _CMP_GT_OQ); }
static inline vd dsel(vmd m, vd a, vd b) { return _mm512_mask_blend_pd(m, b, a); }
static inline vi dbits(vd a) { return _mm512_castpd_si512(a); }
static inline vd dfbits(vi a) { return _mm512_castsi512_pd(a); }
static inline vi iadd64(vi a, long long b) { return _mm512_add_epi64(a, _mm512_set1_epi64(b)); }
#define slli64(a, n) _mm512_slli_epi64(a, n)

/* cumsum_rows_f32 takes the avx2 version (8 rows per group, ymm registers): on Zen 4 a 16 x 16
 * transpose in zmm registers (128 shuffles, one per cycle) costs more per element than two
 * 8 x 8 in ymm; measured in L1, 16 rows x 256, 2^20 elements: 190 us against 162 us. Every
 * AVX-512 CPU runs AVX2. */
#define KGR_CUMSUM_ROWS_ELSEWHERE
void kgp_cumsum_rows_f32__avx512(float *y, long ldy, const float *x, long ldx, float *carry,
                                 long rows, long n)
{
    kgp_cumsum_rows_f32__avx2(y, ldy, x, ldx, carry, rows, n);
}

/* transpose_f32 likewise takes the avx2 version's 8 x 8 blocks, for the same reason. Both
 * against the scalar blocks, one Zen 5 thread, best of 9 (the blockwise MM backward's shapes,
 * 7.3 MB each way): [128, 14336] to [14336, 128] 1.23-1.43 ms against 2.36-2.60; the other
 * way round 1.57-1.60 against 1.47-1.76 (both at DRAM's speed). */
#define KGR_TRANSPOSE_ELSEWHERE
void kgp_transpose_f32__avx512(float *y, long ldy, const float *x, long ldx, long rows, long cols)
{
    kgp_transpose_f32__avx2(y, ldy, x, ldx, rows, cols);
}

#include "prim_simd_body.h"
#include "prim_simd_attn_body.h"
#include "prim_simd_loss_body.h"
