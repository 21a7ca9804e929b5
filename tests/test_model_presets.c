/* tests/test_model_presets.c: the model library on the bundled presets (model/preset.h)
 * against the plain-loop reference forward pass (tests/ref/model_ref.c, not the kernels under
 * test): Llama, Qwen2 with its QKV bias and tied embeddings, and Llama with llama3 rope
 * scaling; batch 2, a prefill of 5 tokens and 3 decode steps, logits and every hidden state.
 * Then the bf16 and fp8 paths with their stated tolerances, and JIT vs AOT bit-identity. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/npy.h"
#include "model/kgen_model.h"
#include "model/preset.h"
#include "model/st.h"
#include "ref/model_ref.h"
#include "util/jitp.h"

enum { B = 2, P = 5, N = 3, CTX = 16 };

/* The preset written (once per dtype) under the test's folder; returns its path. */
static const char *write_preset(const char *name, kg_dtype dt, char *dir, size_t len)
{
    const kgm_preset *p = kgm_preset_find(name);
    cr_assert(p, "no preset %s", name);
    snprintf(dir, len, "%s/preset_%s_%s", KGEN_TEST_TMP, name, kg_dtype_name(dt));
    char err[512];
    cr_assert_eq(kgm_preset_write(p, dt, 7, dir, NULL, err, sizeof err), KG_OK, "%s", err);
    return dir;
}

/* Seeded ids [B, P + N] inside the vocabulary. */
static void make_ids(int64_t *ids, long V)
{
    unsigned long long s = 12345;
    for (long i = 0; i < B * (P + N); i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int64_t)((s >> 33) % (unsigned long long)V);
    }
}

/* One run's outputs: prefill logits [B, P, V] and hidden [L+1, B, P, H], then per decode step
 * logits [B, V] and hidden [L+1, B, H], all in one buffer per kind. */
typedef struct outs { float *logits, *hidden; long V, H, L; } outs;

static void outs_alloc(outs *o, const kgm_config *c)
{
    o->V = c->vocab, o->H = c->hidden, o->L = c->layers;
    o->logits = calloc((size_t)(B * (P + N) * o->V), sizeof(float));
    o->hidden = calloc((size_t)((o->L + 1) * B * (P + N) * o->H), sizeof(float));
    cr_assert(o->logits && o->hidden);
}

/* The model library's run of dir (weights option w, build) into o. */
static void run_model(const char *dir, int w, int build, const int64_t *ids, outs *o)
{
    kgm_options opt;
    kgm_options_default(&opt);
    opt.max_batch = B, opt.max_context = CTX, opt.all_logits = 1, opt.keep_hidden = 1;
    opt.no_megakernel = 1; /* every decode hidden state compared (test_model_mega: the logits) */
    opt.weights = w, opt.build = build;
    kgm_model *m;
    char err[512];
    cr_assert_eq(kgm_open(&m, dir, &opt, err, sizeof err), KG_OK, "%s: %s", dir, err);
    outs_alloc(o, kgm_config_of(m));
    int64_t row[B * P];
    for (long b = 0; b < B; b++)
        memcpy(row + b * P, ids + b * (P + N), P * sizeof *row);
    cr_assert_eq(kgm_prefill(m, B, P, row), KG_OK, "%s", kgm_error(m));
    /* Mixtral: prefill's experts run through moe_cte, one call a layer, none through moe_tkg */
    long L = kgm_config_of(m)->layers, moe = kgm_config_of(m)->experts > 0;
    kgm_stats st;
    kgm_stats_of(m, &st);
    cr_assert(st.moe_cte_calls == moe * L && st.moe_tkg_calls == 0, "%s: prefill ran %ld "
              "moe_cte and %ld moe_tkg calls (%ld layers)", dir, st.moe_cte_calls,
              st.moe_tkg_calls, L);
    long V = o->V, H = o->H;
    memcpy(o->logits, kgm_logits(m, NULL), (size_t)(B * P * V) * sizeof(float));
    for (long l = 0; l <= o->L; l++)
        memcpy(o->hidden + l * B * P * H, kgm_hidden(m, l), (size_t)(B * P * H) * 4);
    float *lg = o->logits + B * P * V, *hd = o->hidden + (o->L + 1) * B * P * H;
    for (long s = 0; s < N; s++, lg += B * V, hd += (o->L + 1) * B * H) {
        for (long b = 0; b < B; b++)
            row[b] = ids[b * (P + N) + P + s];
        cr_assert_eq(kgm_decode(m, B, row), KG_OK, "%s", kgm_error(m));
        memcpy(lg, kgm_logits(m, NULL), (size_t)(B * V) * sizeof(float));
        for (long l = 0; l <= o->L; l++)
            memcpy(hd + l * B * H, kgm_hidden(m, l), (size_t)(B * H) * 4);
    }
    /* and decode's through moe_tkg, one call a layer a step */
    kgm_stats_of(m, &st);
    cr_assert(st.moe_cte_calls == moe * L && st.moe_tkg_calls == moe * L * N, "%s: after %d "
              "decode steps %ld moe_cte and %ld moe_tkg calls (%ld layers)", dir, N,
              st.moe_cte_calls, st.moe_tkg_calls, L);
    kgm_close(m);
}

