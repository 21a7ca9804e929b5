/* test_gemm.c: packed weights and the GEMM primitive. Every stored layout and element format is
 * packed (at the active ISA's geometry and at odd ones) and multiplied; the scalar GEMM must
 * give the bits of the plain loop sum_k a*w in ascending k, and the SIMD ones (when selected)
 * agree with it within fp32 reordering. Also the packer's refusals, the quantize-dequantize
 * and activation primitives the projections use, and the kernel scratch. */
#include <criterion/criterion.h>

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/dtype.h"
#include "kgen/kgen.h"
#include "util/jitp.h"
#include "util/weights.h"

/* The function the runtime selected for primitive NAME, through its JIT symbol. */
#define PRIM(type, name) ((type *)kg_prim_lookup("kgp_" #name))
typedef void gemm_fn(float *C, long ldc, const float *A, long lda, long M, const kg_wt *W,
                     long n0, long n1);

static int narrow(int fmt)
{
    return fmt != KG_WT_F32 && fmt != KG_WT_F16;
}

/* The reference: C[m, n] = sum over k ascending of a(m, k) * W[k, n] in fp32, a rounded to
 * bf16 for narrow formats (kgen/abi.h, kgp_gemm_f32). */
static float ref_dot(const float *A, long lda, long m, const float *W, long K, long N, long n,
                     int fmt)
{
    float acc = 0.0f;
    for (long k = 0; k < K; k++) {
        float a = A[m * lda + k];
        if (narrow(fmt))
            a = kg_bf16_to_f32(kg_f32_to_bf16(a));
        acc += a * W[k * N + n];
    }
    return acc;
}

/* Packs a random W in (fmt, layout, mx) at geometry (nr, kg), multiplies M rows over columns
 * [n0, n1) and checks every element: bit-exact under the scalar GEMM. */
static void check_cols(int fmt, int layout, int mx, long K, long N, long M, long nr, long kg,
                       unsigned long long seed, int skip_first)
{
    kg_wt w;
    float scale = fmt == KG_WT_E2M1 ? 2.0f : fmt >= KG_WT_E4M3 ? 16.0f : 0.5f;
    float *W = kgt_wt_random(&w, fmt, layout, K, N, mx, scale, seed, nr, kg);
    long lda = K + 3, ldc = N + 5;
    float *A = malloc((size_t)(M * lda) * sizeof *A), *C = malloc((size_t)(M * ldc) * sizeof *C);
    for (long i = 0; i < M * lda; i++)
        A[i] = kgt_normal(&seed);
    memset(C, 0xff, (size_t)(M * ldc) * sizeof *C);
    long n0 = skip_first && N > w.nr ? w.nr : 0, n1 = N;
    PRIM(gemm_fn, gemm_f32)(C, ldc, A, lda, M, &w, n0, n1);
    int scalar = strcmp(kg_prim_isa(), "scalar") == 0;
    for (long m = 0; m < M; m++) {
        for (long n = 0; n < ldc; n++) {
            float got = C[m * ldc + n];
            if (n < n0 || n >= n1) {
                cr_assert(isnan(got), "%s %s mx=%d: C[%ld, %ld] outside [%ld, %ld) written",
                          kg_wt_fmt_name(fmt), kg_wt_layout_name(layout), mx, m, n, n0, n1);
                continue;
            }
            float want = ref_dot(A, lda, m, W, K, N, n, fmt);
            double mag = 0;
            for (long k = 0; k < K; k++)
                mag += fabs((double)A[m * lda + k] * W[k * N + n]);
            int ok = scalar ? memcmp(&got, &want, 4) == 0 : fabs(got - want) <= 1e-5 * mag + 1e-30;
            cr_assert(ok, "%s %s mx=%d K=%ld N=%ld M=%ld nr=%ld kg=%ld: C[%ld, %ld] = %.9g, want "
                      "%.9g", kg_wt_fmt_name(fmt), kg_wt_layout_name(layout), mx, K, N, M,
                      w.nr, w.kg, m, n, got, want);
        }
    }
    free(W), free(A), free(C);
    kg_wt_free(&w);
}

/* Columns from the second panel on (when there are two), so a write outside [n0, n1) shows. */
static void check_one(int fmt, int layout, int mx, long K, long N, long M, long nr, long kg,
                      unsigned long long seed)
{
    check_cols(fmt, layout, mx, K, N, M, nr, kg, seed, 1);
}

/* Geometries: the active ISA's, and odd ones the scalar GEMM must read just as well. */
static const long GEOM[][2] = { { 0, 0 }, { 5, 4 }, { 3, 1 }, { 16, 2 }, { 32, 8 } };

