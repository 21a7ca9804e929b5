/* ref.h: the hand-written reference kernels of tests/ref/ (plain loops, never generated). */
#ifndef KGEN_TEST_REF_H
#define KGEN_TEST_REF_H

#include <stdint.h>

/* rmsnorm_quant_ref.c */
void rmsnorm_quant_ref(uint8_t *out, const float *x, const float *gamma, float in_scale,
                       int rms, int row, int fn, float lb, float eps, float M, long R, long H);

/* rope_ref.c (shared/reference/rope.md) */
void rope_ref(float *x_out, const float *x_in, const float *cos, const float *sin,
              int d, int B, int N, int S, int layout_bnsd, int contiguous);
void rope_hf_ref(float *q_out, float *k_out, const float *q, const float *k,
                 const float *cos, const float *sin, int B, int Hq, int Hk, int S, int d,
                 int T, int table_batch, int table_stride, int backward);

/* cumsum_ref.c (shared/reference/cumsum.md) */
void cumsum_ref(float *out, const float *x, int rows, int H, float (*tile_carry_round)(float));

/* qkv_ref.c (shared/reference/qkv.md) */
/* The options of one QKV problem, as the reference reads them. */
typedef struct qkv_ref_opts {
    int tkg;                  /* variant TKG: the fused sum is rounded by round_in first */
    long H, nq, nkv, d;       /* I = (nq + 2 nkv) d */
    long hidden_actual;       /* RMS divisor */
    int norm;                 /* NormType: 0 NO_NORM, 1 RMS, 2 LAYER, 3 RMS_SKIP_GAMMA */
    int quant;                /* QuantizationType: 0 NONE, 1 STATIC, 2 ROW, 3 MX */
    int mx_static;            /* MX static dequant: w_scale [3] and in_scale */
    int static_fn;            /* STATIC casts x to e4m3fn (else e4m3) */
    float quant_max, eps;
    int swizzled, rope, nbsd, fused_add;
    int kv;                   /* 0 none, 1 flat [B, cache_len, nkv d], 2 block */
    long block_size;
    float kv_max, kv_min;
    float (*round_in)(float); /* the input dtype's rounding; NULL for f32 */
} qkv_ref_opts;
void qkv_ref(float *out, float *fused_hidden, uint8_t *k_cache, uint8_t *v_cache,
             const float *input, const float *W, const float *w_scale, float in_scale,
             const float *bias, const float *mlp_prev, const float *attention_prev,
             const float *gamma, const float *beta, const float *cos, const float *sin,
             float k_scale, float v_scale, const int32_t *slot_mapping,
             const qkv_ref_opts *o, long B, long S, long cache_len);
/* end qkv */

/* mlp_ref.c (shared/reference/mlp.md) */
enum { MLP_REF_NONE, MLP_REF_STATIC, MLP_REF_ROW, MLP_REF_MX, MLP_REF_STATIC_MX };
typedef struct mlp_ref_opts {
    int tkg;         /* variant TKG (weight-only fp8), else CTE (fp8 activations) */
    int quant;       /* MLP_REF_* (QuantizationType order) */
    int act;         /* ActFnType: 0 SiLU, 1 GELU, 2 GELU_Tanh_Approx, 3 Swish */
    int norm;        /* NormType: 0 NO_NORM, 1 RMS_NORM, 2 LAYER_NORM, 3 RMS_NORM_SKIP_GAMMA */
    int skip_gate;
    int fn;          /* CTE fp8 activations are e4m3fn (else e4m3) */
    float fp8_max, eps, clip;
    float gate_lo, gate_hi, up_lo, up_hi; /* -INFINITY / INFINITY: no clamp */
} mlp_ref_opts;
void mlp_ref(float *out, float *add_out, const float *hidden, const float *add, const float *dx,
             const float *wg, const float *wu, const float *wd, const float *sg,
             const float *su, const float *sd, float s_gu, float s_down, const float *gamma,
             const float *beta, const float *bg, const float *bu, const float *bd,
             const mlp_ref_opts *o, long T, long H, long I);
/* end mlp */

/* output_projection_ref.c (shared/reference/output_projection.md) */
void outproj_gather_ref(float *A, const float *attn, int layout, long B, long S, long N, long D);
void outproj_mx_quant_ref(float *A, long T, long K);
void outproj_ref(float *y, float *A, const float *W, const float *w_scale, float s_in,
                 const float *bias, int quant, int fn, float M, long T, long K, long H);
