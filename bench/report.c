/* report.c: the benchmark's outputs: the table for people, CSV for scripts, and a roofline
 * chart drawn by gnuplot. */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "kgen/kgen.h"
#include "kgen_bench.h"

extern char **environ;

/* "sgemm 2048x4096x6144 + ..." (M x K x N; sgemv when M == 1) */
static void gemm_text(const kgb_result *r, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < r->ngemm && used < len; i++) {
        const kgb_gemm *g = &r->gemm[i];
        int w = snprintf(buf + used, len - used, "%s%s %ldx%ldx%ld", i ? " + " : "",
                         g->M == 1 ? "sgemv" : "sgemm", g->M, g->K, g->N);
        used += w > 0 ? (size_t)w : 0;
    }
}

static double blas_ratio(const kgb_result *r)
{
    return r->blas_seconds > 0 && r->seconds > 0 ? r->blas_seconds / r->seconds : 0;
}

/* ---- table --------------------------------------------------------------------------------- */

void kgb_print_roofline(FILE *f, const kgb_roofline *roof)
{
    fprintf(f, "roofline (probed in this run, %d thread%s): read %.1f GB/s (%.0f MiB buffer), "
            "fp32 FMA %.1f GFLOP/s (%s), ", roof->threads, roof->threads == 1 ? "" : "s",
            roof->read_gbs, roof->read_mib, roof->fp32_gflops, roof->fp32_isa);
    if (roof->bf16_gflops > 0)
        fprintf(f, "bf16 dot %.1f GFLOP/s\n", roof->bf16_gflops);
    else
        fprintf(f, "bf16 dot n/a (no avx512_bf16)\n");
    fprintf(f, "machine balance: %.1f flop/byte (fp32)", roof->fp32_gflops / roof->read_gbs);
    if (roof->bf16_gflops > 0)
        fprintf(f, ", %.1f (bf16)", roof->bf16_gflops / roof->read_gbs);
    fprintf(f, "; primitives: %s\n", kg_prim_isa());
}

void kgb_print_table(FILE *f, const kgb_roofline *roof, const char *blas, const kgb_result *r,
                     int n)
{
    kgb_print_roofline(f, roof);
    fprintf(f, "OpenBLAS: %s\n\n", blas);
    int w = 6;
    for (int i = 0; i < n; i++)
        w = (int)strlen(r[i].name) > w ? (int)strlen(r[i].name) : w;
    fprintf(f, "%-*s %11s %9s %9s %5s %8s %6s %8s\n", w, "kernel", "us/call", "GFLOP/s",
            "GB/s", "bound", "roofline", "paired", "OpenBLAS");
    for (int i = 0; i < n; i++) {
        if (r[i].skip) {
            fprintf(f, "%-*s %11s  (%s)\n", w, r[i].name, "-", r[i].skip);
            continue;
        }
        fprintf(f, "%-*s %11.2f %9.2f %9.2f %5s %8.2f ", w, r[i].name, r[i].seconds * 1e6,
                r[i].gflops, r[i].gbs, kgb_bound_name(r[i].bound), r[i].roof_ratio);
        if (r[i].paired_ratio > 0)
            fprintf(f, "%6.2f ", r[i].paired_ratio);
        else
            fprintf(f, "%6s ", "-");
        if (blas_ratio(&r[i]) > 0)
            fprintf(f, "%8.2f\n", blas_ratio(&r[i]));
        else
            fprintf(f, "%8s\n", "-");
    }
}

/* ---- CSV ------------------------------------------------------------------------------------ */

/* A number, or an empty field for "none". */
static void num(FILE *f, double x)
{
    if (x > 0)
        fprintf(f, ",%.6g", x);
    else
        fputc(',', f);
}