Test(gemm, kn_every_format_and_geometry)
{
    for (int fmt = 0; fmt < KG_WT_FMT_COUNT; fmt++)
        for (size_t g = 0; g < sizeof GEOM / sizeof GEOM[0]; g++) {
            check_one(fmt, KG_WL_KN, 0, 37, 19, 3, GEOM[g][0], GEOM[g][1], 1 + fmt);
            check_one(fmt, KG_WL_KN, 0, 1, 1, 1, GEOM[g][0], GEOM[g][1], 2);
        }
}

Test(gemm, decode_row_and_many_rows)
{
    check_one(KG_WT_BF16, KG_WL_KN, 0, 300, 70, 1, 0, 0, 3);
    check_one(KG_WT_BF16, KG_WL_KN, 0, 129, 33, 37, 0, 0, 4);
    check_one(KG_WT_F32, KG_WL_KN, 0, 257, 31, 18, 0, 0, 5);
}

/* Every remainder of the blocked SIMD loops at once: rows not a multiple of the 6-row tile, K
 * past two passes and odd, three panels with a partial last; rows past one pass (151 rows: two
 * passes of up to 144) for one format of each path. */
Test(gemm, blocked_remainders_every_format)
{
    for (int fmt = 0; fmt < KG_WT_FMT_COUNT; fmt++) {
        check_cols(fmt, KG_WL_KN, 0, 523, 141, 53, 0, 0, 60 + fmt, 0);
        check_cols(fmt, KG_WL_KN, 0, 1, 65, 7, 0, 0, 70 + fmt, 0);
        /* avx2: rows past its pass of 132; every short tile (1..5 rows, whose K sums are split,
         * so odd K leaves a remainder) on the 16-column panels from the second one (n0 > 0) */
        check_cols(fmt, KG_WL_KN, 0, 523, 141, 137, 0, 0, 110 + fmt, 0);
        for (long m = 1; m <= 5; m++)
            check_cols(fmt, KG_WL_KN, 0, 523, 141, m, 0, 0, 120 + fmt + m, 1);
        if (fmt == KG_WT_F32 || fmt == KG_WT_BF16 || fmt == KG_WT_E4M3) {
            check_cols(fmt, KG_WL_KN, 0, 300, 70, 151, 0, 0, 100 + fmt, 0);
            /* K past two of the avx512 pieces (1024 bf16, 512 fp32 deep), tiles and fused */
            check_cols(fmt, KG_WL_KN, 0, 2100, 67, 7, 0, 0, 130 + fmt, 0);
            check_cols(fmt, KG_WL_KN, 0, 2100, 67, 1, 0, 0, 140 + fmt, 0);
        }
        /* decode-sized M: fp8 widens inside the tile (up to 64 rows, 4 at a time) */
        for (long m = 1; m <= 5; m += 2)
            check_cols(fmt, KG_WL_KN, 0, 523, 141, m, 0, 0, 90 + fmt + m, 0);
    }
    check_cols(KG_WT_E4M3FN, KG_WL_X4, 1, 544, 130, 50, 0, 0, 80, 0);
    check_cols(KG_WT_E2M1, KG_WL_MLP_MX_DOWN, 1, 1024, 70, 13, 0, 0, 81, 0);
}

/* Under the scalar and AVX-512 GEMMs a row's result does not depend on how many rows share the
 * call: one row (four or two panels at a time), a few (fp8 widened in the tile, four rows at a
 * time, the last group short) and a prefill-sized block (fp8 and fp16 decoded per piece) give
 * the same bits, so a decode step and a prefill agree. K past two pieces, seven panels (the
 * last partial: four, two and a single). The AVX2 GEMM splits the K sums of its short tiles, so
 * its rows differ in the last bits. */
