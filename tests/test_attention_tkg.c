/* tests/test_attention_tkg.c: the attention_tkg family against tests/ref/attention_tkg_ref.c:
 * every shared/vectors/attention_tkg case, option sweeps on upstream-like and edge shapes
 * (s_active 1 and 7, one head, fully masked rows, contexts off every tile and chunk, odd d),
 * the fp8 KV cache, kernel names that parse back, refused problems naming their key, per-call
 * checks, and JIT vs AOT bit-identity for every spec's kernels. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "kgen/aot.h"
#include "kgen/dtype.h"
#include "kgen/kernels.h"
#include "kgen/kgen.h"
#include "ref/ref.h"
#include "util/casew.h"
#include "util/compare.h"
#include "util/jitp.h"
#include "util/tensors.h"
#include "util/vectors.h"

/* ---- one call's tensors ---------------------------------------------------------------------- */

/* The inputs of one call in fp32 (values already on the grid of their dtypes), with the shape
 * options the reference reads and the kernel's per-call n_cache. */
typedef struct call {
    attn_tkg_ref_opts o;
    long n_cache;
    int fp8; /* the KV tensors are e4m3 */
    float *q, *ka, *va, *kp, *vp, *pos, *start, *inv, *sink;
    uint8_t *mask;
    uint32_t *table;
} call;

static long heads(const attn_tkg_ref_opts *o) { return o->nkv * o->qh; }
static long n_q(const call *c) { return c->o.B * heads(&c->o) * c->o.sa * c->o.d; }
static long n_act(const call *c) { return c->o.B * c->o.nkv * c->o.sa * c->o.d; }
static long n_cache_el(const call *c)
{
    return c->n_cache * c->o.nkv * (c->o.blk ? c->o.blk : c->o.S) * c->o.d;
}
static long n_mask(const call *c)
{
    return (c->o.pos ? c->o.sa : c->o.sp) * c->o.B * heads(&c->o) * c->o.sa;
}

static void call_free(call *c)
{
    free(c->q), free(c->ka), free(c->va), free(c->kp), free(c->vp), free(c->pos);
    free(c->start), free(c->inv), free(c->sink), free(c->mask), free(c->table);
}

/* The problem string of c's kernel in dtype t. */
static void problem_of(const call *c, kg_dtype t, char *buf, size_t len)
{
    snprintf(buf, len, "attention_tkg:dtype=%s,kv_dtype=%s,d_head=%ld,q_head=%ld,n_kv=%ld,"
             "s_active=%ld,full_sprior=%ld,block_len=%ld,tp_k_prior=%s,use_pos_id=%s,"
             "sliding_window=%s,sink=%s,fuse_rope=%s,curr_sprior=%ld",
             kg_dtype_name(t), c->fp8 ? "e4m3" : kg_dtype_name(t), c->o.d, c->o.qh, c->o.nkv,
             c->o.sa, c->o.S, c->o.blk, c->o.tpk ? "true" : "false",
             c->o.pos ? "true" : "false", c->o.swa ? "true" : "false",
             c->o.sink ? "true" : "false", c->o.rope ? "true" : "false", c->o.sp);
}

/* The KV tensor x of n values as the kernel reads it (dtype t, or e4m3 codes). */
static void *encode_kv(const call *c, kg_dtype t, const float *x, long n)
{
    if (!c->fp8)
        return kgt_encode(t, x, n);
    uint8_t *e = malloc((size_t)(n > 0 ? n : 1));
    for (long i = 0; i < n; i++)
        e[i] = kg_f32_to_e4m3(x[i]);
    return e;
}

/* Runs the kernel k on c (q, out in dtype t) into out and k_out (encoded, caller-allocated);
 * returns the kernel's status. */
