/* tests/util/experts.h: packed expert weights as moe_tkg takes them: every local expert's
 * [K, N] matrix side by side along N in one kg_wt, each expert's columns padded to a multiple
 * of 64 (generator/lua/family/moe_tkg.lua), and the weights' values drawn on a format's grid. */
#ifndef KGT_EXPERTS_H
#define KGT_EXPERTS_H

#include <stdint.h>

#include "kgen/kgen.h"

/* Columns of one expert in a packed expert weight: kg_wt_expert_cols. */
long kgt_expert_cols(long n);

/* Packs vals [E, K, N] (each value on fmt's grid) into w as W [K, E * kgt_expert_cols(N)]
 * through the runtime's kg_wt_pack_experts:
 * expert e's columns from e * kgt_expert_cols(N) on, the pad columns zero. Asserts on failure. */
void kgt_pack_experts(kg_wt *w, int fmt, long E, long K, long N, const float *vals);

/* E random MX experts W_e [K, N] of format fmt, each stored in `layout` (moe_mx_gate_up or
 * mlp_mx_down: kb 8) with random E8M0 scales, packed into w by kg_wt_pack_experts. Returns the
 * logical values [E, K, N] (code times scale), malloc'd. */
float *kgt_mx_experts(kg_wt *w, int fmt, int layout, long E, long K, long N,
                      unsigned long long seed);

/* The bytes of expert e's panels in w (packed by kgt_pack_experts with N columns an expert):
 * *off the first, returns the count. For poisoning an expert a test says is never read. */
long kgt_expert_bytes(const kg_wt *w, long e, long N, long *off);

/* n normal values times scale, rounded to weight format fmt (f32, bf16, fp16, e4m3, e4m3fn);
 * malloc'd. */
float *kgt_randn_fmt(int fmt, long n, float scale, unsigned long long seed);

/* x [T, H] quantized to MX e4m3fn as moe_tkg's pre-quantized input (mx_prequant, upstream's
 * hidden_input with hidden_input_scale): codes [T, H] (logical order) and E8M0 scales e8
 * [T, H/512, 16], block (j, p8) of a row holding rows q*H/4 + j*128 + 8*p8 + r (q < 4, r < 8);
 * the scale is the block's (common.md "MX", emax 8), the codes e4m3fn(clamp(x / 2^(e-127),
 * +-448)). H % 512 == 0. */
void kgt_mx_quantize_hidden(uint8_t *codes, uint8_t *e8, const float *x, long T, long H);

#endif /* KGT_EXPERTS_H */
