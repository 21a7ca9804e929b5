/* test_model_ref.c: the plain-loop reference forward pass (tests/ref/model_ref.c) against HF
 * transformers' own run of ../shared/golden/llama_gqa (prefill, three decode steps on the KV
 * cache, and one prefill of all ten tokens: logits and every hidden state within 1e-3), then
 * the paths the golden model does not take, each against a model built from the golden's
 * weights that must give the same numbers (or, where a feature must matter, must not):
 * Llama's attention bias on v and o, a q/k bias, tied embeddings and llama3 rope scaling. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kgen/abi.h"
#include "kgen/dtype.h"
#include "model/hf_config.h"
#include "model/st.h"
#include "ref/model_ref.h"
#include "util/jitp.h"
#include "util/vectors.h"

#define B 2      /* sequences in the golden run */
#define P 7      /* prefill tokens */
#define STEPS 3  /* decode steps */
#define TOTAL (P + STEPS)
#define TOL 1e-3 /* the golden README's bar for an fp32 implementation */

/* ---- the golden folder --------------------------------------------------------------------- */

typedef struct golden {
    kgm_config c;
    kgst *weights;   /* model.safetensors */
    kgst *out;       /* golden.safetensors */
    int64_t ids[B * TOTAL];
} golden;

static void golden_open(golden *g)
{
    char dir[4096], path[4200], err[512] = "";
    snprintf(dir, sizeof dir, "%s/golden/llama_gqa", kgt_shared_dir());
    cr_assert_eq(access(dir, R_OK), 0, "%s is absent: the golden model lives in ../shared "
                 "(set KGEN_SHARED_DIR)", dir);
    cr_assert_eq(kgm_config_load(&g->c, dir, err, sizeof err), KG_OK, "%s", err);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    cr_assert_eq(kgst_open(&g->weights, path, err, sizeof err), KG_OK, "%s", err);
    snprintf(path, sizeof path, "%s/golden.safetensors", dir);
    cr_assert_eq(kgst_open(&g->out, path, err, sizeof err), KG_OK, "%s", err);
    const kgst_tensor *ids = kgst_find(g->out, "input_ids");
    cr_assert_not_null(ids, "golden.safetensors has no input_ids");
    cr_assert(ids->dtype == KG_I64 && ids->rank == 2 && ids->shape[0] == B &&
              ids->shape[1] == TOTAL, "input_ids is not I64 [%d, %d]", B, TOTAL);
    memcpy(g->ids, ids->data, sizeof g->ids);
}

static void golden_close(golden *g)
{
    kgst_close(g->weights);
    kgst_close(g->out);
}

/* Tokens t0 .. t0 + T - 1 of every sequence: [B, T]. */
static void slice_ids(int64_t *dst, const golden *g, long t0, long T)
{
    for (long b = 0; b < B; b++)
        for (long t = 0; t < T; t++)
            dst[b * T + t] = g->ids[b * TOTAL + t0 + t];
}

/* The largest |got - want| over the golden tensor name, which must hold n F32 values. */
static double max_diff(const golden *g, const char *name, const float *got, long n)
{
    const kgst_tensor *t = kgst_find(g->out, name);
    cr_assert_not_null(t, "golden.safetensors has no %s", name);
    cr_assert(t->dtype == KG_F32 && t->count == n, "%s: %ld values, expected %ld F32", name,
              t->count, n);
    double worst = 0;
    long at = 0;
    for (long i = 0; i < n; i++) {
        float w;
        memcpy(&w, (const char *)t->data + 4 * i, 4);
        double d = fabs((double)got[i] - w);
        cr_assert(!isnan(d), "%s[%ld]: got %g, want %g", name, i, got[i], w);
        if (d > worst)
            worst = d, at = i;
    }
    cr_log_info("%-16s max |diff| %.3g (at %ld)", name, worst, at);
    return worst;
}

