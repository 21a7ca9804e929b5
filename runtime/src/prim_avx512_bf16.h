/* prim_avx512_bf16.h: when the AVX-512 bf16 conversion may stand in for kg_f32_to_bf16, for the
 * two files built with AVX-512 (prim_avx512.c's GEMM store, prim_avx512_ew.c's conversions). */
#ifndef KGEN_RT_PRIM_AVX512_BF16_H
#define KGEN_RT_PRIM_AVX512_BF16_H

#include <immintrin.h>

/* vcvtneps2bf16 rounds to nearest even as kg_f32_to_bf16 does, but it flushes subnormals to
 * zero and keeps NaN payloads, so it is used only when no lane of v is NaN or subnormal
 * (fpclass 0x01 QNaN, 0x80 SNaN, 0x20 denormal); other vectors go lane by lane. */
static inline int kgr_bf16_hw_ok(__m512 v)
{
    return _mm512_fpclass_ps_mask(v, 0xa1) == 0;
}

#endif
