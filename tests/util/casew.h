/* tests/util/casew.h: writes a synthetic vector case in the shared/vectors format (case.json and
 * one .npy per array) into a temp folder, so an adapter is proven on an option, input convention
 * or dtype that the shared sample has no case of. Failures assert (Criterion). */
#ifndef KGT_CASEW_H
#define KGT_CASEW_H

#include "kgen/npy.h"

typedef struct kgt_casew kgt_casew;

/* A new case `name` of kernel `kernel` in a fresh folder under /tmp. */
kgt_casew *kgt_casew_new(const char *kernel, const char *name);

/* Options ("options" of case.json). */
void kgt_casew_opt_str(kgt_casew *w, const char *key, const char *val);
void kgt_casew_opt_num(kgt_casew *w, const char *key, double val);
void kgt_casew_opt_bool(kgt_casew *w, const char *key, int val);

/* An input stored as float32 with case.json dtype `dtype` ("bf16", "f32", "fp8_e4m3", ...): the
 * caller gives values already on that dtype's grid. */
void kgt_casew_input(kgt_casew *w, const char *name, const char *dtype, const float *x,
                     int rank, const long *shape);
/* An input stored as it is in a (integers: dtype "i32", "u32", ...). */
void kgt_casew_input_npy(kgt_casew *w, const char *name, const char *dtype, const kg_npy *a);
/* "list_inputs"[name] = [name_0, ..., name_{n-1}] (the elements added with kgt_casew_input). */
void kgt_casew_list(kgt_casew *w, const char *name, int n);

/* An expected output (float32) with its "tolerance" entry (max mode). */
void kgt_casew_output(kgt_casew *w, const char *name, const float *x, int rank,
                      const long *shape, double rtol, double atol);

/* Writes case.json; returns the case folder (owned by w). */
const char *kgt_casew_finish(kgt_casew *w);

/* Removes the folder and its files, and frees w. */
void kgt_casew_free(kgt_casew *w);

#endif /* KGT_CASEW_H */
