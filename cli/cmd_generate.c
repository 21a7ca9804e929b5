/* cmd_generate.c: kgen generate, check, list and header: a spec (or the family descriptors) in,
 * files, a comparison or a listing out. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "fsutil.h"
#include "host.h"
#include "kgen/abi.h"

static int generate_files(const char *spec, kgg_file **files, int *n, char **name)
{
    kgg *g = kgg_new();
    if (!g)
        return kgc_error(KGC_FAIL, "cannot start Lua");
    int rc = kgg_generate(g, spec, files, n, name);
    if (rc != KG_OK)
        kgc_error(kgc_exit_for(rc), "%s", kgg_error(g));
    kgg_free(g);
    return rc == KG_OK ? KGC_OK : kgc_exit_for(rc);
}

/* The positional arguments of a command that takes no options into pos[0 .. want);
 * KGC_USAGE (printed) for an option, an extra argument or a missing one. */
static int positional(const char *cmd, int argc, char **argv, const char **pos, int want,
                      const char *what)
{
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' || n == want)
            return kgc_bad_argument(cmd, argv[i]);
        pos[n++] = argv[i];
    }
    if (n < want)
        return kgc_error(KGC_USAGE, "%s: expected %s (see kgen %s --help)", cmd, what, cmd);
    return KGC_OK;
}

const char kgc_generate_help[] =
    "Writes one <symbol>.c per kernel, kernels.inc and manifest.json into DIR (default\n"
    "generated/<spec name>), each only if its content changed; removes kernel files of\n"
    "DIR that the spec no longer has.\n"
    "  -o DIR   the output folder (created if missing)\n";

int kgc_generate(int argc, char **argv)
{
    const char *spec = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
            if (kgc_set_once("generate", "-o", &out, argv[++i]) != KGC_OK)
                return KGC_USAGE;
        } else if (strcmp(argv[i], "-o") == 0)
            return kgc_error(KGC_USAGE, "generate: -o needs a folder");
        else if (argv[i][0] != '-' && !spec)
            spec = argv[i];
        else
            return kgc_bad_argument("generate", argv[i]);
    }
    if (!spec)
        return kgc_error(KGC_USAGE, "generate: which spec? (see kgen generate --help)");
    if (out && kgc_folder_writable("generate", "-o", out) != KGC_OK)
        return KGC_USAGE;
    kgg_file *files;
    int n;
    char *name, dir[4096];
    int rc = generate_files(spec, &files, &n, &name);
    if (rc != KGC_OK)
        return rc;
    snprintf(dir, sizeof dir, "%s", out ? out : "generated/");
    if (!out)
        strncat(dir, name, sizeof dir - strlen(dir) - 1);
    if (kgf_mkdirs(dir) != 0)
        rc = kgc_error(KGC_USAGE, "generate: %s: cannot create the folder (%s)", dir,
                       strerror(errno));
    int written = 0;
    const char **keep = calloc((size_t)n, sizeof *keep);
    for (int i = 0; rc == KGC_OK && i < n; i++) {
        int w = kgf_write_if_changed(dir, files[i].name, files[i].text, files[i].len);
        if (w < 0)
            rc = kgc_error(KGC_USAGE, "generate: %s/%s: cannot write (%s)", dir, files[i].name,
                           strerror(errno));
        written += w > 0;
        keep[i] = files[i].name;
    }
    if (rc == KGC_OK) {
        int removed = kgf_remove_stale(dir, keep, n);
        printf("%s: %d files, %d written, %d unchanged, %d stale removed\n", dir, n, written,
               n - written, removed);
    }
    free(keep);
    kgg_files_free(files, n);
    free(name);
    return rc;
}

