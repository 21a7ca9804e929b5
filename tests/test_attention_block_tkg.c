/* tests/test_attention_block_tkg.c: the attention_block_tkg family against
 * tests/ref/attention_block_tkg_ref.c: option sweeps on small shapes, per-call checks, refused
 * problems naming their key, kernel names that parse back, and JIT vs AOT bit-identity for every
 * spec's kernels. The vector adapter is test_abt_vectors.c, the KVDP groups test_abt_kvdp.c. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/dtype.h"
#include "kgen/kernels.h"
#include "kgen/kgen.h"
#include "ref/ref.h"
#include "util/abt_call.h"
#include "util/compare.h"
#include "util/jitp.h"
#include "util/tensors.h"
#include "util/weights.h"

/* ---- random calls against the reference ------------------------------------------------------ */

/* The kernel on a random call of options o (dtype t) against the reference, at the vectors'
 * tolerance (rtol 1.5e-2, atol 1e-5). */
static void check(const attn_block_ref_opts *o0, kg_dtype t)
{
    attn_block_ref_opts o = *o0;
    o.nblk = o.blk ? o.S_max / o.blk : 0;
    o.n_cache = o.blk ? o.B * o.nblk + 3 : o.B + 1;
    abt_call c;
    abt_make_call(&c, &o, t, 100 + (unsigned long long)(o.S_ctx * 31 + o.D * 7 + o.S));
    char problem[1024];
    abt_problem_of(&c, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    long nx = abt_n_xout(&c), nc = abt_n_cache_el(&c), nk = abt_n_tok(&c) * o.D;
    void *out = kgt_poisoned(t, nx);
    void *kc = abt_kv_encode(&c, c.K_cache, nc), *vc = abt_kv_encode(&c, c.V_cache, nc);
    void *kt = o.update ? NULL : abt_kv_poisoned(&c, nk);
    void *vt = o.update ? NULL : abt_kv_poisoned(&c, nk);
    cr_assert_eq(abt_run_kernel(k, &c, out, kc, vc, kt, vt), KG_OK, "%s refused the call", k->name);
    long nko = o.update ? nc : nk;
    float *want = malloc(sizeof(float) * (size_t)nx);
    float *kw = malloc(sizeof(float) * (size_t)nko), *vw = malloc(sizeof(float) * (size_t)nko);
    attn_block_ref_in in = { .X = c.X, .gamma = c.gamma, .W_qkv = c.W_qkv, .cos = c.cos,
                             .sin = c.sin, .K_cache = c.K_cache, .V_cache = c.V_cache,
                             .W_out = c.W_out, .bias_out = c.bias_out, .mask = c.mask,
                             .idx = c.idx, .bias_qkv = c.bias_qkv, .gq_pre = c.gq_pre,
                             .gk_pre = c.gk_pre, .gq_post = c.gq_post, .gk_post = c.gk_post,
                             .sink = c.sink, .table = c.table, .k_scale = c.kv_scale[0],
                             .v_scale = c.kv_scale[1], .w_qkv = c.w_qkv, .s_qkv = c.s_qkv,
                             .w_out = &c.w_out, .s_out = c.s_out };
    attention_block_tkg_ref(want, kw, vw, &in, &o);
    char msg[1024];
    long xs[2] = { 1, nx };
    int any8 = o.fp8 || o.static_qkv || o.static_out;
    double rtol = any8 ? 0.07 : 1.5e-2, atol = 1e-5; /* the vectors' tolerances */
    cr_assert(kgt_close_to_ref(t, out, want, 2, xs, rtol, atol, msg, sizeof msg), "%s: X_out %s",
              k->name, msg);
    cr_assert(abt_kv_close(&c, o.update ? kc : kt, kw, nko, msg, sizeof msg), "%s: K %s", k->name,
              msg);
    cr_assert(abt_kv_close(&c, o.update ? vc : vt, vw, nko, msg, sizeof msg), "%s: V %s", k->name,
              msg);
    free(out), free(kc), free(vc), free(kt), free(vt), free(want), free(kw), free(vw);
    abt_call_free(&c);
}

TestSuite(attention_block_tkg, .init = kgt_suite_init, .fini = kgt_suite_fini);

Test(attention_block_tkg, base_every_dtype)
{
    for (size_t di = 0; di < KGT_FLOAT_DTYPES; di++) {
        attn_block_ref_opts o = abt_base_opts();
        check(&o, kgt_float_dtypes[di]);
    }
}

/* Each option off its default, alone, in bf16 (S_tkg 1 and 7). */
Test(attention_block_tkg, options_one_by_one)
{
    for (int opt = 0; opt < 26; opt++)
        for (long S = 1; S <= 7; S += 6) {
            attn_block_ref_opts o = abt_base_opts();
            o.S = S;
            switch (opt) {
            case 0: o.norm = 1, o.eps = 1e-3f; break;
            case 1: o.rope = 0; break;
            case 2: o.contig = 0; break;
            case 3: o.scale = 0.3f; break;
            case 4: o.update = 0; break;
            case 5: o.wout = 0; break;
            case 6: o.bout = 1; break;
            case 7: o.bias_qkv = 1; break;
            case 8: o.qk_pre = o.qk_pre_gamma = 1, o.qk_pre_eps = 1e-3f; break;
            case 9: o.qk_post = o.qk_post_gamma = 1, o.qk_post_eps = 1e-5f; break;
            case 10: o.sink = 1; break;
            case 11: o.tpk_t = 1; break;
            case 12: o.skip = 1; break;
            case 13: o.tpk_t = 1, o.update = 0; break;
            case 14: o.blk = 8; break;
            case 15: o.blk = 16, o.update = 0, o.sink = 1; break;
            case 16: o.blk = 1; break;
            case 17: o.fp8 = 1; break;
            case 18: o.fp8 = 1, o.update = 0, o.tpk_t = 1; break;
            case 19: o.fp8 = 1, o.blk = 8; break;
            case 20: o.static_qkv = 1; break;
            case 21: o.static_out = 1, o.bout = 1; break;
            case 22: o.static_qkv = o.static_out = 1, o.fp8 = 1, o.bias_qkv = 1; break;
            case 23: o.norm = 1, o.hact = 77; break;
            case 24: o.qk_pre = 1, o.qk_pre_eps = 1e-3f; break; /* no gammas */
            case 25: o.qk_post = 1, o.qk_post_eps = 1e-3f, o.qk_pre = o.qk_pre_gamma = 1; break;
            }
            check(&o, KG_BF16);
        }
}

/* One head, S_tkg 1 and 8, a window of exactly the new tokens, windows off every tile (64) and
 * chunk (512), several chunks, d 2 and 128. */
Test(attention_block_tkg, edge_shapes)
{
    static const long SHAPES[][7] = { /* B, S, H, N, D, S_ctx, S_max */
        { 1, 1, 8, 1, 2, 1, 1 },       { 2, 8, 64, 1, 16, 8, 9 },  { 2, 1, 130, 2, 64, 65, 65 },
        { 1, 3, 64, 4, 128, 1100, 1200 }, { 3, 1, 40, 5, 8, 545, 600 },
    };
    for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++) {
        attn_block_ref_opts o = abt_base_opts();
        o.B = SHAPES[i][0], o.S = SHAPES[i][1], o.H = SHAPES[i][2], o.N = SHAPES[i][3];
        o.D = SHAPES[i][4], o.S_ctx = SHAPES[i][5], o.S_max = SHAPES[i][6];
        o.scale = 1.0f / sqrtf((float)o.D);
        check(&o, KG_F32);
        o.update = 0, o.norm = 1, o.bout = 1;
        check(&o, KG_BF16);
    }
}

