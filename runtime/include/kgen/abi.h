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
 * long (one range, on the calling thread, if n < 2 grain), on the runtime's threads; returns
 * when all are done. */
typedef void kg_range_fn(void *ctx, long begin, long end);
void kgp_parallel_for(kg_range_fn *fn, void *ctx, long n, long grain);

/* The least work worth a thread of its own, in bytes streamed from memory or their time's
 * worth of arithmetic (about 4 fp32 FMAs a byte on one core): some 8 us, several times a
 * team's fork and join. Below it a thread costs more than it saves, and on a busy machine far
 * more: every join waits for the slowest thread, which may be descheduled. */
#define KGP_MIN_WORK (256L << 10)
/* The grain for items of w (> 0) such units of work each. */
#define KGP_GRAIN(w) ((w) >= KGP_MIN_WORK ? 1L : (KGP_MIN_WORK + (w) - 1) / (w))

/* ---- scratch memory ------------------------------------------------------------------------ */
/* A kernel never calls malloc: it asks the runtime once per call for one block of scratch of at
 * least `bytes` bytes, 64-byte aligned, owned by the calling thread and reused by its next call
 * (so the block is valid until that thread's next kgp_scratch). The block grows at first use and
 * then stays; kg_scratch_reserve (kgen/kgen.h) sizes it up front. NULL if memory runs out (the
 * kernel then returns KG_ENOMEM). Call it on the kernel's own thread, not inside a task. */
void *kgp_scratch(long bytes);

/* ---- collectives ---------------------------------------------------------------------------- */
/* A communicator: `size` ranks (a KV-data-parallel group, say), this caller being rank `rank`.
 * kgen/coll.h makes them (one process; threads as ranks; MPI) and binds one to a thread. A
 * kernel uses the calling thread's, kgp_coll(): a single rank unless the caller bound another.
 * Every rank of a communicator makes the same calls in the same order, each with the same n;
 * a call returns KG_OK, or KG_EARG on every rank (n < 0, a NULL buffer, n differing between
 * ranks). The threads back end blocks until all ranks arrive: call on the kernel's own thread,
 * never inside a kgp_parallel_for task. */
typedef struct kg_coll kg_coll;
kg_coll *kgp_coll(void);
int kgp_coll_rank(const kg_coll *c);
int kgp_coll_size(const kg_coll *c);

/* Element formats of an all-reduce (the activation dtypes). */
enum kg_coll_dtype { KG_COLL_F32 = 0, KG_COLL_BF16, KG_COLL_F16 };

/* y [n] = the sum over ranks of x [n], elements of format dtype: each element widened to fp32,
 * added in rank order 0, 1, .. size-1 in fp32, the sum rounded once to dtype (round to nearest
 * even). So every back end and every rank gets the same bits. y may be x. */
int kgp_all_reduce(kg_coll *c, void *y, const void *x, long n, int dtype);

/* y [size * bytes] = every rank's x [bytes], rank-major (rank r's at y + r * bytes). y must not
 * overlap x. */
int kgp_all_gather(kg_coll *c, void *y, const void *x, long bytes);

/* Returns when every rank has called it. */
int kgp_barrier(kg_coll *c);

/* ---- packed weights ------------------------------------------------------------------------ */
/* Element formats of a weight matrix, kept as stored: the GEMM primitive decodes them inside
 * its loads, so no dequantized copy of a matrix ever exists. */
enum kg_wt_fmt {
    KG_WT_F32 = 0,
    KG_WT_BF16,
    KG_WT_F16,
    KG_WT_E4M3,   /* float8_e4m3 (max 240) */
    KG_WT_E4M3FN, /* float8_e4m3fn (max 448) */
    KG_WT_E5M2,
    KG_WT_E2M1,   /* float4_e2m1fn, two per byte, low nibble first */
    KG_WT_FMT_COUNT
};