/* Runs diff -u between the committed and the regenerated file; returns 1 if they differ. */
static int show_diff(const char *dir, const char *tmp, const char *name)
{
    char a[4096], b[4096], la[4200], lb[4200];
    snprintf(a, sizeof a, "%s/%s", dir, name);
    snprintf(b, sizeof b, "%s/%s", tmp, name);
    snprintf(la, sizeof la, "a/%s", a);
    snprintf(lb, sizeof lb, "b/%s (regenerated)", a);
    if (access(a, F_OK) != 0) {
        printf("missing: %s (the spec generates it)\n", a);
        return 1;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execlp("diff", "diff", "-u", "--label", la, "--label", lb, a, b, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return !WIFEXITED(status) || WEXITSTATUS(status) != 0;
}

/* Kernel files in dir that the spec no longer generates count as drift. */
static int report_stale(const char *dir, const kgg_file *files, int n)
{
    DIR *d = opendir(dir);
    int stale = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "kg_", 3) != 0 || len < 3 || strcmp(e->d_name + len - 2, ".c"))
            continue;
        int known = 0;
        for (int i = 0; i < n && !known; i++)
            known = strcmp(files[i].name, e->d_name) == 0;
        if (!known) {
            printf("stale: %s/%s (the spec no longer generates it)\n", dir, e->d_name);
            stale = 1;
        }
    }
    if (d)
        closedir(d);
    return stale;
}

/* The folder of path into dir ("." if none); returns the file name part. */
static const char *split_path(const char *path, char *dir, size_t len)
{
    const char *slash = strrchr(path, '/');
    snprintf(dir, len, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    return slash ? slash + 1 : path;
}

/* kgen check --header FILE: the derived kgen/kernels.h against FILE. */
static int check_header(const char *file)
{
    kgg *g = kgg_new();
    char *text = NULL, *tmp = kgf_tempdir();
    if (!g || !tmp) {
        kgg_free(g), free(tmp);
        return kgc_error(KGC_FAIL, "cannot start Lua or create a temporary folder");
    }
    int rc = kgg_header(g, &text);
    if (rc != KG_OK)
        rc = kgc_error(kgc_exit_for(rc), "%s", kgg_error(g));
    kgg_free(g);
    char dir[4096];
    const char *base = split_path(file, dir, sizeof dir);
    int drift = 0;
    if (rc == KGC_OK && kgf_write_if_changed(tmp, base, text, strlen(text)) < 0)
        rc = kgc_error(KGC_FAIL, "%s: cannot write a temporary file", tmp);
    else if (rc == KGC_OK)
        drift = show_diff(dir, tmp, base);
    kgf_remove_dir(tmp);
    free(tmp);
    free(text);
    if (rc != KGC_OK)
        return rc;
    if (drift)
        return kgc_error(KGC_FAIL, "%s differs from the family descriptors (run: kgen header -o "
                         "%s)", file, file);
    printf("%s matches the family descriptors\n", file);
    return KGC_OK;
}

const char kgc_check_help[] =
    "Regenerates SPEC into a temporary folder and compares it with DIR: prints a unified\n"
    "diff and exits 1 if anything differs, is missing or is stale. Writes nothing into DIR.\n"
    "  --header FILE  compare FILE with kgen/kernels.h as the family descriptors make it\n";

int kgc_check(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--header") == 0) {
        if (argc == 3)
            return check_header(argv[2]);
        return argc < 3 ? kgc_error(KGC_USAGE, "check: --header needs a file")
                        : kgc_bad_argument("check", argv[3]);
    }
    const char *arg[2] = { NULL, NULL };
    int rc = positional("check", argc, argv, arg, 2, "SPEC DIR or --header FILE");
    if (rc != KGC_OK)
        return rc;
    const char *spec = arg[0], *dir = arg[1];
    kgg_file *files;
    int n;
    char *name;
    rc = generate_files(spec, &files, &n, &name);
    if (rc != KGC_OK)
        return rc;
    char *tmp = kgf_tempdir();
    if (!tmp)
        return kgc_error(KGC_FAIL, "cannot create a temporary folder");
    int drift = 0;
    for (int i = 0; i < n; i++) {
        if (kgf_write_if_changed(tmp, files[i].name, files[i].text, files[i].len) < 0) {
            rc = kgc_error(KGC_FAIL, "%s: cannot write a temporary file", tmp);
            break;
        }
        drift |= show_diff(dir, tmp, files[i].name);
    }
    drift |= report_stale(dir, files, n);
    kgf_remove_dir(tmp);
    free(tmp);
    kgg_files_free(files, n);
    free(name);
    if (rc != KGC_OK)
        return rc;
    if (drift)
        return kgc_error(KGC_FAIL, "%s differs from %s (run: kgen generate %s -o %s)", dir,
                         spec, spec, dir);
    printf("%s matches %s\n", dir, spec);
    return KGC_OK;
}