Test(gemm, a_row_has_the_same_bits_at_every_m)
{
    if (strcmp(kg_prim_isa(), "avx2") == 0)
        cr_skip_test("the AVX2 GEMM's short tiles sum K in parts");
    static const int fmts[] = { KG_WT_BF16, KG_WT_E4M3, KG_WT_E4M3FN, KG_WT_E5M2, KG_WT_F32,
                                 KG_WT_F16 };
    enum { NM = 4 };
    const long K = 2100, N = 397, lda = K + 3, ldc = N + 5, Ms[NM] = { 1, 3, 7, 70 };
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++) {
        kg_wt w;
        unsigned long long seed = 150 + f;
        float *W = kgt_wt_random(&w, fmts[f], KG_WL_KN, K, N, 0, 16.0f, seed, 0, 0);
        float *A = malloc((size_t)(Ms[NM - 1] * lda) * sizeof *A), *C[NM];
        for (long i = 0; i < Ms[NM - 1] * lda; i++)
            A[i] = kgt_normal(&seed);
        for (int j = 0; j < NM; j++) {
            C[j] = malloc((size_t)(Ms[j] * ldc) * sizeof *C[j]);
            PRIM(gemm_fn, gemm_f32)(C[j], ldc, A, lda, Ms[j], &w, 0, N);
        }
        long compared = 0;
        for (int j = 1; j < NM; j++)
            for (long n = 0; n < N; n++, compared++)
                cr_assert(memcmp(&C[0][n], &C[j][n], sizeof(float)) == 0,
                          "%s: C[0, %ld] = %.9g at M = 1, %.9g at M = %ld",
                          kg_wt_fmt_name(fmts[f]), n, C[0][n], C[j][n], Ms[j]);
        cr_assert_eq(compared, (NM - 1) * N);
        for (int j = 0; j < NM; j++)
            free(C[j]);
        free(W), free(A);
        kg_wt_free(&w);
    }
}

/* kgp_matmul_f32 (the projections' threaded split) covers all of C [M, N] and nothing past its
 * columns: every element as the reference, on 1 and 2 threads, M across the 132-row tasks. */
static void check_matmul(int fmt, long K, long N, long M, int threads, unsigned long long seed)
{
    kg_wt w;
    float *W = kgt_wt_random(&w, fmt, KG_WL_KN, K, N, 0, 0.5f, seed, 0, 0);
    long lda = K + 3, ldc = N + 5;
    float *A = malloc((size_t)(M * lda) * sizeof *A), *C = malloc((size_t)(M * ldc) * sizeof *C);
    for (long i = 0; i < M * lda; i++)
        A[i] = kgt_normal(&seed);
    memset(C, 0xff, (size_t)(M * ldc) * sizeof *C);
    kg_set_threads(threads);
    kgp_matmul_f32(C, ldc, A, lda, M, &w);
    kg_set_threads(0);
    for (long m = 0; m < M; m++)
        for (long n = 0; n < ldc; n++) {
            float got = C[m * ldc + n], want = ref_dot(A, lda, m, W, K, N, n < N ? n : 0, fmt);
            double mag = 0;
            for (long k = 0; k < K && n < N; k++)
                mag += fabs((double)A[m * lda + k] * W[k * N + n]);
            int ok = n >= N ? isnan(got) : fabs(got - want) <= 1e-5 * mag + 1e-30;
            cr_assert(ok, "%s K=%ld N=%ld M=%ld threads=%d: C[%ld, %ld] = %.9g, want %.9g%s",
                      kg_wt_fmt_name(fmt), K, N, M, threads, m, n, got, want,
                      n >= N ? " (past N: untouched)" : "");
        }
    free(W), free(A), free(C);
    kg_wt_free(&w);
}

Test(gemm, matmul_splits_over_threads)
{
    for (int threads = 1; threads <= 2; threads++) {
        check_matmul(KG_WT_BF16, 70, 141, 1, threads, 11);
        check_matmul(KG_WT_E4M3, 70, 141, 137, threads, 12);
        check_matmul(KG_WT_F32, 33, 17, 265, threads, 13);
    }
    cr_assert(kgp_wt_is(NULL, 1, 1, KG_WT_F32, 0) == 0, "a NULL weight passed the check");
}

/* gemm_bf16 is gemm_f32 rounded once (kg_f32_to_bf16), bit for bit, on every ISA this CPU runs:
 * bf16 weights with K in one piece (AVX-512 rounds in the tiles' store) and in several, other
 * formats (rounded from fp32 stripes), rows that sum to NaN and to denormals (the AVX-512
 * store's lane-by-lane case), M across the matmul's 132-row tasks (a last task of one row);
 * columns past N untouched; and kgp_matmul_bf16 on 1 and 2 threads. */
typedef void gemm16_fn(kg_u16 *C, long ldc, const float *A, long lda, long M, const kg_wt *W,
                       long n0, long n1);

