/* cmd_run.c: kgen run: generate a spec's kernels in memory (or read a generated folder), JIT
 * them all, run each on seeded inputs at the spec's nominal sizes, print a timing summary.
 * What each kernel takes and costs comes from the manifest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "host.h"
#include "kernel_args.h"
#include "kgen/aot.h"
#include "kgen/kgen.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of `repeat` timed calls after one warm-up call; returns the kernel's status. */
static int time_kernel(const kg_kernel *k, const kg_manifest_kernel *d, const long *sizes,
                       int repeat, double *median)
{
    void *t[KG_MANIFEST_MAX_ARGS];
    char err[320];
    if (kgc_args_new(d, t, err, sizeof err) != 0) {
        kgc_error(KGC_FAIL, "%s", err);
        return KG_ESHAPE;
    }
    double *times = calloc((size_t)repeat, sizeof *times);
    int rc = k->call(t, sizes);
    for (int r = 0; rc == KG_OK && r < repeat; r++) {
        double t0 = kgc_now();
        rc = k->call(t, sizes);
        times[r] = kgc_now() - t0;
    }
    qsort(times, (size_t)repeat, sizeof *times, cmp_double);
    *median = times[repeat / 2];
    free(times);
    kgc_args_free(d, t);
    return rc;
}

int kgc_run(int argc, char **argv)
{
    static const char help[] = "usage: kgen run SPEC|DIR [--aot] [--repeat N] [--threads N] "
        "[--tokens T]\n"
        "Generates SPEC's kernels in memory (or reads the generated folder DIR: its\n"
        "manifest.json and the files it lists), JIT-compiles them with libtcc, runs each on\n"
        "seeded inputs at the spec's nominal sizes (one warm-up, then the median of N calls,\n"
        "default 5) and prints generation time, JIT time and time per call. --aot runs the\n"
        "gcc-built kernels linked into kgen instead (bundled specs only). --tokens T runs\n"
        "every kernel at T tokens (its batch axes 1, its sequence axes T, as its family\n"
        "declares) instead of the nominal sizes; flops and bytes are the manifest's cost at\n"
        "T tokens.\n";
    long tokens = 0;
    const char *spec = NULL;
    int repeat = 5, aot = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return fputs(help, stdout), KGC_OK;
        if (!strcmp(argv[i], "--aot"))
            aot = 1;
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
            repeat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tokens") && i + 1 < argc) {
            char *end;
            tokens = strtol(argv[++i], &end, 10);
            if (*end || tokens < 1)
                return kgc_error(KGC_USAGE, "run: --tokens wants a positive integer, not '%s'",
                                 argv[i]);
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            kg_set_threads(atoi(argv[++i]));
        else if (argv[i][0] != '-' && !spec)
            spec = argv[i];
        else
            return kgc_error(KGC_USAGE, "run: unexpected argument '%s'", argv[i]);
    }
    if (!spec || repeat < 1)
        return kgc_error(KGC_USAGE, "run: expected SPEC (see kgen run --help)");

    kgc_kernels ks;
    int rc = kgc_kernels_load(spec, 1, &ks);
    if (rc != KGC_OK)
        return rc;
    const kg_manifest *m = ks.m;
    int n = m->nkernels;
    kg_kernel_info *info = calloc((size_t)n + 1, sizeof *info);
    double *jit = calloc((size_t)n + 1, sizeof *jit);
    long lines = 0;
    for (int i = 0; i < n; i++) {
        info[i] = kg_manifest_info(&m->kernels[i]);
        for (const char *p = ks.text[i]; *p; p++)
            lines += *p == '\n';
    }
    kg_registry *reg = kg_registry_new();
    rc = aot ? kg_aot_register(reg, m->spec)
             : kg_jit_compile(reg, n, info, (const char *const *)ks.label,
                              (const char *const *)ks.text, jit);
    if (rc != KG_OK) {
        kgc_error(KGC_FAIL, "%s", kg_registry_error(reg));
    } else {
        double jit_total = 0;
        for (int i = 0; i <= n; i++)
            jit_total += jit[i];
        printf("spec %s: %d kernels, %ld lines of C; %s in %.1f ms, %s %.1f ms "
               "(link %.2f ms); primitives: %s; threads: %d\n\n", m->spec, n, lines,
               ks.generated ? "generated" : "read", ks.seconds * 1e3,
               aot ? "AOT (no compile)" : "JIT", jit_total * 1e3, jit[n] * 1e3, kg_prim_isa(),
               kg_threads());
        printf("%-68s %9s %12s %9s %9s\n", "kernel", "JIT ms", "us/call", "GFLOP/s", "GB/s");
        for (int i = 0; i < n && rc == KG_OK; i++) {
            const kg_manifest_kernel *d = &m->kernels[i];
            const kg_kernel *k = kg_registry_find(reg, d->symbol);
            double t = 0, cost[3];
            long sizes[KG_MANIFEST_MAX_CALLS];
            if (kgc_call_sizes(d, tokens, sizes) != 0) {
                printf("%-68s %9.2f %12s (nominal tokens < %ld)\n", d->symbol, jit[i] * 1e3,
                       "-", tokens);
                continue;
            }
            if (tokens)
                kg_manifest_cost(d, tokens, cost);
            else
                memcpy(cost, d->cost, sizeof cost);
            if (!k) {
                rc = kgc_error(KGC_FAIL, "%s", kg_registry_error(reg));
                break;
            }
            rc = time_kernel(k, d, sizes, repeat, &t);
            if (rc != KG_OK) {
                kgc_error(KGC_FAIL, "%s returned status %d", d->symbol, rc);
                break;
            }
            printf("%-68s %9.2f %12.1f %9.2f %9.2f\n", d->symbol, jit[i] * 1e3, t * 1e6,
                   cost[0] / t / 1e9, (cost[1] + cost[2]) / t / 1e9);
        }
    }
    kg_registry_free(reg);
    free(info);
    free(jit);
    kgc_kernels_free(&ks);
    return rc == KG_OK ? KGC_OK : KGC_FAIL;
}
