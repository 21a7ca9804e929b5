/* tests/test_model_mega.c: decode through the transformer_tkg megakernel (kgm_options
 * .no_megakernel unset) against the chain of single-op kernels (no_megakernel): the HF golden
 * (4 query heads, 2 KV heads: per-head QKV and o weights on one rank) and f32 presets, tp 1
 * and tp 2 (threads as ranks), batch 2, a prefill and teacher-forced decode steps; the
 * logits within the reference doc's tolerance (transformer_tkg.md: max mode, rtol 2.5e-2,
 * atol 1e-2), the largest difference reported; the model's stats say the megakernel ran
 * every decode step (and never with no_megakernel, nor for a model it does not cover); then
 * `kgen run --dump` with and without --no-megakernel. */
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

enum { B = 2, P = 5, N = 4, CTX = 16, MAX_TP = 4 };

#define GOLDEN KGEN_SHARED_DIR "/golden/llama_gqa"

/* One rank's decode logits [N, B, V] and the stats after the run. */
typedef struct outs {
    float *logits;
    long V;
    kgm_stats st;
    int rc;
    char err[600];
} outs;

typedef struct job {
    const char *dir;
    int tp, no_mega;
    const int64_t *ids;
    outs o[MAX_TP];
} job;

static void rank_run(kg_coll *c, int r, void *arg)
{
    (void)c;
    job *j = arg;
    outs *o = &j->o[r];
    kgm_options opt;
    kgm_options_default(&opt);
    opt.max_batch = B, opt.max_context = CTX, opt.tp = j->tp, opt.threads = 1;
    opt.no_megakernel = j->no_mega;
    kgm_model *m;
    if ((o->rc = kgm_open(&m, j->dir, &opt, o->err, sizeof o->err)) != KG_OK)
        return;
    long V = o->V = kgm_config_of(m)->vocab;
    o->logits = calloc((size_t)(N * B * V), sizeof(float));
    int64_t row[B * P];
    for (long b = 0; b < B; b++)
        memcpy(row + b * P, j->ids + b * (P + N), P * sizeof *row);
    if ((o->rc = kgm_prefill(m, B, P, row)) != KG_OK)
        goto out;
    for (long s = 0; s < N; s++) {
        for (long b = 0; b < B; b++)
            row[b] = j->ids[b * (P + N) + P + s];
        if ((o->rc = kgm_decode(m, B, row)) != KG_OK)
            goto out;
        memcpy(o->logits + s * B * V, kgm_logits(m, NULL), (size_t)(B * V) * sizeof(float));
    }
out:
    if (o->rc != KG_OK)
        snprintf(o->err, sizeof o->err, "%s", kgm_error(m));
    kgm_stats_of(m, &o->st);
    kgm_close(m);
}

static void run_tp(job *j, const char *dir, int tp, int no_mega, const int64_t *ids)
{
    memset(j, 0, sizeof *j);
    j->dir = dir, j->tp = tp, j->no_mega = no_mega, j->ids = ids;
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
        free(j->o[r].logits);
}

/* The reference doc's comparator (max mode): every |got - want| <= atol + rtol * |want|;
 * returns the largest |got - want|. */
static double within_doc(const char *what, const float *got, const float *want, long n)
{
    double worst = -1;
    long at = 0, bad = -1;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= worst))
            worst = d, at = i;
        if (bad < 0 && !(d <= 1e-2 + 2.5e-2 * fabs(want[i])))
            bad = i;
    }
    cr_assert(n > 0, "%s: nothing compared", what);
    cr_assert(bad < 0, "%s: |diff| %g at %ld (got %.7g, want %.7g) past atol 1e-2 + rtol "
              "2.5e-2", what, fabs((double)got[bad] - want[bad]), bad, got[bad], want[bad]);
    cr_log_info("%s: max |diff| %.3g at %ld over %ld logits", what, worst, at, n);
    return worst;
}

static void make_ids(int64_t *ids, long V)
{
    unsigned long long s = 4343;
    for (long i = 0; i < B * (P + N); i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int64_t)((s >> 33) % (unsigned long long)V);
    }
}

/* dir at tp: the megakernel's decode logits against the chain's; both runs' stats checked.
 * covered: whether the megakernel should decode dir. */
