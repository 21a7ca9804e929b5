/* forward.c: the layer graph of Llama, Qwen2 and Mixtral (one graph: Qwen2 is Llama with a QKV
 * bias and, in small models, tied embeddings; Mixtral is Llama with a sparse MoE block, router
 * and experts (moe: moe_cte over blocks of the router's picks in prefill, moe_tkg in decode),
 * for the MLP), through the spec's kernels (model_int.h KGM_K_*).
 * Activations are f32; x is the residual stream [rows, H].
 *   prefill, per sequence b (the qkv NBSd and attention layouts hold one sequence per call):
 *     heads = qkv(rmsnorm(x_b))          [P, nq + 2 nkv, d], moved to [nq + 2 nkv, P, d]
 *                                         (qkv's NBSd layout is for d = 128 only)
 *     q, k  = rope_hf(q, k)               HF rotate-half, tables of positions 0..P-1
 *     cache[b, :, 0:P] = k, v
 *     attn  = attention_cte(q, k, v)      causal, [1, nq, d, P]
 *     o_b   = o_proj(attn)                [P, H]
 *   then for all rows: added = x + o; x = added + mlp(rmsnorm(added))
 *   fp8 weights: prefill's output projection and MLP are the TKG kernels (model_int.h); the
 *   LM head is fp8 too (its scales bound as w_scale), the embeddings are read as stored
 *   decode, all sequences in one call except attention (one call per sequence, against its
 *   own cache rows; it rotates q and the new k itself and returns the rotated k);
 *   or, where the transformer_tkg megakernel covers the model (kgm_megakernel), every layer
 *   in one call of it against its own caches (kgm_mega; prefill fills them).
 * Tensor parallelism (kgm_shard): a rank runs its own heads, its MLP columns and its
 * vocabulary slice; the output projection's and the MLP's partial sums are all-reduced (fp32,
 * rank order: the same bits on every rank) before each residual add, and the logits
 * all-gathered, in prefill and decode alike. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kgen/dtype.h"
#include "kgen/moe_blocks.h"
#include "model_int.h"

/* ---- calling a kernel by its arguments' names ----------------------------------------------- */
/* A kernel is called through its uniform entry point (kg_kernel_v): tensors in signature order,
 * per-call sizes in manifest order. Both orders come from the manifest, so the arguments are
 * bound by name here and no signature is typed twice (nor is kgen/kernels.h, generated, needed
 * to build the library that the kgen binary links). */

typedef struct bind { const char *name; const void *p; } bind;
typedef struct size { const char *name; long v; } size;

static int run(kgm_model *m, int k, const bind *a, int na, const size *s, int ns)
{
    const kg_manifest_kernel *d = m->desc[k];
    void *t[KG_MANIFEST_MAX_ARGS] = { 0 };
    long n[KG_MANIFEST_MAX_CALLS] = { 0 };
    for (int i = 0; i < na; i++) {
        int j = 0;
        while (j < d->nargs && strcmp(d->args[j].name, a[i].name) != 0)
            j++;
        if (j == d->nargs)
            goto unknown;
        t[j] = (void *)a[i].p;
    }
    for (int i = 0; i < ns; i++) {
        int j = 0;
        while (j < d->ncalls && strcmp(d->calls[j].name, s[i].name) != 0)
            j++;
        if (j == d->ncalls)
            goto unknown;
        n[j] = s[i].v;
    }
    int rc = m->call[k](t, n);
    if (rc != KG_OK)
        snprintf(m->err, sizeof m->err, "kernel %s returned status %d", d->symbol, rc);
    return rc;
unknown:
    snprintf(m->err, sizeof m->err, "kernel %s: an argument the model binds is not in its "
             "signature", d->symbol);
    return KG_ESPEC;
}

#define UNPAREN(...) __VA_ARGS__
/* RUN(m, KGM_K_*, ({ "name", pointer }, ...), ({ "size", value }, ...)): returns the status
 * from the enclosing function if the kernel fails. */
