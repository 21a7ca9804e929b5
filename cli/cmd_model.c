/* cmd_model.c: kgen run --model DIR: a Hugging Face model run through the model library
 * (model/kgen_model.h): greedy decoding of a prompt with a timing summary, or the checking
 * interface (--input-ids, --dump) that writes the logits and hidden states of a prefill and
 * of teacher-forced decode steps as .npy files. With --tp N the model is split over N ranks
 * (ranks.c: threads, or MPI processes under mpirun), each running the same steps; rank 0
 * prints and writes, the others are quiet. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "kgen/kgen.h"
#include "kgen/npy.h"
#include "model/kgen_model.h"

/* The options of run --model, as given. */
typedef struct opts {
    const char *dir, *prompt, *max_new, *threads, *weights, *ctx, *ids, *prefill, *decode,
        *dump, *tp;
    int aot, no_mega;
} opts;

/* Longest prompt --prompt-ids takes (the context limit bounds it further). */
enum { MAX_PROMPT = 1 << 20 };

static int parse(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    int rc = KGC_OK;
    for (int i = 1; i < argc && rc == KGC_OK; i++) {
        const char *a = argv[i];
        const char **slot = !strcmp(a, "--model") ? &o->dir
                            : !strcmp(a, "--prompt-ids") ? &o->prompt
                            : !strcmp(a, "--max-new") ? &o->max_new
                            : !strcmp(a, "--threads") ? &o->threads
                            : !strcmp(a, "--weights") ? &o->weights
                            : !strcmp(a, "--max-context") ? &o->ctx
                            : !strcmp(a, "--input-ids") ? &o->ids
                            : !strcmp(a, "--prefill") ? &o->prefill
                            : !strcmp(a, "--decode") ? &o->decode
                            : !strcmp(a, "--dump") ? &o->dump
                            : !strcmp(a, "--tp") ? &o->tp : NULL;
        if (slot && i + 1 == argc)
            return kgc_error(KGC_USAGE, "run: %s needs a value", a);
        if (slot)
            rc = kgc_set_once("run", a, slot, argv[++i]);
        else if (!strcmp(a, "--aot") || !strcmp(a, "--jit"))
            o->aot = !strcmp(a, "--aot");
        else if (!strcmp(a, "--no-megakernel"))
            o->no_mega = 1;
        else
            return kgc_bad_argument("run", a);
    }
    if (rc)
        return rc;
    int check = o->ids || o->prefill || o->decode || o->dump;
    if (check && !(o->ids && o->prefill && o->decode && o->dump))
        return kgc_error(KGC_USAGE, "run: --input-ids, --prefill, --decode and --dump go "
                         "together");
    if (check && (o->prompt || o->max_new))
        return kgc_error(KGC_USAGE, "run: --prompt-ids and --max-new do not go with "
                         "--input-ids");
    if (o->weights && strcmp(o->weights, "bf16") != 0 && strcmp(o->weights, "fp8") != 0)
        return kgc_error(KGC_USAGE, "run: --weights wants bf16 or fp8, not '%s'", o->weights);
    if (o->dump)
        return kgc_folder_writable("run", "--dump", o->dump);
    return KGC_OK;
}

/* "1,2,3" into ids (malloc'd); KGC_OK or KGC_USAGE with the error printed. */
static int parse_ids(const char *s, int64_t **ids, long *n)
{
    long cap = 1;
    *ids = NULL, *n = 0; /* set on every path, the refusals' too */
    for (const char *p = s; *p; p++)
        cap += *p == ',';
    if (cap > MAX_PROMPT)
        return kgc_error(KGC_USAGE, "run: --prompt-ids: more than %d ids", MAX_PROMPT);
    *ids = malloc((size_t)cap * sizeof **ids);
    for (const char *p = s; *ids;) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || (*end && *end != ','))
            break;
        (*ids)[(*n)++] = v;
        if (!*end)
            return KGC_OK;
        p = end + 1;
    }
    free(*ids);
    *ids = NULL;
    return kgc_error(KGC_USAGE, "run: --prompt-ids wants comma-separated integers, not '%s'",
                     s);
}

static void on_progress(void *ud, const char *line)
{
    (void)ud;
    fprintf(stderr, "kgen: %s\n", line);
}

