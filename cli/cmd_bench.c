/* cmd_bench.c: kgen bench: the CLI over the benchmark library (bench/kgen_bench.h). Turns a
 * spec's kernels, as its manifest describes them, into measured lines (sizes, seeded arguments,
 * cost, GEMM shapes) and hands the probing, timing, OpenBLAS comparison and reports to the
 * library. */
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_chain.h"
#include "cli.h"
#include "host.h"
#include "kernel_args.h"
#include "kgen/gcc.h"
#include "kgen/kgen.h"
#include "kgen_bench.h"
#include "tensor.h"

const char kgc_bench_help[] =
    "Probes this machine's roofline (read bandwidth, fp32 FMA peak, bf16 dot peak), then times\n"
    "each kernel of SPEC (or of the generated folder DIR) on seeded inputs: the median us per\n"
    "call of at least 1 s and 20 samples after a warm-up, GFLOP/s and GB/s from the manifest's\n"
    "cost block, the bound that applies and the ratio to it, and where the kernel is a GEMM on\n"
    "weights [K, N], the ratio of OpenBLAS sgemm/sgemv time on the same M, K, N in fp32 to the\n"
    "kernel's time. Each sample is followed by a read of the probe's buffer: for a memory-bound\n"
    "kernel, 'paired' is the median over samples of its GB/s against that of the read beside\n"
    "it (a median against a median, in the same milliseconds; the roofline ratio sets the\n"
    "median against the probe's best pass, seconds earlier).\n"
    "  --roofline      only probe the roofline and print it (with --csv, its three probe\n"
    "                  rows): for scripts that time something else against it\n"
    "  --gemm          also (or, without SPEC, only) time the runtime's GEMM on the reference\n"
    "                  shapes: K 4096, N 14336 (an 8B model's MLP up projection), M 1 (decode)\n"
    "                  and 512 (prefill), bf16, e4m3 and f32 weights\n"
    "  --kernel REGEX  only kernels whose name matches (POSIX extended regex)\n"
    "  --tokens T      run at T tokens (batch axes 1, sequence axes T) instead of the nominal\n"
    "                  sizes\n"
    "  --threads N     threads of the kernels, the probes and OpenBLAS (1 to 1024)\n"
    "  --jit | --aot   compile with libtcc (default) or with gcc -O2 into a shared object\n"
    "                  cached in $KGEN_CACHE_DIR (default $XDG_CACHE_HOME/kgen or\n"
    "                  ~/.cache/kgen)\n"
    "  --csv FILE      also write the probes and the kernels as CSV\n"
    "  --plot FILE.png also draw a roofline chart with gnuplot (the script goes to FILE.gp)\n"
    "  --quick         short probes and measurements (CI: the numbers are rough)\n"
    "  --min-time S, --min-runs N   how long each measurement samples (defaults 1, 20;\n"
    "                  S at most 3600, N at most 10^6)\n"
    "  --coll [--ranks N] [--calls C]   instead: the latency of the collectives' all-reduce\n"
    "                  (fp32 sum) of [1], [1, 4096] and [16, 4096] over N ranks (default 2):\n"
    "                  threads of this process, or under `mpirun -np N` one process a rank;\n"
    "                  C calls a size (default 20000) in 21 timed blocks\n"
    "One set of a kernel's arguments may take at most 8 GiB ($KGEN_MAX_ARG_BYTES sets another\n"
    "cap, e.g. 16G); a kernel past it is refused before anything is compiled.\n";

typedef struct bench_args {
    const char *spec, *regex, *csv, *plot;
    long tokens;
    int threads, aot, gemm, roofline;
    kgb_options o;
} bench_args;

/* ---- options ------------------------------------------------------------------------------ */

/* The values of the numeric options, checked after the option loop, each within its bound
 * (cli.h), and the report files, checked writable before the run rather than after it. */
static int numbers(bench_args *a, const char *tokens, const char *threads, const char *min_time,
                   const char *min_runs)
{
    long v;
    int rc = KGC_OK;
    if (tokens && (rc = kgc_int_option("bench", "--tokens", tokens, 1, KGC_MAX_TOKENS, &v)) == 0)
        a->tokens = v;
    if (!rc && threads && !(rc = kgc_int_option("bench", "--threads", threads, 1,
                                                KGC_MAX_THREADS, &v)))
        a->threads = (int)v;
    if (!rc && min_runs && !(rc = kgc_int_option("bench", "--min-runs", min_runs, 1,
                                                 KGC_MAX_RUNS, &v)))
        a->o.min_runs = (int)v;
    if (!rc && min_time)
        rc = kgc_seconds_option("bench", "--min-time", min_time, KGC_MAX_SECONDS,
                                &a->o.min_time);
    if (!rc && a->csv)
        rc = kgc_writable("bench", "--csv", a->csv);
    if (!rc && a->plot)
        rc = kgc_writable("bench", "--plot", a->plot);
    return rc;
}