void kgb_write_csv(FILE *f, const kgb_roofline *roof, const kgb_result *r, int n)
{
    fprintf(f, "kind,name,threads,us_per_call,gflops,gbs,intensity,bound,roofline_ratio,"
            "openblas_ratio,paired_ratio,detail\n");
    fprintf(f, "probe,read_bandwidth,%d,,", roof->threads);
    num(f, roof->read_gbs);
    fprintf(f, ",,mem,,,,%.0f MiB buffer\n", roof->read_mib);
    fprintf(f, "probe,fp32_fma_peak,%d,", roof->threads);
    num(f, roof->fp32_gflops);
    fprintf(f, ",,,fp32,,,,%s\n", roof->fp32_isa);
    fprintf(f, "probe,bf16_dot_peak,%d,", roof->threads);
    num(f, roof->bf16_gflops);
    fprintf(f, ",,,bf16,,,,%s\n", roof->bf16_gflops > 0 ? "vdpbf16ps" : "n/a: no avx512_bf16");
    for (int i = 0; i < n; i++) {
        char gemm[256];
        gemm_text(&r[i], gemm, sizeof gemm);
        fprintf(f, "kernel,%s,%d", r[i].name, roof->threads);
        if (r[i].skip) {
            fprintf(f, ",,,,,,,,,skipped: %s\n", r[i].skip);
            continue;
        }
        num(f, r[i].seconds * 1e6);
        num(f, r[i].gflops);
        num(f, r[i].gbs);
        num(f, r[i].intensity);
        fprintf(f, ",%s", kgb_bound_name(r[i].bound));
        num(f, r[i].roof_ratio);
        num(f, blas_ratio(&r[i]));
        num(f, r[i].paired_ratio);
        fprintf(f, ",%s\n", blas_ratio(&r[i]) > 0 ? gemm : "");
    }
}

/* ---- roofline chart ------------------------------------------------------------------------- */

