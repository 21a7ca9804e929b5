/* cmd_exec.c: kgen exec: run one kernel (of a spec, or named by a problem string) on .npy
 * inputs, JIT-compiled with libtcc or AOT-compiled with gcc into a cached shared object, and
 * write its outputs as .npy files; kgen exec --describe prints a family's keys and tensors. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "fsutil.h"
#include "host.h"
#include "kernel_args.h"
#include "kgen/kgen.h"
#include "kgen/npy.h"
#include "tensor.h"

extern char **environ;

static const char help[] =
    "usage: kgen exec KERNEL --in NAME=FILE.npy ... --out DIR [--jit|--aot] [--raw]\n"
    "       kgen exec --describe FAMILY\n"
    "\n"
    "Runs one kernel on .npy inputs and writes each output to DIR/<name>.npy.\n"
    "KERNEL is SPEC.lua:NAME (a kernel of a spec) or a problem string family:key=value,...\n"
    "\n"
    "  --in NAME=FILE  an input tensor; float32 files are rounded (RNE) to the input's dtype,\n"
    "                  uint16 files are bf16/fp16 bit patterns, uint8 files fp8 codes\n"
    "  --out DIR       where outputs go (created if missing)\n"
    "  --jit           compile with libtcc (default)\n"
    "  --aot           compile with gcc -O2 into a shared object cached in $KGEN_CACHE_DIR\n"
    "                  (default $XDG_CACHE_HOME/kgen or ~/.cache/kgen)\n"
    "  --raw           write outputs as bit patterns (uint16 bf16/fp16, uint8 fp8 and rows\n"
    "                  with packed scales) instead of decoded float32\n"
    "  --describe FAMILY  the family's keys, defaults, inputs and outputs\n"
    "\n"
    "A *_rowscaled output [..., H+4] (H fp8 codes, then an fp32 scale) is written as NAME.npy\n"
    "float32 [..., H] and NAME_scale.npy float32 [...] (with --raw: NAME.npy uint8 [..., H+4]).\n";

/* ---- options ------------------------------------------------------------------------------ */

typedef struct opts {
    const char *kernel, *out, *describe;
    int nin, aot, raw, help;
    char in_name[KGG_MAX_ARGS][64];
    const char *in_file[KGG_MAX_ARGS];
} opts;

/* Splits "NAME=FILE" into the next input slot; rejects duplicates and malformed values. */
static int add_input(opts *o, const char *spec)
{
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || !eq[1])
        return kgc_error(KGC_USAGE, "exec: --in '%s': expected NAME=FILE.npy", spec);
    size_t len = (size_t)(eq - spec);
    if (len >= sizeof o->in_name[0])
        return kgc_error(KGC_USAGE, "exec: --in '%s': input name too long", spec);
    if (o->nin == KGG_MAX_ARGS)
        return kgc_error(KGC_USAGE, "exec: more than %d inputs", KGG_MAX_ARGS);
    char *name = o->in_name[o->nin];
    memcpy(name, spec, len);
    name[len] = '\0';
    for (int i = 0; i < o->nin; i++)
        if (strcmp(o->in_name[i], name) == 0)
            return kgc_error(KGC_USAGE, "exec: input '%s' given twice", name);
    o->in_file[o->nin++] = eq + 1;
    return KGC_OK;
}

/* Reads the command line into o; one "kgen: exec: ..." line and KGC_USAGE if it is wrong. */
static int parse_args(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        int rc = KGC_OK;
        if (!has_value && (!strcmp(a, "--in") || !strcmp(a, "--out") || !strcmp(a, "--describe")))
            return kgc_error(KGC_USAGE, "exec: %s needs a value", a);
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            o->help = 1;
        else if (!strcmp(a, "--jit") || !strcmp(a, "--aot"))
            o->aot = a[2] == 'a';
        else if (!strcmp(a, "--raw"))
            o->raw = 1;
        else if (!strcmp(a, "--in") && has_value)
            rc = add_input(o, argv[++i]);
        else if (!strcmp(a, "--out") && has_value)
            o->out = argv[++i];
        else if (!strcmp(a, "--describe") && has_value)
            o->describe = argv[++i];
        else if (a[0] != '-' && !o->kernel)
            o->kernel = a;
        else
            return kgc_error(KGC_USAGE, "exec: unexpected argument '%s'", a);
        if (rc != KGC_OK)
            return rc;
    }
    if (o->help || o->describe)
        return o->describe && (o->kernel || o->nin || o->out)
            ? kgc_error(KGC_USAGE, "exec: --describe takes no kernel, --in or --out")
            : KGC_OK;
    if (!o->kernel)
        return kgc_error(KGC_USAGE, "exec: which kernel? (see kgen exec --help)");
    if (!o->out)
        return kgc_error(KGC_USAGE, "exec: --out DIR is required");
    return KGC_OK;
}