/* Opens the model with o's options as rank r; KGC_OK or the exit code with the error printed. */
static int open_model(const opts *o, const kgc_rank *r, long max_batch, long min_ctx,
                      int check, kgm_model **m)
{
    kgm_options mo;
    kgm_options_default(&mo);
    long v;
    if (o->threads && kgc_int_option("run", "--threads", o->threads, 1, KGC_MAX_THREADS, &v))
        return KGC_USAGE;
    mo.threads = o->threads ? (int)v : r->threads;
    mo.tp = r->tp;
    if (o->ctx && kgc_int_option("run", "--max-context", o->ctx, 1, KGM_MAX_POSITION,
                                 &mo.max_context))
        return KGC_USAGE;
    if (!o->ctx && check)
        mo.max_context = min_ctx;
    mo.max_batch = max_batch;
    mo.build = o->aot ? KGM_AOT : KGM_JIT;
    mo.weights = !o->weights ? KGM_WEIGHTS_STORED
                 : !strcmp(o->weights, "fp8") ? KGM_WEIGHTS_FP8 : KGM_WEIGHTS_BF16;
    mo.all_logits = mo.keep_hidden = check;
    mo.no_megakernel = o->no_mega;
    /* progress lines are for a person watching: on a terminal only, so a script or test that
     * reads stderr sees the same lines however long loading takes */
    mo.progress = r->rank == 0 && isatty(STDERR_FILENO) ? on_progress : NULL;
    char err[1024];
    int rc = kgm_open(m, o->dir, &mo, err, sizeof err);
    if (rc == KG_OK)
        return KGC_OK;
    /* the reader's and the config's messages name their file, inside the folder, already */
    if (!strncmp(err, o->dir, strlen(o->dir)))
        return kgc_error(kgc_exit_for(rc), "%s", err);
    return kgc_error(kgc_exit_for(rc), "%s: %s", o->dir, err);
}

static int call_failed(kgm_model *m, int rc)
{
    return kgc_error(rc == KGM_EINPUT ? KGC_USAGE : KGC_FAIL, "run: %s", kgm_error(m));
}

/* ---- greedy decoding ------------------------------------------------------------------------ */

