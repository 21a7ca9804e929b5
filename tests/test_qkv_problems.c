/* tests/test_qkv_problems.c: what the qkv generator refuses (every rejected option combination
 * of shared/reference/qkv.md, each message naming its key) and kernel names that parse back. The
 * kernels themselves are tested in test_qkv.c (sweeps) and test_qkv_vectors.c. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "util/jitp.h"

TestSuite(qkv_problems, .init = kgt_suite_init, .fini = kgt_suite_fini);

/* ---- problems the generator refuses ---------------------------------------------------------- */

Test(qkv_problems, rejected_problems_name_the_key)
{
    static const struct { const char *problem, *want; } bad[] = {
        { "qkv:variant=TKG,fused_rope=true", "key 'fused_rope'" },
        { "qkv:variant=TKG,kv_cache=FLAT", "key 'kv_cache'" },
        { "qkv:variant=TKG,norm_type=RMS_NORM_SKIP_GAMMA", "key 'norm_type'" },
        { "qkv:variant=TKG,dtype=e4m3fn,quantization_type=MX", "key 'dtype'" },
        { "qkv:output_layout=NBdS", "key 'output_layout'" },
        { "qkv:variant=TKG,output_layout=NBdS", "key 'output_layout'" },
        { "qkv:output_layout=NBSd,d=64", "key 'd'" },
        { "qkv:H=200", "key 'H'" },
        { "qkv:H=0", "key 'H'" },
        { "qkv:H=4096,hidden_actual=5000", "key 'hidden_actual'" },
        { "qkv:norm_type=RMS_NORM,layer_norm_bias=true", "key 'layer_norm_bias'" },
        { "qkv:fused_rope=true,d=33", "key 'd'" },
        { "qkv:weight_dtype=e4m3", "key 'weight_dtype'" },
        { "qkv:quantization_type=STATIC,weight_dtype=bf16", "key 'weight_dtype'" },
        { "qkv:quantization_type=ROW,weight_dtype=f32", "key 'weight_dtype'" },
        { "qkv:quantization_type=MX,weight_dtype=e4m3", "key 'weight_dtype'" },
        { "qkv:quantization_type=MX,weight_layout=CONTIGUOUS", "key 'weight_layout'" },
        { "qkv:quantization_type=MX,H=640", "key 'H'" },
        { "qkv:quantization_type=ROW,weight_layout=MX_CONTIGUOUS", "key 'weight_layout'" },
        { "qkv:quantization_type=ROW_MX", "key 'quantization_type'" },
        { "qkv:is_input_swizzled=true", "key 'is_input_swizzled'" },
        { "qkv:quantization_type=MX,is_input_swizzled=true,norm_type=RMS_NORM",
          "key 'is_input_swizzled'" },
        { "qkv:quantization_type=MX,is_input_swizzled=true,fused_residual_add=true",
          "key 'is_input_swizzled'" },
        { "qkv:quantization_type=MX,mx_static_dequant=true", "key 'mx_static_dequant'" },
        { "qkv:quantization_type=STATIC,mx_static_dequant=true", "key 'mx_static_dequant'" },
        { "qkv:quantization_type=MX,weight_layout=MX_INTERLEAVED,mx_static_dequant=true,"
          "dtype=e4m3fn", "key 'mx_static_dequant'" },
        { "qkv:quantization_type=STATIC,quant_max=300", "key 'quant_max'" },
        { "qkv:quantization_type=ROW,quant_max=200", "key 'quant_max'" },
        { "qkv:fp8_max=200", "key 'fp8_max'" },
        { "qkv:fp8_min=-200", "key 'fp8_min'" },
        { "qkv:dtype=e4m3fn", "key 'dtype'" },
        { "qkv:dtype=e4m3fn,quantization_type=MX,norm_type=RMS_NORM", "key 'dtype'" },
        { "qkv:dtype=e4m3,quantization_type=MX,kv_cache=FLAT", "key 'dtype'" },
        { "qkv:kv_cache=FLAT,output_layout=NBSd", "key 'output_layout'" },
        { "qkv:kv_cache=FLAT,kv_dtype=e5m2", "key 'kv_dtype'" },
        { "qkv:kv_cache=BLOCK", "key 'block_size'" },
        { "qkv:kv_cache=FLAT,block_size=16", "key 'block_size'" },
        { "qkv:block_size=16", "key 'block_size'" },
        { "qkv:kv_cache=FLAT,fp8_max=300", "key 'fp8_max'" },
        { "qkv:kv_cache=FLAT,fp8_max=100,fp8_min=120", "key 'fp8_min'" },
        { "qkv:kv_cache=FLAT,fp8_min=-300", "key 'fp8_min'" },
        { "qkv:variant=DECODE", "key 'variant'" },
        { "qkv:store_output_in_sbuf=false", "key 'store_output_in_sbuf'" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        kgt_problem_rejected(bad[i].problem, bad[i].want);
}

/* ---- names ----------------------------------------------------------------------------------- */

Test(qkv_problems, names_parse_back_and_are_unique)
{
    static const char *const problems[] = {
        "qkv",
        "qkv:variant=TKG",
        "qkv:dtype=f32,weight_dtype=bf16",
        "qkv:norm_type=RMS_NORM,eps=1e-05,bias=true,fused_residual_add=true",
        "qkv:norm_type=LAYER_NORM,layer_norm_bias=true",
        "qkv:norm_type=RMS_NORM_SKIP_GAMMA,H=256,hidden_actual=200",
        "qkv:quantization_type=STATIC",
        "qkv:quantization_type=STATIC,weight_dtype=e4m3fn",
        "qkv:quantization_type=STATIC,quant_max=200",
        "qkv:quantization_type=ROW,variant=TKG",
        "qkv:quantization_type=MX",
        "qkv:quantization_type=MX,weight_layout=MX_INTERLEAVED",
        "qkv:quantization_type=MX,weight_layout=MX_INTERLEAVED,mx_static_dequant=true",
        "qkv:quantization_type=MX,is_input_swizzled=true",
        "qkv:quantization_type=MX,dtype=e4m3fn",
        "qkv:output_layout=NBSd",
        "qkv:fused_rope=true",
        "qkv:kv_cache=FLAT",
        "qkv:kv_cache=FLAT,fp8_max=200,fp8_min=-100",
        "qkv:kv_cache=BLOCK,block_size=16",
        "qkv:kv_cache=BLOCK,block_size=128",
        "qkv:H=128,nq=1,nkv=1,d=3",
    };
    enum { N = sizeof problems / sizeof problems[0] };
    char names[N][512];
    for (int i = 0; i < N; i++) {
        kgt_name_parses_back(problems[i], names[i], sizeof names[i]);
        for (int j = 0; j < i; j++)
            cr_assert_str_neq(names[j], names[i], "%s and %s share the name %s", problems[j],
                              problems[i], names[i]);
    }
}