/* ---- the job ------------------------------------------------------------------------------ */

/* Everything one exec holds; job_free releases whatever part of it was made. */
typedef struct job {
    kgg *g;
    kgg_kernel k;
    char label[1024];
    kgg_arg args[KGG_MAX_ARGS];
    int nargs, ncalls;
    long n[KGG_MAX_CALLS];
    void *t[KGG_MAX_ARGS];
    kg_registry *reg;
    void *so;
    const kg_kernel *kern;
    double compile_s, run_s;
} job;

static void job_free(job *j)
{
    for (int i = 0; i < KGG_MAX_ARGS; i++)
        if (j->t[i])
            kgc_free(i < j->nargs ? &j->args[i] : NULL, j->t[i]);
    kg_registry_free(j->reg);
    if (j->so)
        dlclose(j->so);
    kgg_kernel_clear(&j->k);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* "name1, name2, ..." of a spec's kernels, for the message when NAME is not among them. */
static void kernel_names(const kg_manifest *m, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < m->nkernels && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
                                 m->kernels[i].symbol);
}

/* The kernel view exec works on, from kernel i of ks (its manifest entry at nominal sizes and
 * its text, moved out of ks). */
static int from_manifest(job *j, kgc_kernels *ks, int i)
{
    const kg_manifest_kernel *d = &ks->m->kernels[i];
    long nominal[KG_MANIFEST_MAX_CALLS];
    kg_manifest_sizes(d, 0, nominal);
    j->k.name = strdup(d->symbol);
    j->k.family = strdup(d->family);
    j->k.problem = strdup(d->problem);
    j->k.text = ks->text[i];
    ks->text[i] = NULL;
    j->k.flops = d->cost[KG_COST_FLOPS];
    j->k.read = d->cost[KG_COST_READ];
    j->k.written = d->cost[KG_COST_WRITTEN];
    j->k.nargs = d->nargs;
    j->k.ncalls = d->ncalls;
    for (int a = 0; a < d->nargs; a++)
        kgc_arg_at(d, a, nominal, &j->k.args[a]);
    for (int c = 0; c < d->ncalls; c++) {
        snprintf(j->k.calls[c], sizeof j->k.calls[c], "%s", d->calls[c].name);
        j->k.nominal[c] = nominal[c];
    }
    snprintf(j->label, sizeof j->label, "%s", ks->label[i]);
    if (!j->k.name || !j->k.family || !j->k.problem)
        return kgc_error(KGC_FAIL, "exec: out of memory");
    return KGC_OK;
}

/* SPEC.lua:NAME: generates the spec and keeps the one kernel named NAME, as its manifest
 * describes it. */
static int load_spec_kernel(job *j, const char *spec, const char *name)
{
    kgc_kernels ks;
    int rc = kgc_kernels_load(spec, 1, &ks);
    if (rc != KGC_OK)
        return rc;
    const kg_manifest_kernel *d = kg_manifest_find(ks.m, name);
    if (d) {
        rc = from_manifest(j, &ks, (int)(d - ks.m->kernels));
    } else {
        char names[4096];
        kernel_names(ks.m, names, sizeof names);
        rc = kgc_error(KGC_USAGE, "%s: no kernel '%s' (kernels: %s)", spec, name, names);
    }
    kgc_kernels_free(&ks);
    return rc;
}

