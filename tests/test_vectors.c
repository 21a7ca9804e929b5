/* tests/test_vectors.c: tests of case loading from shared/vectors (tests/util/vectors.c):
 * case lists, options, list and integer inputs, tolerances, what an adapter maps, and load
 * errors */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kgen/abi.h"
#include "kgen/npy.h"
#include "util/casew.h"
#include "util/compare.h"
#include "util/files.h"
#include "util/vectors.h"


/* ---- vectors: cases ------------------------------------------------------------------------- */

#define RMS_CASE "rmsnorm_quant/row_rms_norm_lb0p5_h200_r1"

Test(vectors, shared_dir_env_overrides_macro)
{
    unsetenv("KGEN_SHARED_DIR");
    cr_assert_str_eq(kgt_shared_dir(), KGEN_SHARED_DIR);
    setenv("KGEN_SHARED_DIR", "/elsewhere", 1);
    cr_assert_str_eq(kgt_shared_dir(), "/elsewhere");
    setenv("KGEN_SHARED_DIR", "", 1);
    cr_assert_str_eq(kgt_shared_dir(), KGEN_SHARED_DIR);
}

Test(vectors, case_list_is_sorted)
{
    char **names;
    int n;
    cr_assert_eq(kgt_case_list(kgt_vectors_path("cumsum"), &names, &n), 0);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(names[0], "1x5000_bf16");
    cr_assert_str_eq(names[1], "2x2049_f32");
    cr_assert_str_eq(names[2], "3x7_bf16");
    kgt_case_list_free(names, n);

    cr_assert_eq(kgt_case_list(kgt_vectors_path("rmsnorm_quant"), &names, &n), 0);
    cr_assert_eq(n, 18);
    for (int i = 1; i < n; i++)
        cr_assert_lt(strcmp(names[i - 1], names[i]), 0, "%s before %s", names[i - 1], names[i]);
    kgt_case_list_free(names, n);

    cr_assert_eq(kgt_case_list(kgt_vectors_path("no_such_kernel"), &names, &n), -1);
    cr_assert_null(names);
    cr_assert_eq(n, 0);
}

