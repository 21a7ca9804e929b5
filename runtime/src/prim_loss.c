/* prim_loss.c: the scalar references of the training kernels' row primitives (kgen/abi.h,
 * KGP_LIST_LOSS): an online log-sum-exp step (lse_*), cross entropy's gradient rows
 * (ce_grad_*) and one channel of a depthwise conv1d (dwconv_f32), and their exponential
 * (kgr_exp2_poly). Plain loops in the order the ABI comment gives; the SIMD versions
 * (prim_simd_loss_body.h) are tested against these. */
#include <math.h>

#include "kgen/abi.h"
#include "kgen/dtype.h"
#include "prim.h"

static const float EXP2_D3[3] = KGR_EXP2_D3, EXP2_D5[5] = KGR_EXP2_D5;

/* 2^y by prim.h's polynomial: y clamped (NaN kept), n = floor(y), f = y - n (exact), p(f) by
 * fmaf steps from the highest coefficient, times 2^n (ldexpf: one rounding, into the
 * subnormals or to inf). Every step is one IEEE operation, so the SIMD versions (vfrac,
 * vldexp) give the same bits. */
float kgr_exp2_poly(float y, const float *c, int deg)
{
    if (y != y)
        return y;
    y = y < -KGR_EXP2_CLAMP ? -KGR_EXP2_CLAMP : y > KGR_EXP2_CLAMP ? KGR_EXP2_CLAMP : y;
    float n = floorf(y), f = y - n, p = c[deg - 1];
    for (int i = deg - 2; i >= 0; i--)
        p = fmaf(p, f, c[i]);
    return ldexpf(fmaf(p, f, 1.0f), (int)n);
}

/* The online step over values VAL(i), i < n: the row's max, then its left-to-right sum of
 * e(v - m') = 2^((v - m') log2 e) (kgr_exp2_poly of degree DEG; exactly 1 at the max) on top
 * of the old sum rescaled to m'. NaN is skipped by the max (v > mx is false) and reaches d
 * through the sum; a row of -inf (and NaN) leaves m and d unless a NaN. */
#define LSE_BODY(VAL, C, DEG)                                                                 \
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
    float d = md[1] * kgr_exp2_poly((m - mx) * KGR_LOG2E, C, DEG);                            \
    for (long i = 0; i < n; i++)                                                              \
        d += kgr_exp2_poly((VAL(i) - mx) * KGR_LOG2E, C, DEG);                                \
    md[0] = mx;                                                                               \
    md[1] = d;

#define VAL_F32(i) (x[i])
#define VAL_BF16(i) kg_bf16_to_f32(x[i])

void kgp_lse_f32__scalar(float *md, const float *x, long n)
{
    LSE_BODY(VAL_F32, EXP2_D5, 5)
}

/* bf16 rows: the degree-3 exponential, its error far below the bf16 rounding of the state */
void kgp_lse_bf16__scalar(float *md, const kg_u16 *x, long n)
{
    LSE_BODY(VAL_BF16, EXP2_D3, 3)
}

/* e^(x - lse) = 2^y, y = fmaf(x, log2 e, nl), nl = -(lse log2 e) */
void kgp_ce_grad_f32__scalar(float *g, const float *x, float lse, float s, long n)
{
    float nl = -(lse * KGR_LOG2E);
    for (long i = 0; i < n; i++)
        g[i] = kgr_exp2_poly(fmaf(x[i], KGR_LOG2E, nl), EXP2_D5, 5) * s;
}

/* bf16 arithmetic: each operation's result rounded to bf16 (the exp, then the scale). */
void kgp_ce_grad_bf16__scalar(kg_u16 *g, const kg_u16 *x, float lse, float s, long n)
{
    float nl = -(lse * KGR_LOG2E);
    for (long i = 0; i < n; i++) {
        float e = kgr_exp2_poly(fmaf(kg_bf16_to_f32(x[i]), KGR_LOG2E, nl), EXP2_D3, 3);
        g[i] = kg_f32_to_bf16(kg_bf16_to_f32(kg_f32_to_bf16(e)) * s);
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

void kgp_dwconv_bf16__scalar(kg_u16 *y, const kg_u16 *x, long w, const float *f, long S, long pl,
                             long Q)
{
    for (long q = 0; q < Q; q++) {
        float a = 0.0f;
        for (long s = 0; s < S; s++) {
            long j = q + s - pl; /* xp[q + s] is x[j] inside the row, else a padding zero */
            a = fmaf(f[s], j >= 0 && j < w ? kg_bf16_to_f32(x[j]) : 0.0f, a);
        }
        y[q] = kg_f32_to_bf16(a);
    }
}
