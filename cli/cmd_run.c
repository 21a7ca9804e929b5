/* cmd_run.c: kgen run: generate a spec's kernels in memory (or read a generated folder),
 * compile them all (libtcc, or gcc with --aot), run each on seeded inputs at the spec's nominal
 * sizes, print a timing summary.
 * What each kernel takes and costs comes from the manifest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "host.h"
#include "kernel_args.h"
#include "kgen/gcc.h"
#include "kgen/kgen.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of `repeat` timed calls after one warm-up call into *median; KGC_OK, or the exit code
 * with the error printed: the arguments refused (the cap on their memory: 2) or not had, or
 * the kernel's status not KG_OK (1). */
static int time_kernel(const kg_kernel *k, const kg_manifest_kernel *d, const long *sizes,
                       int repeat, double *median)
{
    void *t[KG_MANIFEST_MAX_ARGS];
    char err[320];
    int rc = kgargs_new(d, t, err, sizeof err);
    if (rc != KG_OK)
        return kgc_error(kgc_exit_for(rc), "run: %s", err);
    double *times = calloc((size_t)repeat, sizeof *times);
    rc = times ? k->call(t, sizes) : KG_ENOMEM;
    for (int r = 0; rc == KG_OK && r < repeat; r++) {
        double t0 = kgc_now();
        rc = k->call(t, sizes);
        times[r] = kgc_now() - t0;
    }
    if (rc == KG_OK) {
        qsort(times, (size_t)repeat, sizeof *times, cmp_double);
        *median = times[repeat / 2];
    }
    free(times);
    kgargs_free(d, t);
    if (rc != KG_OK)
        return kgc_error(KGC_FAIL, "%s returned status %d", d->symbol, rc);
    return KGC_OK;
}

const char kgc_run_help[] =
    "Generates SPEC's kernels in memory (or reads the generated folder DIR: its\n"
    "manifest.json and the files it lists), compiles them, runs each on seeded inputs at the\n"
    "spec's nominal sizes (one warm-up, then the median of N calls) and prints generation\n"
    "time, compile time and time per call.\n"
    "  --jit | --aot  compile with libtcc (default) or with gcc -O2 into a shared object\n"
    "                 cached in $KGEN_CACHE_DIR (default $XDG_CACHE_HOME/kgen or\n"
    "                 ~/.cache/kgen); one gcc run builds them all\n"
    "  --repeat N     timed calls per kernel (default 5, at most 10^6)\n"
    "  --threads N    threads of the kernels (1 to 1024)\n"
    "  --tokens T     run every kernel at T tokens (its batch axes 1, its sequence axes T, as\n"
    "                 its family declares) instead of the nominal sizes; flops and bytes are\n"
    "                 the manifest's cost at T tokens\n"
    "A kernel's arguments may take at most 8 GiB ($KGEN_MAX_ARG_BYTES sets another cap, e.g.\n"
    "16G); a spec with a kernel past it is refused before anything is compiled.\n"
    "\n"
    "With --model DIR (a Hugging Face folder: config.json, model.safetensors or its index):\n"
    "derives the spec from config.json, generates and compiles its kernels, loads the\n"
    "weights, and runs the model (model/kgen_model.h), printing a timing summary.\n"
    "  --prompt-ids IDS  comma-separated token ids of the prompt (default 1)\n"
    "  --max-new N       tokens to generate greedily (default 16)\n"
    "  --threads N       threads of the kernels and of the fp8 quantizer (1 to 1024)\n"
    "  --jit | --aot     compile the kernels with libtcc (default) or gcc, as above\n"
    "  --weights bf16|fp8  the projections and the LM head in bf16, or quantized at load to\n"
    "                    fp8 e4m3 with per-column scales (default: as config.json's dtype)\n"
    "  --max-context N   KV-cache positions (default: max_position_embeddings, at most\n"
    "                    4096; with --input-ids, P + N)\n"
    "  --input-ids IDS.npy --prefill P --decode N --dump OUT\n"
    "                    the checking interface: IDS.npy int64 [B, P+N]; prefill the first\n"
    "                    P ids of every row, then N decode steps feeding ids P.. (teacher\n"
    "                    forcing); writes float32 OUT/prefill_logits.npy [B, P, V],\n"
    "                    prefill_hidden.npy [L+1, B, P, H] and per step s\n"
    "                    decode{s}_logits.npy [B, 1, V], decode{s}_hidden.npy [L+1, B, 1, H]\n"
    "                    (hidden 0: the embeddings; L: the last layer after the final norm)\n"
    "  --tp N            tensor parallelism over N ranks (Megatron: each holds 1/N of the\n"
    "                    heads, the MLP and the vocabulary, and reads only that from the\n"
    "                    files): N threads of this process, or under `mpirun -np N` one\n"
    "                    process a rank (N must be the number of processes); rank 0 prints\n"
    "                    and writes --dump, the same files as without --tp. --threads is per\n"
    "                    rank (default: the cores split over the ranks of the process).\n"
    "                    Query heads, KV heads (or ranks over KV heads) and intermediate_size\n"
    "                    must divide by N, else refused naming the dimension, exit 2\n"
    "  --no-megakernel   decode through the chain of single-op kernels; by default a model\n"
    "                    the transformer_tkg megakernel covers (no QKV / o_proj bias, not\n"
    "                    --weights fp8, head_dim even <= 128, hidden a multiple of 128, <= 32\n"
    "                    layers) decodes every layer in one call of it (--dump's decode\n"
    "                    hidden states 1..L-1 are then NaN: the megakernel keeps none)\n"
    "A token id outside the vocabulary, a prompt past the context, a missing tensor or one\n"
    "whose shape contradicts config.json is refused with one line, exit 2.\n";

