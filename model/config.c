/* config.c: a Hugging Face config.json read with jansson into a kgm_config (model/hf_config.h).
 * The file is input a user did not write: every size is bounded where it enters, every product
 * the model forms from them is checked, and anything kgen cannot run exactly as HF would (another
 * architecture, a rope scaling it does not implement, sliding-window attention) is refused with
 * one line, "<file>: <field>: <why>". */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kgen/abi.h"
#include "kgen/ckd.h"
#include "model/hf_config.h"

/* config.json files are a few kilobytes; a larger file is not one */
#define MAX_FILE (4L << 20)

/* ---- errors ------------------------------------------------------------------------------- */

typedef struct reader {
    const char *file; /* the config.json path, as messages name it */
    char *err;
    size_t errlen;
} reader;

/* "<file>: <field>: <why>" into err; returns KG_ESPEC so callers can `return bad(...)`. */
static int bad(const reader *r, const char *field, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (r->err && r->errlen)
        snprintf(r->err, r->errlen, "%s: %s: %s", r->file, field, why);
    return KG_ESPEC;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* ---- typed fields --------------------------------------------------------------------------
 * Each getter reads o[key], names the field "<pfx>.<key>" (or "<key>" at the top level), and
 * treats null as absent: HF writes null for a field left at its default. */

typedef struct field {
    const json_t *o;  /* the object the key is in */
    const char *pfx;  /* its path: "" for the top level, "rope_scaling", ... */
} field;

static const char *fname(char *buf, size_t len, field f, const char *key)
{
    snprintf(buf, len, "%.60s%s%.60s", f.pfx, *f.pfx ? "." : "", key);
    return buf;
}

/* o[key], or NULL when absent or null. */
static json_t *opt(field f, const char *key)
{
    json_t *v = json_object_get(f.o, key);
    return json_is_null(v) ? NULL : v;
}

/* An integer in [lo, hi]; def when absent (def < 0: the field is required). */
static int get_long(const reader *r, field f, const char *key, long lo, long hi, long def,
                    long *out)
{
    char n[128];
    json_t *v = opt(f, key);
    fname(n, sizeof n, f, key);
    if (!v) {
        if (def < 0)
            return bad(r, n, "missing");
        *out = def;
        return KG_OK;
    }
    if (!json_is_integer(v))
        return bad(r, n, "expected an integer, got %s", type_name(v));
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return bad(r, n, "%lld is outside kgen's range [%ld, %ld]", (long long)x, lo, hi);
    *out = (long)x;
    return KG_OK;
}

/* A number (integer or real) with lo < x <= hi (lo_closed: lo <= x); def when absent (a NaN def:
 * the field is required). jansson refuses NaN and infinities in the text itself. */
static int get_num(const reader *r, field f, const char *key, double lo, int lo_closed,
                   double hi, double def, double *out)
{
    char n[128];
    json_t *v = opt(f, key);
    fname(n, sizeof n, f, key);
    if (!v) {
        if (isnan(def))
            return bad(r, n, "missing");
        *out = def;
        return KG_OK;
    }
    if (!json_is_number(v))
        return bad(r, n, "expected a number, got %s", type_name(v));
    double x = json_number_value(v);
    if (!(lo_closed ? x >= lo : x > lo) || !(x <= hi))
        return bad(r, n, "%g is outside kgen's range %s%g, %g]", x, lo_closed ? "[" : "(", lo,
                   hi);
    *out = x;
    return KG_OK;
}

static int get_bool(const reader *r, field f, const char *key, int def, int *out)
{
    char n[128];
    json_t *v = opt(f, key);
    if (!v) {
        *out = def;
        return KG_OK;
    }
    if (!json_is_boolean(v))
        return bad(r, fname(n, sizeof n, f, key), "expected true or false, got %s",
                   type_name(v));
    *out = json_is_true(v);
    return KG_OK;
}

/* A string, or *out = NULL when absent. */
static int get_str(const reader *r, field f, const char *key, const char **out)
{
    char n[128];
    json_t *v = opt(f, key);
    *out = NULL;
    if (!v)
        return KG_OK;
    if (!json_is_string(v))
        return bad(r, fname(n, sizeof n, f, key), "expected a string, got %s", type_name(v));
    *out = json_string_value(v);
    return KG_OK;
}

/* ---- architecture ------------------------------------------------------------------------- */

static const struct {
    const char *cls, *type;
} archs[] = { [KGM_LLAMA] = { "LlamaForCausalLM", "llama" },
              [KGM_QWEN2] = { "Qwen2ForCausalLM", "qwen2" },
              [KGM_MIXTRAL] = { "MixtralForCausalLM", "mixtral" } };

const char *kgm_arch_name(kgm_arch a)
{
    return (unsigned)a < sizeof archs / sizeof archs[0] ? archs[a].cls : NULL;
}

/* architectures[0] when the list is there, else model_type; both, when both are given, must
 * name the same architecture (a config that says two things is not guessed at). */
static int read_arch(const reader *r, field top, kgm_config *c)
{
    const json_t *list = opt(top, "architectures");
    const char *type, *cls = NULL;
    int rc = get_str(r, top, "model_type", &type);
    if (rc != KG_OK)
        return rc;
    if (list && !json_is_array(list))
        return bad(r, "architectures", "expected a list, got %s", type_name(list));
    if (list && json_array_size(list) > 0) {
        const json_t *first = json_array_get(list, 0);
        if (!json_is_string(first))
            return bad(r, "architectures[0]", "expected a string, got %s", type_name(first));
        cls = json_string_value(first);
    }
    int by_cls = -1, by_type = -1;
    for (int a = 0; a < (int)(sizeof archs / sizeof archs[0]); a++) {
        if (cls && strcmp(cls, archs[a].cls) == 0)
            by_cls = a;
        if (type && strcmp(type, archs[a].type) == 0)
            by_type = a;
    }
    if (cls && by_cls < 0)
        return bad(r, "architectures[0]", "\"%.80s\" is not supported (kgen runs "
                   "LlamaForCausalLM, Qwen2ForCausalLM and MixtralForCausalLM)", cls);
    if (!cls && !type)
        return bad(r, "architectures", "missing, and no model_type either");
    if (!cls && by_type < 0)
        return bad(r, "model_type", "\"%.80s\" is not supported (kgen runs \"llama\", "
                   "\"qwen2\" and \"mixtral\")", type);
    if (cls && type && by_type != by_cls)
        return bad(r, "model_type", "\"%.80s\" contradicts architectures[0] \"%s\"", type, cls);
    c->arch = (kgm_arch)(cls ? by_cls : by_type);
    return KG_OK;
}

/* ---- sizes -------------------------------------------------------------------------------- */

static int read_heads(const reader *r, field top, kgm_config *c)
{
    int rc = get_long(r, top, "num_attention_heads", 1, KGM_MAX_HEADS, -1, &c->q_heads);
    if (rc == KG_OK)
        rc = get_long(r, top, "num_key_value_heads", 1, KGM_MAX_HEADS, c->q_heads,
                      &c->kv_heads);
    if (rc != KG_OK)
        return rc;
    if (c->q_heads % c->kv_heads != 0)
        return bad(r, "num_key_value_heads", "%ld does not divide num_attention_heads %ld",
                   c->kv_heads, c->q_heads);
    if (opt(top, "head_dim"))
        rc = get_long(r, top, "head_dim", 1, KGM_MAX_HEAD_DIM, -1, &c->head_dim);
    else if (c->hidden % c->q_heads != 0)
        return bad(r, "num_attention_heads", "%ld does not divide hidden_size %ld (and no "
                   "head_dim is given)", c->q_heads, c->hidden);
    else if ((c->head_dim = c->hidden / c->q_heads) > KGM_MAX_HEAD_DIM)
        return bad(r, "num_attention_heads", "hidden_size / num_attention_heads = %ld is above "
                   "kgen's head_dim limit of %ld", c->head_dim, KGM_MAX_HEAD_DIM);
    if (rc == KG_OK && c->head_dim % 2 != 0)
        return bad(r, "head_dim", "%ld is odd: rotary embeddings rotate pairs", c->head_dim);
    return rc;
}

static int read_sizes(const reader *r, field top, kgm_config *c)
{
    /* HF's defaults where a config may leave a field out */
    long max_pos = c->arch == KGM_QWEN2 ? 32768 : 2048;
    int rc = get_long(r, top, "hidden_size", 1, KGM_MAX_HIDDEN, -1, &c->hidden);
    if (rc == KG_OK)
        rc = get_long(r, top, "intermediate_size", 1, KGM_MAX_INTERMEDIATE, -1,
                      &c->intermediate);
    if (rc == KG_OK)
        rc = get_long(r, top, "num_hidden_layers", 1, KGM_MAX_LAYERS, -1, &c->layers);
    if (rc == KG_OK)
        rc = get_long(r, top, "vocab_size", 1, KGM_MAX_VOCAB, -1, &c->vocab);
    if (rc == KG_OK)
        rc = get_long(r, top, "max_position_embeddings", 1, KGM_MAX_POSITION, max_pos,
                      &c->max_position);
    if (rc == KG_OK)
        rc = get_num(r, top, "rms_norm_eps", 0, 0, 1, 1e-6, &c->rms_eps);
    return rc == KG_OK ? read_heads(r, top, c) : rc;
}

/* ---- rotary embeddings -------------------------------------------------------------------
 * Newer HF writes rope_parameters {rope_theta, rope_type, and the scaling's own fields}; older
 * configs have a top-level rope_theta and a rope_scaling object (or null) whose type is under
 * "rope_type" or, older still, "type". rope_parameters is read where both are present, and the
 * other must agree with it. */

static int read_llama3(const reader *r, field rs, kgm_config *c)
{
    const double nan = NAN;
    int rc = get_num(r, rs, "factor", 1, 1, 1024, nan, &c->rope_factor);
    if (rc == KG_OK)
        rc = get_num(r, rs, "low_freq_factor", 0, 0, 1e6, nan, &c->rope_low_freq_factor);
    if (rc == KG_OK)
        rc = get_num(r, rs, "high_freq_factor", 0, 0, 1e6, nan, &c->rope_high_freq_factor);
    if (rc == KG_OK)
        rc = get_long(r, rs, "original_max_position_embeddings", 1, KGM_MAX_POSITION, -1,
                      &c->rope_original_max_position);
    if (rc != KG_OK)
        return rc;
    if (!(c->rope_high_freq_factor > c->rope_low_freq_factor)) {
        char n[128];
        return bad(r, fname(n, sizeof n, rs, "high_freq_factor"), "%g is not above "
                   "low_freq_factor %g", c->rope_high_freq_factor, c->rope_low_freq_factor);
    }
    return KG_OK;
}

/* partial_rotary_factor below 1 rotates only part of each head: not what kgen computes */
static int check_partial(const reader *r, field f)
{
    double p;
    char n[128];
    int rc = get_num(r, f, "partial_rotary_factor", 0, 0, 1, 1, &p);
    if (rc == KG_OK && p != 1)
        return bad(r, fname(n, sizeof n, f, "partial_rotary_factor"), "%g is not supported "
                   "(kgen rotates whole heads)", p);
    return rc;
}

/* The rope type of rs ("rope_type", or the older "type"; absent is "default") into *type, and
 * the key it was under into *tkey. */
static int rope_kind(const reader *r, field rs, const char **tkey, const char **type)
{
    *tkey = opt(rs, "rope_type") ? "rope_type" : "type";
    int rc = get_str(r, rs, *tkey, type);
    if (rc == KG_OK && !*type)
        *type = "default";
    return rc;
}

/* Where a config has both forms, they must say the same (HF would read one of them; which one
 * depends on its version, so kgen guesses neither). */
static int check_both(const reader *r, field top, field rs, const char *type)
{
    /* both rope_theta values were read as numbers already */
    const json_t *old = opt(top, "rope_scaling"), *t = opt(top, "rope_theta");
    const json_t *t2 = opt(rs, "rope_theta");
    field os = { old, "rope_scaling" };
    const char *tkey, *otype;
    char n[128];
    int rc;
    if (t && t2 && json_number_value(t) != json_number_value(t2))
        return bad(r, "rope_theta", "%g contradicts rope_parameters.rope_theta %g",
                   json_number_value(t), json_number_value(t2));
    if (!old)
        return KG_OK;
    if (!json_is_object(old))
        return bad(r, "rope_scaling", "expected an object, got %s", type_name(old));
    if ((rc = rope_kind(r, os, &tkey, &otype)) != KG_OK)
        return rc;
    if (strcmp(otype, type) != 0)
        return bad(r, fname(n, sizeof n, os, tkey), "\"%.60s\" contradicts "
                   "rope_parameters.rope_type \"%.60s\"", otype, type);
    return KG_OK;
}

static int read_rope(const reader *r, field top, kgm_config *c)
{
    const char *key = opt(top, "rope_parameters") ? "rope_parameters" : "rope_scaling";
    const json_t *o = opt(top, key);
    field rs = { o, key };
    const char *tkey, *type;
    char n[128];
    if (o && !json_is_object(o))
        return bad(r, key, "expected an object, got %s", type_name(o));
    int rc = get_num(r, top, "rope_theta", 1, 0, 1e12, 10000, &c->rope_theta);
    if (rc == KG_OK && o)
        rc = get_num(r, rs, "rope_theta", 1, 0, 1e12, c->rope_theta, &c->rope_theta);
    if (rc == KG_OK)
        rc = check_partial(r, top);
    if (rc == KG_OK && o)
        rc = check_partial(r, rs);
    if (rc != KG_OK || !o)
        return rc;
    if ((rc = rope_kind(r, rs, &tkey, &type)) != KG_OK)
        return rc;
    if (strcmp(key, "rope_parameters") == 0 && (rc = check_both(r, top, rs, type)) != KG_OK)
        return rc;
    c->rope_type = KGM_ROPE_DEFAULT;
    if (strcmp(type, "default") == 0)
        return KG_OK;
    if (strcmp(type, "llama3") == 0) {
        c->rope_type = KGM_ROPE_LLAMA3;
        return read_llama3(r, rs, c);
    }
    return bad(r, fname(n, sizeof n, rs, tkey), "\"%.60s\" is not supported (kgen runs "
               "\"default\" and \"llama3\")", type);
}

/* ---- everything else the layer graph depends on -------------------------------------------- */

static int read_dtype(const reader *r, field top, kgm_config *c)
{
    static const struct {
        const char *name;
        kg_dtype t;
    } names[] = { { "float32", KG_F32 }, { "bfloat16", KG_BF16 }, { "float16", KG_F16 } };
    /* `dtype` is the newer name of `torch_dtype`; null or absent is HF's default, float32 */
    const char *key = opt(top, "dtype") ? "dtype" : "torch_dtype", *s;
    int rc = get_str(r, top, key, &s);
    c->dtype = KG_F32;
    if (rc != KG_OK || !s)
        return rc;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0) {
            c->dtype = names[i].t;
            return KG_OK;
        }
    return bad(r, key, "\"%.60s\" is not supported (kgen reads float32, bfloat16 and float16)",
               s);
}