#define RUN(m, k, ARGS, SIZES)                                                                \
    do {                                                                                      \
        const bind a_[] = { UNPAREN ARGS };                                                   \
        const size s_[] = { UNPAREN SIZES };                                                  \
        int rc_ = run(m, k, a_, (int)(sizeof a_ / sizeof a_[0]), s_,                          \
                      (int)(sizeof s_ / sizeof s_[0]));                                       \
        if (rc_ != KG_OK)                                                                     \
            return rc_;                                                                       \
    } while (0)

/* x [n, H] = the embeddings of ids [n] in f32. */
static void embed(kgm_model *m, long n, const int64_t *ids)
{
    const kgst_tensor *e = m->embed;
    long H = m->c.hidden;
    for (long t = 0; t < n; t++) {
        float *x = m->x + t * H;
        const unsigned char *row = (const unsigned char *)e->data;
        if (e->dtype == KG_F32) {
            memcpy(x, row + (size_t)ids[t] * (size_t)H * 4, (size_t)H * 4);
            continue;
        }
        for (long h = 0; h < H; h++) {
            uint16_t v;
            memcpy(&v, row + ((size_t)ids[t] * (size_t)H + (size_t)h) * 2, 2);
            x[h] = e->dtype == KG_BF16 ? kg_bf16_to_f32(v) : kg_f16_to_f32(v);
        }
    }
}

/* The hidden state of layer l (0: the embeddings) for rows [0, n), if kept. */
static void keep(kgm_model *m, long l, const float *x, long n)
{
    if (m->hidden)
        memcpy((float *)kgm_hidden(m, l), x, (size_t)(n * m->c.hidden) * sizeof(float));
}

/* ---- tensor parallelism ---------------------------------------------------------------------- */

/* y [n] = the sum over the ranks of each rank's y (tp > 1; nothing with one rank). */
static int all_reduce(kgm_model *m, float *y, long n)
{
    if (!m->coll)
        return KG_OK;
    int rc = kgp_all_reduce(m->coll, y, y, n, KG_COLL_F32);
    if (rc != KG_OK)
        snprintf(m->err, sizeof m->err, "tensor parallelism: all-reduce of %ld values returned "
                 "status %d", n, rc);
    return rc;
}

/* logits [n, V] from every rank's slice logits_r [n, sh.V] (tp > 1): gathered rank-major,
 * then each row's slices put side by side, the last one's padding dropped. */
static int gather_logits(kgm_model *m, long n)
{
    const kgm_shard *sh = &m->sh;
    long V = m->c.vocab;
    size_t bytes = (size_t)(n * sh->V) * sizeof(float);
    int rc = kgp_all_gather(m->coll, m->gather, m->logits_r, (long)bytes);
    if (rc != KG_OK) {
        snprintf(m->err, sizeof m->err, "tensor parallelism: all-gather of the logits returned "
                 "status %d", rc);
        return rc;
    }
    for (int r = 0; r < sh->tp; r++) {
        long v0 = r * sh->V, len = v0 >= V ? 0 : V - v0 < sh->V ? V - v0 : sh->V;
        const float *from = m->gather + (size_t)r * (size_t)(n * sh->V);
        for (long t = 0; t < n && len > 0; t++)
            memcpy(m->logits + t * V + v0, from + t * sh->V, (size_t)len * sizeof(float));
    }
    return KG_OK;
}

/* The residual stream after the MLP of all n rows: added = x + o, x = added + mlp(added),
 * o and the MLP's output summed over the ranks first. */
static int mlp(kgm_model *m, int k, const kgm_layer *L, long n)
{
    long H = m->c.hidden;
    int rc = all_reduce(m, m->o_out, n * H);
    if (rc != KG_OK)
        return rc;
    RUN(m, k, ({ "out", m->mlp_out }, { "add_out", m->added }, { "hidden", m->o_out },
               { "add", m->x }, { "gate_w", &L->gate }, { "up_w", &L->up },
               { "down_w", &L->down }, { "gate_scale", L->gate_s }, { "up_scale", L->up_s },
               { "down_scale", L->down_s }, { "gamma", L->ln2 }),
        ({ "T", n }));
    if ((rc = all_reduce(m, m->mlp_out, n * H)) != KG_OK)
        return rc;
    for (long i = 0; i < n * H; i++)
        m->x[i] = m->added[i] + m->mlp_out[i];
    return KG_OK;
}

