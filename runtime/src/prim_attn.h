/* prim_attn.h: attention's tile-level primitive (kgp_tile_fma_f32 in kgen/abi.h): its scalar
 * reference (prim_attn.c) and its AVX2 version (prim_attn_avx2.c, also the AVX-512 table's:
 * a 6 x 16 register tile of FMAs is what both run best without bf16 operands). */
#ifndef KGEN_RT_PRIM_ATTN_H
#define KGEN_RT_PRIM_ATTN_H

void kgp_tile_fma_f32__avx2(float *o, long ldo, int acc, const float *p, long ldp, long m,
                            const float *v, long ldv, long n, long d);

#endif