void outproj_transpose_ref(float *o, const float *y, long T, long H, int lnc);
/* end output_projection */

/* attention_tkg_ref.c (shared/reference/attention_tkg.md) */
typedef struct attn_tkg_ref_opts {
    long B, nkv, qh, sa, d;    /* batch, KV heads per call, q heads per KV head, s_active, d */
    long sp, S, blk, nblk;     /* curr_sprior, full_sprior, block_len (0: flat), table width */
    int tpk, pos, swa, sink, rope;
} attn_tkg_ref_opts;
void attention_tkg_ref(float *out, float *k_out, const float *q, const float *k_active,
                       const float *v_active, const float *k_prior, const float *v_prior,
                       const uint8_t *mask, const float *pos, const float *start,
                       const float *inv_freqs, const float *sink, const uint32_t *table,
                       const attn_tkg_ref_opts *o);
void gen_mask_tkg_ref(uint8_t *mask, const float *pos, const float *start, const uint8_t *act,
                      long B, long H, long sa, long sp);
/* end attention_tkg */
/* attention_cte_ref.c (shared/reference/attention_cte.md); layouts in the file's comment */
typedef struct attention_cte_ref_opts {
    long B, nq, nkv, Sq, Sk, d; /* nq a multiple of nkv */
    float scale;
    int causal;
    long window;                /* sliding window W, 0: none */
    long Sp, prior_used;        /* prior keys stored and used (0, 0: no prefix cache) */
    long cp_offset;             /* context parallelism: query i is at cp_offset + i (* cp_deg) */
    int cp_deg, cp_strided;
} attention_cte_ref_opts;
/* One query row (b, h, i) into out (and neg_max, recip unless NULL); sink and the bounds may be
 * NULL (not given). */
void attention_cte_ref_row(float *out, float *neg_max, float *recip, const float *q,
                           const float *k, const float *v, const float *k_prior,
                           const float *v_prior, const float *sink, const int32_t *bound_min,
                           const int32_t *bound_max, const attention_cte_ref_opts *o, long b,
                           long h, long i);
/* Every row. */
void attention_cte_ref(float *out, float *neg_max, float *recip, const float *q, const float *k,
                       const float *v, const float *k_prior, const float *v_prior,
                       const float *sink, const int32_t *bound_min, const int32_t *bound_max,
                       const attention_cte_ref_opts *o);
/* end attention_cte */

/* lm_head_ref.c (generator/lua/family/lm_head.lua) */
void lm_head_ref(float *logits, float *normed, const float *x, const float *W,
                 const float *w_scale, const float *gamma, float eps, float (*round_a)(float),
                 long T, long H, long V);
/* end lm_head */

/* quant_ref.c: a model loader's --weights fp8 quantizer of a weight stored [N, K] (HF's [out,
 * in]) at dtype (0 f32, 1 bf16, 2 fp16; data possibly unaligned): q [N, K] e4m3 codes, scale
 * [N] = max |row| / 240 (1 for a zero row, NaN passed over), q = e4m3(w / scale). */
void quant_ref_e4m3(uint8_t *q, float *scale, const void *data, int dtype, long N, long K);

/* attention_block_tkg_ref.c (shared/reference/attention_block_tkg.md) */
typedef struct attn_block_ref_opts {
    long B, S, H, N, D;     /* batch, new tokens S_tkg, hidden, query heads, head dim */
    long S_ctx, S_max, blk; /* window slots, flat cache slots a sequence, block_len (0: flat) */
    long n_cache, nblk;     /* cache rows (flat: sequences, block: blocks), table width */
    int norm;               /* RMSNorm of X, divisor hact (0: H) */
    long hact;
    float eps;
    int bias_qkv, static_qkv, static_out; /* STATIC: fp8 e4m3 operands, clamp +-240 */
    int qk_pre, qk_post;    /* per-head RMSNorm of Q and K before / after RoPE */
    int qk_pre_gamma, qk_post_gamma;
    float qk_pre_eps, qk_post_eps;
    int rope, contig;       /* RoPE on; pairs (i, i + D/2) or (2i, 2i + 1) */
    float scale;            /* softmax_scale */
    int sink, tpk_t, fp8;   /* sink; K cache [D, S_max] (transposed); fp8 e4m3 KV */
    int update, skip, wout, bout;
} attn_block_ref_opts;
/* Every tensor of one call in fp32 (NULL where the options do not read it): W_qkv [H, I],
 * w_qkv [3] and s_qkv the STATIC scales; gammas [D]; cos, sin [D/2, B, S]; caches as the options
 * lay them out; table [B, nblk]; mask [S_ctx, B, N, S]; W_out [N*D, H], w_out and s_out. */
