/* tests/util/tensors.c: bf16 / fp16 / f32 tensors for the kernel tests, through the runtime's
 * one-value encoders (kgen/dtype.h), and the comparisons of encoded outputs built on compare.c. */
#include "util/tensors.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/compare.h"
#include "util/jitp.h"

const kg_dtype kgt_float_dtypes[KGT_FLOAT_DTYPES] = { KG_BF16, KG_F16, KG_F32 };

size_t kgt_dtype_size(kg_dtype t) { return t == KG_F32 ? 4 : 2; }

/* ---- values ---------------------------------------------------------------------------------- */

float kgt_round_bf16(float x) { return kg_bf16_to_f32(kg_f32_to_bf16(x)); }
float kgt_round_f16(float x) { return kg_f16_to_f32(kg_f32_to_f16(x)); }

float kgt_round(kg_dtype t, float x)
{
    return t == KG_BF16 ? kgt_round_bf16(x) : t == KG_F16 ? kgt_round_f16(x) : x;
}

float *kgt_randn(kg_dtype t, long n, unsigned long long seed)
{
    float *x = malloc((size_t)(n ? n : 1) * sizeof *x);
    for (long i = 0; i < n; i++)
        x[i] = kgt_round(t, kgt_normal(&seed));
    return x;
}

/* ---- buffers --------------------------------------------------------------------------------- */

void *kgt_encode(kg_dtype t, const float *x, long n)
{
    /* a negative count (a test of refused sizes) still gets one element, never a huge size */
    void *p = malloc((size_t)(n > 0 ? n : 1) * kgt_dtype_size(t));
    for (long i = 0; i < n; i++) {
        if (t == KG_F32)
            ((float *)p)[i] = x[i];
        else
            ((uint16_t *)p)[i] = t == KG_BF16 ? kg_f32_to_bf16(x[i]) : kg_f32_to_f16(x[i]);
    }
    return p;
}

float *kgt_decode(kg_dtype t, const void *p, long n)
{
    float *y = malloc((size_t)(n ? n : 1) * sizeof *y);
    for (long i = 0; i < n; i++) {
        uint16_t h = t == KG_F32 ? 0 : ((const uint16_t *)p)[i];
        y[i] = t == KG_F32 ? ((const float *)p)[i] : t == KG_BF16 ? kg_bf16_to_f32(h)
                                                                  : kg_f16_to_f32(h);
    }
    return y;
}

void *kgt_poisoned(kg_dtype t, long n)
{
    size_t bytes = (size_t)(n ? n : 1) * kgt_dtype_size(t);
    return memset(malloc(bytes), 0xff, bytes);
}

void *kgt_build_output(kg_dtype t, long n, int build)
{
    return kgt_filled((size_t)n * kgt_dtype_size(t), build);
}

/* ---- checks ---------------------------------------------------------------------------------- */

/* Rounding the reference once to the output dtype is the golden's cast (upstream's tests cast
 * their fp32 result); the decoded output is compared in fp32. */
int kgt_close_to_ref(kg_dtype t, const void *out, float *want, int rank, const long *shape,
                     double rtol, double atol, char *msg, size_t len)
{
    long n = 1;
    for (int d = 0; d < rank; d++)
        n *= shape[d];
    for (long i = 0; i < n; i++)
        want[i] = kgt_round(t, want[i]);
    float *got = kgt_decode(t, out, n);
    int ok = kgt_allclose_shaped(got, want, rank, shape, rtol, atol, msg, len);
    free(got);
    return ok;
}

/* The case stores its expected outputs as fp32 at full precision; the kernel's output dtype is
 * the case's input dtype, so the expected values are cast to it as the golden is. */
int kgt_close_to_case(const kgt_case *c, const char *out_name, kg_dtype t, const void *out,
                      char *msg, size_t len)
{
    const kg_npy *want = kgt_case_output(c, out_name);
    if (!want) {
        snprintf(msg, len, "%s", kgt_case_error(c));
        return 0;
    }
    double rtol, atol;
    if (!kgt_case_tol(c, out_name, &rtol, &atol))
        return -1;
    long n = kg_npy_count(want);
    float *gold = malloc((size_t)(n ? n : 1) * sizeof *gold);
    memcpy(gold, want->data, (size_t)n * sizeof *gold);
    int ok = kgt_close_to_ref(t, out, gold, want->rank, want->shape, rtol, atol, msg, len);
    free(gold);
    kgt_case_compared(c, out_name);
    return ok;
}

/* Bytes, not values: a JIT and an AOT build must agree to the bit (the build's -ffp-contract=off
 * promise), NaN payloads included. */
int kgt_same_bytes(const void *got, const void *want, kg_dtype t, long n, int rank,
                   const long *shape, char *msg, size_t len)
{
    size_t w = kgt_dtype_size(t);
    char bytes[384];
    if (kgt_builds_equal(got, want, n, w, bytes, sizeof bytes))
        return 1;
    long i = 0;
    while (i < n && memcmp((const char *)got + i * w, (const char *)want + i * w, w) == 0)
        i++;
    if (i == n) { /* nothing to compare, or all zero */
        snprintf(msg, len, "%s", bytes);
        return 0;
    }
    float *g = kgt_decode(t, got, n), *h = kgt_decode(t, want, n);
    char at[128], worst[384];
    kgt_unravel(i, rank, shape, at, sizeof at);
    kgt_allclose_shaped(g, h, rank, shape, 0, 0, worst, sizeof worst);
    snprintf(msg, len, "%s; as values, first at %s: got %.9g want %.9g; %s", bytes, at, g[i], h[i],
             worst);
    free(g);
    free(h);
    return 0;
}