/* KERNEL is SPEC.lua:NAME when it has ".lua:" in it, else a problem string. */
static int load_kernel(job *j, const char *kernel)
{
    const char *sep = strstr(kernel, ".lua:");
    if (sep) {
        char spec[4096];
        snprintf(spec, sizeof spec, "%.*s", (int)(sep + 4 - kernel), kernel);
        return load_spec_kernel(j, spec, sep + 5);
    }
    int rc = kgg_problem(j->g, kernel, &j->k);
    if (rc != KG_OK)
        return kgc_error(kgc_exit_for(rc), "%s", kgg_error(j->g));
    snprintf(j->label, sizeof j->label, "%s.c", j->k.name);
    return KGC_OK;
}

/* ---- inputs ------------------------------------------------------------------------------- */

/* The numpy name of a dtype as kg_npy_read reports it (uint16 files come back as KG_BF16). */
static const char *npy_type(kg_dtype t)
{
    switch (t) {
    case KG_F32: return "float32";
    case KG_F16: return "float16";
    case KG_BF16: return "uint16";
    case KG_U8: return "uint8";
    case KG_I32: return "int32";
    case KG_I64: return "int64";
    default: return "unknown";
    }
}

/* A kernel dtype name without its "_rowscaled" suffix, as a kg_dtype (-1 if unknown). */
static int base_dtype(const char *dtype, int *rowscaled)
{
    char base[32];
    snprintf(base, sizeof base, "%s", dtype);
    char *suffix = strstr(base, "_rowscaled");
    if (rowscaled)
        *rowscaled = suffix != NULL;
    if (suffix)
        *suffix = '\0';
    return kg_dtype_from_name(base);
}

static int is_float(int t)
{
    return t == KG_F32 || t == KG_BF16 || t == KG_F16 || t == KG_E4M3 || t == KG_E4M3FN
        || t == KG_E5M2;
}

static int is_byte_code(int t)
{
    return t == KG_E4M3 || t == KG_E4M3FN || t == KG_E5M2 || t == KG_E2M1 || t == KG_E8M0
        || t == KG_U8;
}

/* Copies (bit patterns, integers) or rounds (float values) the file's n elements into buf,
 * laid out as the argument's dtype. Returns -1 if the file's dtype cannot carry it. */
static int convert_input(const kg_npy *x, const kgg_arg *a, void *buf)
{
    int rowscaled, t = base_dtype(a->dtype, &rowscaled);
    long n = kg_npy_count(x);
    size_t bytes = (size_t)n * (size_t)kgc_dtype_bytes(a->dtype);
    if (x->dtype == KG_U8 && (rowscaled || is_byte_code(t)))
        return memcpy(buf, x->data, bytes), 0;
    if (rowscaled)
        return -1;
    int same = (int)x->dtype == t && (t == KG_F16 || t == KG_I32 || t == KG_I64);
    if (same || (x->dtype == KG_BF16 && (t == KG_BF16 || t == KG_F16)))
        return memcpy(buf, x->data, bytes), 0;
    if (x->dtype == KG_F32 && is_float(t))
        return kgc_from_f32(a->dtype, x->data, buf, n);
    if (x->dtype == KG_F16 && is_float(t)) {
        float *f = malloc((size_t)(n > 0 ? n : 1) * sizeof *f);
        int rc = f ? kgc_to_f32("fp16", x->data, f, n) : -1;
        rc = rc == 0 ? kgc_from_f32(a->dtype, f, buf, n) : rc;
        free(f);
        return rc;
    }
    return -1;
}

/* Makes the kernel's view of input a from file x: a buffer of a's dtype holding every element
 * of x (a scalar argument reads element 0 of whatever shape it was given). */
static int make_input(job *j, int i, const kg_npy *x, const char *file)
{
    const kgg_arg *a = &j->args[i];
    long n = kg_npy_count(x), want = kgc_count(a);
    if (!a->scalar && n != want)
        return kgc_error(KGC_USAGE, "input '%s' (%s): %ld elements, the kernel expects %ld",
                         a->name, file, n, want);
    size_t size = (size_t)(n > want ? n : want) * (size_t)kgc_dtype_bytes(a->dtype);
    if (!(j->t[i] = calloc(size ? size : 1, 1)))
        return kgc_error(KGC_FAIL, "input '%s': out of memory", a->name);
    if (convert_input(x, a, j->t[i]) != 0)
        return kgc_error(KGC_USAGE, "input '%s' (%s): a .npy of %s cannot hold %s values",
                         a->name, file, npy_type(x->dtype), a->dtype);
    return KGC_OK;
}

