/* cmd_exec.c: kgen exec: run one kernel (of a spec, or named by a problem string) on .npy
 * inputs, compiled with libtcc or with gcc (kgen/gcc.h), and write its outputs as .npy files
 * (npy_io.h); kgen exec --describe prints a family's keys and tensors. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fsutil.h"
#include "host.h"
#include "kernel_args.h"
#include "kgen/gcc.h"
#include "kgen/kgen.h"
#include "kgen/npy.h"
#include "npy_io.h"
#include "tensor.h"

const char kgc_exec_help[] =
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
    "float32 [..., H] and NAME_scale.npy float32 [...] (with --raw: NAME.npy uint8 [..., H+4]).\n"
    "Outputs start as NaN (0xff bytes; -1 in integer dtypes): what the kernel leaves unwritten\n"
    "stays NaN. The input files and the kernel's arguments may take at most 8 GiB together\n"
    "($KGEN_MAX_ARG_BYTES sets another cap, e.g. 16G).\n";

/* ---- options ------------------------------------------------------------------------------ */

typedef struct opts {
    const char *kernel, *out, *describe;
    int nin, aot, raw;
    char in_name[KGIO_MAX_INPUTS][64];
    const char *in_file[KGIO_MAX_INPUTS];
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
    if (o->nin == KGIO_MAX_INPUTS)
        return kgc_error(KGC_USAGE, "exec: more than %d inputs", KGIO_MAX_INPUTS);
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
        int has_value = i + 1 < argc, rc = KGC_OK;
        if (!has_value && (!strcmp(a, "--in") || !strcmp(a, "--out") || !strcmp(a, "--describe")))
            return kgc_error(KGC_USAGE, "exec: %s needs a value", a);
        if (!strcmp(a, "--jit") || !strcmp(a, "--aot"))
            o->aot = a[2] == 'a';
        else if (!strcmp(a, "--raw"))
            o->raw = 1;
        else if (!strcmp(a, "--in"))
            rc = add_input(o, argv[++i]);
        else if (!strcmp(a, "--out") || !strcmp(a, "--describe"))
            rc = kgc_set_once("exec", a, a[2] == 'o' ? &o->out : &o->describe, argv[++i]);
        else if (a[0] != '-' && !o->kernel)
            o->kernel = a;
        else
            return kgc_bad_argument("exec", a);
        if (rc != KGC_OK)
            return rc;
    }
    if (o->describe)
        return o->kernel || o->nin || o->out
            ? kgc_error(KGC_USAGE, "exec: --describe takes no kernel, --in or --out")
            : KGC_OK;
    if (!o->kernel)
        return kgc_error(KGC_USAGE, "exec: which kernel? (see kgen exec --help)");
    if (!o->out)
        return kgc_error(KGC_USAGE, "exec: --out DIR is required");
    return kgc_folder_writable("exec", "--out", o->out);
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
    const kg_kernel *kern;
    double compile_s, run_s;
} job;

static void job_free(job *j)
{
    for (int i = 0; i < KGG_MAX_ARGS; i++)
        if (j->t[i])
            kgbuf_free(i < j->nargs ? &j->args[i] : NULL, j->t[i]);
    kg_registry_free(j->reg);
    kgg_kernel_clear(&j->k);
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
        kgargs_arg_at(d, a, nominal, &j->k.args[a]);
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

/* Reads every --in file, binds the kernel to their shapes and fills the tensors. */
static int load_inputs(job *j, const opts *o)
{
    const char *names[KGG_MAX_ARGS];
    char err[1024];
    for (int i = 0; i < o->nin; i++)
        names[i] = o->in_name[i];
    int rc = kgio_bind(j->g, &j->k, o->nin, names, o->in_file, j->args, &j->nargs, j->n,
                       &j->ncalls, j->t, err, sizeof err);
    return rc == KG_OK ? KGC_OK : kgc_error(kgc_exit_for(rc), "%s", err);
}

/* ---- compiling, running, outputs ---------------------------------------------------------- */

/* One source through libtcc or gcc, under the label compile errors are reported against. */
static int compile(job *j, int aot)
{
    kg_kernel_info info = { j->k.family, j->k.name, j->k.problem, j->k.flops, j->k.read,
                            j->k.written };
    const char *label = j->label, *src = j->k.text;
    j->reg = kg_registry_new();
    double t0 = kgc_now();
    int rc = aot ? kg_gcc_compile(j->reg, 1, &info, &label, &src, NULL)
                 : kg_jit_compile(j->reg, 1, &info, &label, &src, NULL);
    j->compile_s = kgc_now() - t0;
    if (rc == KG_OK)
        j->kern = kg_registry_find(j->reg, j->k.name);
    return j->kern ? KGC_OK : kgc_error(KGC_FAIL, "%s", kg_registry_error(j->reg));
}

static int run_kernel(job *j)
{
    double t0 = kgc_now();
    int status = j->kern->call(j->t, j->n);
    j->run_s = kgc_now() - t0;
    if (status != KG_OK)
        return kgc_error(KGC_FAIL, "%s returned status %d", j->k.name, status);
    return KGC_OK;
}

static int write_outputs(job *j, const opts *o, char *list, size_t len)
{
    char err[512];
    if (kgf_mkdirs(o->out) != 0)
        return kgc_error(KGC_USAGE, "exec: --out %s: cannot create the folder (%s)", o->out,
                         strerror(errno));
    for (int i = 0; i < j->nargs; i++) {
        const kgg_arg *a = &j->args[i];
        if ((!a->out && !a->inout) || !a->used)
            continue;
        int rc = kgio_write(o->out, a, j->t[i], o->raw, list, len, err, sizeof err);
        if (rc != KG_OK)
            return kgc_error(kgc_exit_for(rc), "%s", err);
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
        rc = compile(j, o->aot);
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
