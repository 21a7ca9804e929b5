/* model_ref.c: the reference forward pass of HF's LlamaForCausalLM (Qwen2 is the same graph
 * with a bias on q/k/v and, usually, tied embeddings; Llama's attention_bias puts a bias on q,
 * k, v and o; MixtralForCausalLM has a sparse MoE block for the MLP), plain loops in double precision with a KV cache, so a prefill and the decode
 * steps after it are computed as HF computes them. The weights are read element by element from the safetensors mapping (F32, BF16 or F16, decoded
 * exactly), so nothing the size of the model is copied.
 *
 * Letters: B sequences, T tokens fed in this call, n = b T + t one of them, p its position,
 * L layers, H hidden, I intermediate, V vocabulary, Nq / Nkv query / key-value heads, G = Nq /
 * Nkv query heads per key-value head, D head_dim, S positions the cache holds. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/abi.h"
#include "kgen/ckd.h"
#include "kgen/dtype.h"
#include "ref/model_ref.h"

typedef struct layer_w {
    const kgst_tensor *in_norm;              /* [H] */
    const kgst_tensor *q, *k, *v;            /* [Nq D, H], [Nkv D, H], [Nkv D, H] */
    const kgst_tensor *q_bias, *k_bias, *v_bias; /* [Nq D], [Nkv D], [Nkv D], or NULL */
    const kgst_tensor *o;                    /* [H, Nq D] */
    const kgst_tensor *o_bias;               /* [H] (Llama's attention_bias), or NULL */
    const kgst_tensor *post_norm;            /* [H] */
    const kgst_tensor *gate, *up, *down;     /* [I, H], [I, H], [H, I] */
    /* Mixtral's sparse MoE block (gate, up, down unused): the router [E, H]; expert e's w1
     * (gate) [I, H], w2 (down) [H, I], w3 (up) [I, H] at [3 e], [3 e + 1], [3 e + 2] */
    const kgst_tensor *router;
    const kgst_tensor **experts;             /* [3 E] */
} layer_w;

struct model_ref {
    kgm_config c;
    int B;
    long S, len;
    const kgst_tensor *embed;    /* [V, H] */
    const kgst_tensor *norm;     /* [H] */
    const kgst_tensor *lm_head;  /* [V, H]: embed when the embeddings are tied */
    layer_w *layers;             /* [L] */
    double *inv_freq;            /* [D / 2] */
    double *k_cache, *v_cache;   /* [L, B, Nkv, S, D], keys after RoPE */
};