/* Prefill's experts: the router's picks of the n rows grouped into blocks of KGM_MOE_BLOCK
 * slots, one expert a block (moe_cte.md's convention, kg_moe_blocks), the affinities masked to
 * the picks; moe_cte adds each slot's SiLU MLP times its affinity into mlp_out (zeroed first),
 * reading each picked expert's weights once a pass of its blocks. */
static int experts_prefill(kgm_model *m, const kgm_layer *L, long n)
{
    long H = m->c.hidden, E = m->c.experts, K = m->c.experts_per_tok, used = 0;
    long N = kg_moe_blocks_count(n, K, E, KGM_MOE_BLOCK);
    if (N < 1 || N > m->blk_n)
        return KG_EARG;
    int rc = kg_moe_blocks(m->blk_tpi, m->blk_b2e, NULL, &used, m->r_idx, n, K, E,
                           KGM_MOE_BLOCK, N, 0);
    if (rc == KG_OK)
        rc = kg_moe_mask_affinities(m->r_aff, m->r_aff, m->r_idx, n, K, E);
    if (rc != KG_OK) {
        snprintf(m->err, sizeof m->err, "the router's experts make no block layout (%d)", rc);
        return rc;
    }
    memset(m->mlp_out, 0, (size_t)(n * H) * sizeof *m->mlp_out);
    /* the blocks past `used` hold only padding: not passed */
    RUN(m, KGM_K_MOE_CTE, ({ "output", m->mlp_out }, { "hidden_states", m->normed },
                           { "expert_affinities_masked", m->r_aff },
                           { "gate_up_proj_weight", &L->experts_gu },
                           { "down_proj_weight", &L->experts_d },
                           { "token_position_to_id", m->blk_tpi },
                           { "block_to_expert", m->blk_b2e },
                           { "gate_up_proj_scale", L->experts_gu_s },
                           { "down_proj_scale", L->experts_d_s }),
        ({ "T", n }, { "N", used }));
    m->stats.moe_cte_calls++;
    return KG_OK;
}

/* Mixtral's sparse MoE block in place of the MLP, all n rows (prefill's prompt tokens or a
 * decode step's): added = x + o (o summed over the ranks first); normed = RMSNorm(added) *
 * ln2; the router picks each row's experts (softmax of all E logits, the top K, renormalised);
 * their SiLU MLPs, each times its affinity, are summed (prefill: moe_cte over blocks of the
 * picks; decode: moe_tkg), reading only the experts some row picked (the rank's intermediate
 * columns of each; summed over the ranks); x = added + that. */
static int moe(kgm_model *m, const kgm_layer *L, long n, int prefill)
{
    long H = m->c.hidden;
    int rc = all_reduce(m, m->o_out, n * H);
    if (rc != KG_OK)
        return rc;
    float eps = (float)m->c.rms_eps;
    for (long t = 0; t < n; t++) {
        float *a = m->added + t * H, *y = m->normed + t * H;
        const float *x = m->x + t * H, *o = m->o_out + t * H;
        for (long h = 0; h < H; h++)
            a[h] = x[h] + o[h];
        float inv = 1.0f / sqrtf(kgp_sumsq_f32(a, H) / (float)H + eps);
        kgp_affine_f32(y, a, 0.0f, inv, L->ln2, 0, H);
    }
    RUN(m, KGM_K_ROUTER, ({ "router_logits", m->r_logits }, { "expert_index", m->r_idx },
                          { "expert_affinities", m->r_aff }, { "x", m->normed },
                          { "w", &L->router }),
        ({ "T", n }));
    if (prefill) {
        if ((rc = experts_prefill(m, L, n)) != KG_OK)
            return rc;
    } else {
        RUN(m, KGM_K_MOE, ({ "output", m->mlp_out }, { "hidden_input", m->normed },
                           { "expert_gate_up_weights", &L->experts_gu },
                           { "expert_down_weights", &L->experts_d },
                           { "expert_affinities", m->r_aff }, { "expert_index", m->r_idx },
                           { "expert_gate_up_weights_scale", L->experts_gu_s },
                           { "expert_down_weights_scale", L->experts_d_s }),
            ({ "T", n }));
        m->stats.moe_tkg_calls++;
    }
    if ((rc = all_reduce(m, m->mlp_out, n * H)) != KG_OK)
        return rc;
    for (long i = 0; i < n * H; i++)
        m->x[i] = m->added[i] + m->mlp_out[i];
    return KG_OK;
}

