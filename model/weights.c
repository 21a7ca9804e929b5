/* weights.c: a model's weights from its safetensors (st.h): every tensor the layer graph needs,
 * checked against config.json (name, rank, shape, dtype), the projections packed (kg_wt) from
 * their Hugging Face layout [out, in] directly (layout nk), norms and biases widened to f32.
 * With fp8 weights each layer projection and the LM head are quantized to e4m3 codes first
 * (per output column scales kept beside the packed codes; quant.c), one tensor at a time. With
 * tied embeddings the LM head is a packed copy: the embedding lookup reads the stored rows.
 * Tensor parallelism: a rank packs only its shard (kgm_shard: rows of the projections it
 * splits by output, columns of those it splits by input, its slice of the vocabulary) and
 * reads only those bytes of the mapping (stats.read_bytes counts them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

/* Elements [first, first + n) of the vector tensor name [len] widened to f32 (malloc'd), or
 * NULL with err. */
static float *vec_part(loader *ld, const char *name, long len, long first, long n)
{
    const kgst_tensor *t = tensor(ld, name, len, 0);
    float *v = t ? malloc((size_t)(n > 0 ? n : 1) * sizeof *v) : NULL;
    if (t && !v)
        snprintf(ld->err, ld->errlen, "out of memory loading %s", name);
    for (long i = 0; v && i < n; i++)
        v[i] = value(t, first + i);
    if (v)
        ld->m->stats.read_bytes += (size_t)n * (t->dtype == KG_F32 ? 4 : 2);
    return v;
}

/* A vector tensor [n] widened to f32 (malloc'd), or NULL with err. */
static float *vec(loader *ld, const char *name, long n)
{
    return vec_part(ld, name, n, 0, n);
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

/* One part of a packed weight: rows [r0, r0 + nr) and columns [c0, c0 + nc) of the stored
 * tensor name [R, C] (HF's [out, in]: its rows are W's output columns, its columns W's
 * contraction); rows past R are zeros (the padding of the last rank's vocabulary slice). */
typedef struct part { const char *name; long R, C, r0, nr, c0, nc; } part;

/* The whole tensor name [R, C] as a part. */
static part whole(const char *name, long R, long C) { return (part){ name, R, C, 0, R, 0, C }; }

/* Part p of t as a tensor [nr, nc] of t's dtype: a view into the mapping when it is whole rows
 * of t, else a copy gathered row by row (*copy, for the caller to free), so that only the
 * part's bytes of the file are read (counted in stats.read_bytes). data is NULL when out of
 * memory. The sizes are the config's, whose products are checked (config.c). */
static kgst_tensor view(loader *ld, const kgst_tensor *t, const part *p, void **copy)
{
    size_t es = t->dtype == KG_F32 ? 4 : 2;
    long have = p->r0 >= p->R ? 0 : p->R - p->r0 < p->nr ? p->R - p->r0 : p->nr;
    kgst_tensor v = *t;
    v.shape[0] = p->nr, v.shape[1] = p->nc, v.count = p->nr * p->nc;
    v.nbytes = (size_t)v.count * es;
    *copy = NULL;
    if (p->c0 == 0 && p->nc == p->C && have == p->nr) {
        v.data = (const unsigned char *)t->data + (size_t)p->r0 * (size_t)p->C * es;
    } else {
        unsigned char *c = calloc(v.nbytes ? v.nbytes : 1, 1);
        const unsigned char *from = t->data;
        for (long r = 0; c && r < have; r++)
            memcpy(c + (size_t)r * (size_t)p->nc * es,
                   from + ((size_t)(p->r0 + r) * (size_t)p->C + (size_t)p->c0) * es,
                   (size_t)p->nc * es);
        v.data = *copy = c;
    }
    if (v.data)
        ld->m->stats.read_bytes += (size_t)have * (size_t)p->nc * es;
    return v;
}

/* The whole pages of the mapping that rows [r0, r0 + n) of t span, released from this process
 * once packed: they stay in the page cache (read again if touched: the embeddings' rows), but
 * a rank's resident memory is then its packed shard, not that plus the file pages it read. */
static void release(const kgst_tensor *t, long r0, long n, long C)
{
    size_t es = t->dtype == KG_F32 ? 4 : 2, page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)t->data + (size_t)r0 * (size_t)C * es;
    uintptr_t b = a + (size_t)n * (size_t)C * es;
    a = (a + page - 1) / page * page, b = b / page * page;
    if (b > a)
        madvise((void *)a, b - a, MADV_DONTNEED);
}

