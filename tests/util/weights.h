/* tests/util/weights.h: weights for kernel tests. Random matrices on a format's grid, stored in
 * any kg_wt_layout the way the reference docs describe it (written here from the docs'
 * reshape/transpose formulas, independently of the runtime's packer), then packed. */
#ifndef KGT_WEIGHTS_H
#define KGT_WEIGHTS_H

#include <stdint.h>

#include "kgen/kgen.h"

/* The block length of an MX weight's scales in `layout` (8 for mlp_mx_down, else 32). */
int kgt_wt_kb(int layout);

/* Writes code v as element e of an array of `bits`-bit codes (fp4: low nibble first; the
 * array's byte starts zeroed). */
void kgt_put_code(void *p, int bits, long e, uint32_t v);

/* Stores the logical codes of W [K, N] in `layout`: codes[k*N + n] is the element's code (fp32
 * bits for f32, 16-bit for bf16/fp16, 8-bit for fp8, 4-bit for fp4); e8 (NULL, or one E8M0
 * per logical block: e8[(k/kb)*N + n]) goes to the layout's scale arrangement. Returns the
 * stored data (malloc'd) and, when e8 is given, *scale_out (malloc'd). */
void *kgt_wt_store(int fmt, int layout, long K, long N, const uint32_t *codes,
                   const uint8_t *e8, void **scale_out);

/* A random weight W [K, N] in format fmt: N(0,1) * scale rounded to the format (fp8/fp4:
 * clamped to the format's range first), stored in `layout` and packed into w. With mx, each
 * logical block also gets a random E8M0 scale in [122, 131] and the values are the codes'.
 * nr, kg: packed geometry (0: the active ISA's). Returns the logical values W[k*N + n] as
 * fp32 (times the MX scale), exactly what the GEMM reads; malloc'd. Asserts on failure. */
float *kgt_wt_random(kg_wt *w, int fmt, int layout, long K, long N, int mx, float scale,
                     unsigned long long seed, long nr, long kg);

/* kgt_wt_random's weight, not packed: its stored data in *data_out and (mx) its scales in the
 * layout's arrangement in *scale_out (else NULL), both malloc'd. Returns the logical values. */
float *kgt_wt_random_stored(int fmt, int layout, long K, long N, int mx, float scale,
                            unsigned long long seed, void **data_out, void **scale_out);

/* The code of value v in format fmt (as kgt_wt_store takes it) in *code; 1 if v is on fmt's
 * grid (the code decodes to v exactly), else 0. */
int kgt_wt_code(int fmt, float v, uint32_t *code);

/* Packs exact logical values vals [K, N] (each on fmt's grid; no MX) from `layout` into w. */
void kgt_wt_from_values(kg_wt *w, int fmt, int layout, long K, long N, const float *vals);

#endif /* KGT_WEIGHTS_H */
