/* gcc.c: generated C to callable kernels through gcc: the sources of one call become one shared
 * object in a cache folder (built once per hash of its input), which is loaded with dlopen and
 * registered. The counterpart of jit.c for code that must run at gcc speed. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kgen/gcc.h"
#include "registry.h"

extern char **environ;

/* The AOT library's code generation flags (CMake gives it -std=gnu11 -O2 -ffp-contract=off),
 * and what a loadable object needs. (-lm, after the sources, makes libm a dependency of the
 * object itself.) */
static const char *const flags[] = { "-std=gnu11", "-O2", "-ffp-contract=off", "-fPIC",
                                     "-shared" };
enum { NFLAGS = sizeof flags / sizeof flags[0], OUT_LEN = 65536 };
/* Path buffers: the cache folder, <hash>.so in it, the private folder beside the .so, and a
 * file in that folder. */
enum { DIR_LEN = 4096, SO_LEN = DIR_LEN + 32, TMP_LEN = SO_LEN + 16, FILE_LEN = TMP_LEN + 32 };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* FNV-1a, 64 bits, over len bytes: a stable cache key (not a defence against collisions made
 * on purpose). */
static uint64_t fnv1a(uint64_t h, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t fnv1a_str(uint64_t h, const char *s)
{
    return fnv1a(h, s, strlen(s) + 1);   /* the terminator separates fields */
}

/* ---- the cache folder ---------------------------------------------------------------------- */

static int mkdirs(const char *dir)
{
    char buf[DIR_LEN];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

/* opt's folder, else $KGEN_CACHE_DIR, $XDG_CACHE_HOME/kgen, $HOME/.cache/kgen; created. */
static int cache_dir(kg_registry *reg, const kg_gcc_options *opt, char *buf, size_t len)
{
    const char *env;
    if (opt && opt->cache_dir)
        snprintf(buf, len, "%s", opt->cache_dir);
    else if ((env = getenv("KGEN_CACHE_DIR")) && *env)
        snprintf(buf, len, "%s", env);
    else if ((env = getenv("XDG_CACHE_HOME")) && *env)
        snprintf(buf, len, "%s/kgen", env);
    else if ((env = getenv("HOME")) && *env)
        snprintf(buf, len, "%s/.cache/kgen", env);
    else
        return kgr_fail(reg, KG_EIO, "gcc: no cache folder (set KGEN_CACHE_DIR or HOME)");
    if (mkdirs(buf) != 0)
        return kgr_fail(reg, KG_EIO, "%s: cannot create the cache folder: %s", buf,
                        strerror(errno));
    return KG_OK;
}

/* ---- running the compiler ----------------------------------------------------------------- */

/* Runs argv with stdout and stderr captured into out (NUL-terminated, cut at len - 1);
 * returns the exit status, 127 if it could not be started, 128 if it died of a signal. */
static int run_captured(char *const *argv, char *out, size_t len)
{
    int fd[2];
    if (pipe(fd) != 0)
        return 127;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addclose(&fa, fd[0]);
    posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fd[1], 2);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd[1]);
    size_t used = 0;
    ssize_t got;
    char sink[4096];
    while (used + 1 < len && (got = read(fd[0], out + used, len - 1 - used)) > 0)
        used += (size_t)got;
    while (read(fd[0], sink, sizeof sink) > 0)
        ;  /* drain the rest, so the compiler never blocks on a full pipe */
    out[used] = '\0';
    close(fd[0]);
    int status;
    if (rc != 0 || waitpid(pid, &status, 0) != pid)
        return 127;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* The line of the compiler's output that says what went wrong: the first "file:line:col:
 * error: ...", else the first line that mentions an error, else the first line. */
static void first_error(char *out, char *msg, size_t len)
{
    char *line = strstr(out, ": error:");
    if (!line)
        line = strstr(out, "error");
    if (line)
        while (line > out && line[-1] != '\n')
            line--;
    else
        line = out;
    line[strcspn(line, "\n")] = '\0';
    snprintf(msg, len, "%s", *line ? line : "(no output)");
}

/* The first line of `cc --version`, which names the compiler's build: part of the cache key,
 * so an upgraded compiler never reuses an old object. */
static int cc_version(kg_registry *reg, const char *cc, char *buf, size_t len)
{
    char *argv[] = { (char *)cc, "--version", NULL };
    int status = run_captured(argv, buf, len);
    if (status != 0)
        return kgr_fail(reg, KG_ECOMPILE, "cannot run %s (%s)", cc,
                        status == 127 ? "not found" : "--version failed");
    buf[strcspn(buf, "\n")] = '\0';
    return KG_OK;
}

/* ---- building ------------------------------------------------------------------------------ */

/* Writes kg_abi_text, a #line naming label and src to path (the JIT's prelude, jit.c). */
static int write_source(const char *path, const char *label, const char *src)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fprintf(f, "%s\n#line 1 \"%s\"\n%s", kg_abi_text, label, src) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static void source_path(char *buf, size_t len, const char *dir, int i)
{
    snprintf(buf, len, "%s/k%d.c", dir, i);
}

/* Removes the private source folder and the n sources in it. */
static void remove_sources(const char *dir, int n)
{
    char path[FILE_LEN];
    for (int i = 0; i < n; i++) {
        source_path(path, sizeof path, dir, i);
        unlink(path);
    }
    rmdir(dir);
}

/* Runs cc on the n sources in dir into so: built under a private name, then renamed, so
 * another process never loads a half-written object. */
static int run_cc(kg_registry *reg, const char *cc, const char *dir, int n, const char *so)
{
    char tmp[FILE_LEN], msg[1024];
    char **argv = calloc((size_t)n + NFLAGS + 8, sizeof *argv);
    char (*paths)[FILE_LEN] = calloc((size_t)n + 1, sizeof *paths);
    char *out = malloc(OUT_LEN);
    int rc = KG_ENOMEM, argc = 0, status = 127;
    snprintf(tmp, sizeof tmp, "%s/out.so", dir);
    if (argv && paths && out) {
        argv[argc++] = (char *)cc;
        for (int i = 0; i < NFLAGS; i++)
            argv[argc++] = (char *)flags[i];
        argv[argc++] = "-o";
        argv[argc++] = tmp;
        for (int i = 0; i < n; i++)
            source_path(paths[i], sizeof paths[i], dir, i), argv[argc++] = paths[i];
        argv[argc++] = "-lm";
        status = run_captured(argv, out, OUT_LEN);
        rc = status == 0 && rename(tmp, so) == 0 ? KG_OK : KG_ECOMPILE;
    }
    if (rc == KG_ENOMEM)
        kgr_fail(reg, rc, "out of memory");
    else if (rc != KG_OK && status == 0)
        kgr_fail(reg, rc, "%s: cannot rename into the cache: %s", so, strerror(errno));
    else if (rc != KG_OK && (status == 127 || status == 128))
        kgr_fail(reg, rc, "cannot run %s%s", cc, status == 128 ? " (killed)" : "");
    else if (rc != KG_OK)
        first_error(out, msg, sizeof msg), kgr_fail(reg, rc, "%s", msg);
    unlink(tmp);
    free(argv), free(paths), free(out);
    return rc;
}

/* Writes the sources into a fresh private folder beside so and builds so from them. */
static int build(kg_registry *reg, const char *cc, const char *so, int n,
                 const char *const *labels, const char *const *sources)
{
    char dir[TMP_LEN], path[FILE_LEN];
    snprintf(dir, sizeof dir, "%s.XXXXXX", so); /* mkdtemp fills in the Xs */
    if (!mkdtemp(dir))
        return kgr_fail(reg, KG_EIO, "%s: cannot create a folder: %s", dir, strerror(errno));
    int rc = KG_OK, written = 0;
    for (; written < n && rc == KG_OK; written++) {
        source_path(path, sizeof path, dir, written);
        if (write_source(path, labels[written], sources[written]) != 0)
            rc = kgr_fail(reg, KG_EIO, "%s: cannot write", path);
    }
    if (rc == KG_OK)
        rc = run_cc(reg, cc, dir, n, so);
    remove_sources(dir, written);
    return rc;
}

/* ---- loading ------------------------------------------------------------------------------- */

static void release_object(void *handle)
{
    dlclose(handle);
}

static void *lookup(void *so, const char *name)
{
    return dlsym(so, name);
}

/* dlopen of the object; the primitives it calls must come from the loading executable. */
static int load(kg_registry *reg, const char *so, int n, const kg_kernel_info *info,
                const char *const *labels)
{
    if (!dlsym(RTLD_DEFAULT, "kgp_scratch") || !dlsym(RTLD_DEFAULT, "kgp_parallel_for"))
        return kgr_fail(reg, KG_ECOMPILE, "gcc-built kernels bind the runtime's primitives "
                        "from the executable: link it with -rdynamic (ENABLE_EXPORTS)");
    void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return kgr_fail(reg, KG_ECOMPILE, "%s", dlerror());
    int owned;
    int rc = kgr_add_unit(reg, h, lookup, release_object, n, info, labels, &owned);
    if (!owned)
        dlclose(h);
    return rc;
}

/* ---- the entry points ---------------------------------------------------------------------- */

/* <dir>/<hash>.so: the hash covers the compiler and its version, the flags, and every label
 * and source (each file also carries kg_abi_text, so a changed abi.h makes a new key). */
static int object_path(kg_registry *reg, const char *cc, const char *dir, int n,
                       const char *const *labels, const char *const *sources, char *so,
                       size_t len)
{
    char version[512];
    int rc = cc_version(reg, cc, version, sizeof version);
    if (rc != KG_OK)
        return rc;
    uint64_t h = fnv1a_str(fnv1a_str(0xcbf29ce484222325ull, cc), version);
    for (int i = 0; i < NFLAGS; i++)
        h = fnv1a_str(h, flags[i]);
    h = fnv1a_str(h, kg_abi_text);
    for (int i = 0; i < n; i++)
        h = fnv1a_str(fnv1a_str(h, labels[i]), sources[i]);
    snprintf(so, len, "%s/%016llx.so", dir, (unsigned long long)h);
    return KG_OK;
}

int kg_gcc_compile_with(kg_registry *reg, const kg_gcc_options *opt, int n,
                        const kg_kernel_info *info, const char *const *labels,
                        const char *const *sources, double *seconds)
{
    const char *cc = opt && opt->cc ? opt->cc : getenv("KGEN_CC");
    char dir[DIR_LEN], so[SO_LEN];
    double t0 = now();
    if (!cc || !*cc)
        cc = "gcc";
    for (int i = 0; seconds && i <= n; i++)
        seconds[i] = 0;
    if (n <= 0)
        return KG_OK;
    int rc = cache_dir(reg, opt, dir, sizeof dir);
    if (rc == KG_OK)
        rc = object_path(reg, cc, dir, n, labels, sources, so, sizeof so);
    if (rc == KG_OK && access(so, F_OK) != 0)
        rc = build(reg, cc, so, n, labels, sources);
    if (rc == KG_OK)
        rc = load(reg, so, n, info, labels);
    if (seconds)
        seconds[n] = now() - t0;
    return rc;
}

int kg_gcc_compile(kg_registry *reg, int n, const kg_kernel_info *info,
                   const char *const *labels, const char *const *sources, double *seconds)
{
    return kg_gcc_compile_with(reg, NULL, n, info, labels, sources, seconds);
}
