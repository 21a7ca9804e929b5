/* cmd_generate.c: kgen generate, check and list: a spec in, files or a listing out. */
#include <dirent.h>
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
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            out = argv[++i];
        else if (strcmp(argv[i], "-o") == 0)
            return kgc_error(KGC_USAGE, "generate: -o needs a folder");
        else if (argv[i][0] != '-' && !spec)
            spec = argv[i];
        else
            return kgc_bad_argument("generate", argv[i]);
    }
    if (!spec)
        return kgc_error(KGC_USAGE, "generate: which spec? (see kgen generate --help)");
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
        rc = kgc_error(KGC_FAIL, "%s: cannot create the folder", dir);
    int written = 0;
    const char **keep = calloc((size_t)n, sizeof *keep);
    for (int i = 0; rc == KGC_OK && i < n; i++) {
        int w = kgf_write_if_changed(dir, files[i].name, files[i].text, files[i].len);
        if (w < 0)
            rc = kgc_error(KGC_FAIL, "%s/%s: cannot write", dir, files[i].name);
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

const char kgc_check_help[] =
    "Regenerates SPEC into a temporary folder and compares it with DIR: prints a unified\n"
    "diff and exits 1 if anything differs, is missing or is stale. Writes nothing into DIR.\n";

int kgc_check(int argc, char **argv)
{
    const char *arg[2] = { NULL, NULL };
    int rc = positional("check", argc, argv, arg, 2, "SPEC DIR");
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
    "Prints each kernel of SPEC with its cost per call at the spec's nominal sizes.\n";

int kgc_list(int argc, char **argv)
{
    const char *spec = NULL;
    int rc = positional("list", argc, argv, &spec, 1, "SPEC");
    if (rc != KGC_OK)
        return rc;
    kgg *g = kgg_new();
    kgg_kernel *ks;
    int n;
    char *name;
    rc = kgg_kernels(g, spec, &ks, &n, &name);
    if (rc != KG_OK) {
        kgc_error(kgc_exit_for(rc), "%s", kgg_error(g));
        kgg_free(g);
        return kgc_exit_for(rc);
    }
    printf("%-72s %14s %14s %14s\n", "kernel", "MFLOP", "MB read", "MB written");
    for (int i = 0; i < n; i++)
        printf("%-72s %14.3f %14.3f %14.3f\n", ks[i].name, ks[i].flops / 1e6, ks[i].read / 1e6,
               ks[i].written / 1e6);
    kgg_kernels_free(ks, n);
    free(name);
    kgg_free(g);
    return KGC_OK;
}