/* A weight W [K, N] (K: the contraction axis, N: output columns) packed once, at load, by
 * kg_wt_pack (kgen/kgen.h) from whatever layout it was stored in. The layout is chosen for the
 * GEMM primitive of the ISA in force when it was packed (the scalar GEMM reads any of them):
 * - the N columns are cut into panels of `nr` (the last one padded with zero columns), and K is
 *   padded with zero rows to `kpad`, a multiple of kg and of kb;
 * - panel p holds kpad * nr elements from element p * kpad * nr on; inside it, column j of the
 *   panel and row k sit at element (k / kg) * nr * kg + j * kg + k % kg: groups of kg
 *   consecutive k of one column are adjacent (a bf16 dot product consumes pairs, fp8 quads);
 * - MX weights (kb > 0) also carry one E8M0 scale per kb consecutive k of a column, value
 *   2^(e-127): panel p's scales start at p * (kpad / kb) * nr, the scale of (k, j) at
 *   (k / kb) * nr + j. The element's value is its code's value times its scale.
 * Zero padding is the code 0 (+0 in every format) and the scale 127 (1.0). */
typedef struct kg_wt {
    int fmt;            /* enum kg_wt_fmt */
    int kb;             /* MX block length along K (8 or 32), 0 without block scales */
    long K, N;          /* the logical matrix */
    long nr, kg, kpad;  /* panel width, k-group, padded K */
    const void *data;   /* the panels */
    const kg_u8 *scale; /* MX scales, or 0 */
    void *mem;          /* the runtime's allocation behind data and scale */
} kg_wt;

/* C [M, W->N] (row stride ldc) = A [M, W->K] (row stride lda) @ W in fp32, as kgp_gemm_f32
 * computes each element, split over the runtime's threads in tasks of (132 rows) x (one column
 * panel of W), row blocks outermost: decode (small M) splits by panels, prefill by rows and
 * panels. Call it on the kernel's own thread, not inside a task. */
void kgp_matmul_f32(float *C, long ldc, const float *A, long lda, long M, const kg_wt *W);
/* The same split over kgp_gemm_bf16: C in bf16, each element kgp_matmul_f32's rounded once. */
void kgp_matmul_bf16(kg_u16 *C, long ldc, const float *A, long lda, long M, const kg_wt *W);

/* Whether W is the weight a kernel was generated for: [K, N], element format fmt (enum
 * kg_wt_fmt), MX block scales or not (mx != 0). A kernel refuses any other handle with KG_EARG,
 * so it never reads past a wrong weight's end. */
int kgp_wt_is(const kg_wt *W, long K, long N, int fmt, int mx);

/* An activation as a weight, so the packed GEMM can take it as its right operand (a weight
 * gradient dW = A^T B over a block's tokens: B packed, A^T through kgp_transpose_f32).
 * kgp_pack_act_bytes: the bytes kgp_pack_act_f32 writes for x [K, N] in format fmt (KG_WT_F32
 * or KG_WT_BF16; the active GEMM's geometry), 0 for another format or a size past 2^40.
 * kgp_pack_act_f32: W = x [K, N] (row stride ldx) packed into buf (at least that many bytes,
 * 64-byte aligned) in the geometry the active GEMM reads, each value rounded to fmt (bf16:
 * nearest even, as kgp_cvt_f32_bf16); W->mem = 0 (buf stays the caller's). Call it on the
 * kernel's own thread (it may split the work over the runtime's threads). */
