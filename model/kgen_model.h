/* kgen_model.h: the kgen model library's public API (kgm_ prefix): a Hugging Face causal LM
 * (LlamaForCausalLM, Qwen2ForCausalLM) run with kernels generated for its config and compiled
 * at start-up. An opaque model handle; open, prefill, decode, read logits and hidden states,
 * close. Calls return KGM_OK or a status; kgm_error says why in one line. A model is used by
 * one thread at a time (its kernels run on the runtime's threads, kg_set_threads). */
#ifndef KGEN_MODEL_H
#define KGEN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "hf_config.h"
#include "kgen/abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes: the runtime's (kgen/abi.h KG_*) ------------------------------------------ */
enum {
    KGM_OK = 0,
    KGM_EINPUT = 100 /* a call's own input: batch or token count past the limits, a token id
                        outside the vocabulary */
};

/* ---- options -------------------------------------------------------------------------------- */

/* How the kernels are built: libtcc in memory (the default), or gcc into a cached shared object
 * (kgen/gcc.h). */
enum kgm_build { KGM_JIT = 0, KGM_AOT };

/* The packed weights' format in memory (the layers' projections and the LM head): the config's
 * dtype (f32, bf16 or fp16; a tensor stored otherwise is converted at load), bf16, or fp8: each
 * layer's seven projections (q, k, v, o, gate, up, down) and the LM head quantized at load to
 * e4m3 with one f32 scale per output column (max |column| / 240, round to nearest even; the
 * runtime's SIMD quantizer on the runtime's threads), run through the kernels' weight-only ROW
 * path. The embeddings stay as stored (tied ones too: the LM head is then a quantized copy). */
enum kgm_weights { KGM_WEIGHTS_STORED = 0, KGM_WEIGHTS_BF16, KGM_WEIGHTS_FP8 };

/* Progress of a step that takes over a second (weight loading, a long prefill): a line
 * without its newline. */
typedef void kgm_progress_fn(void *ud, const char *line);

typedef struct kgm_options {
    int threads;        /* kernel threads; 0: the runtime's default */
    long max_context;   /* KV-cache positions per sequence; 0: min(max_position, 4096) */
    long max_batch;     /* sequences per call; 0: 1 */
    int build;          /* enum kgm_build */
    int weights;        /* enum kgm_weights */
    int all_logits;     /* prefill computes the logits of every position (else the last) */
    int keep_hidden;    /* keep every layer's output (kgm_hidden) */
    int tp;             /* tensor parallelism: the model split over tp ranks (0 or 1: whole);
                           see kgm_open */
    int no_megakernel;  /* decode through the chain of single-op kernels even where the
                           transformer_tkg megakernel covers the model (see kgm_decode) */
    kgm_progress_fn *progress;
    void *progress_ud;
} kgm_options;

/* The most ranks of tensor parallelism (kgen/coll.h's KG_COLL_MAX_RANKS). */
#define KGM_MAX_TP 256

/* The defaults: JIT, weights as stored. Activations and the KV cache are f32. */
void kgm_options_default(kgm_options *o);

/* ---- the spec of a config ------------------------------------------------------------------- */

/* The Lua spec (the format of specs/NAME.lua) naming exactly the kernels the forward pass calls
 * for config c with options o (dtypes, limits); *text is malloc'd. KGM_OK, or KG_ESPEC /
 * KG_ENOMEM with one line in err. */
int kgm_spec_text(const kgm_config *c, const kgm_options *o, char **text, char *err,
                  size_t errlen);

/* ---- a model -------------------------------------------------------------------------------- */

typedef struct kgm_model kgm_model;

