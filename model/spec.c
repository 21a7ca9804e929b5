/* spec.c: the spec of a config (kgm_spec_text): a Lua spec in the format of specs/NAME.lua that
 * names exactly the kernels the forward pass (forward.c) calls, in the order forward.c finds
 * them (KGM_K_* in model_int.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/abi.h"
#include "model_int.h"

/* A growing string. */
typedef struct buf { char *s; size_t len, cap; int oom; } buf;

static void put(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (b->oom || n < 0)
        return;
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = (b->len + (size_t)n + 1) * 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = 1;
            return;
        }
        b->s = s, b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* The spec's kernels, one line each; forward.c reads them back by index (KGM_K_*, through
 * kgm_spec_index). w: the weight format of the projections and the LM head; fp8 ("e4m3") runs
 * them through the weight-only ROW path, prefill's output projection and MLP included (TKG
 * kernels, as their CTE kernels quantize the activations too), and the LM head's fp8 kernel
 * (per-column scales w_scale, the same GEMM and dequant as the ROW projections). */
static void kernels(buf *b, const kgm_config *c, const char *w)
{
    const char *bias = c->qkv_bias ? "true" : "false", *obias = c->o_bias ? "true" : "false";
    int fp8 = !strcmp(w, "e4m3");
    const char *q = fp8 ? "quantization_type = \"ROW\",\n      " : "";
    int moe = c->experts > 0;
    put(b, "  kernels = {\n");
    if (fp8)
        put(b, "    -- fp8 weights: e4m3 with per-column scales (quantization_type ROW; the LM\n"
               "    -- head's too); the activations stay f32 (weight-only), so prefill's output\n"
               "    -- projection and MLP are the decode kernels below, called with every prompt\n"
               "    -- token\n");
    put(b, "    -- prefill, one sequence per call: the QKV projection with the input RMSNorm\n"
           "    -- fused, out [1, S, (nq + 2 nkv) d]; HF rotary embedding from position\n"
           "    -- tables; causal GQA attention over the sequence, out [1, nq, d, S]%s\n",
        fp8 ? "" : moe ? "; the output\n    -- projection"
                   : "; the output\n"
                     "    -- projection; the MLP with its RMSNorm and the residual add fused");
    put(b, "    { family = \"qkv\", norm_type = \"RMS_NORM\", bias = %s, %sweight_dtype = "
           "\"%s\",\n      B = 1 },\n", bias, q, w);
    put(b, "    { family = \"rope_hf\", table_batch = false, B = 1 },\n");
    put(b, "    { family = \"attention_cte\", scale = model.head_dim ^ -0.5, tp_k = true, "
           "tp_out = true, B = 1 },\n");
    if (!fp8) {
        put(b, "    { family = \"output_projection\", variant = \"CTE\", weight_dtype = \"%s\", "
               "out_dtype = \"f32\",\n      bias = %s, B = 1 },\n", w, obias);
        if (!moe)
            put(b, "    { family = \"mlp\", variant = \"CTE\", normalization_type = "
                   "\"RMS_NORM\",\n      fused_residual_add = true, store_fused_add_result = "
                   "true, weight_dtype = \"%s\",\n      out_dtype = \"f32\" },\n", w);
    }
    put(b, "    -- decode, every sequence in one call: QKV out [B, 1, (nq + 2 nkv) d]; attention\n"
           "    -- of each sequence against its KV cache with the rotary embedding fused (it\n"
           "    -- returns the rotated key for the cache); output projection%s\n",
        moe ? " (the MoE block\n    -- below serves both)" : "; MLP");
    put(b, "    { family = \"qkv\", variant = \"TKG\", norm_type = \"RMS_NORM\", bias = %s,\n"
           "      %sweight_dtype = \"%s\" },\n", bias, q, w);
    put(b, "    { family = \"attention_tkg\", n_kv = model.kv_heads, use_pos_id = true, "
           "fuse_rope = true,\n      kv_dtype = \"f32\", B = 1 },\n");
    put(b, "    { family = \"output_projection\", variant = \"TKG\", attn_layout = \"BNDS\",%s"
           "%sweight_dtype = \"%s\",\n      bias = %s },\n", fp8 ? "\n      " : " ", q, w, obias);
    if (!moe)
        put(b, "    { family = \"mlp\", variant = \"TKG\", normalization_type = \"RMS_NORM\",\n"
               "      fused_residual_add = true, store_fused_add_result = true, %s"
               "weight_dtype = \"%s\",\n      out_dtype = \"f32\" },\n", q, w);
    put(b, "    -- the final RMSNorm (kept: the last hidden state) and the LM head%s\n",
        fp8 ? " (fp8: w_scale)" : "");
    put(b, "    { family = \"lm_head\", store_normed = true, weight_dtype = \"%s\" },\n", w);
    if (moe) {
        put(b, "    -- Mixtral's sparse MoE block, prefill and decode: the router (softmax of all\n"
               "    -- %ld logits, the top %ld, renormalised), f32 weight; decode: each token's\n"
               "    -- experts' SiLU MLPs weighted by its affinities (only the selected experts'\n"
               "    -- weights are read)\n", c->experts, c->experts_per_tok);
        put(b, "    { family = \"router_topk\", E = %ld, k = %ld, act_fn = \"SOFTMAX\",\n"
               "      router_pre_norm = true, norm_topk_prob = true },\n",
            c->experts, c->experts_per_tok);
        put(b, "    { family = \"moe_tkg\", E = %ld, K = %ld, %sweight_dtype = \"%s\",\n"
               "      affinity_dtype = \"f32\", out_dtype = \"f32\" },\n", c->experts,
            c->experts_per_tok, q, w);
        put(b, "    -- prefill: the same experts over the prompt's tokens grouped into blocks of\n"
               "    -- %d slots, one expert a block (kgen/moe_blocks.h), each expert's weights\n"
               "    -- read once a pass of its blocks\n", KGM_MOE_BLOCK);
        put(b, "    { family = \"moe_cte\", E = %ld, K = %ld, B = %d, dtype = \"f32\",\n"
               "      %sweight_dtype = \"%s\" },\n", c->experts, c->experts_per_tok,
            KGM_MOE_BLOCK, q, w);
    }
    put(b, "  },\n");
}

