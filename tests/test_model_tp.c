/* tests/test_model_tp.c: tensor parallelism of the model library (kgm_options.tp, Megatron
 * sharding) with threads as ranks (kgen/coll.h): on presets of kgen make-model (Llama; Qwen2
 * with its QKV bias and tied embeddings; Llama with an o_proj bias; f32, bf16 and fp8 weights)
 * and the HF golden, batch 2, a prefill and teacher-forced decode steps, every rank's logits
 * and hidden states equal to every other rank's (bit for bit) and to the whole model's within
 * the order-of-summation tolerance; each rank reads and holds about 1/tp of the weights; then
 * `kgen run --tp 2` and `--tp 4` dumps against `--tp 1` and the golden. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/coll.h"
#include "kgen/npy.h"
#include "model/kgen_model.h"
#include "model/preset.h"
#include "model/st.h"
#include "util/jitp.h"
#include "util/ranks.h"

enum { B = 2, P = 5, N = 3, CTX = 16, MAX_TP = 8 };

#define GOLDEN KGEN_SHARED_DIR "/golden/llama_gqa"

/* One run's outputs: prefill logits [B, P, V] and hidden [L+1, B, P, H], then per decode step
 * logits [B, V] and hidden [L+1, B, H], in one buffer per kind; the stats of the open. */
typedef struct outs {
    float *logits, *hidden;
    long V, H, L;
    kgm_stats st;
    int rc;
    char err[600];
} outs;

/* A run of dir split over tp ranks: rank r's outputs in o[r]. */
typedef struct job {
    const char *dir;
    int tp, weights;
    const int64_t *ids;
    outs o[MAX_TP];
} job;

/* Rank r's run into j->o[r] (no asserts off the test's thread: failures go to o->rc/err). */
static void rank_run(kg_coll *c, int r, void *arg)
{
    (void)c;
    job *j = arg;
    outs *o = &j->o[r];
    kgm_options opt;
    kgm_options_default(&opt);
    opt.max_batch = B, opt.max_context = CTX, opt.all_logits = 1, opt.keep_hidden = 1;
    opt.weights = j->weights, opt.tp = j->tp, opt.threads = 1;
    opt.no_megakernel = 1; /* every decode hidden state compared (test_model_mega: the logits) */
    kgm_model *m;
    if ((o->rc = kgm_open(&m, j->dir, &opt, o->err, sizeof o->err)) != KG_OK)
        return;
    const kgm_config *cf = kgm_config_of(m);
    kgm_stats_of(m, &o->st);
    o->V = cf->vocab, o->H = cf->hidden, o->L = cf->layers;
    long V = o->V, H = o->H, L = o->L;
    o->logits = calloc((size_t)(B * (P + N) * V), sizeof(float));
    o->hidden = calloc((size_t)((L + 1) * B * (P + N) * H), sizeof(float));
    int64_t row[B * P];
    for (long b = 0; b < B; b++)
        memcpy(row + b * P, j->ids + b * (P + N), P * sizeof *row);
    if ((o->rc = kgm_prefill(m, B, P, row)) != KG_OK)
        goto out;
    memcpy(o->logits, kgm_logits(m, NULL), (size_t)(B * P * V) * sizeof(float));
    for (long l = 0; l <= L; l++)
        memcpy(o->hidden + l * B * P * H, kgm_hidden(m, l), (size_t)(B * P * H) * 4);
    float *lg = o->logits + B * P * V, *hd = o->hidden + (L + 1) * B * P * H;
    for (long s = 0; s < N; s++, lg += B * V, hd += (L + 1) * B * H) {
        for (long b = 0; b < B; b++)
            row[b] = j->ids[b * (P + N) + P + s];
        if ((o->rc = kgm_decode(m, B, row)) != KG_OK)
            goto out;
        memcpy(lg, kgm_logits(m, NULL), (size_t)(B * V) * sizeof(float));
        for (long l = 0; l <= L; l++)
            memcpy(hd + l * B * H, kgm_hidden(m, l), (size_t)(B * H) * 4);
    }
out:
    if (o->rc != KG_OK)
        snprintf(o->err, sizeof o->err, "%s", kgm_error(m));
    kgm_close(m);
}