/* The reference's run of dir into o, in the same arrangement. */
static void run_ref(const char *dir, const int64_t *ids, outs *o)
{
    kgm_config c;
    kgst *st;
    char err[512];
    cr_assert_eq(kgm_config_load(&c, dir, err, sizeof err), KG_OK, "%s", err);
    cr_assert_eq(kgst_open(&st, dir, err, sizeof err), KG_OK, "%s", err);
    model_ref *r;
    cr_assert_eq(model_ref_open(&r, &c, st, B, CTX, err, sizeof err), KG_OK, "%s", err);
    outs_alloc(o, &c);
    int64_t row[B * P];
    for (long b = 0; b < B; b++)
        memcpy(row + b * P, ids + b * (P + N), P * sizeof *row);
    cr_assert_eq(model_ref_forward(r, row, P, o->logits, o->hidden, err, sizeof err), KG_OK,
                 "%s", err);
    long V = o->V, H = o->H;
    float *lg = o->logits + B * P * V, *hd = o->hidden + (o->L + 1) * B * P * H;
    for (long s = 0; s < N; s++, lg += B * V, hd += (o->L + 1) * B * H) {
        for (long b = 0; b < B; b++)
            row[b] = ids[b * (P + N) + P + s];
        cr_assert_eq(model_ref_forward(r, row, 1, lg, hd, err, sizeof err), KG_OK, "%s", err);
    }
    model_ref_close(r);
    kgst_close(st);
}

/* max |got - want| of a kind within atol + rtol * max |want|, the worst reported. */
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
    cr_assert(n > 0 && worst <= bar, "%s: max |diff| %g at %ld (got %.7g, want %.7g), bar %g",
              what, worst, at, got[at], want[at], bar);
    cr_log_info("%s: max |diff| %.3g (max |want| %.3g) over %ld values", what, worst, scale, n);
}

static void compare(const char *name, const outs *got, const outs *want, double atol,
                    double rtol)
{
    char what[128];
    snprintf(what, sizeof what, "%s logits", name);
    close_to(what, got->logits, want->logits, B * (P + N) * got->V, atol, rtol);
    snprintf(what, sizeof what, "%s hidden states", name);
    close_to(what, got->hidden, want->hidden, (got->L + 1) * B * (P + N) * got->H, atol, rtol);
}

static void outs_free(outs *o) { free(o->logits), free(o->hidden); }

/* f32 weights: the kernels' f32 sums against the reference's double ones. */
static void against_ref(const char *preset)
{
    char dir[512];
    write_preset(preset, KG_F32, dir, sizeof dir);
    const kgm_preset *p = kgm_preset_find(preset);
    int64_t ids[B * (P + N)];
    make_ids(ids, p->config.vocab);
    outs got, want;
    run_model(dir, KGM_WEIGHTS_STORED, KGM_JIT, ids, &got);
    run_ref(dir, ids, &want);
    compare(preset, &got, &want, 1e-4, 1e-4);
    outs_free(&got), outs_free(&want);
}

