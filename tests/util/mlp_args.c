/* tests/util/mlp_args.c: what the mlp tests read off a kernel (util/mlp_args.h): its options
 * from its problem string, and upstream's MX layouts. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "kgen/dtype.h"
#include "kgen/kgen.h"
#include "ref/ref.h"
#include "util/mlp_args.h"

const char *const mlpa_quants[] = { "NONE", "STATIC", "ROW", "MX", "STATIC_MX" };
const char *const mlpa_acts[] = { "SiLU", "GELU", "GELU_Tanh_Approx", "Swish" };
const char *const mlpa_norms[] = { "NO_NORM", "RMS_NORM", "LAYER_NORM", "RMS_NORM_SKIP_GAMMA" };

static int lookup(const char *problem, const char *key, const char *const *names, int n)
{
    char v[64];
    cr_assert(kg_problem_str(problem, key, v, sizeof v), "%s: no key %s", problem, key);
    for (int i = 0; i < n; i++)
        if (!strcmp(v, names[i]))
            return i;
    cr_assert_fail("%s: %s=%s is not known to the test", problem, key, v);
    return -1;
}

static int flag(const char *problem, const char *key)
{
    char v[16];
    cr_assert(kg_problem_str(problem, key, v, sizeof v), "%s: no key %s", problem, key);
    return !strcmp(v, "true");
}

static float num(const char *problem, const char *key)
{
    double v;
    cr_assert(kg_problem_double(problem, key, &v), "%s: no key %s", problem, key);
    return (float)v;
}

static int dtype_of(const char *problem, const char *key)
{
    char v[16];
    cr_assert(kg_problem_str(problem, key, v, sizeof v), "%s: no key %s", problem, key);
    return !strcmp(key, "weight_dtype") ? kg_wt_fmt_from_name(v) : kg_dtype_from_name(v);
}

/* A clamp key at +-FLT_MAX is "no clamp": the reference gets an infinity. */
static float limit(const char *problem, const char *key)
{
    float v = num(problem, key);
    return fabsf(v) >= 3.4028234e38f ? (v < 0 ? -INFINITY : INFINITY) : v;
}

mlpa_opts mlpa_read_opts(const char *p)
{
    mlpa_opts o;
    char v[16];
    cr_assert(kg_problem_long(p, "H", &o.H) && kg_problem_long(p, "I", &o.I), "%s", p);
    cr_assert(kg_problem_str(p, "variant", v, sizeof v));
    o.tkg = !strcmp(v, "TKG");
    o.quant = lookup(p, "quantization_type", mlpa_quants, 5);
    o.act = lookup(p, "activation_fn", mlpa_acts, 4);
    o.norm = lookup(p, "normalization_type", mlpa_norms, 4);
    o.xq = !o.tkg && o.quant != MLP_REF_NONE;
    o.skip_gate = flag(p, "skip_gate_proj"), o.norm_bias = flag(p, "layer_norm_bias");
    o.fused_add = flag(p, "fused_residual_add"), o.store = flag(p, "store_fused_add_result");
    o.gb = flag(p, "gate_bias"), o.ub = flag(p, "up_bias"), o.db = flag(p, "down_bias");
    o.xswz = flag(p, "is_input_swizzled");
    cr_assert(kg_problem_str(p, "weight_layout", v, sizeof v));
    o.wswz = !strcmp(v, "swizzled") && o.quant == MLP_REF_STATIC_MX;
    o.t = (kg_dtype)dtype_of(p, "dtype"), o.ot = (kg_dtype)dtype_of(p, "out_dtype");
    o.wfmt = dtype_of(p, "weight_dtype");
    o.fn = o.wfmt == KG_WT_E4M3FN;
    o.eps = num(p, "eps"), o.clip = num(p, "quant_clipping_bound");
    o.quant_max = num(p, "quant_max");
    o.glo = limit(p, "gate_clamp_lower_limit"), o.ghi = limit(p, "gate_clamp_upper_limit");
    o.ulo = limit(p, "up_clamp_lower_limit"), o.uhi = limit(p, "up_clamp_upper_limit");
    return o;
}

/* The upstream MX layouts (mlp.md "MX"): a [rows, H] tensor 4H-swizzled (stored q*H/4 +
 * j*128 + p holds h = 512j + 4p + q), and a gate/up bias [P, ceil(I/512), 4] ([p, t, q] holds
 * i = t*4P + q*P + p; P = 128, or I/4 when I < 512). */
float *mlpa_swizzle_h(const float *x, long rows, long H)
{
    float *s = malloc((size_t)(rows * H) * sizeof *s);
    for (long r = 0; r < rows; r++)
        for (long q = 0; q < 4; q++)
            for (long j = 0; j < H / 512; j++)
                for (long p = 0; p < 128; p++)
                    s[r * H + q * (H / 4) + j * 128 + p] = x[r * H + 512 * j + 4 * p + q];
    return s;
}

float *mlpa_swizzle_bias(const float *b, long I)
{
    long P = I >= 512 ? 128 : I / 4, T5 = I >= 512 ? I / 512 : 1;
    float *s = malloc((size_t)I * sizeof *s);
    for (long p = 0; p < P; p++)
        for (long t = 0; t < T5; t++)
            for (long q = 0; q < 4; q++)
                s[(p * T5 + t) * 4 + q] = b[t * 4 * P + q * P + p];
    return s;
}