/* Parses run's options; KGC_OK, or KGC_USAGE after printing why. */
static int parse(int argc, char **argv, const char **spec, int *aot, long *repeat, long *tokens,
                 long *threads)
{
    const char *rep = NULL, *tok = NULL, *thr = NULL;
    int rc = KGC_OK;
    for (int i = 1; i < argc && rc == KGC_OK; i++) {
        const char *o = argv[i];
        const char **slot = !strcmp(o, "--repeat") ? &rep : !strcmp(o, "--tokens") ? &tok
                            : !strcmp(o, "--threads") ? &thr : NULL;
        if (slot && i + 1 == argc)
            return kgc_error(KGC_USAGE, "run: %s needs a value", o);
        if (slot)
            rc = kgc_set_once("run", o, slot, argv[++i]);
        else if (!strcmp(o, "--aot") || !strcmp(o, "--jit"))
            *aot = !strcmp(o, "--aot");
        else if (o[0] != '-' && !*spec)
            *spec = o;
        else
            return kgc_bad_argument("run", o);
    }
    if (!rc && rep)
        rc = kgc_int_option("run", "--repeat", rep, 1, KGC_MAX_RUNS, repeat);
    if (!rc && tok)
        rc = kgc_int_option("run", "--tokens", tok, 1, KGC_MAX_TOKENS, tokens);
    if (!rc && thr)
        rc = kgc_int_option("run", "--threads", thr, 1, KGC_MAX_THREADS, threads);
    if (!rc && !*spec)
        rc = kgc_error(KGC_USAGE, "run: expected SPEC or DIR (see kgen run --help)");
    return rc;
}

