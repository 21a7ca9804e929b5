/* tests/test_model_golden.c: the model library and `kgen run --model` against Hugging Face
 * transformers on shared/golden/llama_gqa (README there), read with the project's own
 * safetensors reader: the checking interface's dumps (a prefill of 7 tokens and three
 * teacher-forced decode steps, batch 2) within 1e-3 of every golden logit and hidden state,
 * under --jit and --aot; a prefill of all 10 tokens agrees with the golden's full run and with
 * prefill + decode; the KV cache the decode steps leave is the golden's. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kgen/npy.h"
#include "model/kgen_model.h"
#include "model/st.h"
#include "util/jitp.h"

#define GOLDEN KGEN_SHARED_DIR "/golden/llama_gqa"
static const double TOL = 1e-3; /* the README's bar for an fp32 implementation */

/* The golden file, or the test fails saying where it looked. */
static kgst *golden(void)
{
    struct stat st;
    cr_assert(stat(GOLDEN "/golden.safetensors", &st) == 0,
              "the HF golden is missing: %s/golden.safetensors (the tests read ../shared; "
              "set -DKGEN_SHARED_DIR)", GOLDEN);
    kgst *g;
    char err[512];
    cr_assert_eq(kgst_open(&g, GOLDEN "/golden.safetensors", err, sizeof err), KG_OK, "%s",
                 err);
    return g;
}

static const kgst_tensor *find(const kgst *g, const char *name)
{
    const kgst_tensor *t = kgst_find(g, name);
    cr_assert(t && t->dtype == KG_F32, "golden tensor %s missing or not f32", name);
    return t;
}

/* max |got - want| over n values, the worst index reported in what's message on failure. */
static void close_to(const char *what, const float *got, const float *want, long n)
{
    double worst = -1;
    long at = 0;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= worst)) /* NaN counts as worst */
            worst = d, at = i;
    }
    cr_assert(n > 0 && worst <= TOL, "%s: max |diff| %g at %ld (got %.7g, want %.7g), bar %g",
              what, worst, at, got[at], want[at], TOL);
    cr_log_info("%s: max |diff| %.3g over %ld values", what, worst, n);
}

/* OUT/name.npy (f32, count values) against golden tensor gname. */
static void npy_close(const char *out, const char *name, const kgst *g, const char *gname)
{
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/%s.npy", out, name);
    kg_npy a;
    cr_assert_eq(kg_npy_read(path, &a, err, sizeof err), KG_OK, "%s", err);
    const kgst_tensor *t = find(g, gname);
    cr_assert(a.dtype == KG_F32 && a.rank == t->rank, "%s: dtype or rank differs", path);
    for (int i = 0; i < a.rank; i++)
        cr_assert_eq(a.shape[i], t->shape[i], "%s: axis %d is %ld, golden %ld", path, i,
                     a.shape[i], t->shape[i]);
    char what[256];
    snprintf(what, sizeof what, "%s (%s)", name, out);
    close_to(what, a.data, t->data, t->count);
    kg_npy_free(&a);
}

/* kgen run --model GOLDEN --input-ids --prefill 7 --decode 3 --dump OUT [flag]; then every
 * dumped file against the golden. */
