/* kgen_bench.h: the benchmark library (kgb_ prefix). This machine's roofline probed in the
 * running process, a median timer for any call, the bound that applies to a kernel and its ratio
 * to it, OpenBLAS sgemm/sgemv on the same shapes, the runtime's GEMM on reference shapes, and
 * the reports (table, CSV, roofline chart).
 * It knows nothing of specs: a caller describes each kernel with a kgb_result. */
#ifndef KGEN_BENCH_H
#define KGEN_BENCH_H

#include <stdio.h>

/* ---- options ------------------------------------------------------------------------------ */

typedef struct kgb_reader kgb_reader;

typedef struct kgb_options {
    int threads;      /* threads of the probes and of OpenBLAS (match the kernels') */
    double min_time;  /* a measurement samples for at least this many seconds (default 1) */
    int min_runs;     /* ... and takes at least this many samples (default 20) */
    int quick;        /* short probes and a smaller read buffer: numbers for CI, not for people */
    kgb_reader *reader; /* if set, kgb_time pairs every sample with a read pass (kgb_reader_open) */
} kgb_options;

/* threads 1, min_time 1 s, min_runs 20, quick 0 */
kgb_options kgb_default_options(void);

/* ---- the roofline ------------------------------------------------------------------------- */

typedef struct kgb_roofline {
    int threads;
    double read_gbs;      /* read bandwidth over a buffer far larger than the caches, GB/s */
    double read_mib;      /* that buffer's size, MiB */
    double fp32_gflops;   /* fp32 FMA peak */
    const char *fp32_isa; /* the instructions that reached it: "avx512", "avx2" or "sse2" */
    double bf16_gflops;   /* vdpbf16ps peak; 0 when the CPU has no avx512_bf16 */
    int read_pattern;     /* the read pattern (streams, prefetch) that reached read_gbs */
} kgb_roofline;

/* Probes read bandwidth, fp32 FMA peak and bf16 dot peak on o->threads OpenMP threads: the
 * fastest of the read passes of o->min_time seconds, the median of several compute passes.
 * Returns 0, or -1 if the read buffer cannot be had. */
int kgb_probe(const kgb_options *o, kgb_roofline *r);

/* The paired read: on a shared VM a neighbour's load moves the memory bandwidth by a fifth
 * from one second to the next (one thread here: best passes of 30 to 42 GB/s a minute apart),
 * so a kernel's median over one second and the probe's best pass over another are not taken
 * under the same conditions. A reader holds a buffer like the probe's and reads all of it with
 * the pattern that reached the roofline; kgb_time runs one such pass after each sample, and
 * the ratio of the two times, sample by sample, gives the kernel's bandwidth as a fraction of
 * what the machine read in the same milliseconds (its median against the reads' median, where
 * the roofline column sets a median against a best). NULL if the buffer cannot be had. */
kgb_reader *kgb_reader_open(const kgb_options *o, const kgb_roofline *roof);
/* Seconds of one read pass; *bytes gets the bytes it read. */
double kgb_reader_pass(kgb_reader *rd, double *bytes);
void kgb_reader_close(kgb_reader *rd);

/* ---- timing ------------------------------------------------------------------------------- */

/* One call of the work to time; a nonzero return stops the measurement and is passed on. */
typedef int kgb_call_fn(void *ctx);

/* Median seconds per call: two warm-up calls, then samples of a batch of calls each (batched so
 * that a sample lasts at least 100 us) until o->min_time has passed and o->min_runs samples are
 * in. With o->reader, each sample is followed by a read pass and *pace (if not NULL) gets the
 * median over samples of (read pass seconds / sample seconds per call) / read pass bytes, so
 * that a call of B bytes ran at B * pace of the bandwidth read around it; else *pace gets 0.
 * Returns 0 or fn's first nonzero status. */
int kgb_time(const kgb_options *o, kgb_call_fn *fn, void *ctx, double *seconds, double *pace);

/* Two calls against each other in the same seconds: after two warm-up calls of each, samples
 * of a and b (batched as kgb_time's) alternate, a first in even rounds and b first in odd ones,
 * until 2 * o->min_time has passed and o->min_runs rounds are in. *sa and *sb get each one's
 * median seconds per call and *ratio the median over rounds of b's sample against a's: a
 * neighbour's load that slows one slows the other, where two kgb_time calls seconds apart can
 * differ by a fifth on a shared VM. No read pass. Returns 0 or the first nonzero status. */
int kgb_time_ab(const kgb_options *o, kgb_call_fn *fa, void *ca, kgb_call_fn *fb, void *cb,
                double *sa, double *sb, double *ratio);

/* ---- kernels and their bounds ------------------------------------------------------------- */

enum kgb_bound { KGB_MEM, KGB_FP32, KGB_BF16 };