long kgp_pack_act_bytes(long K, long N, int fmt);
void kgp_pack_act_f32(kg_wt *W, void *buf, const float *x, long ldx, long K, long N, int fmt);

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
    /* y[i] = (float)e4m3 x[i]: float8_e4m3 codes (bias 7, 0x78 inf, 0x79..0x7f NaN), exact */ \
    X(void, cvt_e4m3_f32, (float *y, const kg_u8 *x, long n), (y, x, n))                       \
    /* y[i] = (float)e4m3fn x[i]: float8_e4m3fn codes (no inf, 0x7f NaN), exact */               \
    X(void, cvt_e4m3fn_f32, (float *y, const kg_u8 *x, long n), (y, x, n))                     \
    /* a hint that changes no value: the first `bytes` of W's panels (at most all of them)     \
     * prefetched toward the caches, for a kernel that reads W after other work (a megakernel's \
     * next stage); W may be NULL */                                                            \
    X(void, prefetch_wt, (const kg_wt *W, long bytes), (W, bytes))                              \
    /* y [H] in logical order from a 4H-swizzled row x (upstream's MX hidden layout): logical   \
     * h = 512j + 4p + q is stored at q*H/4 + 128j + p, for j < H/512, p < 128, q < 4 */         \
    X(void, unswizzle_4h_f32, (float *y, const float *x, long H), (y, x, H))                   \
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
    /* a weight stored [out, in] to e4m3 with one scale per output column (per row r < n of   \
     * x [n, k], row stride k): a = max |x[r*k + j]| over j (NaN ignored), s[r] = a / 240 (1 if \
     * a is 0), q[r*k + j] = e4m3(x[r*k + j] / s[r]) as kg_f32_to_e4m3; the same bits on every  \
     * ISA. A model loader's quantizer (--weights fp8), not a kernel's */                      \
    X(void, quant_rows_e4m3_f32, (kg_u8 *q, float *s, const float *x, long n, long k),         \
      (q, s, x, n, k))                                                                          \
    /* the same of bf16 x (its exact fp32 values) */                                            \
    X(void, quant_rows_e4m3_bf16, (kg_u8 *q, float *s, const kg_u16 *x, long n, long k),       \
      (q, s, x, n, k))                                                                          \
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
      (y, x, c, s, h))                                                                          \
    /* rotate-half on `rows` rows of 2h (a head's positions): row r of x and y starts at r*2h,  \
     * of c and s at r*ts; for j < h, y[j] = x[j]*c[j] - x[j+h]*s[j];                            \
     * y[j+h] = x[j+h]*c[j+o] + x[j]*s[j+o]. o = 0 reads half-width tables (rot_rows_f32's      \
     * rotation), o = h full-width ones (rot_hf_f32's). y may be x. */                          \
    X(void, rot_half_rows_f32, (float *y, const float *x, const float *c, const float *s,       \
                                long ts, long o, long rows, long h), (y, x, c, s, ts, o, rows, h)) \
    /* the same on bf16 rows: y = bf16 (as cvt_f32_bf16) of the fp32 expression of the widened \
     * x, i.e. the bits of cvt_bf16_f32, rot_half_rows_f32, cvt_f32_bf16. y may be x. */        \
    X(void, rot_half_rows_bf16, (kg_u16 *y, const kg_u16 *x, const float *c, const float *s,    \
                                 long ts, long o, long rows, long h), (y, x, c, s, ts, o, rows, h)) \
    /* y[c*ldy + r] = x[r*ldx + c] for r < rows, c < cols (a transpose; y must not overlap x) */ \
    X(void, transpose_f32, (float *y, long ldy, const float *x, long ldx, long rows, long cols), \
      (y, ldy, x, ldx, rows, cols))

/* The second list: numerics beyond plain conversion (matrix products, activations, fp8 and MX
 * quantize-dequantize of activations, norm pieces). */