static void run_cli(const char *flag)
{
    kgst *g = golden();
    const kgst_tensor *ids = kgst_find(g, "input_ids");
    cr_assert(ids && ids->dtype == KG_I64 && ids->rank == 2, "golden input_ids");
    char dir[512], out[600], idp[600], cmd[4096], err[512];
    snprintf(dir, sizeof dir, "%s/model_golden%s", KGEN_TEST_TMP, flag);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(idp, sizeof idp, "%s/ids.npy", dir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    cr_assert_eq(system(cmd), 0);
    kg_npy a = { .dtype = KG_I64, .rank = 2, .shape = { ids->shape[0], ids->shape[1] },
                 .data = (void *)ids->data };
    cr_assert_eq(kg_npy_write(idp, &a, err, sizeof err), KG_OK, "%s", err);
    snprintf(cmd, sizeof cmd, "'%s' run --model '%s' --input-ids '%s' --prefill 7 --decode 3 "
             "--dump '%s' --threads 2 %s", KGEN_EXE, GOLDEN, idp, out, flag);
    cr_assert_eq(system(cmd), 0, "failed: %s", cmd);
    npy_close(out, "prefill_logits", g, "prefill_logits");
    npy_close(out, "prefill_hidden", g, "prefill_hidden");
    for (int s = 0; s < 3; s++) {
        char n1[32], n2[32];
        snprintf(n1, sizeof n1, "decode%d_logits", s);
        snprintf(n2, sizeof n2, "decode%d_hidden", s);
        npy_close(out, n1, g, n1);
        npy_close(out, n2, g, n2);
    }
    kgst_close(g);
}

/* the chain decodes (every decode hidden state is compared; the megakernel keeps none but the
 * first and last: tests/test_model_mega.c compares its logits with these and the golden's) */
Test(model_golden, cli_dump_jit, .timeout = 120 * KGT_TIME_SCALE)
{
    run_cli("--jit --no-megakernel");
}
Test(model_golden, cli_dump_aot, .timeout = 300 * KGT_TIME_SCALE)
{
    run_cli("--aot --no-megakernel");
}

/* The library itself: a prefill of all 10 tokens against the golden's full run, and its last
 * position against the third decode step of a 7-token prefill (the two paths agree); the KV
 * cache after the decode steps is not exposed, so it is checked through the logits. */
Test(model_golden, full_prefill_agrees_with_prefill_and_decode, .timeout = 120 * KGT_TIME_SCALE)
{
    kgst *g = golden();
    const kgst_tensor *ids = kgst_find(g, "input_ids");
    const int64_t *id = ids->data;
    long B = ids->shape[0], S = ids->shape[1], V = 512, H = 256;
    kgm_options o;
    kgm_options_default(&o);
    o.max_batch = B, o.max_context = S, o.all_logits = 1, o.keep_hidden = 1;
    kgm_model *m;
    char err[512];
    cr_assert_eq(kgm_open(&m, GOLDEN, &o, err, sizeof err), KG_OK, "%s", err);
    cr_assert_eq(kgm_prefill(m, B, S, id), KG_OK, "%s", kgm_error(m));
    long T;
    const float *full = kgm_logits(m, &T);
    cr_assert_eq(T, S);
    close_to("full_logits", full, find(g, "full_logits")->data, B * S * V);
    for (long l = 0; l <= 3; l++) {
        char what[32];
        snprintf(what, sizeof what, "full_hidden[%ld]", l);
        close_to(what, kgm_hidden(m, l), (const float *)find(g, "full_hidden")->data +
                 l * B * S * H, B * S * H);
    }
    float *last = malloc((size_t)(B * V) * sizeof *last);
    for (long b = 0; b < B; b++)
        memcpy(last + b * V, full + (b * S + S - 1) * V, (size_t)V * sizeof *last);
    int64_t pre[64], step[8];
    for (long b = 0; b < B; b++)
        memcpy(pre + b * 7, id + b * S, 7 * sizeof *pre);
    cr_assert_eq(kgm_prefill(m, B, 7, pre), KG_OK, "%s", kgm_error(m));
    for (long s = 0; s < 3; s++) {
        for (long b = 0; b < B; b++)
            step[b] = id[b * S + 7 + s];
        cr_assert_eq(kgm_decode(m, B, step), KG_OK, "%s", kgm_error(m));
    }
    cr_assert_eq(kgm_position(m), S);
    close_to("decode2 vs the full prefill's last position", kgm_logits(m, NULL), last, B * V);
    /* past the context: refused, nothing computed */
    cr_assert_eq(kgm_decode(m, B, step), KGM_EINPUT);
    cr_assert(strstr(kgm_error(m), "context"), "%s", kgm_error(m));
    free(last);
    kgm_close(m);
    kgst_close(g);
}

/* kgen spec --from-hf writes a spec the generator takes: kgen list reads it back with the ten
 * kernels the forward pass calls and the decode megakernel (eleven). */
Test(model_golden, spec_from_hf_is_a_spec, .timeout = 60 * KGT_TIME_SCALE)
{
    golden();
    char spec[600], cmd[2048];
    snprintf(spec, sizeof spec, "%s/golden_spec.lua", KGEN_TEST_TMP);
    snprintf(cmd, sizeof cmd, "'%s' spec --from-hf '%s' -o '%s'", KGEN_EXE, GOLDEN, spec);
    cr_assert_eq(system(cmd), 0, "failed: %s", cmd);
    snprintf(cmd, sizeof cmd, "test \"$('%s' list '%s' | grep -c '^kg_')\" = 11", KGEN_EXE, spec);
    cr_assert_eq(system(cmd), 0, "kgen list of the spec does not list 11 kernels: %s", cmd);
}
