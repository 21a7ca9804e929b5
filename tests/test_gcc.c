/* test_gcc.c: kg_gcc_compile (kgen/gcc.h): a spec's kernels built by gcc give the same bits as
 * their JIT build on seeded inputs; a broken source fails with KG_ECOMPILE naming file:line;
 * the cache keeps one object per input and no temporary files. */
#define _GNU_SOURCE /* nftw */
#include <criterion/criterion.h>
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host.h"
#include "kernel_args.h"
#include "kgen/gcc.h"
#include "kgen/kgen.h"
#include "kgen/manifest.h"
#include "tensor.h"

/* ---- a private cache folder per test ---------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* An empty cache folder under the build tree, named after the test. */
static kg_gcc_options fresh_cache(const char *name)
{
    static char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", KGEN_TEST_CACHE_DIR, name);
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return (kg_gcc_options){ .cache_dir = dir, .cc = NULL };
}

/* How many entries of dir end in suffix, and how many do not. */
static void count_entries(const char *dir, const char *suffix, int *with, int *without)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    *with = *without = 0;
    cr_assert_not_null(d, "cannot open %s", dir);
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name), sl = strlen(suffix);
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (len > sl && !strcmp(e->d_name + len - sl, suffix))
            ++*with;
        else
            ++*without;
    }
    closedir(d);
}

/* ---- a spec's kernels: gcc against the JIT ------------------------------------------------ */

/* A spec generated in memory: its manifest and each kernel's text and label, in manifest
 * order. */
typedef struct spec_kernels {
    kgg_file *files;
    int nfiles;
    kg_manifest *m;
    kg_kernel_info *info;
    const char **labels, **srcs;
    char (*paths)[512];
} spec_kernels;

static const kgg_file *find_file(const spec_kernels *s, const char *name)
{
    for (int f = 0; f < s->nfiles; f++)
        if (!strcmp(s->files[f].name, name))
            return &s->files[f];
    cr_assert_fail("%s was not generated", name);
    return NULL;
}

static void load_spec(spec_kernels *s, const char *spec)
{
    char path[1024], err[1024], *name;
    snprintf(path, sizeof path, "%s/specs/%s.lua", KGEN_SOURCE_DIR, spec);
    kgg *g = kgg_new();
    cr_assert_eq(kgg_generate(g, path, &s->files, &s->nfiles, &name), KG_OK, "%s",
                 kgg_error(g));
    kgg_free(g);
    free(name);
    const kgg_file *mf = find_file(s, "manifest.json");
    cr_assert_eq(kg_manifest_parse(mf->text, mf->len, path, &s->m, err, sizeof err), KG_OK,
                 "%s", err);
    int n = s->m->nkernels;
    cr_assert_gt(n, 0, "%s has no kernels", path);
    s->info = calloc((size_t)n, sizeof *s->info);
    s->labels = calloc((size_t)n, sizeof *s->labels);
    s->srcs = calloc((size_t)n, sizeof *s->srcs);
    s->paths = calloc((size_t)n, sizeof *s->paths);
    for (int i = 0; i < n; i++) {
        const kg_manifest_kernel *k = &s->m->kernels[i];
        s->info[i] = kg_manifest_info(k);
        snprintf(s->paths[i], sizeof s->paths[i], "generated/%s/%s", s->m->spec, k->file);
        s->labels[i] = s->paths[i];
        s->srcs[i] = find_file(s, k->file)->text;
    }
}

static void free_spec(spec_kernels *s)
{
    free(s->info), free(s->labels), free(s->srcs), free(s->paths);
    kg_manifest_free(s->m);
    kgg_files_free(s->files, s->nfiles);
}

/* Bytes of argument a's buffer, and how many of them are not zero. */
static size_t arg_bytes(const kgg_arg *a)
{
    return (size_t)kgbuf_count(a) * (size_t)kgbuf_dtype_bytes(a->dtype);
}

static size_t nonzero(const unsigned char *p, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += p[i] != 0;
    return c;
}

/* Runs kernel d compiled both ways on the same seeded arguments at its nominal sizes; asserts
 * both succeed, write something, and agree byte for byte on every output. */
static void compare_kernel(const kg_manifest_kernel *d, const kg_kernel *jit,
                           const kg_kernel *gcc)
{
    void *tj[KG_MANIFEST_MAX_ARGS], *tg[KG_MANIFEST_MAX_ARGS];
    long sizes[KG_MANIFEST_MAX_CALLS];
    char err[512];
    size_t compared = 0, written = 0;
    cr_assert_eq(kgargs_call_sizes(d, 0, sizes), 0);
    cr_assert_eq(kgargs_new(d, tj, err, sizeof err), 0, "%s", err);
    cr_assert_eq(kgargs_new(d, tg, err, sizeof err), 0, "%s", err);
    cr_assert_eq(jit->call(tj, sizes), KG_OK, "%s (JIT) refused its nominal call", d->symbol);
    cr_assert_eq(gcc->call(tg, sizes), KG_OK, "%s (gcc) refused its nominal call", d->symbol);
    for (int i = 0; i < d->nargs; i++) {
        kgg_arg a;
        kgargs_arg_at(d, i, sizes, &a);
        if (!a.used || (!a.out && !a.inout))
            continue;
        /* a list argument: each element given (kgbuf_elem), a plain one: itself */
        for (int l = 0; l < (a.list ? a.list : 1); l++) {
            kgg_arg e;
            if (!kgbuf_elem(&a, l, &e))
                continue;
            size_t n = arg_bytes(&e);
            const unsigned char *x = a.list ? ((void **)tj[i])[l] : tj[i];
            const unsigned char *y = a.list ? ((void **)tg[i])[l] : tg[i];
            size_t at = 0;
            while (at < n && x[at] == y[at])
                at++;
            cr_assert_eq(at, n, "%s: output %s differs at byte %zu of %zu: JIT 0x%02x, gcc "
                         "0x%02x", d->symbol, e.name, at, n, at < n ? x[at] : 0,
                         at < n ? y[at] : 0);
            compared += n;
            written += nonzero(y, n);
        }
    }
    cr_assert_gt(compared, 0, "%s has no output to compare", d->symbol);
    cr_assert_gt(written, 0, "%s wrote only zeros", d->symbol);
    kgargs_free(d, tj);
    kgargs_free(d, tg);
}