/* s as a gnuplot single-quoted string (a quote is doubled). */
static void quoted(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

static int plotted(const kgb_result *r)
{
    return !r->skip && r->gflops > 0 && r->intensity > 0;
}

/* Axis ranges that hold both ridge points and every plotted kernel, with a margin. */
static void ranges(const kgb_roofline *roof, const kgb_result *r, int n, double x[2], double y[2])
{
    double top = roof->bf16_gflops > roof->fp32_gflops ? roof->bf16_gflops : roof->fp32_gflops;
    x[0] = x[1] = roof->fp32_gflops / roof->read_gbs;
    if (roof->bf16_gflops > 0)
        x[1] = roof->bf16_gflops / roof->read_gbs;
    y[0] = roof->fp32_gflops, y[1] = top;
    for (int i = 0; i < n; i++) {
        if (!plotted(&r[i]))
            continue;
        x[0] = r[i].intensity < x[0] ? r[i].intensity : x[0];
        x[1] = r[i].intensity > x[1] ? r[i].intensity : x[1];
        y[0] = r[i].gflops < y[0] ? r[i].gflops : y[0];
        y[1] = r[i].gflops > y[1] ? r[i].gflops : y[1];
    }
    x[0] /= 8, x[1] *= 8, y[0] /= 8, y[1] *= 3;
    if (x[0] * roof->read_gbs < y[0])
        y[0] = x[0] * roof->read_gbs; /* show where the memory ceiling enters */
}

/* The script's settings: terminal (pngcairo if this gnuplot has it), axes, the roof. */
static void script_setup(FILE *f, const char *png, const char *title, const kgb_roofline *roof,
                         const kgb_result *r, int n)
{
    double x[2], y[2];
    int height = 600 + 17 * 2;
    ranges(roof, r, n, x, y);
    for (int i = 0; i < n; i++)
        height += 17 * plotted(&r[i]); /* one line of the key each */
    fprintf(f, "# Roofline chart written by kgen bench; regenerate with: gnuplot THIS_FILE\n"
            "# x: arithmetic intensity (flop per byte read or written), y: GFLOP/s.\n"
            "# Kernels that do no flops cannot sit on a log axis and are left out.\n"
            "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
            "    set terminal pngcairo size 1000,%d noenhanced font ',10'\n"
            "} else {\n"
            "    set terminal png size 1000,%d noenhanced\n"
            "}\n"
            "set output ", height, height);
    quoted(f, png);
    fprintf(f, "\nset title ");
    quoted(f, title);
    fprintf(f, "\nset logscale xy\nset grid\nset key below left Left reverse maxcols 1\n"
            "set xlabel 'arithmetic intensity (flop/byte)'\nset ylabel 'GFLOP/s'\n"
            "set xrange [%g:%g]\nset yrange [%g:%g]\nset samples 2000\n"
            "bw = %g\np32 = %g\np16 = %g\n"
            "roof(x, p) = x * bw < p ? x * bw : p\n", x[0], x[1], y[0], y[1], roof->read_gbs,
            roof->fp32_gflops, roof->bf16_gflops);
}

/* One data block per kernel, then the plot: the ceilings, a point per kernel. */
static void script_plot(FILE *f, const kgb_roofline *roof, const kgb_result *r, int n)
{
    /* 7 shapes against gnuplot's 8 colours: 56 kernels before a marker repeats */
    static const int shapes[] = { 5, 7, 9, 11, 13, 15, 3 };
    for (int i = 0; i < n; i++)
        if (plotted(&r[i]))
            fprintf(f, "$k%d << EOD\n%g %g\nEOD\n", i, r[i].intensity, r[i].gflops);
    fprintf(f, "plot roof(x, p32) with lines lw 2 lc rgb '#1f77b4' title sprintf("
            "'fp32 FMA roof (%%.0f GFLOP/s, %%.1f GB/s)', p32, bw)");
    if (roof->bf16_gflops > 0)
        fprintf(f, ", \\\n     roof(x, p16) with lines lw 2 dt 2 lc rgb '#d62728' title "
                "sprintf('bf16 dot roof (%%.0f GFLOP/s)', p16)");
    for (int i = 0; i < n; i++) {
        if (!plotted(&r[i]))
            continue;
        fprintf(f, ", \\\n     $k%d with points pt %d ps 1.6 title ", i, shapes[i % 7]);
        quoted(f, r[i].name);
    }
    fputc('\n', f);
}

/* Runs `gnuplot script`; 0, or -1 with the reason in err. */
static int run_gnuplot(const char *script, char *err, size_t errlen)
{
    char *argv[] = { "gnuplot", (char *)script, NULL };
    pid_t pid;
    int rc = posix_spawnp(&pid, "gnuplot", NULL, NULL, argv, environ), status = 0;
    if (rc == ENOENT) {
        snprintf(err, errlen, "gnuplot not found: install gnuplot-nox (scripts/setup-debian.sh)"
                 "; the script is %s", script);
        return -1;
    }
    if (rc != 0 || waitpid(pid, &status, 0) < 0) {
        snprintf(err, errlen, "cannot run gnuplot on %s: %s", script, strerror(rc ? rc : errno));
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(err, errlen, "gnuplot failed on %s (exit status %d)", script,
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return -1;
    }
    return 0;
}

int kgb_plot(const char *png, const char *title, const kgb_roofline *roof, const kgb_result *r,
             int n, char *err, size_t errlen)
{
    char script[4096];
    size_t len = strlen(png);
    int base = len > 4 && !strcmp(png + len - 4, ".png") ? (int)len - 4 : (int)len;
    if (snprintf(script, sizeof script, "%.*s.gp", base, png) >= (int)sizeof script) {
        snprintf(err, errlen, "--plot: file name too long");
        return -1;
    }
    FILE *f = fopen(script, "w");
    if (!f) {
        snprintf(err, errlen, "cannot write %s: %s", script, strerror(errno));
        return -1;
    }
    script_setup(f, png, title, roof, r, n);
    script_plot(f, roof, r, n);
    if (fclose(f) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", script, strerror(errno));
        return -1;
    }
    remove(png); /* so that a stale chart cannot pass for a new one */
    if (run_gnuplot(script, err, errlen) != 0)
        return -1;
    FILE *out = fopen(png, "rb");
    if (!out) {
        snprintf(err, errlen, "gnuplot ran on %s but wrote no %s", script, png);
        return -1;
    }
    fclose(out);
    return 0;
}