#define KGP_LIST_MATH(X) \
    /* C[m*ldc + n] = sum over k < W->K, ascending, in fp32, of a(m, k) * w(k, n), for m < M and \
     * n0 <= n < n1, where w(k, n) is W's element decoded (times its MX scale) and a(m, k) is   \
     * A[m*lda + k], rounded to bf16 first when W is bf16, fp8 or fp4 (the operand precision of  \
     * upstream's matmuls; every such weight value is exact in bf16). n0 must be a multiple of  \
     * W->nr and n1 one too or N, so threads split work by whole panels. M == 1 is the decode    \
     * GEMV. SIMD versions may sum in another order. */                                        \
    X(void, gemm_f32, (float *C, long ldc, const float *A, long lda, long M, const kg_wt *W,    \
                       long n0, long n1), (C, ldc, A, lda, M, W, n0, n1))                      \
    /* the same product stored in bf16: C[m*ldc + n] = cvt_f32_bf16 of the element gemm_f32    \
     * gives for the same arguments, rounded once (where the ISA's GEMM rounds in its own      \
     * store, no fp32 copy of C is written and read back: weight gradients in bf16) */         \
    X(void, gemm_bf16, (kg_u16 *C, long ldc, const float *A, long lda, long M, const kg_wt *W,  \
                        long n0, long n1), (C, ldc, A, lda, M, W, n0, n1))                     \
    /* y[i] = a[i] + b[i] */                                                                    \
    X(void, add_f32, (float *y, const float *a, const float *b, long n), (y, a, b, n))         \
    /* y[i] = a[i] * b[i] */                                                                    \
    X(void, mul_f32, (float *y, const float *a, const float *b, long n), (y, a, b, n))         \
    /* y[i] = ((x[i] - mu) * s) * g[i] + b[i]; g == 0: no multiply, b == 0: no add (LayerNorm;  \
     * mu = 0 gives RMSNorm's bits) */                                                          \
    X(void, affine_f32, (float *y, const float *x, float mu, float s, const float *g,           \
                         const float *b, long n), (y, x, mu, s, g, b, n))                      \
    /* activations, sigmoid(v) = 1 / (1 + exp(-v)): silu x*sigmoid(x); gelu                     \
     * 0.5x(1 + erf(x/sqrt 2)); gelu_tanh 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3)));           \
     * swish x*sigmoid(1.702x). Evaluated in double by the reference's own exp and erfc, rounded \
     * once to fp32: within 1 ulp of the exact function, the same bits on every ISA; at -inf     \
     * they are NaN (-inf * 0), as the fp32 formulas are. */                                    \
    X(void, silu_f32, (float *y, const float *x, long n), (y, x, n))                           \
    X(void, gelu_f32, (float *y, const float *x, long n), (y, x, n))                           \
    X(void, gelu_tanh_f32, (float *y, const float *x, long n), (y, x, n))                      \
    X(void, swish_f32, (float *y, const float *x, long n), (y, x, n))                          \
    /* y[i] = (float)e4m3(clamp(x[i] * s, -m, m)): the fp8 value a quantized operand carries */  \
    X(void, round_e4m3_f32, (float *y, const float *x, float s, float m, long n),              \
      (y, x, s, m, n))                                                                          \
    X(void, round_e4m3fn_f32, (float *y, const float *x, float s, float m, long n),            \
      (y, x, s, m, n))                                                                          \
    /* MX e4m3fn quantize-dequantize of consecutive blocks of 32 (the last may be shorter):     \
     * e = kg_e8m0_block_exponent(block, 8), y = e4m3fn(clamp(x / 2^(e-127), +-448)) * 2^(e-127)\
     * (exact in fp32); the block's e is stored in e8[block] when e8 != 0 */                    \
    X(void, round_mx_e4m3fn_f32, (float *y, kg_u8 *e8, const float *x, long n), (y, e8, x, n)) \
    /* cumsum_f32 on `rows` rows at once: y[r*ldy + j] = carry[r] + x[r*ldx + 0] + ... +          \
     * x[r*ldx + j], each row its own left-to-right fp32 chain (the bits of cumsum_f32 row by     \
     * row), for r < rows, j < n; carry[r] becomes row r's last sum (kept if n == 0). y may be x  \
     * (with ldy == ldx). */                                                                    \
    X(void, cumsum_rows_f32, (float *y, long ldy, const float *x, long ldx, float *carry,       \
                              long rows, long n), (y, ldy, x, ldx, carry, rows, n))             \
    /* attention's pieces (an online-softmax tile: scores, max, exp, rescale, P @ V).           \
     * dot_rows_f32: s[i*lds + j] = sum over t < d of q[i*ldq + t] * k[j*ldk + t], i < m,      \
     * j < n (keys stored [n, d]); fp32 accumulation in the primitive's own order (SIMD         \
     * versions sum lane-wise partial sums: within d * 2^-23 * sum |q k| of the reference) */   \
    X(void, dot_rows_f32, (float *s, long lds, const float *q, long ldq, long m, const float *k, \
                           long ldk, long n, long d), (s, lds, q, ldq, m, k, ldk, n, d))      \
    /* dot_cols_f32: the same with keys stored [d, n]: s[i*lds + j] = fma chain over t          \
     * ascending of q[i*ldq + t] * kt[t*ldk + j] from 0 (one rounding per step, fmaf's): the    \
     * same bits on every ISA */                                                                \
    X(void, dot_cols_f32, (float *s, long lds, const float *q, long ldq, long m, const float *kt,\
                           long ldk, long n, long d), (s, lds, q, ldq, m, kt, ldk, n, d))     \
    /* axpy_rows_f32: o[i*ldo + t] = fmaf(p[i*ldp + j], v[j*ldv + t], o[i*ldo + t]) for j       \
     * ascending, i < m, t < d: probabilities times value rows added into m output rows; the    \
     * same bits on every ISA */                                                                \
    X(void, axpy_rows_f32, (float *o, long ldo, const float *p, long ldp, long m, const float *v,\
                            long ldv, long n, long d), (o, ldo, p, ldp, m, v, ldv, n, d))      \
    /* the gated activation's backward (blockwise_mm_backward): for i < n, in double from the   \
     * fp32 inputs, x = g[i], k = x (swish: 1.702 x), s = sigmoid(k) as the activations above,  \
     * a = x s, f' = s (1 + k (1 - s)); h[i] = (float)(a u[i]) (the forward's product),         \
     * dg[i] = (float)((dh[i] u[i]) f') if glo < x < ghi else 0, du[i] = (float)(dh[i] a) if   \
     * ulo < u[i] < uhi else 0 (a value on a clamp bound gets no gradient; +-inf: no bound).  \
     * The same bits on every ISA */                                                           \
    X(void, glu_bwd_f32, (float *dg, float *du, float *h, const float *dh, const float *g,      \
                          const float *u, float glo, float ghi, float ulo, float uhi, int swish, \
                          long n), (dg, du, h, dh, g, u, glo, ghi, ulo, uhi, swish, n))

