/* main.c: the kgen command line: the command table (each command's synopsis and summary, typed
 * once: `kgen --help` and `kgen CMD --help` are both printed from it), global options and the
 * dispatch to subcommands. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "kgen/abi.h"

/* ---- the commands ------------------------------------------------------------------------- */

/* One row per subcommand. synopsis: its forms, one per line, each without "kgen NAME"; a form
 * is wrapped for printing before a " [". help: what `kgen NAME --help` prints after the
 * synopsis (kept beside the command's option parsing). */
typedef struct command {
    const char *name, *synopsis, *summary;
    int (*run)(int argc, char **argv);
    const char *help;
} command;

static const command commands[] = {
    { "generate", "SPEC [-o DIR]",
      "write SPEC's kernels, kernels.inc and manifest.json (into generated/<spec name>)",
      kgc_generate, kgc_generate_help },
    { "check", "SPEC DIR\n--header FILE",
      "diff SPEC regenerated in memory against DIR, or kgen/kernels.h against FILE",
      kgc_check, kgc_check_help },
    { "list", "SPEC|DIR", "kernel names with their cost and per-call sizes", kgc_list,
      kgc_list_help },
    { "header", "[-o FILE]", "write kgen/kernels.h, derived from the family descriptors",
      kgc_header, kgc_header_help },
    { "exec", "KERNEL --in NAME=FILE.npy ... --out DIR [--jit|--aot] [--raw]\n"
              "--describe FAMILY",
      "run one kernel on .npy inputs, or show a family's keys, inputs and outputs",
      kgc_exec, kgc_exec_help },
    { "run", "SPEC|DIR [--jit|--aot] [--repeat N] [--threads N] [--tokens T]\n"
             "--model DIR [--prompt-ids IDS] [--max-new N] [--threads N] [--jit|--aot] "
             "[--weights bf16|fp8] [--max-context N] [--tp N] [--no-megakernel]\n"
             "--model DIR --input-ids IDS.npy --prefill P --decode N --dump OUT [--jit|--aot] "
             "[--tp N] [--no-megakernel]",
      "compile every kernel of SPEC, run each on seeded inputs, print timings; or run a\n"
      "      Hugging Face model (greedy decoding), or dump its logits and hidden states",
      kgc_run, kgc_run_help },
    { "bench", "[SPEC|DIR] [--gemm] [--kernel REGEX] [--tokens T] [--threads N] [--jit|--aot] "
               "[--csv FILE] [--plot FILE.png] [--quick] [--min-time S] [--min-runs N]\n"
               "--roofline [--threads N] [--csv FILE] [--quick] [--min-time S] [--min-runs N]\n"
               "--coll [--ranks N] [--calls C]",
      "time each kernel against this machine's roofline and OpenBLAS",
      kgc_bench, kgc_bench_help },
    { "spec", "--from-hf DIR [-o FILE] [--max-context N] [--max-batch N] [--weights bf16|fp8] "
              "[--tp N] [--no-megakernel]",
      "print the spec of a Hugging Face model's config.json (the kernels run --model uses)",
      kgc_spec, kgc_spec_help },
    { "make-model", "PRESET -o DIR [--seed N] [--dtype T]\n--list",
      "write a seeded random-weight model (config.json, model.safetensors) from a preset",
      kgc_make_model, kgc_make_model_help },
};
enum { NCOMMANDS = sizeof commands / sizeof commands[0], WIDTH = 92 };

/* Prints one form as "<lead>kgen NAME FORM": words (a word starts at each " [") are wrapped
 * past WIDTH columns onto lines aligned under the form's first word. */
static void print_form(FILE *f, const char *lead, const char *name, const char *form, size_t len)
{
    int indent = fprintf(f, "%skgen %s", lead, name), col = indent;
    while (len > 0) {
        size_t word = 1;
        while (word < len && !(form[word] == ' ' && word + 1 < len && form[word + 1] == '['))
            word++;
        if (col > indent && col + 1 + (int)word > WIDTH)
            col = fprintf(f, "\n%*s", indent, "") - 1;
        col += fprintf(f, " %.*s", (int)word, form);
        form += word, len -= word;
        if (len > 0)
            form++, len--;   /* the space before the next " [" word */
    }
    fputc('\n', f);
}

/* Every form of c's synopsis: the first after lead, the others after next. */
static void print_synopsis(FILE *f, const command *c, const char *lead, const char *next)
{
    for (const char *form = c->synopsis; *form; lead = next) {
        size_t len = strcspn(form, "\n");
        print_form(f, lead, c->name, form, len);
        form += len + (form[len] == '\n');
    }
}

