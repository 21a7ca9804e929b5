/* tests/util/experts.c: packed expert weights (experts.h). */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/dtype.h"
#include "util/experts.h"
#include "util/jitp.h"
#include "util/tensors.h"
#include "util/weights.h"

long kgt_expert_cols(long n) { return kg_wt_expert_cols(n); }

void kgt_pack_experts(kg_wt *w, int fmt, long E, long K, long N, const float *vals)
{
    uint32_t *codes = malloc((size_t)(K * N) * sizeof *codes);
    kg_wt_src *parts = calloc((size_t)E, sizeof *parts);
    void **data = calloc((size_t)E, sizeof *data);
    cr_assert(codes && parts && data);
    for (long e = 0; e < E; e++) {
        for (long i = 0; i < K * N; i++)
            cr_assert(kgt_wt_code(fmt, vals[e * K * N + i], &codes[i]),
                      "kgt_pack_experts: expert %ld W[%ld] = %g is not on the %s grid", e, i,
                      vals[e * K * N + i], kg_wt_fmt_name(fmt));
        data[e] = kgt_wt_store(fmt, KG_WL_KN, K, N, codes, NULL, NULL);
        parts[e] = (kg_wt_src){ fmt, KG_WL_KN, K, N, data[e], NULL, 0, 0 };
    }
    char err[256] = "";
    int rc = kg_wt_pack_experts(w, parts, (int)E, 1, err, sizeof err);
    cr_assert_eq(rc, KG_OK, "kg_wt_pack_experts(%s, %ld experts [%ld, %ld]): %s",
                 kg_wt_fmt_name(fmt), E, K, N, err);
    for (long e = 0; e < E; e++)
        free(data[e]);
    free(data), free(parts), free(codes);
}

float *kgt_mx_experts(kg_wt *w, int fmt, int layout, long E, long K, long N,
                      unsigned long long seed)
{
    float *vals = malloc((size_t)(E * K * N) * sizeof *vals);
    kg_wt_src *parts = calloc((size_t)E, sizeof *parts);
    void **mem = calloc((size_t)(2 * E), sizeof *mem);
    cr_assert(vals && parts && mem);
    for (long e = 0; e < E; e++) {
        float *v = kgt_wt_random_stored(fmt, layout, K, N, 1, 1.0f, seed + (unsigned long long)e,
                                        &mem[2 * e], &mem[2 * e + 1]);
        memcpy(vals + e * K * N, v, (size_t)(K * N) * sizeof *v);
        free(v);
        parts[e] = (kg_wt_src){ fmt, layout, K, N, mem[2 * e], mem[2 * e + 1], 0, 0 };
    }
    char err[256] = "";
    int rc = kg_wt_pack_experts(w, parts, (int)E, 1, err, sizeof err);
    cr_assert_eq(rc, KG_OK, "kg_wt_pack_experts(MX %s %s, %ld experts [%ld, %ld]): %s",
                 kg_wt_fmt_name(fmt), kg_wt_layout_name(layout), E, K, N, err);
    for (long i = 0; i < 2 * E; i++)
        free(mem[i]);
    free(mem), free(parts);
    return vals;
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

void kgt_mx_quantize_hidden(uint8_t *codes, uint8_t *e8, const float *x, long T, long H)
{
    float blk[32];
    long at[32];
    cr_assert(H % 512 == 0, "MX hidden rows: H = %ld", H);
    for (long t = 0; t < T; t++)
        for (long j = 0; j < H / 512; j++)
            for (long p8 = 0; p8 < 16; p8++) {
                for (long q = 0; q < 4; q++)
                    for (long r = 0; r < 8; r++) {
                        at[q * 8 + r] = t * H + q * (H / 4) + j * 128 + 8 * p8 + r;
                        blk[q * 8 + r] = x[at[q * 8 + r]];
                    }
                uint8_t e = kg_e8m0_block_exponent(blk, 32, 8);
                float s = kg_e8m0_to_f32(e);
                e8[(t * (H / 512) + j) * 16 + p8] = e;
                for (int k = 0; k < 32; k++) {
                    float v = blk[k] / s;
                    v = v > 448.0f ? 448.0f : v < -448.0f ? -448.0f : v;
                    codes[at[k]] = kg_f32_to_e4m3fn(v);
                }
            }
}
