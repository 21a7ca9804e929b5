/* test_prim_loss.c: the training rows' primitives (kgen/abi.h KGP_LIST_LOSS) of every ISA this
 * CPU runs against their scalar references (prim_loss.c): lse_* within fp32 reordering (and
 * against a double-precision log-sum-exp, within the exponential's error), ce_grad_* and dwconv_f32 bit for bit, in place
 * too, on odd sizes, block remainders and special values (-inf rows, NaN, large logits); no
 * write past n. */
#include <criterion/criterion.h>

#include <math.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/dtype.h"
#include "kgen/kgen.h"
#include "prim.h"

static const char *const ISAS[] = { "avx2", "avx512" };
/* around vectors (8, 16), 2048 and the SIMD lse's block (8192) and its multiples */
static const long SIZES[] = { 0, 1, 7, 15, 16, 17, 33, 100, 2047, 2048, 2049, 4096 + 31, 9000,
                              8192 * 2 + 65 };
enum { NMAX = 8192 * 2 + 65, PAD = 32 };

typedef void lse_f32_fn(float *, const float *, long);
typedef void lse_bf16_fn(float *, const kg_u16 *, long);
typedef void grad_f32_fn(float *, const float *, float, float, long);
typedef void grad_bf16_fn(kg_u16 *, const kg_u16 *, float, float, long);
typedef void dwconv_fn(float *, const float *, long, const float *, long, long, long);
typedef void dwconv_bf16_fn(kg_u16 *, const kg_u16 *, long, const float *, long, long, long);

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static float normal(uint64_t *s)
{
    double u1 = ((double)(rnd(s) >> 11) + 0.5) / 9007199254740992.0;
    double u2 = (double)(rnd(s) >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* logits of scale sc, bf16-exact (so the f32 and bf16 rows hold the same values) */
static void fill(float *x, kg_u16 *xb, long n, float sc, uint64_t *s)
{
    for (long i = 0; i < n; i++) {
        xb[i] = kg_f32_to_bf16(sc * normal(s));
        x[i] = kg_bf16_to_f32(xb[i]);
    }
}

static int same_bits(const void *a, const void *b, size_t n) { return memcmp(a, b, n) == 0; }

/* ---- lse -------------------------------------------------------------------------------------- */

/* log-sum-exp of x in double, the truth both versions approximate */
static double lse_double(const float *x, long n)
{
    double m = -INFINITY, d = 0.0;
    for (long i = 0; i < n; i++)
        if (x[i] > m)
            m = x[i];
    for (long i = 0; i < n; i++)
        d += exp((double)x[i] - m);
    return m + log(d);
}

/* Runs the online steps over x in pieces of `piece` values from (-inf, 0); returns m + ln d. */
static float lse_pieces(lse_f32_fn *f, lse_bf16_fn *fb, const float *x, const kg_u16 *xb,
                        long n, long piece)
{
    float md[2] = { -INFINITY, 0.0f };
    for (long i = 0; i < n; i += piece) {
        long k = n - i < piece ? n - i : piece;
        if (f)
            f(md, x + i, k);
        else
            fb(md, xb + i, k);
    }
    return md[0] + logf(md[1]);
}

Test(prim_loss, lse_matches_scalar_and_double)
{
    static float x[NMAX];
    static kg_u16 xb[NMAX];
    uint64_t s = 42;
    int compared = 0;
    for (size_t k = 0; k < sizeof ISAS / sizeof ISAS[0]; k++) {
        lse_f32_fn *f = kgr_prim_impl(ISAS[k], "lse_f32");
        lse_bf16_fn *fb = kgr_prim_impl(ISAS[k], "lse_bf16");
        if (!f)
            continue;
        cr_assert(fb, "%s: lse_bf16 missing", ISAS[k]);
        for (size_t z = 1; z < sizeof SIZES / sizeof SIZES[0]; z++) {
            long n = SIZES[z];
            for (int sc = 1; sc <= 30; sc += 29) { /* N(0,1) logits, and spread ones */
                fill(x, xb, n, (float)sc, &s);
                double want = lse_double(x, n);
                for (long piece = 1; piece <= n; piece = piece * 7 + 1) {
                    float r[4] = {
                        lse_pieces(f, NULL, x, xb, n, piece),
                        lse_pieces(NULL, fb, x, xb, n, piece),
                        lse_pieces(kgp_lse_f32__scalar, NULL, x, xb, n, piece),
                        lse_pieces(NULL, kgp_lse_bf16__scalar, x, xb, n, piece),
                    };
                    /* f32 versions (0, 2): fp32 rounding; bf16 ones (1, 3): the degree-3
                     * exponential's 8.6e-5 relative error, an absolute one in ln d */
                    for (int j = 0; j < 4; j++)
                        cr_assert(fabs(r[j] - want) <= (j % 2 ? 9e-5 : 0.0) +
                                                           1e-5 * (fabs(want) + 1.0),
                                  "%s n=%ld piece=%ld scale=%d version %d: %.9g, want %.9g",
                                  ISAS[k], n, piece, sc, j, r[j], want);
                    /* the same exponential, summed in another order and relative to other
                     * maxima (which moves each term's error within its bound) */
                    for (int j = 0; j < 2; j++)
                        cr_assert(fabsf(r[j] - r[j + 2]) <=
                                      (j ? 1.8e-4f : 0.0f) + 4e-6f * (fabsf(r[j + 2]) + 1.0f),
                                  "%s n=%ld version %d: simd %.9g scalar %.9g", ISAS[k], n, j,
                                  r[j], r[j + 2]);
                    compared++;
                }
            }
        }
    }
    cr_assert_gt(compared, 0, "no SIMD ISA on this CPU");
}

/* -inf values count as nothing; a row of -inf leaves the state; NaN makes d NaN. */
Test(prim_loss, lse_special_values)
{
    static float x[NMAX];
    static kg_u16 xb[NMAX];
    const char *isas[] = { "scalar", "avx2", "avx512" };
    int ran = 0;
    for (size_t k = 0; k < 3; k++) {
        lse_f32_fn *f = kgr_prim_impl(isas[k], "lse_f32");
        lse_bf16_fn *fb = kgr_prim_impl(isas[k], "lse_bf16");
        if (!f)
            continue;
        ran++;
        for (long n = 1; n <= 4100; n += 1367) {
            for (long i = 0; i < n; i++)
                x[i] = -INFINITY, xb[i] = kg_f32_to_bf16(-INFINITY);
            float md[2] = { -INFINITY, 0.0f }, mb[2] = { 3.0f, 2.0f };
            f(md, x, n);
            fb(mb, xb, n);
            cr_assert(md[0] == -INFINITY && md[1] == 0.0f, "%s n=%ld: all -inf moved (%g, %g)",
                      isas[k], n, md[0], md[1]);
            cr_assert(mb[0] == 3.0f && mb[1] == 2.0f, "%s n=%ld: all -inf moved a state",
                      isas[k], n);
            x[n / 2] = 5.0f, xb[n / 2] = kg_f32_to_bf16(5.0f);
            f(md, x, n);
            /* the SIMD exp folds x log2 e - m log2 e into one FMA: 2^(a rounding residual) */
            cr_assert(md[0] == 5.0f && fabsf(md[1] - 1.0f) <= 2e-7f,
                      "%s n=%ld: one finite value gives (%g, %g)", isas[k], n, md[0], md[1]);
            x[n - 1] = NAN, xb[n - 1] = kg_f32_to_bf16(NAN);
            md[0] = -INFINITY, md[1] = 0.0f, mb[0] = -INFINITY, mb[1] = 0.0f;
            f(md, x, n);
            fb(mb, xb, n);
            cr_assert(isnan(md[1]) && isnan(mb[1]), "%s n=%ld: NaN lost (%g, %g)", isas[k], n,
                      md[1], mb[1]);
        }
    }
    cr_assert_gt(ran, 1);
}

/* A rising row: each SIMD block's max passes the running max by more than the single pass
 * allows (its terms would overflow), so each block is read again relative to its own max. */
Test(prim_loss, lse_rising_row)
{
    static float x[NMAX];
    static kg_u16 xb[NMAX];
    int compared = 0;
    for (long i = 0; i < NMAX; i++) {
        xb[i] = kg_f32_to_bf16(0.0625f * (float)i);
        x[i] = kg_bf16_to_f32(xb[i]);
    }
    double want = lse_double(x, NMAX);
    for (size_t k = 0; k < sizeof ISAS / sizeof ISAS[0]; k++) {
        lse_f32_fn *f = kgr_prim_impl(ISAS[k], "lse_f32");
        lse_bf16_fn *fb = kgr_prim_impl(ISAS[k], "lse_bf16");
        if (!f)
            continue;
        float r = lse_pieces(f, NULL, x, xb, NMAX, NMAX), rb = lse_pieces(NULL, fb, x, xb,
                                                                          NMAX, NMAX);
        cr_assert(isfinite(r) && fabs(r - want) <= 1e-5 * (fabs(want) + 1.0), "%s: %.9g, want "
                  "%.9g", ISAS[k], r, want);
        cr_assert(isfinite(rb) && fabs(rb - want) <= 9e-5 + 1e-5 * (fabs(want) + 1.0),
                  "%s bf16: %.9g, want %.9g", ISAS[k], rb, want);
        compared++;
    }
    cr_assert_gt(compared, 0, "no SIMD ISA on this CPU");
}

/* The exponential's error against 2^y in double over y in [-150, 130) (subnormal results
 * within their spacing, overflow to inf), and its special values. */
Test(prim_loss, exp2_poly_accuracy)
{
    static const float d3[] = KGR_EXP2_D3, d5[] = KGR_EXP2_D5;
    double worst3 = 0.0, worst5 = 0.0;
    for (long i = 0; i < 280 * 4096; i++) {
        float y = -150.0f + (float)i / 4096.0f + 0.37f / 4096.0f;
        double t = exp2((double)y);
        float e3 = kgr_exp2_poly(y, d3, 3), e5 = kgr_exp2_poly(y, d5, 5);
        if (t >= 0x1p128) {
            cr_assert(isinf(e3) && isinf(e5), "y=%g: %g %g, want inf", y, e3, e5);
            continue;
        }
        if (t < 0x1p-126) { /* subnormal: within the 2^-149 spacing (and its relative bound) */
            cr_assert(fabs(e3 - t) <= 0x1p-149 + 9e-5 * t && fabs(e5 - t) <= 0x1p-149 + 1e-7 * t,
                      "y=%g: %g %g, want %g", y, e3, e5, t);
            continue;
        }
        worst3 = fmax(worst3, fabs(e3 / t - 1.0));
        worst5 = fmax(worst5, fabs(e5 / t - 1.0));
    }
    cr_assert(worst3 < 9e-5 && worst5 < 1.5e-7, "relative error %.3g (deg 3), %.3g (deg 5)",
              worst3, worst5);
    cr_assert(kgr_exp2_poly(0.0f, d3, 3) == 1.0f && kgr_exp2_poly(0.0f, d5, 5) == 1.0f);
    cr_assert(kgr_exp2_poly(-INFINITY, d3, 3) == 0.0f && isinf(kgr_exp2_poly(INFINITY, d3, 3)));
    cr_assert(isnan(kgr_exp2_poly(NAN, d5, 5)));
}

/* ---- ce_grad -------------------------------------------------------------------------------- */

Test(prim_loss, ce_grad_bits_match_scalar_in_place_too)
{
    static float x[NMAX + PAD], gs[NMAX + PAD], gv[NMAX + PAD];
    static kg_u16 xb[NMAX + PAD], bs[NMAX + PAD], bv[NMAX + PAD];
    uint64_t s = 7;
    int compared = 0;
    for (size_t k = 0; k < sizeof ISAS / sizeof ISAS[0]; k++) {
        grad_f32_fn *f = kgr_prim_impl(ISAS[k], "ce_grad_f32");
        grad_bf16_fn *fb = kgr_prim_impl(ISAS[k], "ce_grad_bf16");
        if (!f)
            continue;
        for (size_t z = 0; z < sizeof SIZES / sizeof SIZES[0]; z++) {
            long n = SIZES[z];
            fill(x, xb, n + PAD, 4.0f, &s);
            x[n / 3] = -INFINITY, x[n / 5] = NAN, x[n / 7] = 90.0f; /* 0, NaN, inf */
            xb[n / 3] = kg_f32_to_bf16(-INFINITY), xb[n / 5] = kg_f32_to_bf16(NAN);
            float lse = 5.5f, sc = 1.0f / 3000.0f; /* not a power of 2: the rounding shows */
            memcpy(gs, x, sizeof gs), memcpy(gv, x, sizeof gv);
            memcpy(bs, xb, sizeof bs), memcpy(bv, xb, sizeof bv);
            kgp_ce_grad_f32__scalar(gs, x, lse, sc, n);
            f(gv, x, lse, sc, n);
            cr_assert(same_bits(gs, gv, sizeof gs), "%s ce_grad_f32 n=%ld differs", ISAS[k], n);
            kgp_ce_grad_bf16__scalar(bs, xb, lse, sc, n);
            fb(bv, xb, lse, sc, n);
            cr_assert(same_bits(bs, bv, sizeof bs), "%s ce_grad_bf16 n=%ld differs", ISAS[k], n);
            memcpy(gv, x, sizeof gv), memcpy(bv, xb, sizeof bv);
            f(gv, gv, lse, sc, n); /* in place */
            fb(bv, bv, lse, sc, n);
            cr_assert(same_bits(gs, gv, sizeof gs), "%s ce_grad_f32 in place n=%ld", ISAS[k], n);
            cr_assert(same_bits(bs, bv, sizeof bs), "%s ce_grad_bf16 in place n=%ld", ISAS[k], n);
            compared++;
        }
    }
    cr_assert_gt(compared, 0, "no SIMD ISA on this CPU");
    /* and the reference is the formula: softmax of a row sums to 1 */
    fill(x, xb, 1000, 1.0f, &s);
    double lse = lse_double(x, 1000), sum = 0.0;
    kgp_ce_grad_f32__scalar(gs, x, (float)lse, 1.0f, 1000);
    for (int i = 0; i < 1000; i++)
        sum += gs[i];
    cr_assert(fabs(sum - 1.0) < 1e-5, "softmax sums to %.9g", sum);
}

/* ---- dwconv ----------------------------------------------------------------------------------- */

Test(prim_loss, dwconv_bits_match_scalar_every_stride)
{
    enum { XCAP = 4 * 2200 };
    static float x[XCAP], f[64], ys[2200 + PAD], yv[2200 + PAD];
    static const long QS[] = { 1, 7, 8, 16, 31, 64, 65, 200, 2200 };
    static const long SS[] = { 1, 2, 3, 4, 17, 64 };
    uint64_t s = 99;
    for (long i = 0; i < XCAP; i++)
        x[i] = normal(&s);
    for (int i = 0; i < 64; i++)
        f[i] = normal(&s);
    int compared = 0;
    for (size_t k = 0; k < sizeof ISAS / sizeof ISAS[0]; k++) {
        dwconv_fn *fn = kgr_prim_impl(ISAS[k], "dwconv_f32");
        if (!fn)
            continue;
        for (size_t a = 0; a < sizeof QS / sizeof QS[0]; a++)
            for (size_t b = 0; b < sizeof SS / sizeof SS[0]; b++)
                for (long stride = 1; stride <= 4; stride++) {
                    long Q = QS[a], S = SS[b], ldp = Q + (S - 1) / stride + 1;
                    if (ldp * stride > XCAP)
                        continue;
                    for (int i = 0; i < 2200 + PAD; i++)
                        ys[i] = yv[i] = -7.0f;
                    kgp_dwconv_f32__scalar(ys, x, ldp, f, S, stride, Q);
                    fn(yv, x, ldp, f, S, stride, Q);
                    cr_assert(same_bits(ys, yv, sizeof ys), "%s Q=%ld S=%ld stride=%ld",
                              ISAS[k], Q, S, stride);
                    cr_assert(ys[Q] == -7.0f, "wrote past Q");
                    compared++;
                }
    }
    cr_assert_gt(compared, 0, "no SIMD ISA on this CPU");
    /* the reference is the polyphase formula: stride 2, taps 3, on xp = 0 1 2 3 4 5 6 stored as
     * phases (0 2 4 6 | 1 3 5) */
    float ph[8] = { 0, 2, 4, 6, 1, 3, 5, 0 }, w[3] = { 1, 10, 100 }, y[3];
    kgp_dwconv_f32__scalar(y, ph, 4, w, 3, 2, 3);
    cr_assert(y[0] == 210 && y[1] == 432 && y[2] == 654, "%g %g %g", y[0], y[1], y[2]);
}

/* The bf16 row, padding inside: the reference's bits on every ISA, and the reference is
 * dwconv_f32 on the widened zero-padded row, rounded once. Edges wider than a vector (padding
 * 37), filters up to 65 taps (wider than the row, rows with no whole vector inside). */
Test(prim_loss, dwconv_bf16_bits_match_scalar_and_f32_row)
{
    enum { WMAX = 2200, PMAX = 38 };
    static kg_u16 x[WMAX], ys[WMAX + 2 * PMAX + PAD], yv[WMAX + 2 * PMAX + PAD];
    static float xp[WMAX + 2 * PMAX], yf[WMAX + 2 * PMAX], f[65];
    static const long WS[] = { 1, 3, 16, 64, 65, 200, 2200 };
    static const long SS[] = { 1, 2, 4, 17, 64, 65 };
    static const long PS[] = { 0, 2, 4, 37 };
    uint64_t s = 5;
    for (long i = 0; i < WMAX; i++)
        x[i] = kg_f32_to_bf16(normal(&s));
    for (int i = 0; i < 65; i++)
        f[i] = kg_bf16_to_f32(kg_f32_to_bf16(normal(&s)));
    const char *isas[] = { "scalar", "avx2", "avx512" };
    int compared = 0;
    for (size_t k = 0; k < 3; k++) {
        dwconv_bf16_fn *fn = kgr_prim_impl(isas[k], "dwconv_bf16");
        if (!fn)
            continue;
        for (size_t a = 0; a < sizeof WS / sizeof WS[0]; a++)
            for (size_t b = 0; b < sizeof SS / sizeof SS[0]; b++)
                for (size_t c = 0; c < sizeof PS / sizeof PS[0]; c++)
                    for (size_t d = 0; d < sizeof PS / sizeof PS[0]; d++) {
                        long w = WS[a], S = SS[b], pl = PS[c], pr = PS[d] + (d == 0 ? 0 : 1),
                             Q = w + pl + pr - S + 1;
                        if (Q < 1)
                            continue;
                        for (long i = 0; i < w + pl + pr; i++)
                            xp[i] = i >= pl && i < pl + w ? kg_bf16_to_f32(x[i - pl]) : 0.0f;
                        kgp_dwconv_f32__scalar(yf, xp, w + pl + pr, f, S, 1, Q);
                        for (long i = 0; i < WMAX + 2 * PMAX + PAD; i++)
                            ys[i] = yv[i] = 0x7777;
                        kgp_dwconv_bf16__scalar(ys, x, w, f, S, pl, Q);
                        fn(yv, x, w, f, S, pl, Q);
                        for (long q = 0; q < Q; q++)
                            cr_assert(ys[q] == kg_f32_to_bf16(yf[q]), "reference q=%ld: %04x, "
                                      "want %04x", q, ys[q], kg_f32_to_bf16(yf[q]));
                        cr_assert(same_bits(ys, yv, sizeof ys), "%s w=%ld S=%ld pl=%ld pr=%ld",
                                  isas[k], w, S, pl, pr);
                        cr_assert(yv[Q] == 0x7777, "wrote past Q");
                        compared++;
                    }
    }
    cr_assert_gt(compared, 0);
}


/* A row at the very start and at the very end of a page between two inaccessible pages: the
 * edges' taps leave the row on both sides, and must not read outside it (a read there faults). */
Test(prim_loss, dwconv_bf16_edges_read_only_the_row)
{
    long pg = sysconf(_SC_PAGESIZE), n = pg / 2; /* elements a page */
    char *m = mmap(NULL, (size_t)(3 * pg), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    cr_assert(m != MAP_FAILED);
    cr_assert_eq(mprotect(m, (size_t)pg, PROT_NONE), 0);
    cr_assert_eq(mprotect(m + 2 * pg, (size_t)pg, PROT_NONE), 0);
    kg_u16 *page = (kg_u16 *)(m + pg);
    uint64_t s = 9;
    for (long i = 0; i < n; i++)
        page[i] = kg_f32_to_bf16(normal(&s));
    static kg_u16 ys[256 + PAD], yv[256 + PAD];
    static const float f[5] = { 0.5f, -1.25f, 2.0f, 0.75f, -0.125f };
    static const long WS[] = { 3, 40, 100 };
    const char *isas[] = { "avx2", "avx512" };
    int compared = 0;
    for (size_t k = 0; k < 2; k++) {
        dwconv_bf16_fn *fn = kgr_prim_impl(isas[k], "dwconv_bf16");
        if (!fn)
            continue;
        for (size_t a = 0; a < 3; a++)
            for (int end = 0; end < 2; end++) {
                long w = WS[a], pl = 4, Q = w + 2 * pl - 5 + 1;
                const kg_u16 *x = end ? page + n - w : page;
                kgp_dwconv_bf16__scalar(ys, x, w, f, 5, pl, Q);
                fn(yv, x, w, f, 5, pl, Q);
                cr_assert(same_bits(ys, yv, (size_t)Q * sizeof *ys), "%s w=%ld at the page's %s",
                          isas[k], w, end ? "end" : "start");
                compared++;
            }
    }
    munmap(m, (size_t)(3 * pg));
    cr_assert_gt(compared, 0);
}
