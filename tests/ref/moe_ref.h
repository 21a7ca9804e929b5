/* moe_ref.h: the hand-written references of the Mixture-of-Experts families (plain loops, never
 * generated): router_topk_ref.c (shared/reference/router_topk.md), moe_tkg_ref.c
 * (shared/reference/moe_tkg.md), moe_cte_ref.c (shared/reference/moe_cte.md),
 * blockwise_mm_backward_ref.c (shared/reference/blockwise_mm_backward.md). */
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

/* moe_cte.md "MX variants": x [H] (the gate/up GEMM's input) and h [I] (the down GEMM's)
 * quantize-dequantized in place to MX e4m3fn over the MX weights' 32-element blocks. */
void moe_mx_round_x_ref(float *x, long H);
void moe_mx_round_h_ref(float *h, long I);

/* moe_cte.md "MX variants": one expert's MX weights as upstream stores them, dequantized (code
 * times 2^(scale - 127)); bits 8 (fp8 codes, 32-bit x4 words) or 4 (fp4, 16-bit words), dec
 * decodes one code. wgu [H, 2, I] from words [128, 2, H/512, I] and scales [16, 2, H/512, I];
 * wd [I, H] from words [I_p, ceil(I/512), H] and scales [I_p/8, ceil(I/512), H]. */
void moe_mx_gate_up_ref(float *wgu, const void *words, const uint8_t *scales, int bits,
                        float (*dec)(uint8_t), long H, long I);
void moe_mx_down_ref(float *wd, const void *words, const uint8_t *scales, int bits,
                     float (*dec)(uint8_t), long H, long I);

/* The options of one MoE CTE problem, as the reference reads them. */
typedef struct moe_cte_ref_opts {
    int act;        /* ActFnType: 0 SiLU, 1 GELU, 2 GELU_Tanh_Approx, 3 Swish */
    int mode;       /* ExpertAffinityScaleMode: 0 NO_SCALE, 1 POST_SCALE, 2 PRE_SCALE,
                       3 PRE_SCALE_DELAYED (as PRE_SCALE) */
    int acc;        /* is_tensor_update_accumulating */
    int moi;        /* expert_affinity_multiply_on_I */
    int skip_token; /* padding slots hold -1 and are skipped; no row T */
    float glo, ghi, ulo, uhi;  /* clamps; -INFINITY / INFINITY: none */
    float (*round_a)(float);   /* the GEMM's rounding of its operands, or NULL */
    float (*round_o)(float);   /* the output dtype's rounding, or NULL (fp32) */
    int mx;         /* MX weights: each GEMM's input quantized to MX e4m3fn over its blocks */
} moe_cte_ref_opts;

/* R = T + 1 rows (row T: the padding token), T with skip_token. out [R, H] (updated; the
 * caller zero-fills it); gu_ckpt [N, 2, I, B], d_ckpt [N, B, H] (each NULL: not stored);
 * x [R, H]; aff [R, E]; wgu [E, H, 2, I]; wd [E, I, H]; tpi [N, B]; b2e [N] (NULL: block b is
 * expert b, the dropping variant); cond [N] (NULL: every block); bgu [E, 2, I], bd [E, H],
 * sgu [SE, 2I], sd [SE, H] (fp8 scales, SE = E, or 1 with shared): each or NULL. */
void moe_cte_ref(float *out, float *gu_ckpt, float *d_ckpt, const float *x, const float *aff,
                 const float *wgu, const float *wd, const int32_t *tpi, const int32_t *b2e,
                 const int32_t *cond, const float *bgu, const float *bd, const float *sgu,
                 const float *sd, int shared, const moe_cte_ref_opts *o, long T, long H, long I,
                 long E, long B, long N);
/* The options of one blockwise MoE problem (the forward MoE CTE with POST_SCALE, and its
 * backward), as the references read them. */
typedef struct bwmm_ref_opts {
    int swish;                 /* activation: 0 SiLU, 1 Swish (x sigmoid(1.702 x)) */
    double glo, ghi, ulo, uhi; /* gate and up clamps; -INFINITY / INFINITY: none */
    int skip;                  /* skip_token: padding slots are -1 (else T, the zero row) */
    int acc;                   /* is_tensor_update_accumulating */
} bwmm_ref_opts;

/* The forward (moe_cte.md "Math", POST_SCALE, checkpointing) in double: out [rows, H]
 * (zero-initialised here), the checkpoints ckgu [N, 2, I, B] (G, U after bias and clamp) and
 * ckd [N, B, H] (the down output with bias, before the affinity); x [rows, H]; aff [rows, E];
 * wgu [E, H, 2, I]; wd [E, I, H]; bgu [E, 2, I] and bd [E, H] or NULL; ids [N, B]; bte [N].
 * rows = T + 1 (T with skip). */
void bwmm_fwd_ref(double *out, double *ckgu, double *ckd, const double *x, const double *aff,
                  const double *wgu, const double *wd, const double *bgu, const double *bd,
                  const int32_t *ids, const int32_t *bte, const bwmm_ref_opts *o, long rows,
                  long N, long H, long I, long E, long B);

/* The backward (blockwise_mm_backward.md "Math") in double: dx [rows, H], da [rows, E],
 * dwgu [E, H, 2, I], dwd [E, I, H], dbgu [E, 2, I], dbd [E, H] (all zero-initialised here);
 * from x, aff, wgu, wd, the checkpoints, ids, bte as above and dout [rows, H]. */
void blockwise_mm_backward_ref(double *dx, double *da, double *dwgu, double *dwd, double *dbgu,
                               double *dbd, const double *x, const double *aff,
                               const double *wgu, const double *wd, const double *ckgu,
                               const double *ckd, const int32_t *ids, const int32_t *bte,
                               const double *dout, const bwmm_ref_opts *o, long rows, long N,
                               long H, long I, long E, long B);

#endif /* KGEN_TEST_MOE_REF_H */
