/* matmul.c: the one matrix product every projection kernel and `kgen bench --gemm` call:
 * kgp_gemm_f32 split over the runtime's threads, and the check that a packed weight is the one
 * a kernel was generated for. */
#include "kgen/abi.h"
#include "kgen/ckd.h"
#include "kgen/dtype.h"
#include "kgen/kgen.h"
#include "prim.h"

/* Rows of a task: one pass of the AVX-512 and AVX2 GEMMs (their register tiles are 6 rows;
 * 132 = 22 tiles keeps a pass's A rows in L2 next to one weight panel). */
enum { MM_ROWS = 132 };

typedef struct mm {
    float *C;
    kg_u16 *C16; /* kgp_matmul_bf16's C instead */
    const float *A;
    const kg_wt *W;
    long ldc, lda, M, np;
} mm;

/* Tasks [t0, t1): task t is rows [t / np * MM_ROWS, +MM_ROWS) x panel t % np. A contiguous run
 * of tasks inside one row block is one GEMM call over its run of panels. */
static void mm_tasks(void *ctx, long t0, long t1)
{
    const mm *m = ctx;
    while (t0 < t1) {
        long r0 = t0 / m->np * MM_ROWS, p0 = t0 % m->np;
        long p1 = p0 + (t1 - t0) < m->np ? p0 + (t1 - t0) : m->np;
        long rows = m->M - r0 < MM_ROWS ? m->M - r0 : MM_ROWS;
        long n1 = p1 * m->W->nr < m->W->N ? p1 * m->W->nr : m->W->N;
        if (m->C16)
            kgp_gemm_bf16(m->C16 + r0 * m->ldc, m->ldc, m->A + r0 * m->lda, m->lda, rows, m->W,
                          p0 * m->W->nr, n1);
        else
            kgp_gemm_f32(m->C + r0 * m->ldc, m->ldc, m->A + r0 * m->lda, m->lda, rows, m->W,
                         p0 * m->W->nr, n1);
        t0 += p1 - p0;
    }
}

/* Row blocks outermost: a thread's contiguous run of tasks is whole row blocks where there are
 * enough of them (prefill), else runs of panels within one (decode), so each thread streams
 * its part of the weight once per row block and writes its own rows or columns of C. */
static void matmul(mm *m)
{
    /* a task's work: its panel streamed, or its FMAs at 4 a byte (K, nr, M are bounded) */
    const kg_wt *W = m->W;
    long rows = m->M < MM_ROWS ? m->M : MM_ROWS, eb = (kg_wt_fmt_bits(W->fmt) + 7) / 8;
    long task = W->K * W->nr * (rows / 4 > eb ? rows / 4 : eb);
    kgp_parallel_for(mm_tasks, m, (m->M + MM_ROWS - 1) / MM_ROWS * m->np,
                     task > 0 ? KGP_GRAIN(task) : 1);
}

void kgp_matmul_f32(float *C, long ldc, const float *A, long lda, long M, const kg_wt *W)
{
    mm m = { C, NULL, A, W, ldc, lda, M, (W->N + W->nr - 1) / W->nr };
    matmul(&m);
}

void kgp_matmul_bf16(kg_u16 *C, long ldc, const float *A, long lda, long M, const kg_wt *W)
{
    mm m = { NULL, C, A, W, ldc, lda, M, (W->N + W->nr - 1) / W->nr };
    matmul(&m);
}

/* gemm_bf16 through gemm_f32: stripes of `rows` rows x whole panels (up to `cols` columns),
 * rows * cols <= STRIPE_FLOATS, computed in fp32 into a thread's buffer, which stays in L1/L2,
 * and rounded from there. The stripes' rows start where the ISA's passes of rows do, so each
 * element has the bits of one gemm_f32 call over all of C (the AVX2 tiles sum K in parts
 * that depend on the tile's height). A weight whose panels are wider than a stripe (no packer
 * makes one) goes to the scalar GEMM, which rounds each element itself. */
enum { STRIPE_FLOATS = 132 * 64 };

