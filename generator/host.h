/* host.h: the generator as a C library (kgg_ prefix): a Lua state that carries the generator's
 * Lua modules and templates, and calls into generator/lua/main.lua with plain C data. */
#ifndef KGEN_HOST_H
#define KGEN_HOST_H

#include <stddef.h>

#define KGG_MAX_ARGS 24
#define KGG_MAX_CALLS 4
#define KGG_MAX_RANK 8
#define KGG_MAX_LIST 63 /* elements of a list argument (its masks are unsigned long bits) */

typedef struct kgg kgg;

typedef struct kgg_file { char *name; char *text; size_t len; } kgg_file;

/* One argument of a kernel: shape at nominal sizes (kgg_problem) or as bound (kgg_bind). The
 * CLI's tensor buffers are made from it (kgen run and bench fill it from a manifest). */
typedef struct kgg_arg {
    char name[64], dtype[32], init[32];
    int out, used, scalar, rank;
    int inout;          /* updated in place: an input that is also an output */
    int weight, wt_mx;  /* a packed weight (kg_wt) of dtype's format, stored in wt_layout */
    char wt_layout[24];
    long shape[KGG_MAX_RANK];   /* of one element, for a list */
    /* list > 0: a list argument, an array of `list` pointers (one a layer) to tensors of this
     * shape; the elements outside the mask list_given are NULL, those in list_alt are stored
     * in alt_dtype instead of dtype */
    int list;
    unsigned long list_given, list_alt;
    char alt_dtype[32];
} kgg_arg;

typedef struct kgg_kernel {
    char *name, *family, *problem, *text;
    double flops, read, written;
    int nargs, ncalls;
    kgg_arg args[KGG_MAX_ARGS];
    char calls[KGG_MAX_CALLS][16];
    long nominal[KGG_MAX_CALLS];
} kgg_kernel;

/* Errors: every kgg_ call returns 0 (KG_OK) or a KG_* status and leaves a one-line message
 * in kgg_error(g). */
kgg *kgg_new(void);
void kgg_free(kgg *g);
const char *kgg_error(const kgg *g);
/* Sets kgg_error(g) and returns status (for the generator library's other modules). */
int kgg_fail(kgg *g, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The name a spec file goes by in generated text: "specs/<file>" for a file in a folder named
 * specs, else its file name; never an absolute path, so output does not depend on the cwd. */
void kgg_display_name(const char *path, char *buf, size_t len);

int kgg_generate(kgg *g, const char *spec_path, kgg_file **files, int *nfiles, char **spec_name);
/* The same for a spec given as text (a spec made by a program: model/'s from a config.json);
 * label names it in errors and in the generated preambles. */
int kgg_generate_text(kgg *g, const char *text, size_t len, const char *label, kgg_file **files,
                      int *nfiles, char **spec_name);
void kgg_files_free(kgg_file *files, int n);

/* The kernel of a problem string "family:key=value,...", its text rendered. What a spec's
 * kernels are is read from the manifest.json that kgg_generate writes (kgen/manifest.h). */
int kgg_problem(kgg *g, const char *problem, kgg_kernel *k);
void kgg_kernel_clear(kgg_kernel *k);

/* Matches given input shapes to the kernel of `problem`: fills n[] (per-call sizes) and
 * args[] (every argument's dtype and shape as bound). */
int kgg_bind(kgg *g, const char *problem, int nin, const char *const *names, const int *ranks,
             const long (*shapes)[KGG_MAX_RANK], long *n, int *ncalls, kgg_arg *args,
             int *nargs);

/* The text of runtime/include/kgen/kernels.h, derived from the family descriptors. */
int kgg_header(kgg *g, char **text);

/* main.lua functions taking and returning one string (describe, parse_name, named_keys). */
int kgg_string_call(kgg *g, const char *fn, const char *arg, char **out);

/* Renders a template from text (tests of the template engine): params are name=value pairs,
 * values given as Lua expressions. */
int kgg_render(kgg *g, const char *name, const char *text, const char *params_lua, char **out);

#endif
