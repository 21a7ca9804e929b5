/* cli.h: the kgen subcommands (kgc_ prefix), each a thin front end over the generator, the
 * runtime and the benchmark library, and what they share (kernels.c: a spec's kernels). A
 * command returns the process exit code: 0 ok, 1 failure, 2 usage or spec error. Its synopsis and summary live in main.c's
 * command table; its help text (after the synopsis) beside its option parsing. */
#ifndef KGEN_CLI_H
#define KGEN_CLI_H

#include "kgen/manifest.h"

enum { KGC_OK = 0, KGC_FAIL = 1, KGC_USAGE = 2 };

/* ---- the commands (main.c's table) -------------------------------------------------------- */

int kgc_generate(int argc, char **argv);
int kgc_check(int argc, char **argv);
int kgc_list(int argc, char **argv);
int kgc_header(int argc, char **argv);
int kgc_exec(int argc, char **argv);
int kgc_run(int argc, char **argv);
int kgc_bench(int argc, char **argv);
int kgc_spec(int argc, char **argv);
int kgc_make_model(int argc, char **argv);
/* kgen run --model DIR (cmd_model.c), which kgc_run hands the command line to */
int kgc_run_model(int argc, char **argv);

extern const char kgc_generate_help[], kgc_check_help[], kgc_list_help[], kgc_header_help[],
    kgc_exec_help[], kgc_run_help[], kgc_bench_help[], kgc_spec_help[],
    kgc_make_model_help[];

/* ---- what they share ---------------------------------------------------------------------- */

/* Prints "kgen: <message>" to stderr and returns code; prints nothing on a thread that
 * called kgc_quiet(1) (a tensor-parallel rank other than 0). */
int kgc_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kgc_quiet(int quiet);
/* The usage error for an argument cmd does not take: "unknown option" for one that starts
 * with '-', else "unexpected argument"; returns KGC_USAGE. */
int kgc_bad_argument(const char *cmd, const char *arg);
/* The exit code for a KG_* status: spec, shape and I/O problems are the user's (2). */
int kgc_exit_for(int status);
/* Numeric options, bounded at the door (a value out of range would reach OpenMP, malloc or a
 * loop that never ends): *out = VALUE if it is an integer in [lo, hi], else one line naming cmd
 * and opt with the range, and KGC_USAGE. */
int kgc_int_option(const char *cmd, const char *opt, const char *value, long lo, long hi,
                   long *out);
/* The same for seconds: a finite number in (0, hi] (NaN, inf and 1e999 refused). */
int kgc_seconds_option(const char *cmd, const char *opt, const char *value, double hi,
                       double *out);
/* A single-valued option given again: "cmd: opt given twice" and KGC_USAGE when *slot is
 * already set, else stores value in *slot and returns KGC_OK. */
int kgc_set_once(const char *cmd, const char *opt, const char **slot, const char *value);
/* The bounds: threads (the runtime's KG_MAX_THREADS, kgen.h), timed calls and samples, tokens
 * (a per-call size is an int32 at most), and the longest --min-time. */
enum { KGC_MAX_THREADS = KG_MAX_THREADS, KGC_MAX_RUNS = 1000000, KGC_MAX_TOKENS = 2147483647 };
#define KGC_MAX_SECONDS 3600.0
/* Whether path can be written as a file (its folder exists and is writable, and it is not a
 * folder); KGC_OK, or one line "cmd: opt PATH: cannot write (reason)" and KGC_USAGE. Checked at
 * the door so a long run does not end in a refusal. */
int kgc_writable(const char *cmd, const char *opt, const char *path);
/* Whether path can be an output folder: missing (made later), or a folder kgen may write in;
 * KGC_OK, or "cmd: opt PATH: cannot write (reason)" and KGC_USAGE (a regular file there gives
 * "Not a directory"). */
int kgc_folder_writable(const char *cmd, const char *opt, const char *path);
/* Seconds on the monotonic clock. */
double kgc_now(void);

/* ---- tensor-parallel ranks (ranks.c) -------------------------------------------------------- */

/* How a command runs as a group of tp ranks: rank r of tp, over MPI (one process a rank) or
 * as threads of this process; threads: the kernel threads a rank gets when --threads does
 * not say (the default split over the ranks that share the process). */
typedef struct kgc_rank { int rank, tp, mpi, threads; } kgc_rank;
typedef int kgc_rank_fn(const kgc_rank *r, void *arg);

/* Runs fn on each rank of tp with its communicator bound to its thread (kgen/coll.h): under
 * mpirun (found from its environment) one rank a process, MPI's world size having to be tp;
 * else tp threads of this process (tp 1: fn on the calling thread). Ranks other than 0 are
 * quiet (kgc_quiet). Returns rank 0's exit code, or another's if rank 0's is KGC_OK; errors
 * of the launch itself printed (cmd and opt name the command and its option giving tp) with
 * their exit code. */
int kgc_ranks_run(const char *cmd, const char *opt, long tp, kgc_rank_fn *fn, void *arg);
/* kgen bench --coll (bench_coll.c): the all-reduce's latency over --ranks N (default 2) */
int kgc_bench_coll(int argc, char **argv);

/* A spec's kernels: the manifest, and (if asked for) each kernel's C text and the file name
 * compile errors are reported against, in manifest order. */
typedef struct kgc_kernels {
    kg_manifest *m;
    char **text, **label;
    double seconds;      /* how long generating (or reading) took */
    int generated;       /* 1: generated in memory from a spec; 0: read from a folder */
} kgc_kernels;

/* SOURCE is a spec file (generated in memory) or a generated folder (its manifest.json and,
 * with texts, the kernel files it lists). Returns KGC_OK or an exit code, the error printed. */
int kgc_kernels_load(const char *source, int texts, kgc_kernels *ks);
void kgc_kernels_free(kgc_kernels *ks);

#endif