/* Sliding-window attention, per model (use_sliding_window) or per layer (layer_types): kgen's
 * attention is full causal attention, so a config that asks for a window is refused. */
static int check_window(const reader *r, field top)
{
    int on;
    int rc = get_bool(r, top, "use_sliding_window", 0, &on);
    if (rc != KG_OK)
        return rc;
    if (on)
        return bad(r, "use_sliding_window", "true is not supported (kgen runs full attention)");
    const json_t *types = opt(top, "layer_types");
    if (!types)
        return KG_OK;
    if (!json_is_array(types))
        return bad(r, "layer_types", "expected a list, got %s", type_name(types));
    for (size_t i = 0; i < json_array_size(types); i++) {
        const json_t *t = json_array_get(types, i);
        if (!json_is_string(t) || strcmp(json_string_value(t), "full_attention") != 0) {
            char n[64];
            snprintf(n, sizeof n, "layer_types[%zu]", i);
            return bad(r, n, "%s%.60s%s is not supported (kgen runs \"full_attention\")",
                       json_is_string(t) ? "\"" : "", json_is_string(t) ?
                       json_string_value(t) : type_name(t), json_is_string(t) ? "\"" : "");
        }
    }
    return KG_OK;
}

/* Mixtral's sparse MoE block: num_local_experts SiLU experts, num_experts_per_tok of them
 * per token (router softmax, top-k, renormalised); its sliding_window (Mistral's) must be off:
 * null, or no shorter than max_position_embeddings. Training-only fields (router_aux_loss_coef,
 * router_jitter_noise, output_router_logits) change nothing at inference. */