/* dir run over tp ranks (tp 1: on the calling thread) into j. */
static void run_tp(job *j, const char *dir, int tp, int weights, const int64_t *ids)
{
    memset(j, 0, sizeof *j);
    j->dir = dir, j->tp = tp, j->weights = weights, j->ids = ids;
    if (tp == 1)
        rank_run(NULL, 0, j);
    else
        cr_assert_eq(kgt_run_ranks(tp, rank_run, j), 0, "cannot start %d ranks", tp);
    for (int r = 0; r < tp; r++)
        cr_assert_eq(j->o[r].rc, KG_OK, "%s tp %d rank %d: %s", dir, tp, r, j->o[r].err);
}

static void job_free(job *j)
{
    for (int r = 0; r < MAX_TP; r++)
        free(j->o[r].logits), free(j->o[r].hidden);
}

/* max |got - want| within atol + rtol * max |want|, the worst reported. */
static void close_to(const char *what, const float *got, const float *want, long n,
                     double atol, double rtol)
{
    double worst = -1, scale = 0;
    long at = 0;
    for (long i = 0; i < n; i++)
        scale = fmax(scale, fabs(want[i]));
    for (long i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= worst))
            worst = d, at = i;
    }
    double bar = atol + rtol * scale;
    cr_assert(n > 0 && scale > 0 && worst <= bar, "%s: max |diff| %g at %ld (got %.7g, want "
              "%.7g), bar %g", what, worst, at, got[at], want[at], bar);
    cr_log_info("%s: max |diff| %.3g (max |want| %.3g) over %ld values", what, worst, scale, n);
}

/* tp's ranks against each other (the same bits: the all-reduce and all-gather give every rank
 * the same values) and against the whole model within atol + rtol * max. */
static void compare(const char *name, const job *tp, const job *one, double atol, double rtol)
{
    const outs *w = &one->o[0];
    long nl = B * (P + N) * w->V, nh = (w->L + 1) * B * (P + N) * w->H;
    for (int r = 1; r < tp->tp; r++) {
        cr_assert(memcmp(tp->o[r].logits, tp->o[0].logits, (size_t)nl * 4) == 0,
                  "%s tp %d: rank %d's logits differ from rank 0's", name, tp->tp, r);
        cr_assert(memcmp(tp->o[r].hidden, tp->o[0].hidden, (size_t)nh * 4) == 0,
                  "%s tp %d: rank %d's hidden states differ from rank 0's", name, tp->tp, r);
    }
    char what[160];
    snprintf(what, sizeof what, "%s tp %d logits", name, tp->tp);
    close_to(what, tp->o[0].logits, w->logits, nl, atol, rtol);
    snprintf(what, sizeof what, "%s tp %d hidden states", name, tp->tp);
    close_to(what, tp->o[0].hidden, w->hidden, nh, atol, rtol);
}

/* Each rank reads and packs about its 1/tp of the weights: at most 1/tp of the whole model's
 * bytes plus `slack` of it (the norms every rank holds, the KV heads ranks share when tp >
 * kv_heads, the vocabulary's padding), and together at least the whole. */
static void shard_bytes(const char *name, const job *tp, const job *one, double slack)
{
    size_t read = one->o[0].st.read_bytes, held = one->o[0].st.weight_bytes, rs = 0, hs = 0;
    cr_assert_gt(read, 0, "the whole model read no bytes: nothing is counted");
    for (int r = 0; r < tp->tp; r++) {
        const kgm_stats *s = &tp->o[r].st;
        cr_assert_eq(s->tp, tp->tp);
        cr_assert_eq(s->tp_rank, r);
        cr_assert(s->read_bytes <= read * (1.0 / tp->tp + slack),
                  "%s tp %d rank %d read %zu bytes of the weights' %zu", name, tp->tp, r,
                  s->read_bytes, read);
        cr_assert(s->weight_bytes <= held * (1.0 / tp->tp + slack),
                  "%s tp %d rank %d holds %zu bytes of the weights' %zu", name, tp->tp, r,
                  s->weight_bytes, held);
        rs += s->read_bytes, hs += s->weight_bytes;
    }
    cr_assert(rs >= read && hs >= held, "%s tp %d: the ranks together read %zu of %zu bytes, "
              "hold %zu of %zu", name, tp->tp, rs, read, hs, held);
    cr_log_info("%s tp %d: rank 0 read %zu bytes of %zu (%.3f)", name, tp->tp,
                tp->o[0].st.read_bytes, read, (double)tp->o[0].st.read_bytes / (double)read);
}

