/* test_prim_accuracy.c: the scalar references of the transcendental primitives against libm
 * in double: the activations (SiLU, Swish, GELU, GELU-tanh) within 1 ulp, with every SIMD table
 * giving the scalar bits over the same dense sweep, and kg_exp (exp_sum_f32) within 2 ulp.
 * test_prim_simd.c compares SIMD with scalar on every primitive; this file checks that the scalar
 * itself is right. */
#include <criterion/criterion.h>

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prim.h"

static const char *const ISAS[] = { "avx2", "avx512" };

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* The ISAs this CPU runs. */
static int offered(const char *isa)
{
    return kgr_prim_impl(isa, "add_f32") != NULL;
}

/* ---- the activations' accuracy: the scalar reference against libm in double ---------------- */

/* The exact functions, as far as double libm gives them, in forms that neither overflow nor
 * cancel: x / (1 + e^-k) is x sigmoid(k), and 0.5(1 + tanh u) = 1 / (1 + e^-2u). At -inf they
 * are NaN, as the fp32 formulas of kgen/abi.h are. */
static double silu_ref(double x) { return x / (1.0 + exp(-x)); }
static double swish_ref(double x) { return x / (1.0 + exp(-1.702 * x)); }
static double gelu_ref(double x) { return 0.5 * x * erfc(-x * 0.70710678118654752440); }
static double gelu_tanh_ref(double x)
{
    double u = 0.79788456080286535588 * (x + 0.044715 * x * x * x);
    return x / (1.0 + exp(-2.0 * u));
}

/* |got - want| in units of fp32's ulp at want (2^-149 in the subnormal range); -1 when NaN or
 * inf do not match. */
static double ulps(float got, double want)
{
    if (isnan(want) || isinf(want))
        return (isnan(want) ? isnan(got) : (double)got == want) ? 0.0 : -1.0;
    if (isnan(got) || isinf(got))
        return -1.0;
    double a = fabs(want);
    double ulp = a < 0x1p-126 ? 0x1p-149 : ldexp(1.0, ilogb(a) - 23);
    return fabs((double)got - want) / ulp;
}

/* A dense sweep: every 509th fp32 pattern (every exponent, both signs), every 2^-10 step of
 * [-40, 40] (the tails where sigmoid and erfc are tiny), and the specials. The bound is 1 ulp:
 * the double evaluation is accurate to about 1e-10, so only the final rounding to fp32 counts.
 * The SIMD versions must give the scalar bits over the same sweep: a slip in their double
 * arithmetic shows only where it moves a rounding, so it takes millions of points to see. */
Test(prim_accuracy, activations_within_1ulp_of_libm)
{
    typedef void act_fn(float *, const float *, long);
    static act_fn *const fns[] = { kgp_silu_f32__scalar, kgp_swish_f32__scalar,
                                   kgp_gelu_f32__scalar, kgp_gelu_tanh_f32__scalar };
    static double (*const refs[])(double) = { silu_ref, swish_ref, gelu_ref, gelu_tanh_ref };
    static const char *const names[] = { "silu_f32", "swish_f32", "gelu_f32", "gelu_tanh_f32" };
    long n = 0, cap = (1L << 32) / 509 + 81921 + 16;
    float *x = malloc(cap * 4), *y = malloc(cap * 4), *yv = malloc(cap * 4);
    for (uint64_t u = 0; u < (1ull << 32); u += 509)
        x[n++] = from_bits((uint32_t)u);
    for (long i = -40 * 1024; i <= 40 * 1024; i++)
        x[n++] = (float)i / 1024.0f;
    static const float sp[] = { 0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, FLT_MAX, -FLT_MAX,
                                0x1p-149f, -0x1p-149f, 0x1p-126f, -0x1p-126f };
    for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++)
        x[n++] = sp[i];
    for (int f = 0; f < 4; f++) {
        fns[f](y, x, n);
        double worst = 0;
        long at = 0;
        for (long i = 0; i < n; i++) {
            double e = ulps(y[i], refs[f](x[i]));
            cr_assert(e >= 0, "%s(%a) = %a, want %a", names[f], x[i], y[i], refs[f](x[i]));
            if (e > worst)
                worst = e, at = i;
        }
        cr_log_info("%s: worst %.3f ulp at x = %a", names[f], worst, x[at]);
        cr_assert(worst <= 1.0, "%s(%a) = %a is %.3f ulp from %a", names[f], x[at], y[at], worst,
                  refs[f](x[at]));
        for (size_t k = 0; k < sizeof ISAS / sizeof ISAS[0]; k++) {
            if (!offered(ISAS[k]))
                continue;
            ((act_fn *)kgr_prim_impl(ISAS[k], names[f]))(yv, x, n);
            /* NaN payloads may differ; every other value must be the scalar bits */
            for (long i = 0; i < n; i++)
                cr_assert(memcmp(&yv[i], &y[i], 4) == 0 || (isnan(yv[i]) && isnan(y[i])),
                          "%s %s(%a) = %a, scalar %a", ISAS[k], names[f], x[i], yv[i], y[i]);
        }
    }
    free(x), free(y), free(yv);
}

/* kg_exp (exp_sum_f32 with m = 0) within 2 ulp of libm's double exp over [-87, 88], every
 * 2^-10 step and its neighbours; 0 below -87 and at -inf, inf above 88. */
Test(prim_accuracy, exp_within_2ulp)
{
    enum { N = 175 * 1024 };
    float *x = malloc(N * 4), *y = malloc(N * 4);
    for (long i = 0; i < N; i++)
        x[i] = nextafterf(-87.0f + (float)i / 1024.0f, (i & 1) ? 1e9f : -1e9f);
    x[0] = -87.0f, x[N - 1] = 88.0f;
    kgp_exp_sum_f32__scalar(y, x, 0.0f, N);
    double worst = 0;
    for (long i = 0; i < N; i++) {
        if (x[i] < -87.0f || x[i] > 88.0f)
            continue;
        double u = ulps(y[i], exp((double)x[i]));
        worst = u > worst ? u : worst;
        cr_assert(u >= 0 && u <= 2.0, "kg_exp(%.9g) = %.9g, want %.9g (%.2f ulp)", x[i], y[i],
                  exp((double)x[i]), u);
    }
    cr_log_info("kg_exp worst %.3f ulp", worst);
    float sp[4] = { -87.5f, -INFINITY, 88.5f, INFINITY }, ys[4];
    kgp_exp_sum_f32__scalar(ys, sp, 0.0f, 4);
    cr_assert(ys[0] == 0.0f && ys[1] == 0.0f && ys[2] == INFINITY && ys[3] == INFINITY,
              "kg_exp cut-offs: %g %g %g %g", ys[0], ys[1], ys[2], ys[3]);
    free(x), free(y);
}
