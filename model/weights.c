/* weights.c: a model's weights from its safetensors (st.h): every tensor the layer graph needs,
 * checked against config.json (name, rank, shape, dtype), the projections packed (kg_wt) from
 * their Hugging Face layout [out, in] directly (layout nk), norms and biases widened to f32.
 * With fp8 weights each layer projection and the LM head are quantized to e4m3 codes first
 * (per output column scales kept beside the packed codes; quant.c), one tensor at a time. With
 * tied embeddings the LM head is a packed copy: the embedding lookup reads the stored rows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "kgen/dtype.h"
#include "model_int.h"

/* What the loader carries: the model, the error slot, the file named in errors. */
typedef struct loader {
    kgm_model *m;
    char *err;
    size_t errlen;
    const char *file;
    int fmt;          /* the packed format of the projections (enum kg_wt_fmt) */
    double t0, shown; /* progress: start, last line */
} loader;

static int is_float(kg_dtype t) { return t == KG_F32 || t == KG_BF16 || t == KG_F16; }

/* The tensor name with the shape wanted (rank 1 or 2: b = 0 for rank 1), or NULL with err. */
static const kgst_tensor *tensor(loader *ld, const char *name, long a, long b)
{
    const kgst_tensor *t = kgst_find(ld->m->st, name);
    int rank = b ? 2 : 1;
    if (!t) {
        snprintf(ld->err, ld->errlen, "%s: tensor %s is missing", ld->file, name);
        return NULL;
    }
    if (t->rank != rank || t->shape[0] != a || (b && t->shape[1] != b)) {
        char got[96] = "", *p = got;
        for (int i = 0; i < t->rank && p < got + 80; i++)
            p += snprintf(p, 16, "%s%ld", i ? ", " : "", t->shape[i]);
        if (b)
            snprintf(ld->err, ld->errlen, "%s: tensor %s has shape [%s], config.json says "
                     "[%ld, %ld]", ld->file, name, got, a, b);
        else
            snprintf(ld->err, ld->errlen, "%s: tensor %s has shape [%s], config.json says "
                     "[%ld]", ld->file, name, got, a);
        return NULL;
    }
    if (!is_float(t->dtype)) {
        snprintf(ld->err, ld->errlen, "%s: tensor %s is %s, not a float dtype the model runs "
                 "(f32, bf16, fp16)", ld->file, name, kg_dtype_name(t->dtype));
        return NULL;
    }
    return t;
}

/* Element i of a float tensor as f32. */
static float value(const kgst_tensor *t, long i)
{
    const unsigned char *p = t->data;
    if (t->dtype == KG_F32) {
        float v;
        memcpy(&v, p + 4 * i, 4);
        return v;
    }
    uint16_t h;
    memcpy(&h, p + 2 * i, 2);
    return t->dtype == KG_BF16 ? kg_bf16_to_f32(h) : kg_f16_to_f32(h);
}

/* A vector tensor [n] widened to f32 (malloc'd), or NULL with err. */
static float *vec(loader *ld, const char *name, long n)
{
    const kgst_tensor *t = tensor(ld, name, n, 0);
    float *v = t ? malloc((size_t)n * sizeof *v) : NULL;
    if (t && !v)
        snprintf(ld->err, ld->errlen, "out of memory loading %s", name);
    for (long i = 0; v && i < n; i++)
        v[i] = value(t, i);
    return v;
}

/* The packed format of a weight format name (kgm_weight_name). */
static int fmt_of(const char *w)
{
    return !strcmp(w, "e4m3") ? KG_WT_E4M3 : !strcmp(w, "bf16") ? KG_WT_BF16
           : !strcmp(w, "fp16") ? KG_WT_F16 : KG_WT_F32;
}

static kg_dtype fmt_dtype(int fmt)
{
    return fmt == KG_WT_BF16 ? KG_BF16 : fmt == KG_WT_F16 ? KG_F16 : KG_F32;
}

/* t's data in format fmt: the mapping itself when it is stored so, else a converted copy
 * (*copy, freed by the caller once packed). */
static const void *in_format(const kgst_tensor *t, int fmt, void **copy)
{
    kg_dtype want = fmt_dtype(fmt);
    *copy = NULL;
    if (t->dtype == want)
        return t->data;
    size_t es = want == KG_F32 ? 4 : 2;
    unsigned char *c = malloc((size_t)t->count * es);
    if (!c)
        return NULL;
    for (long i = 0; i < t->count; i++) {
        float v = value(t, i);
        if (want == KG_F32) {
            memcpy(c + 4 * i, &v, 4);
        } else {
            uint16_t h = want == KG_BF16 ? kg_f32_to_bf16(v) : kg_f32_to_f16(v);
            memcpy(c + 2 * i, &h, 2);
        }
    }
    *copy = c;
    return c;
}