/* Parses argv into a; returns KGC_OK, or KGC_USAGE after printing why. */
static int parse(int argc, char **argv, bench_args *a)
{
    const char *tokens = NULL, *threads = NULL, *min_time = NULL, *min_runs = NULL;
    const struct { const char *opt; const char **slot; } valued[] = {
        { "--kernel", &a->regex },  { "--csv", &a->csv },         { "--plot", &a->plot },
        { "--tokens", &tokens },    { "--threads", &threads },    { "--min-time", &min_time },
        { "--min-runs", &min_runs },
    };
    *a = (bench_args){ .o = kgb_default_options() };
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        size_t v = 0;
        while (v < sizeof valued / sizeof valued[0] && strcmp(o, valued[v].opt))
            v++;
        if (!strcmp(o, "--aot") || !strcmp(o, "--jit"))
            a->aot = !strcmp(o, "--aot");
        else if (!strcmp(o, "--gemm"))
            a->gemm = 1;
        else if (!strcmp(o, "--roofline"))
            a->roofline = 1;
        else if (!strcmp(o, "--quick"))
            a->o.quick = 1, a->o.min_time = 0.05, a->o.min_runs = 5;
        else if (o[0] != '-' && !a->spec)
            a->spec = o;
        else if (o[0] != '-' || v == sizeof valued / sizeof valued[0])
            return kgc_bad_argument("bench", o);
        else if (i + 1 == argc)
            return kgc_error(KGC_USAGE, "bench: %s wants a value", o);
        else if (kgc_set_once("bench", o, valued[v].slot, argv[++i]) != KGC_OK)
            return KGC_USAGE;
    }
    if (a->roofline && (a->spec || a->gemm || a->regex || tokens || a->plot))
        return kgc_error(KGC_USAGE, "bench: --roofline takes no SPEC, --gemm, --kernel, --tokens "
                         "or --plot");
    if (!a->spec && !a->gemm && !a->roofline)
        return kgc_error(KGC_USAGE, "bench: expected SPEC or --gemm (see kgen bench --help)");
    return numbers(a, tokens, threads, min_time, min_runs);
}

/* ---- one kernel --------------------------------------------------------------------------- */

/* A kernel is timed on sets of arguments in turn, as many as its bytes per call need to add up
 * to COLD_BYTES (at most MAX_SETS): four times the 32 MiB these machines' L3 holds in effect, so
 * each call finds its weights and activations in DRAM, as a model's layers do, and the roofline
 * ratio compares with DRAM bandwidth, not with a cache that held the last call's data. */
enum { MAX_SETS = 16 };
#define COLD_BYTES (128.0 * 1024 * 1024)

typedef struct kernel_call {
    const kg_kernel *k;
    int sets, next;
    void *t[MAX_SETS][KG_MANIFEST_MAX_ARGS];
    long n[KG_MANIFEST_MAX_CALLS];
} kernel_call;

static int call_kernel(void *ctx)
{
    kernel_call *c = ctx;
    int i = c->next;
    c->next = (i + 1) % c->sets;
    return c->k->call(c->t[i], c->n);
}

/* Whether a weight format is one the bf16 dot product consumes (the GEMM rounds the activations
 * to bf16 for these, see kgp_gemm_f32). */
static int narrow_format(const char *dtype)
{
    int f = kg_wt_fmt_from_name(dtype);
    return f == KG_WT_BF16 || f == KG_WT_E4M3 || f == KG_WT_E4M3FN || f == KG_WT_E5M2 ||
           f == KG_WT_E2M1;
}

/* The bound's inputs: narrow weights, and the fp32 GEMMs the kernel equals: every used weight
 * W [K, N] times all M tokens of the call, which together may not count more flops than the
 * cost block (else the kernel is not a plain GEMM over its tokens and has no OpenBLAS match). */