static int fail(int code, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ---- weights ------------------------------------------------------------------------------- */

/* Element i of t as a float (the file may be unaligned and in any of the three dtypes). */
static float elem(const kgst_tensor *t, long i)
{
    const unsigned char *p = t->data;
    uint16_t h;
    float f;
    switch (t->dtype) {
    case KG_F32:
        memcpy(&f, p + 4 * i, 4);
        return f;
    case KG_BF16:
        memcpy(&h, p + 2 * i, 2);
        return kg_bf16_to_f32(h);
    default: /* KG_F16: open refused the rest */
        memcpy(&h, p + 2 * i, 2);
        return kg_f16_to_f32(h);
    }
}

/* The tensor called name with shape [d0] (d1 < 0) or [d0, d1]; NULL (and a message) if it is
 * absent, another shape or another dtype. optional: absent is not an error. */
static const kgst_tensor *find(const kgst *st, const char *name, long d0, long d1, int optional,
                               int *rc, char *err, size_t errlen)
{
    const kgst_tensor *t = kgst_find(st, name);
    int rank = d1 < 0 ? 1 : 2;
    if (*rc != KG_OK || (!t && optional))
        return NULL;
    if (!t) {
        *rc = fail(KG_ESHAPE, err, errlen, "tensor '%s': missing", name);
        return NULL;
    }
    if (t->dtype != KG_F32 && t->dtype != KG_BF16 && t->dtype != KG_F16) {
        *rc = fail(KG_ESHAPE, err, errlen, "tensor '%s': dtype %s (the reference reads f32, "
                   "bf16, fp16)", name, kg_dtype_name(t->dtype));
        return NULL;
    }
    if (t->rank != rank || t->shape[0] != d0 || (rank == 2 && t->shape[1] != d1)) {
        *rc = fail(KG_ESHAPE, err, errlen, "tensor '%s': rank %d [%ld, %ld], config.json "
                   "says [%ld%s%ld]", name, t->rank, t->shape[0], t->rank > 1 ? t->shape[1] : 0,
                   d0, rank == 2 ? ", " : "", rank == 2 ? d1 : 0);
        return NULL;
    }
    return t;
}

/* The tensors of layer l. */
static int find_layer(layer_w *w, const kgm_config *c, const kgst *st, long l, char *err,
                      size_t errlen)
{
    char n[128];
    int rc = KG_OK;
    long H = c->hidden, I = c->intermediate, q = c->q_heads * c->head_dim;
    long kv = c->kv_heads * c->head_dim;
#define W(field, suffix, d0, d1, opt) \
    (snprintf(n, sizeof n, "model.layers.%ld.%s", l, suffix), \
     w->field = find(st, n, d0, d1, opt, &rc, err, errlen))
    W(in_norm, "input_layernorm.weight", H, -1, 0);
    W(q, "self_attn.q_proj.weight", q, H, 0);
    W(k, "self_attn.k_proj.weight", kv, H, 0);
    W(v, "self_attn.v_proj.weight", kv, H, 0);
    if (c->qkv_bias) {
        W(q_bias, "self_attn.q_proj.bias", q, -1, 0);
        W(k_bias, "self_attn.k_proj.bias", kv, -1, 0);
        W(v_bias, "self_attn.v_proj.bias", kv, -1, 0);
    }
    W(o, "self_attn.o_proj.weight", H, q, 0);
    if (c->o_bias)
        W(o_bias, "self_attn.o_proj.bias", H, -1, 0);
    W(post_norm, "post_attention_layernorm.weight", H, -1, 0);
    if (c->experts) {
        W(router, "block_sparse_moe.gate.weight", c->experts, H, 0);
        w->experts = calloc((size_t)(3 * c->experts), sizeof *w->experts);
        if (!w->experts)
            return fail(KG_ENOMEM, err, errlen, "model_ref: out of memory");
        for (long e = 0; e < c->experts; e++) {
            char x[64];
            snprintf(x, sizeof x, "block_sparse_moe.experts.%ld.w1.weight", e);
            W(experts[3 * e], x, I, H, 0);
            snprintf(x, sizeof x, "block_sparse_moe.experts.%ld.w2.weight", e);
            W(experts[3 * e + 1], x, H, I, 0);
            snprintf(x, sizeof x, "block_sparse_moe.experts.%ld.w3.weight", e);
            W(experts[3 * e + 2], x, I, H, 0);
        }
        return rc;
    }
    W(gate, "mlp.gate_proj.weight", I, H, 0);
    W(up, "mlp.up_proj.weight", I, H, 0);
    W(down, "mlp.down_proj.weight", H, I, 0);
#undef W
    return rc;
}

/* ---- open / close -------------------------------------------------------------------------- */

int model_ref_open(model_ref **out, const kgm_config *c, const kgst *st, int B, long max_ctx,
                   char *err, size_t errlen)
{
    *out = NULL;
    if (B < 1 || max_ctx < 1)
        return fail(KG_EARG, err, errlen, "model_ref: B %d, max_ctx %ld", B, max_ctx);
    model_ref *m = calloc(1, sizeof *m);
    if (!m)
        return fail(KG_ENOMEM, err, errlen, "model_ref: out of memory");
    m->c = *c;
    m->B = B;
    m->S = max_ctx;
    int rc = KG_OK;
    m->embed = find(st, "model.embed_tokens.weight", c->vocab, c->hidden, 0, &rc, err, errlen);
    m->norm = find(st, "model.norm.weight", c->hidden, -1, 0, &rc, err, errlen);
    m->lm_head = c->tie_embeddings ? m->embed :
                 find(st, "lm_head.weight", c->vocab, c->hidden, 0, &rc, err, errlen);
    size_t cache = 0;
    long dims[5] = { c->layers, B, c->kv_heads, max_ctx, c->head_dim };
    if (kg_ckd_shape(&cache, 1, dims, 5) || cache > ((size_t)1 << 36) / sizeof(double)) {
        free(m);
        return fail(KG_EARG, err, errlen, "model_ref: a KV cache of %d x %ld positions is too "
                    "large", B, max_ctx);
    }
    m->layers = calloc((size_t)c->layers, sizeof *m->layers);
    m->inv_freq = calloc((size_t)c->head_dim / 2, sizeof *m->inv_freq);
    m->k_cache = calloc(cache, sizeof *m->k_cache);
    m->v_cache = calloc(cache, sizeof *m->v_cache);
    if (rc == KG_OK && (!m->layers || !m->inv_freq || !m->k_cache || !m->v_cache))
        rc = fail(KG_ENOMEM, err, errlen, "model_ref: out of memory");
    for (long l = 0; rc == KG_OK && l < c->layers; l++)
        rc = find_layer(&m->layers[l], c, st, l, err, errlen);
    if (rc != KG_OK) {
        model_ref_close(m);
        return rc;
    }
    kgm_rope_inv_freq(c, m->inv_freq);
    *out = m;
    return KG_OK;
}

void model_ref_close(model_ref *m)
{
    if (!m)
        return;
    for (long l = 0; m->layers && l < m->c.layers; l++)
        free(m->layers[l].experts);
    free(m->layers);
    free(m->inv_freq);
    free(m->k_cache);
    free(m->v_cache);
    free(m);
}

void model_ref_reset(model_ref *m)
{
    m->len = 0;
}

long model_ref_len(const model_ref *m)
{
    return m->len;
}

/* ---- the layers' pieces --------------------------------------------------------------------- */

/* y [N, out] = x [N, in] W^T (+ bias): W is HF's [out, in]. */
static void linear(double *y, const double *x, const kgst_tensor *W, const kgst_tensor *bias,
                   long N, long out, long in)
{
    for (long n = 0; n < N; n++)
        for (long o = 0; o < out; o++) {
            double acc = bias ? elem(bias, o) : 0.0;
            for (long i = 0; i < in; i++)
                acc += elem(W, o * in + i) * x[n * in + i];
            y[n * out + o] = acc;
        }
}

/* y [N, H] = x / sqrt(mean(x^2) + eps) * w, row by row. */
static void rmsnorm(double *y, const double *x, const kgst_tensor *w, double eps, long N, long H)
{
    for (long n = 0; n < N; n++) {
        double ss = 0;
        for (long h = 0; h < H; h++)
            ss += x[n * H + h] * x[n * H + h];
        double r = 1.0 / sqrt(ss / H + eps);
        for (long h = 0; h < H; h++)
            y[n * H + h] = x[n * H + h] * r * elem(w, h);
    }
}

/* Rotates one head x [D] at position p, HF's rotate_half convention: pair i is (i, i + D/2),
 * x1' = x1 cos - x2 sin, x2' = x2 cos + x1 sin, angle p inv_freq[i]. */
static void rope(double *x, const double *inv_freq, long p, long D)
{
    for (long i = 0; i < D / 2; i++) {
        double a = (double)p * inv_freq[i], c = cos(a), s = sin(a);
        double x1 = x[i], x2 = x[i + D / 2];
        x[i] = x1 * c - x2 * s;
        x[i + D / 2] = x2 * c + x1 * s;
    }
}

/* Cache row of (layer l, sequence b, kv head g, position p): [D] inside [L, B, Nkv, S, D]. */
static size_t cache_at(const model_ref *m, long l, long b, long g, long p)
{
    const kgm_config *c = &m->c;
    return (((size_t)l * m->B + b) * c->kv_heads + g) * m->S * c->head_dim +
           (size_t)p * c->head_dim;
}

/* out [Nq D] for query q [Nq D] of sequence b at position p: causal softmax attention over
 * positions 0..p of layer l's cache, scale 1/sqrt(D), query head h reading kv head h / G. */
static void attend(double *out, const double *q, const model_ref *m, long l, long b, long p,
                   double *score)
{
    const kgm_config *c = &m->c;
    long D = c->head_dim, G = c->q_heads / c->kv_heads;
    for (long h = 0; h < c->q_heads; h++) {
        const double *qh = q + h * D;
        double mx = -INFINITY, sum = 0;
        for (long j = 0; j <= p; j++) {
            const double *k = m->k_cache + cache_at(m, l, b, h / G, j);
            double s = 0;
            for (long d = 0; d < D; d++)
                s += qh[d] * k[d];
            score[j] = s / sqrt((double)D);
            mx = fmax(mx, score[j]);
        }
        for (long j = 0; j <= p; j++)
            sum += score[j] = exp(score[j] - mx);
        for (long d = 0; d < D; d++)
            out[h * D + d] = 0;
        for (long j = 0; j <= p; j++) {
            const double *v = m->v_cache + cache_at(m, l, b, h / G, j);
            for (long d = 0; d < D; d++)
                out[h * D + d] += score[j] / sum * v[d];
        }
    }
}

/* ---- one layer ----------------------------------------------------------------------------- */

/* Scratch of one forward call, every buffer [N, ...] for the N = B T tokens. */
typedef struct work {
    double *xn;        /* [N, H] normed */
    double *q, *k, *v; /* [N, Nq D], [N, Nkv D], [N, Nkv D] */
    double *a;         /* [N, Nq D] attention output */
    double *t;         /* [N, H] o_proj / down_proj output */
    double *g, *u;     /* [N, I] */
    double *score;     /* [S] */
} work;

/* HF's MixtralSparseMoeBlock: y [N, H] from xn [N, H]. Per token: router logits xn W_r^T [E],
 * p = softmax(logits), its K largest (ties to the lower expert index, as torch.topk's
 * first-found), each divided by their sum; y = sum over those k of w_k * expert(xn), expert
 * = w2 (SiLU(w1 xn) * (w3 xn)). */
static void moe_block(double *y, const double *xn, const layer_w *lw, const kgm_config *c,
                      long N)
{
    long H = c->hidden, I = c->intermediate, E = c->experts, K = c->experts_per_tok;
    double *p = malloc(sizeof(double) * (size_t)E), *g = malloc(sizeof(double) * (size_t)I);
    double *u = malloc(sizeof(double) * (size_t)I), *o = malloc(sizeof(double) * (size_t)H);
    int *taken = malloc(sizeof(int) * (size_t)E);
    for (long n = 0; p && g && u && o && taken && n < N; n++) {
        const double *x = xn + n * H;
        linear(p, x, lw->router, NULL, 1, E, H);
        double mx = p[0], sum = 0;
        for (long e = 1; e < E; e++)
            mx = p[e] > mx ? p[e] : mx;
        for (long e = 0; e < E; e++)
            sum += p[e] = exp(p[e] - mx);
        for (long e = 0; e < E; e++)
            p[e] /= sum, taken[e] = 0;
        long sel[8];
        double ssum = 0;
        for (long k = 0; k < K; k++) {
            long best = -1;
            for (long e = 0; e < E; e++)
                if (!taken[e] && (best < 0 || p[e] > p[best]))
                    best = e;
            taken[best] = 1, sel[k] = best, ssum += p[best];
        }
        for (long h = 0; h < H; h++)
            y[n * H + h] = 0;
        for (long k = 0; k < K; k++) {
            const kgst_tensor *const *ew = lw->experts + 3 * sel[k];
            linear(g, x, ew[0], NULL, 1, I, H);
            linear(u, x, ew[2], NULL, 1, I, H);
            for (long i = 0; i < I; i++)
                g[i] = g[i] / (1.0 + exp(-g[i])) * u[i]; /* SiLU(w1 x) * w3 x */
            linear(o, g, ew[1], NULL, 1, H, I);
            for (long h = 0; h < H; h++)
                y[n * H + h] += p[sel[k]] / ssum * o[h];
        }
    }
    free(p), free(g), free(u), free(o), free(taken);
}

/* x [N, H] += attention(rmsnorm(x)) of layer l, then += mlp(rmsnorm(x)). */
static void layer(model_ref *m, long l, double *x, work *w, long T)
{
    const kgm_config *c = &m->c;
    const layer_w *lw = &m->layers[l];
    long N = m->B * T, H = c->hidden, I = c->intermediate, D = c->head_dim;
    long q = c->q_heads * D, kv = c->kv_heads * D;
    rmsnorm(w->xn, x, lw->in_norm, c->rms_eps, N, H);
    linear(w->q, w->xn, lw->q, lw->q_bias, N, q, H);
    linear(w->k, w->xn, lw->k, lw->k_bias, N, kv, H);
    linear(w->v, w->xn, lw->v, lw->v_bias, N, kv, H);
    /* every token's key and value go into the cache first: token t attends to 0..len + t */
    for (long n = 0; n < N; n++) {
        long b = n / T, p = m->len + n % T;
        for (long h = 0; h < c->q_heads; h++)
            rope(w->q + n * q + h * D, m->inv_freq, p, D);
        for (long g = 0; g < c->kv_heads; g++) {
            rope(w->k + n * kv + g * D, m->inv_freq, p, D);
            memcpy(m->k_cache + cache_at(m, l, b, g, p), w->k + n * kv + g * D,
                   D * sizeof(double));
            memcpy(m->v_cache + cache_at(m, l, b, g, p), w->v + n * kv + g * D,
                   D * sizeof(double));
        }
    }
    for (long n = 0; n < N; n++)
        attend(w->a + n * q, w->q + n * q, m, l, n / T, m->len + n % T, w->score);
    linear(w->t, w->a, lw->o, lw->o_bias, N, H, q);
    for (long i = 0; i < N * H; i++)
        x[i] += w->t[i];
    rmsnorm(w->xn, x, lw->post_norm, c->rms_eps, N, H);
    if (c->experts) {
        moe_block(w->t, w->xn, lw, c, N);
        for (long i = 0; i < N * H; i++)
            x[i] += w->t[i];
        return;
    }
    linear(w->g, w->xn, lw->gate, NULL, N, I, H);
    linear(w->u, w->xn, lw->up, NULL, N, I, H);
    for (long i = 0; i < N * I; i++)
        w->g[i] = w->g[i] / (1.0 + exp(-w->g[i])) * w->u[i]; /* SiLU(gate) * up */
    linear(w->t, w->g, lw->down, NULL, N, H, I);
    for (long i = 0; i < N * H; i++)
        x[i] += w->t[i];
}

/* ---- the forward pass ---------------------------------------------------------------------- */

static void store(float *dst, const double *src, long n)
{
    for (long i = 0; i < n; i++)
        dst[i] = (float)src[i];
}

static int work_alloc(work *w, const kgm_config *c, long N, long S)
{
    long q = c->q_heads * c->head_dim, kv = c->kv_heads * c->head_dim;
    w->xn = malloc(sizeof(double) * N * c->hidden);
    w->t = malloc(sizeof(double) * N * c->hidden);
    w->q = malloc(sizeof(double) * N * q);
    w->a = malloc(sizeof(double) * N * q);
    w->k = malloc(sizeof(double) * N * kv);
    w->v = malloc(sizeof(double) * N * kv);
    w->g = malloc(sizeof(double) * N * c->intermediate);
    w->u = malloc(sizeof(double) * N * c->intermediate);
    w->score = malloc(sizeof(double) * S);
    return w->xn && w->t && w->q && w->a && w->k && w->v && w->g && w->u && w->score;
}

static void work_free(work *w)
{
    free(w->xn);
    free(w->t);
    free(w->q);
    free(w->a);
    free(w->k);
    free(w->v);
    free(w->g);
    free(w->u);
    free(w->score);
}

int model_ref_forward(model_ref *m, const int64_t *ids, long T, float *logits, float *hidden,
                      char *err, size_t errlen)
{
    const kgm_config *c = &m->c;
    long N = m->B * T, H = c->hidden, V = c->vocab, L = c->layers;
    if (T < 1 || T > m->S - m->len)
        return fail(KG_EARG, err, errlen, "model_ref: %ld tokens after %ld do not fit in %ld "
                    "positions", T, m->len, m->S);
    for (long n = 0; n < N; n++)
        if (ids[n] < 0 || ids[n] >= V)
            return fail(KG_EARG, err, errlen, "model_ref: token id %lld (sequence %ld, token "
                        "%ld) is outside the vocabulary of %ld", (long long)ids[n], n / T,
                        n % T, V);
    work w = { 0 };
    double *x = malloc(sizeof(double) * N * H);
    if (!x || !work_alloc(&w, c, N, m->S)) {
        free(x);
        work_free(&w);
        return fail(KG_ENOMEM, err, errlen, "model_ref: out of memory");
    }
    for (long n = 0; n < N; n++)
        for (long h = 0; h < H; h++)
            x[n * H + h] = elem(m->embed, ids[n] * H + h);
    if (hidden)
        store(hidden, x, N * H);
    for (long l = 0; l < L; l++) {
        layer(m, l, x, &w, T);
        if (hidden && l + 1 < L)
            store(hidden + (l + 1) * N * H, x, N * H);
    }
    rmsnorm(w.xn, x, m->norm, c->rms_eps, N, H);
    if (hidden)
        store(hidden + L * N * H, w.xn, N * H);
    if (logits)
        for (long n = 0; n < N; n++)
            for (long v = 0; v < V; v++) {
                double acc = 0;
                for (long h = 0; h < H; h++)
                    acc += elem(m->lm_head, v * H + h) * w.xn[n * H + h];
                logits[n * V + v] = (float)acc;
            }
    m->len += T;
    free(x);
    work_free(&w);
    return KG_OK;
}