Test(model_presets, llama_tiny, .timeout = 120 * KGT_TIME_SCALE) { against_ref("llama-tiny"); }
Test(model_presets, qwen2_tiny_bias_tied, .timeout = 120 * KGT_TIME_SCALE)
{
    against_ref("qwen2-tiny");
}
Test(model_presets, llama3_rope_scaling, .timeout = 120 * KGT_TIME_SCALE)
{
    against_ref("llama3-tiny-rope");
}

/* Mixtral: router and experts every layer (prefill: moe_cte over the router's picks in blocks,
 * run_model checks it was called; decode: moe_tkg, the steps through the chain) */
Test(model_presets, mixtral_tiny_moe, .timeout = 120 * KGT_TIME_SCALE)
{
    against_ref("mixtral-tiny");
}

Test(model_presets, mixtral_tiny_bf16_weights, .timeout = 120 * KGT_TIME_SCALE)
{
    char dir[512];
    write_preset("mixtral-tiny", KG_BF16, dir, sizeof dir);
    int64_t ids[B * (P + N)];
    make_ids(ids, kgm_preset_find("mixtral-tiny")->config.vocab);
    outs got, want;
    run_model(dir, KGM_WEIGHTS_STORED, KGM_JIT, ids, &got);
    run_ref(dir, ids, &want);
    compare("mixtral-tiny bf16 checkpoint", &got, &want, 1e-3, 2e-2);
    outs_free(&got), outs_free(&want);
}

/* The checking interface on Mixtral: kgen run --model --input-ids --prefill --decode --dump
 * (tp 1 and 2) against the reference: the dumped files, concatenated, are its outputs. */
static void dump_read(const char *dir, const char *name, float *dst, long n)
{
    char path[1024], err[512];
    kg_npy a;
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    cr_assert_eq(kg_npy_read(path, &a, err, sizeof err), KG_OK, "%s", err);
    cr_assert(a.dtype == KG_F32 && kg_npy_count(&a) == n, "%s: %ld values, want %ld f32", path,
              kg_npy_count(&a), n);
    memcpy(dst, a.data, (size_t)n * sizeof(float));
    kg_npy_free(&a);
}

Test(model_presets, mixtral_cli_dump, .timeout = 180 * KGT_TIME_SCALE)
{
    char dir[512], idp[600], out[600], cmd[4096], err[512];
    write_preset("mixtral-tiny", KG_F32, dir, sizeof dir);
    const kgm_config *c = &kgm_preset_find("mixtral-tiny")->config;
    int64_t ids[B * (P + N)];
    make_ids(ids, c->vocab);
    snprintf(idp, sizeof idp, "%s/mixtral_ids.npy", KGEN_TEST_TMP);
    kg_npy a = { .dtype = KG_I64, .rank = 2, .shape = { B, P + N }, .data = ids };
    cr_assert_eq(kg_npy_write(idp, &a, err, sizeof err), KG_OK, "%s", err);
    outs want;
    run_ref(dir, ids, &want);
    long V = c->vocab, H = c->hidden, L = c->layers;
    for (int tp = 1; tp <= 2; tp++) {
        snprintf(out, sizeof out, "%s/mixtral_dump_tp%d", KGEN_TEST_TMP, tp);
        snprintf(cmd, sizeof cmd, "rm -rf '%s' && '%s' run --model '%s' --input-ids '%s' "
                 "--prefill %d --decode %d --dump '%s' --tp %d --threads 1 > /dev/null", out,
                 KGEN_EXE, dir, idp, P, N, out, tp);
        cr_assert_eq(system(cmd), 0, "failed: %s", cmd);
        outs got;
        outs_alloc(&got, c);
        dump_read(out, "prefill_logits", got.logits, B * P * V);
        dump_read(out, "prefill_hidden", got.hidden, (L + 1) * B * P * H);
        for (int s = 0; s < N; s++) {
            char nm[64];
            snprintf(nm, sizeof nm, "decode%d_logits", s);
            dump_read(out, nm, got.logits + B * P * V + s * B * V, B * V);
            snprintf(nm, sizeof nm, "decode%d_hidden", s);
            dump_read(out, nm, got.hidden + (L + 1) * B * P * H + s * (L + 1) * B * H,
                      (L + 1) * B * H);
        }
        compare(tp == 1 ? "mixtral-tiny --dump" : "mixtral-tiny --dump --tp 2", &got, &want,
                1e-4, 1e-4);
        outs_free(&got);
    }
    outs_free(&want);
}