int kgm_megakernel(const kgm_config *c, const kgm_options *o, const kgm_shard *sh,
                   const char **why)
{
    const char *no = NULL, *w = kgm_weight_name(c, o);
    if (o && o->no_megakernel)
        no = "turned off (no_megakernel)";
    else if (c->experts)
        no = "a mixture-of-experts MLP (the megakernel's MLP is dense)";
    else if (c->qkv_bias || c->o_bias)
        no = "a QKV or o_proj bias";
    else if (!strcmp(w, "e4m3"))
        no = "fp8 weights (the megakernel's fp8 MLP layers are not the runner's fp8)";
    else if (c->head_dim % 2 || c->head_dim > 128)
        no = "head_dim odd or past 128";
    else if (c->hidden % 128)
        no = "hidden size not a multiple of 128";
    else if (c->layers > 32 || c->layers * sh->nkv > 63)
        no = "more than 32 layers or 63 (layer, KV head) pairs on a rank";
    if (why)
        *why = no;
    return !no;
}

/* The megakernel's line: every layer of a decode step, one rank's sizes (the model table's),
 * f32 as the chain's activations, the weights in format w. */
static void megakernel(buf *b, const kgm_shard *sh, const char *w)
{
    char tp[32] = "", wd[40] = "";
    if (sh->tp > 1)
        snprintf(tp, sizeof tp, ", tp = %d", sh->tp);
    if (strcmp(w, "f32") != 0)
        snprintf(wd, sizeof wd, ", weight_dtype = \"%s\"", w);
    put(b, "-- decode through one kernel (kgen run --no-megakernel: the chain above): every\n"
           "-- layer's attention block and MLP, the residual adds and, with tp > 1, the\n"
           "-- all-reduces; transposed K caches per (layer, KV head)\n");
    put(b, "table.insert(spec.kernels, { family = \"transformer_tkg\", dtype = \"f32\"%s,\n"
           "  kv_heads = model.kv_heads, num_layers = model.layers%s })\n", wd, tp);
}