static int run_kernel(const kg_kernel *k, const call *c, kg_dtype t, void *out, void *k_out)
{
    void *q = kgt_encode(t, c->q, n_q(c));
    void *ka = encode_kv(c, t, c->ka, n_act(c)), *va = encode_kv(c, t, c->va, n_act(c));
    void *kp = encode_kv(c, t, c->kp, n_cache_el(c)), *vp = encode_kv(c, t, c->vp, n_cache_el(c));
    int rc = ((kg_attention_tkg_fn *)k->fn)(out, k_out, q, ka, va, kp, vp, c->mask, c->pos,
                                            c->start, c->inv, c->sink, c->table, c->o.B, c->o.sp,
                                            c->n_cache);
    free(q), free(ka), free(va), free(kp), free(vp);
    return rc;
}

/* ---- random calls against the reference ------------------------------------------------------ */

static float *randn(kg_dtype t, long n, unsigned long long seed, float scale)
{
    float *x = kgt_randn(KG_F32, n, seed);
    for (long i = 0; i < n; i++)
        x[i] = t == KG_E4M3 ? kg_e4m3_to_f32(kg_f32_to_e4m3(x[i] * scale))
                            : kgt_round(t, x[i] * scale);
    return x;
}

/* Random inputs for options o; mask density 3/4 (some rows fully masked when `holes`);
 * positions inside the context. */
static void make_call(call *c, const attn_tkg_ref_opts *o, int fp8, kg_dtype t,
                      unsigned long long seed, int holes)
{
    memset(c, 0, sizeof *c);
    c->o = *o;
    c->fp8 = fp8;
    c->n_cache = o->blk ? o->B * o->nblk + 3 : o->B + 1;
    kg_dtype kt = fp8 ? KG_E4M3 : t;
    c->q = randn(t, n_q(c), seed, 1.0f);
    c->ka = randn(kt, n_act(c), seed + 1, 1.0f);
    c->va = randn(kt, n_act(c), seed + 2, 1.0f);
    c->kp = randn(kt, n_cache_el(c), seed + 3, 1.0f);
    c->vp = randn(kt, n_cache_el(c), seed + 4, 1.0f);
    unsigned long long s = seed * 2654435761ull + 7;
    c->mask = malloc((size_t)n_mask(c));
    for (long i = 0; i < n_mask(c); i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        c->mask[i] = (s >> 33) % 4 != 0;
    }
    if (holes) /* a fully masked row: query 0 of head 0 of sequence 0 sees nothing */
        for (long k = 0; k < (o->pos ? 0 : o->sp); k++)
            c->mask[((k * o->B) * heads(o)) * o->sa] = 0;
    if (o->pos) { /* the active part: the causal triangle, as upstream's tests pass */
        for (long j = 0; j < o->sa; j++)
            for (long bh = 0; bh < o->B * heads(o); bh++)
                for (long i = 0; i < o->sa; i++)
                    c->mask[(j * o->B * heads(o) + bh) * o->sa + i] = j <= i;
    }
    c->pos = malloc(sizeof(float) * (size_t)(o->B * o->sa));
    c->start = malloc(sizeof(float) * (size_t)(o->B * o->sa));
    long prior = o->sp - o->sa;
    for (long b = 0; b < o->B; b++)
        for (long i = 0; i < o->sa; i++) {
            /* upstream's positions: ((3b + 3 Sp / 4) mod (Sp - s_a)), shared by the queries */
            long p = prior > 0 ? (3 * b + 3 * o->sp / 4) % prior : 0;
            c->pos[b * o->sa + i] = (float)(p + (o->swa ? i : 0));
            /* a window of W = sp / 3 + 1 slots, circular in the flat cache */
            long w = o->sp / 3 + 1, st = p + i - w + 1;
            st = o->blk ? (st < 0 ? 0 : st) : ((st % o->sp) + o->sp) % o->sp;
            c->start[b * o->sa + i] = (float)st;
        }
    c->inv = malloc(sizeof(float) * (size_t)(o->d / 2 + 1));
    for (long j = 0; j < o->d / 2; j++)
        c->inv[j] = powf(10000.0f, -2.0f * (float)j / (float)o->d);
    c->sink = randn(KG_F32, heads(o), seed + 5, 2.0f);
    c->table = malloc(sizeof(uint32_t) * (size_t)(o->B * (o->nblk ? o->nblk : 1)));
    for (long i = 0; i < o->B * o->nblk; i++) /* blocks shuffled: a stride through the cache */
        c->table[i] = (uint32_t)((i * 7 + 3) % c->n_cache);
}

