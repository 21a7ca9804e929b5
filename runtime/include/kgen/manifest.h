/* kgen/manifest.h: the reader of a generated folder's manifest.json (kg_manifest_ prefix).
 * The manifest is what tools know of a spec's kernels: each kernel's identity, its per-call
 * sizes (nominal value, token axis), its arguments (dtype, symbolic shape, how to fill them),
 * and its cost block, at the nominal sizes and as a polynomial in the tokens of a call.
 * Every count and size read is bounded; a bad manifest gives one line naming the file and the
 * field. */
#ifndef KGEN_MANIFEST_H
#define KGEN_MANIFEST_H

#include <stddef.h>

#include "kgen/kgen.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KG_MANIFEST_MAX_KERNELS 4096
#define KG_MANIFEST_MAX_ARGS 24
#define KG_MANIFEST_MAX_CALLS 4
#define KG_MANIFEST_MAX_RANK 8
#define KG_MANIFEST_MAX_DIM (1L << 40)
#define KG_MANIFEST_MAX_LIST 63 /* elements of a list argument (masks of unsigned long bits) */
/* The largest manifest.json kg_manifest_load reads (4096 kernels take a few MiB). */
#define KG_MANIFEST_MAX_BYTES ((size_t)64 << 20)

/* How a per-call size moves with the tokens of a call: at T tokens batch axes are 1 and
 * sequence axes T; other sizes keep their nominal value. */
enum { KG_AXIS_NONE = 0, KG_AXIS_BATCH, KG_AXIS_SEQ };
enum { KG_ARG_IN = 0, KG_ARG_OUT, KG_ARG_INOUT };
enum { KG_COST_FLOPS = 0, KG_COST_READ, KG_COST_WRITTEN };

typedef struct kg_manifest_call {
    char name[16];
    long nominal;       /* the value the cost block and the buffers of tools are sized for */
    int tokens;         /* KG_AXIS_* */
} kg_manifest_call;

/* One axis of a shape: the constant `value` (call < 0) or per-call size `call`; `lead` (first
 * axis only): any leading axes whose product is that size ("...rows"). */
typedef struct kg_manifest_dim { long value; int call, lead; } kg_manifest_dim;

typedef struct kg_manifest_arg {
    char name[64], dtype[32], init[32]; /* init: how tools fill it (normal, scale, slots) */
    int dir;                            /* KG_ARG_* */
    int used;                           /* 0: the kernel ignores it (may be NULL) */
    int scalar;                         /* element 0 is read, whatever the shape */
    int first_row;                      /* rows identical: any leading axes, row 0 is read */
    int weight, wt_mx;                  /* a packed kg_wt, stored in wt_layout (MX scales) */
    char wt_layout[24];
    int rank;
    kg_manifest_dim shape[KG_MANIFEST_MAX_RANK]; /* of one element, for a list */
    /* list > 0: the argument is an array of `list` pointers (one a layer), each to a tensor of
     * this shape; elements outside list_given are NULL, those in list_alt are stored in
     * alt_dtype instead of dtype */
    int list;
    unsigned long list_given, list_alt;
    char alt_dtype[32];
} kg_manifest_arg;

typedef struct kg_manifest_kernel {
    const char *symbol, *family, *problem;
    const char *file, *template_name;   /* <symbol>.c beside the manifest; templates/<f>.c.in */
    int ncalls, nargs;
    kg_manifest_call calls[KG_MANIFEST_MAX_CALLS];
    kg_manifest_arg args[KG_MANIFEST_MAX_ARGS];
    double cost[3];                     /* KG_COST_*, per call at the nominal sizes */
    double cost_tokens[3][3];           /* KG_COST_* -> c0 + c1 T + c2 T^2 at T tokens */
} kg_manifest_kernel;

typedef struct kg_manifest {
    const char *spec, *spec_file;
    const char *source;                 /* the file it was read from (or the label given) */
    int nkernels;
    kg_manifest_kernel *kernels;
} kg_manifest;

/* Reads DIR/manifest.json. Returns KG_OK, KG_EIO (cannot open; not a regular file: a FIFO or a
 * directory is refused without blocking; over KG_MANIFEST_MAX_BYTES, refused before anything
 * is allocated) or KG_ESPEC (malformed), with "<file>: <field>: <why>" in err. */
int kg_manifest_load(const char *dir, kg_manifest **m, char *err, size_t errlen);
/* Parses manifest text (e.g. what kgen generates in memory); label names it in errors. */
int kg_manifest_parse(const char *text, size_t len, const char *label, kg_manifest **m,
                      char *err, size_t errlen);
void kg_manifest_free(kg_manifest *m);

const kg_manifest_kernel *kg_manifest_find(const kg_manifest *m, const char *symbol);
/* The registry's view of a kernel (strings borrowed from the manifest). */
kg_kernel_info kg_manifest_info(const kg_manifest_kernel *k);

/* The per-call sizes of a call at `tokens` tokens (0: the nominal sizes), in call order. */
void kg_manifest_sizes(const kg_manifest_kernel *k, long tokens, long *n);
/* The tokens a call at sizes n processes: the product of its batch axes times its first
 * sequence axis; 0 if it has no sequence axis; LONG_MAX if the product passes a long (never at
 * a manifest's nominal sizes: the reader refuses a kernel whose nominal tokens pass 2^40). */
long kg_manifest_tokens(const kg_manifest_kernel *k, const long *n);
/* The cost block (KG_COST_*) of a call at `tokens` tokens, from the polynomial. */
void kg_manifest_cost(const kg_manifest_kernel *k, long tokens, double cost[3]);
/* An argument's shape at sizes n ("...rows" becomes one axis of rows); returns its rank. */
int kg_manifest_shape(const kg_manifest_arg *a, const long *n, long *shape);

#ifdef __cplusplus
}
#endif
#endif /* KGEN_MANIFEST_H */