/* The final norm and the logits of rows [0, n) of x (normed kept as the last hidden state). */
static int head(kgm_model *m, const float *x, long n)
{
    float *normed = m->hidden ? (float *)kgm_hidden(m, m->c.layers) : m->normed;
    float *logits = m->coll ? m->logits_r : m->logits;
    RUN(m, KGM_K_LM_HEAD, ({ "logits", logits }, { "normed", normed }, { "hidden", x },
                           { "weight", &m->lm_head }, { "w_scale", m->lm_head_s },
                           { "gamma", m->final_norm }),
        ({ "T", n }));
    return m->coll ? gather_logits(m, n) : KG_OK;
}

/* ---- prefill -------------------------------------------------------------------------------- */

/* dst [n, P, d] = src [P, n, d]: the heads of qkv's rows, head by head. */
static void heads_first(float *dst, const float *src, long P, long n, long d)
{
    for (long h = 0; h < n; h++)
        for (long p = 0; p < P; p++)
            memcpy(dst + (h * P + p) * d, src + (p * n + h) * d, (size_t)d * sizeof(float));
}

/* The megakernel's caches of layer l, sequence b: positions 0..P-1 of each KV head's rotated
 * keys (k_rot [nkv, P, d]) into K [b, 0, :, p] (transposed) and values v [nkv, P, d] into
 * V [b, 0, p, :]. */
static void mega_cache_write(kgm_model *m, long l, long b, long P, const float *v)
{
    long d = m->c.head_dim, nkv = m->sh.nkv, C = m->lim.max_context;
    for (long h = 0; h < nkv; h++) {
        float *kc = m->mega.k[l * nkv + h] + b * d * C, *vc = m->mega.v[l * nkv + h] + b * C * d;
        const float *k = m->k_rot + h * P * d;
        for (long p = 0; p < P; p++)
            for (long i = 0; i < d; i++)
                kc[i * C + p] = k[p * d + i];
        memcpy(vc, v + h * P * d, (size_t)(P * d) * sizeof(float));
    }
}

/* Sequence b's attention block of layer L: rows b*P.. of x into rows b*P.. of o_out, its keys
 * and values into the cache. */
static int attend_prefill(kgm_model *m, kgm_layer *L, long b, long P)
{
    const kgm_config *c = &m->c;
    long H = c->hidden, d = c->head_dim, nq = m->sh.nq, nkv = m->sh.nkv;
    long C = m->lim.max_context;
    long nh = nq + 2 * nkv;
    float *q = m->heads, *k = q + nq * P * d, *v = k + nkv * P * d;
    RUN(m, KGM_K_QKV_CTE, ({ "out", m->qkv_rows }, { "input", m->x + b * P * H },
                           { "weight", &L->qkv }, { "w_scale", L->qkv_s },
                           { "bias", L->qkv_bias }, { "gamma", L->ln1 }),
        ({ "B", 1 }, { "S", P }, { "cache_len", 0 }));
    heads_first(m->heads, m->qkv_rows, P, nh, d);
    RUN(m, KGM_K_ROPE, ({ "q_out", m->q_rot }, { "k_out", m->k_rot }, { "q", q }, { "k", k },
                        { "cos", m->cos }, { "sin", m->sin }),
        ({ "B", 1 }, { "S", P }, { "T", P }));
    for (long h = 0; h < nkv && !m->mega_on; h++) {
        size_t at = (size_t)((b * nkv + h) * C) * (size_t)d, n = (size_t)(P * d) * 4;
        memcpy(L->k_cache + at, m->k_rot + h * P * d, n);
        memcpy(L->v_cache + at, v + h * P * d, n);
    }
    if (m->mega_on)
        mega_cache_write(m, L - m->layers, b, P, v);
    RUN(m, KGM_K_ATTN_CTE, ({ "out", m->attn }, { "q", m->q_rot }, { "k", m->k_rot },
                            { "v", v }),
        ({ "B", 1 }, { "Sq", P }, { "Sk", P }, { "Sp", 1 }));
    RUN(m, KGM_K_OPROJ_CTE, ({ "out", m->o_out + b * P * H }, { "attention", m->attn },
                             { "weight", &L->o }, { "w_scale", L->o_s }, { "bias", L->o_bias }),
        ({ "B", 1 }, { "S", P }));
    return KG_OK;
}