static void mega_vs_chain(const char *name, const char *dir, int tp, int covered)
{
    kgm_config c;
    char err[512], what[200];
    cr_assert_eq(kgm_config_load(&c, dir, err, sizeof err), KG_OK, "%s", err);
    int64_t ids[B * (P + N)];
    make_ids(ids, c.vocab);
    static job mega, chain; /* large: off the stack */
    run_tp(&mega, dir, tp, 0, ids);
    run_tp(&chain, dir, tp, 1, ids);
    for (int r = 0; r < tp; r++) {
        cr_assert_eq(mega.o[r].st.megakernel, covered, "%s tp %d rank %d: megakernel %d",
                     name, tp, r, mega.o[r].st.megakernel);
        cr_assert_eq(mega.o[r].st.megakernel_steps, covered ? N : 0, "%s tp %d rank %d: the "
                     "megakernel ran %ld decode steps of %d", name, tp, r,
                     mega.o[r].st.megakernel_steps, N);
        cr_assert_eq(chain.o[r].st.megakernel, 0);
        cr_assert(chain.o[r].st.megakernel_off &&
                  strstr(chain.o[r].st.megakernel_off, "no_megakernel"));
        cr_assert(covered ? !mega.o[r].st.megakernel_off : mega.o[r].st.megakernel_off != NULL);
        cr_assert_eq(chain.o[r].st.megakernel_steps, 0);
        cr_assert(memcmp(mega.o[r].logits, mega.o[0].logits,
                         (size_t)(N * B * c.vocab) * 4) == 0,
                  "%s tp %d: rank %d's logits differ from rank 0's", name, tp, r);
    }
    snprintf(what, sizeof what, "%s tp %d: megakernel decode logits vs the chain's", name, tp);
    double worst = within_doc(what, mega.o[0].logits, chain.o[0].logits, N * B * c.vocab);
    /* both f32 throughout: only the order of the sums differs */
    cr_assert(worst < 1e-3, "%s: max |diff| %g, f32 should be far closer", what, worst);
    job_free(&mega), job_free(&chain);
}

Test(model_mega, golden_tp1_tp2, .timeout = 180 * KGT_TIME_SCALE)
{
    mega_vs_chain("golden", GOLDEN, 1, 1); /* 2 KV heads on the rank: per-head weights */
    mega_vs_chain("golden", GOLDEN, 2, 1); /* 1 KV head a rank: the layer's own weights */
}

static const char *write_preset(const char *name, kg_dtype dt, char *dir, size_t len)
{
    const kgm_preset *p = kgm_preset_find(name);
    cr_assert(p, "no preset %s", name);
    snprintf(dir, len, "%s/mega_%s_%s", KGEN_TEST_TMP, name, kg_dtype_name(dt));
    char err[512];
    cr_assert_eq(kgm_preset_write(p, dt, 13, dir, NULL, err, sizeof err), KG_OK, "%s", err);
    return dir;
}

Test(model_mega, presets, .timeout = 300 * KGT_TIME_SCALE)
{
    char dir[512];
    /* llama-tiny: 8 query heads, 2 KV heads; tp 2 one KV head a rank, tp 4 shared */
    write_preset("llama-tiny", KG_F32, dir, sizeof dir);
    mega_vs_chain("llama-tiny", dir, 1, 1);
    mega_vs_chain("llama-tiny", dir, 2, 1);
    mega_vs_chain("llama-tiny", dir, 4, 1);
    /* llama 3 rope scaling: the tables from the scaled inv_freq */
    write_preset("llama3-tiny-rope", KG_F32, dir, sizeof dir);
    mega_vs_chain("llama3-tiny-rope", dir, 1, 1);
    /* bf16 weights (weight_dtype): the same GEMM as the chain's, its activation operand
     * rounded to bf16 alike */
    write_preset("llama-tiny", KG_BF16, dir, sizeof dir);
    mega_vs_chain("llama-tiny bf16", dir, 1, 1);
    mega_vs_chain("llama-tiny bf16", dir, 2, 1);
    /* not covered: Qwen2's QKV bias: the chain decodes */
    write_preset("qwen2-tiny", KG_F32, dir, sizeof dir);
    mega_vs_chain("qwen2-tiny", dir, 1, 0);
}

/* The spec names the megakernel where it covers the model, and not with no_megakernel. */
Test(model_mega, spec_option)
{
    kgm_config c;
    kgm_options o;
    char err[512], *text = NULL;
    cr_assert_eq(kgm_config_load(&c, GOLDEN, err, sizeof err), KG_OK, "%s", err);
    kgm_options_default(&o);
    cr_assert_eq(kgm_spec_text(&c, &o, &text, err, sizeof err), KG_OK, "%s", err);
    cr_assert(strstr(text, "family = \"transformer_tkg\""), "%s", text);
    free(text);
    o.no_megakernel = 1;
    cr_assert_eq(kgm_spec_text(&c, &o, &text, err, sizeof err), KG_OK, "%s", err);
    cr_assert_null(strstr(text, "transformer_tkg"), "%s", text);
    free(text);
}