/* Seeded ids [B, P + N] inside the vocabulary. */
static void make_ids(int64_t *ids, long V)
{
    unsigned long long s = 4242;
    for (long i = 0; i < B * (P + N); i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int64_t)((s >> 33) % (unsigned long long)V);
    }
}

/* The preset written under the test's folder (cfg edited by edit, if given); its path. */
static const char *write_preset(const char *name, kg_dtype dt, void (*edit)(kgm_config *),
                                char *dir, size_t len)
{
    const kgm_preset *p = kgm_preset_find(name);
    cr_assert(p, "no preset %s", name);
    kgm_preset q = *p;
    if (edit)
        edit(&q.config);
    snprintf(dir, len, "%s/tp_%s_%s%s", KGEN_TEST_TMP, name, kg_dtype_name(dt),
             edit ? "_edited" : "");
    char err[512];
    cr_assert_eq(kgm_preset_write(&q, dt, 11, dir, NULL, err, sizeof err), KG_OK, "%s", err);
    return dir;
}

/* dir over each tp of tps (ending in 0) against tp 1, with weights w. */
static void against_tp1(const char *name, const char *dir, int w, const int *tps, double atol,
                        double rtol)
{
    kgm_config c;
    char err[512];
    cr_assert_eq(kgm_config_load(&c, dir, err, sizeof err), KG_OK, "%s", err);
    int64_t ids[B * (P + N)];
    make_ids(ids, c.vocab);
    static job one, tp; /* large: off the stack */
    run_tp(&one, dir, 1, w, ids);
    for (const int *t = tps; *t; t++) {
        run_tp(&tp, dir, *t, w, ids);
        compare(name, &tp, &one, atol, rtol);
        shard_bytes(name, &tp, &one, 0.1);
        job_free(&tp);
    }
    job_free(&one);
}

/* f32: the ranks' partial sums added in another order than the whole model's dot products */
static const double ATOL = 1e-4, RTOL = 1e-4;

Test(model_tp, llama_tiny_tp2_tp4_tp8, .timeout = 180 * KGT_TIME_SCALE)
{
    /* 8 query heads, 2 KV heads (tp 4, 8: each shared by 2, 4 ranks), I 688 (172, 86 a rank),
     * vocabulary 2048 */
    char dir[512];
    write_preset("llama-tiny", KG_F32, NULL, dir, sizeof dir);
    static const int tps[] = { 2, 4, 8, 0 };
    against_tp1("llama-tiny", dir, KGM_WEIGHTS_STORED, tps, ATOL, RTOL);
}

Test(model_tp, qwen2_tiny_bias_tied, .timeout = 180 * KGT_TIME_SCALE)
{
    /* the QKV bias sliced with its heads, the LM head a slice of the tied embeddings */
    char dir[512];
    write_preset("qwen2-tiny", KG_F32, NULL, dir, sizeof dir);
    static const int tps[] = { 2, 4, 0 };
    against_tp1("qwen2-tiny", dir, KGM_WEIGHTS_STORED, tps, ATOL, RTOL);
}

/* Llama with attention_bias: o_proj's bias added once (rank 0's), after the sum; a vocabulary
 * of 1000 that 8 ranks split into slices of 125 and 3 would pad: tp 4 gives 250 each. */
static void o_bias_odd_vocab(kgm_config *c) { c->qkv_bias = c->o_bias = 1, c->vocab = 1000; }

Test(model_tp, llama_o_bias, .timeout = 180 * KGT_TIME_SCALE)
{
    char dir[512];
    write_preset("llama3-tiny-rope", KG_F32, o_bias_odd_vocab, dir, sizeof dir);
    static const int tps[] = { 2, 4, 0 };
    against_tp1("llama o_bias", dir, KGM_WEIGHTS_STORED, tps, ATOL, RTOL);
}

/* A vocabulary that does not divide: 8 ranks' slices of ceil(1001/8) = 126, the last padded */
static void odd_vocab(kgm_config *c) { c->vocab = 1001; }