/* A weight from its file (and, for MX, the file of NAME_scale): layout kn takes [K, N] values
 * (float files are rounded to the format) or codes; other layouts take the stored codes as
 * bytes (uint8, x4 words little-endian), since numpy has no fp8/fp4 dtypes. */
static int make_weight(job *j, int i, const kg_npy *x, const char *file, const kg_npy *sc)
{
    const kgg_arg *a = &j->args[i];
    long n = kgc_count(a);
    int fp4 = strcmp(a->dtype, "e2m1") == 0;
    size_t bytes = fp4 ? (size_t)(n + 1) / 2 : (size_t)n * (size_t)kgc_dtype_bytes(a->dtype);
    unsigned char *codes = calloc(bytes ? bytes : 1, 1);
    char err[256];
    int rc = KGC_OK;
    if (!(j->t[i] = kgc_alloc(a)) || !codes)
        rc = kgc_error(KGC_FAIL, "weight '%s': out of memory", a->name);
    else if (x->dtype == KG_U8 && (size_t)kg_npy_count(x) == bytes)
        memcpy(codes, x->data, bytes);
    else if (strcmp(a->wt_layout, "kn") != 0 || kg_npy_count(x) != n)
        rc = kgc_error(KGC_USAGE, "weight '%s' (%s): layout %s wants %zu bytes of %s codes as "
                       "uint8%s", a->name, file, a->wt_layout, bytes, a->dtype,
                       strcmp(a->wt_layout, "kn") == 0 ? ", or [K, N] values" : "");
    else if (fp4 && x->dtype == KG_F32)
        for (long e = 0; e < n; e++)
            codes[e / 2] |= (unsigned char)(kg_f32_to_e2m1(((const float *)x->data)[e])
                                            << (e % 2 * 4));
    else {
        kgg_arg codes_arg = *a;
        codes_arg.weight = 0;
        if (fp4 || convert_input(x, &codes_arg, codes) != 0)
            rc = kgc_error(KGC_USAGE, "weight '%s' (%s): a .npy of %s cannot hold %s values",
                           a->name, file, npy_type(x->dtype), a->dtype);
    }
    if (rc == KGC_OK && a->wt_mx && !sc)
        rc = kgc_error(KGC_USAGE, "weight '%s' is MX: give its E8M0 scales as --in %s_scale=FILE",
                       a->name, a->name);
    if (rc == KGC_OK && sc && sc->dtype != KG_U8)
        rc = kgc_error(KGC_USAGE, "%s_scale: E8M0 scales are uint8, not %s", a->name,
                       npy_type(sc->dtype));
    if (rc == KGC_OK && kgc_pack(a, j->t[i], codes, sc ? sc->data : NULL, err, sizeof err) != 0)
        rc = kgc_error(KGC_USAGE, "weight '%s': %s", a->name, err);
    free(codes);
    return rc;
}

/* The index of the --in named name, or o->nin. */
static int input_index(const opts *o, const char *name)
{
    int k = 0;
    while (k < o->nin && strcmp(o->in_name[k], name) != 0)
        k++;
    return k;
}

/* The kernel's weight argument whose MX scales an input of this name would be, or NULL. */
static const kgg_arg *scale_of(const job *j, const char *name)
{
    for (int i = 0; i < j->k.nargs; i++) {
        const kgg_arg *a = &j->k.args[i];
        size_t l = strlen(a->name);
        if (a->weight && a->wt_mx && strncmp(name, a->name, l) == 0 && !strcmp(name + l, "_scale"))
            return a;
    }
    return NULL;
}

/* Reads every --in file; a file that cannot be read is named with its input. */
static int read_inputs(const opts *o, kg_npy *in)
{
    for (int i = 0; i < o->nin; i++) {
        char err[512];
        int rc = kg_npy_read(o->in_file[i], &in[i], err, sizeof err);
        if (rc != KG_OK)
            return kgc_error(kgc_exit_for(rc), "input '%s': %s", o->in_name[i], err);
    }
    return KGC_OK;
}

