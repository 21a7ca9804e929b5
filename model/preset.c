/* preset.c: the named random-weight models (preset.h): the table, the tensor list of a config
 * under HF's names, the counter-based weights streamed into model.safetensors, config.json. */
#define _GNU_SOURCE
#include "model/preset.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kgen/abi.h"
#include "kgen/ckd.h"
#include "model/st.h"

/* ---- the table ------------------------------------------------------------------------------ */

#define LLAMA3_8B_LAYER                                                                   \
    .hidden = 4096, .intermediate = 14336, .q_heads = 32, .kv_heads = 8, .head_dim = 128, \
    .vocab = 128256

static const kgm_preset presets[] = {
    { "llama-tiny", "Llama, 4 layers, hidden 256, 8/2 heads, vocab 2048 (the README's model)",
      { .arch = KGM_LLAMA, .hidden = 256, .intermediate = 688, .layers = 4, .q_heads = 8,
        .kv_heads = 2, .head_dim = 32, .vocab = 2048, .max_position = 2048, .rms_eps = 1e-5,
        .rope_theta = 500000, .dtype = KG_BF16 } },
    { "qwen2-tiny", "Qwen2: QKV bias, tied embeddings, 2 layers, hidden 256, vocab 1024",
      { .arch = KGM_QWEN2, .hidden = 256, .intermediate = 512, .layers = 2, .q_heads = 4,
        .kv_heads = 2, .head_dim = 64, .vocab = 1024, .max_position = 4096, .rms_eps = 1e-6,
        .rope_theta = 1000000, .tie_embeddings = 1, .qkv_bias = 1, .dtype = KG_BF16 } },
    /* original_max_position 256 puts wavelengths in all three of llama3's bands (kept,
     * smoothed, divided by factor) within a short prompt, so a test sees the scaling */
    { "llama3-tiny-rope", "Llama with llama3 rope scaling (factor 8, original context 256), "
      "2 layers",
      { .arch = KGM_LLAMA, .hidden = 256, .intermediate = 688, .layers = 2, .q_heads = 4,
        .kv_heads = 2, .head_dim = 64, .vocab = 1024, .max_position = 2048, .rms_eps = 1e-5,
        .rope_theta = 500000, .rope_type = KGM_ROPE_LLAMA3, .rope_factor = 8,
        .rope_low_freq_factor = 1, .rope_high_freq_factor = 4,
        .rope_original_max_position = 256, .dtype = KG_BF16 } },
    /* 8 experts of intermediate 128, top 2: a decode step reads a quarter of them */
    { "mixtral-tiny", "Mixtral: sparse MoE of 8 experts (top 2) every layer, 2 layers, hidden "
      "256",
      { .arch = KGM_MIXTRAL, .hidden = 256, .intermediate = 128, .layers = 2, .q_heads = 8,
        .kv_heads = 2, .head_dim = 32, .vocab = 1024, .max_position = 4096, .rms_eps = 1e-5,
        .rope_theta = 1000000, .experts = 8, .experts_per_tok = 2, .dtype = KG_BF16 } },
    { "llama3-8b-2l", "Llama-3-8B's layer shapes and vocabulary, 2 layers (3.0 GB, "
      "benchmarks)",
      { .arch = KGM_LLAMA, LLAMA3_8B_LAYER, .layers = 2, .max_position = 8192,
        .rms_eps = 1e-5, .rope_theta = 500000, .dtype = KG_BF16 } },
};
enum { NPRESETS = sizeof presets / sizeof presets[0] };

int kgm_preset_count(void)
{
    return NPRESETS;
}

const kgm_preset *kgm_preset_at(int i)
{
    return i >= 0 && i < NPRESETS ? &presets[i] : NULL;
}

const kgm_preset *kgm_preset_find(const char *name)
{
    for (int i = 0; name && i < NPRESETS; i++)
        if (strcmp(presets[i].name, name) == 0)
            return &presets[i];
    return NULL;
}

/* ---- the weights ---------------------------------------------------------------------------- */

/* splitmix64's output function: a bijection that mixes every input bit into every output bit. */
static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t tensor_key(uint64_t seed, int tensor)
{
    return mix64(seed ^ mix64((uint64_t)tensor));
}

