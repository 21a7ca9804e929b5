/* prim_attn.c: the scalar references of attention's tile-level primitives (kgen/abi.h):
 * kgp_tile_fma_f32, o [m, d] (+)= p [m, n] @ v [n, d] on row-major tiles, each element one
 * fmaf chain over n ascending (from o, or from 0 with acc == 0); and decode's passes over keys
 * and values in their stored format, kgp_qk_* (scores in a fixed eight-lane order) and
 * kgp_pv_* (fmaf chains over the value rows). The orders are fixed so every version gives the
 * same bits. */
#include <math.h>

#include "kgen/dtype.h"
#include "prim.h"

void kgp_tile_fma_f32__scalar(float *o, long ldo, int acc, const float *p, long ldp, long m,
                              const float *v, long ldv, long n, long d)
{
    for (long i = 0; i < m; i++) {
        if (!acc)
            for (long t = 0; t < d; t++)
                o[i * ldo + t] = 0.0f;
        for (long j = 0; j < n; j++)
            for (long t = 0; t < d; t++)
                o[i * ldo + t] = fmaf(p[i * ldp + j], v[j * ldv + t], o[i * ldo + t]);
    }
}

static float widen_f32(const float *k, long t) { return k[t]; }
static float widen_bf16(const kg_u16 *k, long t) { return kg_bf16_to_f32(k[t]); }
static float widen_f16(const kg_u16 *k, long t) { return kg_f16_to_f32(k[t]); }
static float widen_e4m3(const kg_u8 *k, long t) { return kg_e4m3_to_f32(k[t]); }

/* The score pass in the order kgen/abi.h states (kgp_qk_f32): eight lane chains, their fixed
 * pairwise sum, then the tail. */
#define QK_BODY(WIDEN)                                                                          \
    for (long i = 0; i < m; i++)                                                                \
        for (long j = 0; j < n; j++) {                                                          \
            const float *qi = q + i * ldq;                                                      \
            float a[8] = { 0 };                                                                 \
            long d8 = d / 8 * 8, t = 0;                                                         \
            for (; t < d8; t++)                                                                 \
                a[t % 8] = fmaf(qi[t], WIDEN(k + j * ldk, t), a[t % 8]);                        \
            float r = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));        \
            for (; t < d; t++)                                                                  \
                r = fmaf(qi[t], WIDEN(k + j * ldk, t), r);                                      \
            s[i * lds + j] = r;                                                                 \
        }

void kgp_qk_f32__scalar(float *s, long lds, const float *q, long ldq, long m, const float *k,
                        long ldk, long n, long d)
{
    QK_BODY(widen_f32)
}

void kgp_qk_bf16__scalar(float *s, long lds, const float *q, long ldq, long m, const kg_u16 *k,
                         long ldk, long n, long d)
{
    QK_BODY(widen_bf16)
}

void kgp_qk_f16__scalar(float *s, long lds, const float *q, long ldq, long m, const kg_u16 *k,
                        long ldk, long n, long d)
{
    QK_BODY(widen_f16)
}

void kgp_qk_e4m3__scalar(float *s, long lds, const float *q, long ldq, long m, const kg_u8 *k,
                         long ldk, long n, long d)
{
    QK_BODY(widen_e4m3)
}

/* The value pass: kgp_axpy_rows_f32's chains on widened rows. */
#define PV_BODY(WIDEN)                                                                          \
    for (long i = 0; i < m; i++)                                                                \
        for (long j = 0; j < n; j++)                                                            \
            for (long t = 0; t < d; t++)                                                        \
                o[i * ldo + t] = fmaf(p[i * ldp + j], WIDEN(v + j * ldv, t), o[i * ldo + t]);

void kgp_pv_bf16__scalar(float *o, long ldo, const float *p, long ldp, long m, const kg_u16 *v,
                         long ldv, long n, long d)
{
    PV_BODY(widen_bf16)
}

void kgp_pv_f16__scalar(float *o, long ldo, const float *p, long ldp, long m, const kg_u16 *v,
                        long ldv, long n, long d)
{
    PV_BODY(widen_f16)
}

void kgp_pv_e4m3__scalar(float *o, long ldo, const float *p, long ldp, long m, const kg_u8 *v,
                         long ldv, long n, long d)
{
    PV_BODY(widen_e4m3)
}