/* bf16 weights (a bf16 checkpoint, and an f32 one with --weights bf16): the GEMMs round their
 * activation operand to bf16 (8 bits of mantissa), so the outputs agree with the reference on
 * the same weights within 2% of their largest magnitude. */
Test(model_presets, bf16_weights, .timeout = 120 * KGT_TIME_SCALE)
{
    char d16[512], d32[512];
    write_preset("qwen2-tiny", KG_BF16, d16, sizeof d16);
    write_preset("qwen2-tiny", KG_F32, d32, sizeof d32);
    int64_t ids[B * (P + N)];
    make_ids(ids, kgm_preset_find("qwen2-tiny")->config.vocab);
    outs got, want, got2, want2;
    run_model(d16, KGM_WEIGHTS_STORED, KGM_JIT, ids, &got);
    run_ref(d16, ids, &want);
    compare("bf16 checkpoint", &got, &want, 1e-3, 2e-2);
    run_model(d32, KGM_WEIGHTS_BF16, KGM_JIT, ids, &got2);
    run_ref(d32, ids, &want2);
    compare("f32 checkpoint, --weights bf16", &got2, &want2, 1e-3, 2e-2);
    outs_free(&got), outs_free(&want), outs_free(&got2), outs_free(&want2);
}

/* The same model built by libtcc and by gcc gives the same bits (no FMA contraction). */
Test(model_presets, jit_and_aot_bit_identical, .timeout = 300 * KGT_TIME_SCALE)
{
    char dir[512];
    write_preset("llama-tiny", KG_F32, dir, sizeof dir);
    int64_t ids[B * (P + N)];
    make_ids(ids, kgm_preset_find("llama-tiny")->config.vocab);
    outs jit, aot;
    run_model(dir, KGM_WEIGHTS_STORED, KGM_JIT, ids, &jit);
    run_model(dir, KGM_WEIGHTS_STORED, KGM_AOT, ids, &aot);
    long n = B * (P + N) * jit.V;
    cr_assert(memcmp(jit.logits, aot.logits, (size_t)n * sizeof(float)) == 0,
              "JIT and AOT logits differ");
    long nz = 0;
    for (long i = 0; i < n; i++)
        nz += jit.logits[i] != 0;
    cr_assert_gt(nz, n / 2, "the logits are mostly zero: nothing was compared");
    outs_free(&jit), outs_free(&aot);
}

/* fp8 weights (--weights fp8) against the unquantized run of the same checkpoint. e4m3 keeps 3
 * bits of mantissa: a weight's rounding error is up to 2^-4 of it, about 3% of the column's RMS
 * on average, so each quantized matmul's output is off by about 3% RMS, and a layer's update
 * (qkv then o, gate/up then down: two in series) by 4-5%. Measured on these presets (2-4
 * layers, batch 2, 5 prefill + 3 decode tokens): hidden states 4% RMS after the first layer,
 * 6-7% after the last; the logits, whose LM head is fp8 too (one more quantized matmul, ~3% RMS
 * of its own, adding in quadrature: 5.1-6.5% RMS with a bf16/f32 head before, 5.7-6.9% now),
 * 6-7% RMS and their largest error 6-9% of the largest logit. The bars, unchanged: 12% RMS of
 * each layer's hidden state and of the logits, and 20% of the largest value for any single one.
 * Dropping the per-column scales (codes read as values, ~5000x too big) or leaving one
 * projection (or the LM head) unscaled fails them by orders of magnitude. The embeddings (hidden
 * state 0) are read as stored, tied to the fp8 LM head or not: the same bits in both runs. */
