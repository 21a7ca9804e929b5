/* probe.c: this machine's roofline, measured in the running process: read bandwidth over a
 * buffer far larger than the caches, the fp32 FMA peak and the bf16 dot-product peak. The
 * vector code is compiled per function with target attributes and runs only if cpuid says so. */
#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>

#include "internal.h"
#include "kgen/kgen.h" /* kg_stream_alloc */
#include "kgen_bench.h"
#include "prim.h" /* kgr_cpu_features: the runtime's reading of cpuid and xgetbv */

enum {
    /* The size of the weights the decode GEMVs stream (an 8B model's MLP projection: 112 MiB),
     * 4x the ~32 MiB the L3 of these machines holds in practice, so the probe meets the memory
     * the kernels do. A 512 MiB buffer read slower on one Zen 5 VM (37.7-46.6 GB/s over a
     * session) than the bf16 GEMV on its 112 MiB (46-48.6 GB/s: ratios up to 1.24); at 128 MiB
     * the probe read 47.6-50.8 and the GEMV's ratio stayed at or below 0.97. */
    READ_MIB = 128,
    QUICK_READ_MIB = 128,
    PASSES = 7,           /* timed passes per probe (plus one warm-up) */
    QUICK_PASSES = 3,
};
#define PASS_SECONDS 0.02 /* length of one compute-peak pass */
#define QUICK_PASS_SECONDS 0.003

/* ---- read bandwidth ------------------------------------------------------------------------ */

/* The read loops: a sum of n floats (n a multiple of 128 * streams) with 8 independent vector
 * accumulators, the buffer read as `streams` equal parts advancing together, 256 bytes of each
 * per step; with pf, each stream also prefetches 2 KiB ahead. One stream is the plain sequential
 * read; the kernels read several at once (decode attention: its K and V rows; the GEMV: a
 * panel and its activations), and on some machines (Zen 5) that, or a software prefetch, draws
 * more bandwidth than one stream: the probe takes the best of these patterns, so no streaming
 * kernel reads faster than the roofline it is measured against. */
typedef float sum_fn(const float *p, long n, int streams, int pf);

enum { PF_FLOATS = 512 }; /* the prefetch distance, 2 KiB */

__attribute__((target("avx512f"))) static float sum_avx512(const float *p, long n, int streams,
                                                           int pf)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
           a7 = a0;
    long len = n / streams;
    for (long i = 0; i < len; i += 128)
        for (int k = 0; k < streams; k++) {
            const float *q = p + k * len + i;
            if (pf)
                _mm_prefetch((const char *)(q + PF_FLOATS), _MM_HINT_T0);
            a0 = _mm512_add_ps(a0, _mm512_loadu_ps(q));
            a1 = _mm512_add_ps(a1, _mm512_loadu_ps(q + 16));
            a2 = _mm512_add_ps(a2, _mm512_loadu_ps(q + 32));
            a3 = _mm512_add_ps(a3, _mm512_loadu_ps(q + 48));
            if (pf)
                _mm_prefetch((const char *)(q + PF_FLOATS + 64), _MM_HINT_T0);
            a4 = _mm512_add_ps(a4, _mm512_loadu_ps(q + 64));
            a5 = _mm512_add_ps(a5, _mm512_loadu_ps(q + 80));
            a6 = _mm512_add_ps(a6, _mm512_loadu_ps(q + 96));
            a7 = _mm512_add_ps(a7, _mm512_loadu_ps(q + 112));
        }
    a0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                       _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    return _mm512_reduce_add_ps(a0);
}

__attribute__((target("avx2"))) static float sum_avx2(const float *p, long n, int streams,
                                                      int pf)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
           a7 = a0;
    long len = n / streams;
    for (long i = 0; i < len; i += 128)
        for (int k = 0; k < streams; k++)
            for (int h = 0; h < 128; h += 64) {
                const float *q = p + k * len + i + h;
                if (pf)
                    _mm_prefetch((const char *)(q + PF_FLOATS), _MM_HINT_T0);
                a0 = _mm256_add_ps(a0, _mm256_loadu_ps(q));
                a1 = _mm256_add_ps(a1, _mm256_loadu_ps(q + 8));
                a2 = _mm256_add_ps(a2, _mm256_loadu_ps(q + 16));
                a3 = _mm256_add_ps(a3, _mm256_loadu_ps(q + 24));
                if (pf)
                    _mm_prefetch((const char *)(q + PF_FLOATS + 32), _MM_HINT_T0);
                a4 = _mm256_add_ps(a4, _mm256_loadu_ps(q + 32));
                a5 = _mm256_add_ps(a5, _mm256_loadu_ps(q + 40));
                a6 = _mm256_add_ps(a6, _mm256_loadu_ps(q + 48));
                a7 = _mm256_add_ps(a7, _mm256_loadu_ps(q + 56));
            }
    a0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                       _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    float v[8];
    _mm256_storeu_ps(v, a0);
    return v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
}