/* The last row of each sequence, gathered to rows 0..B-1 of normed's scratch (m->added). */
static const float *last_rows(kgm_model *m, long B, long P)
{
    long H = m->c.hidden;
    for (long b = 0; b < B; b++)
        memcpy(m->added + b * H, m->x + (b * P + P - 1) * H, (size_t)H * sizeof(float));
    return m->added;
}

/* A progress line after layer l of a prefill that has taken over a second (then at most one
 * a second). */
static void progress(kgm_model *m, long l, double t0, double *shown)
{
    double t = kgm_now();
    if (!m->o.progress || t - t0 < 1.0 || t - *shown < 1.0)
        return;
    char line[128];
    snprintf(line, sizeof line, "prefill: layer %ld of %ld (%.1f s)", l + 1, m->c.layers, t - t0);
    m->o.progress(m->o.progress_ud, line);
    *shown = t;
}

int kgm_forward_prefill(kgm_model *m, long B, long P, const int64_t *ids)
{
    long n = B * P;
    double t0 = kgm_now(), shown = 0;
    m->B = 0, m->pos = 0;
    embed(m, n, ids);
    keep(m, 0, m->x, n);
    for (long l = 0; l < m->c.layers; l++) {
        kgm_layer *L = &m->layers[l];
        for (long b = 0; b < B; b++) {
            int rc = attend_prefill(m, L, b, P);
            if (rc != KG_OK)
                return rc;
        }
        int rc = m->c.experts ? moe(m, L, n, 1) : mlp(m, KGM_K_MLP_CTE, L, n);
        if (rc != KG_OK)
            return rc;
        if (l + 1 < m->c.layers)
            keep(m, l + 1, m->x, n);
        progress(m, l, t0, &shown);
    }
    int all = m->o.all_logits || m->hidden;
    int rc = all ? head(m, m->x, n) : head(m, last_rows(m, B, P), B);
    if (rc != KG_OK)
        return rc;
    m->B = B, m->pos = P, m->last_T = all ? P : 1;
    return KG_OK;
}

/* ---- decode --------------------------------------------------------------------------------- */

/* Sequence b's attention of one new token against its cache at position pos; the rotated key
 * and the value go into cache slot pos. heads holds qkv's [B, 1, (nq + 2 nkv) d]. */
static int attend_decode(kgm_model *m, kgm_layer *L, long b, long pos)
{
    const kgm_config *c = &m->c;
    long d = c->head_dim, nq = m->sh.nq, nkv = m->sh.nkv, C = m->lim.max_context;
    long I = (nq + 2 * nkv) * d;
    const float *row = m->heads + b * I;
    float fpos = (float)pos;
    float *kc = L->k_cache + b * nkv * C * d, *vc = L->v_cache + b * nkv * C * d;
    RUN(m, KGM_K_ATTN_TKG, ({ "out", m->attn + b * nq * d }, { "k_out", m->k_rot }, { "q", row },
                            { "k_active", row + nq * d }, { "v_active", row + (nq + nkv) * d },
                            { "k_prior", kc }, { "v_prior", vc }, { "mask", m->mask },
                            { "rope_pos_ids", &fpos }, { "inv_freqs", m->inv_freq_f }),
        ({ "B", 1 }, { "curr_sprior", pos + 1 }, { "n_cache", 1 }));
    for (long h = 0; h < nkv; h++) {
        memcpy(kc + (h * C + pos) * d, m->k_rot + h * d, (size_t)d * sizeof(float));
        memcpy(vc + (h * C + pos) * d, row + (nq + nkv + h) * d, (size_t)d * sizeof(float));
    }
    return KG_OK;
}

