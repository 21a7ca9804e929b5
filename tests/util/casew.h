/* tests/util/casew.h: writes a synthetic vector case in the shared/vectors format (case.json and
 * one .npy per array) into a temp folder, so an adapter is proven on an option, input convention
 * or dtype that the shared sample has no case of. Failures assert (Criterion). */
#ifndef KGT_CASEW_H
#define KGT_CASEW_H

#include <stdint.h>

#include "kgen/npy.h"

typedef struct kgt_casew kgt_casew;

/* A new case `name` of kernel `kernel` in a fresh folder under /tmp. */
kgt_casew *kgt_casew_new(const char *kernel, const char *name);

/* Options ("options" of case.json). */
void kgt_casew_opt_str(kgt_casew *w, const char *key, const char *val);
void kgt_casew_opt_num(kgt_casew *w, const char *key, double val);
void kgt_casew_opt_bool(kgt_casew *w, const char *key, int val);
/* Any JSON value given as text (a pair [[0, 0], [1, 2]], null, ...). */
void kgt_casew_opt_json(kgt_casew *w, const char *key, const char *json);

/* An input stored as float32 with case.json dtype `dtype` ("bf16", "f32", "fp8_e4m3", ...): the
 * caller gives values already on that dtype's grid. */
void kgt_casew_input(kgt_casew *w, const char *name, const char *dtype, const float *x,
                     int rank, const long *shape);
/* An input stored as it is in a (integers: dtype "i32", "u32", ...). */
void kgt_casew_input_npy(kgt_casew *w, const char *name, const char *dtype, const kg_npy *a);
/* "list_inputs"[name] = [name_0, ..., name_{n-1}] (the elements added with kgt_casew_input). */
void kgt_casew_list(kgt_casew *w, const char *name, int n);

/* How kgt_casew_wt stores a quantized weight (the representations kgt_case_wt reads). */
enum kgt_wrep {
    KGT_WREP_WORDS,     /* x4 words as uint32, dtype the format's x4 name; scales u8, stored */
    KGT_WREP_WORDS_I32, /* the same words as int32 (negative past 2^31), dtype "i32" */
    KGT_WREP_LOGICAL,   /* float32 values [K, N]; scales float32, logical [ceil(K/kb), N] */
    KGT_WREP_UNPACKED,  /* float32 values in the stored shape (x4 layouts: [..words.., 4]);
                           scales float32, stored */
    KGT_WREP_COUNT
};

/* The weight of codes [K, N] (kgt_wt_store's codes) in format fmt and stored layout, as input
 * `name` in representation rep, with its E8M0 scales e8 (NULL: none; one per logical block,
 * as kgt_wt_store takes them) as input scale_name. */
void kgt_casew_wt(kgt_casew *w, const char *name, const char *scale_name, int fmt, int layout,
                  long K, long N, const uint32_t *codes, const uint8_t *e8, int rep);

/* E random MX experts W_e [K, N] (format fmt: e4m3fn, e5m2, e2m1; stored in `layout`, e.g.
 * moe_mx_gate_up or mlp_mx_down) as inputs `name`, their x4 words [E, ..stored..] as uint32
 * with the format's x4 dtype, and `scale_name`, the E8M0 scales [E, ..stored..] as uint8;
 * their logical values (code times scale) into vals [E, K, N]. */
void kgt_casew_mx_experts(kgt_casew *w, const char *name, const char *scale_name, int fmt,
                          int layout, long E, long K, long N, float *vals,
                          unsigned long long seed);

/* A gate/up bias b [E, 2, I] as input `name` (dtype: "bf16", ...) in upstream's MX arrangement
 * [E, I_p, 2, ceil(I/512), 4] (kgt_case_mx_gate_up_bias reads it back). */
void kgt_casew_mx_gate_up_bias(kgt_casew *w, const char *name, const char *dtype,
                               const float *b, long E, long I);

/* An expected output (float32) with its "tolerance" entry (max mode). */
void kgt_casew_output(kgt_casew *w, const char *name, const float *x, int rank,
                      const long *shape, double rtol, double atol);

/* Writes case.json; returns the case folder (owned by w). */
const char *kgt_casew_finish(kgt_casew *w);

/* Removes the folder and its files, and frees w. */
void kgt_casew_free(kgt_casew *w);

#endif /* KGT_CASEW_H */