/* ---- kgen run --dump with and without --no-megakernel --------------------------------------- */

static void run_cli(const char *flags, const char *tag, char *out, size_t len)
{
    kgst *g;
    char err[512], dir[512], idp[600], cmd[4096];
    cr_assert_eq(kgst_open(&g, GOLDEN "/golden.safetensors", err, sizeof err), KG_OK, "%s", err);
    const kgst_tensor *ids = kgst_find(g, "input_ids");
    cr_assert(ids && ids->dtype == KG_I64 && ids->rank == 2, "golden input_ids");
    snprintf(dir, sizeof dir, "%s/mega_cli", KGEN_TEST_TMP);
    snprintf(out, len, "%s/%s", dir, tag);
    snprintf(idp, sizeof idp, "%s/ids.npy", dir);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && rm -rf '%s'", dir, out);
    cr_assert_eq(system(cmd), 0);
    kg_npy a = { .dtype = KG_I64, .rank = 2, .shape = { ids->shape[0], ids->shape[1] },
                 .data = (void *)ids->data };
    cr_assert_eq(kg_npy_write(idp, &a, err, sizeof err), KG_OK, "%s", err);
    snprintf(cmd, sizeof cmd, "'%s' run --model '%s' --input-ids '%s' --prefill 7 --decode 3 "
             "--dump '%s' %s", KGEN_EXE, GOLDEN, idp, out, flags);
    cr_assert_eq(system(cmd), 0, "failed: %s", cmd);
    kgst_close(g);
}

static void npy(const char *dir, const char *name, kg_npy *a)
{
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    cr_assert_eq(kg_npy_read(path, a, err, sizeof err), KG_OK, "%s", err);
}

Test(model_mega, cli_dump_tp1_tp2, .timeout = 240 * KGT_TIME_SCALE)
{
    static const char *const flags[][2] = { { "", "tp1" }, { "--tp 2", "tp2" } };
    kgst *g;
    char err[512];
    cr_assert_eq(kgst_open(&g, GOLDEN "/golden.safetensors", err, sizeof err), KG_OK, "%s", err);
    for (int f = 0; f < 2; f++) {
        char mega[600], chain[600], fl[64], tag[64], what[200];
        run_cli(flags[f][0], flags[f][1], mega, sizeof mega);
        snprintf(fl, sizeof fl, "%s --no-megakernel", flags[f][0]);
        snprintf(tag, sizeof tag, "%s_chain", flags[f][1]);
        run_cli(fl, tag, chain, sizeof chain);
        for (int s = 0; s < 3; s++) {
            char name[64];
            snprintf(name, sizeof name, "decode%d_logits", s);
            kg_npy a, b;
            npy(mega, name, &a);
            npy(chain, name, &b);
            cr_assert(a.dtype == KG_F32 && a.rank == 3 && b.rank == 3);
            long n = a.shape[0] * a.shape[1] * a.shape[2];
            cr_assert(n == b.shape[0] * b.shape[1] * b.shape[2]);
            snprintf(what, sizeof what, "kgen run %s %s: megakernel vs chain", flags[f][0],
                     name);
            cr_assert(within_doc(what, a.data, b.data, n) < 1e-3, "%s", what);
            const kgst_tensor *gt = kgst_find(g, name);
            cr_assert(gt && gt->count == n, "golden %s", name);
            snprintf(what, sizeof what, "kgen run %s %s: megakernel vs the golden",
                     flags[f][0], name);
            within_doc(what, a.data, gt->data, n);
            kg_npy_free(&a), kg_npy_free(&b);
            /* the decode hidden states: the embeddings and the last layer's (normed) kept,
             * the layers between NaN (the megakernel keeps none) */
            snprintf(name, sizeof name, "decode%d_hidden", s);
            npy(mega, name, &a);
            long per = a.shape[1] * a.shape[2] * a.shape[3], L = a.shape[0] - 1;
            const float *h = a.data;
            cr_assert(!isnan(h[0]) && !isnan(h[L * per]) && isnan(h[per]), "%s", name);
            kg_npy_free(&a);
        }
    }
    kgst_close(g);
}
