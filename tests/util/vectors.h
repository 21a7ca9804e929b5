/* tests/util/vectors.h: one test case of shared/vectors/<kernel>/<case>/ — case.json (options,
 * input dtypes, tolerances) and its .npy arrays, loaded on first use. */
#ifndef KGT_VECTORS_H
#define KGT_VECTORS_H

#include <stddef.h>
#include "kgen/npy.h"

typedef struct kgt_case kgt_case;

/* The shared folder: $KGEN_SHARED_DIR if set and non-empty, else the KGEN_SHARED_DIR macro. */
const char *kgt_shared_dir(void);

/* ---- cases of one kernel -------------------------------------------------------------------- */
/* Lists the sub-folders of kernel_dir that hold a case.json, sorted by strcmp so the test order
 * is deterministic. Returns 0 (names malloc'd, free with kgt_case_list_free) or -1 if the folder
 * cannot be read (then *names = NULL, *count = 0). */
int kgt_case_list(const char *kernel_dir, char ***names, int *count);
void kgt_case_list_free(char **names, int count);

/* ---- one case ------------------------------------------------------------------------------- */
/* Parses dir/case.json. Returns NULL with a one-line message in err on failure. */
kgt_case *kgt_case_load(const char *dir, char *err, size_t errlen);
void kgt_case_free(kgt_case *c);

/* The "case" field of case.json (the folder's base name if it has none). */
const char *kgt_case_name(const kgt_case *c);

/* The array NAME.npy of an input listed in case.json "inputs" (list arguments are listed by
 * element: NAME_0, NAME_1, ...), read on first use and owned by the case. NULL if the name is
 * not listed or the file cannot be read (kgt_case_error then says why). */
const kg_npy *kgt_case_input(const kgt_case *c, const char *name);
/* The same for an expected output, by its full name as listed in "outputs" ("out_out"). */
const kg_npy *kgt_case_output(const kgt_case *c, const char *out_name);
/* Why the last kgt_case_input/kgt_case_output returned NULL ("" if it did not). */
const char *kgt_case_error(const kgt_case *c);

/* The "dtype" of an input in case.json ("bf16", "f32", "fp8_e4m3", "i32", ...), or NULL. */
const char *kgt_case_input_dtype(const kgt_case *c, const char *name);

/* Options: 1 and *val set if key is present in "options" with that JSON type, else 0.
 * A number is an integer or a real (not a boolean). */
int kgt_case_opt_str(const kgt_case *c, const char *key, const char **val);
int kgt_case_opt_num(const kgt_case *c, const char *key, double *val);
int kgt_case_opt_bool(const kgt_case *c, const char *key, int *val);

/* The tolerance of output out_name: the "tolerance" entry whose key equals out_name, else the
 * most specific wildcard key matching it ('*' matches any run of characters; the key with the
 * most literal characters wins, then the first listed). Returns 1 with rtol/atol set (upstream
 * defaults 1e-5/1e-8 for a missing field); returns 0 with both 0 if the entry says "exact" or
 * the output is not listed or has no entry. */
int kgt_case_tol(const kgt_case *c, const char *out_name, double *rtol, double *atol);

/* ---- what a test compared ------------------------------------------------------------------ */
/* Records that the test compared its kernel's output with the expected output out_name
 * (kgt_close_to_case records what it compares itself). */
void kgt_case_compared(const kgt_case *c, const char *out_name);
/* The first output listed in "outputs" that has a "tolerance" entry (a bound or "exact") and was
 * not recorded as compared, or NULL. kgt_each_case asserts NULL after each case, so a test that
 * skips an output, or compares none, fails. */
const char *kgt_case_uncompared(const kgt_case *c);

#endif /* KGT_VECTORS_H */
