/* moe_ref.h: the hand-written references of the Mixture-of-Experts families (plain loops, never
 * generated): router_topk_ref.c (shared/reference/router_topk.md), moe_tkg_ref.c
 * (shared/reference/moe_tkg.md). */
#ifndef KGEN_TEST_MOE_REF_H
#define KGEN_TEST_MOE_REF_H

#include <stdint.h>

/* The options of one router, as the reference reads them. */
typedef struct router_ref_opts {
    int softmax;  /* act_fn: 1 SOFTMAX, 0 SIGMOID */
    int pre_norm; /* router_pre_norm: activate all E logits before the top-K (ACT1) */
    int norm;     /* norm_topk_prob (honoured with pre_norm only) */
    int x_ht;     /* x stored [H, T] */
} router_ref_opts;

/* logits, affinities [T, E]; index, eager [T, K]; x [T, H] (x_ht: [H, T]); w [H, E];
 * bias [E] or NULL. */
void router_topk_ref(float *logits, int32_t *index, float *affinities, float *eager,
                     const float *x, const float *w, const float *bias,
                     const router_ref_opts *o, long T, long H, long E, long K);

/* The options of one MoE TKG problem, as the reference reads them. */
typedef struct moe_ref_opts {
    int all;      /* is_all_expert */
    int post;     /* POST_SCALE (else NO_SCALE) */
    int mask;     /* mask_unselected_experts */
    int eager;    /* selective: coefficients from eager [T, K] */
    int act;      /* ActFnType: 0 SiLU, 1 GELU, 2 GELU_Tanh_Approx, 3 Swish */
    float glo, ghi, ulo, uhi;  /* clamps; -INFINITY / INFINITY: none */
    float (*round_a)(float);   /* the GEMM's rounding of its operands (bf16 / fp8 weights), or
                                  NULL */
    int mx;       /* MX weights: x and the product quantized to MX e4m3fn over their blocks */
} moe_ref_opts;

/* out [T, H]; x [T, H]; wgu [EL, H, 2, I] (gate then up); wd [EL, I, H]; aff [T, E] (NULL:
 * not read); idx [T, K]; rank: this rank's number (experts rank*EL .. + EL - 1); bgu
 * [EL, 2, I], bd [EL, H], sgu [EL, 2, I], sd [EL, H] (ROW scales), eager [T, K]: each or NULL. */
void moe_tkg_ref(float *out, const float *x, const float *wgu, const float *wd,
                 const float *aff, const int32_t *idx, long rank, const float *bgu,
                 const float *bd, const float *sgu, const float *sd, const float *eager,
                 const moe_ref_opts *o, long T, long H, long I, long E, long EL, long K);

#endif /* KGEN_TEST_MOE_REF_H */