Test(model_tp, vocabulary_padding, .timeout = 180 * KGT_TIME_SCALE)
{
    char dir[512];
    write_preset("llama-tiny", KG_F32, odd_vocab, dir, sizeof dir);
    static const int tps[] = { 8, 0 };
    against_tp1("vocabulary 1001", dir, KGM_WEIGHTS_STORED, tps, ATOL, RTOL);
}

Test(model_tp, bf16_weights, .timeout = 180 * KGT_TIME_SCALE)
{
    /* bf16 GEMMs round their activation operand to bf16: the sums' order moves more bits */
    char dir[512];
    write_preset("qwen2-tiny", KG_BF16, NULL, dir, sizeof dir);
    static const int tps[] = { 2, 0 };
    against_tp1("qwen2-tiny bf16", dir, KGM_WEIGHTS_STORED, tps, 1e-3, 1e-2);
}

Test(model_tp, fp8_weights, .timeout = 180 * KGT_TIME_SCALE)
{
    /* o_proj's and down's per-column scales are each rank's own (its rows' largest): a
     * slightly different rounding than the whole model's, within fp8's few percent */
    char dir[512];
    write_preset("llama-tiny", KG_F32, NULL, dir, sizeof dir);
    static const int tps[] = { 2, 0 };
    against_tp1("llama-tiny fp8", dir, KGM_WEIGHTS_FP8, tps, 0, 0.1);
}

/* Mixtral: every rank routes alike (the router whole on each, the same bits), each expert's
 * intermediate columns split as the dense MLP's; bf16 and fp8 experts too */
Test(model_tp, mixtral_tiny_experts, .timeout = 180 * KGT_TIME_SCALE)
{
    char dir[512], d16[512];
    write_preset("mixtral-tiny", KG_F32, NULL, dir, sizeof dir);
    static const int tps[] = { 2, 4, 0 }, tp2[] = { 2, 0 };
    against_tp1("mixtral-tiny", dir, KGM_WEIGHTS_STORED, tps, ATOL, RTOL);
    against_tp1("mixtral-tiny fp8", dir, KGM_WEIGHTS_FP8, tp2, 0, 0.1);
    write_preset("mixtral-tiny", KG_BF16, NULL, d16, sizeof d16);
    against_tp1("mixtral-tiny bf16", d16, KGM_WEIGHTS_STORED, tp2, 1e-3, 1e-2);
}

Test(model_tp, golden_tp2_tp4, .timeout = 180 * KGT_TIME_SCALE)
{
    /* 4 query heads, 2 KV heads, I 688, vocabulary 512 */
    static const int tps[] = { 2, 4, 0 };
    against_tp1("golden", GOLDEN, KGM_WEIGHTS_STORED, tps, ATOL, RTOL);
}

/* Refused sharding: every rank fails alike, naming the dimension; nothing hangs. */
static void refuse(const char *dir, int tp, const char *text)
{
    static job j;
    memset(&j, 0, sizeof j);
    j.dir = dir, j.tp = tp, j.weights = KGM_WEIGHTS_STORED;
    int64_t ids[B * (P + N)] = { 0 };
    j.ids = ids;
    cr_assert_eq(kgt_run_ranks(tp, rank_run, &j), 0);
    for (int r = 0; r < tp; r++) {
        cr_assert_eq(j.o[r].rc, KG_ESPEC, "tp %d rank %d: status %d (%s)", tp, r, j.o[r].rc,
                     j.o[r].err);
        cr_assert(strstr(j.o[r].err, text), "tp %d rank %d: '%s' does not say '%s'", tp, r,
                  j.o[r].err, text);
    }
}

static void kv3(kgm_config *c) { c->q_heads = 6, c->kv_heads = 3, c->intermediate = 691; }

Test(model_tp, refused_sharding, .timeout = 60 * KGT_TIME_SCALE)
{
    refuse(GOLDEN, 3, "num_attention_heads 4 (query heads) is not divisible by 3");
    char dir[512];
    write_preset("llama3-tiny-rope", KG_F32, kv3, dir, sizeof dir);
    refuse(dir, 2, "num_key_value_heads 3 (KV heads) and 2 ranks: neither divides the other");
    refuse(dir, 3, "intermediate_size 691 is not divisible by 3");
}

