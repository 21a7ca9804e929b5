/* tests/test_mlp_problems.c: what the mlp generator refuses (every rejected option combination
 * of shared/reference/mlp.md, each message naming its key) and kernel names that parse back. The
 * kernels themselves are tested in test_mlp.c (sweeps) and test_mlp_vectors.c. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "util/jitp.h"

TestSuite(mlp_problems, .init = kgt_suite_init, .fini = kgt_suite_fini);

/* ---- names ----------------------------------------------------------------------------------- */

Test(mlp_problems, names_parse_back_and_are_unique)
{
    static const char *const problems[] = {
        "mlp:", "mlp:variant=TKG", "mlp:dtype=f32,out_dtype=fp16,H=256,I=344",
        "mlp:variant=TKG,quantization_type=ROW,normalization_type=RMS_NORM,eps=1e-5",
        "mlp:variant=TKG,quantization_type=STATIC,fp8=e4m3fn",
        "mlp:variant=CTE,quantization_type=ROW,quant_clipping_bound=2.5,quant_max=200",
        "mlp:variant=CTE,quantization_type=STATIC_MX,weight_layout=swizzled",
        "mlp:variant=CTE,quantization_type=STATIC_MX,weight_dtype=e4m3fn,quant_max=240",
        "mlp:variant=TKG,quantization_type=MX,weight_dtype=e2m1,is_input_swizzled=true",
        "mlp:variant=TKG,quantization_type=MX,weight_dtype=e5m2",
        "mlp:variant=TKG,gate_clamp_lower_limit=-0.6,gate_clamp_upper_limit=0.7,"
        "up_clamp_lower_limit=-0.5,up_clamp_upper_limit=0.8,activation_fn=Swish",
        "mlp:normalization_type=LAYER_NORM,layer_norm_bias=true,fused_residual_add=true,"
        "store_fused_add_result=true,gate_bias=true,up_bias=true,down_bias=true",
        "mlp:skip_gate_proj=true,activation_fn=GELU_Tanh_Approx,"
        "normalization_type=RMS_NORM_SKIP_GAMMA",
    };
    enum { N = sizeof problems / sizeof problems[0] };
    char names[N][256];
    for (int i = 0; i < N; i++) {
        kgt_name_parses_back(problems[i], names[i], sizeof names[0]);
        for (int j = 0; j < i; j++)
            cr_assert_str_neq(names[i], names[j], "%s and %s share the name %s", problems[i],
                              problems[j], names[i]);
    }
    /* keys an option leaves unused do not split names: eps without a norm, quant_max in TKG */
    char a[256], b[256];
    kgt_name_parses_back("mlp:eps=1e-5", a, sizeof a);
    cr_assert_str_eq(a, names[0], "eps changed the name of a NO_NORM kernel");
    kgt_name_parses_back("mlp:variant=TKG,quant_max=100", b, sizeof b);
    cr_assert_str_eq(b, names[1], "quant_max changed the name of a TKG kernel");
}

Test(mlp_problems, rejected_combinations_name_the_key)
{
    static const struct { const char *problem, *want; } bad[] = {
        { "mlp:H=200", "key 'H'" },
        { "mlp:I=0", "key 'I'" },
        { "mlp:variant=XYZ", "key 'variant'" },
        { "mlp:activation_fn=ReLU", "key 'activation_fn'" },
        { "mlp:eps=-1", "key 'eps'" },
        { "mlp:variant=CTE,quantization_type=MX,H=512,I=512", "key 'quantization_type'" },
        { "mlp:variant=TKG,quantization_type=STATIC_MX", "key 'quantization_type'" },
        { "mlp:variant=CTE,gate_clamp_upper_limit=1", "key 'gate_clamp_upper_limit'" },
        { "mlp:variant=CTE,gate_clamp_lower_limit=-1", "key 'gate_clamp_lower_limit'" },
        { "mlp:variant=CTE,up_clamp_lower_limit=-1", "key 'up_clamp_lower_limit'" },
        { "mlp:variant=CTE,up_clamp_upper_limit=1", "key 'up_clamp_upper_limit'" },
        { "mlp:variant=TKG,skip_gate_proj=true,gate_clamp_lower_limit=-1",
          "key 'gate_clamp_lower_limit'" },
        { "mlp:skip_gate_proj=true,gate_bias=true", "key 'gate_bias'" },
        { "mlp:layer_norm_bias=true,normalization_type=RMS_NORM", "key 'layer_norm_bias'" },
        { "mlp:store_fused_add_result=true", "key 'store_fused_add_result'" },
        { "mlp:variant=CTE,quantization_type=ROW,fused_residual_add=true",
          "key 'fused_residual_add'" },
        { "mlp:variant=CTE,quantization_type=STATIC,normalization_type=RMS_NORM",
          "key 'normalization_type'" },
        { "mlp:variant=CTE,quantization_type=STATIC_MX,normalization_type=LAYER_NORM",
          "key 'normalization_type'" },
        { "mlp:variant=CTE,quantization_type=ROW,down_bias=true", "key 'down_bias'" },
        { "mlp:variant=TKG,quantization_type=ROW,quant_clipping_bound=1",
          "key 'quant_clipping_bound'" },
        { "mlp:variant=CTE,quantization_type=STATIC,quant_clipping_bound=1",
          "key 'quant_clipping_bound'" },
        { "mlp:variant=TKG,quantization_type=MX,H=384,I=512", "key 'H'" },
        { "mlp:variant=TKG,quantization_type=MX,H=512,I=600", "key 'I'" },
        { "mlp:variant=TKG,quantization_type=MX,H=512,I=100", "key 'I'" },
        { "mlp:variant=TKG,quantization_type=MX,H=512,I=512,fused_residual_add=true",
          "key 'fused_residual_add'" },
        { "mlp:is_input_swizzled=true", "key 'is_input_swizzled'" },
        { "mlp:weight_layout=swizzled", "key 'weight_layout'" },
        { "mlp:variant=TKG,quantization_type=MX,H=512,I=512,weight_layout=kn",
          "key 'weight_layout'" },
        { "mlp:variant=CTE,quantization_type=STATIC_MX,weight_layout=swizzled,H=512,I=384",
          "key 'weight_layout'" },
        { "mlp:quantization_type=ROW,weight_dtype=bf16", "key 'weight_dtype'" },
        { "mlp:variant=TKG,quantization_type=MX,weight_dtype=e4m3,H=512,I=512",
          "key 'weight_dtype'" },
        { "mlp:weight_dtype=e2m1", "key 'weight_dtype'" },
        { "mlp:variant=CTE,quantization_type=ROW,quant_max=300", "key 'quant_max'" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        kgt_problem_rejected(bad[i].problem, bad[i].want);
}