/* t [N, K] (HF's [out, in]: row n is output column n of W) quantized to e4m3 codes [N, K]
 * (freed with free) with one scale per column, scale[n] = max_k |t[n, k]| / 240 (1 for an
 * all-zero column), each code the nearest even of t[n, k] / scale[n] (kgm_quant_e4m3); NULL
 * when out of memory. The codes are written once and packed once: huge pages
 * (kg_stream_alloc) spare most of the first-touch page faults of up to 0.5 GB (an LM head). */
static unsigned char *quantize(const kgst_tensor *t, long N, long K, float *scale)
{
    unsigned char *q = kg_stream_alloc((size_t)N * (size_t)K);
    if (q && kgm_quant_e4m3(t, N, K, q, scale) != KG_OK)
        free(q), q = NULL;
    return q;
}

/* Packs W [K, N] = the side-by-side parts named names[i], each stored [n[i], K] (HF's [out,
 * in]), into w. In fp8 (ld->fmt e4m3) each part is quantized first and *scale (malloc'd) gets
 * W's per-column scales [N]; else scale is NULL and untouched. */
static int pack(loader *ld, kg_wt *w, int nparts, const char *const *names, const long *n,
                long K, float **scale)
{
    kg_wt_src src[3];
    void *copy[3] = { 0 };
    int rc = KG_OK;
    long N = 0;
    for (int i = 0; i < nparts; i++)
        N += n[i];
    int fp8 = ld->fmt == KG_WT_E4M3;
    if (fp8 && !(*scale = malloc((size_t)N * sizeof **scale))) {
        snprintf(ld->err, ld->errlen, "out of memory quantizing %s", names[0]);
        return KG_ENOMEM;
    }
    long at = 0;
    for (int i = 0; i < nparts && rc == KG_OK; at += n[i], i++) {
        const kgst_tensor *t = tensor(ld, names[i], n[i], K);
        if (!t) {
            rc = KG_ESHAPE;
            break;
        }
        const void *data = fp8 ? (copy[i] = quantize(t, n[i], K, *scale + at))
                               : in_format(t, ld->fmt, &copy[i]);
        src[i] = (kg_wt_src){ ld->fmt, KG_WL_NK, K, n[i], data, NULL, 0, 0 };
        if (!src[i].data)
            rc = KG_ENOMEM, snprintf(ld->err, ld->errlen, "out of memory converting %s",
                                     names[i]);
    }
    char why[256];
    if (rc == KG_OK && (rc = kg_wt_pack_parts(w, src, nparts, why, sizeof why)) != KG_OK)
        snprintf(ld->err, ld->errlen, "%s: %s: %s", ld->file, names[0], why);
    for (int i = 0; i < nparts; i++)
        free(copy[i]);
    if (rc == KG_OK)
        ld->m->stats.weight_bytes += fp8 ? (size_t)K * (size_t)N + (size_t)N * 4
                                         : (size_t)K * (size_t)N * (ld->fmt == KG_WT_F32 ? 4 : 2);
    return rc;
}

/* A progress line at most once a second once loading has taken a second. */
static void progress(loader *ld, long l)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double t = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
    if (!ld->t0)
        ld->t0 = ld->shown = t;
    if (ld->m->o.progress && t - ld->shown >= 1.0) {
        char line[128];
        snprintf(line, sizeof line, "loading weights: layer %ld of %ld (%.1f s)", l,
                 ld->m->c.layers, t - ld->t0);
        ld->m->o.progress(ld->m->o.progress_ud, line);
        ld->shown = t;
    }
}

