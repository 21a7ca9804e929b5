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

/* The "dtype" of an input in case.json ("bf16", "f32", "fp8_e4m3", "i32", ...), or NULL. A
 * look-up of the name only: it does not count as the adapter reading the input. */
const char *kgt_case_input_dtype(const kgt_case *c, const char *name);

/* The kg_dtype an input's values are on (conventions.json: "bf16", "f32", "fp16", "fp8_e4m3",
 * "fp8_e4m3fn", "fp8_e5m2", "u8", "i32", "i64", "u32"; "f16"/"fp32" accepted as spellings), or
 * -1 if the input is not listed or its dtype is none of these (kgt_case_error says which). */
int kgt_case_dtype(const kgt_case *c, const char *name);
/* The same mapping for a dtype name given elsewhere (an option such as output_dtype); -1 if
 * unknown. */
int kgt_case_dtype_from_name(const char *dtype);

/* The narrowest of bf16, fp16, f32 that holds the values of every listed one of the n inputs
 * exactly (bf16 and fp8 values fit bf16, fp16 values fp16, a bf16/fp16 mix or f32 needs f32):
 * the kernel dtype that sees exactly what the golden saw. Unlisted (or NULL) names are skipped;
 * -1 if none is listed, or one is not a float dtype (kgt_case_error says which). */
int kgt_case_float_dtype(const kgt_case *c, const char *const *names, int n);

/* The input `name` read (kgt_case_input) and converted to t (KG_F32, KG_U8, KG_I32, KG_U32 or
 * KG_I64), malloc'd with kg_npy_count elements (one at least): from any stored dtype, each value
 * checked to be exactly representable (a float stored for an integer argument must be a whole
 * number in range; an integer for an f32 one at most 2^24 in magnitude). NULL with
 * kgt_case_error naming the input, element and value otherwise. */
void *kgt_case_as(const kgt_case *c, const char *name, kg_dtype t);

/* ---- list inputs (per-layer weights, summed inputs) ---------------------------------------- */
/* How many elements the list argument `name` has: the length of "list_inputs"[name] if the case
 * has one, else how many of NAME_0, NAME_1, ... are listed in "inputs" in a row; 0 if none. */
int kgt_case_list_len(const kgt_case *c, const char *name);
/* Element i of the list argument `name` (its listed name, or NAME_i), as kgt_case_input. */
const kg_npy *kgt_case_list_input(const kgt_case *c, const char *name, int i);
/* The name of element i of list `name` (for kgt_case_as and messages): static storage, valid
 * until the next call. */
const char *kgt_case_list_name(const kgt_case *c, const char *name, int i);

/* 1 if case.json lists an expected output out_name. */
int kgt_case_has_output(const kgt_case *c, const char *out_name);

/* Options: 1 and *val set if key is present in "options" with that JSON type, else 0.
 * A number is an integer or a real (not a boolean). Each call records the key as read by the
 * adapter (found or not), for kgt_case_unmapped. */
int kgt_case_opt_str(const kgt_case *c, const char *key, const char **val);
int kgt_case_opt_num(const kgt_case *c, const char *key, double *val);
int kgt_case_opt_bool(const kgt_case *c, const char *key, int *val);
/* A number or a (nested) array of numbers, e.g. padding [[0, 0], [1, 2]], flattened in order
 * into val[0..max): the count (0 if absent), or -1 if it holds anything else or more than max. */
int kgt_case_opt_nums(const kgt_case *c, const char *key, double *val, int max);
/* 1 if key is present in "options" (any type); records it as read. For a key an adapter knows
 * to have no numeric effect on a CPU (hardware scheduling: say so where it is called). */
int kgt_case_opt_has(const kgt_case *c, const char *key);

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

/* What the adapter left unmapped: the first key of "options" it never asked for (kgt_case_opt_*)
 * or input listed in "inputs" it never read (kgt_case_input, kgt_case_list_input,
 * kgt_case_as), as "option 'KEY' (= VALUE)" or "input 'NAME'" in buf. Returns 1 if there is
 * one, else 0 (buf ""). kgt_each_case fails a case that has one: an option or input the
 * adapter does not know is a failure, never silently dropped. */
int kgt_case_unmapped(const kgt_case *c, char *buf, size_t len);

#endif /* KGT_VECTORS_H */