static int read_moe(const reader *r, field top, kgm_config *c)
{
    if (c->arch != KGM_MIXTRAL)
        return KG_OK;
    int rc = get_long(r, top, "num_local_experts", 1, KGM_MAX_EXPERTS, -1, &c->experts);
    if (rc == KG_OK)
        rc = get_long(r, top, "num_experts_per_tok", 1, KGM_MAX_EXPERTS_PER_TOK, -1,
                      &c->experts_per_tok);
    if (rc != KG_OK)
        return rc;
    if (c->experts_per_tok > c->experts)
        return bad(r, "num_experts_per_tok", "%ld is more than num_local_experts %ld",
                   c->experts_per_tok, c->experts);
    long window;
    if ((rc = get_long(r, top, "sliding_window", 1, KGM_MAX_POSITION, 0, &window)) != KG_OK)
        return rc;
    if (window && window < c->max_position)
        return bad(r, "sliding_window", "%ld is not supported (kgen runs full attention: null, "
                   "or at least max_position_embeddings %ld)", window, c->max_position);
    return KG_OK;
}

static int read_features(const reader *r, field top, kgm_config *c)
{
    int mlp_bias, attention_bias;
    const char *act;
    int rc = get_bool(r, top, "tie_word_embeddings", 0, &c->tie_embeddings);
    if (rc == KG_OK)
        rc = get_bool(r, top, "attention_bias", 0, &attention_bias);
    if (rc == KG_OK)
        rc = get_bool(r, top, "mlp_bias", 0, &mlp_bias);
    if (rc == KG_OK)
        rc = get_str(r, top, "hidden_act", &act);
    if (rc != KG_OK)
        return rc;
    /* Qwen2's q/k/v projections always have a bias (its config has no field for it), its o_proj
     * never; Llama's attention_bias puts one on all four */
    c->qkv_bias = c->arch == KGM_QWEN2 || (c->arch == KGM_LLAMA && attention_bias);
    c->o_bias = c->arch == KGM_LLAMA && attention_bias;
    if (mlp_bias)
        return bad(r, "mlp_bias", "true is not supported (kgen's MLP has no bias)");
    if (act && strcmp(act, "silu") != 0)
        return bad(r, "hidden_act", "\"%.60s\" is not supported (kgen runs \"silu\")", act);
    if ((rc = read_dtype(r, top, c)) != KG_OK)
        return rc;
    return check_window(r, top);
}