static float sum_sse2(const float *p, long n, int streams, int pf)
{
    __m128 a0 = _mm_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
           a7 = a0;
    long len = n / streams;
    for (long i = 0; i < len; i += 32)
        for (int k = 0; k < streams; k++) {
            const float *q = p + k * len + i;
            if (pf && i % 64 == 0)
                _mm_prefetch((const char *)(q + PF_FLOATS), _MM_HINT_T0);
            a0 = _mm_add_ps(a0, _mm_loadu_ps(q));
            a1 = _mm_add_ps(a1, _mm_loadu_ps(q + 4));
            a2 = _mm_add_ps(a2, _mm_loadu_ps(q + 8));
            a3 = _mm_add_ps(a3, _mm_loadu_ps(q + 12));
            a4 = _mm_add_ps(a4, _mm_loadu_ps(q + 16));
            a5 = _mm_add_ps(a5, _mm_loadu_ps(q + 20));
            a6 = _mm_add_ps(a6, _mm_loadu_ps(q + 24));
            a7 = _mm_add_ps(a7, _mm_loadu_ps(q + 28));
        }
    a0 = _mm_add_ps(_mm_add_ps(_mm_add_ps(a0, a1), _mm_add_ps(a2, a3)),
                    _mm_add_ps(_mm_add_ps(a4, a5), _mm_add_ps(a6, a7)));
    float v[4];
    _mm_storeu_ps(v, a0);
    return v[0] + v[1] + v[2] + v[3];
}

/* The patterns the probe tries, in turn: streams, prefetch. */
static const struct { int streams, pf; } patterns[] = { { 1, 0 }, { 2, 0 }, { 4, 0 }, { 1, 1 },
                                                         { 4, 1 } };
#define NPATTERNS (int)(sizeof patterns / sizeof patterns[0])

/* Seconds for `threads` threads to read n floats once, each its own contiguous part, from the
 * moment all of them have started (a barrier) to the end of the slowest. */
static double read_pass(sum_fn *fn, const float *buf, long n, int threads, int pattern,
                        float *sink)
{
    float total = 0;
    double t0 = 0, t1 = 0;
    int streams = patterns[pattern].streams, pf = patterns[pattern].pf;
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
        /* whole blocks of 128 floats per stream */
        long i = omp_get_thread_num(), nt = omp_get_num_threads(), blocks = n / 128 / streams;
        long b = blocks * i / nt * 128 * streams, e = blocks * (i + 1) / nt * 128 * streams;
#pragma omp barrier
#pragma omp single
        t0 = kgbi_now(); /* the single's implied barrier starts everyone together */
        total += fn(buf + b, e - b, streams, pf);
#pragma omp barrier
#pragma omp single
        t1 = kgbi_now();
    }
    *sink += total;
    return t1 - t0;
}

/* The read buffer, on 2 MiB transparent huge pages where the kernel gives them: the packed
 * weights the kernels stream live on them too (runtime/src/wt.c), and on 4 KiB pages the TLB
 * misses cost a fifth of the bandwidth (22 against 27 GB/s on one Zen 4 thread). */
static float *alloc_read_buffer(size_t bytes)
{
    return kg_stream_alloc(bytes);
}

/* Read bandwidth in GB/s: the fastest timed pass (the one no other process slowed; every pass
 * reads the same bytes from DRAM), after one that warms the TLB; the passes take the read
 * patterns in turn, each at least twice (once with --quick). Passes go on for o->min_time,
 * the window each kernel is timed over, so the probe has as many chances as a kernel to run
 * while the machine is quiet (on a shared VM a neighbour's burst can halve any one pass). */
static sum_fn *sum_for(int features)
{
    return features & KGR_CPU_AVX512 ? sum_avx512 : features & KGR_CPU_AVX2 ? sum_avx2 : sum_sse2;
}

/* The read buffer of o's size, first touched by the threads that read it; NULL without memory. */
static float *read_buffer(const kgb_options *o, long *n)
{
    long mib = o->quick ? QUICK_READ_MIB : READ_MIB;
    *n = mib << 18; /* floats */
    float *buf = alloc_read_buffer((size_t)*n * sizeof *buf);
    if (!buf)
        return NULL;
#pragma omp parallel for num_threads(o->threads) schedule(static)
    for (long i = 0; i < *n; i++)
        buf[i] = 1.0f;
    return buf;
}