/* ---- per-call sizes and bad problems --------------------------------------------------------- */

Test(attention_block_tkg, per_call_checks)
{
    attn_block_ref_opts o = abt_base_opts();
    o.n_cache = o.B;
    abt_call c;
    abt_make_call(&c, &o, KG_F32, 5);
    char problem[1024];
    abt_problem_of(&c, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    long nc = abt_n_cache_el(&c);
    float *out = malloc(sizeof(float) * (size_t)abt_n_xout(&c));
    float *kc = malloc(sizeof(float) * (size_t)nc), *vc = malloc(sizeof(float) * (size_t)nc);
    memcpy(kc, c.K_cache, sizeof(float) * (size_t)nc);
    memcpy(vc, c.V_cache, sizeof(float) * (size_t)nc);
    cr_assert_eq(abt_run_kernel(k, &c, out, kc, vc, NULL, NULL), KG_OK);
    c.o.S_ctx = o.S_max + 1;
    cr_assert_eq(abt_run_kernel(k, &c, out, kc, vc, NULL, NULL), KG_EARG, "S_ctx > S_max");
    c.o.S_ctx = o.S - 1;
    cr_assert_eq(abt_run_kernel(k, &c, out, kc, vc, NULL, NULL), KG_EARG, "S_ctx < S_tkg");
    c.o.S_ctx = o.S_ctx;
    c.o.n_cache = o.B - 1;
    cr_assert_eq(abt_run_kernel(k, &c, out, kc, vc, NULL, NULL), KG_EARG, "n_cache < B");
    c.o.n_cache = o.B;
    c.idx[1] = (uint32_t)(o.S_max - o.S + 1);
    cr_assert_eq(abt_run_kernel(k, &c, out, kc, vc, NULL, NULL), KG_EARG, "a write past the row");
    c.idx[1] = 0;
    c.o.B = -1;
    cr_assert_eq(abt_run_kernel(k, &c, out, kc, vc, NULL, NULL), KG_EARG, "B < 0");
    c.o.B = 0;
    cr_assert_eq(abt_run_kernel(k, &c, out, kc, vc, NULL, NULL), KG_OK, "B = 0 is an empty call");
    c.o.B = o.B;
    free(c.cos), c.cos = NULL;
    cr_assert_eq(abt_run_kernel(k, &c, out, kc, vc, NULL, NULL), KG_EARG, "no cos");
    free(out), free(kc), free(vc);
    abt_call_free(&c);
}

/* Block caches: a table entry past the cache and a write past the pool are refused. */
Test(attention_block_tkg, per_call_checks_block)
{
    attn_block_ref_opts o = abt_base_opts();
    o.blk = 8, o.nblk = o.S_max / 8, o.n_cache = o.B * o.nblk;
    abt_call c;
    abt_make_call(&c, &o, KG_F32, 6);
    char problem[1024];
    abt_problem_of(&c, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    long nc = abt_n_cache_el(&c);
    float *out = malloc(sizeof(float) * (size_t)abt_n_xout(&c));
    float *kc = malloc(sizeof(float) * (size_t)nc), *vc = malloc(sizeof(float) * (size_t)nc);
    memcpy(kc, c.K_cache, sizeof(float) * (size_t)nc);
    memcpy(vc, c.V_cache, sizeof(float) * (size_t)nc);
    cr_assert_eq(abt_run_kernel(k, &c, out, kc, vc, NULL, NULL), KG_OK);
    uint32_t keep = c.table[1];
    c.table[1] = (uint32_t)o.n_cache;
    cr_assert_eq(abt_run_kernel(k, &c, out, kc, vc, NULL, NULL), KG_EARG, "a block past the cache");
    c.table[1] = keep;
    c.idx[0] = (uint32_t)(o.n_cache * o.blk - o.S + 1);
    cr_assert_eq(abt_run_kernel(k, &c, out, kc, vc, NULL, NULL), KG_EARG, "a write past the pool");
    c.idx[0] = (uint32_t)(o.n_cache * o.blk - o.S);
    cr_assert_eq(abt_run_kernel(k, &c, out, kc, vc, NULL, NULL), KG_OK, "the pool's last rows");
    free(out), free(kc), free(vc);
    abt_call_free(&c);
}

Test(attention_block_tkg, bad_problems_name_the_key)
{
    static const struct { const char *problem, *want; } bad[] = {
        { "attention_block_tkg:d_head=63", "key 'd_head'" },
        { "attention_block_tkg:d_head=130", "key 'd_head'" },
        { "attention_block_tkg:S_tkg=9", "key 'S_tkg'" },
        { "attention_block_tkg:rmsnorm_X_eps=0.001", "key 'rmsnorm_X_eps'" },
        { "attention_block_tkg:rope=false,rope_contiguous_layout=false",
          "key 'rope_contiguous_layout'" },
        { "attention_block_tkg:W_out=false,bias_out=true", "key 'bias_out'" },
        { "attention_block_tkg:S_max=64,S_ctx=65", "key 'S_ctx'" },
        { "attention_block_tkg:S_max=4,S_tkg=5", "key 'S_ctx'" },
        { "attention_block_tkg:rmsnorm_QK_eps=0.001", "key 'rmsnorm_QK_eps'" },
        { "attention_block_tkg:rmsnorm_QK_post_rope_eps=0.001",
          "key 'rmsnorm_QK_post_rope_eps'" },
        { "attention_block_tkg:skip_attention=true,sink=true", "key 'sink'" },
        { "attention_block_tkg:block_len=16,K_cache_transposed=true", "key 'K_cache_transposed'" },
        { "attention_block_tkg:block_len=48,S_max=100", "key 'block_len'" },
        { "attention_block_tkg:kv_dtype=e5m2", "key 'kv_dtype'" },
        { "attention_block_tkg:H=64,rmsnorm_X_enabled=true,X_hidden_dim_actual=65",
          "key 'X_hidden_dim_actual'" },
        { "attention_block_tkg:H=64,X_hidden_dim_actual=63", "key 'X_hidden_dim_actual'" },
        { "attention_block_tkg:rmsnorm_QK_gamma=false", "key 'rmsnorm_QK_gamma'" },
        { "attention_block_tkg:rmsnorm_QK_post_rope_gamma=false",
          "key 'rmsnorm_QK_post_rope_gamma'" },
        { "attention_block_tkg:W_out=false,quantization_type_out=STATIC",
          "key 'quantization_type_out'" },
        { "attention_block_tkg:dtype=bf16,kv_dtype=fp16", "key 'kv_dtype'" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        kgt_problem_rejected(bad[i].problem, bad[i].want);
}

Test(attention_block_tkg, names_parse_back_and_are_unique)
{
    static const char *const P[] = {
        "attention_block_tkg:dtype=bf16", "attention_block_tkg:dtype=f32,rope=false",
        "attention_block_tkg:rope_contiguous_layout=false",
        "attention_block_tkg:rmsnorm_X_enabled=true,rmsnorm_X_eps=0.001",
        "attention_block_tkg:rmsnorm_X_enabled=true", "attention_block_tkg:softmax_scale=0.1",
        "attention_block_tkg:update_cache=false", "attention_block_tkg:W_out=false",
        "attention_block_tkg:bias_out=true", "attention_block_tkg:S_tkg=7,q_heads=2,d_head=64",
        "attention_block_tkg:bias_qkv=true", "attention_block_tkg:rmsnorm_QK_enabled=true",
        "attention_block_tkg:rmsnorm_QK_enabled=true,rmsnorm_QK_eps=0.001",
        "attention_block_tkg:rmsnorm_QK_post_rope_enabled=true", "attention_block_tkg:sink=true",
        "attention_block_tkg:K_cache_transposed=true", "attention_block_tkg:skip_attention=true",
        "attention_block_tkg:block_len=32", "attention_block_tkg:kv_dtype=e4m3",
        "attention_block_tkg:quantization_type_qkv=STATIC",
        "attention_block_tkg:quantization_type_out=STATIC",
        "attention_block_tkg:rmsnorm_X_enabled=true,X_hidden_dim_actual=4000",
        "attention_block_tkg:rmsnorm_QK_enabled=true,rmsnorm_QK_gamma=false",
    };
    char names[23][256];
    for (size_t i = 0; i < sizeof P / sizeof P[0]; i++) {
        kgt_name_parses_back(P[i], names[i], sizeof names[0]);
        for (size_t j = 0; j < i; j++)
            cr_assert_str_neq(names[i], names[j], "two problems share the name %s", names[i]);
    }
}

/* ---- JIT vs AOT ------------------------------------------------------------------------------ */

static int key_bool(const char *problem, const char *key)
{
    char v[8];
    cr_assert(kg_problem_str(problem, key, v, sizeof v), "%s: %s", problem, key);
    return !strcmp(v, "true");
}

static long key_long(const char *problem, const char *key)
{
    long v;
    cr_assert(kg_problem_long(problem, key, &v), "%s: %s", problem, key);
    return v;
}

/* Both builds on one random call at the kernel's own keys (B = 3, a window of 600 slots or the
 * cache's size): the same bytes out, and in the caches or K_tkg, V_tkg. */
static void compare_builds(const kg_kernel *a, const kg_kernel *j)
{
    const char *p = a->problem;
    attn_block_ref_opts o;
    memset(&o, 0, sizeof o);
    char dt[16];
    double v;
    cr_assert(kg_problem_str(p, "dtype", dt, sizeof dt), "%s", p);
    o.H = key_long(p, "H"), o.N = key_long(p, "q_heads"), o.D = key_long(p, "d_head");
    o.S = key_long(p, "S_tkg"), o.S_max = key_long(p, "S_max");
    o.S_ctx = o.S_max < 600 ? o.S_max : 600, o.B = 3, o.blk = key_long(p, "block_len");
    o.nblk = o.blk ? o.S_max / o.blk : 0, o.n_cache = o.blk ? o.B * o.nblk + 3 : 4;
    char kdt[16];
    cr_assert(kg_problem_str(p, "kv_dtype", kdt, sizeof kdt), "%s", p);
    o.fp8 = !strcmp(kdt, "e4m3");
    cr_assert(kg_problem_str(p, "quantization_type_qkv", kdt, sizeof kdt), "%s", p);
    o.static_qkv = !strcmp(kdt, "STATIC");
    cr_assert(kg_problem_str(p, "quantization_type_out", kdt, sizeof kdt), "%s", p);
    o.static_out = !strcmp(kdt, "STATIC");
    o.norm = key_bool(p, "rmsnorm_X_enabled"), o.rope = key_bool(p, "rope");
    o.contig = key_bool(p, "rope_contiguous_layout"), o.update = key_bool(p, "update_cache");
    o.wout = key_bool(p, "W_out"), o.bout = key_bool(p, "bias_out");
    o.bias_qkv = key_bool(p, "bias_qkv"), o.sink = key_bool(p, "sink");
    o.tpk_t = key_bool(p, "K_cache_transposed"), o.skip = key_bool(p, "skip_attention");
    o.qk_pre = key_bool(p, "rmsnorm_QK_enabled");
    o.qk_post = key_bool(p, "rmsnorm_QK_post_rope_enabled");
    o.qk_pre_gamma = key_bool(p, "rmsnorm_QK_gamma");
    o.qk_post_gamma = key_bool(p, "rmsnorm_QK_post_rope_gamma");
    o.hact = key_long(p, "X_hidden_dim_actual");
    o.hact = o.hact == o.H ? 0 : o.hact;
    cr_assert(kg_problem_double(p, "rmsnorm_QK_eps", &v), "%s", p);
    o.qk_pre_eps = (float)v;
    cr_assert(kg_problem_double(p, "rmsnorm_QK_post_rope_eps", &v), "%s", p);
    o.qk_post_eps = (float)v;
    cr_assert(kg_problem_double(p, "softmax_scale", &v), "%s", p);
    o.scale = (float)v;
    if (o.norm) {
        cr_assert(kg_problem_double(p, "rmsnorm_X_eps", &v), "%s", p);
        o.eps = (float)v;
    }
    kg_dtype t = (kg_dtype)kg_dtype_from_name(dt);
    abt_call c;
    abt_make_call(&c, &o, t, 77);
    long nx = abt_n_xout(&c), nc = abt_n_cache_el(&c), nk = abt_n_tok(&c) * o.D;
    void *oa = kgt_build_output(t, nx, KGT_AOT), *oj = kgt_build_output(t, nx, KGT_JIT);
    size_t w = abt_kv_size(&c);
    void *ka = abt_kv_encode(&c, c.K_cache, nc), *kj = abt_kv_encode(&c, c.K_cache, nc);
    void *va = abt_kv_encode(&c, c.V_cache, nc), *vj = abt_kv_encode(&c, c.V_cache, nc);
    void *kta = kgt_filled((size_t)nk * w, KGT_AOT), *ktj = kgt_filled((size_t)nk * w, KGT_JIT);
    void *vta = kgt_filled((size_t)nk * w, KGT_AOT), *vtj = kgt_filled((size_t)nk * w, KGT_JIT);
    cr_assert_eq(abt_run_kernel(a, &c, oa, ka, va, kta, vta), KG_OK, "%s (AOT)", a->name);
    cr_assert_eq(abt_run_kernel(j, &c, oj, kj, vj, ktj, vtj), KG_OK, "%s (JIT)", a->name);
    char msg[1024];
    long xs[1] = { nx };
    cr_assert(kgt_same_bytes(oj, oa, t, nx, 1, xs, msg, sizeof msg), "%s: %s", a->name, msg);
    /* the caches (updated in place) or K_tkg, V_tkg: elements of w bytes */
    long n = o.update ? nc : nk;
    cr_assert(kgt_builds_equal(o.update ? kj : ktj, o.update ? ka : kta, n, w, msg, sizeof msg),
              "%s K: %s", a->name, msg);
    cr_assert(kgt_builds_equal(o.update ? vj : vtj, o.update ? va : vta, n, w, msg, sizeof msg),
              "%s V: %s", a->name, msg);
    free(oa), free(oj), free(ka), free(kj), free(va), free(vj);
    free(kta), free(ktj), free(vta), free(vtj);
    abt_call_free(&c);
}

Test(attention_block_tkg, jit_and_aot_are_bit_identical)
{
    cr_assert_gt(kgt_each_aot_jit_pair("attention_block_tkg", compare_builds), 0,
                 "no AOT-built spec has an attention_block_tkg kernel");
}