/* Runs prefill + STEPS decode steps (or one prefill of all TOTAL tokens) and compares. */
static void check_against_golden(golden *g, model_ref *m, int full)
{
    const kgm_config *c = &g->c;
    long V = c->vocab, H = c->hidden, L = c->layers, T = full ? TOTAL : P;
    float *logits = malloc(sizeof(float) * B * T * V);
    float *hidden = malloc(sizeof(float) * (L + 1) * B * T * H);
    int64_t ids[B * TOTAL];
    char err[512], name[64];
    cr_assert(logits && hidden);
    slice_ids(ids, g, 0, T);
    cr_assert_eq(model_ref_forward(m, ids, T, logits, hidden, err, sizeof err), KG_OK, "%s",
                 err);
    const char *run = full ? "full" : "prefill";
    snprintf(name, sizeof name, "%s_logits", run);
    cr_assert_leq(max_diff(g, name, logits, B * T * V), TOL, "%s", name);
    snprintf(name, sizeof name, "%s_hidden", run);
    cr_assert_leq(max_diff(g, name, hidden, (L + 1) * B * T * H), TOL, "%s", name);
    for (int s = 0; !full && s < STEPS; s++) {
        slice_ids(ids, g, P + s, 1);
        cr_assert_eq(model_ref_forward(m, ids, 1, logits, hidden, err, sizeof err), KG_OK, "%s",
                     err);
        snprintf(name, sizeof name, "decode%d_logits", s);
        cr_assert_leq(max_diff(g, name, logits, B * V), TOL, "%s", name);
        snprintf(name, sizeof name, "decode%d_hidden", s);
        cr_assert_leq(max_diff(g, name, hidden, (L + 1) * B * H), TOL, "%s", name);
    }
    cr_assert_eq(model_ref_len(m), TOTAL);
    free(logits);
    free(hidden);
}

Test(model_ref, golden_prefill_decode_and_full, .timeout = 120)
{
    golden g;
    golden_open(&g);
    model_ref *m;
    char err[512];
    cr_assert_eq(model_ref_open(&m, &g.c, g.weights, B, TOTAL, err, sizeof err), KG_OK, "%s",
                 err);
    check_against_golden(&g, m, 0);
    model_ref_reset(m);
    check_against_golden(&g, m, 1);
    /* the cache is full: one more token is refused, as is a token outside the vocabulary */
    int64_t ids[B] = { 1, 2 };
    cr_assert_eq(model_ref_forward(m, ids, 1, NULL, NULL, err, sizeof err), KG_EARG);
    model_ref_reset(m);
    ids[1] = g.c.vocab;
    cr_assert_eq(model_ref_forward(m, ids, 1, NULL, NULL, err, sizeof err), KG_EARG);
    cr_assert(strstr(err, "token id 512") != NULL, "%s", err);
    model_ref_close(m);
    golden_close(&g);
}

/* ---- models built from the golden's weights ------------------------------------------------ */

/* The golden's tensors, plus or minus some, written to a temporary file and opened. */
typedef struct built {
    kgst_tensor t[64];
    int n;
    char path[64];
    kgst *st;
} built;

static void built_from(built *w, const golden *g, const char *drop)
{
    w->n = 0;
    for (int i = 0; i < kgst_count(g->weights); i++) {
        const kgst_tensor *t = kgst_at(g->weights, i);
        if (drop && strcmp(t->name, drop) == 0)
            continue;
        cr_assert_lt(w->n, 64);
        w->t[w->n++] = *t;
    }
}

/* Adds a 1-D F32 tensor (data owned by the caller, alive until built_open). */
static void built_add(built *w, const char *name, const float *data, long n)
{
    kgst_tensor *t = &w->t[w->n++];
    memset(t, 0, sizeof *t);
    t->name = name;
    t->dtype = KG_F32;
    t->rank = 1;
    t->shape[0] = n;
    t->count = n;
    t->data = data;
    t->nbytes = (size_t)n * 4;
}

static void built_open(built *w)
{
    char err[512];
    snprintf(w->path, sizeof w->path, "/tmp/kgen_model_ref_XXXXXX");
    int fd = mkstemp(w->path);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(kgst_write(w->path, w->t, w->n, err, sizeof err), KG_OK, "%s", err);
    cr_assert_eq(kgst_open(&w->st, w->path, err, sizeof err), KG_OK, "%s", err);
}

static void built_close(built *w)
{
    kgst_close(w->st);
    unlink(w->path);
}

