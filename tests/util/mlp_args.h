/* tests/util/mlp_args.h: what the mlp tests (the option sweeps and the vector adapter) read off a
 * kernel: its options, read back from its problem string (never retyped), the order of its
 * tensor arguments, and upstream's MX layouts of the activations and biases. */
#ifndef KGT_MLP_ARGS_H
#define KGT_MLP_ARGS_H

#include "kgen/dtype.h"

/* A kernel's options. */
typedef struct mlpa_opts {
    long H, I;
    int tkg, quant, act, norm; /* quant, act, norm: the MLP_REF_ / upstream enum codes */
    int xq;                    /* CTE STATIC / ROW / STATIC_MX: the input is fp8 */
    int skip_gate, norm_bias, fused_add, store, gb, ub, db, xswz, wswz, fn;
    kg_dtype t, ot;
    int wfmt;
    float eps, clip, quant_max, glo, ghi, ulo, uhi;
} mlpa_opts;

/* The values of the keys quantization_type, activation_fn and normalization_type, each at its
 * MLP_REF_ / upstream enum code. */
extern const char *const mlpa_quants[5], *const mlpa_acts[4], *const mlpa_norms[4];

/* The options of the kernel of canonical problem p (asserts each key is there and known). */
mlpa_opts mlpa_read_opts(const char *p);

/* The kernel's tensor arguments, in kg_mlp_fn order (the uniform entry point's t[]). */
enum { MLPA_OUT, MLPA_ADD_OUT, MLPA_HIDDEN, MLPA_ADD, MLPA_GW, MLPA_UW, MLPA_DW, MLPA_GS,
       MLPA_US, MLPA_DS, MLPA_GUIS, MLPA_DIS, MLPA_GAMMA, MLPA_BETA, MLPA_GB, MLPA_UB, MLPA_DB,
       MLPA_COUNT };

/* The upstream MX layouts (mlp.md "MX"): a [rows, H] tensor 4H-swizzled (stored q*H/4 +
 * j*128 + p holds h = 512j + 4p + q), and a gate/up bias [P, ceil(I/512), 4] ([p, t, q] holds
 * i = t*4P + q*P + p; P = 128, or I/4 when I < 512). Both malloc'd. */
float *mlpa_swizzle_h(const float *x, long rows, long H);
float *mlpa_swizzle_bias(const float *b, long I);

#endif
