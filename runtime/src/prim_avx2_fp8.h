/* prim_avx2_fp8.h: fp8 codes to fp16 bits on AVX2, shared by the GEMM's weight loads
 * (prim_avx2_gemm.c) and attention's fp8 KV rows (prim_attn_avx2.c). Include after
 * <immintrin.h> and kgen/abi.h, in a file built with -mavx2 -mf16c. */
#ifndef KGEN_RT_PRIM_AVX2_FP8_H
#define KGEN_RT_PRIM_AVX2_FP8_H

/* 16 fp8 codes (sign-extended to 16-bit lanes) to fp16 bits. e5m2 is fp16's top byte. An e4m3
 * magnitude shifted into fp16's exponent and mantissa fields (mag << 7) is its value times
 * 2^(7 - 15) for every finite code, subnormals included (both formats put the same implicit
 * bit rule on exponent 0), and every such value is exact in fp16; the caller multiplies by 2^8.
 * e4m3's exponent 15 (inf, NaN: mag >= 0x78) and e4m3fn's 0x7f (NaN) are lifted to fp16's
 * exponent 31 by setting bit 14, which is exactly the carry of mag << 7 plus 0x400 (0x80). */
static inline __attribute__((always_inline)) __m256i fp8_to_f16(int fmt, __m256i c)
{
    if (fmt == KG_WT_E5M2)
        return _mm256_slli_epi16(c, 8);
    __m256i h = _mm256_and_si256(_mm256_slli_epi16(c, 7), _mm256_set1_epi16((short)0xbf80));
    __m256i carry = _mm256_add_epi16(h, _mm256_set1_epi16(fmt == KG_WT_E4M3 ? 0x400 : 0x80));
    return _mm256_or_si256(h, _mm256_and_si256(carry, _mm256_set1_epi16(0x4000)));
}

#endif