/* Prefill logits [B, P, V] of config c over weights st. */
static float *prefill(const golden *g, const kgm_config *c, const kgst *st)
{
    model_ref *m;
    char err[512];
    int64_t ids[B * P];
    float *logits = malloc(sizeof(float) * B * P * c->vocab);
    cr_assert_not_null(logits);
    cr_assert_eq(model_ref_open(&m, c, st, B, P, err, sizeof err), KG_OK, "%s", err);
    slice_ids(ids, g, 0, P);
    cr_assert_eq(model_ref_forward(m, ids, P, logits, NULL, err, sizeof err), KG_OK, "%s", err);
    model_ref_close(m);
    return logits;
}

/* The largest |a - b| over the logits of tokens t0 .. t1 - 1 of every sequence. */
static double diff_tokens(const float *a, const float *b, long V, long t0, long t1)
{
    double worst = 0;
    for (long s = 0; s < B; s++)
        for (long t = t0; t < t1; t++)
            for (long v = 0; v < V; v++) {
                long i = (s * P + t) * V + v;
                worst = fmax(worst, fabs((double)a[i] - b[i]));
            }
    return worst;
}

static float tensor_at(const kgst_tensor *t, long i)
{
    float f;
    memcpy(&f, (const char *)t->data + 4 * i, 4);
    return f;
}

/* Llama's attention_bias: a value bias b shifts every attention output by exactly b (the
 * softmax weights sum to 1), so o_proj's bias -W_o b cancels it: the model is the golden
 * one again. With the o bias left at zero it must not be. */
Test(model_ref, llama_attention_bias_v_and_o, .timeout = 120)
{
    golden g;
    golden_open(&g);
    const kgm_config *c = &g.c;
    long H = c->hidden, q = c->q_heads * c->head_dim, kv = c->kv_heads * c->head_dim;
    long L = c->layers, V = c->vocab, D = c->head_dim, G = c->q_heads / c->kv_heads;
    cr_assert_leq(L, 4);
    float *zero_q = calloc(q, 4), *zero_kv = calloc(kv, 4), *vb = malloc(4 * kv);
    float *ob = malloc(4 * H * L), *zero_h = calloc(H, 4);
    char names[4][4][80];
    for (long i = 0; i < kv; i++)
        vb[i] = 0.5f * sinf(0.37f * i + 1); /* as large as the values themselves */
    built w[2];
    for (int variant = 0; variant < 2; variant++) {
        built_from(&w[variant], &g, NULL);
        for (long l = 0; l < L; l++) {
            char n[80];
            snprintf(n, sizeof n, "model.layers.%ld.self_attn.o_proj.weight", l);
            const kgst_tensor *o = kgst_find(g.weights, n);
            cr_assert_not_null(o);
            /* query head i / D reads kv head i / D / G: its output moves by that head's b */
            for (long h = 0; h < H; h++) {
                double acc = 0;
                for (long i = 0; i < q; i++)
                    acc += (double)tensor_at(o, h * q + i) * vb[i / D / G * D + i % D];
                ob[l * H + h] = (float)-acc;
            }
            static const char *proj[4] = { "q_proj", "k_proj", "v_proj", "o_proj" };
            for (int p = 0; p < 4; p++)
                snprintf(names[l][p], sizeof names[l][p], "model.layers.%ld.self_attn.%s.bias",
                         l, proj[p]);
            built_add(&w[variant], names[l][0], zero_q, q);
            built_add(&w[variant], names[l][1], zero_kv, kv);
            built_add(&w[variant], names[l][2], vb, kv);
            built_add(&w[variant], names[l][3], variant == 0 ? ob + l * H : zero_h, H);
        }
        built_open(&w[variant]);
    }
    kgm_config cb = *c;
    cb.qkv_bias = cb.o_bias = 1;
    float *want = prefill(&g, c, g.weights);
    float *same = prefill(&g, &cb, w[0].st);
    float *other = prefill(&g, &cb, w[1].st);
    double d_same = diff_tokens(same, want, V, 0, P), d_other = diff_tokens(other, want, V, 0, P);
    cr_log_info("v bias cancelled by o bias: %.3g; v bias alone: %.3g", d_same, d_other);
    cr_assert_leq(d_same, 1e-4, "the o bias does not cancel the v bias: %g", d_same);
    cr_assert_geq(d_other, 1e-2, "a v bias changes nothing: %g", d_other);
    for (int v = 0; v < 2; v++)
        built_close(&w[v]);
    free(want), free(same), free(other);
    free(zero_q), free(zero_kv), free(vb), free(ob), free(zero_h);
    golden_close(&g);
}