static void gemm_shapes(const kg_manifest_kernel *d, const long *n, kgb_result *r)
{
    long M = kg_manifest_tokens(d, n), shape[KG_MANIFEST_MAX_RANK];
    double flops = 0;
    int plain = M > 0;
    for (int i = 0; i < d->nargs; i++) {
        const kg_manifest_arg *w = &d->args[i];
        if (!w->used || !w->weight)
            continue;
        r->narrow |= narrow_format(w->dtype) || (w->list_alt && narrow_format(w->alt_dtype));
        if (w->list) { /* a layer's weights each: not one GEMM over the tokens */
            plain = 0;
            continue;
        }
        if (kg_manifest_shape(w, n, shape) != 2 || r->ngemm == KGB_MAX_GEMMS) {
            plain = 0;
            continue;
        }
        r->gemm[r->ngemm++] = (kgb_gemm){ M, shape[0], shape[1] };
        flops += 2.0 * (double)M * (double)shape[0] * (double)shape[1];
    }
    if (!plain || flops > r->flops * (1 + 1e-9))
        r->ngemm = 0;
}

/* How many argument sets to time kernel d on: enough for COLD_BYTES (at most MAX_SETS), and no
 * more than the cap on argument memory holds (set_bytes each). */
static int set_count(double call_bytes, size_t set_bytes)
{
    double sets = call_bytes > 0 ? COLD_BYTES / call_bytes : MAX_SETS;
    int n = sets >= MAX_SETS ? MAX_SETS : sets < 1 ? 1 : (int)sets + (sets > (int)sets);
    size_t fit = set_bytes ? kgbuf_limit() / set_bytes : MAX_SETS;
    return fit < 1 ? 1 : fit < (size_t)n ? (int)fit : n;
}

/* c's argument sets for kernel d (c->k and c->n set): `want` of them, or as many as memory
 * gives past the first; KG_OK or the first set's failure with the reason in err. */
static int args_open(kernel_call *c, const kg_manifest_kernel *d, int want, char *err,
                     size_t errlen)
{
    c->next = 0;
    int rc = kgargs_new(d, c->t[0], err, errlen);
    if (rc != KG_OK)
        return rc;
    c->sets = want;
    for (int i = 1; i < c->sets; i++)
        if (kgargs_new(d, c->t[i], err, errlen) != 0) /* set 0 was fine: out of memory */
            c->sets = i; /* time on the sets there are: warmer, but still a measurement */
    return KG_OK;
}

static void args_close(kernel_call *c, const kg_manifest_kernel *d)
{
    for (int i = 0; i < c->sets; i++)
        kgargs_free(d, c->t[i]);
    c->sets = 0;
}

/* Measures kernel d (compiled as k) at the run's sizes into r; KGC_OK, or the exit code with
 * its message in err: 2 when its arguments pass the cap on their memory, else 1. */
static int measure(const kg_kernel *k, const kg_manifest_kernel *d, const bench_args *a,
                   kgb_result *r, char *err, size_t errlen)
{
    static kernel_call c; /* 16 sets of 24 pointers: not for the stack */
    c = (kernel_call){ .k = k };
    double cost[3];
    size_t set_bytes;
    snprintf(r->name, sizeof r->name, "%s", d->symbol);
    if (kgargs_call_sizes(d, a->tokens, c.n) != 0) {
        r->skip = "--tokens is above its nominal token count";
        return KGC_OK;
    }
    if (a->tokens)
        kg_manifest_cost(d, a->tokens, cost);
    else
        memcpy(cost, d->cost, sizeof cost);
    r->flops = cost[0], r->bytes = cost[1] + cost[2];
    gemm_shapes(d, c.n, r);
    int rc = kgargs_bytes(d, &set_bytes, err, errlen);
    if (rc == KG_OK)
        rc = args_open(&c, d, set_count(r->bytes, set_bytes), err, errlen);
    if (rc != KG_OK)
        return kgc_exit_for(rc);
    r->sets = c.sets;
    rc = kgb_time(&a->o, call_kernel, &c, &r->seconds, &r->pace);
    args_close(&c, d);
    if (rc != KG_OK)
        snprintf(err, errlen, "%s returned status %d", d->symbol, rc);
    return rc == KG_OK ? KGC_OK : KGC_FAIL;
}

/* ---- megakernels against their chains ------------------------------------------------------ */