Test(gcc, spec_kernels_match_the_jit_bit_for_bit)
{
    spec_kernels s;
    kg_gcc_options opt = fresh_cache("tiny");
    load_spec(&s, "tiny");
    int n = s.m->nkernels;
    kg_registry *jit = kg_registry_new(), *gcc = kg_registry_new();
    double *seconds = calloc((size_t)n + 1, sizeof *seconds);
    cr_assert_eq(kg_jit_compile(jit, n, s.info, s.labels, s.srcs, NULL), KG_OK, "%s",
                 kg_registry_error(jit));
    cr_assert_eq(kg_gcc_compile_with(gcc, &opt, n, s.info, s.labels, s.srcs, seconds), KG_OK,
                 "%s", kg_registry_error(gcc));
    cr_assert_gt(seconds[n], 0.0, "no build time reported");
    cr_assert_eq(kg_registry_count(gcc), n);
    int kernels = 0;
    for (int i = 0; i < n; i++) {
        const kg_manifest_kernel *d = &s.m->kernels[i];
        const kg_kernel *kj = kg_registry_find(jit, d->symbol);
        const kg_kernel *kg = kg_registry_find(gcc, d->symbol);
        cr_assert(kj && kg, "%s missing from a registry", d->symbol);
        cr_assert_neq((void *)kj->call, (void *)kg->call, "one build registered twice");
        compare_kernel(d, kj, kg);
        kernels++;
    }
    cr_assert_eq(kernels, n);
    cr_assert_gt(kernels, 0);
    kg_registry_free(jit);
    kg_registry_free(gcc);
    free(seconds);
    free_spec(&s);
}

/* ---- the cache --------------------------------------------------------------------------- */

static const char good_src[] =
    "int kg_answer(void *const *t, const long *n) { (void)t; (void)n; return 0; }\n"
    "int kg_answer__v(void *const *t, const long *n) { return kg_answer(t, n); }\n";

Test(gcc, second_compile_loads_the_cached_object)
{
    kg_gcc_options opt = fresh_cache("cached");
    kg_kernel_info info = { "test", "kg_answer", "test:x=1", 0, 0, 0 };
    const char *label = "generated/test/kg_answer.c", *src = good_src;
    for (int round = 0; round < 2; round++) {
        kg_registry *reg = kg_registry_new();
        cr_assert_eq(kg_gcc_compile_with(reg, &opt, 1, &info, &label, &src, NULL), KG_OK, "%s",
                     kg_registry_error(reg));
        const kg_kernel *k = kg_registry_find(reg, "kg_answer");
        cr_assert_not_null(k);
        cr_assert_eq(k->call(NULL, NULL), 0);
        kg_registry_free(reg);
        int so, other;
        count_entries(opt.cache_dir, ".so", &so, &other);
        cr_assert_eq(so, 1, "round %d: %d objects in the cache, expected 1", round, so);
        cr_assert_eq(other, 0, "round %d: %d leftover entries in the cache", round, other);
    }
}

/* ---- errors ------------------------------------------------------------------------------ */

Test(gcc, broken_source_names_file_and_line)
{
    kg_gcc_options opt = fresh_cache("broken");
    kg_kernel_info info[2] = { { "test", "kg_answer", "test:x=1", 0, 0, 0 },
                               { "test", "kg_broken", "test:x=2", 0, 0, 0 } };
    const char *labels[2] = { "generated/test/kg_answer.c", "generated/test/kg_broken.c" };
    const char *srcs[2] = { good_src, "int kg_broken(void)\n{\n    return 1\n}\n" };
    kg_registry *reg = kg_registry_new();
    cr_assert_eq(kg_gcc_compile_with(reg, &opt, 2, info, labels, srcs, NULL), KG_ECOMPILE);
    const char *msg = kg_registry_error(reg);
    cr_assert(strstr(msg, "generated/test/kg_broken.c:3:") || strstr(msg,
              "generated/test/kg_broken.c:4:"), "message does not name the line: %s", msg);
    cr_assert_not_null(strstr(msg, "error"), "%s", msg);
    cr_assert_null(strchr(msg, '\n'), "more than one line: %s", msg);
    cr_assert_eq(kg_registry_count(reg), 0, "a failed build registered kernels");
    int so, other;
    count_entries(opt.cache_dir, ".so", &so, &other);
    cr_assert_eq(so + other, 0, "a failed build left %d entries in the cache", so + other);
    kg_registry_free(reg);
}

Test(gcc, missing_compiler_is_a_compile_error)
{
    kg_gcc_options opt = fresh_cache("nocc");
    opt.cc = "/nonexistent/gcc";
    kg_kernel_info info = { "test", "kg_answer", "test:x=1", 0, 0, 0 };
    const char *label = "generated/test/kg_answer.c", *src = good_src;
    kg_registry *reg = kg_registry_new();
    cr_assert_eq(kg_gcc_compile_with(reg, &opt, 1, &info, &label, &src, NULL), KG_ECOMPILE);
    cr_assert_not_null(strstr(kg_registry_error(reg), "/nonexistent/gcc"), "%s",
                       kg_registry_error(reg));
    kg_registry_free(reg);
}