static void rms_close(const char *what, const float *got, const float *want, long n)
{
    double e = 0, w2 = 0, worst = 0, scale = 0;
    for (long i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        e += d * d, w2 += (double)want[i] * want[i];
        worst = fmax(worst, fabs(d)) + (d != d); /* NaN: worst turns NaN, fails below */
        scale = fmax(scale, fabs(want[i]));
    }
    double rel = sqrt(e / w2);
    cr_assert(n > 0 && w2 > 0 && rel <= 0.12 && worst <= 0.2 * scale,
              "%s: RMS error %.3g of the RMS (bar 0.12), max |diff| %.3g of max |want| %.3g "
              "(bar 0.2 of it)", what, rel, worst, scale);
    cr_log_info("%s: RMS error %.3g of the RMS, max |diff| %.3g (max |want| %.3g)", what, rel,
                worst, scale);
}

static void fp8_compare(const char *name, const outs *got, const outs *want)
{
    char what[160];
    long H = got->H, L = got->L;
    for (long s = 0; s <= N; s++) { /* the prefill's embeddings, then each decode step's */
        long at = s ? (L + 1) * B * P * H + (s - 1) * (L + 1) * B * H : 0;
        cr_assert(memcmp(got->hidden + at, want->hidden + at,
                         (size_t)(s ? B * H : B * P * H) * sizeof(float)) == 0,
                  "%s: the embeddings of step %ld differ from the unquantized run's: the lookup "
                  "does not read the stored rows", name, s);
    }
    snprintf(what, sizeof what, "%s logits", name);
    rms_close(what, got->logits, want->logits, B * (P + N) * got->V);
    for (long l = 0; l <= L; l++) { /* the prefill's hidden states [L+1, B, P, H] */
        snprintf(what, sizeof what, "%s prefill hidden state %ld", name, l);
        rms_close(what, got->hidden + l * B * P * H, want->hidden + l * B * P * H, B * P * H);
    }
    const float *g = got->hidden + (L + 1) * B * P * H, *w = want->hidden + (L + 1) * B * P * H;
    snprintf(what, sizeof what, "%s decode hidden states", name);
    rms_close(what, g, w, N * (L + 1) * B * H);
}

static void fp8_against(const char *preset, kg_dtype dt)
{
    char dir[512];
    write_preset(preset, dt, dir, sizeof dir);
    int64_t ids[B * (P + N)];
    make_ids(ids, kgm_preset_find(preset)->config.vocab);
    outs got, want;
    run_model(dir, KGM_WEIGHTS_FP8, KGM_JIT, ids, &got);
    run_model(dir, KGM_WEIGHTS_STORED, KGM_JIT, ids, &want);
    char what[96];
    snprintf(what, sizeof what, "%s %s, --weights fp8", preset, kg_dtype_name(dt));
    fp8_compare(what, &got, &want);
    outs_free(&got), outs_free(&want);
}

Test(model_presets, fp8_weights_llama, .timeout = 120 * KGT_TIME_SCALE)
{
    fp8_against("llama-tiny", KG_F32);
}
Test(model_presets, fp8_weights_qwen2_bias_tied, .timeout = 120 * KGT_TIME_SCALE)
{
    fp8_against("qwen2-tiny", KG_F32);
}

Test(model_presets, fp8_weights_mixtral, .timeout = 120 * KGT_TIME_SCALE)
{
    fp8_against("mixtral-tiny", KG_F32);
}

/* The weight bytes a model reports: every layer's seven projections and the LM head (a packed
 * copy of the embeddings when tied), each [K, N] at `bytes` a weight, plus N f32 scales in fp8. */
static size_t weight_bytes(const kgm_config *c, size_t bytes, int fp8)
{
    long H = c->hidden, I = c->intermediate, q = c->q_heads * c->head_dim;
    long kv = c->kv_heads * c->head_dim;
    long kn[6][2] = { { H, q + 2 * kv }, { q, H }, { H, I }, { H, I }, { I, H }, { H, c->vocab } };
    size_t sum = 0;
    for (int i = 0; i < 6; i++) {
        size_t one = (size_t)kn[i][0] * (size_t)kn[i][1] * bytes + (fp8 ? 4 * (size_t)kn[i][1] : 0);
        sum += i < 5 ? (size_t)c->layers * one : one;
    }
    return sum;
}

