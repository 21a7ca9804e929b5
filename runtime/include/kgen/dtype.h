/* kgen/dtype.h: the number formats kgen reads and writes, one value at a time.
 * Plain integer C (no _Float16, no intrinsics) so tcc and gcc give the same bits; every encoder
 * rounds to nearest, ties to even, and keeps NaN a NaN. See shared/reference/common.md. */
#ifndef KGEN_DTYPE_H
#define KGEN_DTYPE_H

#include <stdint.h>

/* Element types of tensors crossing the kgen API (kernels, .npy files, exec). */
typedef enum kg_dtype {
    KG_F32 = 0,
    KG_BF16,
    KG_F16,
    KG_E4M3,    /* float8_e4m3: bias 7, max 240, exponent field 15 = inf (m=0) / NaN (m!=0) */
    KG_E4M3FN,  /* float8_e4m3fn (OCP): bias 7, max 448, no inf, 0x7f/0xff = NaN */
    KG_E5M2,    /* float8_e5m2: bias 15, max 57344, IEEE-like inf/NaN */
    KG_E2M1,    /* float4_e2m1fn: bias 1, max 6, no inf/NaN; two per byte, low nibble first */
    KG_E8M0,    /* MX scale: value 2^(e-127), 0xff = NaN */
    KG_U8,
    KG_I32,
    KG_I64,
    KG_U32,     /* block tables, position ids */
    KG_DTYPE_COUNT
} kg_dtype;

/* "f32", "bf16", "fp16", "e4m3", "e4m3fn", "e5m2", "e2m1", "e8m0", "u8", "i32", "i64";
 * NULL for a value outside the enum. */
const char *kg_dtype_name(kg_dtype t);
/* Inverse of kg_dtype_name; returns -1 for an unknown name (or NULL). */
int kg_dtype_from_name(const char *name);
/* Bits per element (4 for e2m1); 0 for a value outside the enum. */
int kg_dtype_bits(kg_dtype t);

/* Semantics are those of ml_dtypes' ordinary (non-saturating) cast from float32, checked against
 * its float8.h / mxfloat.h: one rounding straight from fp32, ties to even, inf in -> inf out
 * where the format has one, NaN in -> the format's quiet NaN with the input's sign. Decoders are
 * exact; NaN codes decode to an fp32 NaN with the code's sign. */

/* ---- bf16 / fp16 ------------------------------------------------------------------------- */
float    kg_bf16_to_f32(uint16_t h);
uint16_t kg_f32_to_bf16(float x);      /* RNE (FLT_MAX -> inf); NaN -> 0x7fc0|sign; inf kept */
float    kg_f16_to_f32(uint16_t h);    /* subnormals exact; NaN payload kept, made quiet */
uint16_t kg_f32_to_f16(float x);       /* RNE; |x| >= 65520 -> inf; NaN -> 0x7e00|sign;
                                          subnormal results rounded */

/* ---- fp8 ---------------------------------------------------------------------------------- */
float   kg_e4m3_to_f32(uint8_t c);
uint8_t kg_f32_to_e4m3(float x);       /* RNE; |x| >= 248 -> inf (0x78|sign); NaN -> 0x7c|sign
                                          (ml_dtypes' quiet NaN; any of 0x79..0x7f is NaN) */
float   kg_e4m3fn_to_f32(uint8_t c);
uint8_t kg_f32_to_e4m3fn(float x);     /* RNE; |x| > 464 -> NaN (no inf; 464 itself ties to even
                                          448), inf -> NaN, NaN -> NaN; NaN = 0x7f|sign */
float   kg_e5m2_to_f32(uint8_t c);
uint8_t kg_f32_to_e5m2(float x);       /* RNE; |x| >= 61440 -> inf (0x7c|sign); NaN -> 0x7e|sign */

/* ---- fp4 and MX scales -------------------------------------------------------------------- */
float   kg_e2m1_to_f32(uint8_t nibble); /* low 4 bits used */
uint8_t kg_f32_to_e2m1(float x);        /* RNE; no inf/NaN, so (as ml_dtypes) inf and anything
                                           past 6 saturate to +-6 (0x7|sign). NaN follows
                                           ml_dtypes too: its stand-in NaN is code 0x8 (-0.0),
                                           negated for a negative NaN: +NaN -> 0x8, -NaN -> 0x0.
                                           NaN is thus lost; callers that care must check. */
float   kg_e8m0_to_f32(uint8_t e);      /* 2^(e-127); 0xff -> NaN; e = 0 gives 2^-127 exactly */
/* The MX shared exponent of a block (common.md): max over k of the biased fp32 exponent of
 * x[k] (0 for zero/subnormal, 255 for inf), minus emax of the element format, clamped to
 * [0, 254] (an all-zero block gives 0, never a uint8 wrap-around). NaN inputs are ignored;
 * n <= 0 gives 0. */
uint8_t kg_e8m0_block_exponent(const float *x, long n, int emax);

#endif /* KGEN_DTYPE_H */