/* A decode step through the megakernel: every layer in one call, x [B, H] in, mega.out out;
 * RoPE tables of position pos (the prefill's, from inv_freq in double), the window all ones
 * (S_ctx = pos + 1: the cache's pos slots and the new token), the new K, V written at pos.
 * The layer outputs in between are not seen: kept hidden states 1..L-1 are NaN. */
static int decode_mega(kgm_model *m, long B, long pos)
{
    kgm_mega *g = &m->mega;
    long d = m->c.head_dim, H = m->c.hidden;
    for (long i = 0; i < d / 2; i++)
        for (long b = 0; b < B; b++) {
            g->cos[i * B + b] = m->cos[pos * d + i];
            g->sin[i * B + b] = m->sin[pos * d + i];
        }
    for (long b = 0; b < B; b++)
        g->pos[b] = (kg_u32)pos;
    RUN(m, KGM_K_MEGA, ({ "out", g->out }, { "K_caches", g->k }, { "V_caches", g->v },
                        { "X", m->x }, { "W_qkvs", g->qkv }, { "W_outs", g->o },
                        { "W_gates", g->gate }, { "W_ups", g->up }, { "W_downs", g->down },
                        { "W_gamma_qkvs", g->ln1 }, { "W_gamma_mlps", g->ln2 },
                        { "RoPE_cos", g->cos }, { "RoPE_sin", g->sin },
                        { "mask_cache", g->mask }, { "position_ids", g->pos }),
        ({ "B", B }, { "S_ctx", pos + 1 }));
    for (long l = 1; m->hidden && l < m->c.layers; l++) {
        float *h = (float *)kgm_hidden(m, l);
        for (long i = 0; i < B * H; i++)
            h[i] = NAN;
    }
    m->stats.megakernel_steps++;
    return KG_OK;
}

int kgm_forward_decode(kgm_model *m, long B, const int64_t *ids)
{
    long pos = m->pos;
    embed(m, B, ids);
    keep(m, 0, m->x, B);
    if (m->mega_on) {
        int rc = decode_mega(m, B, pos);
        if (rc == KG_OK)
            rc = head(m, m->mega.out, B);
        if (rc != KG_OK)
            return rc;
        m->pos = pos + 1, m->last_T = 1;
        return KG_OK;
    }
    for (long l = 0; l < m->c.layers; l++) {
        kgm_layer *L = &m->layers[l];
        RUN(m, KGM_K_QKV_TKG, ({ "out", m->heads }, { "input", m->x }, { "weight", &L->qkv },
                               { "w_scale", L->qkv_s }, { "bias", L->qkv_bias },
                               { "gamma", L->ln1 }),
            ({ "B", B }, { "S", 1 }, { "cache_len", 0 }));
        for (long b = 0; b < B; b++) {
            int rc = attend_decode(m, L, b, pos);
            if (rc != KG_OK)
                return rc;
        }
        RUN(m, KGM_K_OPROJ_TKG, ({ "out", m->o_out }, { "attention", m->attn },
                                 { "weight", &L->o }, { "w_scale", L->o_s },
                                 { "bias", L->o_bias }),
            ({ "B", B }, { "S", 1 }));
        int rc = m->c.experts ? moe(m, L, B, 0) : mlp(m, KGM_K_MLP_TKG, L, B);
        if (rc != KG_OK)
            return rc;
        if (l + 1 < m->c.layers)
            keep(m, l + 1, m->x, B);
    }
    int rc = head(m, m->x, B);
    if (rc != KG_OK)
        return rc;
    m->pos = pos + 1, m->last_T = 1;
    return KG_OK;
}
