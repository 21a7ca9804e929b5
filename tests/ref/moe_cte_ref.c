/* moe_cte_ref.c: the moe_cte family (shared/reference/moe_cte.md, "Math per block") in plain
 * loops: every slot of every block up to the stop, padding slots included (they read the
 * zero row T, or are skipped with skip_token), in block and slot order.
 * Letters: T tokens, H hidden size, I intermediate size, E experts, B slots per block, N
 * blocks. */
#include <math.h>
#include <stdlib.h>

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

static float rnd(float (*r)(float), float v) { return r ? r(v) : v; }

void moe_cte_ref(float *out, float *gu_ckpt, float *d_ckpt, const float *x, const float *aff,
                 const float *wgu, const float *wd, const int32_t *tpi, const int32_t *b2e,
                 const int32_t *cond, const float *bgu, const float *bd, const float *sgu,
                 const float *sd, int shared, const moe_cte_ref_opts *o, long T, long H, long I,
                 long E, long B, long N)
{
    /* out, x [R, H]; aff [R, E]; wgu [E, H, 2, I]; wd [E, I, H]; tpi [N, B]; b2e, cond [N] */
    float *xs = malloc((size_t)H * sizeof *xs), *g = malloc((size_t)I * sizeof *g);
    float *u = malloc((size_t)I * sizeof *u), *m = malloc((size_t)I * sizeof *m);
    float *d = malloc((size_t)H * sizeof *d);
    int pre = o->mode == 2 || o->mode == 3, post = o->mode == 1 && !o->moi;
    for (long b = 0; b < N; b++) {
        if (cond && cond[b] == 0)
            break; /* stop at the first block whose flag is 0 */
        long e = b2e ? b2e[b] : b; /* step 1 */
        long se = shared ? 0 : e;
        for (long j = 0; j < B; j++) {
            long t = tpi[b * B + j];
            if (o->skip_token && t < 0)
                continue; /* skipped slot */
            (void)T;
            float a = aff[t * E + e];
            for (long h = 0; h < H; h++) /* step 2: PRE_SCALE */
                xs[h] = pre ? x[t * H + h] * a : x[t * H + h];
            if (o->mx) /* "MX variants": the activations quantized before each matmul */
                moe_mx_round_x_ref(xs, H);
            for (long i = 0; i < I; i++) { /* steps 3-6 */
                double gs = 0, us = 0;
                for (long h = 0; h < H; h++) {
                    double xh = rnd(o->round_a, xs[h]);
                    gs += xh * wgu[((e * H + h) * 2 + 0) * I + i];
                    us += xh * wgu[((e * H + h) * 2 + 1) * I + i];
                }
                float gf = (float)gs, uf = (float)us;
                if (sgu)
                    gf *= sgu[se * 2 * I + i], uf *= sgu[se * 2 * I + I + i];
                if (bgu)
                    gf += bgu[(e * 2 + 0) * I + i], uf += bgu[(e * 2 + 1) * I + i];
                g[i] = clampf(gf, o->glo, o->ghi);
                u[i] = clampf(uf, o->ulo, o->uhi);
                if (gu_ckpt) { /* step 7 */
                    gu_ckpt[((b * 2 + 0) * I + i) * B + j] = g[i];
                    gu_ckpt[((b * 2 + 1) * I + i) * B + j] = u[i];
                }
                m[i] = act(o->act, g[i]) * u[i]; /* step 8 */
                if (o->moi)
                    m[i] *= a;
            }
            if (o->mx)
                moe_mx_round_h_ref(m, I);
            for (long h = 0; h < H; h++) { /* step 9 */
                double acc = 0;
                for (long i = 0; i < I; i++)
                    acc += (double)rnd(o->round_a, m[i]) * wd[(e * I + i) * H + h];
                float v = (float)acc;
                if (sd)
                    v *= sd[se * H + h];
                if (bd)
                    v += bd[e * H + h];
                if (d_ckpt)
                    d_ckpt[(b * B + j) * H + h] = v;
                d[h] = post ? v * a : v; /* step 10 */
            }
            for (long h = 0; h < H; h++) { /* step 11 */
                float v = rnd(o->round_o, d[h]);
                out[t * H + h] = o->acc ? rnd(o->round_o, out[t * H + h] + v) : v;
            }
        }
    }
    free(xs), free(g), free(u), free(m), free(d);
}