/* --weights fp8 quantizes the LM head too: the weight bytes are those of fp8 codes and scales
 * for every projection and the head (a bf16 or f32 head would add 1 or 3 bytes per element),
 * the spec names the fp8 LM head kernel, and the stats say e4m3. Untied and tied. */
static void head_is_fp8(const char *preset)
{
    char dir[512], err[512];
    write_preset(preset, KG_BF16, dir, sizeof dir);
    kgm_options opt;
    kgm_options_default(&opt);
    opt.max_context = CTX, opt.weights = KGM_WEIGHTS_FP8;
    kgm_model *m;
    cr_assert_eq(kgm_open(&m, dir, &opt, err, sizeof err), KG_OK, "%s: %s", dir, err);
    kgm_stats s;
    kgm_stats_of(m, &s);
    const kgm_config *c = kgm_config_of(m);
    cr_assert_str_eq(s.weights, "e4m3");
    size_t want = weight_bytes(c, 1, 1), HV = (size_t)c->hidden * (size_t)c->vocab;
    cr_assert_eq(s.weight_bytes, want, "%s fp8: %zu weight bytes, want %zu (a bf16 LM head: %zu)",
                 preset, s.weight_bytes, want, want + HV - 4 * (size_t)c->vocab);
    char *text;
    cr_assert_eq(kgm_spec_text(c, &opt, &text, err, sizeof err), KG_OK, "%s", err);
    cr_assert(strstr(text, "{ family = \"lm_head\", store_normed = true, "
                           "weight_dtype = \"e4m3\" }"),
              "%s: the fp8 spec has no fp8 LM head:\n%s", preset, text);
    free(text);
    kgm_close(m);
    /* the same model unquantized: two bytes a weight, no scales (the formula holds there too;
     * the chain's weights: the megakernel's per-KV-head QKV and o copies would add to them) */
    opt.weights = KGM_WEIGHTS_STORED, opt.no_megakernel = 1;
    cr_assert_eq(kgm_open(&m, dir, &opt, err, sizeof err), KG_OK, "%s: %s", dir, err);
    kgm_stats_of(m, &s);
    cr_assert_eq(s.weight_bytes, weight_bytes(kgm_config_of(m), 2, 0));
    kgm_close(m);
}

Test(model_presets, fp8_lm_head_untied, .timeout = 60 * KGT_TIME_SCALE)
{
    head_is_fp8("llama-tiny");
}
Test(model_presets, fp8_lm_head_tied, .timeout = 60 * KGT_TIME_SCALE)
{
    cr_assert(kgm_preset_find("qwen2-tiny")->config.tie_embeddings, "qwen2-tiny is not tied");
    head_is_fp8("qwen2-tiny");
}

/* fp8 of a bf16 checkpoint (the case --weights fp8 is for) against its bf16 run, same bars. */
Test(model_presets, fp8_weights_of_bf16_checkpoint, .timeout = 120 * KGT_TIME_SCALE)
{
    fp8_against("llama-tiny", KG_BF16);
}

/* A checkpoint whose projections and LM head are already on the fp8 grid: each row n (output
 * column) of an f32 [out, in] projection replaced by e4m3(w / s_n) * s_n, s_n = max |row| /
 * 240, the quantization --weights fp8 does (the embeddings too: tied, they are the LM head).
 * Loading it as fp8 then finds the same codes and scales, so the fp8 run differs from the f32
 * run only where the GEMM rounds its activation operand to bf16 for fp8 weights
 * (kgp_gemm_f32's contract: 2^-9 relative per element): measured 0.3% of the largest logit;
 * bar 1%. A quantization without the per-column scales (plain e4m3 of the weights) is off by
 * about 6% here, so this pins the scales, their orientation (per output column) and every
 * projection's use of them, the LM head's included, which the tolerance test above cannot
 * tell from cruder quantizations. */
static int is_projection(const char *name)
{
    static const char *const ends[] = { "q_proj.weight", "k_proj.weight", "v_proj.weight",
                                        "o_proj.weight", "gate_proj.weight", "up_proj.weight",
                                        "down_proj.weight", "lm_head.weight",
                                        "embed_tokens.weight" };
    size_t n = strlen(name);
    for (int i = 0; i < 9; i++) {
        size_t e = strlen(ends[i]);
        if (n >= e && !strcmp(name + n - e, ends[i]))
            return 1;
    }
    return 0;
}

