/* gemm.c: the reference GEMMs of `kgen bench --gemm`: the runtime's GEMM primitive
 * (kgp_gemm_f32 over a packed weight, split over the threads by kgp_matmul_f32 as the projection
 * kernels' matmul does) on the fixed shapes the speed targets name: the decode GEMV
 * and the prefill GEMM of an 8B model's MLP up projection (K 4096, N 14336), in bf16, fp8 and
 * fp32 weights, each call on the next of a few copies of the weight (as a kernel's argument
 * sets). Kernels mix a GEMM with norms and quantization; these lines show what the GEMM alone
 * reaches. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/ckd.h"
#include "kgen/dtype.h"
#include "kgen/kgen.h"
#include "kgen_bench.h"

/* The shapes: M rows of activations, weight [K, N] in fmt. */
static const struct shape {
    int fmt;
    long M, K, N;
} shapes[KGB_REF_GEMMS] = {
    { KG_WT_BF16, 1, 4096, 14336 },   { KG_WT_E4M3, 1, 4096, 14336 },
    { KG_WT_F32, 1, 4096, 14336 },    { KG_WT_BF16, 512, 4096, 14336 },
    { KG_WT_E4M3, 512, 4096, 14336 }, { KG_WT_F32, 512, 4096, 14336 },
};

/* Copies of the weight a line takes in turn, like a kernel's argument sets in `kgen bench`
 * (cli/cmd_bench.c): enough for 128 MiB, four times the effective L3, so each call reads its
 * weight from DRAM. One weight re-read call after call is partly kept by the L3: on a shared
 * Zen 5 VM the bf16 GEMV read 44.6 GB/s from one 112 MiB copy against 38.6 from copies in
 * turn, e4m3 (56 MiB) 41.5 against 30.6 (best of 60 interleaved calls each). */
enum { MAX_COPIES = 3 };
#define COLD_BYTES (128.0 * 1024 * 1024)

typedef struct gemm_call {
    float *C;
    const float *A;
    const kg_wt *W; /* copies of it */
    long M;
    int copies, next;
} gemm_call;

/* The projection kernels' own matmul: kgp_matmul_f32 splits over the threads. */
static int call(void *ctx)
{
    gemm_call *g = ctx;
    const kg_wt *W = &g->W[g->next];
    g->next = (g->next + 1) % g->copies;
    kgp_matmul_f32(g->C, W->N, g->A, W->K, g->M, W);
    return KG_OK;
}

/* splitmix64: a reproducible stream on every machine. */
static uint64_t next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* On huge pages when large, like the kernels' arguments in `kgen bench` (kg_stream_alloc). */
static float *floats(long n)
{
    size_t bytes;
    if (n < 0 || kg_ckd_mul(&bytes, (size_t)n, sizeof(float)))
        return NULL;
    return kg_stream_alloc(bytes);
}

/* n seeded floats, uniform in [-2, 2): within range of every weight format, no denormals. */
static float *seeded(long n, uint64_t seed)
{
    float *x = floats(n);
    for (long i = 0; x && i < n; i++)
        x[i] = (float)((double)(next(&seed) >> 40) * (4.0 / 16777216.0) - 2.0);
    return x;
}