/* The kernel on a random call of options o against the reference, at the vectors' tolerance
 * (rtol 1e-2 / atol 1e-5; fp8 3e-2 / 3e-2). */
static void check(const attn_tkg_ref_opts *o0, int fp8, kg_dtype t, int holes)
{
    attn_tkg_ref_opts o = *o0;
    o.nblk = o.blk ? o.S / o.blk : 0;
    call c;
    make_call(&c, &o, fp8, t, 1000 + (unsigned long long)(o.sp * 31 + o.d * 7 + o.sa), holes);
    char problem[512];
    problem_of(&c, t, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    long no = n_q(&c), nk = n_act(&c);
    void *out = kgt_poisoned(t, no), *k_out = o.rope ? kgt_poisoned(t, nk) : NULL;
    cr_assert_eq(run_kernel(k, &c, t, out, k_out), KG_OK, "%s refused the call", k->name);
    float *want = malloc(sizeof(float) * (size_t)no), *kwant = malloc(sizeof(float) * (size_t)nk);
    attention_tkg_ref(want, kwant, c.q, c.ka, c.va, c.kp, c.vp, c.mask, c.pos, c.start, c.inv,
                      c.sink, c.table, &o);
    char msg[1024];
    long shape[4] = { o.B, heads(&o), o.d, o.sa }, kshape[4] = { o.B, o.nkv, o.d, o.sa };
    double rtol = fp8 ? 3e-2 : 1e-2, atol = fp8 ? 3e-2 : 1e-5;
    cr_assert(kgt_close_to_ref(t, out, want, 4, shape, rtol, atol, msg, sizeof msg), "%s: out %s",
              k->name, msg);
    if (o.rope)
        cr_assert(kgt_close_to_ref(t, k_out, kwant, 4, kshape, rtol, atol, msg, sizeof msg),
                  "%s: k_out %s", k->name, msg);
    free(out), free(k_out), free(want), free(kwant);
    call_free(&c);
}

TestSuite(attention_tkg, .init = kgt_suite_init, .fini = kgt_suite_fini);

/* B, nkv, qh, sa, d, sp, S, blk, nblk, tpk, pos, swa, sink, rope */
static const attn_tkg_ref_opts BASE = { 2, 1, 2, 1, 64, 40, 48, 0, 0, 1, 0, 0, 0, 0 };

Test(attention_tkg, mask_tensor_both_k_layouts_every_dtype)
{
    for (size_t di = 0; di < KGT_FLOAT_DTYPES; di++)
        for (int tpk = 0; tpk < 2; tpk++) {
            attn_tkg_ref_opts o = BASE;
            o.tpk = tpk;
            check(&o, 0, kgt_float_dtypes[di], 1);
        }
}

Test(attention_tkg, options_one_by_one)
{
    static const struct { int pos, swa, sink, rope, blk, tpk; } OPTS[] = {
        { 1, 0, 0, 0, 0, 1 }, { 1, 1, 0, 0, 0, 0 }, { 0, 0, 1, 0, 0, 1 }, { 1, 0, 0, 1, 0, 1 },
        { 1, 0, 1, 0, 4, 1 }, { 1, 1, 1, 0, 4, 1 }, { 1, 0, 1, 1, 0, 0 }, { 0, 0, 0, 0, 8, 1 },
    };
    for (size_t i = 0; i < sizeof OPTS / sizeof OPTS[0]; i++)
        for (long sa = 1; sa <= 7; sa += 6) {
            attn_tkg_ref_opts o = BASE;
            o.pos = OPTS[i].pos, o.swa = OPTS[i].swa, o.sink = OPTS[i].sink;
            o.rope = OPTS[i].rope, o.blk = OPTS[i].blk, o.tpk = OPTS[i].tpk, o.sa = sa;
            check(&o, 0, KG_BF16, 0);
        }
}

/* Contexts off every tile (32) and chunk (512), several chunks, n_kv > 1, s_active 8, one
 * head, odd d, a fully masked row with and without a sink, the window wider than the context. */
Test(attention_tkg, edge_shapes)
{
    static const long SHAPES[][6] = { /* nkv, qh, sa, d, sp, S */
        { 1, 1, 1, 64, 1, 1 },   { 1, 1, 1, 1, 3, 5 },     { 3, 2, 2, 17, 33, 33 },
        { 2, 4, 8, 128, 1100, 1200 }, { 8, 4, 1, 128, 1024, 1024 }, { 1, 3, 7, 64, 545, 600 },
    };
    for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++)
        for (int sink = 0; sink < 2; sink++) {
            attn_tkg_ref_opts o = BASE;
            o.nkv = SHAPES[i][0], o.qh = SHAPES[i][1], o.sa = SHAPES[i][2];
            o.d = SHAPES[i][3], o.sp = SHAPES[i][4], o.S = SHAPES[i][5], o.sink = sink;
            if (o.sp < o.sa)
                continue;
            check(&o, 0, KG_F32, 1);
            o.pos = 1, o.swa = 1, o.tpk = 0;
            check(&o, 0, KG_BF16, 0);
        }
}