static long argmax(const float *x, long n)
{
    long best = 0;
    for (long i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

static void print_summary(kgm_model *m, const kgc_rank *r, long P, double prefill_s,
                          long steps, double decode_s)
{
    kgm_stats s;
    kgm_stats_of(m, &s);
    const kgm_config *c = kgm_config_of(m);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("model: %s, %ld layers, hidden %ld, vocabulary %ld; weights %s; primitives %s; "
           "threads %d\n", kgm_arch_name(c->arch), c->layers, c->hidden, c->vocab, s.weights,
           kg_prim_isa(), kg_threads());
    printf("start-up: spec %.2f ms (%ld lines), generate %.1f ms, %s %.1f ms (%d kernels), "
           "weight load %.1f ms\n", s.spec_ms, s.spec_lines, s.generate_ms,
           s.aot ? "gcc (or its cache)" : "JIT", s.compile_ms, s.kernels,
           s.load_ms);
    printf("prefill: %ld tokens in %.2f ms, %.1f tokens/s\n", P, prefill_s * 1e3,
           P / prefill_s);
    if (steps > 0)
        printf("decode: %ld tokens, %.2f ms/token, %.1f tokens/s (%s%s)\n", steps,
               decode_s * 1e3 / steps, steps / decode_s,
               s.megakernel ? "megakernel transformer_tkg" : "chain of single-op kernels: ",
               s.megakernel ? "" : s.megakernel_off);
    if (r->tp > 1)
        printf("tensor parallelism: %d ranks (%s); rank 0 read %.1f MiB of weights\n", r->tp,
               r->mpi ? "MPI, one process a rank" : "threads of one process",
               s.read_bytes / 1048576.0);
    printf("memory%s: weights %.1f MiB, KV cache %.1f MiB, activations %.1f MiB; "
           "peak RSS %.1f MiB%s\n", r->tp > 1 ? " (rank 0)" : "", s.weight_bytes / 1048576.0,
           s.cache_bytes / 1048576.0, s.act_bytes / 1048576.0, ru.ru_maxrss / 1024.0,
           r->tp > 1 && !r->mpi ? " (the process: every rank)" : "");
}

/* Greedy decoding: the prompt's prefill, then up to max_new tokens, each the argmax of the
 * last logits (the last one needs no decode step), within the context. */
static int generate(const opts *o, const kgc_rank *r)
{
    int say = r->rank == 0; /* rank 0 prints; the others run the same steps quietly */
    long max_new = 16, P;
    int64_t *ids = NULL;
    if (o->max_new && kgc_int_option("run", "--max-new", o->max_new, 1, MAX_PROMPT, &max_new))
        return KGC_USAGE;
    if (parse_ids(o->prompt ? o->prompt : "1", &ids, &P) != KGC_OK)
        return KGC_USAGE;
    kgm_model *m;
    int rc = open_model(o, r, 1, 0, 0, &m);
    if (rc != KGC_OK) {
        free(ids);
        return rc;
    }
    kgm_stats s;
    kgm_stats_of(m, &s);
    double t0 = kgc_now();
    int st = kgm_prefill(m, 1, P, ids);
    double prefill_s = kgc_now() - t0, decode_s = 0;
    long steps = 0;
    if (st == KG_OK && say) {
        printf("tokens:");
        for (long i = 0; i < P; i++)
            printf(" %lld", (long long)ids[i]);
        printf(" |");
    }
    for (long n = 0; st == KG_OK && n < max_new; n++) {
        int64_t next = argmax(kgm_logits(m, NULL), kgm_config_of(m)->vocab);
        if (say) {
            printf(" %lld", (long long)next);
            fflush(stdout);
        }
        if (n + 1 == max_new || kgm_position(m) >= s.max_context)
            break; /* done, or the context is full */
        double t = kgc_now();
        st = kgm_decode(m, 1, &next);
        decode_s += kgc_now() - t;
        steps++;
    }
    if (st == KG_OK && say) {
        printf("\n");
        print_summary(m, r, P, prefill_s, steps, decode_s);
    } else if (st != KG_OK) {
        rc = call_failed(m, st);
    }
    kgm_close(m);
    free(ids);
    return rc;
}

/* ---- the checking interface ----------------------------------------------------------------- */

/* Writes data as OUT/name.npy, f32 of the given shape; KGC_OK or the exit code, printed. */
static int write_npy(const char *out, const char *name, const float *data, int rank,
                     const long *shape)
{
    char path[4200], err[512];
    kg_npy a = { .dtype = KG_F32, .rank = rank, .data = (void *)data };
    memcpy(a.shape, shape, (size_t)rank * sizeof *shape);
    snprintf(path, sizeof path, "%s/%s.npy", out, name);
    int rc = kg_npy_write(path, &a, err, sizeof err);
    return rc == KG_OK ? KGC_OK : kgc_error(kgc_exit_for(rc), "run: %s", err);
}

/* The logits [B, T, V] and hidden states [L+1, B, T, H] of the last call, as OUT/<what>_*. */
static int dump(kgm_model *m, const char *out, const char *what, long B, long T)
{
    const kgm_config *c = kgm_config_of(m);
    long L = c->layers, H = c->hidden, n = B * T * H;
    char name[64];
    long ls[3] = { B, T, c->vocab }, hs[4] = { L + 1, B, T, H };
    snprintf(name, sizeof name, "%s_logits", what);
    int rc = write_npy(out, name, kgm_logits(m, NULL), 3, ls);
    float *h = rc == KGC_OK ? malloc((size_t)((L + 1) * n) * sizeof *h) : NULL;
    if (rc == KGC_OK && !h)
        return kgc_error(KGC_FAIL, "run: out of memory");
    for (long l = 0; h && l <= L; l++)
        memcpy(h + l * n, kgm_hidden(m, l), (size_t)n * sizeof *h);
    snprintf(name, sizeof name, "%s_hidden", what);
    if (h)
        rc = write_npy(out, name, h, 4, hs);
    free(h);
    return rc;
}

/* IDS.npy [B, >= P + N] as int64 (int32 widened); KGC_OK or the exit code, printed. */
static int read_ids(const char *path, long P, long N, int64_t **ids, long *B, long *cols)
{
    kg_npy a;
    char err[512];
    int rc = kg_npy_read(path, &a, err, sizeof err);
    if (rc != KG_OK)
        return kgc_error(kgc_exit_for(rc), "run: %s", err);
    if (a.rank != 2 || (a.dtype != KG_I64 && a.dtype != KG_I32) || a.shape[0] < 1 ||
        a.shape[1] < P + N) {
        kg_npy_free(&a);
        return kgc_error(KGC_USAGE, "run: --input-ids %s: wants int64 [B, P+N] with P+N = %ld",
                         path, P + N);
    }
    *B = a.shape[0], *cols = a.shape[1];
    *ids = malloc((size_t)(*B * *cols) * sizeof **ids);
    for (long i = 0; *ids && i < *B * *cols; i++)
        (*ids)[i] = a.dtype == KG_I64 ? ((const int64_t *)a.data)[i]
                                      : ((const int32_t *)a.data)[i];
    kg_npy_free(&a);
    return *ids ? KGC_OK : kgc_error(KGC_FAIL, "run: out of memory");
}

/* rc where every rank of r's group got KGC_OK too (one all-reduce of a flag when tp > 1), else
 * KGC_FAIL on the ranks that did (the failing one has said why): a step only rank 0 takes
 * (writing a file) or one that fails on one rank alone (memory) stops the whole group, where
 * the others would wait for it in the next collective. */
static int agreed(const kgc_rank *r, int rc)
{
    if (r->tp == 1)
        return rc;
    float bad = rc != KGC_OK, any = 1;
    if (kgp_all_reduce(kgp_coll(), &any, &bad, 1, KG_COLL_F32) != KG_OK && rc == KGC_OK)
        return kgc_error(KGC_FAIL, "run: the ranks could not agree");
    return rc != KGC_OK ? rc : any > 0 ? KGC_FAIL : KGC_OK;
}

/* Prefill the first P ids of every row, then N teacher-forced decode steps; each call's
 * logits and hidden states dumped (by rank 0). */
static int check(const opts *o, const kgc_rank *r)
{
    int say = r->rank == 0; /* rank 0 writes the files; the others run the same steps */
    long P, N, B = 0, cols = 0;
    if (kgc_int_option("run", "--prefill", o->prefill, 1, KGM_MAX_POSITION, &P) ||
        kgc_int_option("run", "--decode", o->decode, 0, KGM_MAX_POSITION, &N))
        return KGC_USAGE;
    int64_t *ids = NULL, *row = NULL;
    int rc = read_ids(o->ids, P, N, &ids, &B, &cols);
    if (rc != KGC_OK)
        return rc;
    if (B > 1024) {
        free(ids);
        return kgc_error(KGC_USAGE, "run: --input-ids %s: %ld rows, at most 1024", o->ids, B);
    }
    kgm_model *m = NULL;
    row = malloc((size_t)(B * P) * sizeof *row);
    if (!row)
        rc = kgc_error(KGC_FAIL, "run: out of memory");
    if (rc == KGC_OK && say && mkdir(o->dump, 0777) != 0 &&
        kgc_folder_writable("run", "--dump", o->dump) != KGC_OK)
        rc = KGC_USAGE;
    if ((rc = agreed(r, rc)) == KGC_OK)
        rc = open_model(o, r, B, P + N, 1, &m);
    for (long b = 0; rc == KGC_OK && b < B; b++)
        memcpy(row + b * P, ids + b * cols, (size_t)P * sizeof *row);
    int st = rc == KGC_OK ? kgm_prefill(m, B, P, row) : KG_OK;
    if (st != KG_OK)
        rc = call_failed(m, st);
    if (rc == KGC_OK && say)
        rc = dump(m, o->dump, "prefill", B, P);
    if (m)
        rc = agreed(r, rc);
    for (long s = 0; rc == KGC_OK && s < N; s++) {
        for (long b = 0; b < B; b++)
            row[b] = ids[b * cols + P + s];
        if ((st = kgm_decode(m, B, row)) != KG_OK) {
            rc = call_failed(m, st);
            break;
        }
        char what[32];
        snprintf(what, sizeof what, "decode%ld", s);
        if (say)
            rc = dump(m, o->dump, what, B, 1);
        rc = agreed(r, rc);
    }
    kgm_close(m);
    free(row);
    free(ids);
    return rc;
}

static int run_rank(const kgc_rank *r, void *arg)
{
    const opts *o = arg;
    return o->ids ? check(o, r) : generate(o, r);
}

int kgc_run_model(int argc, char **argv)
{
    opts o;
    int rc = parse(argc, argv, &o);
    if (rc != KGC_OK)
        return rc;
    if (!o.dir)
        return kgc_error(KGC_USAGE, "run: expected --model DIR (see kgen run --help)");
    long tp = 1;
    if (o.tp && kgc_int_option("run", "--tp", o.tp, 1, KGM_MAX_TP, &tp))
        return KGC_USAGE;
    return kgc_ranks_run("run", "--tp", tp, run_rank, &o);
}