#define KGP_LIST_FLOAT(X) \
    /* sum of x[i]^2, fp32 accumulation (order is the primitive's own) */                       \
    X(float, sumsq_f32, (const float *x, long n), (x, n))                                      \
    /* max |x[i]|; NaN if any x[i] is NaN; 0 for n == 0 */                                      \
    X(float, maxabs_f32, (const float *x, long n), (x, n))                                     \
    /* RMSNorm's scaled row in bf16 precision: y[i] = (float)bf16((x[i] * s) * g[i]) (g == 0:   \
     * of x[i] * s), the bits of scale_mul_f32 then round_bf16_f32; returns maxabs_f32(y, n).  \
     * y may be x. */                                                                           \
    X(float, scale_round_bf16_f32, (float *y, const float *x, float s, const float *g, long n), \
      (y, x, s, g, n))                                                                          \
    /* inclusive prefix sum seeded with carry: y[i] = carry + x[0] + ... + x[i], added left to  \
     * right in fp32; returns the last sum (carry if n == 0) */                                 \
    X(float, cumsum_f32, (float *y, const float *x, float carry, long n), (y, x, carry, n))   \
    /* sum of x[i], fp32 accumulation (order is the primitive's own) */                         \
    X(float, sum_f32, (const float *x, long n), (x, n))                                        \
    /* max of x[i]: -inf for n == 0; the first NaN if any x[i] is NaN; a zero maximum may come  \
     * back with either sign */                                                                 \
    X(float, max_f32, (const float *x, long n), (x, n))                                        \
    /* softmax's numerator: y[i] = kg_exp(x[i] - m), returns the sum of the y[i] (fp32, the     \
     * primitive's own order). kg_exp(t) is one fixed fp32 algorithm (prim_scalar.c: t = n ln2  \
     * + r, a degree-7 polynomial in r, times 2^n; no FMA), the same bits on every ISA, within  \
     * 2 ulp of e^t for -87 <= t <= 88; 0 below -87 (and at -inf), +inf above 88, NaN kept.     \
     * y may be x. */                                                                           \
    X(float, exp_sum_f32, (float *y, const float *x, float m, long n), (y, x, m, n))

