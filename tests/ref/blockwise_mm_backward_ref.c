/* blockwise_mm_backward_ref.c: the blockwise expert MLP in plain loops, in double: its forward
 * (shared/reference/moe_cte.md "Math", POST_SCALE with checkpoints), which the tests use to make
 * consistent checkpoints and as the loss of the finite differences, and its backward
 * (shared/reference/blockwise_mm_backward.md "Math", steps 1-9).
 * Letters: T tokens (rows = T + 1, or T with skip_token), H hidden size, I intermediate size,
 * E experts, N blocks, B slots per block, b a block, j a slot, t a token, e an expert. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref/moe_ref.h"

/* sigmoid(c x): c = 1 (SiLU) or 1.702 (Swish) */
static double sig(const bwmm_ref_opts *o, double x)
{
    return 1.0 / (1.0 + exp(-(o->swish ? 1.702 : 1.0) * x));
}

static double act(const bwmm_ref_opts *o, double x) { return x * sig(o, x); }

/* the activation's derivative: SiLU s (1 + x (1 - s)); Swish, z = 1.702 x: s (1 + z (1 - s)) */
static double act_d(const bwmm_ref_opts *o, double x)
{
    double s = sig(o, x), z = (o->swish ? 1.702 : 1.0) * x;
    return s * (1.0 + z * (1.0 - s));
}

/* slot (b, j)'s token, or -1 for a slot that is skipped (skip_token padding) */
static long token(const int32_t *ids, const bwmm_ref_opts *o, long b, long j, long B)
{
    long t = ids[b * B + j];
    return o->skip && t == -1 ? -1 : t;
}

void bwmm_fwd_ref(double *out, double *ckgu, double *ckd, const double *x, const double *aff,
                  const double *wgu, const double *wd, const double *bgu, const double *bd,
                  const int32_t *ids, const int32_t *bte, const bwmm_ref_opts *o, long rows,
                  long N, long H, long I, long E, long B)
{
    double *m = malloc((size_t)(I > 0 ? I : 1) * sizeof *m);
    memset(out, 0, (size_t)(rows * H) * sizeof *out);
    memset(ckgu, 0, (size_t)(N * 2 * I * B) * sizeof *ckgu);
    memset(ckd, 0, (size_t)(N * B * H) * sizeof *ckd);
    for (long b = 0; b < N; b++) {
        long e = bte[b];
        for (long j = 0; j < B; j++) {
            long t = token(ids, o, b, j, B);
            if (t < 0)
                continue;
            for (long i = 0; i < I; i++) {  /* steps 3, 5, 6, 7, 8 */
                double g = bgu ? bgu[(e * 2 + 0) * I + i] : 0.0;
                double u = bgu ? bgu[(e * 2 + 1) * I + i] : 0.0;
                for (long h = 0; h < H; h++) {
                    g += x[t * H + h] * wgu[((e * H + h) * 2 + 0) * I + i];
                    u += x[t * H + h] * wgu[((e * H + h) * 2 + 1) * I + i];
                }
                g = fmin(fmax(g, o->glo), o->ghi);
                u = fmin(fmax(u, o->ulo), o->uhi);
                ckgu[((b * 2 + 0) * I + i) * B + j] = g;
                ckgu[((b * 2 + 1) * I + i) * B + j] = u;
                m[i] = act(o, g) * u;
            }
            double a = aff[t * E + e];
            for (long h = 0; h < H; h++) {  /* steps 9, 10, 11 */
                double d = bd ? bd[e * H + h] : 0.0;
                for (long i = 0; i < I; i++)
                    d += m[i] * wd[(e * I + i) * H + h];
                ckd[(b * B + j) * H + h] = d;
                out[t * H + h] = (o->acc ? out[t * H + h] : 0.0) + a * d;
            }
        }
    }
    free(m);
}

void blockwise_mm_backward_ref(double *dx, double *da, double *dwgu, double *dwd, double *dbgu,
                               double *dbd, const double *x, const double *aff,
                               const double *wgu, const double *wd, const double *ckgu,
                               const double *ckd, const int32_t *ids, const int32_t *bte,
                               const double *dout, const bwmm_ref_opts *o, long rows, long N,
                               long H, long I, long E, long B)
{
    size_t n1 = (size_t)(I > 0 ? I : 1), nh = (size_t)(H > 0 ? H : 1);
    double *dd = malloc(nh * sizeof *dd), *dg = malloc(n1 * sizeof *dg);
    double *du = malloc(n1 * sizeof *du);
    memset(dx, 0, (size_t)(rows * H) * sizeof *dx);
    memset(da, 0, (size_t)(rows * E) * sizeof *da);
    memset(dwgu, 0, (size_t)(E * H * 2 * I) * sizeof *dwgu);
    memset(dwd, 0, (size_t)(E * I * H) * sizeof *dwd);
    memset(dbgu, 0, (size_t)(E * 2 * I) * sizeof *dbgu);
    memset(dbd, 0, (size_t)(E * H) * sizeof *dbd);
    for (long b = 0; b < N; b++) {
        long e = bte[b];
        for (long j = 0; j < B; j++) {
            long t = token(ids, o, b, j, B);
            if (t < 0)
                continue;
            const double *dy = dout + t * H, *dck = ckd + (b * B + j) * H;
            double a = aff[t * E + e], s = 0.0;
            for (long h = 0; h < H; h++)      /* 1: the affinity's gradient (assigned) */
                s += dy[h] * dck[h];
            da[t * E + e] = s;
            for (long h = 0; h < H; h++)      /* 2: dD = dY * a */
                dd[h] = dy[h] * a;
            for (long i = 0; i < I; i++) {
                double g = ckgu[((b * 2 + 0) * I + i) * B + j];
                double u = ckgu[((b * 2 + 1) * I + i) * B + j];
                double m = act(o, g) * u;    /* 3 */
                double dm = 0.0;
                for (long h = 0; h < H; h++) {
                    dwd[(e * I + i) * H + h] += m * dd[h];  /* 4 */
                    dm += dd[h] * wd[(e * I + i) * H + h];  /* 5 */
                }
                int mg = g > o->glo && g < o->ghi, mu = u > o->ulo && u < o->uhi;  /* 6 */
                dg[i] = mg ? dm * u * act_d(o, g) : 0.0;    /* 7 */
                du[i] = mu ? dm * act(o, g) : 0.0;
                dbgu[(e * 2 + 0) * I + i] += dg[i];         /* 8 (bias) */
                dbgu[(e * 2 + 1) * I + i] += du[i];
            }
            for (long h = 0; h < H; h++) {
                dbd[e * H + h] += dd[h];                    /* 4 (bias) */
                double s9 = 0.0;
                for (long i = 0; i < I; i++) {
                    dwgu[((e * H + h) * 2 + 0) * I + i] += x[t * H + h] * dg[i];  /* 8 */
                    dwgu[((e * H + h) * 2 + 1) * I + i] += x[t * H + h] * du[i];
                    s9 += dg[i] * wgu[((e * H + h) * 2 + 0) * I + i]              /* 9 */
                          + du[i] * wgu[((e * H + h) * 2 + 1) * I + i];
                }
                dx[t * H + h] = (o->acc ? dx[t * H + h] : 0.0) + s9;
            }
        }
    }
    free(dd), free(dg), free(du);
}