static long check_gemm_bf16_on(const kg_wt *wp, long M, unsigned long long seed)
{
    kg_wt w = *wp;
    int fmt = w.fmt;
    long K = w.K, N = w.N, lda = K + 3, ldc = N + 5, compared = 0;
    float *A = malloc((size_t)(M * lda) * sizeof *A), *C = malloc((size_t)(M * ldc) * sizeof *C);
    kg_u16 *C16 = malloc((size_t)(M * ldc) * sizeof *C16);
    for (long i = 0; i < M * lda; i++)
        A[i] = kgt_normal(&seed);
    if (M > 3) {
        A[2 * lda + K / 2] = NAN;
        for (long k = 0; k < K; k++) /* sums near FLT_MIN: some denormal */
            A[3 * lda + k] *= 1e-37f;
    }
    for (int pass = 0; pass < 2; pass++) {
        memset(C16, 0xff, (size_t)(M * ldc) * sizeof *C16);
        if (pass == 0) {
            PRIM(gemm_fn, gemm_f32)(C, ldc, A, lda, M, &w, 0, N);
            PRIM(gemm16_fn, gemm_bf16)(C16, ldc, A, lda, M, &w, 0, N);
        } else {
            kg_set_threads(2);
            kgp_matmul_f32(C, ldc, A, lda, M, &w);
            kgp_matmul_bf16(C16, ldc, A, lda, M, &w);
            kg_set_threads(0);
        }
        for (long m = 0; m < M; m++)
            for (long n = 0; n < ldc; n++, compared++) {
                kg_u16 got = C16[m * ldc + n], want = n < N ? kg_f32_to_bf16(C[m * ldc + n])
                                                           : 0xffff;
                cr_assert_eq(got, want, "%s %s K=%ld N=%ld M=%ld pass %d: C[%ld, %ld] = %#x, "
                             "want %#x (fp32 %.9g)%s", kg_prim_isa(), kg_wt_fmt_name(fmt), K, N,
                             M, pass, m, n, got, want, n < N ? C[m * ldc + n] : 0.0f,
                             n >= N ? " (past N: untouched)" : "");
            }
    }
    free(A), free(C), free(C16);
    return compared;
}

static long check_gemm_bf16(int fmt, long K, long N, long M, unsigned long long seed)
{
    kg_wt w;
    float *W = kgt_wt_random(&w, fmt, KG_WL_KN, K, N, 0, 0.5f, seed, 0, 0);
    long compared = check_gemm_bf16_on(&w, M, seed);
    free(W);
    kg_wt_free(&w);
    return compared;
}

/* A bf16 weight holding a NaN with a payload (as a checkpoint may): the sums it reaches are
 * NaNs with that payload, which the hardware's rounding keeps and kg_f32_to_bf16 does not. */
static long check_gemm_bf16_nan_payload(long K, long N, long M, unsigned long long seed)
{
    kg_u16 *codes = malloc((size_t)(K * N) * sizeof *codes);
    for (long i = 0; i < K * N; i++)
        codes[i] = kg_f32_to_bf16(kgt_normal(&seed));
    codes[5 * N + 3] = 0x7f81; /* a signalling NaN, payload 1 */
    kg_wt w;
    kg_wt_src src = { KG_WT_BF16, KG_WL_KN, K, N, codes, NULL, 0, 0 };
    char err[256];
    cr_assert_eq(kg_wt_pack(&w, &src, err, sizeof err), KG_OK, "%s", err);
    long compared = check_gemm_bf16_on(&w, M, seed);
    kg_wt_free(&w);
    free(codes);
    return compared;
}

Test(gemm, gemm_bf16_is_gemm_f32_rounded_once)
{
    static const char *isas[] = { "scalar", "avx2", "avx512" };
    long compared = 0;
    int ran = 0;
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        if (kg_prim_select(isas[i]) != KG_OK)
            continue;
        ran++;
        compared += check_gemm_bf16(KG_WT_BF16, 128, 397, 133, 21); /* one piece of K */
        compared += check_gemm_bf16(KG_WT_BF16, 300, 64, 7, 22);
        compared += check_gemm_bf16(KG_WT_BF16, 1500, 70, 20, 23); /* pieces of K */
        compared += check_gemm_bf16(KG_WT_BF16, 64, 1100, 1, 24);  /* a decode row */
        compared += check_gemm_bf16(KG_WT_E4M3, 70, 141, 9, 25);
        compared += check_gemm_bf16(KG_WT_F32, 33, 600, 265, 26);  /* stripes of 512 columns */
        compared += check_gemm_bf16_nan_payload(64, 70, 9, 27);
    }
    kg_prim_select(NULL);
    cr_assert_geq(ran, 1, "no ISA ran");
    cr_assert_gt(compared, 0, "nothing compared");
}

Test(gemm, mx_and_x4_layouts)
{
    static const int fmts[] = { KG_WT_E4M3FN, KG_WT_E5M2, KG_WT_E2M1 };
    for (size_t f = 0; f < 3; f++)
        for (size_t g = 0; g < sizeof GEOM / sizeof GEOM[0]; g++) {
            check_one(fmts[f], KG_WL_KN, 1, 64, 9, 2, GEOM[g][0], GEOM[g][1], 10 + f);
            check_one(fmts[f], KG_WL_X4, 1, 96, 7, 3, GEOM[g][0], GEOM[g][1], 20 + f);
            check_one(fmts[f], KG_WL_X4, 0, 12, 7, 3, GEOM[g][0], GEOM[g][1], 25 + f);
            check_one(fmts[f], KG_WL_X4_INTERLEAVED, 1, 64, 5, 2, GEOM[g][0], GEOM[g][1], 30 + f);
        }
}

