/* model_int.h: the model library's insides (kgm_ prefix, not installed): the kernels the
 * forward pass calls, in the order the spec (spec.c) names them, and the model's state. */
#ifndef KGEN_MODEL_INT_H
#define KGEN_MODEL_INT_H

#include "kgen/kgen.h"
#include "kgen/manifest.h"
#include "kgen_model.h"
#include "st.h"

/* The spec's kernels, in spec order: forward.c calls them by these indices. */
enum {
    KGM_K_QKV_CTE = 0, KGM_K_ROPE, KGM_K_ATTN_CTE, KGM_K_OPROJ_CTE, KGM_K_MLP_CTE,
    KGM_K_QKV_TKG, KGM_K_ATTN_TKG, KGM_K_OPROJ_TKG, KGM_K_MLP_TKG, KGM_K_LM_HEAD,
    KGM_K_ROUTER, KGM_K_MOE, /* Mixtral: router_topk and moe_tkg (decode) in place of both
                                MLPs, */
    KGM_K_MOE_CTE,           /* and moe_cte (prefill: the router's picks in blocks) */
    KGM_K_MEGA, /* transformer_tkg: every layer of a decode step, last in the spec; only when
                   kgm_megakernel says so */
    KGM_K_COUNT
};
extern const char *const kgm_kernel_family[KGM_K_COUNT];
/* Slots per block of Mixtral's prefill experts (moe_cte's B): the kernel shares one pass of an
 * expert's weights over up to 256 slots of consecutive blocks, so B only sets the padding an
 * expert's last block may hold (skipped, never computed) and the tables' size. */
#define KGM_MOE_BLOCK 64

/* With fp8 weights the spec has no output projection CTE nor MLP CTE (their CTE kernels have no
 * weight-only ROW path): prefill calls the TKG kernels, which take any token count. A Mixtral
 * spec has no MLP kernels but the router and the experts (KGM_K_ROUTER, KGM_K_MOE,
 * KGM_K_MOE_CTE). The spec position of kernel k is kgm_spec_index(c, o, k) (-1: not in the
 * spec); the spec has kgm_spec_count(c, o) kernels before the megakernel. */
int kgm_spec_index(const kgm_config *c, const kgm_options *o, int k);
int kgm_spec_count(const kgm_config *c, const kgm_options *o);

struct kgm_shard;
/* Whether decode runs through the transformer_tkg megakernel (KGM_K_MEGA) for config c with
 * options o and rank shard sh: o->no_megakernel unset and the architecture covered (no QKV
 * or o_proj bias; weights f32, bf16 or fp16, not fp8; head_dim even and at most 128, hidden
 * a multiple of 128, at most 32 layers and 63 (layer, KV head) pairs of the rank). 0 with
 * why (if not NULL) set to the reason otherwise. */
int kgm_megakernel(const kgm_config *c, const kgm_options *o, const struct kgm_shard *sh,
                   const char **why);

/* The sizes a model is opened with, from the options and the config. */
typedef struct kgm_limits { long max_context, max_batch; } kgm_limits;
void kgm_limits_of(const kgm_config *c, const kgm_options *o, kgm_limits *l);
/* The packed weights' format name ("f32", "bf16", "fp16", "e4m3"): the layers' projections
 * and the LM head alike. */
const char *kgm_weight_name(const kgm_config *c, const kgm_options *o);

/* shard.c: what rank `rank` of `tp` holds (Megatron tensor parallelism): nq query heads from
 * q0, nkv KV heads from kv0 (one, shared with the other ranks of its group, when tp > kv
 * heads), I intermediate columns from i0, V vocabulary columns from v0 of which v_len are the
 * model's (the rest zero padding). tp 1: the whole model. KG_OK, or KG_ESPEC with one line in
 * err naming the dimension that does not divide. */
typedef struct kgm_shard {
    int tp, rank;
    long nq, q0, nkv, kv0, I, i0, V, v0, v_len;
} kgm_shard;
int kgm_shard_of(const kgm_config *c, int tp, int rank, kgm_shard *s, char *err, size_t errlen);

/* One decoder layer's weights (packed) and KV cache. */
typedef struct kgm_layer {
    /* the rank's shard (kgm_shard: nq, nkv, I its own) */
    kg_wt qkv, o, gate, up, down; /* W [K, N]: qkv [H, (nq+2nkv)d], o [nq d, H], ... */
    float *qkv_bias;              /* [(nq+2nkv)d] or NULL */
    float *o_bias;                /* [H] or NULL; zeros on ranks other than 0 (added once) */
    float *qkv_s, *o_s;           /* fp8: per-column dequant scales [(nq+2nkv)d], [H]; else NULL */
    float *gate_s, *up_s, *down_s;/* fp8: [I], [I], [H]; else NULL */
    /* Mixtral (gate, up, down unused): the router W [H, E] (f32), every expert's gate | up
     * W [H, E * roundup(2I, 64)] and down W [I, E * roundup(H, 64)] side by side
     * (kg_wt_pack_experts; the rank's I columns); fp8: their scales [E, 2I], [E, H] */
    kg_wt router, experts_gu, experts_d;
    float *experts_gu_s, *experts_d_s;
    float *ln1, *ln2;             /* input / post-attention RMSNorm weights [H] */
    float *k_cache, *v_cache;     /* [max_batch, nkv, max_context, d]; NULL with the
                                     megakernel (its caches are kgm_mega's) */
} kgm_layer;