/* A seeded weight [K, N] in s->fmt, stored kn and packed into w; KG_OK or why not in err. */
static int seeded_weight(const struct shape *s, kg_wt *w, char *err, size_t errlen)
{
    size_t size = s->fmt == KG_WT_F32 ? 4 : s->fmt == KG_WT_BF16 ? 2 : 1, count, bytes;
    int over = kg_ckd_mul(&count, (size_t)s->K, (size_t)s->N) || count > (size_t)LONG_MAX ||
               kg_ckd_mul(&bytes, count, size);
    long n = over ? 0 : (long)count;
    float *x = over ? NULL : seeded(n, 1);
    unsigned char *codes = over ? NULL : malloc(bytes);
    int rc = x && codes ? KG_OK : KG_ENOMEM;
    for (long i = 0; rc == KG_OK && i < n; i++) {
        if (s->fmt == KG_WT_F32)
            ((float *)codes)[i] = x[i];
        else if (s->fmt == KG_WT_BF16)
            ((uint16_t *)codes)[i] = kg_f32_to_bf16(x[i]);
        else
            codes[i] = kg_f32_to_e4m3(x[i]);
    }
    kg_wt_src src = { s->fmt, KG_WL_KN, s->K, s->N, codes, NULL, 0, 0 };
    if (rc == KG_OK)
        rc = kg_wt_pack(w, &src, err, errlen);
    else
        snprintf(err, errlen, "no memory for a %ld x %ld weight", s->K, s->N);
    free(x), free(codes);
    return rc;
}

/* One shape into r (named and described; timed unless the buffers cannot be had). */
static int measure(const struct shape *s, const kgb_options *o, kgb_result *r, char *err,
                   size_t errlen)
{
    double wbytes = (double)s->K * (double)s->N *
                    (s->fmt == KG_WT_F32 ? 4 : s->fmt == KG_WT_BF16 ? 2 : 1);
    r->flops = 2.0 * (double)s->M * (double)s->K * (double)s->N;
    r->bytes = wbytes + 4.0 * (double)s->M * (double)(s->K + s->N);
    r->narrow = s->fmt != KG_WT_F32;
    r->ngemm = 1;
    r->gemm[0] = (kgb_gemm){ s->M, s->K, s->N };

    kg_wt W[MAX_COPIES];
    memset(W, 0, sizeof W);
    double want = COLD_BYTES / wbytes; /* rounded up, as cmd_bench.c counts its sets */
    int copies = want >= MAX_COPIES ? MAX_COPIES : (int)want + (want > (int)want);
    copies = copies < 1 ? 1 : copies;
    /* the shapes are this file's constants; the products are checked all the same, as every
     * size formed for an allocation is (kgen/ckd.h) */
    size_t a_count, c_bytes;
    int over = kg_ckd_mul(&a_count, (size_t)s->M, (size_t)s->K) || a_count > (size_t)LONG_MAX ||
               kg_ckd_mul(&c_bytes, (size_t)s->M, (size_t)s->N) ||
               kg_ckd_mul(&c_bytes, c_bytes, sizeof(float));
    float *A = over ? NULL : seeded((long)a_count, 2), *C = over ? NULL : malloc(c_bytes);
    int rc = A && C ? KG_OK : KG_ENOMEM, made = 0;
    while (rc == KG_OK && made < copies)
        if ((rc = seeded_weight(s, &W[made], err, errlen)) == KG_OK)
            made++;
    if (rc == KG_OK) {
        gemm_call g = { C, A, W, s->M, copies, 0 };
        rc = kgb_time(o, call, &g, &r->seconds, &r->pace);
    }
    for (int i = 0; i < made; i++)
        kg_wt_free(&W[i]);
    if (rc == KG_ENOMEM) {
        snprintf(err, errlen, "no memory for %s", r->name);
    }
    free(A), free(C);
    return rc;
}

int kgb_ref_gemms(const kgb_options *o, kgb_select_fn *select, void *ctx, kgb_result *r, int *n,
                  char *err, size_t errlen)
{
    *n = 0;
    for (int i = 0; i < KGB_REF_GEMMS; i++) {
        const struct shape *s = &shapes[i];
        memset(&r[*n], 0, sizeof r[*n]);
        snprintf(r[*n].name, sizeof r[*n].name, "gemm_%s_m%ld_k%ld_n%ld",
                 kg_wt_fmt_name(s->fmt), s->M, s->K, s->N);
        if (select && !select(r[*n].name, ctx))
            continue;
        int rc = measure(s, o, &r[*n], err, errlen);
        if (rc != KG_OK)
            return rc;
        ++*n;
    }
    return KG_OK;
}