/* Element e of the stream key: an approximately standard normal value. */
static float draw(uint64_t key, int norm, uint64_t e)
{
    uint64_t r = mix64(key + e * 0x9e3779b97f4a7c15ull);
    float s = 0.0f;
    for (int j = 0; j < 4; j++)
        s += (float)((r >> (16 * j)) & 0xffff) + 0.5f;   /* exact: below 2^19 */
    float z = (s * (1.0f / 65536.0f) - 2.0f) * 1.7320508f; /* Irwin-Hall(4): variance 1/3 */
    return norm ? 1.0f + KGM_PRESET_NORM_STD * z : KGM_PRESET_STD * z;
}

float kgm_preset_value(uint64_t seed, int tensor, int norm, uint64_t e)
{
    return draw(tensor_key(seed, tensor), norm, e);
}

/* ---- the tensor list ------------------------------------------------------------------------ */

enum { NAME_LEN = 64 };

/* A preset's tensors in file order, with their names' storage and their kinds. */
typedef struct plan {
    kgst_tensor *t;
    char (*names)[NAME_LEN];
    int *norm;
    int n, cap;
    kg_dtype dtype;
    uint64_t seed;
} plan;

static void add(plan *p, int norm, long d0, long d1, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Appends tensor fmt... of shape [d0] (d1 == 0) or [d0, d1]. */
static void add(plan *p, int norm, long d0, long d1, const char *fmt, ...)
{
    kgst_tensor *t = &p->t[p->n];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->names[p->n], NAME_LEN, fmt, ap);
    va_end(ap);
    int esize = p->dtype == KG_F32 ? 4 : 2;
    t->name = p->names[p->n];
    t->dtype = p->dtype;
    t->rank = d1 ? 2 : 1;
    t->shape[0] = d0, t->shape[1] = d1;
    t->count = d1 ? d0 * d1 : d0;
    t->nbytes = (size_t)t->count * (size_t)esize;
    p->norm[p->n++] = norm;
}

static void add_layer(plan *p, const kgm_config *c, int l)
{
    long h = c->hidden, q = c->q_heads * c->head_dim, kv = c->kv_heads * c->head_dim;
    static const char *const qkv[] = { "q", "k", "v" };
    add(p, 1, h, 0, "model.layers.%d.input_layernorm.weight", l);
    for (int j = 0; j < 3; j++) {
        long out = j == 0 ? q : kv;
        add(p, 0, out, h, "model.layers.%d.self_attn.%s_proj.weight", l, qkv[j]);
        if (c->qkv_bias)
            add(p, 0, out, 0, "model.layers.%d.self_attn.%s_proj.bias", l, qkv[j]);
    }
    add(p, 0, h, q, "model.layers.%d.self_attn.o_proj.weight", l);
    if (c->o_bias) /* Llama's attention_bias gives o_proj one too */
        add(p, 0, h, 0, "model.layers.%d.self_attn.o_proj.bias", l);
    add(p, 1, h, 0, "model.layers.%d.post_attention_layernorm.weight", l);
    if (c->experts) { /* Mixtral's sparse MoE block: the router, each expert's w1, w2, w3 */
        add(p, 0, c->experts, h, "model.layers.%d.block_sparse_moe.gate.weight", l);
        for (long e = 0; e < c->experts; e++) {
            add(p, 0, c->intermediate, h, "model.layers.%d.block_sparse_moe.experts.%ld.w1.weight",
                l, e);
            add(p, 0, h, c->intermediate, "model.layers.%d.block_sparse_moe.experts.%ld.w2.weight",
                l, e);
            add(p, 0, c->intermediate, h, "model.layers.%d.block_sparse_moe.experts.%ld.w3.weight",
                l, e);
        }
        return;
    }
    add(p, 0, c->intermediate, h, "model.layers.%d.mlp.gate_proj.weight", l);
    add(p, 0, c->intermediate, h, "model.layers.%d.mlp.up_proj.weight", l);
    add(p, 0, h, c->intermediate, "model.layers.%d.mlp.down_proj.weight", l);
}

static void plan_free(plan *p)
{
    free(p->t);
    free(p->names);
    free(p->norm);
}

/* The tensors of config c in dtype: the embeddings, each layer's, the final norm, the LM head
 * unless tied. The presets' sizes are this file's own, far inside every bound. */
