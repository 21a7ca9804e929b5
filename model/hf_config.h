/* hf_config.h: a Hugging Face config.json as the model library understands it (kgm_ prefix).
 * LlamaForCausalLM, Qwen2ForCausalLM and MixtralForCausalLM, recognised by `architectures` or, where that is null
 * or absent, by `model_type`; everything else is refused with one line naming the field. */
#ifndef KGEN_MODEL_HF_CONFIG_H
#define KGEN_MODEL_HF_CONFIG_H

#include <stddef.h>

#include "kgen/dtype.h"

/* The largest value of each size the loader accepts (a config past one is refused naming the
 * field). Chosen above every released Llama/Qwen2 model: Llama 3.1 405B has hidden 16384,
 * intermediate 53248, 126 layers, 128 heads; Qwen2 has vocab 152064; head_dim is 64 or 128. */
#define KGM_MAX_HIDDEN        65536L
#define KGM_MAX_INTERMEDIATE  (1L << 18)
#define KGM_MAX_LAYERS        1024L
#define KGM_MAX_HEADS         1024L
#define KGM_MAX_HEAD_DIM      512L
#define KGM_MAX_VOCAB         (1L << 20)
#define KGM_MAX_POSITION      (1L << 24)      /* max_position_embeddings and the original one */
#define KGM_MAX_PARAMS        ((size_t)1 << 40) /* weight elements of the whole model */
/* Mixtral: num_local_experts (router_topk's bound, upstream's: 512) and num_experts_per_tok
 * (router_topk's k: 1 to 8) */
#define KGM_MAX_EXPERTS       512L
#define KGM_MAX_EXPERTS_PER_TOK 8L

typedef enum kgm_arch { KGM_LLAMA = 0, KGM_QWEN2, KGM_MIXTRAL } kgm_arch;

typedef enum kgm_rope_type {
    KGM_ROPE_DEFAULT = 0, /* inv_freq[i] = theta^(-2i/d) */
    KGM_ROPE_LLAMA3       /* Llama 3.1's smooth low/high frequency scaling */
} kgm_rope_type;

typedef struct kgm_config {
    kgm_arch arch;
    long hidden, intermediate, layers, q_heads, kv_heads, head_dim, vocab;
    long max_position;        /* max_position_embeddings */
    double rms_eps;
    double rope_theta;        /* top level or rope_parameters.rope_theta */
    kgm_rope_type rope_type;  /* rope_scaling / rope_parameters rope_type */
    double rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    long rope_original_max_position;
    int tie_embeddings;       /* tie_word_embeddings: lm_head is embed_tokens */
    int qkv_bias;             /* Qwen2 always; Llama when attention_bias is true */
    int o_bias;               /* o_proj has a bias: Llama when attention_bias is true (HF's
                                 LlamaAttention gives all four projections the bias); never
                                 Qwen2 */
    kg_dtype dtype;           /* torch_dtype / dtype: KG_F32, KG_BF16 or KG_F16 */
    long experts;             /* Mixtral: num_local_experts (every layer's MLP is a sparse
                                 MoE block of that many SiLU experts of intermediate_size);
                                 0 for a dense MLP */
    long experts_per_tok;     /* Mixtral: num_experts_per_tok, 1 .. min(8, experts); else 0 */
    size_t params;            /* weight elements of the model (lm_head counted unless tied),
                                 formed with checked products, <= KGM_MAX_PARAMS */
} kgm_config;

/* Reads DIR/config.json (or path itself if it names a file). Every size is bounded where it
 * enters and every product the model forms from them (q_heads * head_dim, layers * ...) is
 * checked. Returns KG_OK, KG_EIO, or KG_ESPEC with one line in err naming the file and
 * field ("config.json: rope_scaling.rope_type \"yarn\" is not supported"). */
int kgm_config_load(kgm_config *c, const char *path, char *err, size_t errlen);

/* "LlamaForCausalLM", "Qwen2ForCausalLM" or "MixtralForCausalLM"; NULL for a value outside
 * the enum. */
const char *kgm_arch_name(kgm_arch a);

/* The rotary inverse frequencies, d/2 of them, in double (default or llama3-scaled). */
void kgm_rope_inv_freq(const kgm_config *c, double *inv_freq);

#endif /* KGEN_MODEL_HF_CONFIG_H */
