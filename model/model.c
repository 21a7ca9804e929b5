/* model.c: a model's life (kgen_model.h): open (config, spec, kernels, weights, KV cache and
 * activation buffers), the checked entry points of prefill and decode, the accessors, close. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels.h"
#include "kgen/ckd.h"
#include "kgen/coll.h"
#include "kgen/gcc.h"
#include "kgen/moe_blocks.h"
#include "model_int.h"

const char *const kgm_kernel_family[KGM_K_COUNT] = {
    "qkv", "rope_hf", "attention_cte", "output_projection", "mlp",
    "qkv", "attention_tkg", "output_projection", "mlp", "lm_head", "router_topk", "moe_tkg",
    "moe_cte",
    "transformer_tkg",
};

double kgm_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int fail(char *err, size_t errlen, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return status;
}

/* ---- options and limits --------------------------------------------------------------------- */

void kgm_options_default(kgm_options *o)
{
    memset(o, 0, sizeof *o);
}

/* The context the cache holds when the options name none: the model's own, up to 4096. */
enum { DEFAULT_CONTEXT = 4096, MAX_BATCH = 1024 };

void kgm_limits_of(const kgm_config *c, const kgm_options *o, kgm_limits *l)
{
    long ctx = c->max_position > 0 && c->max_position < DEFAULT_CONTEXT ? c->max_position
                                                                         : DEFAULT_CONTEXT;
    l->max_context = o && o->max_context > 0 ? o->max_context : ctx;
    l->max_batch = o && o->max_batch > 0 ? o->max_batch : 1;
}

const char *kgm_weight_name(const kgm_config *c, const kgm_options *o)
{
    if (o && o->weights == KGM_WEIGHTS_FP8)
        return "e4m3";
    if (o && o->weights == KGM_WEIGHTS_BF16)
        return "bf16";
    return c->dtype == KG_BF16 ? "bf16" : c->dtype == KG_F16 ? "fp16" : "f32";
}

/* The chain's kernels in spec order (spec.c writes them so), the megakernel (when the spec has
 * it) after them: *n of them in order[]. fp8: no CTE output projection nor MLP (the TKG ones
 * serve prefill); Mixtral: no MLP, the router and the experts after the LM head. */
static void spec_order(const kgm_config *c, const kgm_options *o, int order[KGM_K_COUNT],
                       int *n)
{
    int fp8 = o && o->weights == KGM_WEIGHTS_FP8, moe = c && c->experts > 0;
    *n = 0;
    for (int k = 0; k < KGM_K_MEGA; k++) {
        if ((fp8 && (k == KGM_K_OPROJ_CTE || k == KGM_K_MLP_CTE)) ||
            (moe && (k == KGM_K_MLP_CTE || k == KGM_K_MLP_TKG)) ||
            (!moe && (k == KGM_K_ROUTER || k == KGM_K_MOE || k == KGM_K_MOE_CTE)))
            continue;
        order[(*n)++] = k;
    }
}

int kgm_spec_count(const kgm_config *c, const kgm_options *o)
{
    int order[KGM_K_COUNT], n;
    spec_order(c, o, order, &n);
    return n;
}

int kgm_spec_index(const kgm_config *c, const kgm_options *o, int k)
{
    int order[KGM_K_COUNT], n;
    spec_order(c, o, order, &n);
    if (k == KGM_K_MEGA)
        return n;
    /* fp8: the CTE projections missing are the TKG ones */
    if (o && o->weights == KGM_WEIGHTS_FP8 && k == KGM_K_OPROJ_CTE)
        k = KGM_K_OPROJ_TKG;
    if (o && o->weights == KGM_WEIGHTS_FP8 && k == KGM_K_MLP_CTE)
        k = KGM_K_MLP_TKG;
    for (int i = 0; i < n; i++)
        if (order[i] == k)
            return i;
    return -1;
}

/* ---- kernels -------------------------------------------------------------------------------- */

/* The spec of m's config generated in memory and compiled (libtcc or gcc); each KGM_K_* kernel
 * looked up once. */
