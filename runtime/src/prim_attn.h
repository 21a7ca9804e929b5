/* prim_attn.h: attention's tile-level primitives (kgp_tile_fma_f32, kgp_qk_*, kgp_pv_* in
 * kgen/abi.h): their scalar references (prim_attn.c), AVX2 versions (prim_attn_avx2.c) and
 * AVX-512 versions (prim_attn_avx512.c). */
#ifndef KGEN_RT_PRIM_ATTN_H
#define KGEN_RT_PRIM_ATTN_H

#include "kgen/abi.h"

void kgp_tile_fma_f32__avx2(float *o, long ldo, int acc, const float *p, long ldp, long m,
                            const float *v, long ldv, long n, long d);
void kgp_qk_f32__avx2(float *s, long lds, const float *q, long ldq, long m, const float *k,
                      long ldk, long n, long d);
void kgp_qk_bf16__avx2(float *s, long lds, const float *q, long ldq, long m, const kg_u16 *k,
                       long ldk, long n, long d);
void kgp_qk_f16__avx2(float *s, long lds, const float *q, long ldq, long m, const kg_u16 *k,
                      long ldk, long n, long d);
void kgp_qk_e4m3__avx2(float *s, long lds, const float *q, long ldq, long m, const kg_u8 *k,
                       long ldk, long n, long d);
void kgp_pv_bf16__avx2(float *o, long ldo, const float *p, long ldp, long m, const kg_u16 *v,
                       long ldv, long n, long d);
void kgp_pv_f16__avx2(float *o, long ldo, const float *p, long ldp, long m, const kg_u16 *v,
                      long ldv, long n, long d);
void kgp_pv_e4m3__avx2(float *o, long ldo, const float *p, long ldp, long m, const kg_u8 *v,
                       long ldv, long n, long d);
void kgp_tile_fma_f32__avx512(float *o, long ldo, int acc, const float *p, long ldp, long m,
                              const float *v, long ldv, long n, long d);
void kgp_qk_f32__avx512(float *s, long lds, const float *q, long ldq, long m, const float *k,
                        long ldk, long n, long d);
void kgp_qk_bf16__avx512(float *s, long lds, const float *q, long ldq, long m, const kg_u16 *k,
                         long ldk, long n, long d);
void kgp_qk_f16__avx512(float *s, long lds, const float *q, long ldq, long m, const kg_u16 *k,
                        long ldk, long n, long d);
void kgp_qk_e4m3__avx512(float *s, long lds, const float *q, long ldq, long m, const kg_u8 *k,
                         long ldk, long n, long d);
void kgp_pv_bf16__avx512(float *o, long ldo, const float *p, long ldp, long m, const kg_u16 *v,
                         long ldv, long n, long d);
void kgp_pv_f16__avx512(float *o, long ldo, const float *p, long ldp, long m, const kg_u16 *v,
                        long ldv, long n, long d);
void kgp_pv_e4m3__avx512(float *o, long ldo, const float *p, long ldp, long m, const kg_u8 *v,
                         long ldv, long n, long d);

#endif