/* x as the shortest of %.15g / %.17g that reads back as the same double. */
static const char *num(char *buf, size_t len, double x)
{
    snprintf(buf, len, "%.15g", x);
    if (strtod(buf, NULL) != x)
        snprintf(buf, len, "%.17g", x);
    return buf;
}

int kgm_spec_text(const kgm_config *c, const kgm_options *o, char **text, char *err,
                  size_t errlen)
{
    kgm_limits lim;
    kgm_limits_of(c, o, &lim);
    /* tensor parallelism: every rank's kernels have one rank's sizes (the same on all) */
    kgm_shard sh;
    int rc = kgm_shard_of(c, o ? o->tp : 1, 0, &sh, err, errlen);
    if (rc != KG_OK)
        return rc;
    const char *w = kgm_weight_name(c, o);
    buf b = { 0 };
    char eps[40], theta[40], tp[64] = "";
    put(&b, "-- The kernels of a %s model (kgen spec --from-hf): hidden %ld, %ld layers,\n"
            "-- %ld query / %ld KV heads of %ld, vocabulary %ld; %s weights, f32 activations.\n",
        kgm_arch_name(c->arch), c->hidden, c->layers, c->q_heads, c->kv_heads, c->head_dim,
        c->vocab, w);
    if (sh.tp > 1) {
        put(&b, "-- Tensor parallelism over %d ranks (Megatron): the sizes below are one "
                "rank's,\n-- its query heads, KV heads, intermediate columns and vocabulary "
                "slice (padded).\n", sh.tp);
        snprintf(tp, sizeof tp, "_tp%d", sh.tp);
    }
    put(&b, "local model = {\n"
            "  hidden = %ld, intermediate = %ld, q_heads = %ld, kv_heads = %ld, head_dim = %ld,\n"
            "  layers = %ld, vocab = %ld, rms_eps = %s, rope_theta = %s,\n}\n\n",
        c->hidden, sh.I, sh.nq, sh.nkv, c->head_dim, c->layers, sh.V,
        num(eps, sizeof eps, c->rms_eps), num(theta, sizeof theta, c->rope_theta));
    put(&b, "local spec = {\n");
    char moe[48] = ""; /* Mixtral: experts and experts per token */
    if (c->experts)
        snprintf(moe, sizeof moe, "_e%ld_k%ld", c->experts, c->experts_per_tok);
    put(&b, "  name = \"%s_h%ld_i%ld_q%ld_kv%ld_d%ld_v%ld_%s%s%s\",\n",
        c->arch == KGM_QWEN2 ? "qwen2" : c->experts ? "mixtral" : "llama", c->hidden, sh.I,
        sh.nq, sh.nkv, c->head_dim, sh.V, w, moe, tp);
    put(&b, "  description = \"%s from config.json\",\n", kgm_arch_name(c->arch));
    put(&b, "  model = model,\n  dtype = \"f32\",\n  fp8 = { format = \"e4m3\" },\n");
    put(&b, "  limits = { max_tokens = %ld, max_batch = %ld, max_context = %ld },\n",
        lim.max_context, lim.max_batch, lim.max_context);
    kernels(&b, c, w);
    put(&b, "}\n");
    if (kgm_megakernel(c, o, &sh, NULL))
        megakernel(&b, &sh, w);
    put(&b, "return spec\n");
    if (b.oom) {
        free(b.s);
        snprintf(err, errlen, "out of memory writing the spec");
        return KG_ENOMEM;
    }
    *text = b.s;
    return KGM_OK;
}