Test(gemm, mlp_layouts)
{
    static const int fmts[] = { KG_WT_E4M3FN, KG_WT_E2M1 };
    for (size_t f = 0; f < 2; f++) {
        check_one(fmts[f], KG_WL_MLP_MX_GATE_UP, 1, 1024, 6, 2, 0, 0, 40 + f);
        check_one(fmts[f], KG_WL_MLP_MX_GATE_UP, 1, 512, 3, 1, 5, 4, 42 + f);
        check_one(fmts[f], KG_WL_MLP_MX_DOWN, 1, 1024, 5, 2, 0, 0, 44 + f);
        check_one(fmts[f], KG_WL_MLP_MX_DOWN, 1, 96, 7, 2, 3, 8, 46 + f); /* I < 512 */
        check_one(fmts[f], KG_WL_MLP_MX_DOWN, 1, 32, 2, 1, 0, 0, 48 + f);
    }
    check_one(KG_WT_E4M3FN, KG_WL_MLP_SMX_GATE_UP, 0, 512, 512, 1, 0, 0, 50);
    check_one(KG_WT_E4M3, KG_WL_MLP_SMX_DOWN, 0, 1024, 3, 2, 0, 0, 51);
}

/* The value of `code` in format fmt, by the scalar decoders. */
static float code_value(int fmt, unsigned code)
{
    switch (fmt) {
    case KG_WT_BF16: return kg_bf16_to_f32((uint16_t)code);
    case KG_WT_F16: return kg_f16_to_f32((uint16_t)code);
    case KG_WT_E4M3: return kg_e4m3_to_f32((uint8_t)code);
    case KG_WT_E4M3FN: return kg_e4m3fn_to_f32((uint8_t)code);
    case KG_WT_E5M2: return kg_e5m2_to_f32((uint8_t)code);
    default: return kg_e2m1_to_f32((uint8_t)code);
    }
}

/* Row 0 of W holds every code of fmt once (column n: code n), the other rows (K = 32 for MX,
 * else K = 1) are zero and A = [1, 0, ...], so C = 1 * w + 0 + ... is the decoded value times
 * its MX scale with no rounding: each code must come out as the scalar decoder gives it,
 * subnormals, infinities and NaNs included. MX columns cycle through the scales 2^-127 (the
 * subnormal one), 2^-100, 2^100 and 1. An fp32-subnormal value may also read as 0: avx512's
 * vdpbf16ps flushes subnormal operands whatever MXCSR says. */
static void check_every_code(int fmt, int mx)
{
    int bits = fmt == KG_WT_BF16 || fmt == KG_WT_F16 ? 16 : fmt == KG_WT_E2M1 ? 4 : 8;
    long N = 1L << bits, K = mx ? 32 : 1;
    uint8_t *data = calloc((size_t)(K * N * bits / 8), 1), *sc = malloc((size_t)N);
    float *A = calloc((size_t)K, sizeof *A), *C = malloc((size_t)N * sizeof *C);
    cr_assert(data && sc && A && C);
    for (long n = 0; n < N; n++) {
        if (bits == 16)
            memcpy(data + 2 * n, &(uint16_t){ (uint16_t)n }, 2);
        else if (bits == 8)
            data[n] = (uint8_t)n;
        else
            data[n / 2] |= (uint8_t)(n << (n % 2 * 4));
        sc[n] = (uint8_t)(n % 4 == 0 ? 0 : n % 4 == 1 ? 27 : n % 4 == 2 ? 227 : 127);
    }
    kg_wt_src s = { fmt, KG_WL_KN, K, N, data, mx ? sc : NULL, 0, 0 };
    kg_wt w;
    char err[256] = "";
    cr_assert_eq(kg_wt_pack(&w, &s, err, sizeof err), KG_OK, "%s", err);
    A[0] = 1.0f;
    PRIM(gemm_fn, gemm_f32)(C, N, A, K, 1, &w, 0, N);
    for (long n = 0; n < N; n++) {
        float want = code_value(fmt, (unsigned)n);
        if (mx)
            want = want * kg_e8m0_to_f32(sc[n]);
        int flushed = C[n] == 0.0f && fabsf(want) < FLT_MIN;
        cr_assert(C[n] == want || flushed || (isnan(C[n]) && isnan(want)), "%s mx=%d: code "
                  "0x%lx reads %.9g, want %.9g", kg_wt_fmt_name(fmt), mx, n, C[n], want);
    }
    kg_wt_free(&w);
    free(data), free(sc), free(A), free(C);
}