Test(vectors, load_real_case)
{
    char err[512] = "";
    kgt_case *c = kgt_case_load(kgt_vectors_path(RMS_CASE), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_assert_str_eq(kgt_case_name(c), "row_rms_norm_lb0p5_h200_r1");

    const char *s;
    double x;
    int b;
    cr_assert(kgt_case_opt_str(c, "norm_type", &s));
    cr_assert_str_eq(s, "RMS_NORM");
    cr_assert(kgt_case_opt_num(c, "eps", &x));
    cr_assert_float_eq(x, 1e-6, 1e-18);
    cr_assert(kgt_case_opt_num(c, "lower_bound", &x));
    cr_assert_float_eq(x, 0.5, 0);
    cr_assert_not(kgt_case_opt_num(c, "norm_type", &x), "a string is not a number");
    cr_assert_not(kgt_case_opt_bool(c, "eps", &b), "a number is not a bool");
    cr_assert_not(kgt_case_opt_str(c, "absent", &s));

    cr_assert_str_eq(kgt_case_input_dtype(c, "inp"), "bf16");
    cr_assert_str_eq(kgt_case_input_dtype(c, "gamma"), "bf16");
    cr_assert_null(kgt_case_input_dtype(c, "out_out"));

    const kg_npy *gamma = kgt_case_input(c, "gamma");
    cr_assert_not_null(gamma, "%s", kgt_case_error(c));
    cr_assert(gamma->dtype == KG_F32 && gamma->rank == 1 && gamma->shape[0] == 200);
    cr_assert_eq(kgt_case_input(c, "gamma"), gamma, "second look-up returns the cached array");
    cr_assert_null(kgt_case_input(c, "beta"));
    cr_assert_not_null(strstr(kgt_case_error(c), "no input named 'beta'"), "%s",
                       kgt_case_error(c));
    cr_assert_null(kgt_case_input(c, "out_out"), "outputs are not inputs");

    const kg_npy *q = kgt_case_output(c, "out_out");
    cr_assert_not_null(q, "%s", kgt_case_error(c));
    cr_assert(q->dtype == KG_U8 && q->rank == 3 && q->shape[2] == 200);
    cr_assert_null(kgt_case_output(c, "inp"), "inputs are not outputs");
    kgt_case_free(c);
}

Test(vectors, bool_option_and_list_inputs)
{
    char err[512] = "";
    kgt_case *c = kgt_case_load(kgt_vectors_path("transformer_tkg/l1_b1_s1_pos"), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    int b = 0;
    double x;
    cr_assert(kgt_case_opt_bool(c, "cache_update", &b));
    cr_assert_eq(b, 1);
    cr_assert(kgt_case_opt_num(c, "num_layers", &x));
    cr_assert_float_eq(x, 1.0, 0);
    cr_assert_not_null(kgt_case_input(c, "W_qkvs_0"), "%s", kgt_case_error(c));
    kgt_case_free(c);
}

/* <u4 inputs of the vectors (kv_cache_update_idx, block tables) read as KG_U32. */
Test(vectors, u32_file_reads)
{
    char err[512] = "";
    kgt_case *c = kgt_case_load(kgt_vectors_path("attention_block_tkg/norm_rope_noupdate_oproj_b2_s1"), err,
                                sizeof err);
    cr_assert_not_null(c, "%s", err);
    const kg_npy *a = kgt_case_input(c, "kv_cache_update_idx");
    cr_assert_not_null(a, "%s", kgt_case_error(c));
    cr_assert_eq(a->dtype, KG_U32);
    kgt_case_free(c);
}

/* ---- vectors: what an adapter maps ---------------------------------------------------------- */

/* A case with options a (string) and b (number), float input x (bf16) and integer input n. */
static kgt_case *small_case(kgt_casew **w)
{
    static const float x[4] = { 1.0f, -2.0f, 0.5f, 3.0f };
    static const int32_t n[2] = { 7, -1 };
    long xs[1] = { 4 };
    *w = kgt_casew_new("k", "small");
    kgt_casew_opt_str(*w, "a", "A");
    kgt_casew_opt_num(*w, "b", 2.5);
    kgt_casew_input(*w, "x", "bf16", x, 1, xs);
    kg_npy a = { .dtype = KG_I32, .rank = 1, .shape = { 2 }, .data = (void *)n };
    kgt_casew_input_npy(*w, "n", "i32", &a);
    char err[512] = "";
    kgt_case *c = kgt_case_load(kgt_casew_finish(*w), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    return c;
}

/* Each option and input the adapter did not read is named, in order, until all are read. */
Test(vectors, unmapped_options_and_inputs)
{
    kgt_casew *w;
    kgt_case *c = small_case(&w);
    char buf[256];
    const char *s;
    cr_assert(kgt_case_unmapped(c, buf, sizeof buf));
    cr_assert_str_eq(buf, "option 'a' (= \"A\")");
    double x;
    cr_assert_not(kgt_case_opt_num(c, "a", &x), "a is a string");
    cr_assert(kgt_case_unmapped(c, buf, sizeof buf));
    cr_assert_str_eq(buf, "option 'b' (= 2.5)", "asking for a with the wrong type reads it");
    cr_assert_not(kgt_case_opt_str(c, "absent", &s));
    cr_assert(kgt_case_opt_has(c, "b"));
    cr_assert(kgt_case_unmapped(c, buf, sizeof buf));
    cr_assert_str_eq(buf, "input 'x'");
    cr_assert_not_null(kgt_case_input_dtype(c, "x"));
    cr_assert(kgt_case_unmapped(c, buf, sizeof buf), "a dtype look-up is not a read");
    cr_assert_not_null(kgt_case_input(c, "x"));
    cr_assert(kgt_case_unmapped(c, buf, sizeof buf));
    cr_assert_str_eq(buf, "input 'n'");
    free(kgt_case_as(c, "n", KG_I64));
    cr_assert_not(kgt_case_unmapped(c, buf, sizeof buf), "%s", buf);
    cr_assert_str_eq(buf, "");
    kgt_case_free(c);
    kgt_casew_free(w);
}

/* Conversions keep exact values only, and name the element that is not one. */
Test(vectors, case_as_converts_exact_values_only)
{
    kgt_casew *w;
    kgt_case *c = small_case(&w);
    float *n = kgt_case_as(c, "n", KG_F32);
    cr_assert(n && n[0] == 7.0f && n[1] == -1.0f);
    free(n);
    cr_assert_null(kgt_case_as(c, "n", KG_U32), "-1 is no u32");
    cr_assert_not_null(strstr(kgt_case_error(c), "'n' element 1 (-1)"), "%s", kgt_case_error(c));
    cr_assert_null(kgt_case_as(c, "x", KG_I32), "0.5 is no integer");
    cr_assert_not_null(strstr(kgt_case_error(c), "'x' element 2 (0.5)"), "%s",
                       kgt_case_error(c));
    cr_assert_null(kgt_case_as(c, "x", KG_I64), "nor an i64");
    cr_assert_null(kgt_case_as(c, "x", KG_BF16), "only f32 and the integers are targets");
    cr_assert_null(kgt_case_as(c, "none", KG_F32));
    kgt_case_free(c);
    kgt_casew_free(w);

    /* fp32-stored whole numbers (upstream's bounds) become integers; 2^31 is no i32 */
    static const float f[3] = { 3.0f, -4.0f, 2147483648.0f };
    long fs[1] = { 3 };
    w = kgt_casew_new("k", "floats");
    kgt_casew_input(w, "f", "f32", f, 1, fs);
    char err[512];
    c = kgt_case_load(kgt_casew_finish(w), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    int64_t *l = kgt_case_as(c, "f", KG_I64);
    cr_assert(l && l[0] == 3 && l[1] == -4 && l[2] == 2147483648ll);
    free(l);
    cr_assert_null(kgt_case_as(c, "f", KG_I32));
    kgt_case_free(c);
    kgt_casew_free(w);
}

/* The kernel dtype that holds every listed input exactly. */
Test(vectors, float_dtype_is_the_narrowest_exact_one)
{
    static const float v[1] = { 1.0f };
    long s1[1] = { 1 };
    kgt_casew *w = kgt_casew_new("k", "dtypes");
    static const char *const dt[] = { "bf16", "fp16", "f32", "fp8_e4m3", "i32", "q4" };
    static const char *const nm[] = { "b", "h", "f", "e", "i", "q" };
    for (int i = 0; i < 6; i++)
        kgt_casew_input(w, nm[i], dt[i], v, 1, s1);
    char err[512];
    kgt_case *c = kgt_case_load(kgt_casew_finish(w), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    const char *const be[] = { "b", "e", "absent" }, *const eh[] = { "e", "h" };
    const char *const bh[] = { "b", "h" }, *const bf[] = { "b", NULL, "f" };
    cr_assert_eq(kgt_case_float_dtype(c, be, 3), KG_BF16);
    cr_assert_eq(kgt_case_float_dtype(c, eh, 2), KG_F16);
    cr_assert_eq(kgt_case_float_dtype(c, bh, 2), KG_F32, "bf16 and fp16 values need f32");
    cr_assert_eq(kgt_case_float_dtype(c, bf, 3), KG_F32);
    const char *const i[] = { "b", "i" }, *const q[] = { "q" }, *const none[] = { "absent" };
    cr_assert_eq(kgt_case_float_dtype(c, i, 2), -1);
    cr_assert_not_null(strstr(kgt_case_error(c), "'i' has dtype 'i32', not a float"), "%s",
                       kgt_case_error(c));
    cr_assert_eq(kgt_case_float_dtype(c, q, 1), -1);
    cr_assert_not_null(strstr(kgt_case_error(c), "'q' has dtype 'q4', which no convention"),
                       "%s", kgt_case_error(c));
    cr_assert_eq(kgt_case_float_dtype(c, none, 1), -1);
    cr_assert_eq(kgt_case_dtype(c, "e"), KG_E4M3);
    cr_assert_eq(kgt_case_dtype_from_name("u32"), KG_U32);
    cr_assert_eq(kgt_case_dtype_from_name("float32"), -1);
    kgt_case_free(c);
    kgt_casew_free(w);
}

/* List inputs by "list_inputs", or by NAME_0, NAME_1, ... in "inputs" when a case has none. */
Test(vectors, list_inputs_listed_or_numbered)
{
    static const float v0[2] = { 1.0f, 1.5f }, v1[2] = { 2.0f, 2.5f };
    long s[1] = { 2 };
    for (int listed = 0; listed < 2; listed++) {
        kgt_casew *w = kgt_casew_new("k", "lists");
        kgt_casew_input(w, "h_0", "bf16", v0, 1, s);
        kgt_casew_input(w, "h_1", "bf16", v1, 1, s);
        kgt_casew_input(w, "h_3", "bf16", v0, 1, s);
        if (listed)
            kgt_casew_list(w, "h", 2);
        char err[512];
        kgt_case *c = kgt_case_load(kgt_casew_finish(w), err, sizeof err);
        cr_assert_not_null(c, "%s", err);
        cr_assert_eq(kgt_case_list_len(c, "h"), 2, "h_3 does not follow h_1");
        cr_assert_eq(kgt_case_list_len(c, "g"), 0);
        cr_assert_str_eq(kgt_case_list_name(c, "h", 1), "h_1");
        const kg_npy *a = kgt_case_list_input(c, "h", 1);
        cr_assert(a && ((const float *)a->data)[0] == 2.0f, "%s", kgt_case_error(c));
        cr_assert_null(kgt_case_list_input(c, "h", 2));
        cr_assert(kgt_case_has_output(c, "nothing") == 0);
        kgt_case_free(c);
        kgt_casew_free(w);
    }
    char err[512];
    kgt_case *c = kgt_case_load(kgt_vectors_path("transformer_tkg/l2_b2_s1_pos"), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_assert_eq(kgt_case_list_len(c, "W_qkvs"), 2);
    cr_assert_not_null(kgt_case_list_input(c, "K_caches", 1), "%s", kgt_case_error(c));
    cr_assert(kgt_case_has_output(c, "out_K_cache_1"));
    cr_assert_not(kgt_case_has_output(c, "K_caches_1"), "an input is not an output");
    kgt_case_free(c);
}

Test(vectors, load_errors, .init = kgt_tmp_make, .fini = kgt_tmp_drop)
{
    char err[512] = "";
    cr_assert_null(kgt_case_load(kgt_tmp("nothing"), err, sizeof err));
    cr_assert_not_null(strstr(err, "case.json"), "%s", err);
    mkdir(kgt_tmp("bad"), 0700);
    kgt_write_bytes(kgt_tmp("bad/case.json"), "{\"inputs\": [", 12);
    cr_assert_null(kgt_case_load(kgt_tmp("bad"), err, sizeof err));
    cr_assert_not_null(strstr(err, "bad/case.json:1:"), "%s", err);
    kgt_write_bytes(kgt_tmp("bad/case.json"), "{\"inputs\": []}", 14);
    cr_assert_null(kgt_case_load(kgt_tmp("bad"), err, sizeof err));
    cr_assert_not_null(strstr(err, "not a case"), "%s", err);
}

/* ---- vectors: tolerances -------------------------------------------------------------------- */

Test(vectors, tolerance_real_cases)
{
    char err[512] = "";
    double r, a;
    kgt_case *c = kgt_case_load(kgt_vectors_path(RMS_CASE), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_assert_eq(kgt_case_tol(c, "out_out_f32", &r, &a), 1);
    cr_assert(r == 0.072 && a == 1e-8, "rtol %g atol %g", r, a);
    cr_assert_eq(kgt_case_tol(c, "out_dequant_scale", &r, &a), 1);
    cr_assert(r == 0.007 && a == 1e-8, "rtol %g atol %g", r, a);
    cr_assert_eq(kgt_case_tol(c, "out_out", &r, &a), 0, "no entry for the raw bits");
    cr_assert(r == 0 && a == 0);
    kgt_case_free(c);

    c = kgt_case_load(kgt_vectors_path("transformer_tkg/l2_b2_s1_pos"), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_assert_eq(kgt_case_tol(c, "out_K_cache_1", &r, &a), 1, "matched by out_K_cache_*");
    cr_assert(r == 0.025 && a == 0.01, "rtol %g atol %g", r, a);
    cr_assert_eq(kgt_case_tol(c, "out_nothing", &r, &a), 0);
    kgt_case_free(c);

    c = kgt_case_load(kgt_vectors_path("qkv_tkg/no_norm_nobias_b1_s1"), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_assert_eq(kgt_case_tol(c, "out_out", &r, &a), 1, "matched by '*'");
    cr_assert(r == 0.02 && a == 1e-5, "rtol %g atol %g", r, a);
    kgt_case_free(c);

    c = kgt_case_load(kgt_vectors_path("router_topk/softmax_k4_post_bias_l0"), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_assert_eq(kgt_case_tol(c, "out_expert_index", &r, &a), 0, "exact");
    cr_assert(r == 0 && a == 0);
    cr_assert_eq(kgt_case_tol(c, "out_router_logits", &r, &a), 1);
    kgt_case_free(c);
}

Test(vectors, tolerance_wildcard_rule, .init = kgt_tmp_make, .fini = kgt_tmp_drop)
{
    static const char json[] =
        "{\"case\": \"synthetic\", \"inputs\": [], \"options\": {},\n"
        " \"outputs\": [{\"name\": \"out_a\"}, {\"name\": \"out_b1\"}, {\"name\": \"out_c\"},\n"
        "              {\"name\": \"out_d\"}],\n"
        " \"tolerance\": {\"*\": {\"rtol\": 0.1, \"atol\": 0.01, \"mode\": \"max\"},\n"
        "   \"out_a\": {\"exact\": true},\n"
        "   \"out_b*\": {\"rtol\": 0.2, \"atol\": 0.02, \"mode\": \"max\"},\n"
        "   \"out_d\": {\"mode\": \"max\"}}}\n";
    char err[512] = "";
    double r, a;
    kgt_write_bytes(kgt_tmp("case.json"), json, sizeof json - 1);
    kgt_case *c = kgt_case_load(kgt_tmp_dir(), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_assert_eq(kgt_case_tol(c, "out_a", &r, &a), 0, "the exact key beats '*'");
    cr_assert(r == 0 && a == 0);
    cr_assert_eq(kgt_case_tol(c, "out_b1", &r, &a), 1);
    cr_assert(r == 0.2 && a == 0.02, "the more specific wildcard wins: %g %g", r, a);
    cr_assert_eq(kgt_case_tol(c, "out_c", &r, &a), 1);
    cr_assert(r == 0.1 && a == 0.01, "'*' matches any: %g %g", r, a);
    cr_assert_eq(kgt_case_tol(c, "out_d", &r, &a), 1);
    cr_assert(r == 1e-5 && a == 1e-8, "upstream defaults: %g %g", r, a);
    cr_assert_eq(kgt_case_tol(c, "out_zz", &r, &a), 0, "not an output of the case");
    kgt_case_free(c);
}

/* ---- vectors and comparator together -------------------------------------------------------- */

/* float8_e4m3 (bias 7, max 240) to float, the test's own decoder (no dtype.c dependency). */
static float e4m3(unsigned char c)
{
    int e = (c >> 3) & 15, m = c & 7;
    float v = e ? ldexpf(1 + m / 8.0f, e - 7) : ldexpf(m / 8.0f, -6);
    if (e == 15)
        v = m ? NAN : INFINITY;
    return c & 0x80 ? -v : v;
}

Test(vectors, rmsnorm_quant_bits_decode_to_f32_golden)
{
    char err[512] = "", msg[512];
    double r, a;
    kgt_case *c = kgt_case_load(kgt_vectors_path(RMS_CASE), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    const kg_npy *bits = kgt_case_output(c, "out_out"), *vals = kgt_case_output(c, "out_out_f32");
    cr_assert(bits && vals, "%s", kgt_case_error(c));
    long n = kg_npy_count(bits);
    cr_assert_eq(n, kg_npy_count(vals));
    float *dec = malloc((size_t)n * sizeof *dec);
    for (long i = 0; i < n; i++)
        dec[i] = e4m3(((unsigned char *)bits->data)[i]);
    cr_assert(kgt_case_tol(c, "out_out_f32", &r, &a));
    cr_assert(kgt_allclose_shaped(dec, vals->data, vals->rank, vals->shape, r, a, msg,
                                  sizeof msg), "%s", msg);
    free(dec);
    kgt_case_free(c);
}

Test(vectors, cumsum_golden_and_a_planted_error)
{
    char err[512] = "", msg[512];
    double r, a;
    kgt_case *c = kgt_case_load(kgt_vectors_path("cumsum/3x7_bf16"), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    const kg_npy *x = kgt_case_input(c, "x"), *want = kgt_case_output(c, "out_output_0");
    cr_assert(x && want, "%s", kgt_case_error(c));
    cr_assert(x->rank == 2 && x->shape[0] == 3 && x->shape[1] == 7);
    cr_assert(kgt_case_tol(c, "out_output_0", &r, &a));
    float y[21];
    const float *xv = x->data;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 7; j++)
            y[i * 7 + j] = (j ? y[i * 7 + j - 1] : 0) + xv[i * 7 + j];
    cr_assert(kgt_allclose_shaped(y, want->data, 2, want->shape, r, a, msg, sizeof msg), "%s",
              msg);
    y[1 * 7 + 4] += 10;
    cr_assert_not(kgt_allclose_shaped(y, want->data, 2, want->shape, r, a, msg, sizeof msg));
    cr_assert_not_null(strstr(msg, "worst at [1, 4]"), "%s", msg);
    cr_assert_not_null(strstr(msg, "1 of 21 elements out"), "%s", msg);
    kgt_case_free(c);
}

Test(vectors, exact_output_real_case)
{
    char err[512] = "", msg[256];
    kgt_case *c = kgt_case_load(kgt_vectors_path("router_topk/softmax_k4_post_bias_l0"), err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    const kg_npy *idx = kgt_case_output(c, "out_expert_index");
    cr_assert_not_null(idx, "%s", kgt_case_error(c));
    cr_assert_eq(idx->dtype, KG_I32);
    long n = kg_npy_count(idx);
    int32_t *copy = malloc((size_t)n * sizeof *copy);
    memcpy(copy, idx->data, (size_t)n * sizeof *copy);
    cr_assert(kgt_equal_i32(copy, idx->data, n, msg, sizeof msg), "%s", msg);
    copy[n - 1] += 1;
    cr_assert_not(kgt_equal_i32(copy, idx->data, n, msg, sizeof msg));
    char want[64];
    snprintf(want, sizeof want, "first mismatch at [%ld]", n - 1);
    cr_assert_not_null(strstr(msg, want), "%s", msg);
    free(copy);
    kgt_case_free(c);
}
