/* tests/util/abt_call.h: one call of an attention_block_tkg kernel for its tests (the reference
 * sweeps, the vector adapter, the KVDP groups): the inputs in fp32 on their dtypes' grids, the
 * problem string of the kernel they fit, random calls, and the kernel run on them. One copy, so
 * the three test files cannot drift apart on what a call is. */
#ifndef KGT_ABT_CALL_H
#define KGT_ABT_CALL_H

#include <stddef.h>
#include <stdint.h>

#include "kgen/dtype.h"
#include "kgen/kgen.h"
#include "ref/ref.h"

/* The inputs of one call in fp32 (on the grid of their dtypes), the options the reference reads
 * and the kernel's dtype. */
typedef struct abt_call {
    attn_block_ref_opts o;
    kg_dtype t;            /* X's dtype; the caches are t, or e4m3 codes with o.fp8 */
    float kv_scale[2];       /* k_scale, v_scale */
    float w_qkv[3], s_qkv, w_out, s_out; /* STATIC dequant scales */
    float *X, *gamma, *W_qkv, *bias_qkv, *gq_pre, *gk_pre, *gq_post, *gk_post, *cos, *sin;
    float *K_cache, *V_cache, *sink, *W_out, *bias_out;
    uint8_t *mask;
    uint32_t *idx, *table;
} abt_call;

/* Sizes: tokens (B * S), elements of a cache, of X_out, and W_qkv's columns. */
long abt_n_tok(const abt_call *c);
long abt_n_cache_el(const abt_call *c);
long abt_n_xout(const abt_call *c);
long abt_n_qkv(const abt_call *c);

void abt_call_free(abt_call *c);

/* ---- the KV tensors: dtype t, or e4m3 codes -------------------------------------------------- */

/* Bytes of one KV element. */
size_t abt_kv_size(const abt_call *c);
/* n values x (on the caches' grid) as the kernel reads them; malloc'd. */
void *abt_kv_encode(const abt_call *c, const float *x, long n);
/* n KV elements at p as fp32; malloc'd. */
float *abt_kv_decode(const abt_call *c, const void *p, long n);
/* An output of n KV elements that starts as NaN in either format (0xff bytes). */
void *abt_kv_poisoned(const abt_call *c, long n);
/* The kernel's KV output got (n elements) against the reference's want: the vectors'
 * comparator; fp8 at rtol 0.07 and atol 1 (an e4m3 step at |x| < 16: the two round K * k_scale
 * computed in different orders). */
int abt_kv_close(const abt_call *c, const void *got, float *want, long n, char *msg, size_t len);

/* ---- the kernel ------------------------------------------------------------------------------ */

/* The problem string of c's kernel. */
void abt_problem_of(const abt_call *c, char *buf, size_t len);
/* Runs kernel k on c: X_out into out, the caches updated in place into kc, vc (encoded,
 * caller-allocated copies) or K_tkg, V_tkg into kt, vt. Returns the kernel's status. */
int abt_run_kernel(const kg_kernel *k, const abt_call *c, void *out, void *kc, void *vc,
                   void *kt, void *vt);

/* ---- random calls ---------------------------------------------------------------------------- */

/* n values scale * N(0, 1) rounded to t; malloc'd. */
float *abt_randn(kg_dtype t, long n, unsigned long long seed, float scale);
/* Random inputs for options o in dtype t: sequence b has cache length len_b = S_ctx - S - b
 * (at least 0), its mask attends slots < len_b and the causal tail; a few random holes. */
void abt_make_call(abt_call *c, const attn_block_ref_opts *o, kg_dtype t,
                   unsigned long long seed);
/* The small options every test starts from: B 3, S_tkg 2, H 96, 3 heads of 32, a window of 40
 * in 48 slots, contiguous RoPE, the cache updated, W_out. */
attn_block_ref_opts abt_base_opts(void);

#endif