/* A megakernel's timing against the chain of its single-op kernels (bench_chain.h). */
typedef struct chain_line {
    int has;      /* the family has a chain and it was timed */
    kgbc_times t; /* the chain alone, and both in alternating samples */
} chain_line;

static void progress(const char *what, int i, int n);

/* Times the chain of each selected kernel whose family has one, at the nominal sizes (the
 * chain's kernels run at theirs), alone and against the megakernel (k, on as many argument
 * sets as it was timed on) in alternating samples; KGC_OK, or the exit code with the reason
 * printed. */
static int measure_chains(kg_registry *reg, const bench_args *a, const kgc_kernels *ks,
                          const int *sel, const kgb_result *r, chain_line *cl, int n)
{
    static kernel_call c; /* as measure's */
    char err[512];
    for (int i = 0; i < n; i++) {
        const kg_manifest_kernel *d = &ks->m->kernels[sel[i]];
        const kg_kernel *k = kg_registry_find(reg, d->symbol);
        if (r[i].skip || a->tokens || !k)
            continue;
        size_t set_bytes;
        if (kgargs_bytes(d, &set_bytes, err, sizeof err) != KG_OK)
            continue; /* measure refused it already */
        if (!kgbc_has(d->problem))
            continue;
        progress("the chain of single-op kernels", i + 1, n);
        c = (kernel_call){ .k = k };
        int rc = kgargs_call_sizes(d, 0, c.n) == 0 ? KG_OK : KG_EARG;
        if (rc == KG_OK && (rc = args_open(&c, d, r[i].sets, err, sizeof err)) == KG_OK) {
            kgbc_peer mega = { call_kernel, &c };
            rc = kgbc_time(&a->o, d->problem, a->aot, r[i].sets, &mega, &cl[i].t, err,
                           sizeof err);
            args_close(&c, d);
        }
        progress(NULL, i, n);
        if (rc != KG_OK)
            return kgc_error(kgc_exit_for(rc), "bench: the chain of %s: %s", d->symbol, err);
        cl[i].has = 1;
    }
    return KGC_OK;
}

/* "num_layers=L" of a problem string, else 1. */
static long layers_of(const char *problem)
{
    const char *p = strstr(problem, "num_layers=");
    long l = p ? strtol(p + 11, NULL, 10) : 1;
    return l > 0 ? l : 1;
}

/* The megakernels' lines against their chains: time per call and a layer, the ratio, and the
 * read bandwidth each reaches over the bytes a call reads (weights, KV cache, inputs). */
static void print_chains(const kgc_kernels *ks, const int *sel, const kgb_result *r,
                         const chain_line *cl, int n, const kgb_roofline *roof)
{
    int any = 0;
    for (int i = 0; i < n; i++) {
        if (!cl[i].has)
            continue;
        const kg_manifest_kernel *d = &ks->m->kernels[sel[i]];
        long L = layers_of(d->problem);
        const kgbc_times *t = &cl[i].t;
        double bytes = d->cost[KG_COST_READ], mega = r[i].seconds, ch = t->seconds;
        if (!any)
            printf("\nmegakernels against the chain of their single-op kernels (the same "
                   "layers, each call its own\nweights and caches, as many argument sets, "
                   "nominal sizes; the residual adds between them\nnot timed):\n");
        any = 1;
        printf("  %s: %ld layer%s, %.1f MB read a call\n", d->symbol, L, L == 1 ? "" : "s",
               bytes / 1e6);
        printf("    megakernel %10.1f us (%9.1f us a layer), %6.1f GB/s = %.2f of the read "
               "roofline, %.2f paired\n", mega * 1e6, mega * 1e6 / (double)L, bytes / mega / 1e9,
               bytes / mega / 1e9 / roof->read_gbs, bytes * r[i].pace);
        printf("    chain      %10.1f us (%9.1f us a layer), %6.1f GB/s = %.2f of the read "
               "roofline, %.2f paired, %d calls\n", ch * 1e6, ch * 1e6 / (double)L,
               bytes / ch / 1e9, bytes / ch / 1e9 / roof->read_gbs, bytes * t->pace,
               t->calls);
        printf("    chain / megakernel time: %.3f (the two lines above, timed seconds apart)\n",
               ch / mega);
        printf("    alternating samples: chain / megakernel %.3f (medians %.1f / %.1f us a "
               "layer)\n", t->ab_ratio, t->ab_chain * 1e6 / (double)L,
               t->ab_mega * 1e6 / (double)L);
    }
}

