/* bench_gemm.c: the reference GEMMs of `kgen bench --gemm`: the runtime's GEMM primitive
 * (kgp_gemm_f32 over a packed weight, split over the threads by kgp_matmul_f32, the call the
 * projection kernels make) on the fixed shapes the speed targets name: the decode GEMV
 * and the prefill GEMM of an 8B model's MLP up projection (K 4096, N 14336), in bf16, fp8 and
 * fp32 weights. Kernels mix a GEMM with norms and quantization; these lines show what the GEMM
 * alone reaches. */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_gemm.h"
#include "kgen/kgen.h"
#include "tensor.h"

/* The shapes: M rows of activations, weight [K, N] in fmt. */
static const struct shape {
    const char *dtype;
    long M, K, N;
} shapes[KGC_BENCH_GEMMS] = {
    { "bf16", 1, 4096, 14336 },   { "e4m3", 1, 4096, 14336 },  { "f32", 1, 4096, 14336 },
    { "bf16", 512, 4096, 14336 }, { "e4m3", 512, 4096, 14336 }, { "f32", 512, 4096, 14336 },
};

typedef struct gemm_call {
    float *C;
    const float *A;
    const kg_wt *W;
    long M;
} gemm_call;

/* The projection kernels' own matmul: kgp_matmul_f32 splits over the threads. */
static int call(void *ctx)
{
    gemm_call *g = ctx;
    kgp_matmul_f32(g->C, g->W->N, g->A, g->W->K, g->M, g->W);
    return KG_OK;
}

/* One shape into r: a seeded weight in its format (packed kn), seeded fp32 activations. */
static int measure(const struct shape *s, const kgb_options *o, kgb_result *r, char *err,
                   size_t errlen)
{
    kgg_arg w = { .weight = 1, .used = 1, .rank = 2, .shape = { s->K, s->N } };
    kgg_arg a = { .used = 1, .rank = 2, .shape = { s->M, s->K } };
    snprintf(w.name, sizeof w.name, "W");
    snprintf(w.dtype, sizeof w.dtype, "%s", s->dtype);
    snprintf(w.wt_layout, sizeof w.wt_layout, "kn");
    snprintf(a.name, sizeof a.name, "A");
    snprintf(a.dtype, sizeof a.dtype, "f32");
    snprintf(a.init, sizeof a.init, "normal");
    snprintf(r->name, sizeof r->name, "gemm_%s_m%ld_k%ld_n%ld", s->dtype, s->M, s->K, s->N);
    int fmt = kg_wt_fmt_from_name(s->dtype);
    double wbytes = (double)s->K * (double)s->N *
                    (fmt == KG_WT_F32 ? 4 : fmt == KG_WT_BF16 || fmt == KG_WT_F16 ? 2 : 1);
    r->flops = 2.0 * (double)s->M * (double)s->K * (double)s->N;
    r->bytes = wbytes + 4.0 * (double)s->M * (double)(s->K + s->N);
    r->narrow = fmt != KG_WT_F32 && fmt != KG_WT_F16;
    r->ngemm = 1;
    r->gemm[0] = (kgb_gemm){ s->M, s->K, s->N };

    kg_wt *W = kgc_alloc(&w);
    float *A = kgc_alloc(&a), *C = malloc((size_t)(s->M * s->N) * sizeof *C);
    int rc = KG_ENOMEM;
    if (W && A && C && kgc_fill(&w, W, 1, err, errlen) == 0 && kgc_fill(&a, A, 2, err, errlen) == 0) {
        gemm_call g = { C, A, W, s->M };
        rc = kgb_time(o, call, &g, &r->seconds);
    } else if (W && A && C) {
        rc = KG_ESPEC; /* packing refused the weight: err says why */
    } else {
        snprintf(err, errlen, "no memory for the %s weight", r->name);
    }
    if (W)
        kgc_free(&w, W);
    free(A), free(C);
    return rc;
}

int kgc_bench_gemms(const kgb_options *o, const regex_t *re, kgb_result *r, int *n, char *err,
                    size_t errlen)
{
    *n = 0;
    for (int i = 0; i < KGC_BENCH_GEMMS; i++) {
        const struct shape *s = &shapes[i];
        char name[sizeof r->name];
        snprintf(name, sizeof name, "gemm_%s_m%ld_k%ld_n%ld", s->dtype, s->M, s->K, s->N);
        if (re && regexec(re, name, 0, NULL, 0) != 0)
            continue;
        memset(&r[*n], 0, sizeof r[*n]);
        int rc = measure(s, o, &r[*n], err, errlen);
        if (rc != KG_OK)
            return rc;
        ++*n;
    }
    return KG_OK;
}