static int build_kernels(kgm_model *m, char *err, size_t errlen)
{
    char *text = NULL;
    double t0 = kgm_now();
    int rc = kgm_spec_text(&m->c, &m->o, &text, err, errlen);
    if (rc != KG_OK)
        return rc;
    for (const char *p = text; *p; p++)
        m->stats.spec_lines += *p == '\n';
    double t1 = kgm_now();
    m->stats.spec_ms = (t1 - t0) * 1e3;
    kgg *g = kgg_new();
    kgg_kernels ks;
    if (!g) {
        free(text);
        return fail(err, errlen, KG_ENOMEM, "cannot start the generator's Lua state");
    }
    rc = kgg_kernels_from_text(g, text, strlen(text), "config.json (kgen spec --from-hf)", &ks);
    free(text);
    if (rc != KG_OK) {
        fail(err, errlen, rc, "%s", kgg_error(g));
        kgg_free(g);
        return rc;
    }
    kgg_free(g);
    double t2 = kgm_now();
    m->stats.generate_ms = (t2 - t1) * 1e3;
    int n = ks.m->nkernels;
    m->stats.kernels = n;
    if (n != kgm_spec_count(&m->c, &m->o) + m->mega_on) {
        kgg_kernels_free(&ks);
        return fail(err, errlen, KG_ESPEC, "the model's spec gave %d kernels, not %d", n,
                    kgm_spec_count(&m->c, &m->o) + m->mega_on);
    }
    m->reg = kg_registry_new();
    const char *const *labels = (const char *const *)ks.label;
    const char *const *texts = (const char *const *)ks.text;
    rc = !m->reg ? KG_ENOMEM
         : m->o.build == KGM_AOT ? kg_gcc_compile(m->reg, n, ks.info, labels, texts, NULL)
                                 : kg_jit_compile(m->reg, n, ks.info, labels, texts, NULL);
    if (rc != KG_OK)
        fail(err, errlen, rc, "%s", m->reg ? kg_registry_error(m->reg) : "out of memory");
    for (int i = 0; rc == KG_OK && i < KGM_K_COUNT - !m->mega_on; i++) {
        int at = kgm_spec_index(&m->c, &m->o, i);
        if (at < 0)
            continue; /* not in this model's spec */
        const kg_kernel *k = kg_registry_find(m->reg, ks.m->kernels[at].symbol);
        if (!k || strcmp(k->family, kgm_kernel_family[i]) != 0)
            rc = fail(err, errlen, KG_ESPEC, "kernel %d of the model's spec is not a %s kernel",
                      at, kgm_kernel_family[i]);
        else
            m->call[i] = k->call, m->desc[i] = &ks.m->kernels[at];
    }
    m->man = ks.m, ks.m = NULL; /* kept: forward.c binds arguments by their manifest names */
    for (int i = 0; i < n; i++)
        free(ks.text[i]), free(ks.label[i]), ks.text[i] = ks.label[i] = NULL;
    kgg_kernels_free(&ks);
    m->stats.compile_ms = (kgm_now() - t2) * 1e3;
    return rc;
}

/* ---- buffers -------------------------------------------------------------------------------- */

/* n floats (n = a * b * c, checked) from kg_stream_alloc, counted in m->act_bytes. */
static float *floats(kgm_model *m, long a, long b, long c, int *bad)
{
    size_t n, bytes;
    if (*bad || kg_ckd_mul(&n, (size_t)a, (size_t)b) || kg_ckd_mul(&n, n, (size_t)c) ||
        kg_ckd_mul(&bytes, n, sizeof(float))) {
        *bad = 1;
        return NULL;
    }
    float *p = kg_stream_alloc(bytes);
    if (!p)
        *bad = 1;
    else
        m->act_bytes += bytes;
    return p;
}

/* The KV caches, the activations and the rotary tables: the rank's heads (kgm_shard), the
 * whole hidden size. */