/* A q or k bias: position 0 attends to itself alone, whatever its query and key, so the first
 * token's logits stay the golden ones; every later token's must move. */
Test(model_ref, qk_bias_moves_later_tokens_only, .timeout = 120)
{
    golden g;
    golden_open(&g);
    const kgm_config *c = &g.c;
    long q = c->q_heads * c->head_dim, kv = c->kv_heads * c->head_dim, V = c->vocab;
    float *qb = malloc(4 * q), *kb = malloc(4 * kv), *zero_kv = calloc(kv, 4);
    for (long i = 0; i < q; i++)
        qb[i] = 0.3f * cosf(0.11f * i);
    for (long i = 0; i < kv; i++)
        kb[i] = 0.3f * sinf(0.23f * i + 2);
    char names[4][3][80];
    cr_assert_leq(c->layers, 4);
    built w;
    built_from(&w, &g, NULL);
    for (long l = 0; l < c->layers; l++) {
        static const char *proj[3] = { "q_proj", "k_proj", "v_proj" };
        for (int p = 0; p < 3; p++)
            snprintf(names[l][p], sizeof names[l][p], "model.layers.%ld.self_attn.%s.bias", l,
                     proj[p]);
        built_add(&w, names[l][0], qb, q);
        built_add(&w, names[l][1], kb, kv);
        built_add(&w, names[l][2], zero_kv, kv);
    }
    built_open(&w);
    kgm_config cq = *c;
    cq.arch = KGM_QWEN2; /* q/k/v bias, no o bias */
    cq.qkv_bias = 1;
    float *want = prefill(&g, c, g.weights), *got = prefill(&g, &cq, w.st);
    double first = diff_tokens(got, want, V, 0, 1), later = diff_tokens(got, want, V, 1, P);
    cr_log_info("q/k bias: token 0 moves %.3g, tokens 1.. %.3g", first, later);
    cr_assert_leq(first, 1e-4, "a q/k bias changed the first token: %g", first);
    cr_assert_geq(later, 1e-2, "a q/k bias changes nothing: %g", later);
    built_close(&w);
    free(want), free(got), free(qb), free(kb), free(zero_kv);
    golden_close(&g);
}

/* Tied embeddings: a model without lm_head.weight reads embed_tokens for its logits, which
 * must equal the untied model whose lm_head is a copy of embed_tokens. */
Test(model_ref, tied_embeddings, .timeout = 120)
{
    golden g;
    golden_open(&g);
    const kgm_config *c = &g.c;
    built tied, copy;
    built_from(&tied, &g, "lm_head.weight");
    built_from(&copy, &g, "lm_head.weight");
    cr_assert_eq(tied.n, kgst_count(g.weights) - 1, "the golden model has no lm_head.weight");
    const kgst_tensor *embed = kgst_find(g.weights, "model.embed_tokens.weight");
    cr_assert_not_null(embed);
    kgst_tensor *lm = &copy.t[copy.n++];
    *lm = *embed;
    lm->name = "lm_head.weight";
    built_open(&tied);
    built_open(&copy);
    kgm_config ct = *c;
    ct.tie_embeddings = 1;
    float *got = prefill(&g, &ct, tied.st), *want = prefill(&g, c, copy.st);
    float *golden_lm = prefill(&g, c, g.weights);
    double d = diff_tokens(got, want, c->vocab, 0, P);
    double moved = diff_tokens(got, golden_lm, c->vocab, 0, P);
    cr_log_info("tied vs lm_head = embed_tokens: %.3g (vs the golden lm_head: %.3g)", d, moved);
    cr_assert_eq(d, 0, "tied embeddings differ from lm_head = embed_tokens by %g", d);
    cr_assert_geq(moved, 1e-2, "the logits do not depend on which matrix is the LM head");
    /* an untied config over the file without lm_head.weight is refused, naming it */
    model_ref *m;
    char err[512];
    cr_assert_eq(model_ref_open(&m, c, tied.st, B, P, err, sizeof err), KG_ESHAPE);
    cr_assert_str_eq(err, "tensor 'lm_head.weight': missing");
    built_close(&tied);
    built_close(&copy);
    free(got), free(want), free(golden_lm);
    golden_close(&g);
}