Test(gemm, every_code_decodes_exactly)
{
    for (int fmt = KG_WT_BF16; fmt < KG_WT_FMT_COUNT; fmt++)
        check_every_code(fmt, 0);
    for (int fmt = KG_WT_E4M3; fmt < KG_WT_FMT_COUNT; fmt++)
        check_every_code(fmt, 1);
}

/* A registration under KGEN_ISA (tests/CMakeLists.txt) really runs that ISA's primitives. */
Test(gemm, runs_the_isa_asked_for)
{
    const char *isa = getenv("KGEN_ISA");
    if (isa && *isa)
        cr_assert_str_eq(kg_prim_isa(), isa);
}

/* A weight whose MX blocks each scale one distinct power of two: swapping any two scales, or
 * applying a block's scale to the wrong rows, changes the product (so the layouts' scale
 * arrangements are really checked, not just their data). */
Test(gemm, mx_scales_reach_their_rows)
{
    long K = 1024, N = 2;
    static const int layouts[] = { KG_WL_X4, KG_WL_MLP_MX_GATE_UP, KG_WL_MLP_MX_DOWN };
    for (int l = 0; l < 3; l++) {
        kg_wt w;
        float *W = kgt_wt_random(&w, KG_WT_E4M3FN, layouts[l], K, N, 1, 16.0f, 77 + l, 0, 0);
        for (long k = 0; k < K; k++) {
            float a[1024] = { 0 }, c[2];
            a[k] = 1.0f;
            PRIM(gemm_fn, gemm_f32)(c, N, a, K, 1, &w, 0, N);
            for (long n = 0; n < N; n++)
                cr_assert(c[n] == W[k * N + n], "%s: row %ld column %ld reads %g, want %g",
                          kg_wt_layout_name(layouts[l]), k, n, c[n], W[k * N + n]);
        }
        free(W);
        kg_wt_free(&w);
    }
}

/* ---- the packer's refusals and shapes -------------------------------------------------------- */

static void refused(int fmt, int layout, long K, long N, int mx, const char *want)
{
    static uint8_t buf[1 << 16], sc[1 << 12];
    kg_wt_src s = { fmt, layout, K, N, buf, mx ? sc : NULL, 0, 0 };
    kg_wt w;
    char err[256] = "";
    int rc = kg_wt_pack(&w, &s, err, sizeof err);
    cr_assert_neq(rc, KG_OK, "%s %s [%ld, %ld] mx=%d was packed", kg_wt_fmt_name(fmt),
                  kg_wt_layout_name(layout), K, N, mx);
    cr_assert(strstr(err, want), "message '%s' does not say '%s'", err, want);
}

Test(gemm, packer_refuses_what_a_layout_cannot_hold)
{
    refused(KG_WT_BF16, KG_WL_KN, 64, 4, 1, "MX scales on a bf16 weight");
    refused(KG_WT_BF16, KG_WL_X4, 64, 4, 0, "packs fp8 or fp4");
    refused(KG_WT_E4M3FN, KG_WL_X4, 66, 4, 0, "K % 4 == 0");
    refused(KG_WT_E4M3FN, KG_WL_X4, 68, 4, 1, "K % 32 == 0");
    refused(KG_WT_E4M3FN, KG_WL_MLP_MX_GATE_UP, 768, 4, 1, "K % 512 == 0");
    refused(KG_WT_E2M1, KG_WL_MLP_MX_DOWN, 600, 4, 1, "mlp_mx_down needs");
    refused(KG_WT_E4M3FN, KG_WL_MLP_SMX_GATE_UP, 512, 500, 0, "N % 512 == 0");
    refused(KG_WT_E4M3FN, KG_WL_MLP_SMX_DOWN, 512, 4, 1, "no MX scales");
    refused(KG_WT_F32, KG_WL_KN, 0, 4, 0, "must be positive");
    refused(KG_WT_FMT_COUNT, KG_WL_KN, 4, 4, 0, "not a kg_wt_fmt");
    refused(KG_WT_F32, KG_WL_COUNT, 4, 4, 0, "not a kg_wt_layout");
}

