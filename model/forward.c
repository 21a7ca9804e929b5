/* forward.c: the layer graph of Llama and Qwen2 (one graph: Qwen2 is Llama with a QKV bias and,
 * in small models, tied embeddings), through the spec's kernels (model_int.h KGM_K_*).
 * Activations are f32; x is the residual stream [rows, H].
 *   prefill, per sequence b (the qkv NBSd and attention layouts hold one sequence per call):
 *     heads = qkv(rmsnorm(x_b))          [P, nq + 2 nkv, d], moved to [nq + 2 nkv, P, d]
 *                                         (qkv's NBSd layout is for d = 128 only)
 *     q, k  = rope_hf(q, k)               HF rotate-half, tables of positions 0..P-1
 *     cache[b, :, 0:P] = k, v
 *     attn  = attention_cte(q, k, v)      causal, [1, nq, d, P]
 *     o_b   = o_proj(attn)                [P, H]
 *   then for all rows: added = x + o; x = added + mlp(rmsnorm(added))
 *   decode, all sequences in one call except attention (one call per sequence, against its
 *   own cache rows; it rotates q and the new k itself and returns the rotated k). */
#include <stdio.h>
#include <string.h>

#include "kgen/dtype.h"
#include "kgen/kernels.h"
#include "model_int.h"

#define K(m, i, type) ((type *)(m)->fn[i])

static int kernel_failed(kgm_model *m, int i, int rc)
{
    snprintf(m->err, sizeof m->err, "kernel %s (%s) returned status %d",
             kgm_kernel_family[i], i < KGM_K_QKV_TKG ? "prefill" : "decode", rc);
    return rc;
}