/* The third: attention's tile-level products (runtime/src/prim_attn*.c). */
#define KGP_LIST_ATTN(X) \
    /* o[i*ldo + t] = fmaf(p[i*ldp + j], v[j*ldv + t], o[i*ldo + t]) for j ascending, i < m,     \
     * t < d, starting from o (acc != 0) or from 0 (acc == 0: o is only written): o [m, d]      \
     * (+)= p [m, n] @ v [n, d] on row-major tiles (kgp_axpy_rows_f32's bits, in register tiles \
     * of 6 x 16); with acc == 0, p = q [m, d'] and v = keys [d', n] it is kgp_dot_cols_f32.    \
     * The same bits on every ISA */                                                            \
    X(void, tile_fma_f32, (float *o, long ldo, int acc, const float *p, long ldp, long m,         \
                           const float *v, long ldv, long n, long d),                           \
      (o, ldo, acc, p, ldp, m, v, ldv, n, d))                                                   \
    /* decode's score pass on keys in their stored format, each key row read once for the m     \
     * query rows: s[i*lds + j] = q_i . k_j, i < m, j < n, k_j row j of k [n, d] (stride ldk    \
     * elements) widened exactly to fp32. Fixed order: eight lanes, lane l the fmaf chain over  \
     * t = l, l + 8, ... below d8 = d / 8 * 8 from 0, summed ((a0 + a1) + (a2 + a3)) + ((a4 +   \
     * a5) + (a6 + a7)), then fmaf(q[t], k[t], .) for t = d8 .. d - 1: the same bits on every   \
     * ISA (a NaN stays a NaN, its payload may differ). f32, bf16, fp16 and e4m3 keys */        \
    X(void, qk_f32, (float *s, long lds, const float *q, long ldq, long m, const float *k,      \
                     long ldk, long n, long d), (s, lds, q, ldq, m, k, ldk, n, d))              \
    X(void, qk_bf16, (float *s, long lds, const float *q, long ldq, long m, const kg_u16 *k,    \
                      long ldk, long n, long d), (s, lds, q, ldq, m, k, ldk, n, d))             \
    X(void, qk_f16, (float *s, long lds, const float *q, long ldq, long m, const kg_u16 *k,     \
                     long ldk, long n, long d), (s, lds, q, ldq, m, k, ldk, n, d))              \
    X(void, qk_e4m3, (float *s, long lds, const float *q, long ldq, long m, const kg_u8 *k,     \
                      long ldk, long n, long d), (s, lds, q, ldq, m, k, ldk, n, d))             \
    /* decode's value pass, each value row read once for the m rows: kgp_axpy_rows_f32 on v     \
     * [n, d] (stride ldv elements) in bf16, fp16 or e4m3, widened exactly: o[i*ldo + t] =      \
     * fmaf(p[i*ldp + j], v[j*ldv + t], o[i*ldo + t]) for j ascending, the same bits on every   \
     * ISA (and as axpy_rows_f32 on the widened rows) */                                       \
    X(void, pv_bf16, (float *o, long ldo, const float *p, long ldp, long m, const kg_u16 *v,    \
                      long ldv, long n, long d), (o, ldo, p, ldp, m, v, ldv, n, d))             \
    X(void, pv_f16, (float *o, long ldo, const float *p, long ldp, long m, const kg_u16 *v,     \
                     long ldv, long n, long d), (o, ldo, p, ldp, m, v, ldv, n, d))              \
    X(void, pv_e4m3, (float *o, long ldo, const float *p, long ldp, long m, const kg_u8 *v,     \
                      long ldv, long n, long d), (o, ldo, p, ldp, m, v, ldv, n, d))