typedef struct attn_block_ref_in {
    const float *X, *gamma, *W_qkv, *bias_qkv, *w_qkv, *gq_pre, *gk_pre, *gq_post, *gk_post;
    const float *cos, *sin, *K_cache, *V_cache, *sink, *W_out, *bias_out, *w_out;
    const uint8_t *mask;
    const uint32_t *table, *idx;
    float s_qkv, s_out, k_scale, v_scale;
} attn_block_ref_in;
/* x_out: [B*S, H] (wout) or [B, N, D, S]; k_out, v_out: the updated caches (update) or the new
 * K [D, B, S] and V [B, S, D]. */
void attention_block_tkg_ref(float *x_out, float *k_out, float *v_out,
                             const attn_block_ref_in *in, const attn_block_ref_opts *o);
/* end attention_block_tkg */

/* transformer_tkg_ref.c (shared/reference/transformer_tkg.md), one rank */
typedef struct tkg_ref_opts {
    long B, S, H, I, N, D; /* batch, S_tkg, hidden, MLP intermediate, query heads, head dim */
    long S_ctx, S_max;     /* window slots, cache slots a sequence */
    int L, update;         /* layers; cache write at pos */
    int nkv;               /* KV heads (0: 1), each with N query heads */
    unsigned fp8;          /* bit l: layer l's MLP is ROW (columns times the scales) */
    float eps, clamp;      /* both RMSNorms; fp8 layers' clip (0: none) */
} tkg_ref_opts;
/* Per layer l (arrays of L): W_qkv [H, nkv (N + 2) D] (the nkv N Q heads, KV head g's query
 * heads g N.., then the nkv K heads, then the nkv V heads), W_out [nkv N D, H], W_gate, W_up
 * [H, I], W_down [I, H] (fp8 layers: the e4m3 values), g_qkv, g_mlp [H], s_gate, s_up [I],
 * s_down [H] (fp8 layers); per layer l and KV head g (arrays of L * nkv, element l * nkv + g):
 * the caches; cos, sin [D/2, B, S]; mask [S_ctx, B, nkv N, S]; pos [B]. */
typedef struct tkg_ref_in {
    const float *X, *cos, *sin;
    const uint8_t *mask;
    const uint32_t *pos;
    const float *const *W_qkv, *const *W_out, *const *W_gate, *const *W_up, *const *W_down;
    const float *const *g_qkv, *const *g_mlp, *const *s_gate, *const *s_up, *const *s_down;
} tkg_ref_in;
/* out [B S, H] (fp32, not rounded); the caches K_cache[e] [B, D, S_max], V_cache[e]
 * [B, S_max, D] updated in place. */
void transformer_tkg_ref(float *out, float *const *K_cache, float *const *V_cache,
                         const tkg_ref_in *in, const tkg_ref_opts *o);

/* coll_ref.c: all-reduce (sum in rank order, fp32, one rounding to dtype: 0 f32, 1 bf16, 2 fp16)
 * and all-gather (rank-major) of x[0 .. R) */
void all_reduce_ref(void *y, const void *const *x, int R, long n, int dtype);
void all_gather_ref(void *y, const void *const *x, int R, long bytes);

/* cross_entropy_ref.c (shared/reference/cross_entropy.md) */
void cross_entropy_fwd_ref(float *loss, float *lse, const float *logits, const int32_t *targets,
                           long T, long V, long chunk, float (*rnd)(float));
void cross_entropy_bwd_ref(float *grad, const float *logits, const int32_t *targets,
                           const float *lse, long T, long V, int mean, float (*rnd)(float));
double cross_entropy_total_ref(const double *logits, const int32_t *targets, long T, long V,
                               int mean);

/* depthwise_conv1d_ref.c (shared/reference/depthwise_conv1d.md) */
void depthwise_conv1d_ref(float *y, const float *x, const float *f, long N, long C, long W,
                          long S, long stride, long pl, long pr);

#endif
