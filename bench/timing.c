/* timing.c: the median timer and the bound a kernel is measured against. */
#include <stdlib.h>
#include <time.h>

#include "internal.h"
#include "kgen_bench.h"

#define SAMPLE_SECONDS 100e-6 /* a sample batches calls until it lasts at least this long */
#define MAX_BATCH 1000000

double kgbi_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double kgbi_median(double *x, int n)
{
    if (n <= 0)
        return 0;
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

kgb_options kgb_default_options(void)
{
    return (kgb_options){ .threads = 1, .min_time = 1.0, .min_runs = 20, .quick = 0 };
}

/* Runs fn batch times; returns the seconds per call, or -1 with *rc set if fn fails. */
static double sample(kgb_call_fn *fn, void *ctx, long batch, int *rc)
{
    double t0 = kgbi_now();
    for (long b = 0; b < batch; b++)
        if ((*rc = fn(ctx)) != 0)
            return -1;
    return (kgbi_now() - t0) / (double)batch;
}

/* Two warm-up calls of fn, the second timed to size a batch (calls per sample); 0 with *rc set
 * if fn fails. */
static long warm_batch(kgb_call_fn *fn, void *ctx, int *rc)
{
    if ((*rc = fn(ctx)) != 0)
        return 0;
    double one = sample(fn, ctx, 1, rc);
    if (*rc != 0)
        return 0;
    long batch = one >= SAMPLE_SECONDS ? 1 : (long)(SAMPLE_SECONDS / (one > 1e-9 ? one : 1e-9));
    return batch < 1 ? 1 : batch > MAX_BATCH ? MAX_BATCH : batch;
}

int kgb_time(const kgb_options *o, kgb_call_fn *fn, void *ctx, double *seconds, double *pace)
{
    int rc;
    *seconds = 0;
    if (pace)
        *pace = 0;
    long batch = warm_batch(fn, ctx, &rc);
    if (!batch)
        return rc;
    int n = 0, cap = 64;
    double *t = malloc((size_t)cap * sizeof *t), *q = malloc((size_t)cap * sizeof *q);
    double read_bytes = 0;
    if (!t || !q) {
        free(t), free(q);
        return -1;
    }
    double start = kgbi_now();
    while (n < o->min_runs || kgbi_now() - start < o->min_time) {
        if (n == cap) {
            double *grown = realloc(t, (size_t)(cap * 2) * sizeof *t);
            if (grown)
                t = grown;
            grown = grown ? realloc(q, (size_t)(cap * 2) * sizeof *q) : NULL;
            if (!grown)
                break;
            q = grown, cap *= 2;
        }
        t[n] = sample(fn, ctx, batch, &rc);
        if (rc != 0)
            break;
        /* the read right after the sample, while the machine is as busy as it was */
        if (o->reader)
            q[n] = kgb_reader_pass(o->reader, &read_bytes) / t[n];
        n++;
    }
    if (o->reader && pace && n > 0 && read_bytes > 0)
        *pace = kgbi_median(q, n) / read_bytes;
    *seconds = kgbi_median(t, n);
    free(t), free(q);
    return rc;
}

/* One round of kgb_time_ab: a's and b's seconds per call, and b / a. */
typedef struct ab_round { double t[3]; } ab_round;

/* The median of field f over n rounds, through the scratch x. */
static double ab_median(const ab_round *r, int n, int f, double *x)
{
    for (int i = 0; i < n; i++)
        x[i] = r[i].t[f];
    return kgbi_median(x, n);
}

int kgb_time_ab(const kgb_options *o, kgb_call_fn *fa, void *ca, kgb_call_fn *fb, void *cb,
                double *sa, double *sb, double *ratio)
{
    int rc;
    *sa = *sb = *ratio = 0;
    long ba = warm_batch(fa, ca, &rc), bb = ba ? warm_batch(fb, cb, &rc) : 0;
    if (!ba || !bb)
        return rc;
    int n = 0, cap = 64;
    ab_round *r = malloc((size_t)cap * sizeof *r);
    if (!r)
        return -1;
    double start = kgbi_now();
    while (n < o->min_runs || kgbi_now() - start < 2 * o->min_time) {
        if (n == cap) {
            ab_round *grown = realloc(r, (size_t)(cap * 2) * sizeof *r);
            if (!grown)
                break;
            r = grown, cap *= 2;
        }
        double *t = r[n].t;
        /* a then b on even rounds, b then a on odd ones: neither always runs second */
        if (n % 2 == 0) {
            t[0] = sample(fa, ca, ba, &rc);
            if (rc == 0)
                t[1] = sample(fb, cb, bb, &rc);
        } else {
            t[1] = sample(fb, cb, bb, &rc);
            if (rc == 0)
                t[0] = sample(fa, ca, ba, &rc);
        }
        if (rc != 0)
            break;
        t[2] = t[1] / t[0];
        n++;
    }
    double *x = malloc((size_t)(n > 0 ? n : 1) * sizeof *x);
    if (!x)
        rc = -1;
    else {
        *sa = ab_median(r, n, 0, x);
        *sb = ab_median(r, n, 1, x);
        *ratio = ab_median(r, n, 2, x);
    }
    free(x), free(r);
    return rc;
}

const char *kgb_bound_name(int bound)
{
    return bound == KGB_BF16 ? "bf16" : bound == KGB_FP32 ? "fp32" : "mem";
}

void kgb_classify(kgb_result *r, const kgb_roofline *roof)
{
    int narrow = r->narrow && roof->bf16_gflops > 0;
    double peak = narrow ? roof->bf16_gflops : roof->fp32_gflops;
    double balance = peak / roof->read_gbs; /* flop per byte where the two ceilings meet */
    r->intensity = r->bytes > 0 ? r->flops / r->bytes : 0;
    r->bound = r->bytes > 0 && r->intensity < balance ? KGB_MEM : narrow ? KGB_BF16 : KGB_FP32;
    if (r->bytes <= 0 && r->flops <= 0)
        r->bound = KGB_MEM;
    if (r->skip || r->seconds <= 0) {
        r->gflops = r->gbs = r->roof_ratio = r->paired_ratio = 0;
        return;
    }
    r->gflops = r->flops / r->seconds / 1e9;
    r->gbs = r->bytes / r->seconds / 1e9;
    r->roof_ratio = r->bound == KGB_MEM ? r->gbs / roof->read_gbs : r->gflops / peak;
    r->paired_ratio = r->bound == KGB_MEM && r->bytes > 0 ? r->bytes * r->pace : 0;
}