/* ---- the run ------------------------------------------------------------------------------ */

/* Compiles the selected kernels (indices sel[0..n) of ks) into reg, with libtcc or (aot) gcc;
 * KG_OK or the error, printed. */
static int build(kg_registry *reg, const kgc_kernels *ks, const int *sel, int n, int aot)
{
    kg_kernel_info *info = calloc((size_t)n, sizeof *info);
    const char **labels = calloc((size_t)n, sizeof *labels);
    const char **srcs = calloc((size_t)n, sizeof *srcs);
    for (int i = 0; i < n; i++) {
        info[i] = kg_manifest_info(&ks->m->kernels[sel[i]]);
        labels[i] = ks->label[sel[i]];
        srcs[i] = ks->text[sel[i]];
    }
    int rc = aot ? kg_gcc_compile(reg, n, info, labels, srcs, NULL)
                 : kg_jit_compile(reg, n, info, labels, srcs, NULL);
    if (rc != KG_OK)
        kgc_error(KGC_FAIL, "%s", kg_registry_error(reg));
    free(info), free(labels), free(srcs);
    return rc;
}

/* OpenBLAS times for the results with a GEMM shape; blas gets its description or why none. */
static void compare_blas(const bench_args *a, kgb_result *r, int n, char *blas, size_t len)
{
    kgb_blas *b = NULL;
    snprintf(blas, len, "no kernel here is a GEMM over its tokens");
    for (int i = 0; i < n; i++) {
        if (r[i].skip || r[i].ngemm == 0)
            continue;
        if (!b && !(b = kgb_blas_open(a->o.threads, blas, len)))
            return;
        snprintf(blas, len, "%s", kgb_blas_describe(b));
        if (kgb_blas_time(b, &a->o, &r[i], &r[i].blas_seconds) != 0)
            r[i].blas_seconds = 0;
    }
    kgb_blas_close(b);
}

/* The megakernels' chains as CSV rows after the kernels' (kind "chain", named by their
 * megakernel): the chain's time, GB/s and ratios over the megakernel's bytes, and in `detail`
 * the alternating samples as key=value words for scripts. */
static void write_chain_rows(FILE *f, const kgc_kernels *ks, const int *sel,
                             const chain_line *cl, int n, const kgb_roofline *roof)
{
    for (int i = 0; i < n; i++) {
        if (!cl[i].has)
            continue;
        const kg_manifest_kernel *d = &ks->m->kernels[sel[i]];
        const kgbc_times *t = &cl[i].t;
        double bytes = d->cost[KG_COST_READ], gbs = bytes / t->seconds / 1e9;
        long L = layers_of(d->problem);
        fprintf(f, "chain,%s,%d,%.6g,,%.6g,,mem,%.6g,,%.6g,layers=%ld calls=%d ab_ratio=%.6g "
                "ab_chain_us=%.6g ab_mega_us=%.6g\n", d->symbol, roof->threads,
                t->seconds * 1e6, gbs, gbs / roof->read_gbs, bytes * t->pace, L, t->calls,
                t->ab_ratio, t->ab_chain * 1e6, t->ab_mega * 1e6);
    }
}

/* With --csv, the probes, the n results and the chains (cl, for the first nk of them; NULL:
 * none) as CSV; KGC_OK or KGC_USAGE, printed. */
static int write_csv(const bench_args *a, const kgb_roofline *roof, const kgb_result *r, int n,
                     const kgc_kernels *ks, const int *sel, const chain_line *cl, int nk)
{
    if (!a->csv)
        return KGC_OK;
    FILE *f = fopen(a->csv, "w");
    if (!f)
        return kgc_error(KGC_USAGE, "bench: --csv %s: cannot write (%s)", a->csv,
                         strerror(errno));
    kgb_write_csv(f, roof, r, n);
    if (ks && cl)
        write_chain_rows(f, ks, sel, cl, nk, roof);
    int bad = ferror(f), closed = fclose(f);
    if (bad || closed != 0)
        return kgc_error(KGC_USAGE, "bench: --csv %s: cannot write (%s)", a->csv,
                         strerror(bad ? EIO : errno));
    return KGC_OK;
}

/* The reports: table on stdout (and the megakernels against their chains), then CSV and chart
 * if asked for. The last ngemm of the n lines are reference GEMMs. */