/* llama3 rope scaling over the golden weights. With an original context so long that every
 * wavelength is in the kept band the frequencies are the default ones, bit for bit, and so
 * are the logits. With an original context of 64 the low frequencies are divided by 8 (test_config
 * checks those values): position 0 does not rotate, so only later tokens move. */
Test(model_ref, llama3_rope, .timeout = 120)
{
    golden g;
    golden_open(&g);
    kgm_config c = g.c;
    c.rope_type = KGM_ROPE_LLAMA3;
    c.rope_factor = 8;
    c.rope_low_freq_factor = 1;
    c.rope_high_freq_factor = 4;
    c.rope_original_max_position = KGM_MAX_POSITION;
    float *want = prefill(&g, &g.c, g.weights), *kept = prefill(&g, &c, g.weights);
    c.rope_original_max_position = 64;
    float *scaled = prefill(&g, &c, g.weights);
    double d_kept = diff_tokens(kept, want, c.vocab, 0, P);
    double first = diff_tokens(scaled, want, c.vocab, 0, 1);
    double later = diff_tokens(scaled, want, c.vocab, 1, P);
    cr_log_info("llama3 rope: all kept %.3g; scaled: token 0 %.3g, tokens 1.. %.3g", d_kept,
                first, later);
    cr_assert_eq(d_kept, 0, "llama3 rope with every frequency kept differs by %g", d_kept);
    cr_assert_leq(first, 1e-5, "llama3 scaling moved position 0 by %g", first);
    cr_assert_geq(later, 1e-3, "llama3 scaling changes nothing: %g", later);
    free(want), free(kept), free(scaled);
    golden_close(&g);
}

/* bf16 and fp16 weights: the model over a file of 16-bit weights gives exactly the logits of
 * the model over an F32 file holding the same values widened, so every weight went through
 * the right decoder. */
static void check_half(kg_dtype dt)
{
    golden g;
    golden_open(&g);
    built half, wide;
    built_from(&half, &g, NULL);
    built_from(&wide, &g, NULL);
    void *bufs[2 * 64];
    int nb = 0;
    for (int i = 0; i < half.n; i++) {
        kgst_tensor *h = &half.t[i], *w = &wide.t[i];
        cr_assert_eq(h->dtype, KG_F32, "%s: the golden weights are F32", h->name);
        uint16_t *hv = malloc(2 * h->count);
        float *wv = malloc(4 * h->count);
        cr_assert(hv && wv);
        for (long j = 0; j < h->count; j++) {
            float x = tensor_at(h, j);
            hv[j] = dt == KG_BF16 ? kg_f32_to_bf16(x) : kg_f32_to_f16(x);
            wv[j] = dt == KG_BF16 ? kg_bf16_to_f32(hv[j]) : kg_f16_to_f32(hv[j]);
        }
        h->dtype = dt, h->data = hv, h->nbytes = 2 * h->count;
        w->data = wv;
        bufs[nb++] = hv, bufs[nb++] = wv;
    }
    built_open(&half);
    built_open(&wide);
    float *got = prefill(&g, &g.c, half.st), *want = prefill(&g, &g.c, wide.st);
    float *f32 = prefill(&g, &g.c, g.weights);
    double d = diff_tokens(got, want, g.c.vocab, 0, P);
    double rounding = diff_tokens(got, f32, g.c.vocab, 0, P);
    cr_log_info("%s weights: %.3g from the widened copy, %.3g from the f32 model",
                kg_dtype_name(dt), d, rounding);
    cr_assert_eq(d, 0, "%s weights decoded differently: %g", kg_dtype_name(dt), d);
    cr_assert_gt(rounding, 0, "the %s file holds the f32 values: nothing was rounded",
                 kg_dtype_name(dt));
    built_close(&half);
    built_close(&wide);
    for (int i = 0; i < nb; i++)
        free(bufs[i]);
    free(got), free(want), free(f32);
    golden_close(&g);
}

Test(model_ref, bf16_weights, .timeout = 120)
{
    check_half(KG_BF16);
}

Test(model_ref, f16_weights, .timeout = 120)
{
    check_half(KG_F16);
}
