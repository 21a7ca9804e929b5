/* tests/test_preset.c: the random-weight presets (model/preset.h) as a reader sees them:
 * config.json's keys, every HF tensor name with its shape, the weights' distribution (linear
 * N(0, 0.02), norms near 1), the values equal to kgm_preset_value, and the files a pure
 * function of preset, dtype and seed. The 3 GB llama3-8b-2l preset is checked by its config. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kgen/abi.h"
#include "model/preset.h"
#include "model/st.h"

static char g_tmp[64];

static void make_tmp(void)
{
    snprintf(g_tmp, sizeof g_tmp, "/tmp/kgt_preset_XXXXXX");
    cr_assert_not_null(mkdtemp(g_tmp), "mkdtemp failed");
}

/* Removes the model folders (one level of sub-folders) and the folder. */
static void remove_dir(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    while (d && (e = readdir(d)) != NULL) {
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (e->d_name[0] != '.' && unlink(path) != 0 && depth > 0)
            remove_dir(path, depth - 1);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

static void drop_tmp(void)
{
    if (g_tmp[0])
        remove_dir(g_tmp, 1);
}

TestSuite(preset, .init = make_tmp, .fini = drop_tmp);

static const char *model_dir(const char *name)
{
    static char path[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", g_tmp, name);
    return path[k];
}

static void write_model(const kgm_preset *p, kg_dtype t, uint64_t seed, const char *dir)
{
    char err[512] = "";
    size_t bytes = 0;
    cr_assert_eq(kgm_preset_write(p, t, seed, dir, &bytes, err, sizeof err), KG_OK, "%s", err);
    cr_assert_gt(bytes, 0);
}

/* ---- config.json ---------------------------------------------------------------------------- */

static long jint(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    cr_assert(json_is_integer(v), "config.json: %s is not an integer", key);
    return (long)json_integer_value(v);
}

static void check_config(const kgm_preset *p, const char *dir, const char *torch_dtype)
{
    char path[512];
    json_error_t je;
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    cr_assert_not_null(o, "%s: %s", path, je.text);
    const kgm_config *c = &p->config;
    int qwen = c->arch == KGM_QWEN2, mixtral = c->arch == KGM_MIXTRAL;
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(o, "architectures"), 0)),
                     qwen ? "Qwen2ForCausalLM" : mixtral ? "MixtralForCausalLM"
                                                         : "LlamaForCausalLM");
    cr_assert_str_eq(json_string_value(json_object_get(o, "model_type")),
                     qwen ? "qwen2" : mixtral ? "mixtral" : "llama");
    if (mixtral) {
        cr_assert_eq(jint(o, "num_local_experts"), c->experts);
        cr_assert_eq(jint(o, "num_experts_per_tok"), c->experts_per_tok);
        cr_assert(json_is_null(json_object_get(o, "sliding_window")));
    }
    cr_assert_eq(jint(o, "hidden_size"), c->hidden);
    cr_assert_eq(jint(o, "intermediate_size"), c->intermediate);
    cr_assert_eq(jint(o, "num_hidden_layers"), c->layers);
    cr_assert_eq(jint(o, "num_attention_heads"), c->q_heads);
    cr_assert_eq(jint(o, "num_key_value_heads"), c->kv_heads);
    cr_assert_eq(jint(o, "vocab_size"), c->vocab);
    cr_assert_eq(jint(o, "max_position_embeddings"), c->max_position);
    /* Qwen2 derives head_dim = hidden / heads */
    cr_assert_eq(qwen ? c->hidden / c->q_heads : jint(o, "head_dim"), c->head_dim);
    cr_assert_eq(json_real_value(json_object_get(o, "rms_norm_eps")), c->rms_eps);
    cr_assert_eq(json_real_value(json_object_get(o, "rope_theta")), c->rope_theta);
    cr_assert_eq(json_is_true(json_object_get(o, "tie_word_embeddings")), c->tie_embeddings);
    cr_assert_str_eq(json_string_value(json_object_get(o, "torch_dtype")), torch_dtype);
    const json_t *rs = json_object_get(o, "rope_scaling");
    if (c->rope_type == KGM_ROPE_LLAMA3) {
        cr_assert_str_eq(json_string_value(json_object_get(rs, "rope_type")), "llama3");
        cr_assert_eq(json_real_value(json_object_get(rs, "factor")), c->rope_factor);
        cr_assert_eq(jint(rs, "original_max_position_embeddings"),
                     c->rope_original_max_position);
    } else {
        cr_assert(json_is_null(rs), "rope_scaling is not null");
    }
    json_decref(o);
}