static int make_buffers(kgm_model *m, char *err, size_t errlen)
{
    const kgm_config *c = &m->c;
    const kgm_shard *sh = &m->sh;
    long C = m->lim.max_context, rows = m->lim.max_batch * C, d = c->head_dim;
    long heads = sh->nq + 2 * sh->nkv;
    int bad = 0;
    size_t before = m->act_bytes;
    for (long l = 0; l < c->layers && !m->mega_on; l++) {
        m->layers[l].k_cache = floats(m, m->lim.max_batch * sh->nkv, C, d, &bad);
        m->layers[l].v_cache = floats(m, m->lim.max_batch * sh->nkv, C, d, &bad);
    }
    for (long e = 0; m->mega_on && e < c->layers * sh->nkv; e++) {
        m->mega.k[e] = floats(m, m->lim.max_batch, d, C, &bad);
        m->mega.v[e] = floats(m, m->lim.max_batch, C, d, &bad);
    }
    m->stats.cache_bytes = m->act_bytes - before;
    m->x = floats(m, rows, c->hidden, 1, &bad);
    m->o_out = floats(m, rows, c->hidden, 1, &bad);
    m->mlp_out = floats(m, rows, c->hidden, 1, &bad);
    m->added = floats(m, rows, c->hidden, 1, &bad);
    m->normed = floats(m, rows, c->hidden, 1, &bad);
    if (c->experts) {
        m->r_logits = floats(m, rows, c->experts, 1, &bad);
        m->r_aff = floats(m, rows, c->experts, 1, &bad);
        m->r_idx = (kg_u32 *)floats(m, rows, c->experts_per_tok, 1, &bad); /* 4-byte slots */
        m->blk_n = kg_moe_blocks_count(rows, c->experts_per_tok, c->experts, KGM_MOE_BLOCK);
        if (m->blk_n < 1)
            bad = 1;
        m->blk_tpi = (int32_t *)floats(m, m->blk_n, KGM_MOE_BLOCK, 1, &bad);
        m->blk_b2e = (int32_t *)floats(m, m->blk_n, 1, 1, &bad);
    }
    m->heads = floats(m, heads, C > m->lim.max_batch ? C : m->lim.max_batch, d, &bad);
    m->q_rot = floats(m, sh->nq, C, d, &bad);
    m->qkv_rows = floats(m, heads, C, d, &bad);
    m->k_rot = floats(m, sh->nkv, C, d, &bad);
    m->attn = floats(m, m->lim.max_batch > 1 ? m->lim.max_batch : 1, sh->nq * C, d, &bad);
    long lrows = m->o.all_logits || m->o.keep_hidden ? rows : m->lim.max_batch;
    m->logits = floats(m, lrows, c->vocab, 1, &bad);
    if (sh->tp > 1) {
        m->logits_r = floats(m, lrows, sh->V, 1, &bad);
        m->gather = floats(m, sh->tp, lrows, sh->V, &bad);
    }
    if (m->o.keep_hidden)
        m->hidden = floats(m, c->layers + 1, rows, c->hidden, &bad);
    m->cos = floats(m, C, d, 1, &bad);
    m->sin = floats(m, C, d, 1, &bad);
    m->inv_freq = calloc((size_t)d / 2 + 1, sizeof *m->inv_freq);
    m->inv_freq_f = calloc((size_t)d / 2 + 1, sizeof *m->inv_freq_f);
    m->mask = malloc((size_t)sh->nq);
    if (m->mask)
        memset(m->mask, 1, (size_t)sh->nq);
    if (m->mega_on) {
        kgm_mega *g = &m->mega;
        g->cos = floats(m, d / 2, m->lim.max_batch, 1, &bad);
        g->sin = floats(m, d / 2, m->lim.max_batch, 1, &bad);
        g->out = floats(m, m->lim.max_batch, c->hidden, 1, &bad);
        g->pos = calloc((size_t)m->lim.max_batch, sizeof *g->pos);
        size_t mb = (size_t)C * (size_t)m->lim.max_batch * (size_t)sh->nq;
        if ((g->mask = malloc(mb)) != NULL)
            memset(g->mask, 1, mb); /* every slot of the window: the step's token is the last */
        bad |= !g->pos || !g->mask;
    }
    if (bad || !m->inv_freq || !m->inv_freq_f || !m->mask)
        return fail(err, errlen, KG_ENOMEM, "out of memory for the KV cache and activations "
                    "(%ld sequences of %ld tokens)", m->lim.max_batch, C);
    kgm_rope_inv_freq(c, m->inv_freq);
    for (long i = 0; i < d / 2; i++)
        m->inv_freq_f[i] = (float)m->inv_freq[i];
    /* HF: emb = cat(freqs, freqs), cos/sin of position p times inv_freq */
    for (long p = 0; p < C; p++)
        for (long i = 0; i < d; i++) {
            double a = (double)p * m->inv_freq[i % (d / 2)];
            m->cos[p * d + i] = (float)cos(a);
            m->sin[p * d + i] = (float)sin(a);
        }
    m->stats.act_bytes = m->act_bytes - m->stats.cache_bytes;
    return KG_OK;
}