/* ---- products ------------------------------------------------------------------------------
 * The weight counts of the model, formed with checked products: the bounds above keep them
 * far from overflowing size_t, and these checks keep that true whatever the bounds become. */

static int layer_params(const kgm_config *c, size_t *n)
{
    size_t q, kv, qkv, o, mlp, t;
    size_t H = (size_t)c->hidden, d = (size_t)c->head_dim;
    if (kg_ckd_mul(&q, (size_t)c->q_heads, d) || kg_ckd_mul(&kv, (size_t)c->kv_heads, d) ||
        kg_ckd_add(&t, kv, kv) || kg_ckd_add(&t, t, q) || kg_ckd_mul(&qkv, t, H) ||
        kg_ckd_mul(&o, q, H) || kg_ckd_mul(&mlp, H, (size_t)c->intermediate) ||
        kg_ckd_mul(&mlp, mlp, 3))
        return 1;
    /* Mixtral: that MLP per expert, and the router [E, H] */
    size_t router;
    if (c->experts && (kg_ckd_mul(&mlp, mlp, (size_t)c->experts) ||
                       kg_ckd_mul(&router, H, (size_t)c->experts) ||
                       kg_ckd_add(&mlp, mlp, router)))
        return 1;
    /* the two norms' weights; the biases of q, k, v and o */
    if (kg_ckd_add(&t, qkv, o) || kg_ckd_add(&t, t, mlp) || kg_ckd_add(&t, t, 2 * H) ||
        (c->qkv_bias && kg_ckd_add(&t, t, q + 2 * kv)) || (c->o_bias && kg_ckd_add(&t, t, H)))
        return 1;
    *n = t;
    return 0;
}