static int probe_read(const kgb_options *o, int features, kgb_roofline *r, float *sink)
{
    long n;
    int passes = o->quick ? QUICK_PASSES : PASSES;
    float *buf = read_buffer(o, &n);
    if (!buf)
        return -1;
    sum_fn *fn = sum_for(features);
    double best = 1e30, start;
    read_pass(fn, buf, n, o->threads, 0, sink);
    start = kgbi_now();
    int each = o->quick ? 1 : 2, least = passes > each * NPATTERNS ? passes : each * NPATTERNS;
    for (int p = 0; p < least || kgbi_now() - start < o->min_time; p++) {
        double t = read_pass(fn, buf, n, o->threads, p % NPATTERNS, sink);
        if (t < best)
            best = t, r->read_pattern = p % NPATTERNS;
    }
    free(buf);
    r->read_mib = (double)(n >> 18);
    r->read_gbs = (double)n * sizeof(float) / best / 1e9;
    return 0;
}

/* ---- the paired read ----------------------------------------------------------------------- */

struct kgb_reader {
    float *buf;
    long n;           /* floats in buf */
    int threads, pattern;
    sum_fn *fn;
    float sink;
};

kgb_reader *kgb_reader_open(const kgb_options *o, const kgb_roofline *roof)
{
    kgb_reader *rd = calloc(1, sizeof *rd);
    if (!rd || !(rd->buf = read_buffer(o, &rd->n))) {
        free(rd);
        return NULL;
    }
    rd->threads = o->threads;
    rd->pattern = roof->read_pattern >= 0 && roof->read_pattern < NPATTERNS ? roof->read_pattern
                                                                            : 0;
    rd->fn = sum_for(kgr_cpu_features());
    return rd;
}

double kgb_reader_pass(kgb_reader *rd, double *bytes)
{
    *bytes = (double)rd->n * sizeof(float);
    return read_pass(rd->fn, rd->buf, rd->n, rd->threads, rd->pattern, &rd->sink);
}

void kgb_reader_close(kgb_reader *rd)
{
    if (!rd)
        return;
    __asm__ volatile("" : : "m"(rd->sink));
    free(rd->buf);
    free(rd);
}

/* ---- compute peaks ------------------------------------------------------------------------- */

/* `iters` rounds of independent multiply-adds a = a*m + c on enough accumulators to cover
 * latency times pipes (8 in flight on two pipes of latency 4); a converges, never overflows. */
typedef float peak_fn(long iters);

#define REP16(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) \
                 X(14) X(15)
#define REP12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define REP8(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

enum { FLOPS_AVX512 = 16 * 16 * 2, FLOPS_AVX2 = 12 * 8 * 2, FLOPS_SSE2 = 8 * 4 * 2,
       FLOPS_BF16 = 16 * 16 * 2 * 2 };

__attribute__((target("avx512f,fma"))) static float fma_avx512(long iters)
{
    const __m512 m = _mm512_set1_ps(0.9999f), c = _mm512_set1_ps(1e-4f);
#define DECL(i) __m512 a##i = _mm512_set1_ps((float)(i));
#define STEP(i) a##i = _mm512_fmadd_ps(a##i, m, c);
#define SUM(i) s = _mm512_add_ps(s, a##i);
    REP16(DECL)
    for (long i = 0; i < iters; i++) {
        REP16(STEP)
    }
    __m512 s = _mm512_setzero_ps();
    REP16(SUM)
    return _mm512_reduce_add_ps(s);
#undef DECL
#undef STEP
#undef SUM
}

/* 12 ymm accumulators: with m and c that is 14 of the 16 registers, so none spills. */
__attribute__((target("avx2,fma"))) static float fma_avx2(long iters)
{
    const __m256 m = _mm256_set1_ps(0.9999f), c = _mm256_set1_ps(1e-4f);
#define DECL(i) __m256 a##i = _mm256_set1_ps((float)(i));
#define STEP(i) a##i = _mm256_fmadd_ps(a##i, m, c);
#define SUM(i) s = _mm256_add_ps(s, a##i);
    REP12(DECL)
    for (long i = 0; i < iters; i++) {
        REP12(STEP)
    }
    __m256 s = _mm256_setzero_ps();
    REP12(SUM)
    float v[8];
    _mm256_storeu_ps(v, s);
    return v[0] + v[4];
#undef DECL
#undef STEP
#undef SUM
}