int kgc_run(int argc, char **argv)
{
    /* the options only a model run takes send the command line to run --model, which asks
     * for --model DIR if it is missing */
    static const char *const model_opts[] = { "--model", "--prompt-ids", "--max-new",
                                              "--weights", "--max-context", "--input-ids",
                                              "--prefill", "--decode", "--dump", "--tp",
                                              "--no-megakernel" };
    for (int i = 1; i < argc; i++)
        for (size_t j = 0; j < sizeof model_opts / sizeof model_opts[0]; j++)
            if (!strcmp(argv[i], model_opts[j]))
                return kgc_run_model(argc, argv);
    long tokens = 0, repeat = 5, threads = 0;
    const char *spec = NULL;
    int aot = 0;
    if (parse(argc, argv, &spec, &aot, &repeat, &tokens, &threads) != KGC_OK)
        return KGC_USAGE;
    if (threads)
        kg_set_threads((int)threads);

    kgc_kernels ks;
    int rc = kgc_kernels_load(spec, 1, &ks);
    if (rc != KGC_OK)
        return rc;
    char err[512];   /* every kernel's arguments within the cap, before compiling */
    if ((rc = kgargs_check(ks.m, NULL, ks.m->nkernels, err, sizeof err)) != KG_OK) {
        kgc_kernels_free(&ks);
        return kgc_error(kgc_exit_for(rc), "run: %s", err);
    }
    const kg_manifest *m = ks.m;
    int n = m->nkernels;
    kg_kernel_info *info = calloc((size_t)n + 1, sizeof *info);
    double *jit = calloc((size_t)n + 1, sizeof *jit);
    long lines = 0;
    for (int i = 0; i < n; i++) {
        info[i] = kg_manifest_info(&m->kernels[i]);
        for (const char *p = ks.text[i]; *p; p++)
            lines += *p == '\n';
    }
    kg_registry *reg = kg_registry_new();
    int code = KGC_OK; /* a kernel's run failed: its exit code, the error printed */
    const char *const *labels = (const char *const *)ks.label;
    const char *const *texts = (const char *const *)ks.text;
    rc = aot ? kg_gcc_compile(reg, n, info, labels, texts, jit)
             : kg_jit_compile(reg, n, info, labels, texts, jit);
    if (rc != KG_OK) {
        kgc_error(KGC_FAIL, "%s", kg_registry_error(reg));
    } else {
        double jit_total = 0;
        for (int i = 0; i <= n; i++)
            jit_total += jit[i];
        char built[128];
        if (aot) /* one gcc run builds every kernel, or the cache has them: no split */
            snprintf(built, sizeof built, "gcc (or its cache) %.1f ms", jit_total * 1e3);
        else
            snprintf(built, sizeof built, "JIT %.1f ms (link %.2f ms)", jit_total * 1e3,
                     jit[n] * 1e3);
        printf("spec %s: %d kernels, %ld lines of C; %s in %.1f ms, %s; primitives: %s; "
               "threads: %d\n\n", m->spec, n, lines, ks.generated ? "generated" : "read",
               ks.seconds * 1e3, built, kg_prim_isa(), kg_threads());
        printf("%-68s %9s %12s %9s %9s\n", "kernel", aot ? "gcc ms" : "JIT ms", "us/call",
               "GFLOP/s", "GB/s");
        for (int i = 0; i < n && rc == KG_OK; i++) {
            const kg_manifest_kernel *d = &m->kernels[i];
            const kg_kernel *k = kg_registry_find(reg, d->symbol);
            double t = 0, cost[3];
            long sizes[KG_MANIFEST_MAX_CALLS];
            if (kgargs_call_sizes(d, tokens, sizes) != 0) {
                printf("%-68s %9.2f %12s (nominal tokens < %ld)\n", d->symbol, jit[i] * 1e3,
                       "-", tokens);
                continue;
            }
            if (tokens)
                kg_manifest_cost(d, tokens, cost);
            else
                memcpy(cost, d->cost, sizeof cost);
            if (!k) {
                rc = kgc_error(KGC_FAIL, "%s", kg_registry_error(reg));
                break;
            }
            if ((code = time_kernel(k, d, sizes, (int)repeat, &t)) != KGC_OK)
                break;
            printf("%-68s %9.2f %12.1f %9.2f %9.2f\n", d->symbol, jit[i] * 1e3, t * 1e6,
                   cost[0] / t / 1e9, (cost[1] + cost[2]) / t / 1e9);
        }
    }
    kg_registry_free(reg);
    free(info);
    free(jit);
    kgc_kernels_free(&ks);
    return code != KGC_OK ? code : rc == KG_OK ? KGC_OK : KGC_FAIL;
}