static int plan_model(plan *p, const kgm_config *c, kg_dtype dtype, uint64_t seed)
{
    memset(p, 0, sizeof *p);
    p->cap = 3 + (int)c->layers * (13 + 1 + 3 * (int)c->experts);
    p->t = calloc((size_t)p->cap, sizeof *p->t);
    p->names = calloc((size_t)p->cap, sizeof *p->names);
    p->norm = calloc((size_t)p->cap, sizeof *p->norm);
    if (!p->t || !p->names || !p->norm)
        return plan_free(p), KG_ENOMEM;
    p->dtype = dtype, p->seed = seed;
    add(p, 0, c->vocab, c->hidden, "model.embed_tokens.weight");
    for (int l = 0; l < c->layers; l++)
        add_layer(p, c, l);
    add(p, 1, c->hidden, 0, "model.norm.weight");
    if (!c->tie_embeddings)
        add(p, 0, c->vocab, c->hidden, "lm_head.weight");
    return KG_OK;
}

/* kg_f32_to_bf16 for the finite values draw gives (round to nearest even), inlined: the
 * benchmark model has 1.5 G of them. */
static inline uint16_t to_bf16(float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* kgst_fill_fn: elements [off, off + len) / esize of tensor i, drawn in parallel. */
static int fill(void *ctx, int i, size_t off, void *buf, size_t len)
{
    const plan *p = ctx;
    uint64_t key = tensor_key(p->seed, i);
    int norm = p->norm[i];
    size_t esize = p->dtype == KG_F32 ? 4 : 2;
    long n = (long)(len / esize);
    uint64_t e0 = off / esize;
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (long k = 0; k < n; k++) {
        float v = draw(key, norm, e0 + (uint64_t)k);
        if (p->dtype == KG_F32)
            ((float *)buf)[k] = v;
        else
            ((uint16_t *)buf)[k] = p->dtype == KG_BF16 ? to_bf16(v) : kg_f32_to_f16(v);
    }
    return KG_OK;
}

/* ---- config.json ---------------------------------------------------------------------------- */

static const char *torch_dtype(kg_dtype t)
{
    return t == KG_F32 ? "float32" : t == KG_BF16 ? "bfloat16" : "float16";
}

static json_t *rope_scaling(const kgm_config *c)
{
    if (c->rope_type != KGM_ROPE_LLAMA3)
        return json_null();
    return json_pack("{s:s, s:f, s:f, s:f, s:I}", "rope_type", "llama3", "factor",
                     c->rope_factor, "low_freq_factor", c->rope_low_freq_factor,
                     "high_freq_factor", c->rope_high_freq_factor,
                     "original_max_position_embeddings",
                     (json_int_t)c->rope_original_max_position);
}

/* The keys HF's LlamaConfig / Qwen2Config save, as a checkpoint on the Hub has them. */
static json_t *config_json(const kgm_config *c, kg_dtype dtype)
{
    int qwen = c->arch == KGM_QWEN2, mixtral = c->arch == KGM_MIXTRAL;
    json_t *o = json_pack(
        "{s:[s], s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:b, s:s, s:s, s:f, s:I, s:I,"
        " s:b, s:f, s:o}",
        "architectures", kgm_arch_name(c->arch),
        "model_type", qwen ? "qwen2" : mixtral ? "mixtral" : "llama",
        "hidden_size", (json_int_t)c->hidden, "intermediate_size", (json_int_t)c->intermediate,
        "num_hidden_layers", (json_int_t)c->layers,
        "num_attention_heads", (json_int_t)c->q_heads,
        "num_key_value_heads", (json_int_t)c->kv_heads, "vocab_size", (json_int_t)c->vocab,
        "max_position_embeddings", (json_int_t)c->max_position, "rms_norm_eps", c->rms_eps,
        "rope_theta", c->rope_theta, "tie_word_embeddings", c->tie_embeddings,
        "torch_dtype", torch_dtype(dtype), "hidden_act", "silu", "initializer_range",
        0.02, "bos_token_id", (json_int_t)1, "eos_token_id", (json_int_t)2,
        "use_cache", 1, "attention_dropout", 0.0, "rope_scaling", rope_scaling(c));
    if (!o)
        return NULL;
    int rc = 0;
    if (qwen) {
        /* Qwen2 derives head_dim and always has the QKV bias; its sliding window is off */
        rc |= json_object_set_new(o, "use_sliding_window", json_false());
        rc |= json_object_set_new(o, "sliding_window", json_integer(c->max_position));
        rc |= json_object_set_new(o, "max_window_layers", json_integer(c->layers));
    } else if (mixtral) {
        /* MixtralConfig's own keys; the router's training-only ones as HF saves them */
        rc |= json_object_set_new(o, "head_dim", json_integer(c->head_dim));
        rc |= json_object_set_new(o, "num_local_experts", json_integer(c->experts));
        rc |= json_object_set_new(o, "num_experts_per_tok", json_integer(c->experts_per_tok));
        rc |= json_object_set_new(o, "sliding_window", json_null());
        rc |= json_object_set_new(o, "router_aux_loss_coef", json_real(0.02));
        rc |= json_object_set_new(o, "router_jitter_noise", json_real(0.0));
        rc |= json_object_set_new(o, "output_router_logits", json_false());
    } else {
        rc |= json_object_set_new(o, "head_dim", json_integer(c->head_dim));
        rc |= json_object_set_new(o, "attention_bias", json_boolean(c->qkv_bias));
        rc |= json_object_set_new(o, "mlp_bias", json_false());
    }
    if (rc)
        json_decref(o), o = NULL;
    return o;
}

/* path written through a temporary file beside it. */
static int write_text(const char *path, const char *text, char *err, size_t errlen)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmpXXXXXX", path) >= (int)sizeof tmp)
        return snprintf(err, errlen, "%s: path too long", path), KG_EIO;
    int fd = mkstemp(tmp);
    if (fd < 0)
        return snprintf(err, errlen, "%s: cannot write (%s)", path, strerror(errno)), KG_EIO;
    FILE *f = fdopen(fd, "w");
    int ok = f && fchmod(fd, 0644) == 0 && fputs(text, f) >= 0;
    if (f)
        ok = fclose(f) == 0 && ok;
    else
        close(fd);
    if (ok && rename(tmp, path) == 0)
        return KG_OK;
    snprintf(err, errlen, "%s: cannot write (%s)", path, strerror(errno));
    unlink(tmp);
    return KG_EIO;
}