/* Layer l: its norms, the fused QKV weight (and bias), o, gate, up, down. */
static int load_layer(loader *ld, long l)
{
    const kgm_config *c = &ld->m->c;
    kgm_layer *L = &ld->m->layers[l];
    long H = c->hidden, I = c->intermediate, q = c->q_heads * c->head_dim;
    long kv = c->kv_heads * c->head_dim;
    char nm[8][96];
    static const char *const parts[8] = {
        "input_layernorm.weight", "post_attention_layernorm.weight", "self_attn.q_proj",
        "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj.weight",
        "mlp.gate_proj.weight", "mlp.up_proj.weight",
    };
    for (int i = 0; i < 8; i++)
        snprintf(nm[i], sizeof nm[i], "model.layers.%ld.%s", l, parts[i]);
    char w[3][112], b[3][112], down[96];
    for (int i = 0; i < 3; i++) {
        snprintf(w[i], sizeof w[i], "%s.weight", nm[2 + i]);
        snprintf(b[i], sizeof b[i], "%s.bias", nm[2 + i]);
    }
    snprintf(down, sizeof down, "model.layers.%ld.mlp.down_proj.weight", l);
    if (!(L->ln1 = vec(ld, nm[0], H)) || !(L->ln2 = vec(ld, nm[1], H)))
        return KG_ESHAPE;
    const char *qkv[3] = { w[0], w[1], w[2] };
    long nq[3] = { q, kv, kv }, nI[1] = { I }, nH[1] = { H };
    int rc = pack(ld, &L->qkv, 3, qkv, nq, H, &L->qkv_s);
    if (rc == KG_OK && c->qkv_bias) {
        float *bq = vec(ld, b[0], q), *bk = bq ? vec(ld, b[1], kv) : NULL;
        float *bv = bk ? vec(ld, b[2], kv) : NULL;
        L->qkv_bias = bv ? malloc((size_t)(q + 2 * kv) * sizeof(float)) : NULL;
        if (L->qkv_bias) {
            memcpy(L->qkv_bias, bq, (size_t)q * sizeof(float));
            memcpy(L->qkv_bias + q, bk, (size_t)kv * sizeof(float));
            memcpy(L->qkv_bias + q + kv, bv, (size_t)kv * sizeof(float));
        }
        rc = L->qkv_bias ? KG_OK : bv ? KG_ENOMEM : KG_ESHAPE;
        free(bq), free(bk), free(bv);
    }
    const char *o = nm[5], *g = nm[6], *u = nm[7], *dn = down;
    if (rc == KG_OK)
        rc = pack(ld, &L->o, 1, &o, nH, q, &L->o_s);
    if (rc == KG_OK && c->o_bias) {
        char ob[96];
        snprintf(ob, sizeof ob, "model.layers.%ld.self_attn.o_proj.bias", l);
        rc = (L->o_bias = vec(ld, ob, H)) ? KG_OK : KG_ESHAPE;
    }
    if (rc == KG_OK)
        rc = pack(ld, &L->gate, 1, &g, nI, H, &L->gate_s);
    if (rc == KG_OK)
        rc = pack(ld, &L->up, 1, &u, nI, H, &L->up_s);
    if (rc == KG_OK)
        rc = pack(ld, &L->down, 1, &dn, nH, I, &L->down_s);
    return rc;
}

int kgm_weights_load(kgm_model *m, const char *dir, char *err, size_t errlen)
{
    int rc = kgst_open(&m->st, dir, err, errlen);
    if (rc != KG_OK)
        return rc;
    const kgm_config *c = &m->c;
    const char *w = kgm_weight_name(c, &m->o);
    /* errors name the file the tensors were looked up through: a sharded model's index */
    char index[4096];
    struct stat sb;
    snprintf(index, sizeof index, "%s/model.safetensors.index.json", dir);
    int sharded = stat(index, &sb) == 0;
    loader ld = { m, err, errlen, sharded ? "model.safetensors.index.json" : "model.safetensors",
                  fmt_of(w), 0, 0 };
    if (!(m->embed = tensor(&ld, "model.embed_tokens.weight", c->vocab, c->hidden)))
        return KG_ESHAPE;
    for (long l = 0; l < c->layers; l++) {
        progress(&ld, l);
        if ((rc = load_layer(&ld, l)) != KG_OK)
            return rc;
    }
    if (!(m->final_norm = vec(&ld, "model.norm.weight", c->hidden)))
        return KG_ESHAPE;
    const char *head = c->tie_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
    long V = c->vocab;
    return pack(&ld, &m->lm_head, 1, &head, &V, c->hidden, &m->lm_head_s);
}

void kgm_weights_free(kgm_model *m)
{
    for (long l = 0; m->layers && l < m->c.layers; l++) {
        kgm_layer *L = &m->layers[l];
        kg_wt_free(&L->qkv), kg_wt_free(&L->o), kg_wt_free(&L->gate);
        kg_wt_free(&L->up), kg_wt_free(&L->down);
        free(L->qkv_bias), free(L->o_bias), free(L->ln1), free(L->ln2);
        free(L->qkv_s), free(L->o_s), free(L->gate_s), free(L->up_s), free(L->down_s);
    }
    kg_wt_free(&m->lm_head);
    free(m->lm_head_s);
    free(m->final_norm);
}
