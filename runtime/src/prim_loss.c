/* prim_loss.c: the scalar references of the training kernels' row primitives (kgen/abi.h,
 * KGP_LIST_LOSS): an online log-sum-exp step (lse_*), cross entropy's gradient rows
 * (ce_grad_*) and one channel of a depthwise conv1d (dwconv_f32). Plain loops in the order the
 * ABI comment gives; the SIMD versions (prim_simd_body.h) are tested against these. */
#include <math.h>

#include "kgen/abi.h"
#include "kgen/dtype.h"
#include "prim.h"

/* The online step over values VAL(i), i < n: the row's max, then its left-to-right sum of
 * kg_exp(v - m') on top of the old sum rescaled to m'. NaN is skipped by the max (v > mx is
 * false) and reaches d through the sum; a row of -inf (and NaN) leaves m and d unless a NaN. */
#define LSE_BODY(VAL)                                                                         \
    float m = md[0], mx = m;                                                                  \
    for (long i = 0; i < n; i++)                                                              \
        if (VAL(i) > mx)                                                                      \
            mx = VAL(i);                                                                      \
    if (mx == -INFINITY) {                                                                    \
        for (long i = 0; i < n; i++)                                                          \
            if (VAL(i) != VAL(i))                                                             \
                md[1] = VAL(i);                                                               \
        return;                                                                               \
    }                                                                                         \
    float d = md[1] * kgr_exp_f32(m - mx);                                                    \
    for (long i = 0; i < n; i++)                                                              \
        d += kgr_exp_f32(VAL(i) - mx);                                                        \
    md[0] = mx;                                                                               \
    md[1] = d;

#define VAL_F32(i) (x[i])
#define VAL_BF16(i) kg_bf16_to_f32(x[i])

void kgp_lse_f32__scalar(float *md, const float *x, long n)
{
    LSE_BODY(VAL_F32)
}

void kgp_lse_bf16__scalar(float *md, const kg_u16 *x, long n)
{
    LSE_BODY(VAL_BF16)
}

void kgp_ce_grad_f32__scalar(float *g, const float *x, float lse, float s, long n)
{
    for (long i = 0; i < n; i++)
        g[i] = kgr_exp_f32(x[i] - lse) * s;
}

/* bf16 arithmetic: each operation's result rounded to bf16 (the exp, then the scale). */
void kgp_ce_grad_bf16__scalar(kg_u16 *g, const kg_u16 *x, float lse, float s, long n)
{
    for (long i = 0; i < n; i++) {
        float p = kg_bf16_to_f32(kg_f32_to_bf16(kgr_exp_f32(kg_bf16_to_f32(x[i]) - lse)));
        g[i] = kg_f32_to_bf16(p * s);
    }
}

void kgp_dwconv_f32__scalar(float *y, const float *x, long ldp, const float *f, long S,
                            long stride, long Q)
{
    for (long q = 0; q < Q; q++) {
        float a = 0.0f;
        for (long s = 0; s < S; s++)
            a = fmaf(f[s], x[(s % stride) * ldp + s / stride + q], a);
        y[q] = a;
    }
}
