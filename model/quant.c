/* quant.c: a weight's fp8 codes at load (--weights fp8): a float tensor stored [N, K] (HF's
 * [out, in]: row n is output column n of W) to e4m3 codes [N, K] and one scale per row, by the
 * runtime's per-row quantizer (kgp_quant_rows_e4m3_*, SIMD), rows split over the runtime's
 * threads. The bits are the primitive's scalar reference's, whatever the ISA or thread count:
 * each row is quantized alone. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model_int.h"

/* Elements a thread stages at a time when the tensor cannot be read in place (fp16, or data
 * not aligned to its element: a safetensors header may leave it so): 256 KiB of fp32. */
enum { STAGE = 1 << 16 };

typedef struct job {
    const kgst_tensor *t;
    long K;
    unsigned char *q;
    float *scale;
    atomic_int oom;
} job;

/* Rows [r0, r1) through a staging buffer: copied (or widened from fp16) to aligned fp32 or
 * bf16, then quantized. */
static void staged(job *j, long r0, long r1)
{
    const kgst_tensor *t = j->t;
    long K = j->K, per = STAGE / K > 0 ? STAGE / K : 1;
    size_t es = t->dtype == KG_F32 ? 4 : 2;
    float *f = malloc((size_t)per * (size_t)K * sizeof *f);
    kg_u16 *h = malloc((size_t)per * (size_t)K * sizeof *h);
    if (!f || !h) {
        atomic_store(&j->oom, 1);
        free(f), free(h);
        return;
    }
    const unsigned char *src = t->data;
    for (long r = r0; r < r1; r += per) {
        long n = r1 - r < per ? r1 - r : per;
        size_t count = (size_t)n * (size_t)K;
        const unsigned char *at = src + (size_t)r * (size_t)K * es;
        if (t->dtype == KG_F32) {
            memcpy(f, at, count * 4);
        } else {
            memcpy(h, at, count * 2);
            if (t->dtype == KG_F16)
                kgp_cvt_f16_f32(f, h, (long)count);
        }
        if (t->dtype == KG_BF16)
            kgp_quant_rows_e4m3_bf16(j->q + (size_t)r * (size_t)K, j->scale + r, h, n, K);
        else
            kgp_quant_rows_e4m3_f32(j->q + (size_t)r * (size_t)K, j->scale + r, f, n, K);
    }
    free(f), free(h);
}

static void rows(void *ctx, long r0, long r1)
{
    job *j = ctx;
    const kgst_tensor *t = j->t;
    size_t es = t->dtype == KG_F32 ? 4 : 2, at = (size_t)r0 * (size_t)j->K;
    if (t->dtype == KG_F16 || (uintptr_t)t->data % es != 0) {
        staged(j, r0, r1);
        return;
    }
    if (t->dtype == KG_F32)
        kgp_quant_rows_e4m3_f32(j->q + at, j->scale + r0, (const float *)t->data + at, r1 - r0,
                                j->K);
    else
        kgp_quant_rows_e4m3_bf16(j->q + at, j->scale + r0, (const kg_u16 *)t->data + at,
                                 r1 - r0, j->K);
}

int kgm_quant_e4m3(const kgst_tensor *t, long N, long K, unsigned char *q, float *scale)
{
    if (N < 1 || K < 1 || t->count != N * K ||
        (t->dtype != KG_F32 && t->dtype != KG_BF16 && t->dtype != KG_F16))
        return KG_ESHAPE;
    job j = { t, K, q, scale, 0 };
    /* a few rows per task at least: a row is one short pass */
    kgp_parallel_for(rows, &j, N, 16);
    return atomic_load(&j.oom) ? KG_ENOMEM : KG_OK;
}