/* A rank whose communicator is not the group's size is refused before anything is read. */
Test(model_tp, communicator_size, .timeout = 60 * KGT_TIME_SCALE)
{
    kgm_options opt;
    kgm_options_default(&opt);
    opt.tp = 2;
    kgm_model *m = (kgm_model *)1;
    char err[512];
    cr_assert_eq(kgm_open(&m, GOLDEN, &opt, err, sizeof err), KG_EARG);
    cr_assert_null(m);
    cr_assert(strstr(err, "communicator bound to this thread has 1"), "%s", err);
}

/* ---- kgen run --tp: the checking interface's files ------------------------------------------ */

static const char *const files[] = {
    "prefill_logits", "prefill_hidden", "decode0_logits", "decode0_hidden", "decode1_logits",
    "decode1_hidden", "decode2_logits", "decode2_hidden",
};

/* kgen run --model GOLDEN --input-ids (the golden's) --prefill 7 --decode 3 --tp tp into
 * KGEN_TEST_TMP/tp_cli/tpN. */
static void run_cli(int tp, char *out, size_t len)
{
    kgst *g;
    char err[512], dir[512], idp[600], cmd[4096];
    cr_assert_eq(kgst_open(&g, GOLDEN "/golden.safetensors", err, sizeof err), KG_OK, "%s", err);
    const kgst_tensor *ids = kgst_find(g, "input_ids");
    cr_assert(ids && ids->dtype == KG_I64 && ids->rank == 2, "golden input_ids");
    snprintf(dir, sizeof dir, "%s/tp_cli", KGEN_TEST_TMP);
    snprintf(out, len, "%s/tp%d", dir, tp);
    snprintf(idp, sizeof idp, "%s/ids.npy", dir);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && rm -rf '%s'", dir, out);
    cr_assert_eq(system(cmd), 0);
    kg_npy a = { .dtype = KG_I64, .rank = 2, .shape = { ids->shape[0], ids->shape[1] },
                 .data = (void *)ids->data };
    cr_assert_eq(kg_npy_write(idp, &a, err, sizeof err), KG_OK, "%s", err);
    snprintf(cmd, sizeof cmd, "'%s' run --model '%s' --input-ids '%s' --prefill 7 --decode 3 "
             "--dump '%s' --tp %d --no-megakernel", KGEN_EXE, GOLDEN, idp, out, tp);
    cr_assert_eq(system(cmd), 0, "failed: %s", cmd);
    kgst_close(g);
}

static void npy(const char *dir, const char *name, kg_npy *a)
{
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    cr_assert_eq(kg_npy_read(path, a, err, sizeof err), KG_OK, "%s", err);
}

Test(model_tp, cli_dump_tp2_tp4, .timeout = 180 * KGT_TIME_SCALE)
{
    char one[600], tp[600], err[512];
    run_cli(1, one, sizeof one);
    kgst *g;
    cr_assert_eq(kgst_open(&g, GOLDEN "/golden.safetensors", err, sizeof err), KG_OK, "%s", err);
    for (int t = 2; t <= 4; t += 2) {
        run_cli(t, tp, sizeof tp);
        for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
            kg_npy a, b;
            npy(one, files[f], &a);
            npy(tp, files[f], &b);
            cr_assert(a.dtype == KG_F32 && b.dtype == KG_F32 && a.rank == b.rank, "%s", files[f]);
            long n = 1;
            for (int i = 0; i < a.rank; i++) {
                cr_assert_eq(a.shape[i], b.shape[i], "%s: axis %d", files[f], i);
                n *= a.shape[i];
            }
            char what[128];
            snprintf(what, sizeof what, "kgen run --tp %d %s vs --tp 1", t, files[f]);
            close_to(what, b.data, a.data, n, ATOL, RTOL);
            const kgst_tensor *gt = kgst_find(g, files[f]);
            cr_assert(gt && gt->count == n, "golden %s", files[f]);
            snprintf(what, sizeof what, "kgen run --tp %d %s vs the golden", t, files[f]);
            close_to(what, b.data, gt->data, n, 1e-3, 0); /* the golden README's bar */
            kg_npy_free(&a), kg_npy_free(&b);
        }
    }
    kgst_close(g);
}