const char kgc_list_help[] =
    "Prints each kernel of SPEC (generated in memory) or of the generated folder DIR, from\n"
    "its manifest: cost per call at the nominal sizes, and its per-call sizes (nominal\n"
    "value; batch or seq for the token axes).\n";

int kgc_list(int argc, char **argv)
{
    const char *source = NULL;
    int rc = positional("list", argc, argv, &source, 1, "SPEC or DIR");
    if (rc != KGC_OK)
        return rc;
    kgc_kernels ks;
    rc = kgc_kernels_load(source, 0, &ks);
    if (rc != KGC_OK)
        return rc;
    printf("%-72s %14s %14s %14s  %s\n", "kernel", "MFLOP", "MB read", "MB written",
           "per-call sizes");
    for (int i = 0; i < ks.m->nkernels; i++) {
        const kg_manifest_kernel *k = &ks.m->kernels[i];
        static const char *const axis[] = { "", ":batch", ":seq" };
        char calls[256] = "";
        size_t used = 0;
        for (int c = 0; c < k->ncalls && used < sizeof calls; c++)
            used += (size_t)snprintf(calls + used, sizeof calls - used, "%s%s=%ld%s",
                                     c ? " " : "", k->calls[c].name, k->calls[c].nominal,
                                     axis[k->calls[c].tokens]);
        printf("%-72s %14.3f %14.3f %14.3f  %s\n", k->symbol, k->cost[KG_COST_FLOPS] / 1e6,
               k->cost[KG_COST_READ] / 1e6, k->cost[KG_COST_WRITTEN] / 1e6, calls);
    }
    kgc_kernels_free(&ks);
    return KGC_OK;
}

const char kgc_header_help[] =
    "Writes kgen/kernels.h, the typedef of every kernel family, derived from the family\n"
    "descriptors (generator/lua/family/*.lua), to FILE (only if its content changed,\n"
    "atomically) or to standard output. The regen target writes\n"
    "runtime/include/kgen/kernels.h; kgen check --header FILE compares.\n"
    "  -o FILE  where to write it\n";

int kgc_header(int argc, char **argv)
{
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
            if (kgc_set_once("header", "-o", &out, argv[++i]) != KGC_OK)
                return KGC_USAGE;
        } else if (strcmp(argv[i], "-o") == 0)
            return kgc_error(KGC_USAGE, "header: -o needs a file");
        else
            return kgc_bad_argument("header", argv[i]);
    }
    kgg *g = kgg_new();
    if (!g)
        return kgc_error(KGC_FAIL, "cannot start Lua");
    char *text = NULL, dir[4096];
    int rc = kgg_header(g, &text);
    if (rc != KG_OK)
        rc = kgc_error(kgc_exit_for(rc), "%s", kgg_error(g));
    kgg_free(g);
    if (rc == KGC_OK && !out)
        fputs(text, stdout);
    if (rc == KGC_OK && out) {
        const char *base = split_path(out, dir, sizeof dir);
        int w = kgf_write_if_changed(dir, base, text, strlen(text));
        if (w < 0)
            rc = kgc_error(KGC_USAGE, "header: -o %s: cannot write (%s)", out, strerror(errno));
        else
            printf("%s: %s\n", out, w ? "written" : "unchanged");
    }
    free(text);
    return rc;
}