static void write_on_fp8_grid(const char *from, const char *to)
{
    char err[512], path[1024], cmd[2200];
    kgst *st;
    cr_assert_eq(kgst_open(&st, from, err, sizeof err), KG_OK, "%s", err);
    int n = kgst_count(st), projections = 0;
    kgst_tensor *t = calloc((size_t)n, sizeof *t);
    cr_assert(t);
    for (int i = 0; i < n; i++) {
        t[i] = *kgst_at(st, i);
        if (!is_projection(t[i].name))
            continue;
        cr_assert(t[i].dtype == KG_F32 && t[i].rank == 2);
        long N = t[i].shape[0], K = t[i].shape[1];
        float *w = malloc((size_t)t[i].nbytes);
        cr_assert(w);
        memcpy(w, t[i].data, t[i].nbytes);
        for (long r = 0; r < N; r++) {
            float amax = 0, *row = w + r * K;
            for (long k = 0; k < K; k++)
                amax = fmaxf(amax, fabsf(row[k]));
            float sc = amax > 0 ? amax / 240.0f : 1.0f;
            for (long k = 0; k < K; k++)
                row[k] = kg_e4m3_to_f32(kg_f32_to_e4m3(row[k] / sc)) * sc;
        }
        t[i].data = w, projections++;
    }
    cr_assert_gt(projections, 0);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s/config.json' '%s/'", to, from, to);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    snprintf(path, sizeof path, "%s/model.safetensors", to);
    cr_assert_eq(kgst_write(path, t, n, err, sizeof err), KG_OK, "%s", err);
    for (int i = 0; i < n; i++)
        if (t[i].data != kgst_at(st, i)->data)
            free((void *)t[i].data);
    free(t);
    kgst_close(st);
}

Test(model_presets, fp8_weights_on_the_grid, .timeout = 120 * KGT_TIME_SCALE)
{
    char dir[512], grid[600];
    write_preset("qwen2-tiny", KG_F32, dir, sizeof dir);
    snprintf(grid, sizeof grid, "%s_fp8grid", dir);
    write_on_fp8_grid(dir, grid);
    int64_t ids[B * (P + N)];
    make_ids(ids, kgm_preset_find("qwen2-tiny")->config.vocab);
    outs got, want;
    run_model(grid, KGM_WEIGHTS_FP8, KGM_JIT, ids, &got);
    run_model(grid, KGM_WEIGHTS_STORED, KGM_JIT, ids, &want);
    compare("fp8-grid checkpoint, --weights fp8 vs f32", &got, &want, 1e-4, 1e-2);
    outs_free(&got), outs_free(&want);
}

/* fp8 built by libtcc and by gcc: the same bits. */
Test(model_presets, fp8_jit_and_aot_bit_identical, .timeout = 300 * KGT_TIME_SCALE)
{
    char dir[512];
    write_preset("qwen2-tiny", KG_BF16, dir, sizeof dir);
    int64_t ids[B * (P + N)];
    make_ids(ids, kgm_preset_find("qwen2-tiny")->config.vocab);
    outs jit, aot;
    run_model(dir, KGM_WEIGHTS_FP8, KGM_JIT, ids, &jit);
    run_model(dir, KGM_WEIGHTS_FP8, KGM_AOT, ids, &aot);
    long n = B * (P + N) * jit.V, nh = (jit.L + 1) * B * (P + N) * jit.H;
    cr_assert(memcmp(jit.logits, aot.logits, (size_t)n * sizeof(float)) == 0,
              "fp8: JIT and AOT logits differ");
    cr_assert(memcmp(jit.hidden, aot.hidden, (size_t)nh * sizeof(float)) == 0,
              "fp8: JIT and AOT hidden states differ");
    long nz = 0;
    for (long i = 0; i < n; i++)
        nz += jit.logits[i] != 0 && jit.logits[i] == jit.logits[i];
    cr_assert_gt(nz, n / 2, "the fp8 logits are mostly zero or NaN: nothing was compared");
    outs_free(&jit), outs_free(&aot);
}