/* ---- open and close ------------------------------------------------------------------------- */

/* Tensor parallelism: the group's communicator, the one bound to the calling thread, must
 * have tp ranks. */
static int join_group(kgm_model *m, char *err, size_t errlen)
{
    int tp = m->o.tp > 1 ? m->o.tp : 1;
    if (tp == 1)
        return KG_OK;
    kg_coll *g = kgp_coll();
    if (kgp_coll_size(g) != tp)
        return fail(err, errlen, KG_EARG, "tensor parallelism over %d ranks, but the "
                    "communicator bound to this thread has %d", tp, kgp_coll_size(g));
    m->coll = g;
    return KG_OK;
}

/* What one rank sends the others when the group agrees on the open. */
typedef struct verdict { int rc; char err[500]; } verdict;

/* Every rank learns every rank's outcome; the lowest failing rank's status and line become
 * each rank's ("rank R: ..." on the others), so no rank goes on to wait for a failed one. */
static int agree(kgm_model *m, int rc, char *err, size_t errlen)
{
    int tp = kgp_coll_size(m->coll), me = kgp_coll_rank(m->coll);
    verdict v = { rc, "" }, *all = calloc((size_t)tp, sizeof *all);
    snprintf(v.err, sizeof v.err, "%s", rc == KG_OK ? "" : err);
    if (!all || kgp_all_gather(m->coll, all, &v, sizeof v) != KG_OK) {
        /* the gather has failed on every rank alike (kgen/abi.h), or this rank's memory: the
         * others then fail theirs */
        free(all);
        return fail(err, errlen, KG_ENOMEM, "tensor parallelism: the ranks could not agree "
                    "on opening the model");
    }
    for (int r = 0; r < tp; r++) {
        if (all[r].rc == KG_OK)
            continue;
        rc = all[r].rc;
        if (r != me)
            fail(err, errlen, rc, "rank %d: %s", r, all[r].err);
        break;
    }
    free(all);
    return rc;
}

int kgm_open(kgm_model **out, const char *dir, const kgm_options *o, char *err, size_t errlen)
{
    *out = NULL;
    kgm_model *m = calloc(1, sizeof *m);
    if (!m)
        return fail(err, errlen, KG_ENOMEM, "out of memory");
    if (o)
        m->o = *o;
    int rc = join_group(m, err, errlen);
    if (rc != KG_OK) {
        free(m);
        return rc;
    }
    rc = kgm_config_load(&m->c, dir, err, errlen);
    if (rc == KG_OK) {
        kgm_limits_of(&m->c, &m->o, &m->lim);
        if (m->lim.max_batch > MAX_BATCH)
            rc = fail(err, errlen, KG_ESPEC, "max_batch %ld is past %d", m->lim.max_batch,
                      MAX_BATCH);
        else if (m->lim.max_context > m->c.max_position && m->c.max_position > 0)
            rc = fail(err, errlen, KG_ESPEC, "max_context %ld is past the model's "
                      "max_position_embeddings %ld", m->lim.max_context, m->c.max_position);
    }
    if (rc == KG_OK)
        rc = kgm_shard_of(&m->c, m->o.tp, m->coll ? kgp_coll_rank(m->coll) : 0, &m->sh, err,
                          errlen);
    if (rc == KG_OK && m->o.threads > 0)
        kg_set_threads(m->o.threads);
    if (rc == KG_OK && kgm_megakernel(&m->c, &m->o, &m->sh, NULL))
        rc = kgm_mega_alloc(m, err, errlen);
    m->layers = rc == KG_OK ? calloc((size_t)m->c.layers, sizeof *m->layers) : NULL;
    if (rc == KG_OK && !m->layers)
        rc = fail(err, errlen, KG_ENOMEM, "out of memory");
    if (rc == KG_OK)
        rc = build_kernels(m, err, errlen);
    double t0 = kgm_now();
    if (rc == KG_OK)
        rc = kgm_weights_load(m, dir, err, errlen);
    m->stats.load_ms = (kgm_now() - t0) * 1e3;
    if (rc == KG_OK)
        rc = make_buffers(m, err, errlen);
    if (rc == KG_OK)
        kgm_mega_bind(m);
    if (m->coll)
        rc = agree(m, rc, err, errlen);
    if (rc != KG_OK) {
        kgm_close(m);
        return rc;
    }
    m->stats.weights = kgm_weight_name(&m->c, &m->o);
    m->stats.aot = m->o.build == KGM_AOT;
    m->stats.max_context = m->lim.max_context, m->stats.max_batch = m->lim.max_batch;
    m->stats.tp = m->sh.tp, m->stats.tp_rank = m->sh.rank;
    m->stats.megakernel = m->mega_on;
    if (!m->mega_on)
        kgm_megakernel(&m->c, &m->o, &m->sh, &m->stats.megakernel_off);
    *out = m;
    return KG_OK;
}