/* Binds the inputs' shapes to the kernel (per-call sizes, every argument's shape), then
 * fills the tensor list: converted inputs, zeroed outputs, NULL for unused arguments. */
static int bind_inputs(job *j, const opts *o, const kg_npy *in)
{
    const char *names[KGG_MAX_ARGS];
    int ranks[KGG_MAX_ARGS], nb = 0;
    long shapes[KGG_MAX_ARGS][KGG_MAX_RANK];
    for (int i = 0; i < o->nin; i++) {
        if (scale_of(j, o->in_name[i]))
            continue; /* an MX weight's scales travel with the weight */
        names[nb] = o->in_name[i];
        ranks[nb] = in[i].rank;
        memcpy(shapes[nb], in[i].shape, sizeof shapes[nb]);
        /* a weight's dims are the kernel's constants; its file is checked when packed */
        for (int a = 0; a < j->k.nargs; a++)
            if (j->k.args[a].weight && !strcmp(j->k.args[a].name, o->in_name[i])) {
                ranks[nb] = j->k.args[a].rank;
                memcpy(shapes[nb], j->k.args[a].shape, sizeof shapes[nb]);
            }
        nb++;
    }
    const long (*cshapes)[KGG_MAX_RANK] = (const long (*)[KGG_MAX_RANK])shapes;
    int rc = kgg_bind(j->g, j->k.problem, nb, names, ranks, cshapes, j->n, &j->ncalls,
                      j->args, &j->nargs);
    if (rc != KG_OK)
        return kgc_error(kgc_exit_for(rc), "%s", kgg_error(j->g));
    if (j->nargs > KGG_MAX_ARGS || j->ncalls > KGG_MAX_CALLS)
        return kgc_error(KGC_FAIL, "%s: too many arguments or calls", j->k.name);
    for (int i = 0; i < j->nargs && rc == KGC_OK; i++) {
        const kgg_arg *a = &j->args[i];
        int k = 0;
        while (k < o->nin && strcmp(o->in_name[k], a->name) != 0)
            k++;
        if (!a->used)
            continue;
        if (a->out && !(j->t[i] = kgc_alloc(a)))
            rc = kgc_error(KGC_FAIL, "output '%s': out of memory", a->name);
        else if (a->weight && k < o->nin) {
            char sname[80];
            snprintf(sname, sizeof sname, "%s_scale", a->name);
            int s = input_index(o, sname);
            rc = make_weight(j, i, &in[k], o->in_file[k], s < o->nin ? &in[s] : NULL);
        } else if (!a->out && k < o->nin)
            rc = make_input(j, i, &in[k], o->in_file[k]);
    }
    return rc;
}

static int load_inputs(job *j, const opts *o)
{
    kg_npy in[KGG_MAX_ARGS];
    memset(in, 0, sizeof in);
    int rc = read_inputs(o, in);
    if (rc == KGC_OK)
        rc = bind_inputs(j, o, in);
    for (int i = 0; i < o->nin; i++)
        kg_npy_free(&in[i]);
    return rc;
}

/* ---- compiling ---------------------------------------------------------------------------- */

static kg_kernel_info kernel_info(const kgg_kernel *k)
{
    return (kg_kernel_info){ k->family, k->name, k->problem, k->flops, k->read, k->written };
}

/* JIT: one source through libtcc, under the label compile errors are reported against. */
static int compile_jit(job *j)
{
    kg_kernel_info info = kernel_info(&j->k);
    const char *label = j->label, *src = j->k.text;
    j->reg = kg_registry_new();
    double t0 = now();
    int rc = kg_jit_compile(j->reg, 1, &info, &label, &src, NULL);
    j->compile_s = now() - t0;
    if (rc != KG_OK)
        return kgc_error(KGC_FAIL, "%s", kg_registry_error(j->reg));
    j->kern = kg_registry_find(j->reg, j->k.name);
    return j->kern ? KGC_OK : kgc_error(KGC_FAIL, "%s", kg_registry_error(j->reg));
}