void kgr_gemm_bf16_via_f32(__typeof__(kgp_gemm_f32__scalar) *gemm,
                           __typeof__(kgp_cvt_f32_bf16__scalar) *cvt, long rows, long cols,
                           kg_u16 *C, long ldc, const float *A, long lda, long M,
                           const kg_wt *W, long n0, long n1)
{
    static __thread float stripe[STRIPE_FLOATS] __attribute__((aligned(64)));
    cols = cols / W->nr * W->nr;
    if (cols == 0 || rows * cols > STRIPE_FLOATS) {
        kgp_gemm_bf16__scalar(C, ldc, A, lda, M, W, n0, n1);
        return;
    }
    long bits = kg_wt_fmt_bits(W->fmt); /* fp4 panels are half a byte an element */
    for (long c0 = n0; c0 < n1; c0 += cols) {
        long c1 = n1 - c0 < cols ? n1 : c0 + cols;
        /* the stripe is C's columns [c0, c1) as columns [0, c1 - c0) of a W's view */
        kg_wt v = *W;
        v.data = (const char *)W->data + c0 * W->kpad * bits / 8;
        if (W->kb)
            v.scale = W->scale + c0 / W->nr * (W->kpad / W->kb) * W->nr;
        v.N = W->N - c0;
        for (long r0 = 0; r0 < M; r0 += rows) {
            long rs = M - r0 < rows ? M - r0 : rows;
            gemm(stripe, cols, A + r0 * lda, lda, rs, &v, 0, c1 - c0);
            for (long r = 0; r < rs; r++)
                cvt(C + (r0 + r) * ldc + c0, stripe + r * cols, c1 - c0);
        }
    }
}

int kgp_wt_is(const kg_wt *W, long K, long N, int fmt, int mx)
{
    return W && W->K == K && W->N == N && W->fmt == fmt && (W->kb != 0) == (mx != 0);
}

/* ---- activations packed as weights (kgen/abi.h) ---------------------------------------------- */

/* The packed geometry of an activation x [K, N]: panels, padded K; nonzero when a size is out
 * of range (K, N at most 2^40 in all). */
static int act_plan(long K, long N, int fmt, long *nr, long *kg, long *kpad, long *panels)
{
    if (K <= 0 || N <= 0 || (fmt != KG_WT_F32 && fmt != KG_WT_BF16) || K > (1L << 40) ||
        N > (1L << 40))
        return 1;
    kgr_wt_geometry(fmt, nr, kg);
    *kpad = (K + *kg - 1) / *kg * *kg;
    *panels = (N + *nr - 1) / *nr;
    return 0;
}

long kgp_pack_act_bytes(long K, long N, int fmt)
{
    long nr, kg, kpad, panels;
    size_t e;
    if (act_plan(K, N, fmt, &nr, &kg, &kpad, &panels) ||
        kg_ckd_mul(&e, (size_t)kpad, (size_t)(panels * nr)) ||
        kg_ckd_mul(&e, e, fmt == KG_WT_F32 ? 4 : 2) || e > ((size_t)1 << 42))
        return 0;
    return (long)e + 64; /* and the spare line kg_wt_pack leaves past the panels */
}

void kgp_pack_act_f32(kg_wt *W, void *buf, const float *x, long ldx, long K, long N, int fmt)
{
    long nr, kg, kpad, panels;
    if (act_plan(K, N, fmt, &nr, &kg, &kpad, &panels))
        return;
    *W = (kg_wt){ .fmt = fmt, .kb = 0, .K = K, .N = N, .nr = nr, .kg = kg, .kpad = kpad,
                  .data = buf, .scale = 0, .mem = 0 };
    float *f = buf;
    kg_u16 *b = buf;
    for (long p = 0; p < panels; p++) {
        long base = p * kpad * nr, j1 = N - p * nr < nr ? N - p * nr : nr;
        for (long k = 0; k < kpad; k++) {
            const float *row = x + k * ldx + p * nr;
            long at = base + k / kg * nr * kg + k % kg;
            for (long j = 0; j < nr; j++) {
                float v = k < K && j < j1 ? row[j] : 0.0f; /* zero padding: +0 */
                if (fmt == KG_WT_F32)
                    f[at + j * kg] = v;
                else
                    b[at + j * kg] = kg_f32_to_bf16(v);
            }
        }
    }
}