/* The megakernel's list arguments (transformer_tkg: an array of pointers, [lg] element
 * l * nkv + g for layer l's KV head g of the rank). Its caches replace the layers' own:
 * K [max_batch, 1, d, max_context] (transposed), V [max_batch, 1, max_context, d]. With one
 * KV head on the rank its QKV and o weights are the layer's own; with more, each head's
 * are packed apart (qkv: its query heads, K, V; o: its heads' rows), beside the layer's
 * fused ones that prefill uses. */
typedef struct kgm_mega {
    float **k, **v;                      /* [L nkv] */
    const kg_wt **qkv, **o;              /* [L]: the layers' own (every KV head of the rank) */
    const kg_wt **gate, **up, **down;    /* [L] */
    const float **ln1, **ln2;            /* [L] */
    float *cos, *sin;                    /* [d/2, max_batch]: the step's RoPE tables */
    unsigned char *mask;                 /* [max_context, max_batch, nq] ones */
    kg_u32 *pos;                         /* [max_batch] */
    float *out;                          /* [max_batch, H] */
} kgm_mega;

struct kgm_model {
    kgm_config c;              /* the whole model's, as config.json says */
    kgm_options o;
    kgm_limits lim;
    kgm_shard sh;              /* this rank's part (the kernels' sizes); tp 1: the whole */
    kg_coll *coll;             /* the tensor-parallel group (tp > 1), else NULL */
    kgst *st;
    kg_registry *reg;
    kg_manifest *man;                        /* the spec's kernels: their arguments by name */
    const kg_manifest_kernel *desc[KGM_K_COUNT];
    int mega_on;                             /* decode through KGM_K_MEGA (kgm_megakernel) */
    kgm_mega mega;
    kg_kernel_v *call[KGM_K_COUNT];          /* uniform entry points, bound by name (forward.c) */
    kgm_layer *layers;
    const kgst_tensor *embed;  /* [V, H] as stored */
    float *final_norm;         /* [H] */
    kg_wt lm_head;             /* [H, sh.V]: with tied embeddings a packed copy of embed */
    float *lm_head_s;          /* fp8: its per-column dequant scales [sh.V]; else NULL */
    double *inv_freq;          /* [d/2] */
    float *inv_freq_f;         /* [d/2]: the decode attention's fused rotation */
    float *cos, *sin;          /* [max_context, d]: HF's rotary tables, from inv_freq in double */
    unsigned char *mask;       /* [1, 1, q_heads, 1] ones: a decode token sees itself */
    /* activations, sized for max_batch * max_context tokens */
    float *qkv_rows;           /* [max_context, (nq + 2 nkv) d]: a prefill's qkv output */
    float *x, *o_out, *mlp_out, *added, *heads, *q_rot, *k_rot, *attn, *normed;
    float *r_logits, *r_aff;   /* Mixtral: the router's logits and affinities [rows, E] */
    kg_u32 *r_idx;             /* and its experts [rows, K] */
    int32_t *blk_tpi, *blk_b2e; /* prefill's block tables [blk_n, KGM_MOE_BLOCK], [blk_n]
                                  (kg_moe_blocks) */
    long blk_n;                /* the static block count of rows tokens */
    float *logits;             /* [rows, V] */
    float *logits_r, *gather;  /* tp > 1: the rank's [rows, sh.V], all ranks' [tp, rows, sh.V] */
    float *hidden;             /* [L+1, rows, H] (keep_hidden) */
    long B, pos, last_T;       /* sequences, tokens in the cache, tokens of the last call */
    kgm_stats stats;
    size_t act_bytes;
    char err[512];
};

/* mega.c: the megakernel's lists allocated (mega_on set; KG_OK or KG_ENOMEM with err), bound
 * to the loaded layers (their own QKV and o weights, no second copy), freed. */
int kgm_mega_alloc(kgm_model *m, char *err, size_t errlen);
void kgm_mega_bind(kgm_model *m);
void kgm_mega_free(kgm_model *m);

/* weights.c: checks every tensor against the config and packs it; KG_OK or a status with one
 * line in err naming the file and tensor. */
int kgm_weights_load(kgm_model *m, const char *dir, char *err, size_t errlen);
void kgm_weights_free(kgm_model *m);

/* quant.c: t [N, K] (a float tensor, HF's [out, in]) to e4m3 codes q [N, K] and one scale per
 * row (output column), kgp_quant_rows_e4m3_*'s bits, rows split over the runtime's threads.
 * KG_OK, KG_ESHAPE (t is not N x K floats) or KG_ENOMEM. */
int kgm_quant_e4m3(const kgst_tensor *t, long N, long K, unsigned char *q, float *scale);

/* Seconds on the monotonic clock. */
double kgm_now(void);

/* forward.c: a prefill of ids [B, P] and a decode step of ids [B], inputs already checked. */
int kgm_forward_prefill(kgm_model *m, long B, long P, const int64_t *ids);
int kgm_forward_decode(kgm_model *m, long B, const int64_t *ids);

#endif
