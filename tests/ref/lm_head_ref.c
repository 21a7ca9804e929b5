/* lm_head_ref.c: the lm_head family (generator/lua/family/lm_head.lua) in plain loops: a causal
 * LM's final RMSNorm and its projection onto the vocabulary.
 * Letters: T tokens, H hidden size, V vocabulary. */
#include <math.h>

#include "ref/ref.h"

void lm_head_ref(float *logits, float *normed, const float *x, const float *W,
                 const float *w_scale, const float *gamma, float eps, float (*round_a)(float),
                 long T, long H, long V)
{
    /* logits [T, V]; normed [T, H]; x [T, H]; W [H, V]; w_scale [V] or NULL; gamma [H] or
     * NULL (no norm); round_a: the GEMM's rounding of its operand (bf16 weights), or NULL */
    for (long t = 0; t < T; t++) {
        const float *xt = x + t * H;
        float *nt = normed + t * H;
        double ss = 0;
        for (long h = 0; h < H; h++)
            ss += (double)xt[h] * xt[h];
        float inv = gamma ? 1.0f / sqrtf((float)(ss / (double)H) + eps) : 1.0f;
        for (long h = 0; h < H; h++)
            nt[h] = gamma ? xt[h] * inv * gamma[h] : xt[h];
        for (long v = 0; v < V; v++) {
            double acc = 0;
            for (long h = 0; h < H; h++)
                acc += (double)(round_a ? round_a(nt[h]) : nt[h]) * W[h * V + v];
            logits[t * V + v] = (float)acc * (w_scale ? w_scale[v] : 1.0f);
        }
    }
}
