/* tests/util/compare.h: the comparator of the upstream tests (maxAllClose, "max" mode), exact
 * equality checks for integer outputs, and the JIT-against-AOT byte check. Each returns 1 on pass,
 * 0 on fail, and writes a one-line message naming the worst (or first) failing element; msg may
 * be NULL. */
#ifndef KGT_COMPARE_H
#define KGT_COMPARE_H

#include <stddef.h>
#include <stdint.h>

/* Pass iff the finite/non-finite pattern of got matches want (NaN with NaN, +inf with +inf,
 * -inf with -inf) and, for every finite pair, |got - want| <= atol + rtol * M, where M is the
 * max |want| over finite want values (one number for the whole array). Differences are taken
 * in double. On pass msg gets a summary (max |diff| and the bound); on fail:
 *   worst at [i]: got G want W |diff| D > bound B (rtol R atol A, max|want| M); K of N ...
 * or, when the pattern differs, the first index where it does. */
int kgt_allclose(const float *got, const float *want, long n, double rtol, double atol,
                 char *msg, size_t msglen);

/* kgt_allclose over a C-order array of the given shape; messages print multi-indices. */
int kgt_allclose_shaped(const float *got, const float *want, int rank, const long *shape,
                        double rtol, double atol, char *msg, size_t msglen);

/* Exact equality; on fail msg names the first mismatch and counts the rest. */
int kgt_equal_u8(const unsigned char *got, const unsigned char *want, long n, char *msg,
                 size_t msglen);
int kgt_equal_i32(const int32_t *got, const int32_t *want, long n, char *msg, size_t msglen);
int kgt_equal_i64(const int64_t *got, const int64_t *want, long n, char *msg, size_t msglen);

/* ---- JIT against AOT ------------------------------------------------------------------------- */
/* The two builds of a kernel run on the same inputs into buffers that start as different bytes:
 * an element neither build writes then differs between them, so a kernel that refuses or does
 * nothing cannot pass by leaving two identical buffers untouched. */
enum { KGT_AOT, KGT_JIT };
/* The byte a build's output buffers start as (0xA5 for KGT_AOT, 0x5A for KGT_JIT). */
int kgt_fill_byte(int build);
/* bytes bytes of build's fill byte (one byte at least); malloc'd. */
void *kgt_filled(size_t bytes, int build);

/* got (the JIT build's output, started as kgt_filled(.., KGT_JIT)) against want (the AOT build's,
 * started as KGT_AOT bytes): n elements of w bytes each, only those the call must write. Pass iff
 * n > 0, the two are the same bytes and not all zero. On fail msg names the first differing
 * element and how many elements each build left unwritten (still its fill). Each call counts
 * in kgt_builds_compared. */
int kgt_builds_equal(const void *got, const void *want, long n, size_t w, char *msg,
                     size_t msglen);
/* How many kgt_builds_equal calls this process made: a JIT-vs-AOT loop asserts it grew. */
long kgt_builds_compared(void);

/* Writes the C-order multi-index of flat index i as "[a, b, c]" ("[]" for rank 0). */
void kgt_unravel(long i, int rank, const long *shape, char *buf, size_t len);

#endif /* KGT_COMPARE_H */