Test(gemm, stored_shapes_and_names)
{
    long s[8];
    kg_wt_src a = { KG_WT_E2M1, KG_WL_MLP_MX_DOWN, 256, 10, NULL, NULL, 0, 0 };
    cr_assert_eq(kg_wt_stored_shape(&a, 0, s), 3);
    cr_assert(s[0] == 64 && s[1] == 1 && s[2] == 10);
    cr_assert_eq(kg_wt_stored_shape(&a, 1, s), 3);
    cr_assert(s[0] == 8 && s[1] == 1 && s[2] == 10);
    kg_wt_src b = { KG_WT_E4M3FN, KG_WL_X4, 64, 3, NULL, NULL, 0, 0 };
    cr_assert_eq(kg_wt_stored_shape(&b, 0, s), 2);
    cr_assert(s[0] == 16 && s[1] == 3);
    for (int f = 0; f < KG_WT_FMT_COUNT; f++)
        cr_assert_eq(kg_wt_fmt_from_name(kg_wt_fmt_name(f)), f);
    for (int l = 0; l < KG_WL_COUNT; l++)
        cr_assert_eq(kg_wt_layout_from_name(kg_wt_layout_name(l)), l);
    cr_assert_eq(kg_wt_fmt_from_name("fp8"), -1);
}

/* ---- quantize-dequantize, activations, norm pieces ------------------------------------------- */

typedef void mx_fn(float *y, uint8_t *e8, const float *x, long n);
typedef void act_fn(float *y, const float *x, long n);
typedef void round_fn(float *y, const float *x, float s, float m, long n);
typedef void affine_fn(float *y, const float *x, float mu, float s, const float *g,
                       const float *b, long n);

Test(gemm, mx_quantize_dequantize)
{
    float x[70], y[70];
    uint8_t e8[3];
    unsigned long long seed = 9;
    for (int i = 0; i < 70; i++)
        x[i] = kgt_normal(&seed) * (i < 32 ? 1e-3f : i < 64 ? 300.0f : 0.0f);
    x[64] = x[65] = 0.0f; /* the short last block is all zero: exponent 0, no wrap-around */
    for (int i = 66; i < 70; i++)
        x[i] = 0.0f;
    PRIM(mx_fn, round_mx_e4m3fn_f32)(y, e8, x, 70);
    for (int b = 0; b < 3; b++) {
        int len = b < 2 ? 32 : 6;
        cr_assert_eq(e8[b], kg_e8m0_block_exponent(x + 32 * b, len, 8), "block %d exponent", b);
        float s = ldexpf(1.0f, e8[b] - 127);
        for (int i = 0; i < len; i++) {
            float v = x[32 * b + i] / s;
            v = v > 448 ? 448 : v < -448 ? -448 : v;
            float want = kg_e4m3fn_to_f32(kg_f32_to_e4m3fn(v)) * s;
            cr_assert(y[32 * b + i] == want, "y[%d] = %g, want %g", 32 * b + i, y[32 * b + i],
                      want);
        }
    }
    cr_assert_eq(e8[2], 0);
}

Test(gemm, fp8_round_trips)
{
    float x[5] = { 1.1f, -300.0f, 0.013f, 500.0f, -0.0f }, y[5];
    PRIM(round_fn, round_e4m3_f32)(y, x, 2.0f, 240.0f, 5);
    for (int i = 0; i < 5; i++) {
        float v = x[i] * 2.0f;
        v = v > 240 ? 240 : v < -240 ? -240 : v;
        cr_assert(y[i] == kg_e4m3_to_f32(kg_f32_to_e4m3(v)), "e4m3 y[%d] = %g", i, y[i]);
    }
    PRIM(round_fn, round_e4m3fn_f32)(y, x, 1.0f, 448.0f, 5);
    cr_assert(y[3] == 448.0f && y[1] == -288.0f, "e4m3fn clamps at 448 and rounds -300 to -288");
}

Test(gemm, activations_match_their_formulas)
{
    float x[41], y[41];
    for (int i = 0; i < 41; i++)
        x[i] = -10.0f + 0.5f * (float)i;
    struct { const char *name; double (*f)(double); } acts[4];
    (void)acts;
    act_fn *silu = PRIM(act_fn, silu_f32), *gelu = PRIM(act_fn, gelu_f32);
    act_fn *gt = PRIM(act_fn, gelu_tanh_f32), *sw = PRIM(act_fn, swish_f32);
    for (int a = 0; a < 4; a++) {
        act_fn *f = a == 0 ? silu : a == 1 ? gelu : a == 2 ? gt : sw;
        f(y, x, 41);
        for (int i = 0; i < 41; i++) {
            double v = x[i], want;
            if (a == 0)
                want = v / (1 + exp(-v));
            else if (a == 1)
                want = 0.5 * v * (1 + erf(v / sqrt(2.0)));
            else if (a == 2)
                want = 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
            else
                want = v / (1 + exp(-1.702 * v)); /* Swish: x * sigmoid(1.702 x), not SiLU */
            cr_assert(fabs(y[i] - want) <= 1e-6 * fabs(want) + 1e-6, "activation %d at %g: %.9g, "
                      "want %.9g", a, v, y[i], want);
        }
    }
}