/* The fourth: training kernels' rows (runtime/src/prim_loss.c: cross entropy, depthwise conv).
 * kg_exp is exp_sum_f32's exponential. */
#define KGP_LIST_LOSS(X) \
    /* one step of an online log-sum-exp over a row's values x[0..n): with (m, d) = md[0..1]    \
     * (start from (-inf, 0)), d' = d * e(m - m') + sum of e(x[i] - m') (fp32, the primitive's  \
     * own order and blocking; within a few ulp of the scalar reference's left-to-right sum),  \
     * e(t) = 2^(t log2 e) by prim.h's polynomial, of degree 5 for f32 (within 1e-7) and 3 for \
     * bf16 (within 9e-5, far below bf16's rounding); md becomes (m', d'). m' is a reference   \
     * point at or below max(m, max x[i]): that max in the scalar reference, m itself or a     \
     * value of the row in the SIMD versions as long as no term passes 2^64. Values all -inf   \
     * leave md as it is; a NaN makes d NaN. ln(d) + m is the log-sum-exp of everything seen */ \
    X(void, lse_f32, (float *md, const float *x, long n), (md, x, n))                          \
    X(void, lse_bf16, (float *md, const kg_u16 *x, long n), (md, x, n))                        \
    /* cross entropy's gradient rows before the target's one-hot: g[i] = e(x[i]) * s (fp32)   \
     * where e(x) = e^(x - lse) by a fixed fp32 algorithm of fmaf steps (prim_loss.c            \
     * kgr_exp2_poly of y = fmaf(x, log2 e, -(lse log2 e)): degree 5, within 1e-7 relative);    \
     * the bf16 version (degree 3, within 9e-5) rounds as bf16 arithmetic would: g[i] =         \
     * bf16(bf16(e(x[i])) * s). Element-wise, the same bits on every ISA; g may be x */         \
    X(void, ce_grad_f32, (float *g, const float *x, float lse, float s, long n),               \
      (g, x, lse, s, n))                                                                        \
    X(void, ce_grad_bf16, (kg_u16 *g, const kg_u16 *x, float lse, float s, long n),            \
      (g, x, lse, s, n))                                                                        \
    /* one channel of a depthwise conv1d on a polyphase row: y[q] = fmaf chain over s < S       \
     * ascending, from 0, of f[s] * x[(s % stride) * ldp + s / stride + q], q < Q, i.e. phase p \
     * of the zero-padded row xp holds xp[j * stride + p] at x[p * ldp + j] (stride 1: x is xp).\
     * The same bits on every ISA */                                                            \
    X(void, dwconv_f32, (float *y, const float *x, long ldp, const float *f, long S,           \
                         long stride, long Q), (y, x, ldp, f, S, stride, Q))                  \
    /* one bf16 channel of a stride-1 depthwise conv1d, read and written where it lies: y[q] =  \
     * bf16 of the fmaf chain over s < S ascending, from 0, of f[s] * xp[q + s], q < Q, where   \
     * xp is x (w values) between pl zeros before and zeros after (dwconv_f32's bits on the     \
     * widened padded row, rounded once). The same bits on every ISA */                         \
    X(void, dwconv_bf16, (kg_u16 *y, const kg_u16 *x, long w, const float *f, long S, long pl, \
                          long Q), (y, x, w, f, S, pl, Q))

#define KGP_LIST(X) KGP_LIST_VOID(X) KGP_LIST_MATH(X) KGP_LIST_FLOAT(X) KGP_LIST_ATTN(X) \
    KGP_LIST_LOSS(X)

#define KGP_DECLARE(ret, name, params, args) ret kgp_##name params;
KGP_LIST(KGP_DECLARE)
#undef KGP_DECLARE

/* ---- libm functions generated code may call (resolved from the host process) ------------ */
float sqrtf(float);
float expf(float);
float logf(float);
float tanhf(float);
float erff(float);
float sinf(float);
float cosf(float);

#endif /* KGEN_ABI_H */
