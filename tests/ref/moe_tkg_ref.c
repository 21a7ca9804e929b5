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

/* y [H] += c * MLP_e(x [H]) (steps 1-5 of "Math"); m: scratch [I + H]. */
static void expert_add(float *y, float c, const float *x_in, const float *wgu, const float *wd,
                       long e, const float *bgu, const float *bd, const float *sgu,
                       const float *sd, const moe_ref_opts *o, float *m, long H, long I)
{
    float *x = m + I;
    for (long h = 0; h < H; h++)
        x[h] = x_in[h];
    if (o->mx)
        moe_mx_round_x_ref(x, H);
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
        moe_mx_round_h_ref(m, I);
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
