/* moe_tkg_ref.c: the moe_tkg family (shared/reference/moe_tkg.md, "Math") in plain loops: one
 * expert MLP per (token, expert) pair, weighted and summed as the document's selective and
 * all-expert formulas say.
 * Letters: T tokens, H hidden size, I intermediate size, E experts, EL local experts, K experts
 * per token. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/dtype.h"

#include "ref/moe_ref.h"

/* common.md "ActFnType", in double, rounded once */
static float act(int fn, float v)
{
    double x = v;
    switch (fn) {
    case 0: return (float)(x / (1.0 + exp(-x)));                                 /* SiLU */
    case 1: return (float)(0.5 * x * (1.0 + erf(x / sqrt(2.0))));                /* GELU */
    case 2: return (float)(0.5 * x * (1.0 + tanh(sqrt(2.0 / 3.141592653589793) *
                                                 (x + 0.044715 * x * x * x)))); /* tanh */
    default: return (float)(x / (1.0 + exp(-1.702 * x)));                        /* Swish */
    }
}

static float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

static float rnd(const moe_ref_opts *o, float v) { return o->round_a ? o->round_a(v) : v; }

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
static void mx_round_x(float *x, long H)
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
static void mx_round_h(float *h, long I)
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

/* y [H] += c * MLP_e(x [H]) (steps 1-5 of "Math"); m: scratch [I + H]. */
static void expert_add(float *y, float c, const float *x_in, const float *wgu, const float *wd,
                       long e, const float *bgu, const float *bd, const float *sgu,
                       const float *sd, const moe_ref_opts *o, float *m, long H, long I)
{
    float *x = m + I;
    for (long h = 0; h < H; h++)
        x[h] = x_in[h];
    if (o->mx)
        mx_round_x(x, H);
    for (long i = 0; i < I; i++) {
        double g = 0, u = 0;
        for (long h = 0; h < H; h++) {
            double xh = rnd(o, x[h]);
            g += xh * wgu[((e * H + h) * 2 + 0) * I + i];
            u += xh * wgu[((e * H + h) * 2 + 1) * I + i];
        }
        float gf = (float)g, uf = (float)u;
        if (sgu)
            gf *= sgu[(e * 2 + 0) * I + i], uf *= sgu[(e * 2 + 1) * I + i];
        if (bgu)
            gf += bgu[(e * 2 + 0) * I + i], uf += bgu[(e * 2 + 1) * I + i];
        gf = clampf(gf, o->glo, o->ghi);
        uf = clampf(uf, o->ulo, o->uhi);
        m[i] = act(o->act, gf) * uf;
    }
    if (o->mx)
        mx_round_h(m, I);
    for (long h = 0; h < H; h++) {
        double acc = 0;
        for (long i = 0; i < I; i++)
            acc += (double)rnd(o, m[i]) * wd[(e * I + i) * H + h];
        float v = (float)acc;
        if (sd)
            v *= sd[e * H + h];
        if (bd)
            v += bd[e * H + h];
        y[h] += c * v;
    }
}

void moe_tkg_ref(float *out, const float *x, const float *wgu, const float *wd,
                 const float *aff, const int32_t *idx, long rank, const float *bgu,
                 const float *bd, const float *sgu, const float *sd, const float *eager,
                 const moe_ref_opts *o, long T, long H, long I, long E, long EL, long K)
{
    /* out [T, H]; x [T, H]; wgu [EL, H, 2, I]; wd [EL, I, H]; aff [T, E]; idx, eager [T, K] */
    float *m = malloc((size_t)(I + H) * sizeof *m);
    for (long t = 0; t < T; t++) {
        float *y = out + t * H;
        const float *xt = x + t * H;
        for (long h = 0; h < H; h++)
            y[h] = 0;
        if (!o->all) {
            /* selective: every (t, k), a repeated expert counted again; ids index the weights
             * (EL = E); an id outside [0, E) selects nothing */
            for (long k = 0; k < K; k++) {
                long e = idx[t * K + k];
                if (e < 0 || e >= E)
                    continue;
                float c = !o->post ? 1.0f : o->eager ? eager[t * K + k] : aff[t * E + e];
                expert_add(y, c, xt, wgu, wd, e, bgu, bd, sgu, sd, o, m, H, I);
            }
        } else {
            /* all-expert: A[t, l] = aff[t, rank*EL + l], masked unless expert_index names it */
            for (long l = 0; l < EL; l++) {
                long g = rank * EL + l;
                float a = o->post ? aff[t * E + g] : 1.0f;
                if (o->post && o->mask) {
                    int named = 0;
                    for (long k = 0; k < K; k++)
                        named |= idx[t * K + k] == g;
                    if (!named)
                        a = 0;
                }
                if (o->post && a == 0)
                    continue; /* 0 * y: nothing to add */
                expert_add(y, a, xt, wgu, wd, l, bgu, bd, sgu, sd, o, m, H, I);
            }
        }
    }
    free(m);
}