static int write_config(const kgm_config *c, kg_dtype dtype, const char *dir, char *err,
                        size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_t *o = config_json(c, dtype);
    char *text = o ? json_dumps(o, JSON_SORT_KEYS | JSON_INDENT(2) | JSON_REAL_PRECISION(15))
                   : NULL;
    json_decref(o);
    if (!text)
        return snprintf(err, errlen, "%s: out of memory", path), KG_ENOMEM;
    size_t n = strlen(text);
    char *line = realloc(text, n + 2);
    if (!line)
        return free(text), snprintf(err, errlen, "%s: out of memory", path), KG_ENOMEM;
    memcpy(line + n, "\n", 2);
    int rc = write_text(path, line, err, errlen);
    free(line);
    return rc;
}

/* ---- writing a model ------------------------------------------------------------------------ */

int kgm_preset_write(const kgm_preset *p, kg_dtype dtype, uint64_t seed, const char *dir,
                     size_t *bytes, char *err, size_t errlen)
{
    if (dtype != KG_F32 && dtype != KG_BF16 && dtype != KG_F16)
        return snprintf(err, errlen, "preset %s: dtype %s: the presets are written in f32, "
                        "bf16 or fp16", p->name, kg_dtype_name(dtype) ? kg_dtype_name(dtype)
                        : "?"), KG_ESPEC;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return snprintf(err, errlen, "%s: cannot create the folder (%s)", dir,
                        strerror(errno)), KG_EIO;
    plan pl;
    if (plan_model(&pl, &p->config, dtype, seed) != KG_OK)
        return snprintf(err, errlen, "%s: out of memory", dir), KG_ENOMEM;
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int rc = write_config(&p->config, dtype, dir, err, errlen);
    if (rc == KG_OK)
        rc = kgst_write_stream(path, pl.t, pl.n, fill, &pl, err, errlen);
    if (rc == KG_OK && bytes) {
        struct stat sb;
        *bytes = stat(path, &sb) == 0 ? (size_t)sb.st_size : 0;
    }
    plan_free(&pl);
    return rc;
}
