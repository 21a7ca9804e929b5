/* moe_mx_ref.c: the MX pieces of the MoE references (shared/reference/common.md "MX",
 * moe_cte.md "MX variants") in plain loops: the activations' MX e4m3fn quantize-dequantize
 * over the MX weights' blocks, and one expert's MX weights dequantized from upstream's stored
 * layouts. Used by moe_tkg_ref.c and moe_cte_ref.c.
 * Letters: H hidden size, I intermediate size. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kgen/dtype.h"

#include "ref/moe_ref.h"

static float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

/* common.md "MX": the block's shared exponent e = max biased fp32 exponent - 8 (e4m3fn's emax),
 * clamped to [0, 254]; each value becomes e4m3fn(clamp(x / 2^(e-127), +-448)) * 2^(e-127).
 * The block is x[idx[0..31]]. */
static void mx_block(float *x, const long *idx)
{
    int emax = 0;
    for (int k = 0; k < 32; k++) {
        uint32_t bits;
        memcpy(&bits, &x[idx[k]], 4);
        int e = (int)((bits >> 23) & 0xff);
        if ((e != 255 || (bits & 0x7fffff) == 0) && e > emax) /* a NaN does not count */
            emax = e;
    }
    int e = emax - 8 < 0 ? 0 : emax - 8 > 254 ? 254 : emax - 8;
    float s = ldexpf(1.0f, e - 127);
    for (int k = 0; k < 32; k++)
        x[idx[k]] = kg_e4m3fn_to_f32(kg_f32_to_e4m3fn(clampf(x[idx[k]] / s, -448.0f, 448.0f))) * s;
}

/* moe_cte.md "MX variants": gate/up element (p, j, q) is row h = q*H/4 + j*128 + p, a scale
 * covers 8 consecutive p x the 4 q; the activations are quantized over the same blocks. */
void moe_mx_round_x_ref(float *x, long H)
{
    long idx[32];
    for (long j = 0; j < H / 512; j++)
        for (long p0 = 0; p0 < 128; p0 += 8) {
            for (long q = 0; q < 4; q++)
                for (long r = 0; r < 8; r++)
                    idx[q * 8 + r] = q * (H / 4) + j * 128 + p0 + r;
            mx_block(x, idx);
        }
}

/* down element (p, j, q) is row i = j*512 + q*128 + p (I < 512: i = q*I/4 + p), a scale covers
 * 8 consecutive p x the 4 q. */
void moe_mx_round_h_ref(float *h, long I)
{
    long P = I >= 512 ? 128 : I / 4, idx[32];
    for (long j = 0; j < (I >= 512 ? I / 512 : 1); j++)
        for (long p0 = 0; p0 < P; p0 += 8) {
            for (long q = 0; q < 4; q++)
                for (long r = 0; r < 8; r++)
                    idx[q * 8 + r] = j * 512 + q * P + p0 + r;
            mx_block(h, idx);
        }
}

/* ---- MX weights (moe_cte.md "MX variants") ----------------------------------------------- */

/* Code q of x4 word w (fp8: byte q of a 32-bit word; fp4: nibble q of a 16-bit word). */
static uint8_t code(const void *words, long w, int q, int bits)
{
    if (bits == 4)
        return (uint8_t)((((const uint16_t *)words)[w] >> (4 * q)) & 0xf);
    return (uint8_t)((((const uint32_t *)words)[w] >> (8 * q)) & 0xff);
}

void moe_mx_gate_up_ref(float *wgu, const void *words, const uint8_t *scales, int bits,
                        float (*dec)(uint8_t), long H, long I)
{
    /* wgu [H, 2, I]; words [128, 2, H/512, I] x4; scales [16, 2, H/512, I] */
    long J = H / 512;
    for (long p = 0; p < 128; p++)
        for (long g = 0; g < 2; g++)
            for (long j = 0; j < J; j++)
                for (long i = 0; i < I; i++)
                    for (int q = 0; q < 4; q++) {
                        long h = q * (H / 4) + j * 128 + p; /* element (p, j, i, q) */
                        long w = ((p * 2 + g) * J + j) * I + i;
                        uint8_t s = scales[(((p / 8) * 2 + g) * J + j) * I + i];
                        wgu[(h * 2 + g) * I + i] = dec(code(words, w, q, bits)) *
                                                   ldexpf(1.0f, (int)s - 127);
                    }
}

void moe_mx_down_ref(float *wd, const void *words, const uint8_t *scales, int bits,
                     float (*dec)(uint8_t), long H, long I)
{
    /* wd [I, H]; words [I_p, ceil(I/512), H] x4; scales [I_p/8, ceil(I/512), H]; I >= 512:
     * I_p = 128, i = j*512 + q*128 + p; I < 512: I_p = I/4, i = q*I_p + p */
    long P = I >= 512 ? 128 : I / 4, J = I >= 512 ? I / 512 : 1;
    for (long p = 0; p < P; p++)
        for (long j = 0; j < J; j++)
            for (long h = 0; h < H; h++)
                for (int q = 0; q < 4; q++) {
                    long i = I >= 512 ? j * 512 + q * 128 + p : q * P + p;
                    uint8_t s = scales[((p / 8) * J + j) * H + h];
                    wd[i * H + h] = dec(code(words, (p * J + j) * H + h, q, bits)) *
                                    ldexpf(1.0f, (int)s - 127);
                }
}