/* The fp8 e4m3 KV cache (q bf16 or fp16), flat and in blocks. */
Test(attention_tkg, fp8_kv_cache)
{
    for (int blk = 0; blk <= 16; blk += 16) {
        attn_tkg_ref_opts o = BASE;
        o.sa = 7, o.qh = 2, o.d = 128, o.sp = 256, o.S = 256, o.blk = blk, o.pos = 1;
        check(&o, 1, KG_BF16, 0);
        check(&o, 1, KG_F16, 0);
    }
}

/* Llama-3-8B decode: 32 q / 8 KV heads in one call, d 128, s_active 1, context 1024. */
Test(attention_tkg, llama3_8b_decode)
{
    attn_tkg_ref_opts o = { 1, 8, 4, 1, 128, 1024, 8192, 0, 0, 1, 1, 0, 0, 0 };
    check(&o, 0, KG_BF16, 0);
}

/* ---- per-call sizes and bad problems --------------------------------------------------------- */

Test(attention_tkg, per_call_checks)
{
    attn_tkg_ref_opts o = BASE;
    o.blk = 4, o.nblk = o.S / 4, o.pos = 1;
    call c;
    make_call(&c, &o, 0, KG_F32, 5, 0);
    char problem[512];
    problem_of(&c, KG_F32, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    float *out = malloc(sizeof(float) * (size_t)n_q(&c));
    cr_assert_eq(run_kernel(k, &c, KG_F32, out, NULL), KG_OK);
    c.o.sp = o.S + 1;
    cr_assert_eq(run_kernel(k, &c, KG_F32, out, NULL), KG_EARG, "curr_sprior > full_sprior");
    c.o.sp = 0;
    cr_assert_eq(run_kernel(k, &c, KG_F32, out, NULL), KG_EARG, "curr_sprior < s_active");
    c.o.sp = o.sp;
    c.table[1] = (uint32_t)c.n_cache;
    cr_assert_eq(run_kernel(k, &c, KG_F32, out, NULL), KG_EARG, "a block past the cache");
    c.table[1] = 0;
    c.o.B = -1;
    cr_assert_eq(run_kernel(k, &c, KG_F32, out, NULL), KG_EARG, "B < 0");
    c.o.B = 0;
    cr_assert_eq(run_kernel(k, &c, KG_F32, out, NULL), KG_OK, "B = 0 is an empty call");
    c.o.B = o.B;
    free(c.pos), c.pos = NULL;
    cr_assert_eq(run_kernel(k, &c, KG_F32, out, NULL), KG_EARG, "no rope_pos_ids");
    free(out);
    call_free(&c);
}

Test(attention_tkg, bad_problems_name_the_key)
{
    static const struct { const char *problem, *want; } bad[] = {
        { "attention_tkg:kv_dtype=e5m2", "key 'kv_dtype'" },
        { "attention_tkg:dtype=bf16,kv_dtype=fp16", "key 'kv_dtype'" },
        { "attention_tkg:dtype=f32,kv_dtype=e4m3", "key 'kv_dtype'" },
        { "attention_tkg:kv_dtype=e4m3,fuse_rope=true", "key 'fuse_rope'" },
        { "attention_tkg:fuse_rope=true,d_head=63", "key 'fuse_rope'" },
        { "attention_tkg:sliding_window=true", "key 'sliding_window'" },
        { "attention_tkg:block_len=16,tp_k_prior=false", "key 'tp_k_prior'" },
        { "attention_tkg:block_len=48,full_sprior=100", "key 'block_len'" },
        { "attention_tkg:d_head=129", "key 'd_head'" },
        { "attention_tkg:s_active=9", "key 's_active'" },
        { "attention_tkg:full_sprior=64,curr_sprior=65", "key 'curr_sprior'" },
        { "attention_tkg:full_sprior=4,s_active=5", "key 'curr_sprior'" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        kgt_problem_rejected(bad[i].problem, bad[i].want);
}

Test(attention_tkg, names_parse_back_and_are_unique)
{
    static const char *const P[] = {
        "attention_tkg:dtype=bf16", "attention_tkg:dtype=f32,tp_k_prior=false",
        "attention_tkg:kv_dtype=e4m3,use_pos_id=true", "attention_tkg:use_pos_id=true",
        "attention_tkg:use_pos_id=true,sliding_window=true", "attention_tkg:sink=true",
        "attention_tkg:fuse_rope=true", "attention_tkg:block_len=16", "attention_tkg:n_kv=8",
        "attention_tkg:s_active=7,q_head=2,d_head=64,full_sprior=1024",
    };
    char names[10][256];
    for (size_t i = 0; i < sizeof P / sizeof P[0]; i++) {
        kgt_name_parses_back(P[i], names[i], sizeof names[0]);
        for (size_t j = 0; j < i; j++)
            cr_assert_str_neq(names[i], names[j], "two problems share the name %s", names[i]);
    }
}

/* ---- shared/vectors/attention_tkg ------------------------------------------------------------ */

static long opt_long(kgt_case *c, const char *key)
{
    double v;
    cr_assert(kgt_case_opt_num(c, key, &v), "%s: option %s", kgt_case_name(c), key);
    return (long)v;
}

static int opt_bool(kgt_case *c, const char *key)
{
    int v;
    cr_assert(kgt_case_opt_bool(c, key, &v), "%s: option %s", kgt_case_name(c), key);
    return v;
}

/* An input's values converted to `want` (kgt_case_as: positions or block ids stored as any
 * integer or float dtype, masks as u8 or bool), malloc'd; NULL if the case has no such input. */
static void *input_copy(kgt_case *c, const char *name, kg_dtype want)
{
    if (!kgt_case_input_dtype(c, name))
        return NULL;
    void *p = kgt_case_as(c, name, want);
    cr_assert_not_null(p, "%s: %s", kgt_case_name(c), kgt_case_error(c));
    return p;
}

/* Upstream's layouts (attention_tkg.md), one KV head per call (n_kv = 1). Every option is
 * mapped or refused by name: the hardware ones (SBUF placement, matmul striding, flash tiling
 * of the prior, SBUF management, debug tensors) have no effect on the values. */
static void run_vector(kgt_case *vc)
{
    const char *name = kgt_case_name(vc);
    call c;
    memset(&c, 0, sizeof c);
    attn_tkg_ref_opts *o = &c.o;
    o->B = opt_long(vc, "bs"), o->qh = opt_long(vc, "q_head"), o->sa = opt_long(vc, "s_active");
    o->sp = opt_long(vc, "curr_sprior"), o->S = opt_long(vc, "full_sprior");
    o->d = opt_long(vc, "d_head"), o->blk = opt_long(vc, "block_len"), o->nkv = 1;
    o->nblk = o->blk ? o->S / o->blk : 0;
    o->tpk = opt_bool(vc, "tp_k_prior"), o->pos = opt_bool(vc, "use_pos_id");
    o->rope = opt_bool(vc, "fuse_rope");
    static const char *const hw[] = { "strided_mm1", "use_gpsimd_sb2sb", "qk_in_sb",
                                      "k_out_in_sb", "out_in_sb", "enable_fa_s_prior_tiling",
                                      "sbm", "DBG_TENSORS" };
    for (size_t i = 0; i < sizeof hw / sizeof hw[0]; i++)
        kgt_case_opt_has(vc, hw[i]);
    const char *qdt = kgt_case_input_dtype(vc, "q"), *kdt = kgt_case_input_dtype(vc, "k_prior");
    cr_assert(qdt && kdt, "%s: no q / k_prior", name);
    c.fp8 = kgt_case_dtype(vc, "k_prior") == KG_E4M3;
    static const char *const fl[] = { "q", "k_active", "v_active", "k_prior", "v_prior" };
    int t = kgt_case_float_dtype(vc, fl, c.fp8 ? 1 : 5);
    cr_assert(t == KG_BF16 || t == KG_F32, "%s: q / KV dtypes %s, %s: %s", name, qdt, kdt,
              kgt_case_error(vc));
    for (int i = 1; c.fp8 && i < 5; i++)
        cr_assert_eq(kgt_case_dtype(vc, fl[i]), KG_E4M3, "%s: fp8 KV: %s is %s", name, fl[i],
                     kgt_case_input_dtype(vc, fl[i]));
    c.q = input_copy(vc, "q", KG_F32), c.ka = input_copy(vc, "k_active", KG_F32);
    c.va = input_copy(vc, "v_active", KG_F32), c.kp = input_copy(vc, "k_prior", KG_F32);
    c.vp = input_copy(vc, "v_prior", KG_F32), c.mask = input_copy(vc, "mask", KG_U8);
    c.pos = input_copy(vc, "rope_pos_ids", KG_F32);
    c.start = input_copy(vc, "start_pos_ids", KG_F32);
    c.inv = input_copy(vc, "inv_freqs", KG_F32), c.sink = input_copy(vc, "sink", KG_F32);
    c.table = input_copy(vc, "active_blocks_table", KG_U32);
    o->swa = c.start != NULL, o->sink = c.sink != NULL;
    cr_assert(c.q && c.ka && c.va && c.kp && c.vp && c.mask, "%s: inputs", name);
    c.n_cache = kgt_case_input(vc, "k_prior")->shape[0];
    cr_assert_eq(n_mask(&c), kg_npy_count(kgt_case_input(vc, "mask")), "%s: mask shape", name);
    cr_assert_eq(n_cache_el(&c), kg_npy_count(kgt_case_input(vc, "k_prior")), "%s: cache shape",
                 name);
    char problem[512];
    problem_of(&c, (kg_dtype)t, problem, sizeof problem);
    const kg_kernel *k = kgt_jit(problem);
    void *out = kgt_poisoned((kg_dtype)t, n_q(&c));
    void *k_out = o->rope ? kgt_poisoned((kg_dtype)t, n_act(&c)) : NULL;
    cr_assert_eq(run_kernel(k, &c, (kg_dtype)t, out, k_out), KG_OK, "%s: %s refused", name,
                 k->name);
    char msg[1024];
    int ok = kgt_close_to_case(vc, "out_out", (kg_dtype)t, out, msg, sizeof msg);
    cr_assert(ok >= 0, "%s: no tolerance for out_out", name);
    cr_assert(ok, "vector %s (%s): out %s", name, k->name, msg);
    if (o->rope) {
        ok = kgt_close_to_case(vc, "out_k_out", (kg_dtype)t, k_out, msg, sizeof msg);
        cr_assert(ok, "vector %s (%s): k_out %s", name, k->name, msg);
    }
    free(out), free(k_out);
    call_free(&c);
}

Test(attention_tkg, shared_vectors) { kgt_each_case("attention_tkg", run_vector); }

/* An integer tensor of the vectors' kind stored as int32 (the sample stores u32 / fp32). */
static void add_i32(kgt_casew *w, const char *name, const int32_t *v, int rank, const long *shape)
{
    kg_npy a = { .dtype = KG_I32, .rank = rank, .data = (void *)v };
    memcpy(a.shape, shape, (size_t)rank * sizeof *shape);
    kgt_casew_input_npy(w, name, "i32", &a);
}

/* A synthetic case in the vector format for what the shared sample lacks: an fp8 (e4m3) KV
 * cache in blocks, sliding window with start_pos_ids, a sink, and the positions and the block
 * table stored as int32 (the sample stores them as fp32 and u32); expected from tests/ref. */
Test(attention_tkg, synthetic_vector_fp8_block_swa_int32_positions)
{
    attn_tkg_ref_opts o = { 2, 1, 2, 3, 64, 32, 32, 4, 8, 1, 1, 1, 1, 0 };
    call c;
    make_call(&c, &o, 1, KG_BF16, 4242, 0);
    long H = heads(&o), no = n_q(&c);
    float *want = malloc(sizeof(float) * (size_t)no);
    attention_tkg_ref(want, NULL, c.q, c.ka, c.va, c.kp, c.vp, c.mask, c.pos, c.start, c.inv,
                      c.sink, c.table, &o);
    kgt_casew *w = kgt_casew_new("attention_tkg", "fp8_blockkv_swa_sink_i32");
    long qs[4] = { o.B, H, o.sa, o.d }, as[4] = { o.B, 1, o.sa, o.d };
    long cs[3] = { c.n_cache, o.blk, o.d };
    long ps[2] = { o.B, o.sa }, ts[2] = { o.B, o.nblk }, ss[2] = { H, 1 };
    kgt_casew_input(w, "q", "bf16", c.q, 4, qs);
    kgt_casew_input(w, "k_active", "fp8_e4m3", c.ka, 4, as);
    kgt_casew_input(w, "v_active", "fp8_e4m3", c.va, 4, as);
    kgt_casew_input(w, "k_prior", "fp8_e4m3", c.kp, 3, cs);
    kgt_casew_input(w, "v_prior", "fp8_e4m3", c.vp, 3, cs);
    kg_npy m = { .dtype = KG_U8, .rank = 4, .shape = { o.sa, o.B, H, o.sa }, .data = c.mask };
    kgt_casew_input_npy(w, "mask", "u8", &m);
    int32_t pos[64], start[64], table[64];
    for (long i = 0; i < o.B * o.sa; i++)
        pos[i] = (int32_t)c.pos[i], start[i] = (int32_t)c.start[i];
    for (long i = 0; i < o.B * o.nblk; i++)
        table[i] = (int32_t)c.table[i];
    add_i32(w, "rope_pos_ids", pos, 2, ps);
    add_i32(w, "start_pos_ids", start, 2, ps);
    add_i32(w, "active_blocks_table", table, 2, ts);
    kgt_casew_input(w, "sink", "f32", c.sink, 2, ss);
    kgt_casew_opt_num(w, "bs", (double)o.B), kgt_casew_opt_num(w, "q_head", (double)o.qh);
    kgt_casew_opt_num(w, "s_active", (double)o.sa);
    kgt_casew_opt_num(w, "curr_sprior", (double)o.sp);
    kgt_casew_opt_num(w, "full_sprior", (double)o.S), kgt_casew_opt_num(w, "d_head", (double)o.d);
    kgt_casew_opt_num(w, "block_len", (double)o.blk);
    kgt_casew_opt_bool(w, "tp_k_prior", 1), kgt_casew_opt_bool(w, "use_pos_id", 1);
    kgt_casew_opt_bool(w, "fuse_rope", 0), kgt_casew_opt_bool(w, "qk_in_sb", 1);
    long os[4] = { o.B, H, o.d, o.sa };
    kgt_casew_output(w, "out_out", want, 4, os, 3e-2, 3e-2);
    kgt_run_case(kgt_casew_finish(w), run_vector);
    kgt_casew_free(w);
    free(want);
    call_free(&c);
}

/* ---- JIT vs AOT ------------------------------------------------------------------------------ */

/* Both builds on one random call at the kernel's own keys (B = 2, a context of 600 slots or the
 * cache's size): the same bytes out (and k_out). */
static void compare_builds(const kg_kernel *a, const kg_kernel *j)
{
    attn_tkg_ref_opts o;
    memset(&o, 0, sizeof o);
    char dt[16], kdt[16], b[5][8];
    long v[7];
    static const char *const L[7] = { "d_head", "q_head", "n_kv", "s_active", "full_sprior",
                                      "block_len", "curr_sprior" };
    for (int i = 0; i < 7; i++)
        cr_assert(kg_problem_long(a->problem, L[i], &v[i]), "%s: %s", a->problem, L[i]);
    static const char *const BK[5] = { "tp_k_prior", "use_pos_id", "sliding_window", "sink",
                                       "fuse_rope" };
    for (int i = 0; i < 5; i++)
        cr_assert(kg_problem_str(a->problem, BK[i], b[i], sizeof b[i]), "%s", a->problem);
    cr_assert(kg_problem_str(a->problem, "dtype", dt, sizeof dt) &&
              kg_problem_str(a->problem, "kv_dtype", kdt, sizeof kdt), "%s", a->problem);
    o.d = v[0], o.qh = v[1], o.nkv = v[2], o.sa = v[3], o.S = v[4], o.blk = v[5];
    o.sp = v[4] < 600 ? v[4] : 600, o.B = 2, o.nblk = o.blk ? o.S / o.blk : 0;
    o.tpk = !strcmp(b[0], "true"), o.pos = !strcmp(b[1], "true"), o.swa = !strcmp(b[2], "true");
    o.sink = !strcmp(b[3], "true"), o.rope = !strcmp(b[4], "true");
    kg_dtype t = (kg_dtype)kg_dtype_from_name(dt);
    call c;
    make_call(&c, &o, !strcmp(kdt, "e4m3"), t, 77, 1);
    long no = n_q(&c), nk = n_act(&c);
    void *oa = kgt_build_output(t, no, KGT_AOT), *oj = kgt_build_output(t, no, KGT_JIT);
    void *ka = kgt_build_output(t, nk, KGT_AOT), *kj = kgt_build_output(t, nk, KGT_JIT);
    cr_assert_eq(run_kernel(a, &c, t, oa, ka), KG_OK, "%s (AOT)", a->name);
    cr_assert_eq(run_kernel(j, &c, t, oj, kj), KG_OK, "%s (JIT)", a->name);
    long shape[4] = { o.B, heads(&o), o.d, o.sa }, kshape[4] = { o.B, o.nkv, o.d, o.sa };
    char msg[1024];
    cr_assert(kgt_same_bytes(oj, oa, t, no, 4, shape, msg, sizeof msg), "%s: %s", a->name, msg);
    if (o.rope)
        cr_assert(kgt_same_bytes(kj, ka, t, nk, 4, kshape, msg, sizeof msg), "%s k_out: %s",
                  a->name, msg);
    free(oa), free(oj), free(ka), free(kj);
    call_free(&c);
}

Test(attention_tkg, jit_and_aot_are_bit_identical)
{
    cr_assert_gt(kgt_each_aot_jit_pair("attention_tkg", compare_builds), 0,
                 "no AOT-built spec has an attention_tkg kernel");
}
