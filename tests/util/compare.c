/* tests/util/compare.c: the upstream maxAllClose comparator ("max" mode), exact equality and
 * the JIT-against-AOT byte check, each failing with a message that names the worst or first bad
 * element. */
#include "util/compare.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Formats into msg if the caller gave one. */
static void say(char *msg, size_t msglen, const char *fmt, ...)
{
    if (!msg || !msglen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
}

void kgt_unravel(long i, int rank, const long *shape, char *buf, size_t len)
{
    size_t n = 0;
    if (!buf || !len)
        return;
    n += (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < rank && n < len; d++) {
        long stride = 1;
        for (int e = d + 1; e < rank; e++)
            stride *= shape[e] > 0 ? shape[e] : 1;
        long k = i / stride;
        if (d > 0 && shape[d] > 0)
            k %= shape[d];
        n += (size_t)snprintf(buf + n, len - n, d ? ", %ld" : "%ld", k);
    }
    if (n < len)
        snprintf(buf + n, len - n, "]");
}

/* An element's index as text: flat "[i]" when rank < 0, else the multi-index. */
static void index_text(long i, int rank, const long *shape, char *buf, size_t len)
{
    if (rank < 0)
        snprintf(buf, len, "[%ld]", i);
    else
        kgt_unravel(i, rank, shape, buf, len);
}

/* Whether a and b fall in the same class: both finite, both NaN, or the same infinity. */
static int same_class(float a, float b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    if (isinf(a) || isinf(b))
        return a == b;
    return 1;
}

/* The max of |want| over its finite elements (0 if none): the scale of the rtol term. */
static double max_finite_abs(const float *want, long n)
{
    double m = 0;
    for (long i = 0; i < n; i++)
        if (isfinite(want[i]) && fabs((double)want[i]) > m)
            m = fabs((double)want[i]);
    return m;
}

/* The comparator proper; rank < 0 means "print flat indices". One pass counts the failing
 * elements, remembers the first pattern mismatch and the largest finite difference. */
static int allclose(const float *got, const float *want, long n, int rank, const long *shape,
                    double rtol, double atol, char *msg, size_t msglen)
{
    double m = max_finite_abs(want, n), bound = atol + rtol * m, worst_diff = -1;
    long first_pattern = -1, worst = -1, out = 0;
    for (long i = 0; i < n; i++) {
        if (!same_class(got[i], want[i])) {
            out++;
            if (first_pattern < 0)
                first_pattern = i;
            continue;
        }
        if (!isfinite(want[i]))
            continue;
        double diff = fabs((double)got[i] - (double)want[i]);
        out += !(diff <= bound);
        if (diff > worst_diff)
            worst_diff = diff, worst = i;
    }
    char at[160];
    if (first_pattern >= 0) {
        index_text(first_pattern, rank, shape, at, sizeof at);
        say(msg, msglen, "finite/non-finite pattern differs first at %s: got %.9g want %.9g; "
            "%ld of %ld elements out", at, got[first_pattern], want[first_pattern], out, n);
        return 0;
    }
    if (worst < 0) {
        say(msg, msglen, "ok: %ld elements, no finite pair to compare", n);
        return 1;
    }
    index_text(worst, rank, shape, at, sizeof at);
    if (out == 0) {
        say(msg, msglen, "ok: max |diff| %.6g at %s <= bound %.6g (rtol %g atol %g, max|want| "
            "%.6g)", worst_diff, at, bound, rtol, atol, m);
        return 1;
    }
    say(msg, msglen, "worst at %s: got %.9g want %.9g |diff| %.6g > bound %.6g (rtol %g atol %g, "
        "max|want| %.6g); %ld of %ld elements out", at, got[worst], want[worst], worst_diff,
        bound, rtol, atol, m, out, n);
    return 0;
}

int kgt_allclose(const float *got, const float *want, long n, double rtol, double atol,
                 char *msg, size_t msglen)
{
    return allclose(got, want, n, -1, NULL, rtol, atol, msg, msglen);
}

int kgt_allclose_shaped(const float *got, const float *want, int rank, const long *shape,
                        double rtol, double atol, char *msg, size_t msglen)
{
    long n = 1;
    for (int d = 0; d < rank; d++)
        n *= shape[d];
    return allclose(got, want, n, rank, shape, rtol, atol, msg, msglen);
}

/* Shared tail of the exact checks: the verdict and message given the first mismatch. */
static int equal_verdict(long first, long out, long n, long long g, long long w, char *msg,
                         size_t msglen)
{
    if (first < 0) {
        say(msg, msglen, "ok: %ld elements equal", n);
        return 1;
    }
    say(msg, msglen, "first mismatch at [%ld]: got %lld want %lld; %ld of %ld elements differ",
        first, g, w, out, n);
    return 0;
}

/* One exact comparison loop per element type, all ending in equal_verdict. */
#define EQUAL_BODY(got, want, n, msg, msglen)                                                  \
    long first = -1, out = 0;                                                                  \
    for (long i = 0; i < (n); i++)                                                             \
        if ((got)[i] != (want)[i] && out++ == 0)                                               \
            first = i;                                                                         \
    return equal_verdict(first, out, (n), first < 0 ? 0 : (long long)(got)[first],           \
                         first < 0 ? 0 : (long long)(want)[first], (msg), (msglen))

int kgt_equal_u8(const unsigned char *got, const unsigned char *want, long n, char *msg,
                 size_t msglen)
{
    EQUAL_BODY(got, want, n, msg, msglen);
}

int kgt_equal_i32(const int32_t *got, const int32_t *want, long n, char *msg, size_t msglen)
{
    EQUAL_BODY(got, want, n, msg, msglen);
}

int kgt_equal_i64(const int64_t *got, const int64_t *want, long n, char *msg, size_t msglen)
{
    EQUAL_BODY(got, want, n, msg, msglen);
}

/* ---- JIT against AOT ------------------------------------------------------------------------- */

/* Neither byte is zero, and they differ in every bit, so no element reads the same in both. */
int kgt_fill_byte(int build)
{
    return build == KGT_JIT ? 0x5a : 0xa5;
}

void *kgt_filled(size_t bytes, int build)
{
    size_t n = bytes ? bytes : 1;
    void *p = malloc(n);
    return p ? memset(p, kgt_fill_byte(build), n) : NULL;
}

/* Whether the w bytes at p all equal byte. */
static int all_bytes(const unsigned char *p, size_t w, int byte)
{
    for (size_t i = 0; i < w; i++)
        if (p[i] != byte)
            return 0;
    return 1;
}

/* Up to 8 bytes of an element as hex, lowest address first. */
static void hex_text(const unsigned char *p, size_t w, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < w && i < 8 && n + 3 < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%02x", p[i]);
}

static long builds_compared;

long kgt_builds_compared(void)
{
    return builds_compared;
}

/* One pass counts the differing elements and those each build left as its fill; a pair of
 * outputs that are all zero bytes passes no JIT-vs-AOT check (nothing was computed). */
int kgt_builds_equal(const void *got, const void *want, long n, size_t w, char *msg,
                     size_t msglen)
{
    const unsigned char *g = got, *h = want;
    long first = -1, differ = 0, left_jit = 0, left_aot = 0, zero = 0;
    builds_compared++;
    if (n <= 0 || w == 0) {
        say(msg, msglen, "nothing to compare (%ld elements of %zu bytes)", n, w);
        return 0;
    }
    for (long i = 0; i < n; i++) {
        const unsigned char *gi = g + (size_t)i * w, *hi = h + (size_t)i * w;
        left_jit += all_bytes(gi, w, kgt_fill_byte(KGT_JIT));
        left_aot += all_bytes(hi, w, kgt_fill_byte(KGT_AOT));
        zero += all_bytes(hi, w, 0);
        if (memcmp(gi, hi, w) != 0 && differ++ == 0)
            first = i;
    }
    if (differ) {
        char gx[24], hx[24];
        hex_text(g + (size_t)first * w, w, gx, sizeof gx);
        hex_text(h + (size_t)first * w, w, hx, sizeof hx);
        say(msg, msglen, "JIT (got) and AOT (want) differ first at element [%ld]: bytes %s vs "
            "%s; %ld of %ld elements differ; left unwritten (still the fill): %ld by JIT, %ld by "
            "AOT", first, gx, hx, differ, n, left_jit, left_aot);
        return 0;
    }
    if (zero == n) {
        say(msg, msglen, "all %ld elements are zero bytes in both builds: nothing was computed",
            n);
        return 0;
    }
    say(msg, msglen, "ok: %ld elements of %zu bytes identical", n, w);
    return 1;
}
