/* main.c: the kgen command line: global options and the dispatch to subcommands. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "kgen/abi.h"

static const char usage[] =
    "usage: kgen [--help] [--version] COMMAND [ARGS]\n"
    "\n"
    "Generates specialized C kernels from a model's kernel spec, and runs them.\n"
    "\n"
    "commands:\n"
    "  generate SPEC [-o DIR]    write the spec's kernels, kernels.inc and manifest.json\n"
    "                            (DIR defaults to generated/<spec name>); files are written\n"
    "                            only when their content changes\n"
    "  check SPEC DIR            regenerate in memory and diff against DIR; exit 1 on drift\n"
    "  check --header FILE       compare FILE with kgen/kernels.h as the families make it\n"
    "  list SPEC|DIR             kernel names with their cost and per-call sizes\n"
    "  header [-o FILE]          write kgen/kernels.h, derived from the family descriptors\n"
    "  exec KERNEL --in NAME=FILE.npy ... --out DIR [--jit|--aot] [--raw]\n"
    "                            run one kernel on .npy inputs; KERNEL is SPEC.lua:NAME or a\n"
    "                            problem string family:key=value,...\n"
    "  exec --describe FAMILY    the family's keys, defaults, inputs and outputs\n"
    "  run SPEC|DIR [--repeat N] [--threads N] [--tokens T]\n"
    "                            JIT every kernel of SPEC, run each on seeded inputs and print\n"
    "                            a timing summary\n"
    "  bench SPEC|DIR [--kernel REGEX] [--tokens T] [--threads N] [--jit|--aot] [--csv FILE]\n"
    "        [--plot FILE.png] [--quick]\n"
    "                            time each kernel against this machine's roofline, probed\n"
    "                            in the same run, and against OpenBLAS on GEMM shapes\n"
    "\n"
    "Run 'kgen COMMAND --help' for a command's options. Exit status: 0 ok, 1 failure,\n"
    "2 usage or spec error.\n";

int kgc_error(int code, const char *fmt, ...)
{
    va_list ap;
    fputs("kgen: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

int kgc_exit_for(int status)
{
    switch (status) {
    case KG_OK: return KGC_OK;
    case KG_ESPEC: case KG_ESHAPE: case KG_EIO: case KG_ENOTFOUND: return KGC_USAGE;
    default: return KGC_FAIL;
    }
}

typedef struct command { const char *name; int (*run)(int, char **); } command;
static const command commands[] = {
    { "generate", kgc_generate }, { "check", kgc_check }, { "list", kgc_list },
    { "exec", kgc_exec },         { "run", kgc_run },     { "bench", kgc_bench },
    { "header", kgc_header },
};

int main(int argc, char **argv)
{
    if (argc < 2)
        return fputs(usage, stderr), KGC_USAGE;
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return fputs(usage, stdout), KGC_OK;
    if (strcmp(argv[1], "--version") == 0)
        return printf("kgen %s\n", KGEN_VERSION), KGC_OK;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    return kgc_error(KGC_USAGE, "unknown command '%s' (see kgen --help)", argv[1]);
}