static int count_params(const reader *r, kgm_config *c)
{
    size_t layer, all, embed;
    if (layer_params(c, &layer) || kg_ckd_mul(&all, layer, (size_t)c->layers) ||
        kg_ckd_mul(&embed, (size_t)c->vocab, (size_t)c->hidden) ||
        kg_ckd_add(&all, all, embed) || kg_ckd_add(&all, all, (size_t)c->hidden) ||
        (!c->tie_embeddings && kg_ckd_add(&all, all, embed)) || all > KGM_MAX_PARAMS)
        return bad(r, "num_hidden_layers", "the model's weights are more than kgen's limit of "
                   "%zu elements", KGM_MAX_PARAMS);
    c->params = all;
    return KG_OK;
}

/* ---- the file ----------------------------------------------------------------------------- */

/* Reads n bytes; nonzero (errno set, or 0 at an early end of file) if they are not there. */
static int read_all(int fd, char *buf, size_t n)
{
    while (n > 0) {
        errno = 0;
        ssize_t got = read(fd, buf, n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        buf += got;
        n -= (size_t)got;
    }
    return 0;
}

/* The text of a regular file of at most MAX_FILE bytes, NUL-terminated (malloc'd). O_NONBLOCK
 * so a FIFO is refused rather than blocking the open. */
static int read_text(const reader *r, char **text, size_t *len)
{
    int fd = open(r->file, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    int rc = KG_EIO;
    if (fd < 0) {
        snprintf(r->err, r->errlen, "%s: cannot open (%s)", r->file, strerror(errno));
        return KG_EIO;
    }
    *text = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        snprintf(r->err, r->errlen, "%s: not a regular file", r->file);
    else if (st.st_size > MAX_FILE)
        snprintf(r->err, r->errlen, "%s: %lld bytes is above kgen's limit of %ld for a "
                 "config.json", r->file, (long long)st.st_size, MAX_FILE);
    else if (!(*text = malloc((size_t)st.st_size + 1)))
        snprintf(r->err, r->errlen, "%s: out of memory", r->file), rc = KG_ENOMEM;
    else if (read_all(fd, *text, (size_t)st.st_size) != 0)
        snprintf(r->err, r->errlen, "%s: cannot read (%s)", r->file,
                 errno ? strerror(errno) : "the file shrank while read");
    else
        rc = KG_OK;
    close(fd);
    if (rc != KG_OK) {
        free(*text);
        *text = NULL;
        return rc;
    }
    (*text)[st.st_size] = '\0';
    *len = (size_t)st.st_size;
    return KG_OK;
}

static int parse(const reader *r, json_t *root, kgm_config *c)
{
    field top = { root, "" };
    int rc = read_arch(r, top, c);
    if (rc == KG_OK)
        rc = read_sizes(r, top, c);
    if (rc == KG_OK)
        rc = read_rope(r, top, c);
    if (rc == KG_OK)
        rc = read_features(r, top, c);
    if (rc == KG_OK)
        rc = read_moe(r, top, c);
    if (rc == KG_OK)
        rc = count_params(r, c);
    return rc;
}

static int load(kgm_config *c, const char *path, char *err, size_t errlen)
{
    char file[4096], dummy[1];
    struct stat st;
    reader r = { file, err && errlen ? err : dummy, err && errlen ? errlen : sizeof dummy };
    memset(c, 0, sizeof *c);
    /* a folder holds config.json; anything else is the file itself */
    int n;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        n = snprintf(file, sizeof file, "%s%sconfig.json", path,
                     path[0] && path[strlen(path) - 1] == '/' ? "" : "/");
    else
        n = snprintf(file, sizeof file, "%s", path);
    if (n < 0 || (size_t)n >= sizeof file) {
        /* a cut path could name another file */
        snprintf(r.err, r.errlen, "%.200s...: path longer than %zu bytes", path,
                 sizeof file - 1);
        return KG_EIO;
    }
    char *text;
    size_t len;
    int rc = read_text(&r, &text, &len);
    if (rc != KG_OK)
        return rc;
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (!root) {
        snprintf(r.err, r.errlen, "%s: not JSON: line %d column %d: %s", file, je.line,
                 je.column, je.text);
        return KG_ESPEC;
    }
    if (!json_is_object(root))
        rc = bad(&r, "(top level)", "expected an object, got %s", type_name(root));
    else
        rc = parse(&r, root, c);
    json_decref(root);
    if (rc != KG_OK)
        memset(c, 0, sizeof *c);
    return rc;
}

/* Strings from the file are quoted in messages, and JSON lets them hold any character: a
 * newline or an escape sequence in one would break the one-line message (or a terminal). */
static void one_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

int kgm_config_load(kgm_config *c, const char *path, char *err, size_t errlen)
{
    int rc = load(c, path, err, errlen);
    if (rc != KG_OK && err && errlen)
        one_line(err);
    return rc;
}

/* ---- rotary inverse frequencies ------------------------------------------------------------ */

/* Llama 3.1's scaling of one default inverse frequency f (HF's llama3 rope type): wavelengths
 * shorter than original / high_freq_factor are kept, longer than original / low_freq_factor
 * are divided by factor, and the band between blends the two linearly in original / wavelen. */
static double llama3_scale(const kgm_config *c, double f)
{
    const double pi = 3.14159265358979323846;
    double orig = (double)c->rope_original_max_position;
    double wavelen = 2 * pi / f;
    double low_wavelen = orig / c->rope_low_freq_factor;
    double high_wavelen = orig / c->rope_high_freq_factor;
    if (wavelen < high_wavelen)
        return f;
    if (wavelen > low_wavelen)
        return f / c->rope_factor;
    double s = (orig / wavelen - c->rope_low_freq_factor) /
               (c->rope_high_freq_factor - c->rope_low_freq_factor);
    return (1 - s) * f / c->rope_factor + s * f;
}

void kgm_rope_inv_freq(const kgm_config *c, double *inv_freq)
{
    long half = c->head_dim / 2;
    for (long i = 0; i < half; i++) {
        double f = pow(c->rope_theta, -(double)(2 * i) / (double)c->head_dim);
        inv_freq[i] = c->rope_type == KGM_ROPE_LLAMA3 ? llama3_scale(c, f) : f;
    }
}