static int report(const bench_args *a, const kgc_kernels *ks, const int *sel,
                  const chain_line *cl, const kgb_roofline *roof, const char *blas,
                  const kgb_result *r, int n, int ngemm)
{
    const char *spec_name = ks ? ks->m->spec : NULL;
    char title[256], err[512], sizes[64];
    if (a->tokens)
        snprintf(sizes, sizeof sizes, "%ld tokens", a->tokens);
    else
        snprintf(sizes, sizeof sizes, "nominal sizes");
    int nk = spec_name ? n - ngemm : 0;
    if (spec_name)
        printf("spec %s: %d kernel%s, %s, %s; ", spec_name, nk, nk == 1 ? "" : "s",
               a->aot ? "AOT (gcc)" : "JIT (libtcc)", sizes);
    if (a->gemm)
        printf("the runtime's GEMM on %d reference shape%s; ", ngemm, ngemm == 1 ? "" : "s");
    printf("threads: %d\n", kg_threads());
    kgb_print_table(stdout, roof, blas, r, n);
    if (ks)
        print_chains(ks, sel, r, cl, n - ngemm, roof);
    int rc = write_csv(a, roof, r, n, ks, sel, cl, n - ngemm);
    if (rc != KGC_OK)
        return rc;
    if (a->plot) {
        snprintf(title, sizeof title, "kgen bench %s: %s, %d thread%s, primitives %s",
                 spec_name ? spec_name : "--gemm", sizes, roof->threads,
                 roof->threads == 1 ? "" : "s", kg_prim_isa());
        if (kgb_plot(a->plot, title, roof, r, n, err, sizeof err) != 0)
            return kgc_error(KGC_FAIL, "bench: --plot %s: %s", a->plot, err);
    }
    return KGC_OK;
}

/* What the run is doing, on one rewritten line of a terminal (nothing if stderr is not one);
 * NULL clears the line. */
static void progress(const char *what, int i, int n)
{
    if (!isatty(STDERR_FILENO))
        return;
    if (what)
        fprintf(stderr, "\r\033[Kkgen bench: [%d/%d] %s", i, n, what);
    else
        fputs("\r\033[K", stderr);
    fflush(stderr);
}

/* Measures every selected kernel into r; KGC_OK, or the exit code with the reason printed. */
static int measure_all(kg_registry *reg, const bench_args *a, const kgc_kernels *ks,
                       const int *sel, kgb_result *r, int n)
{
    char err[512];
    for (int i = 0; i < n; i++) {
        const kg_manifest_kernel *d = &ks->m->kernels[sel[i]];
        const kg_kernel *k = kg_registry_find(reg, d->symbol);
        progress(d->symbol, i + 1, n);
        int rc = k ? measure(k, d, a, &r[i], err, sizeof err) : KGC_FAIL;
        if (rc == KGC_OK)
            continue;
        progress(NULL, i, n);
        return kgc_error(rc, "%s", k ? err : kg_registry_error(reg));
    }
    return KGC_OK;
}

static int matches(const char *name, void *re)
{
    return regexec(re, name, 0, NULL, 0) == 0;
}

/* The reference GEMMs --kernel selects into r (*ng of them); KGC_OK, or KGC_FAIL with the
 * reason printed. */
static int measure_gemms(const bench_args *a, const regex_t *re, kgb_result *r, int *ng, int i,
                         int n)
{
    char err[512];
    progress("the runtime's GEMM on the reference shapes", i, n);
    int rc = kgb_ref_gemms(&a->o, re ? matches : NULL, (void *)re, r, ng, err, sizeof err);
    if (rc == KG_OK)
        return KGC_OK;
    progress(NULL, i, n);
    return kgc_error(KGC_FAIL, "bench --gemm: %s", err);
}

/* --roofline: the probes alone, printed (and written as CSV if asked). */
static int roofline_only(const bench_args *a)
{
    kgb_roofline roof;
    progress("probing the roofline", 0, 1);
    int probed = kgb_probe(&a->o, &roof);
    progress(NULL, 0, 1);
    if (probed != 0)
        return kgc_error(KGC_FAIL, "bench: no memory for the probes");
    printf("threads: %d\n", kg_threads());
    kgb_print_roofline(stdout, &roof);
    return write_csv(a, &roof, NULL, 0, NULL, NULL, NULL, 0);
}

/* Probes, measures the selected kernels (and with --gemm the reference GEMMs after them),
 * compares with OpenBLAS and reports. ks is NULL when no spec was given. */