/* Opens the model in dir (config.json and model.safetensors or its index): derives the spec,
 * generates and compiles its kernels, loads and packs the weights, sizes the KV cache. On
 * error *m is NULL and err holds one line naming the file and the field or tensor: KG_EIO,
 * KG_ESPEC (an unsupported config), KG_ESHAPE (a tensor missing or contradicting the config),
 * KG_ECOMPILE, KG_ENOMEM.
 *
 * Tensor parallelism (o->tp > 1): each of tp ranks opens its own model with the group's
 * communicator (kgen/coll.h: threads as ranks, or MPI) bound to the calling thread; its
 * size must be tp, and its rank is the model's. Megatron sharding: a rank holds q_heads/tp
 * query heads and their KV heads (replicated on the ranks sharing one when tp > kv_heads),
 * the matching rows of o_proj, intermediate/tp columns of gate and up and rows of down,
 * and ceil(vocab/tp) columns of the LM head; it reads only those rows and columns of the
 * safetensors files (the embeddings a token row at a time). Sharding that does not divide is
 * refused (KG_ESPEC naming the dimension). Every rank makes the same calls with the same
 * inputs: the partial sums of o_proj and the MLP are all-reduced (fp32) before the residual
 * adds, the logits all-gathered, so every rank ends each call with the whole model's logits
 * and hidden states. The ranks agree before returning: if one fails, every one returns its
 * status and line ("rank R: ..." for another rank's), so none waits for the others later. */
int kgm_open(kgm_model **m, const char *dir, const kgm_options *o, char *err, size_t errlen);
void kgm_close(kgm_model *m);

const kgm_config *kgm_config_of(const kgm_model *m);
/* The last failure on m, one line. */
const char *kgm_error(const kgm_model *m);

/* Prefill: ids [B, P] (row-major) start B new sequences (the cache is reset). Then
 * kgm_decode: ids [B], one more token for each of the B sequences of the last prefill.
 * KGM_EINPUT when B, P or the context would pass the limits or an id is outside the
 * vocabulary (nothing is computed then). */
int kgm_prefill(kgm_model *m, long B, long P, const int64_t *ids);
/* Decode runs every layer in one call of the transformer_tkg megakernel where it covers the
 * model (Llama-style: no QKV or o_proj bias; weights not fp8; head_dim even, at most 128;
 * hidden a multiple of 128; at most 32 layers) unless no_megakernel; else, and always in
 * prefill, the chain of single-op kernels. kgm_stats says which. */
int kgm_decode(kgm_model *m, long B, const int64_t *ids);

/* The logits of the last call, [B, T, V] fp32: T = P for a prefill with all_logits, else 1
 * (the last position of each row). Valid until the next call. */
const float *kgm_logits(const kgm_model *m, long *T);
/* Layer l's output of the last call, [B, S, H] fp32 (S its tokens per row): l = 0 the
 * embeddings, l = L the last layer's after the final norm (as HF returns them); NULL
 * without keep_hidden. A decode step through the megakernel has no layer outputs in between:
 * layers 1 to L-1 are NaN then (no_megakernel for them). */
const float *kgm_hidden(const kgm_model *m, long l);
/* Tokens each sequence holds in the cache. */
long kgm_position(const kgm_model *m);

/* What start-up took and what the model holds. */
typedef struct kgm_stats {
    double spec_ms, generate_ms, compile_ms, load_ms;
    int kernels, aot;
    long spec_lines, max_context, max_batch;
    size_t weight_bytes, cache_bytes, act_bytes;
    size_t read_bytes;   /* bytes of tensor data loading read from the safetensors files
                            (this rank's shard; the embeddings are read per token later) */
    int tp, tp_rank;
    const char *weights; /* "f32", "bf16", "fp16" or "e4m3" (the projections' and the LM
                            head's format) */
    int megakernel;      /* decode runs through the transformer_tkg megakernel */
    const char *megakernel_off; /* else why the chain decodes (static text), e.g. "a QKV or
                                   o_proj bias"; NULL with the megakernel */
    long megakernel_steps; /* decode steps the megakernel has run */
    long moe_cte_calls, moe_tkg_calls; /* Mixtral: MoE blocks run through moe_cte (prefill,
                                          the router's picks in blocks) and moe_tkg (decode) */
} kgm_stats;
void kgm_stats_of(const kgm_model *m, kgm_stats *s);

#ifdef __cplusplus
}
#endif
#endif /* KGEN_MODEL_H */
