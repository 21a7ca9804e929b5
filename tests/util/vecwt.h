/* tests/util/vecwt.h: a quantized weight of a vector case (shared/vectors) packed into the kg_wt
 * handle a kernel reads, from any representation the vectors' conventions allow: inputs are
 * float32 values on the format's grid or integers (shared/vectors/README.md), and an MX / x4
 * weight (common.md: x4 words, E8M0 scales) may be stored as its words or as its values. */
#ifndef KGT_VECWT_H
#define KGT_VECWT_H

#include <stdint.h>

#include "kgen/kgen.h"
#include "util/vectors.h"

/* The element format (enum kg_wt_fmt) the case.json dtype of input `name` names: any spelling
 * holding e4m3fn, e4m3, e5m2 or e2m1 ("float8_e4m3fn_x4", "fp8_e4m3", "float4_e2m1fn_x4", ...),
 * or bf16 / f32 / fp16; -1 if it names no format (an integer dtype: "u32", "i32", "u8"). */
int kgt_case_wt_fmt(const kgt_case *c, const char *name);

/* For integer x4 words whose dtype names no format ("u32", "i32"): KG_WT_E4M3FN if a word passes
 * 16 bits (an int32 view of one is negative), else KG_WT_E2M1 (fp4 words are 16 bits); -1 if the
 * input is not integers. The MX formats output_projection and mlp take by default. */
int kgt_case_x4_word_fmt(const kgt_case *c, const char *name);

/* The weight `name` of case c, W [K, N] of format fmt, packed into w from the kernel's stored
 * `layout` (kg_wt_layout). Accepted, told apart by the array's dtype and shape:
 *  - the logical matrix [K, N]: float values on fmt's grid, or integer codes;
 *  - an x4 layout's words (integers, the layout's stored shape; fp8 32-bit, fp4 16-bit words);
 *  - an x4 layout's words unpacked to [..stored shape.., 4]: element q of each word, as float
 *    values on the grid or integer codes;
 *  - a non-x4 layout's stored elements (its stored shape; values or codes).
 * scale_name (NULL: no MX scales) names the E8M0 scales (integers 0..255, as any integer dtype
 * or whole float32 values), in the layout's stored arrangement or logical [ceil(K/kb), N] (one
 * per block of kb consecutive rows: kgt_wt_kb). K is the caller's (the activations give it); N is
 * read from the array. Returns N. Asserts (naming the input) on anything else. */
long kgt_case_wt(const kgt_case *c, const char *name, const char *scale_name, int fmt,
                 int layout, long K, kg_wt *w);

/* The E experts' weights `name` [E, ...] of case c (each expert W_e [K, N], format fmt, in
 * any representation kgt_case_wt reads, a logical gate | up also as [K, 2, N/2]) with their
 * MX scales scale_name [E, ...] (NULL: none), packed side by side into w by
 * kg_wt_pack_experts. Asserts (naming the input) on anything else. */
void kgt_case_experts_wt(const kgt_case *c, const char *name, const char *scale_name, int fmt,
                         int layout, long E, long K, long N, kg_wt *w);

/* Input `name` as codes of the 8-bit format fmt (an fp8 kg_wt_fmt): float32 values on the grid
 * or integer codes (bytes); malloc'd, kg_npy_count of the input elements (one at least). */
uint8_t *kgt_case_codes8(const kgt_case *c, const char *name, int fmt);

/* The n fp8 codes (fmt) a kernel wrote against the case's expected output out_name: decoded, at
 * its tolerance, if stored as floats; code for code if stored as integers. Records the output as
 * compared. 1 on pass, 0 on fail (msg says where), -1 if float-stored with no tolerance. */
int kgt_codes_close_to_case(const kgt_case *c, const char *out_name, int fmt, const uint8_t *got,
                            long n, char *msg, size_t len);

/* An MX gate/up bias `name` as upstream stores it, [E, I_p, 2, ceil(I/512), 4]
 * (moe_cte.md "MX variants": the down weights' i mapping, i = j*512 + q*128 + p; I < 512:
 * q*I/4 + p; I_p = 128, or I/4), as the logical [E, 2, I] the MoE kernels take; a logical
 * [E, 2, I] one as it is. b: the input's values (kgt_case_as), taken over; returns the logical
 * bias (malloc'd). Asserts (naming the input) on another shape. */
float *kgt_case_mx_gate_up_bias(kgt_case *c, const char *name, float *b, long E, long I);

#endif /* KGT_VECWT_H */