static int bench(const bench_args *args, const regex_t *re, const kgc_kernels *ks,
                 const int *sel, int nk)
{
    bench_args paired = *args; /* the same, with the probe's reader once there is one */
    const bench_args *a = &paired;
    kg_registry *reg = kg_registry_new();
    int n = nk + (a->gemm ? KGB_REF_GEMMS : 0);
    kgb_result *r = calloc((size_t)n, sizeof *r);
    chain_line *cl = calloc((size_t)nk + 1, sizeof *cl);
    kgb_roofline roof;
    char blas[320];
    char err[512];   /* every selected kernel's arguments within the cap, before compiling */
    int rc = nk > 0 ? kgargs_check(ks->m, sel, nk, err, sizeof err) : KG_OK;
    if (rc != KG_OK)
        rc = kgc_error(kgc_exit_for(rc), "bench: %s", err);
    if (rc == KGC_OK && nk > 0) {
        progress(a->aot ? "compiling with gcc (or loading the cached build)" : "compiling", 0, n);
        rc = build(reg, ks, sel, nk, a->aot) == KG_OK ? KGC_OK : KGC_FAIL;
        progress(NULL, 0, n);
    }
    if (rc == KGC_OK) {
        progress("probing the roofline", 0, n);
        if (kgb_probe(&a->o, &roof) != 0 || !(paired.o.reader = kgb_reader_open(&a->o, &roof)))
            rc = (progress(NULL, 0, n), kgc_error(KGC_FAIL, "bench: no memory for the probes"));
    }
    if (rc == KGC_OK)
        rc = measure_all(reg, a, ks, sel, r, nk);
    if (rc == KGC_OK && nk > 0)
        rc = measure_chains(reg, a, ks, sel, r, cl, nk);
    int ng = 0;
    if (rc == KGC_OK && a->gemm)
        rc = measure_gemms(a, re, r + nk, &ng, nk, n);
    n = nk + ng;
    if (rc == KGC_OK && n == 0)
        rc = kgc_error(KGC_USAGE, "bench: no reference GEMM matches '%s'", a->regex);
    if (rc == KGC_OK) {
        progress("OpenBLAS on the same shapes", n, n);
        compare_blas(a, r, n, blas, sizeof blas);
        progress(NULL, n, n);
        for (int i = 0; i < n; i++)
            kgb_classify(&r[i], &roof);
        rc = report(a, ks, sel, cl, &roof, blas, r, n, ng);
    }
    kgb_reader_close(paired.o.reader);
    free(r);
    free(cl);
    kg_registry_free(reg);
    return rc;
}

int kgc_bench(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) /* --coll's options send the line there too */
        if (!strcmp(argv[i], "--coll") || !strcmp(argv[i], "--ranks") ||
            !strcmp(argv[i], "--calls"))
            return kgc_bench_coll(argc, argv);
    bench_args a;
    int rc = parse(argc, argv, &a);
    if (rc != KGC_OK)
        return rc;
    regex_t re;
    char why[256];
    if (a.regex && (rc = regcomp(&re, a.regex, REG_EXTENDED | REG_NOSUB)) != 0) {
        regerror(rc, &re, why, sizeof why);
        return kgc_error(KGC_USAGE, "bench: --kernel '%s' is not a valid regex: %s", a.regex,
                         why);
    }
    if (a.threads)
        kg_set_threads(a.threads);
    a.o.threads = kg_threads();

    kgc_kernels ks;
    if (a.roofline) {
        rc = roofline_only(&a);
    } else if (!a.spec) {
        rc = bench(&a, a.regex ? &re : NULL, NULL, NULL, 0);
    } else if ((rc = kgc_kernels_load(a.spec, 1, &ks)) == KGC_OK) {
        int *sel = calloc((size_t)ks.m->nkernels + 1, sizeof *sel), nsel = 0;
        for (int i = 0; i < ks.m->nkernels; i++)
            if (!a.regex || regexec(&re, ks.m->kernels[i].symbol, 0, NULL, 0) == 0)
                sel[nsel++] = i;
        rc = nsel || a.gemm ? bench(&a, a.regex ? &re : NULL, &ks, sel, nsel)
                  : kgc_error(KGC_USAGE, "bench: no kernel of %s matches '%s'", a.spec, a.regex);
        free(sel);
        kgc_kernels_free(&ks);
    }
    if (a.regex)
        regfree(&re);
    return rc;
}
