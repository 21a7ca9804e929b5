/* cli.h: the kgen subcommands (each a thin front end over the generator and runtime). Each
 * returns the process exit code: 0 ok, 1 failure, 2 usage or spec error. */
#ifndef KGEN_CLI_H
#define KGEN_CLI_H

enum { KGC_OK = 0, KGC_FAIL = 1, KGC_USAGE = 2 };

int kgc_generate(int argc, char **argv);
int kgc_check(int argc, char **argv);
int kgc_list(int argc, char **argv);
int kgc_header(int argc, char **argv);
int kgc_exec(int argc, char **argv);
int kgc_run(int argc, char **argv);
int kgc_bench(int argc, char **argv);

/* Prints "kgen: <message>" to stderr and returns code. */
int kgc_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The exit code for a KG_* status: spec, shape and I/O problems are the user's (2). */
int kgc_exit_for(int status);

#endif