/* Packs W [K, N] = the side-by-side parts p[i] (each [nr, K], K = nc), into w. In fp8
 * (ld->fmt e4m3) each part is quantized first and *scale (malloc'd) gets W's per-column
 * scales [N]; else scale is NULL and untouched. */
static int pack(loader *ld, kg_wt *w, int nparts, const part *p, float **scale)
{
    kg_wt_src src[3];
    void *copy[3] = { 0 }, *cut[3] = { 0 };
    int rc = KG_OK;
    long N = 0, K = p[0].nc;
    for (int i = 0; i < nparts; i++)
        N += p[i].nr;
    int fp8 = ld->fmt == KG_WT_E4M3;
    if (fp8 && !(*scale = malloc((size_t)(N > 0 ? N : 1) * sizeof **scale))) {
        snprintf(ld->err, ld->errlen, "out of memory quantizing %s", p[0].name);
        return KG_ENOMEM;
    }
    long at = 0;
    for (int i = 0; i < nparts && rc == KG_OK; at += p[i].nr, i++) {
        const kgst_tensor *t = tensor(ld, p[i].name, p[i].R, p[i].C);
        if (!t) {
            rc = KG_ESHAPE;
            break;
        }
        kgst_tensor v = view(ld, t, &p[i], &cut[i]);
        const void *data = !v.data ? NULL
                           : fp8   ? (copy[i] = quantize(&v, p[i].nr, K, *scale + at))
                                   : in_format(&v, ld->fmt, &copy[i]);
        src[i] = (kg_wt_src){ ld->fmt, KG_WL_NK, K, p[i].nr, data, NULL, 0, 0 };
        if (!src[i].data)
            rc = KG_ENOMEM, snprintf(ld->err, ld->errlen, "out of memory converting %s",
                                     p[i].name);
    }
    char why[256];
    if (rc == KG_OK && (rc = kg_wt_pack_parts(w, src, nparts, why, sizeof why)) != KG_OK)
        snprintf(ld->err, ld->errlen, "%s: %s: %s", ld->file, p[0].name, why);
    for (int i = 0; i < nparts; i++) {
        free(copy[i]), free(cut[i]);
        const kgst_tensor *t = rc == KG_OK ? kgst_find(ld->m->st, p[i].name) : NULL;
        long have = t && p[i].r0 < p[i].R ? p[i].R - p[i].r0 : 0;
        if (t)
            release(t, p[i].r0, have < p[i].nr ? have : p[i].nr, p[i].C);
    }
    if (rc == KG_OK)
        ld->m->stats.weight_bytes += fp8 ? (size_t)K * (size_t)N + (size_t)N * 4
                                         : (size_t)K * (size_t)N * (ld->fmt == KG_WT_F32 ? 4 : 2);
    return rc;
}

/* Mixtral's experts of layer l packed side by side (kg_wt_pack_experts): gate | up W [H,
 * E * roundup(2 I_r, 64)] from each expert's w1 and w3 rows i0.. (HF [I, H]), down W [I_r,
 * E * roundup(H, 64)] from columns i0.. of each w2 [H, I]; the rank's I_r intermediate
 * columns. fp8: each part quantized first, the scales [E, 2 I_r] and [E, H] beside. */