/* A GEMM C[M, N] = A[M, K] W[K, N] that OpenBLAS can run in fp32 (sgemv when M == 1). */
typedef struct kgb_gemm { long M, K, N; } kgb_gemm;
#define KGB_MAX_GEMMS 8

/* One kernel's line: the caller fills the description, kgb_classify and kgb_blas_time the rest. */
typedef struct kgb_result {
    char name[128];
    const char *skip;     /* why it was not run (NULL: it was) */
    double seconds;       /* median per call */
    double pace;          /* from kgb_time: 0 when it ran without a reader */
    int sets;             /* argument sets it was timed on, in turn (the caller's) */
    double flops, bytes;  /* per call at the sizes it ran at: cost block (read + written) */
    int narrow;           /* its matmul weights are bf16, fp8 or fp4: the bf16 dot peak applies */
    int ngemm;            /* the fp32 GEMMs it equals (0: no OpenBLAS comparison) */
    kgb_gemm gemm[KGB_MAX_GEMMS];
    /* filled by kgb_classify */
    int bound;            /* enum kgb_bound */
    double gflops, gbs, intensity, roof_ratio;
    double paired_ratio;  /* memory-bound with a pace: bytes * pace, else 0 */
    /* filled by the caller from kgb_blas_time; 0: none */
    double blas_seconds;
} kgb_result;

/* With intensity = flops / bytes and balance = peak / read bandwidth, where peak is the bf16 dot
 * peak for a narrow kernel (if the CPU has one) and the fp32 FMA peak otherwise: memory-bound if
 * intensity < balance (ratio = GB/s / read bandwidth, and the paired ratio bytes * pace), else
 * compute-bound (GFLOP/s / peak). */
void kgb_classify(kgb_result *r, const kgb_roofline *roof);
const char *kgb_bound_name(int bound);

/* ---- the runtime's GEMM on reference shapes ------------------------------------------------ */

/* The reference shapes: K 4096, N 14336 (an 8B model's MLP up projection), M 1 (decode) and 512
 * (prefill), weights in bf16, e4m3 and f32. */
enum { KGB_REF_GEMMS = 6 };

/* Whether the line named `name` is wanted. */
typedef int kgb_select_fn(const char *name, void *ctx);

/* Times the runtime's GEMM (kgp_gemm_f32 over a seeded packed weight, split over the threads
 * as the projection kernels split it) on each reference shape that select accepts (every one
 * if select is NULL), named like "gemm_bf16_m1_k4096_n14336", into r[0 .. *n), *n <=
 * KGB_REF_GEMMS, with cost and GEMM shape filled in. Returns KG_OK, or a KG_* status with the
 * reason in err. */
int kgb_ref_gemms(const kgb_options *o, kgb_select_fn *select, void *ctx, kgb_result *r, int *n,
                  char *err, size_t errlen);

/* ---- OpenBLAS ------------------------------------------------------------------------------ */

typedef struct kgb_blas kgb_blas;

/* Loads OpenBLAS with dlopen, after removing OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE from the
 * environment (a forced core type halves its sgemm; it reads them when it loads), and sets its
 * thread count. NULL, with the reason in err, if it cannot be loaded. */
kgb_blas *kgb_blas_open(int threads, char *err, size_t errlen);
/* "OpenBLAS 0.3.21 ... (core Cooperlake, 2 threads)" */
const char *kgb_blas_describe(const kgb_blas *b);
/* Median seconds of r's GEMMs in fp32, summed (sgemm, or sgemv when M == 1), row-major, on
 * seeded buffers. Returns 0, or -1 if the buffers cannot be had. */
int kgb_blas_time(kgb_blas *b, const kgb_options *o, const kgb_result *r, double *seconds);
void kgb_blas_close(kgb_blas *b);

/* ---- reports ------------------------------------------------------------------------------- */

/* The probed roofline and machine balance, two lines. */
void kgb_print_roofline(FILE *f, const kgb_roofline *roof);
/* The probed roofline, then one line per kernel: us/call, GFLOP/s, GB/s, bound, ratio to the
 * roofline, ratio to OpenBLAS (its time / the kernel's). blas: kgb_blas_describe or a reason. */
void kgb_print_table(FILE *f, const kgb_roofline *roof, const char *blas, const kgb_result *r,
                     int n);
/* The same as CSV: a header line, one row per probe, one per kernel. */
void kgb_write_csv(FILE *f, const kgb_roofline *roof, const kgb_result *r, int n);
/* Writes a gnuplot script next to png (png's name with .gp for .png) for a log-log roofline
 * chart (both ceilings, the kernels as points) and runs gnuplot on it. Returns 0, or -1 with
 * the reason in err (gnuplot missing or failing, a file that cannot be written). */
int kgb_plot(const char *png, const char *title, const kgb_roofline *roof, const kgb_result *r,
             int n, char *err, size_t errlen);

#endif