/* $KGEN_CACHE_DIR, else $XDG_CACHE_HOME/kgen, else ~/.cache/kgen; created if missing. */
static int cache_dir(char *buf, size_t len)
{
    const char *env;
    if ((env = getenv("KGEN_CACHE_DIR")) && *env)
        snprintf(buf, len, "%s", env);
    else if ((env = getenv("XDG_CACHE_HOME")) && *env)
        snprintf(buf, len, "%s/kgen", env);
    else if ((env = getenv("HOME")) && *env)
        snprintf(buf, len, "%s/.cache/kgen", env);
    else
        return kgc_error(KGC_FAIL, "exec: no cache folder (set KGEN_CACHE_DIR or HOME)");
    if (kgf_mkdirs(buf) != 0)
        return kgc_error(KGC_FAIL, "%s: cannot create the cache folder: %s", buf,
                         strerror(errno));
    return KGC_OK;
}

/* FNV-1a, 64 bits: a stable cache key (not a defence against collisions made on purpose). */
static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* The line of gcc's output that says what went wrong: the first "error", else the first. */
static void first_error(char *out, char *msg, size_t len)
{
    char *line = strstr(out, "error");
    if (line)
        while (line > out && line[-1] != '\n')
            line--;
    else
        line = out;
    line[strcspn(line, "\n")] = '\0';
    const char *shown = *line ? line : "(no output)";
    size_t n = strlen(shown) < len ? strlen(shown) : len - 1;
    memcpy(msg, shown, n);
    msg[n] = '\0';
}

/* Runs argv (gcc) with stdout and stderr captured into out; returns its exit status, or -1
 * if it could not be started. */
