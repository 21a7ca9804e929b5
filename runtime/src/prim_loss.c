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

/* ce_exp(x, nl) = e^(x - lse) with nl = -(lse * log2 e) (kgen/abi.h ce_grad_f32): y = fmaf(x,
 * log2 e, nl) clamped to [-126, 127] (NaN kept), n = y rounded to an integer by the 1.5 * 2^23
 * shift, f = y - n (exact, |f| <= 1/2), 2^f by an fmaf chain over its Taylor series to f^6,
 * times 2^n (ldexpf: n >= -126, so one rounding at most, into the subnormals). Every step is
 * one IEEE operation, so the SIMD versions give the same bits. */
#define CE_SHIFT 0x1.8p23f
static const float CE_P[7] = { 1.5403530393381609e-4f, 1.3333558146428443e-3f,
                               9.6181291076284772e-3f, 5.5504108664821580e-2f,
                               2.4022650695910071e-1f, 6.9314718055994531e-1f, 1.0f };

static float ce_exp(float x, float nl)
{
    float y = fmaf(x, KGR_LOG2E, nl);
    if (y != y)
        return y;
    y = y < -126.0f ? -126.0f : y > 127.0f ? 127.0f : y;
    float k = (y + CE_SHIFT) - CE_SHIFT, f = y - k;
    float p = CE_P[0];
    for (int i = 1; i < 7; i++)
        p = fmaf(p, f, CE_P[i]);
    return ldexpf(p, (int)k);
}

void kgp_ce_grad_f32__scalar(float *g, const float *x, float lse, float s, long n)
{
    float nl = -(lse * KGR_LOG2E);
    for (long i = 0; i < n; i++)
        g[i] = ce_exp(x[i], nl) * s;
}

/* bf16 arithmetic: each operation's result rounded to bf16 (the exp, then the scale). */
void kgp_ce_grad_bf16__scalar(kg_u16 *g, const kg_u16 *x, float lse, float s, long n)
{
    float nl = -(lse * KGR_LOG2E);
    for (long i = 0; i < n; i++) {
        float p = kg_bf16_to_f32(kg_f32_to_bf16(ce_exp(kg_bf16_to_f32(x[i]), nl)));
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