static int pack_experts(loader *ld, long l, kgm_layer *L)
{
    const kgm_config *c = &ld->m->c;
    const kgm_shard *s = &ld->m->sh;
    long E = c->experts, H = c->hidden, I = c->intermediate, Ir = s->I;
    int fp8 = ld->fmt == KG_WT_E4M3, rc = KG_OK;
    for (int which = 0; which < 2 && rc == KG_OK; which++) {
        int np = which ? 1 : 2;
        long K = which ? Ir : H, N = which ? H : 2 * Ir;
        kg_wt_src *src = calloc((size_t)(E * np), sizeof *src);
        void **mem = calloc((size_t)(2 * E * np), sizeof *mem);
        float *scale = fp8 ? malloc((size_t)(E * N) * sizeof *scale) : NULL;
        if (!src || !mem || (fp8 && !scale)) {
            free(src), free(mem), free(scale);
            snprintf(ld->err, ld->errlen, "out of memory loading layer %ld's experts", l);
            return KG_ENOMEM;
        }
        char names[2][112];
        for (long e = 0; e < E && rc == KG_OK; e++) {
            for (int q = 0; q < np && rc == KG_OK; q++) {
                long i = e * np + q;
                snprintf(names[q], sizeof names[q],
                         "model.layers.%ld.block_sparse_moe.experts.%ld.w%d.weight", l, e,
                         which ? 2 : q ? 3 : 1);
                part p = which ? (part){ names[q], H, I, 0, H, s->i0, Ir }
                               : (part){ names[q], I, H, s->i0, Ir, 0, H };
                const kgst_tensor *t = tensor(ld, names[q], p.R, p.C);
                if (!t) {
                    rc = KG_ESHAPE;
                    break;
                }
                kgst_tensor v = view(ld, t, &p, &mem[2 * i]);
                const void *data = !v.data ? NULL
                                   : fp8 ? (mem[2 * i + 1] = quantize(&v, p.nr, K,
                                                                      scale + e * N + q * Ir))
                                         : in_format(&v, ld->fmt, &mem[2 * i + 1]);
                src[i] = (kg_wt_src){ ld->fmt, KG_WL_NK, K, p.nr, data, NULL, 0, 0 };
                if (!data)
                    rc = KG_ENOMEM, snprintf(ld->err, ld->errlen, "out of memory converting "
                                             "%s", names[q]);
            }
        }
        char why[256];
        kg_wt *w = which ? &L->experts_d : &L->experts_gu;
        if (rc == KG_OK && (rc = kg_wt_pack_experts(w, src, (int)E, np, why, sizeof why)) != KG_OK)
            snprintf(ld->err, ld->errlen, "%s: layer %ld experts: %s", ld->file, l, why);
        for (long i = 0; i < 2 * E * np; i++)
            free(mem[i]);
        free(src), free(mem);
        if (rc == KG_OK) {
            *(which ? &L->experts_d_s : &L->experts_gu_s) = scale;
            ld->m->stats.weight_bytes += (size_t)E * (size_t)K * (size_t)N *
                                         (fp8 ? 1 : ld->fmt == KG_WT_F32 ? 4 : 2) +
                                         (fp8 ? (size_t)(E * N) * 4 : 0);
        } else {
            free(scale);
        }
    }
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

/* Layer l: its norms, the fused QKV weight (and bias), o, gate, up, down: the rank's shard
 * of each (kgm_shard), the norms whole. */
static int load_layer(loader *ld, long l)
{
    const kgm_config *c = &ld->m->c;
    const kgm_shard *s = &ld->m->sh;
    kgm_layer *L = &ld->m->layers[l];
    long H = c->hidden, I = c->intermediate, d = c->head_dim, q = c->q_heads * d;
    long kv = c->kv_heads * d;
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
    /* the rank's query heads and their KV heads: rows of q, k and v (columns of W) */
    long q0 = s->q0 * d, nq = s->nq * d, k0 = s->kv0 * d, nk = s->nkv * d;
    const part qkv[3] = { { w[0], q, H, q0, nq, 0, H }, { w[1], kv, H, k0, nk, 0, H },
                          { w[2], kv, H, k0, nk, 0, H } };
    int rc = pack(ld, &L->qkv, 3, qkv, &L->qkv_s);
    if (rc == KG_OK && c->qkv_bias) {
        float *bq = vec_part(ld, b[0], q, q0, nq), *bk = bq ? vec_part(ld, b[1], kv, k0, nk) : NULL;
        float *bv = bk ? vec_part(ld, b[2], kv, k0, nk) : NULL;
        L->qkv_bias = bv ? malloc((size_t)(nq + 2 * nk) * sizeof(float)) : NULL;
        if (L->qkv_bias) {
            memcpy(L->qkv_bias, bq, (size_t)nq * sizeof(float));
            memcpy(L->qkv_bias + nq, bk, (size_t)nk * sizeof(float));
            memcpy(L->qkv_bias + nq + nk, bv, (size_t)nk * sizeof(float));
        }
        rc = L->qkv_bias ? KG_OK : bv ? KG_ENOMEM : KG_ESHAPE;
        free(bq), free(bk), free(bv);
    }
    /* o_proj: the rows of W for the rank's heads (columns of the stored [H, q]) */
    const part o = { nm[5], H, q, 0, H, q0, nq };
    if (rc == KG_OK)
        rc = pack(ld, &L->o, 1, &o, &L->o_s);
    if (rc == KG_OK && c->o_bias) {
        /* added once to the sum of the ranks' partial outputs: rank 0's, zeros elsewhere */
        char ob[96];
        snprintf(ob, sizeof ob, "model.layers.%ld.self_attn.o_proj.bias", l);
        L->o_bias = s->rank == 0 ? vec(ld, ob, H)
                    : tensor(ld, ob, H, 0) ? calloc((size_t)H, sizeof(float)) : NULL;
        rc = L->o_bias ? KG_OK : KG_ESHAPE;
    }
    if (rc == KG_OK && c->experts) {
        /* Mixtral: the router whole on every rank (each computes the same routing), in f32
         * (the router kernel's dtype), then the rank's columns of every expert */
        char gate[96];
        snprintf(gate, sizeof gate, "model.layers.%ld.block_sparse_moe.gate.weight", l);
        const part r = whole(gate, c->experts, H);
        int fmt = ld->fmt;
        ld->fmt = KG_WT_F32;
        rc = pack(ld, &L->router, 1, &r, NULL);
        ld->fmt = fmt;
        return rc == KG_OK ? pack_experts(ld, l, L) : rc;
    }
    /* the MLP: columns i0.. of gate and up (rows of the stored), rows of down (columns) */
    const part g = { nm[6], I, H, s->i0, s->I, 0, H }, u = { nm[7], I, H, s->i0, s->I, 0, H };
    const part dn = { down, H, I, 0, H, s->i0, s->I };
    if (rc == KG_OK)
        rc = pack(ld, &L->gate, 1, &g, &L->gate_s);
    if (rc == KG_OK)
        rc = pack(ld, &L->up, 1, &u, &L->up_s);
    if (rc == KG_OK)
        rc = pack(ld, &L->down, 1, &dn, &L->down_s);
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
    /* the rank's vocabulary slice: rows v0.. of the stored [V, H], zeros past V */
    const char *head = c->tie_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
    part lm = whole(head, c->vocab, c->hidden);
    lm.r0 = m->sh.v0, lm.nr = m->sh.V;
    return pack(&ld, &m->lm_head, 1, &lm, &m->lm_head_s);
}

void kgm_weights_free(kgm_model *m)
{
    for (long l = 0; m->layers && l < m->c.layers; l++) {
        kgm_layer *L = &m->layers[l];
        kg_wt_free(&L->qkv), kg_wt_free(&L->o), kg_wt_free(&L->gate);
        kg_wt_free(&L->up), kg_wt_free(&L->down);
        kg_wt_free(&L->router), kg_wt_free(&L->experts_gu), kg_wt_free(&L->experts_d);
        free(L->experts_gu_s), free(L->experts_d_s);
        free(L->qkv_bias), free(L->o_bias), free(L->ln1), free(L->ln2);
        free(L->qkv_s), free(L->o_s), free(L->gate_s), free(L->up_s), free(L->down_s);
    }
    kg_wt_free(&m->lm_head);
    free(m->lm_head_s);
    free(m->final_norm);
}