static void print_usage(FILE *f)
{
    fputs("usage: kgen [--help] [--version] COMMAND [ARGS]\n\n"
          "Generates specialized C kernels from a model's kernel spec, and runs them.\n\n"
          "commands:\n", f);
    for (int i = 0; i < NCOMMANDS; i++) {
        print_synopsis(f, &commands[i], "  ", "  ");
        fprintf(f, "      %s\n", commands[i].summary);
    }
    fputs("\nRun 'kgen COMMAND --help' for a command's options. Exit status: 0 ok, 1 failure,\n"
          "2 usage or spec error.\n", f);
}

static int wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    return 0;
}

/* ---- what the commands share -------------------------------------------------------------- */

static _Thread_local int quiet;

void kgc_quiet(int q) { quiet = q; }

int kgc_error(int code, const char *fmt, ...)
{
    if (quiet)
        return code;
    va_list ap;
    fputs("kgen: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

int kgc_bad_argument(const char *cmd, const char *arg)
{
    if (arg[0] == '-' && arg[1])
        return kgc_error(KGC_USAGE, "%s: unknown option '%s' (see kgen %s --help)", cmd, arg,
                         cmd);
    return kgc_error(KGC_USAGE, "%s: unexpected argument '%s' (see kgen %s --help)", cmd, arg,
                     cmd);
}

int kgc_exit_for(int status)
{
    switch (status) {
    case KG_OK: return KGC_OK;
    case KG_ESPEC: case KG_ESHAPE: case KG_EIO: case KG_ENOTFOUND: return KGC_USAGE;
    default: return KGC_FAIL;
    }
}

int kgc_int_option(const char *cmd, const char *opt, const char *value, long lo, long hi,
                   long *out)
{
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (*value && !*end && errno == 0 && v >= lo && v <= hi)
        return *out = v, KGC_OK;
    return kgc_error(KGC_USAGE, "%s: %s wants an integer from %ld to %ld, not '%s'", cmd, opt,
                     lo, hi, value);
}

int kgc_seconds_option(const char *cmd, const char *opt, const char *value, double hi,
                       double *out)
{
    char *end;
    double v = strtod(value, &end);
    if (*value && !*end && isfinite(v) && v > 0 && v <= hi)
        return *out = v, KGC_OK;
    return kgc_error(KGC_USAGE, "%s: %s wants seconds, a number > 0 and <= %g, not '%s'", cmd,
                     opt, hi, value);
}

int kgc_set_once(const char *cmd, const char *opt, const char **slot, const char *value)
{
    if (*slot)
        return kgc_error(KGC_USAGE, "%s: %s given twice ('%s', then '%s')", cmd, opt, *slot,
                         value);
    *slot = value;
    return KGC_OK;
}

/* The folder part of path ("." if none). */
static void folder_of(const char *path, char *dir, size_t len)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, len, ".");
    else
        snprintf(dir, len, "%.*s", slash == path ? 1 : (int)(slash - path), path);
}

int kgc_writable(const char *cmd, const char *opt, const char *path)
{
    struct stat st;
    char dir[4096];
    int err = 0;
    folder_of(path, dir, sizeof dir);
    if (!*path)
        err = ENOENT;
    else if (stat(path, &st) == 0)
        err = S_ISDIR(st.st_mode) ? EISDIR : access(path, W_OK) != 0 ? errno : 0;
    else if (errno != ENOENT)
        err = errno;
    else if (stat(dir, &st) != 0)
        err = errno;
    else if (!S_ISDIR(st.st_mode))
        err = ENOTDIR;
    else if (access(dir, W_OK | X_OK) != 0)
        err = errno;
    if (!err)
        return KGC_OK;
    return kgc_error(KGC_USAGE, "%s: %s %s: cannot write (%s)", cmd, opt, path, strerror(err));
}

int kgc_folder_writable(const char *cmd, const char *opt, const char *path)
{
    struct stat st;
    int err = 0;
    if (!*path)
        err = ENOENT;
    else if (stat(path, &st) != 0)
        err = errno == ENOENT ? 0 : errno;
    else if (!S_ISDIR(st.st_mode))
        err = ENOTDIR;
    else if (access(path, W_OK | X_OK) != 0)
        err = errno;
    if (!err)
        return KGC_OK;
    return kgc_error(KGC_USAGE, "%s: %s %s: cannot write (%s)", cmd, opt, path, strerror(err));
}

double kgc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return print_usage(stderr), KGC_USAGE;
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return print_usage(stdout), KGC_OK;
    if (strcmp(argv[1], "--version") == 0)
        return printf("kgen %s\n", KGEN_VERSION), KGC_OK;
    for (int i = 0; i < NCOMMANDS; i++) {
        const command *c = &commands[i];
        if (strcmp(argv[1], c->name) != 0)
            continue;
        if (!wants_help(argc - 1, argv + 1))
            return c->run(argc - 1, argv + 1);
        print_synopsis(stdout, c, "usage: ", "       ");
        printf("\n%s", c->help);
        return KGC_OK;
    }
    return kgc_error(KGC_USAGE, "unknown command '%s' (see kgen --help)", argv[1]);
}
