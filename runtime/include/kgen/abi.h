/* kgen/abi.h: everything a generated kernel can see, and nothing else.
 * Self-contained on purpose (no system headers): the JIT prepends this text to each generated
 * file, so a kernel compiles without an include path or libc headers on the target machine. */
#ifndef KGEN_ABI_H
#define KGEN_ABI_H

/* ---- scalar types ------------------------------------------------------------------------ */
/* Bit patterns of the narrow formats travel as unsigned integers; LP64 (x86-64 Linux) only. */
typedef unsigned char  kg_u8;   /* fp8 (e4m3, e4m3fn, e5m2), packed fp4, E8M0 scale */
typedef unsigned short kg_u16;  /* bf16, fp16 */
typedef unsigned int   kg_u32;
typedef char kg_abi_lp64_check[sizeof(long) == 8 && sizeof(kg_u16) == 2 ? 1 : -1];

/* ---- status codes (kernels return KG_OK or KG_EARG; the rest come from the runtime) ------- */
enum kg_status {
    KG_OK = 0,
    KG_EARG = 1,      /* a per-call size or pointer a kernel cannot accept */
    KG_ESPEC = 2,     /* a spec, option or problem string that is not valid */
    KG_ESHAPE = 3,    /* a tensor whose shape or dtype contradicts the kernel */
    KG_ECOMPILE = 4,  /* the JIT (or gcc, for AOT) rejected generated code */
    KG_ENOTFOUND = 5, /* a kernel name not in the registry */
    KG_EIO = 6,       /* a file that cannot be read or written */
    KG_ENOMEM = 7
};

/* ---- parallel-for ------------------------------------------------------------------------ */
/* Runs fn(ctx, begin, end) over disjoint sub-ranges covering [0, n), each at least `grain`
 * long (but the last), on the runtime's threads; returns when all are done. */
typedef void kg_range_fn(void *ctx, long begin, long end);
void kgp_parallel_for(kg_range_fn *fn, void *ctx, long n, long grain);

/* ---- primitives ---------------------------------------------------------------------------- */
/* The one list of primitives. Each has a scalar reference (kgp_NAME__scalar in the runtime) and
 * possibly SIMD versions; the runtime picks one per process at start-up. Generated code calls
 * kgp_NAME. Element-wise primitives round exactly as the plain C expression in their comment
 * (no FMA contraction), so every ISA gives the same bits; reductions may differ in order.
 * X(return type, name, parameter list, argument list) */
#define KGP_LIST_VOID(X) \
    /* y[i] = (float)bf16 x[i] */                                                               \
    X(void, cvt_bf16_f32, (float *y, const kg_u16 *x, long n), (y, x, n))                      \
    /* y[i] = (float)fp16 x[i] */                                                               \
    X(void, cvt_f16_f32, (float *y, const kg_u16 *x, long n), (y, x, n))                       \
    /* y[i] = bf16(x[i]), round to nearest even, NaN kept */                                    \
    X(void, cvt_f32_bf16, (kg_u16 *y, const float *x, long n), (y, x, n))                      \
    /* y[i] = fp16(x[i]), round to nearest even, overflow to inf, NaN kept */                   \
    X(void, cvt_f32_f16, (kg_u16 *y, const float *x, long n), (y, x, n))                       \
    /* y[i] = (float)bf16(x[i]): x rounded to bf16 precision, kept in fp32 */                   \
    X(void, round_bf16_f32, (float *y, const float *x, long n), (y, x, n))                     \
    /* y[i] = (float)fp16(x[i]) */                                                              \
    X(void, round_f16_f32, (float *y, const float *x, long n), (y, x, n))                      \
    /* y[i] = (x[i] * s) * g[i]; g == 0 means y[i] = x[i] * s */                                \
    X(void, scale_mul_f32, (float *y, const float *x, float s, const float *g, long n),        \
      (y, x, s, g, n))                                                                          \
    /* y[i] = min(max(x[i], lo), hi), NaN kept */                                               \
    X(void, clamp_f32, (float *y, const float *x, float lo, float hi, long n), (y, x, lo, hi, n)) \
    /* q[i] = e4m3(clamp(x[i] * s, -m, m)): float8_e4m3 (bias 7, inf/NaN at exponent 15) */     \
    X(void, quant_e4m3_f32, (kg_u8 *q, const float *x, float s, float m, long n), (q, x, s, m, n)) \
    /* q[i] = e4m3fn(clamp(x[i] * s, -m, m)): OCP float8_e4m3fn (no inf, NaN = 0x7f/0xff) */    \
    X(void, quant_e4m3fn_f32, (kg_u8 *q, const float *x, float s, float m, long n),            \
      (q, x, s, m, n))                                                                          \
    /* y0[i] = x0[i]*c[i] - x1[i]*s[i]; y1[i] = x1[i]*c[i] + x0[i]*s[i] (rotate n pairs) */     \
    X(void, rot_rows_f32, (float *y0, float *y1, const float *x0, const float *x1,             \
                           const float *c, const float *s, long n), (y0, y1, x0, x1, c, s, n)) \
    /* same on interleaved pairs: (y[2j], y[2j+1]) from (x[2j], x[2j+1]), c[j], s[j], j < h */  \
    X(void, rot_pairs_f32, (float *y, const float *x, const float *c, const float *s, long h), \
      (y, x, c, s, h))                                                                          \
    /* HF rotate-half on full tables, j < h: y[j] = x[j]*c[j] - x[j+h]*s[j];                    \
     * y[j+h] = x[j+h]*c[j+h] + x[j]*s[j+h] */                                                  \
    X(void, rot_hf_f32, (float *y, const float *x, const float *c, const float *s, long h),    \
      (y, x, c, s, h))                                                                          \
    /* its gradient: y[j] = x[j]*c[j] + x[j+h]*s[j+h]; y[j+h] = x[j+h]*c[j+h] - x[j]*s[j] */    \
    X(void, rot_hf_bwd_f32, (float *y, const float *x, const float *c, const float *s, long h),\
      (y, x, c, s, h))

#define KGP_LIST_FLOAT(X) \
    /* sum of x[i]^2, fp32 accumulation (order is the primitive's own) */                       \
    X(float, sumsq_f32, (const float *x, long n), (x, n))                                      \
    /* max |x[i]|; NaN if any x[i] is NaN; 0 for n == 0 */                                      \
    X(float, maxabs_f32, (const float *x, long n), (x, n))                                     \
    /* inclusive prefix sum seeded with carry: y[i] = carry + x[0] + ... + x[i], added left to  \
     * right in fp32; returns the last sum (carry if n == 0) */                                 \
    X(float, cumsum_f32, (float *y, const float *x, float carry, long n), (y, x, carry, n))

#define KGP_LIST(X) KGP_LIST_VOID(X) KGP_LIST_FLOAT(X)

#define KGP_DECLARE(ret, name, params, args) ret kgp_##name params;
KGP_LIST(KGP_DECLARE)
#undef KGP_DECLARE

/* ---- libm functions generated code may call (resolved from the host process) ------------ */
float sqrtf(float);
float expf(float);
float tanhf(float);
float erff(float);

#endif /* KGEN_ABI_H */
