/* moe_ref.h: the hand-written references of the Mixture-of-Experts families (plain loops, never
 * generated): router_topk_ref.c (shared/reference/router_topk.md). */
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

#endif /* KGEN_TEST_MOE_REF_H */
