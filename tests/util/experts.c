/* tests/util/experts.c: packed expert weights (experts.h). */
#include <criterion/criterion.h>

#include <stdlib.h>

#include "kgen/dtype.h"
#include "util/experts.h"
#include "util/jitp.h"
#include "util/tensors.h"
#include "util/weights.h"

long kgt_expert_cols(long n) { return (n + 63) / 64 * 64; }

void kgt_pack_experts(kg_wt *w, int fmt, long E, long K, long N, const float *vals)
{
    long P = kgt_expert_cols(N), W = E * P;
    float *pad = calloc((size_t)(K * W > 0 ? K * W : 1), sizeof *pad);
    cr_assert_not_null(pad);
    for (long e = 0; e < E; e++)
        for (long k = 0; k < K; k++)
            for (long n = 0; n < N; n++)
                pad[k * W + e * P + n] = vals[(e * K + k) * N + n];
    kgt_wt_from_values(w, fmt, KG_WL_KN, K, W, pad);
    free(pad);
}

long kgt_expert_bytes(const kg_wt *w, long e, long N, long *off)
{
    long P = kgt_expert_cols(N), bits = kg_wt_fmt_bits(w->fmt);
    long elems = (P / w->nr) * w->kpad * w->nr;
    *off = e * elems * bits / 8;
    return elems * bits / 8;
}

float *kgt_randn_fmt(int fmt, long n, float scale, unsigned long long seed)
{
    float *x = kgt_randn(KG_F32, n, seed);
    for (long i = 0; i < n; i++) {
        float v = x[i] * scale;
        switch (fmt) {
        case KG_WT_BF16: v = kgt_round_bf16(v); break;
        case KG_WT_F16: v = kgt_round_f16(v); break;
        case KG_WT_E4M3: v = kg_e4m3_to_f32(kg_f32_to_e4m3(v)); break;
        case KG_WT_E4M3FN: v = kg_e4m3fn_to_f32(kg_f32_to_e4m3fn(v)); break;
        default: break;
        }
        x[i] = v;
    }
    return x;
}