void kgm_close(kgm_model *m)
{
    if (!m)
        return;
    kgm_weights_free(m);
    for (long l = 0; m->layers && l < m->c.layers; l++) {
        free(m->layers[l].k_cache);
        free(m->layers[l].v_cache);
    }
    free(m->layers);
    float *bufs[] = { m->x, m->o_out, m->mlp_out, m->added, m->normed, m->heads, m->q_rot,
                      m->k_rot, m->qkv_rows, m->attn, m->logits, m->logits_r, m->gather,
                      m->hidden, m->cos, m->sin, m->r_logits, m->r_aff, (float *)m->r_idx,
                      (float *)m->blk_tpi, (float *)m->blk_b2e };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    free(m->inv_freq);
    free(m->inv_freq_f);
    free(m->mask);
    kgm_mega_free(m);
    kg_registry_free(m->reg);
    kg_manifest_free(m->man);
    kgst_close(m->st);
    free(m);
}

/* ---- calls ---------------------------------------------------------------------------------- */

/* Every id of ids [n] inside the vocabulary. */
static int ids_ok(kgm_model *m, long n, const int64_t *ids)
{
    for (long i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->c.vocab) {
            snprintf(m->err, sizeof m->err, "token id %lld (input %ld) is outside the "
                     "vocabulary of %ld", (long long)ids[i], i, m->c.vocab);
            return 0;
        }
    return 1;
}

int kgm_prefill(kgm_model *m, long B, long P, const int64_t *ids)
{
    if (B < 1 || B > m->lim.max_batch)
        return fail(m->err, sizeof m->err, KGM_EINPUT, "batch %ld is outside 1..%ld (the "
                    "max_batch the model was opened with)", B, m->lim.max_batch);
    if (P < 1 || P > m->lim.max_context)
        return fail(m->err, sizeof m->err, KGM_EINPUT, "a prompt of %ld tokens is outside "
                    "1..%ld (the context limit)", P, m->lim.max_context);
    if (!ids_ok(m, B * P, ids))
        return KGM_EINPUT;
    return kgm_forward_prefill(m, B, P, ids);
}

int kgm_decode(kgm_model *m, long B, const int64_t *ids)
{
    if (m->B == 0 || B != m->B)
        return fail(m->err, sizeof m->err, KGM_EINPUT, "decode of %ld sequences after a "
                    "prefill of %ld", B, m->B);
    if (m->pos >= m->lim.max_context)
        return fail(m->err, sizeof m->err, KGM_EINPUT, "the context limit of %ld tokens is "
                    "reached", m->lim.max_context);
    if (!ids_ok(m, B, ids))
        return KGM_EINPUT;
    return kgm_forward_decode(m, B, ids);
}

const kgm_config *kgm_config_of(const kgm_model *m) { return &m->c; }
const char *kgm_error(const kgm_model *m) { return m->err; }
long kgm_position(const kgm_model *m) { return m->pos; }

const float *kgm_logits(const kgm_model *m, long *T)
{
    if (T)
        *T = m->last_T;
    return m->logits;
}

const float *kgm_hidden(const kgm_model *m, long l)
{
    if (!m->hidden || l < 0 || l > m->c.layers)
        return NULL;
    return m->hidden + l * m->lim.max_batch * m->lim.max_context * m->c.hidden;
}

void kgm_stats_of(const kgm_model *m, kgm_stats *s) { *s = m->stats; }