#define CALL(m, i, type, ...)                                                                \
    do {                                                                                     \
        int rc_ = K(m, i, type)(__VA_ARGS__);                                                \
        if (rc_ != KG_OK)                                                                    \
            return kernel_failed(m, i, rc_);                                                 \
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

/* The residual stream after the MLP of all n rows: added = x + o, x = added + mlp(added). */
static int mlp(kgm_model *m, int k, const kgm_layer *L, long n)
{
    CALL(m, k, kg_mlp_fn, m->mlp_out, m->added, m->o_out, m->x, &L->gate, &L->up, &L->down,
         NULL, NULL, NULL, NULL, NULL, L->ln2, NULL, NULL, NULL, NULL, n);
    for (long i = 0; i < n * m->c.hidden; i++)
        m->x[i] = m->added[i] + m->mlp_out[i];
    return KG_OK;
}

/* The final norm and the logits of rows [0, n) of x (normed kept as the last hidden state). */
static int head(kgm_model *m, const float *x, long n)
{
    float *normed = m->hidden ? (float *)kgm_hidden(m, m->c.layers) : m->normed;
    CALL(m, KGM_K_LM_HEAD, kg_lm_head_fn, m->logits, normed, x, &m->lm_head, NULL,
         m->final_norm, n);
    return KG_OK;
}

/* ---- prefill --------------------------------------------------------------------------------- */

/* dst [n, P, d] = src [P, n, d]: the heads of qkv's rows, head by head. */
static void heads_first(float *dst, const float *src, long P, long n, long d)
{
    for (long h = 0; h < n; h++)
        for (long p = 0; p < P; p++)
            memcpy(dst + (h * P + p) * d, src + (p * n + h) * d, (size_t)d * sizeof(float));
}

/* Sequence b's attention block of layer L: rows b*P.. of x into rows b*P.. of o_out, its keys
 * and values into the cache. */
static int attend_prefill(kgm_model *m, kgm_layer *L, long b, long P)
{
    const kgm_config *c = &m->c;
    long H = c->hidden, d = c->head_dim, nq = c->q_heads, nkv = c->kv_heads;
    long C = m->lim.max_context;
    long nh = nq + 2 * nkv;
    float *q = m->heads, *k = q + nq * P * d, *v = k + nkv * P * d;
    CALL(m, KGM_K_QKV_CTE, kg_qkv_fn, m->qkv_rows, NULL, NULL, NULL,
         m->x + b * P * H, &L->qkv, NULL, NULL, L->qkv_bias, NULL, NULL, L->ln1, NULL, NULL,
         NULL, NULL, NULL, NULL, 1, P, 0);
    heads_first(m->heads, m->qkv_rows, P, nh, d);
    CALL(m, KGM_K_ROPE, kg_rope_hf_fn, m->q_rot, m->k_rot, q, k, m->cos, m->sin, 1, P, P);
    for (long h = 0; h < nkv; h++) {
        size_t at = (size_t)((b * nkv + h) * C) * (size_t)d, n = (size_t)(P * d) * 4;
        memcpy(L->k_cache + at, m->k_rot + h * P * d, n);
        memcpy(L->v_cache + at, v + h * P * d, n);
    }
    CALL(m, KGM_K_ATTN_CTE, kg_attention_cte_fn, m->attn, NULL, NULL, m->q_rot, m->k_rot, v,
         NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1, P, P, 1);
    CALL(m, KGM_K_OPROJ_CTE, kg_output_projection_fn, m->o_out + b * P * H, m->attn, &L->o,
         NULL, NULL, L->o_bias, 1, P);
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

int kgm_forward_prefill(kgm_model *m, long B, long P, const int64_t *ids)
{
    long n = B * P;
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
        int rc = mlp(m, KGM_K_MLP_CTE, L, n);
        if (rc != KG_OK)
            return rc;
        if (l + 1 < m->c.layers)
            keep(m, l + 1, m->x, n);
    }
    int all = m->o.all_logits || m->hidden;
    int rc = all ? head(m, m->x, n) : head(m, last_rows(m, B, P), B);
    if (rc != KG_OK)
        return rc;
    m->B = B, m->pos = P, m->last_T = all ? P : 1;
    return KG_OK;
}

/* ---- decode ---------------------------------------------------------------------------------- */

/* Sequence b's attention of one new token against its cache at position pos; the rotated key
 * and the value go into cache slot pos. heads holds qkv's [B, 1, (nq + 2 nkv) d]. */
static int attend_decode(kgm_model *m, kgm_layer *L, long b, long pos)
{
    const kgm_config *c = &m->c;
    long d = c->head_dim, nq = c->q_heads, nkv = c->kv_heads, C = m->lim.max_context;
    long I = (nq + 2 * nkv) * d;
    const float *row = m->heads + b * I;
    float fpos = (float)pos;
    float *kc = L->k_cache + b * nkv * C * d, *vc = L->v_cache + b * nkv * C * d;
    CALL(m, KGM_K_ATTN_TKG, kg_attention_tkg_fn, m->attn + b * nq * d, m->k_rot, row,
         row + nq * d, row + (nq + nkv) * d, kc, vc, m->mask, &fpos, NULL, m->inv_freq_f, NULL,
         NULL, 1, pos + 1, 1);
    for (long h = 0; h < nkv; h++) {
        memcpy(kc + (h * C + pos) * d, m->k_rot + h * d, (size_t)d * sizeof(float));
        memcpy(vc + (h * C + pos) * d, row + (nq + nkv + h) * d, (size_t)d * sizeof(float));
    }
    return KG_OK;
}

int kgm_forward_decode(kgm_model *m, long B, const int64_t *ids)
{
    long pos = m->pos;
    embed(m, B, ids);
    keep(m, 0, m->x, B);
    for (long l = 0; l < m->c.layers; l++) {
        kgm_layer *L = &m->layers[l];
        CALL(m, KGM_K_QKV_TKG, kg_qkv_fn, m->heads, NULL, NULL, NULL, m->x, &L->qkv, NULL,
             NULL, L->qkv_bias, NULL, NULL, L->ln1, NULL, NULL, NULL, NULL, NULL, NULL, B, 1,
             0);
        for (long b = 0; b < B; b++) {
            int rc = attend_decode(m, L, b, pos);
            if (rc != KG_OK)
                return rc;
        }
        CALL(m, KGM_K_OPROJ_TKG, kg_output_projection_fn, m->o_out, m->attn, &L->o, NULL,
             NULL, L->o_bias, B, 1);
        int rc = mlp(m, KGM_K_MLP_TKG, L, B);
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