/* ---- the weights ---------------------------------------------------------------------------- */

/* Value k of tensor t as f32. */
static float value_at(const kgst_tensor *t, long k)
{
    const unsigned char *p = t->data;
    uint16_t h;
    float f;
    switch (t->dtype) {
    case KG_F32: memcpy(&f, p + 4 * k, 4); return f;
    case KG_BF16: memcpy(&h, p + 2 * k, 2); return kg_bf16_to_f32(h);
    case KG_F16: memcpy(&h, p + 2 * k, 2); return kg_f16_to_f32(h);
    default: cr_assert_fail("dtype %d", t->dtype); return 0;
    }
}

/* Mean and standard deviation of t's values; they lie within 3.5 sigma of the mean. */
static void check_stats(const kgst_tensor *t, double mean, double std)
{
    double s = 0, s2 = 0, worst = 0;
    for (long k = 0; k < t->count; k++) {
        double v = value_at(t, k);
        s += v, s2 += v * v;
        worst = fmax(worst, fabs(v - mean));
    }
    double m = s / (double)t->count, sd = sqrt(s2 / (double)t->count - m * m);
    double se = std / sqrt((double)t->count);   /* the mean's standard error */
    cr_assert_lt(fabs(m - mean), 6 * se + 1e-3 * std, "%s: mean %g, want %g", t->name, m, mean);
    cr_assert_lt(fabs(sd - std), 0.02 * std + 8 * std / sqrt((double)t->count),
                 "%s: std %g, want %g", t->name, sd, std);
    cr_assert_leq(worst, 3.47 * std, "%s: a value %g from the mean", t->name, worst);
}

static void expect(const kgst *st, kg_dtype dt, long d0, long d1, const char *fmt, int l)
{
    char name[128];
    snprintf(name, sizeof name, fmt, l);
    const kgst_tensor *t = kgst_find(st, name);
    cr_assert_not_null(t, "%s is missing", name);
    cr_assert_eq(t->dtype, dt, "%s: dtype", name);
    cr_assert_eq(t->rank, d1 ? 2 : 1, "%s: rank %d", name, t->rank);
    cr_assert_eq(t->shape[0], d0, "%s: shape[0] %ld, want %ld", name, t->shape[0], d0);
    cr_assert(!d1 || t->shape[1] == d1, "%s: shape[1] %ld, want %ld", name, t->shape[1], d1);
    if (strstr(name, "norm"))
        check_stats(t, 1.0, KGM_PRESET_NORM_STD);
    else
        check_stats(t, 0.0, KGM_PRESET_STD);
}