/* No FMA: a multiply and an add per element, counted as two flops. */
static float fma_sse2(long iters)
{
    const __m128 m = _mm_set1_ps(0.9999f), c = _mm_set1_ps(1e-4f);
#define DECL(i) __m128 a##i = _mm_set1_ps((float)(i));
#define STEP(i) a##i = _mm_add_ps(_mm_mul_ps(a##i, m), c);
#define SUM(i) s = _mm_add_ps(s, a##i);
    REP8(DECL)
    for (long i = 0; i < iters; i++) {
        REP8(STEP)
    }
    __m128 s = _mm_setzero_ps();
    REP8(SUM)
    float v[4];
    _mm_storeu_ps(v, s);
    return v[0] + v[3];
#undef DECL
#undef STEP
#undef SUM
}

/* vdpbf16ps: each of the 16 lanes adds two bf16 products (4 flops) per instruction. */
__attribute__((target("avx512f,avx512bf16"))) static float dot_bf16(long iters)
{
    const __m512bh x = (__m512bh)_mm512_set1_epi16(0x3a83); /* 1e-3 */
    const __m512bh y = (__m512bh)_mm512_set1_epi16(0x3c23); /* 1e-2 */
#define DECL(i) __m512 a##i = _mm512_set1_ps((float)(i));
#define STEP(i) a##i = _mm512_dpbf16_ps(a##i, x, y);
#define SUM(i) s = _mm512_add_ps(s, a##i);
    REP16(DECL)
    for (long i = 0; i < iters; i++) {
        REP16(STEP)
    }
    __m512 s = _mm512_setzero_ps();
    REP16(SUM)
    return _mm512_reduce_add_ps(s);
#undef DECL
#undef STEP
#undef SUM
}

/* Seconds for every thread to run fn(iters); *team gets the threads that ran. */
static double peak_pass(peak_fn *fn, long iters, int threads, int *team, float *sink)
{
    float total = 0;
    int nt = 0;
    double t0 = kgbi_now();
#pragma omp parallel num_threads(threads) reduction(+ : total, nt)
    {
        total += fn(iters);
        nt += 1;
    }
    double t = kgbi_now() - t0;
    *team = nt;
    *sink += total;
    return t;
}

/* Iterations of fn that last about `want` seconds on one thread, from the fastest of three
 * runs (the fastest is the one no other process interrupted) once a run lasts 1 ms. */
static long calibrate(peak_fn *fn, double want, float *sink)
{
    for (long iters = 1 << 10;; iters *= 4) {
        double best = 1e30;
        for (int k = 0; k < 3; k++) {
            double t0 = kgbi_now();
            *sink += fn(iters);
            double t = kgbi_now() - t0;
            best = t < best ? t : best;
        }
        if (best >= 1e-3 || iters >= 1L << 40)
            return (long)((double)iters * want / best) + 1;
    }
}

/* GFLOP/s of fn on all threads: the median of the timed passes, each about PASS_SECONDS. */
static double probe_peak(const kgb_options *o, peak_fn *fn, int flops_per_iter, float *sink)
{
    int team, passes = o->quick ? QUICK_PASSES : PASSES;
    double t[PASSES];
    long iters = calibrate(fn, o->quick ? QUICK_PASS_SECONDS : PASS_SECONDS, sink);
    for (int p = 0; p < passes; p++)
        t[p] = peak_pass(fn, iters, o->threads, &team, sink);
    return (double)team * (double)iters * flops_per_iter / kgbi_median(t, passes) / 1e9;
}

int kgb_probe(const kgb_options *o, kgb_roofline *r)
{
    int f = kgr_cpu_features();
    float sink = 0;
    *r = (kgb_roofline){ .threads = o->threads };
    if (probe_read(o, f, r, &sink) != 0)
        return -1;
    if (f & KGR_CPU_AVX512)
        r->fp32_gflops = probe_peak(o, fma_avx512, FLOPS_AVX512, &sink), r->fp32_isa = "avx512";
    else if (f & KGR_CPU_AVX2)
        r->fp32_gflops = probe_peak(o, fma_avx2, FLOPS_AVX2, &sink), r->fp32_isa = "avx2";
    else
        r->fp32_gflops = probe_peak(o, fma_sse2, FLOPS_SSE2, &sink), r->fp32_isa = "sse2";
    if (f & KGR_CPU_AVX512_BF16)
        r->bf16_gflops = probe_peak(o, dot_bf16, FLOPS_BF16, &sink);
    /* the sums are never used; keep the compiler from proving that */
    __asm__ volatile("" : : "m"(sink));
    return 0;
}