Test(gemm, affine_is_layer_norm_and_rms_norm)
{
    float x[3] = { 1, 2, 4 }, g[3] = { 2, 2, 0.5f }, b[3] = { 1, 0, -1 }, y[3];
    PRIM(affine_fn, affine_f32)(y, x, 2.0f, 0.5f, g, b, 3);
    cr_assert(y[0] == 0.0f && y[1] == 0.0f && y[2] == -0.5f);
    PRIM(affine_fn, affine_f32)(y, x, 0.0f, 0.5f, NULL, NULL, 3);
    cr_assert(y[0] == 0.5f && y[1] == 1.0f && y[2] == 2.0f);
    typedef float sum_fn(const float *, long);
    cr_assert(PRIM(sum_fn, sum_f32)(x, 3) == 7.0f);
}

/* ---- scratch --------------------------------------------------------------------------------- */

Test(gemm, scratch_grows_aligned_and_is_reused)
{
    char *a = kgp_scratch(100);
    cr_assert_not_null(a);
    cr_assert_eq((uintptr_t)a % 64, 0);
    memset(a, 1, 100);
    cr_assert_eq(kgp_scratch(50), a, "a smaller request reuses the block");
    char *b = kgp_scratch(1 << 20);
    cr_assert_not_null(b);
    cr_assert_eq((uintptr_t)b % 64, 0);
    memset(b, 2, 1 << 20);
    cr_assert_eq(kg_scratch_reserve(1 << 20), KG_OK);
    cr_assert_eq(kgp_scratch(10), b);
}

/* An activation packed by kgp_pack_act_f32 is the weight kg_wt_pack makes of the same values
 * (bf16: rounded to nearest even first): the same geometry and panel bytes, so the GEMM reads
 * it alike; past K and N, zeros. Odd sizes, a row stride wider than N, both formats. */
Test(gemm, pack_act_is_the_packed_weight)
{
    static const long shape[][3] = { { 1, 1, 1 }, { 5, 70, 73 }, { 128, 64, 64 }, { 33, 17, 20 } };
    static const int fmts[] = { KG_WT_F32, KG_WT_BF16 };
    unsigned long long s = 7;
    for (size_t i = 0; i < sizeof shape / sizeof shape[0]; i++)
        for (size_t f = 0; f < 2; f++) {
            long K = shape[i][0], N = shape[i][1], ld = shape[i][2];
            float *x = malloc((size_t)(K * ld) * sizeof *x), *v = malloc((size_t)(K * N) * 4);
            for (long k = 0; k < K; k++)
                for (long n = 0; n < ld; n++) {
                    x[k * ld + n] = kgt_normal(&s);
                    if (n < N)
                        v[k * N + n] = fmts[f] == KG_WT_F32 ? x[k * ld + n]
                                       : kg_bf16_to_f32(kg_f32_to_bf16(x[k * ld + n]));
                }
            kg_wt want, got;
            kgt_wt_from_values(&want, fmts[f], KG_WL_KN, K, N, v);
            long bytes = kgp_pack_act_bytes(K, N, fmts[f]);
            cr_assert_gt(bytes, 0);
            unsigned char *buf = aligned_alloc(64, (size_t)(bytes + 63) / 64 * 64);
            memset(buf, 0xa5, (size_t)bytes);
            kgp_pack_act_f32(&got, buf, x, ld, K, N, fmts[f]);
            cr_assert(got.fmt == want.fmt && got.K == K && got.N == N && got.nr == want.nr &&
                      got.kg == want.kg && got.kpad == want.kpad && got.kb == 0 && !got.mem,
                      "[%ld, %ld] %s: geometry", K, N, kg_wt_fmt_name(fmts[f]));
            long panel = (N + got.nr - 1) / got.nr * got.nr * got.kpad;
            long eb = fmts[f] == KG_WT_F32 ? 4 : 2;
            cr_assert_leq(panel * eb + 64, bytes);
            cr_assert(memcmp(got.data, want.data, (size_t)(panel * eb)) == 0,
                      "[%ld, %ld] %s: panels differ", K, N, kg_wt_fmt_name(fmts[f]));
            cr_assert_eq(kgp_pack_act_bytes(0, N, fmts[f]), 0);
            cr_assert_eq(kgp_pack_act_bytes(K, N, KG_WT_E4M3), 0);
            kg_wt_free(&want), free(buf), free(x), free(v);
        }
}