/* Every tensor HF's LlamaForCausalLM / Qwen2ForCausalLM loads, and nothing else. */
static void check_tensors(const kgm_preset *p, const char *dir, kg_dtype dt)
{
    const kgm_config *c = &p->config;
    kgst *st = NULL;
    char err[512] = "";
    cr_assert_eq(kgst_open(&st, dir, err, sizeof err), KG_OK, "%s", err);
    long h = c->hidden, q = c->q_heads * c->head_dim, kv = c->kv_heads * c->head_dim;
    long per_layer = c->experts ? 7 + 3 * c->experts : 9 + 3 * (c->qkv_bias != 0);
    cr_assert_eq(kgst_count(st), 2 + c->layers * per_layer + !c->tie_embeddings);
    expect(st, dt, c->vocab, h, "model.embed_tokens.weight", 0);
    expect(st, dt, h, 0, "model.norm.weight", 0);
    if (!c->tie_embeddings)
        expect(st, dt, c->vocab, h, "lm_head.weight", 0);
    cr_assert(!c->tie_embeddings || !kgst_find(st, "lm_head.weight"));
    for (int l = 0; l < c->layers; l++) {
        expect(st, dt, h, 0, "model.layers.%d.input_layernorm.weight", l);
        expect(st, dt, q, h, "model.layers.%d.self_attn.q_proj.weight", l);
        expect(st, dt, kv, h, "model.layers.%d.self_attn.k_proj.weight", l);
        expect(st, dt, kv, h, "model.layers.%d.self_attn.v_proj.weight", l);
        expect(st, dt, h, q, "model.layers.%d.self_attn.o_proj.weight", l);
        expect(st, dt, h, 0, "model.layers.%d.post_attention_layernorm.weight", l);
        if (c->experts) { /* Mixtral: the router and each expert's w1, w2, w3 */
            expect(st, dt, c->experts, h, "model.layers.%d.block_sparse_moe.gate.weight", l);
            for (long e = 0; e < c->experts; e++) {
                static const char *const w[3] = { "w1", "w2", "w3" };
                for (int j = 0; j < 3; j++) {
                    char f[96];
                    snprintf(f, sizeof f, "model.layers.%%d.block_sparse_moe.experts.%ld.%s."
                             "weight", e, w[j]);
                    expect(st, dt, j == 1 ? h : c->intermediate, j == 1 ? c->intermediate : h,
                           f, l);
                }
            }
            continue;
        }
        expect(st, dt, c->intermediate, h, "model.layers.%d.mlp.gate_proj.weight", l);
        expect(st, dt, c->intermediate, h, "model.layers.%d.mlp.up_proj.weight", l);
        expect(st, dt, h, c->intermediate, "model.layers.%d.mlp.down_proj.weight", l);
        if (c->qkv_bias) {
            expect(st, dt, q, 0, "model.layers.%d.self_attn.q_proj.bias", l);
            expect(st, dt, kv, 0, "model.layers.%d.self_attn.k_proj.bias", l);
            expect(st, dt, kv, 0, "model.layers.%d.self_attn.v_proj.bias", l);
        }
    }
    kgst_close(st);
}

Test(preset, every_small_preset, .timeout = 120)
{
    int checked = 0;
    for (int i = 0; i < kgm_preset_count(); i++) {
        const kgm_preset *p = kgm_preset_at(i);
        if (strcmp(p->name, "llama3-8b-2l") == 0)
            continue;
        const char *dir = model_dir(p->name);
        write_model(p, p->config.dtype, 0, dir);
        check_config(p, dir, "bfloat16");
        check_tensors(p, dir, KG_BF16);
        checked++;
    }
    cr_assert_eq(checked, kgm_preset_count() - 1);
    cr_assert_not_null(kgm_preset_find("llama-tiny"));
    cr_assert_not_null(kgm_preset_find("qwen2-tiny"));
    cr_assert_not_null(kgm_preset_find("llama3-tiny-rope"));
    cr_assert_null(kgm_preset_find("llama-huge"));
}

/* The benchmark model: Llama-3-8B's layers and vocabulary, 2 layers, bf16. */
Test(preset, llama3_8b_2l_config)
{
    const kgm_preset *p = kgm_preset_find("llama3-8b-2l");
    cr_assert_not_null(p);
    const kgm_config *c = &p->config;
    cr_assert(c->hidden == 4096 && c->intermediate == 14336 && c->layers == 2 &&
              c->q_heads == 32 && c->kv_heads == 8 && c->head_dim == 128 &&
              c->vocab == 128256 && c->dtype == KG_BF16 && !c->tie_embeddings);
}

/* ---- determinism ---------------------------------------------------------------------------- */

static unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(*n ? *n : 1);
    cr_assert_eq(fread(p, 1, *n, f), *n);
    fclose(f);
    return p;
}

static int same_file(const char *a, const char *b)
{
    size_t na, nb;
    unsigned char *pa = read_bytes(a, &na), *pb = read_bytes(b, &nb);
    int same = na == nb && memcmp(pa, pb, na) == 0;
    free(pa), free(pb);
    return same;
}

static const char *file_in(const char *dir, const char *name)
{
    static char path[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", dir, name);
    return path[k];
}

Test(preset, pure_function_of_seed_and_dtype)
{
    const kgm_preset *p = kgm_preset_find("qwen2-tiny");
    const char *a = model_dir("a"), *b = model_dir("b"), *c = model_dir("c");
    write_model(p, KG_BF16, 7, a);
    write_model(p, KG_BF16, 7, b);
    write_model(p, KG_BF16, 8, c);
    cr_assert(same_file(file_in(a, "model.safetensors"), file_in(b, "model.safetensors")));
    cr_assert(same_file(file_in(a, "config.json"), file_in(b, "config.json")));
    cr_assert(!same_file(file_in(a, "model.safetensors"), file_in(c, "model.safetensors")));
    cr_assert(same_file(file_in(a, "config.json"), file_in(c, "config.json")));
}

/* f32, bf16 and fp16 files hold the same draws: kgm_preset_value, rounded once. */
Test(preset, dtypes_round_the_same_values)
{
    const kgm_preset *p = kgm_preset_find("llama3-tiny-rope");
    const char *d32 = model_dir("f32"), *d16 = model_dir("bf16"), *dh = model_dir("f16");
    write_model(p, KG_F32, 3, d32);
    write_model(p, KG_BF16, 3, d16);
    write_model(p, KG_F16, 3, dh);
    check_config(p, d32, "float32");
    check_config(p, dh, "float16");
    kgst *s32 = NULL, *s16 = NULL, *sh = NULL;
    char err[512] = "";
    cr_assert_eq(kgst_open(&s32, d32, err, sizeof err), KG_OK, "%s", err);
    cr_assert_eq(kgst_open(&s16, d16, err, sizeof err), KG_OK, "%s", err);
    cr_assert_eq(kgst_open(&sh, dh, err, sizeof err), KG_OK, "%s", err);
    /* file order: embeddings (tensor 0), then layer 0's input norm (tensor 1), q_proj (2) */
    static const char *const names[] = { "model.embed_tokens.weight",
                                         "model.layers.0.input_layernorm.weight",
                                         "model.layers.0.self_attn.q_proj.weight" };
    for (int i = 0; i < 3; i++) {
        const kgst_tensor *a = kgst_find(s32, names[i]), *b = kgst_find(s16, names[i]),
                          *c = kgst_find(sh, names[i]);
        cr_assert(a && b && c && a->count == b->count && a->count == c->count);
        for (long k = 0; k < a->count; k++) {
            float v = kgm_preset_value(3, i, i == 1, (uint64_t)k);
            cr_assert_eq(value_at(a, k), v, "%s[%ld]", names[i], k);
            cr_assert_eq(value_at(b, k), kg_bf16_to_f32(kg_f32_to_bf16(v)), "%s[%ld]", names[i],
                         k);
            cr_assert_eq(value_at(c, k), kg_f16_to_f32(kg_f32_to_f16(v)), "%s[%ld]", names[i],
                         k);
        }
    }
    kgst_close(s32), kgst_close(s16), kgst_close(sh);
}

Test(preset, refuses_other_dtypes)
{
    char err[512] = "";
    cr_assert_eq(kgm_preset_write(kgm_preset_at(0), KG_E4M3FN, 0, model_dir("x"), NULL, err,
                                  sizeof err), KG_ESPEC);
    cr_assert(strstr(err, "preset llama-tiny: dtype e4m3fn"), "%s", err);
    cr_assert_eq(access(model_dir("x"), F_OK), -1);
}