static int run_captured(char *const *argv, char *out, size_t len)
{
    int fd[2];
    if (pipe(fd) != 0)
        return -1;
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
        ;  /* drain the rest so gcc never blocks on a full pipe */
    out[used] = '\0';
    close(fd[0]);
    int status;
    if (rc != 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* gcc's shared object for src (built to a temporary name, then renamed, so two kgen processes
 * never load a half-written file). */
static int build_so(const char *src, const char *so, const char *const *flags, int nflags)
{
    char tmp[4300], out[8192], msg[1024];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", so, (long)getpid());
    char *argv[16];
    int n = 0;
    argv[n++] = "gcc";
    for (int i = 0; i < nflags; i++)
        argv[n++] = (char *)flags[i];
    argv[n++] = "-o";
    argv[n++] = tmp;
    argv[n++] = (char *)src;
    argv[n] = NULL;
    int status = run_captured(argv, out, sizeof out);
    if (status == 0 && rename(tmp, so) == 0)
        return KGC_OK;
    unlink(tmp);
    if (status < 0 || status == 127)
        return kgc_error(KGC_FAIL, "exec: cannot run gcc");
    first_error(out, msg, sizeof msg);
    return kgc_error(KGC_FAIL, "gcc: %s", msg);
}

/* Loads the shared object and registers the kernel's two entry points. */
static int load_so(job *j, const char *so)
{
    if (!(j->so = dlopen(so, RTLD_NOW | RTLD_LOCAL)))
        return kgc_error(KGC_FAIL, "%s", dlerror());
    char vname[512];
    snprintf(vname, sizeof vname, "%s__v", j->k.name);
    void *fn = dlsym(j->so, j->k.name), *call = dlsym(j->so, vname);
    if (!fn || !call)
        return kgc_error(KGC_FAIL, "%s: no symbol %s", so, fn ? vname : j->k.name);
    kg_kernel_info info = kernel_info(&j->k);
    j->reg = kg_registry_new();
    void (*f)(void);
    kg_kernel_v *v;
    memcpy(&f, &fn, sizeof f);   /* object to function pointer, as POSIX allows */
    memcpy(&v, &call, sizeof v);
    if (kg_registry_add(j->reg, &info, f, v) != KG_OK
        || !(j->kern = kg_registry_find(j->reg, j->k.name)))
        return kgc_error(KGC_FAIL, "%s", kg_registry_error(j->reg));
    return KGC_OK;
}

/* AOT: the source (under a #line naming its label) goes to <cache>/<hash>.c and gcc builds
 * <hash>.so unless it exists; the hash covers the source, abi.h and the flags. */
static int compile_aot(job *j)
{
    static const char *const base[] = { "-O2", "-ffp-contract=off", "-fPIC", "-shared",
                                        "-I" KGEN_INCLUDE_DIR };
    const int nflags = (int)(sizeof base / sizeof base[0]);
    char dir[4096], name[64], src[4200], so[4200];
    int rc = cache_dir(dir, sizeof dir);
    if (rc != KGC_OK)
        return rc;
    size_t len = strlen(j->label) + strlen(j->k.text) + 32;
    char *text = malloc(len);
    if (!text)
        return kgc_error(KGC_FAIL, "exec: out of memory");
    snprintf(text, len, "#line 1 \"%s\"\n%s", j->label, j->k.text);
    uint64_t h = fnv1a(0xcbf29ce484222325ull, text);
    h = fnv1a(h, kg_abi_text);   /* a changed abi.h must not reuse an old build */
    for (int i = 0; i < nflags; i++)
        h = fnv1a(fnv1a(h, " "), base[i]);
    snprintf(name, sizeof name, "%016llx.c", (unsigned long long)h);
    snprintf(src, sizeof src, "%s/%s", dir, name);
    snprintf(so, sizeof so, "%s/%016llx.so", dir, (unsigned long long)h);
    double t0 = now();
    if (access(so, F_OK) != 0) {
        if (kgf_write_if_changed(dir, name, text, strlen(text)) < 0)
            rc = kgc_error(KGC_FAIL, "%s: cannot write", src);
        else
            rc = build_so(src, so, base, nflags);
    }
    free(text);
    if (rc == KGC_OK)
        rc = load_so(j, so);
    j->compile_s = now() - t0;
    return rc;
}

/* ---- running and outputs ------------------------------------------------------------------ */

static int run_kernel(job *j)
{
    double t0 = now();
    int status = j->kern->call(j->t, j->n);
    j->run_s = now() - t0;
    if (status != KG_OK)
        return kgc_error(KGC_FAIL, "%s returned status %d", j->k.name, status);
    return KGC_OK;
}

/* Writes one .npy into dir and appends its name to the summary list. */
static int save(const char *dir, const char *file, kg_npy *a, char *list, size_t len)
{
    char path[4200], err[512];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int rc = kg_npy_write(path, a, err, sizeof err);
    if (rc != KG_OK)
        return kgc_error(kgc_exit_for(rc), "%s", err);
    size_t used = strlen(list);
    snprintf(list + used, len - used, "%s%s", used ? ", " : "", file);
    return KGC_OK;
}

/* A *_rowscaled output [..., H+4]: decoded values [..., H] and one fp32 scale per row [...],
 * or with raw the packed bytes as they are. */
static int write_rowscaled(const char *dir, const kgg_arg *a, const unsigned char *buf,
                           int raw, char *list, size_t len)
{
    char file[128];
    kg_npy v = { KG_U8, a->rank, { 0 }, (void *)buf };
    memcpy(v.shape, a->shape, sizeof v.shape);
    snprintf(file, sizeof file, "%s.npy", a->name);
    if (raw)
        return save(dir, file, &v, list, len);
    long hp4 = a->rank ? a->shape[a->rank - 1] : 0, h = hp4 - 4;
    long rows = h > 0 ? kgc_count(a) / hp4 : 0;
    if (h < 1)
        return kgc_error(KGC_FAIL, "output '%s': a rowscaled row needs more than 4 bytes",
                         a->name);
    float *y = malloc((size_t)(rows * h + 1) * sizeof *y), *s = malloc((size_t)(rows + 1) * 4);
    int rc = y && s ? KGC_OK : kgc_error(KGC_FAIL, "output '%s': out of memory", a->name);
    for (long r = 0; rc == KGC_OK && r < rows; r++) {
        kgc_to_f32(a->dtype, buf + r * hp4, y + r * h, h);
        memcpy(&s[r], buf + r * hp4 + h, 4);   /* little-endian host, as the kernel wrote it */
    }
    kg_npy vy = { KG_F32, a->rank, { 0 }, y }, vs = { KG_F32, a->rank - 1, { 0 }, s };
    memcpy(vy.shape, a->shape, sizeof vy.shape);
    vy.shape[a->rank - 1] = h;
    memcpy(vs.shape, a->shape, sizeof vs.shape);
    if (rc == KGC_OK)
        rc = save(dir, file, &vy, list, len);
    snprintf(file, sizeof file, "%s_scale.npy", a->name);
    if (rc == KGC_OK)
        rc = save(dir, file, &vs, list, len);
    free(y);
    free(s);
    return rc;
}

/* Any other output: decoded to float32 (integers stay integers), or with raw its bits. */
static int write_plain(const char *dir, const kgg_arg *a, void *buf, int raw, char *list,
                       size_t len)
{
    int t = base_dtype(a->dtype, NULL);
    char file[128];
    kg_npy v = { (kg_dtype)t, a->rank, { 0 }, buf };
    memcpy(v.shape, a->shape, sizeof v.shape);
    snprintf(file, sizeof file, "%s.npy", a->name);
    if (t == KG_F32 || t == KG_U8 || t == KG_I32 || t == KG_I64)
        return save(dir, file, &v, list, len);
    if (raw && (t == KG_BF16 || t == KG_F16 || is_byte_code(t))) {
        v.dtype = kgc_dtype_bytes(a->dtype) == 2 ? KG_BF16 : KG_U8;
        return save(dir, file, &v, list, len);
    }
    long n = kgc_count(a);
    float *y = malloc((size_t)(n > 0 ? n : 1) * sizeof *y);
    if (!y || kgc_to_f32(a->dtype, buf, y, n) != 0) {
        free(y);
        return kgc_error(KGC_FAIL, "output '%s': cannot decode %s (try --raw)", a->name,
                         a->dtype);
    }
    v.dtype = KG_F32;
    v.data = y;
    int rc = save(dir, file, &v, list, len);
    free(y);
    return rc;
}

static int write_outputs(job *j, const opts *o, char *list, size_t len)
{
    if (kgf_mkdirs(o->out) != 0)
        return kgc_error(KGC_USAGE, "%s: cannot create the output folder: %s", o->out,
                         strerror(errno));
    for (int i = 0; i < j->nargs; i++) {
        const kgg_arg *a = &j->args[i];
        int rowscaled, rc;
        if ((!a->out && !a->inout) || !a->used)
            continue;
        base_dtype(a->dtype, &rowscaled);
        rc = rowscaled ? write_rowscaled(o->out, a, j->t[i], o->raw, list, len)
                       : write_plain(o->out, a, j->t[i], o->raw, list, len);
        if (rc != KGC_OK)
            return rc;
    }
    return KGC_OK;
}

/* ---- the command -------------------------------------------------------------------------- */

static int describe(kgg *g, const char *family)
{
    char *text;
    int rc = kgg_string_call(g, "describe", family, &text);
    if (rc != KG_OK)
        return kgc_error(kgc_exit_for(rc), "%s", kgg_error(g));
    fputs(text, stdout);
    free(text);
    return KGC_OK;
}

/* Load, bind, compile, run, write: each step prints its own error and stops the chain. */
static int run_job(job *j, const opts *o)
{
    char list[2048] = "";
    int rc = load_kernel(j, o->kernel);
    if (rc == KGC_OK)
        rc = load_inputs(j, o);
    if (rc == KGC_OK)
        rc = o->aot ? compile_aot(j) : compile_jit(j);
    if (rc == KGC_OK)
        rc = run_kernel(j);
    if (rc == KGC_OK)
        rc = write_outputs(j, o, list, sizeof list);
    if (rc == KGC_OK)
        printf("%s: %s compile %.1f ms, run %.1f us; wrote %s in %s\n", j->k.name,
               o->aot ? "aot" : "jit", j->compile_s * 1e3, j->run_s * 1e6,
               *list ? list : "nothing", o->out);
    return rc;
}

int kgc_exec(int argc, char **argv)
{
    opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc != KGC_OK)
        return rc;
    if (o.help)
        return fputs(help, stdout), KGC_OK;
    kgg *g = kgg_new();
    if (!g)
        return kgc_error(KGC_FAIL, "cannot start Lua");
    if (o.describe) {
        rc = describe(g, o.describe);
    } else {
        job j;
        memset(&j, 0, sizeof j);
        j.g = g;
        rc = run_job(&j, &o);
        job_free(&j);
    }
    kgg_free(g);
    return rc;
}
