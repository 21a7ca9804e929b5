/* test_wt_pack.c: the packer's kn fast path (runtime/src/wt.c) against its element-by-element
 * reference, which KGEN_WT_PACK=generic forces: the packed codes, the zero padding and the MX
 * scales must agree byte for byte for every format, the GEMM geometries (nr 16 and 64, kg 1
 * and 2), a few odd ones that take the general loops, and odd K and N. The source data is
 * random bytes at a misaligned address: packing moves codes and never decodes them. */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/kgen.h"

static const long KS[] = { 1, 3, 65, 257 };
static const long NS[] = { 1, 17, 63, 64, 65, 130 };
static const long MX_KS[] = { 32, 96, 288 }; /* an MX kn weight needs K % 32 == 0 */
/* { nr, kg }: the GEMMs' geometries, then ones that exercise the general interleave and the
 * fp4 fallback to the reference (nr * kg odd) */
static const long GEOMS[][2] = { { 16, 1 }, { 16, 2 }, { 64, 1 }, { 64, 2 }, { 8, 4 }, { 3, 3 } };
#define COUNT(a) (long)(sizeof(a) / sizeof(a)[0])

static const int FMT_BITS[KG_WT_FMT_COUNT] = { 32, 16, 16, 8, 8, 8, 4 };

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* n random bytes, one byte past a 64-byte boundary (the caller frees *base). */
static uint8_t *random_bytes(long n, uint64_t *seed, void **base)
{
    uint8_t *p = aligned_alloc(64, (size_t)(n + 64) / 64 * 64 + 64);
    cr_assert(p);
    for (long i = 0; i < n; i++)
        p[1 + i] = (uint8_t)(rnd(seed) >> 24);
    *base = p;
    return p + 1;
}

static void pack(kg_wt *w, const kg_wt_src *s, int generic)
{
    char err[256] = "";
    if (generic)
        setenv("KGEN_WT_PACK", "generic", 1);
    int rc = kg_wt_pack(w, s, err, sizeof err);
    unsetenv("KGEN_WT_PACK");
    cr_assert_eq(rc, KG_OK, "kg_wt_pack: %s", err);
}

/* The first byte where a and b differ, or -1. */
static long first_diff(const uint8_t *a, const uint8_t *b, long n)
{
    for (long i = 0; i < n; i++)
        if (a[i] != b[i])
            return i;
    return -1;
}

/* Packs s both ways and compares the two: geometry, the panels (with the zero rows and
 * columns, up to the 64-byte end the packer also zeroes) and the scales. */
static void same_both_ways(const kg_wt_src *s)
{
    kg_wt fast, ref;
    pack(&fast, s, 0);
    pack(&ref, s, 1);
    const char *fmt = kg_wt_fmt_name(s->fmt);
    cr_assert(fast.nr == ref.nr && fast.kg == ref.kg && fast.kpad == ref.kpad &&
                  fast.kb == ref.kb,
              "%s [%ld, %ld]: geometry nr %ld kg %ld kpad %ld kb %d, reference %ld %ld %ld %d",
              fmt, s->K, s->N, fast.nr, fast.kg, fast.kpad, fast.kb, ref.nr, ref.kg, ref.kpad,
              ref.kb);
    long panels = (s->N + ref.nr - 1) / ref.nr, elems = panels * ref.kpad * ref.nr;
    long bytes = FMT_BITS[s->fmt] == 4 ? (elems + 1) / 2 : elems * (FMT_BITS[s->fmt] / 8);
    long d = first_diff(fast.data, ref.data, (bytes + 63) / 64 * 64);
    cr_assert(d < 0, "%s [%ld, %ld] nr %ld kg %ld%s: packed byte %ld of %ld is 0x%02x, "
              "reference 0x%02x", fmt, s->K, s->N, ref.nr, ref.kg, s->scale ? " MX" : "", d,
              bytes, ((const uint8_t *)fast.data)[d], ((const uint8_t *)ref.data)[d]);
    cr_assert_eq(!fast.scale, !ref.scale, "%s: scales on one side only", fmt);
    if (ref.scale) {
        long sbytes = panels * (ref.kpad / ref.kb) * ref.nr;
        d = first_diff(fast.scale, ref.scale, sbytes);
        cr_assert(d < 0, "%s [%ld, %ld] nr %ld kg %ld: scale byte %ld of %ld is %d, "
                  "reference %d", fmt, s->K, s->N, ref.nr, ref.kg, d, sbytes, fast.scale[d],
                  ref.scale[d]);
    }
    kg_wt_free(&fast);
    kg_wt_free(&ref);
}

/* Every geometry and odd size for one format, with MX scales if mx. */
static void sweep(int fmt, int mx)
{
    uint64_t seed = 0x9e3779b97f4a7c15u ^ (uint64_t)(fmt * 2 + mx);
    const long *ks = mx ? MX_KS : KS;
    long nk = mx ? COUNT(MX_KS) : COUNT(KS), bits = FMT_BITS[fmt];
    for (long g = 0; g < COUNT(GEOMS); g++) {
        for (long i = 0; i < nk; i++) {
            for (long j = 0; j < COUNT(NS); j++) {
                long K = ks[i], N = NS[j], n = K * N;
                void *dbase, *sbase = NULL;
                const uint8_t *data = random_bytes(bits == 4 ? (n + 1) / 2 : n * bits / 8,
                                                   &seed, &dbase);
                const uint8_t *scale = mx ? random_bytes(K / 32 * N, &seed, &sbase) : NULL;
                kg_wt_src s = { fmt, KG_WL_KN, K, N, data, scale, GEOMS[g][0], GEOMS[g][1] };
                same_both_ways(&s);
                free(dbase);
                free(sbase);
            }
        }
    }
}

Test(wt_pack, kn_f32) { sweep(KG_WT_F32, 0); }
Test(wt_pack, kn_bf16) { sweep(KG_WT_BF16, 0); }
Test(wt_pack, kn_f16) { sweep(KG_WT_F16, 0); }
Test(wt_pack, kn_e4m3) { sweep(KG_WT_E4M3, 0); }
Test(wt_pack, kn_e4m3fn) { sweep(KG_WT_E4M3FN, 0); }
Test(wt_pack, kn_e5m2) { sweep(KG_WT_E5M2, 0); }
Test(wt_pack, kn_e2m1) { sweep(KG_WT_E2M1, 0); }
Test(wt_pack, kn_mx_e4m3fn) { sweep(KG_WT_E4M3FN, 1); }
Test(wt_pack, kn_mx_e2m1) { sweep(KG_WT_E2M1, 1); }

/* The geometry the active GEMM picks (nr = kg = 0), on a weight of several panels. */
Test(wt_pack, kn_default_geometry)
{
    uint64_t seed = 7;
    for (int fmt = 0; fmt < KG_WT_FMT_COUNT; fmt++) {
        long K = 130, N = 200, n = K * N, bits = FMT_BITS[fmt];
        void *base;
        const uint8_t *data = random_bytes(bits == 4 ? (n + 1) / 2 : n * bits / 8, &seed, &base);
        kg_wt_src s = { fmt, KG_WL_KN, K, N, data, NULL, 0, 0 };
        same_both_ways(&s);
        free(base);
    }
}

/* ---- nk: W stored transposed, [N, K] (a Hugging Face linear weight) ------------------------ */

/* Packs s (an nk weight of whole bytes per element) and the same matrix written out [K, N]
 * (kn): the packed bytes must be the same. */
static void nk_equals_kn(const kg_wt_src *s)
{
    long K = s->K, N = s->N, es = FMT_BITS[s->fmt] / 8;
    uint8_t *t = malloc((size_t)(K * N * es));
    cr_assert(t);
    for (long n = 0; n < N; n++)
        for (long k = 0; k < K; k++)
            memcpy(t + (k * N + n) * es, (const uint8_t *)s->data + (n * K + k) * es,
                   (size_t)es);
    kg_wt_src kn = *s;
    kn.layout = KG_WL_KN, kn.data = t;
    kg_wt a, b;
    pack(&a, s, 0);
    pack(&b, &kn, 0);
    long bytes = (N + a.nr - 1) / a.nr * a.kpad * a.nr * es;
    long d = first_diff(a.data, b.data, bytes);
    cr_assert(d < 0, "%s [%ld, %ld] nr %ld kg %ld: nk packed byte %ld is 0x%02x, kn 0x%02x",
              kg_wt_fmt_name(s->fmt), K, N, a.nr, a.kg, d, ((const uint8_t *)a.data)[d],
              ((const uint8_t *)b.data)[d]);
    kg_wt_free(&a);
    kg_wt_free(&b);
    free(t);
}

/* The parts [0, n1), [n1, n2), [n2, N) of s packed side by side (kg_wt_pack_parts) must equal
 * s packed whole. */
static void parts_equal_whole(const kg_wt_src *s, long n1, long n2)
{
    long bits = FMT_BITS[s->fmt], K = s->K;
    kg_wt_src p[3] = { *s, *s, *s };
    p[0].N = n1, p[1].N = n2 - n1, p[2].N = s->N - n2;
    p[1].data = (const uint8_t *)s->data + n1 * K * bits / 8;
    p[2].data = (const uint8_t *)s->data + n2 * K * bits / 8;
    kg_wt a, b;
    char err[256] = "";
    cr_assert_eq(kg_wt_pack_parts(&a, p, 3, err, sizeof err), KG_OK, "%s", err);
    pack(&b, s, 0);
    long elems = (s->N + b.nr - 1) / b.nr * b.kpad * b.nr;
    long d = first_diff(a.data, b.data, bits == 4 ? (elems + 1) / 2 : elems * bits / 8);
    cr_assert(d < 0, "%s [%ld, %ld] parts at %ld, %ld: packed byte %ld differs",
              kg_wt_fmt_name(s->fmt), K, s->N, n1, n2, d);
    kg_wt_free(&a);
    kg_wt_free(&b);
}

Test(wt_pack, nk)
{
    uint64_t seed = 11;
    static const int fmts[] = { KG_WT_F32, KG_WT_BF16, KG_WT_E4M3, KG_WT_E2M1 };
    int compared = 0;
    for (long f = 0; f < COUNT(fmts); f++) {
        for (long g = 0; g < COUNT(GEOMS); g++) {
            for (long i = 0; i < COUNT(KS); i++) {
                for (long j = 0; j < COUNT(NS); j++) {
                    long K = KS[i], N = NS[j], n = K * N, bits = FMT_BITS[fmts[f]];
                    if (bits == 4 && K % 2)
                        continue; /* an fp4 row of odd K would start mid-byte */
                    void *base;
                    const uint8_t *data = random_bytes(bits == 4 ? (n + 1) / 2 : n * bits / 8,
                                                       &seed, &base);
                    kg_wt_src s = { fmts[f], KG_WL_NK, K, N, data, NULL, GEOMS[g][0],
                                    GEOMS[g][1] };
                    same_both_ways(&s);
                    if (bits >= 8)
                        nk_equals_kn(&s);
                    if (N >= 3)
                        parts_equal_whole(&s, N / 3, N / 3 + N / 2);
                    free(base);
                    compared++;
                }
            }
        }
    }
    cr_assert_gt(compared, 100, "only %d nk weights compared", compared);
}

/* Parts must agree on the format, K and layout family; kn and nk parts may be mixed. */
Test(wt_pack, parts_refused)
{
    float a[12] = { 0 }, b[12] = { 0 };
    kg_wt w;
    char err[256] = "";
    kg_wt_src p[2] = { { KG_WT_F32, KG_WL_NK, 3, 4, a, NULL, 0, 0 },
                       { KG_WT_F32, KG_WL_KN, 4, 3, b, NULL, 0, 0 } };
    cr_assert_eq(kg_wt_pack_parts(&w, p, 2, err, sizeof err), KG_ESHAPE);
    cr_assert(strstr(err, "part 1"), "%s", err);
    p[1].K = 3, p[1].N = 4;
    cr_assert_eq(kg_wt_pack_parts(&w, p, 2, err, sizeof err), KG_OK, "%s", err);
    cr_assert_eq(w.N, 8);
    kg_wt_free(&w);
    p[1].fmt = KG_WT_BF16;
    cr_assert_eq(kg_wt_pack_parts(&w, p, 2, err, sizeof err), KG_ESHAPE);
}

/* The element widths the packer and the GEMM split read (kg_wt_fmt_bits). */
Test(wt_pack, format_bits)
{
    static const int want[KG_WT_FMT_COUNT] = { 32, 16, 16, 8, 8, 8, 4 };
    for (int f = 0; f < KG_WT_FMT_COUNT; f++)
        cr_assert_eq(kg_wt_fmt_bits(f), want[f], "%s", kg_wt_fmt_name(f));
    cr_assert_eq(kg_wt_fmt_bits(-1), 0);
    cr_assert_eq(kg_wt_fmt_bits(KG_WT_FMT_COUNT), 0);
}

/* ---- expert weights side by side (kg_wt_pack_experts) ---------------------------------------- */

/* E experts of nparts kn or nk parts (MX kn scales if mx) packed side by side must equal the
 * whole [K, E * P] matrix written out kn, each expert's parts' columns in order and zero pad
 * columns (scale 127), packed by the element-by-element reference. */
static void experts_equal_whole(int fmt, int layout, int mx, long K, long E, int nparts,
                                const long *ns, long nr, long kg, uint64_t *seed)
{
    long bits = FMT_BITS[fmt], cols = 0;
    for (int q = 0; q < nparts; q++)
        cols += ns[q];
    long P = kg_wt_expert_cols(cols), W = E * P;
    cr_assert_eq(P, (cols + 63) / 64 * 64);
    /* the whole, logical kn codes (one byte-aligned code per element: fp4 is built unpacked and
     * packed two a byte below), scales [K/32, W] */
    uint32_t *whole = calloc((size_t)(K * W), sizeof *whole);
    uint8_t *wsc = mx ? malloc((size_t)(K / 32 * W)) : NULL;
    kg_wt_src *parts = calloc((size_t)(E * nparts), sizeof *parts);
    void **bases = calloc((size_t)(2 * E * nparts), sizeof *bases);
    cr_assert(whole && parts && bases && (!mx || wsc));
    if (mx)
        memset(wsc, 127, (size_t)(K / 32 * W));
    uint32_t mask = bits == 32 ? 0xffffffffu : (1u << bits) - 1;
    for (long e = 0, i = 0; e < E; e++) {
        for (int q = 0, off = 0; q < nparts; off += (int)ns[q], q++, i++) {
            long N = ns[q], n = K * N;
            uint8_t *d = random_bytes(bits == 4 ? (n + 1) / 2 : n * bits / 8, seed,
                                      &bases[2 * i]);
            uint8_t *sc = mx ? random_bytes(K / 32 * N, seed, &bases[2 * i + 1]) : NULL;
            if (bits == 4 && n % 2)
                d[n / 2] &= 0xf; /* the last byte's unused high nibble */
            for (long k = 0; k < K; k++)
                for (long c = 0; c < N; c++) {
                    long s = layout == KG_WL_NK ? c * K + k : k * N + c;
                    uint32_t v = 0;
                    if (bits == 4)
                        v = (d[s / 2] >> (s % 2 * 4)) & 0xf;
                    else
                        memcpy(&v, d + s * bits / 8, (size_t)(bits / 8));
                    whole[k * W + e * P + off + c] = v & mask;
                    if (mx && k % 32 == 0)
                        wsc[(k / 32) * W + e * P + off + c] = sc[(k / 32) * N + c];
                }
            parts[i] = (kg_wt_src){ fmt, layout, K, N, d, sc, nr, kg };
        }
    }
    long wn = K * W;
    uint8_t *wd = calloc((size_t)(bits == 4 ? (wn + 1) / 2 : wn * bits / 8) + 1, 1);
    cr_assert(wd);
    for (long i = 0; i < wn; i++) {
        if (bits == 4)
            wd[i / 2] |= (uint8_t)(whole[i] << (i % 2 * 4));
        else
            memcpy(wd + i * bits / 8, &whole[i], (size_t)(bits / 8));
    }
    kg_wt_src ws = { fmt, KG_WL_KN, K, W, wd, wsc, nr, kg };
    kg_wt a, b;
    char err[256] = "";
    cr_assert_eq(kg_wt_pack_experts(&a, parts, (int)E, nparts, err, sizeof err), KG_OK, "%s",
                 err);
    pack(&b, &ws, 1);
    cr_assert(a.N == W && a.K == K && a.kb == b.kb && a.nr == b.nr && a.kpad == b.kpad,
              "experts: N %ld (want %ld), kb %d / %d", a.N, W, a.kb, b.kb);
    long elems = W / b.nr * b.kpad * b.nr;
    long d = first_diff(a.data, b.data, bits == 4 ? (elems + 1) / 2 : elems * bits / 8);
    cr_assert(d < 0, "%s %s E %ld K %ld parts %d nr %ld kg %ld: packed byte %ld differs",
              kg_wt_fmt_name(fmt), kg_wt_layout_name(layout), E, K, nparts, nr, kg, d);
    if (mx) {
        d = first_diff(a.scale, b.scale, elems / b.kb);
        cr_assert(d < 0, "%s MX E %ld K %ld: scale byte %ld differs", kg_wt_fmt_name(fmt), E,
                  K, d);
    }
    kg_wt_free(&a);
    kg_wt_free(&b);
    for (long i = 0; i < 2 * E * nparts; i++)
        free(bases[i]);
    free(bases), free(parts), free(whole), free(wsc), free(wd);
}

Test(wt_pack, experts)
{
    uint64_t seed = 77;
    static const long ns1[] = { 17 }, ns2[] = { 5, 5 }, ns3[] = { 64, 3, 70 };
    static const long geoms[][2] = { { 16, 1 }, { 16, 2 }, { 64, 1 }, { 8, 4 }, { 0, 0 } };
    static const int fmts[] = { KG_WT_F32, KG_WT_BF16, KG_WT_E4M3, KG_WT_E4M3FN, KG_WT_E2M1 };
    int compared = 0;
    for (long g = 0; g < COUNT(geoms); g++)
        for (long f = 0; f < COUNT(fmts); f++)
            for (int lay = 0; lay < 2; lay++) {
                int layout = lay ? KG_WL_NK : KG_WL_KN, fp4 = fmts[f] == KG_WT_E2M1;
                long nr = geoms[g][0], kg = geoms[g][1];
                if (fp4 && layout == KG_WL_NK)
                    continue; /* an fp4 nk part starts each column on a byte: K even below */
                experts_equal_whole(fmts[f], layout, 0, 3, 1, 1, ns1, nr, kg, &seed);
                experts_equal_whole(fmts[f], layout, 0, 33, 3, 2, ns2, nr, kg, &seed);
                experts_equal_whole(fmts[f], layout, 0, 64, 2, 3, ns3, nr, kg, &seed);
                compared += 3;
                if (fmts[f] == KG_WT_E4M3FN || fp4) { /* MX: kn scales, kb 32 */
                    if (layout == KG_WL_KN) {
                        experts_equal_whole(fmts[f], layout, 1, 64, 3, 2, ns2, nr, kg, &seed);
                        experts_equal_whole(fmts[f], layout, 1, 96, 2, 1, ns1, nr, kg, &seed);
                        compared += 2;
                    }
                }
            }
    cr_assert_gt(compared, 100, "only %d expert weights compared", compared);
}

/* An MX layout with kb 8 (mlp_mx_down): each expert's panels are that expert's weight packed
 * alone (kg_wt_pack), then zero panels to its 64 columns (scale 127). */
Test(wt_pack, experts_mx_down)
{
    uint64_t seed = 78;
    const long K = 512, N = 40, E = 3; /* mlp_mx_down: K % 512 == 0 */
    kg_wt_src parts[3];
    void *bases[6];
    for (long e = 0; e < E; e++) {
        const uint8_t *d = random_bytes(K * N, &seed, &bases[2 * e]);
        const uint8_t *sc = random_bytes(128 / 8 * N, &seed, &bases[2 * e + 1]);
        parts[e] = (kg_wt_src){ KG_WT_E4M3FN, KG_WL_MLP_MX_DOWN, K, N, d, sc, 16, 4 };
    }
    kg_wt a;
    char err[256] = "";
    cr_assert_eq(kg_wt_pack_experts(&a, parts, (int)E, 1, err, sizeof err), KG_OK, "%s", err);
    cr_assert_eq(a.kb, 8);
    long pan = a.kpad * a.nr, span = a.kpad / a.kb * a.nr, per = 64 / a.nr;
    const uint8_t *ad = a.data;
    for (long e = 0; e < E; e++) {
        kg_wt b;
        pack(&b, &parts[e], 0);
        long used = (N + b.nr - 1) / b.nr;
        long d = first_diff(ad + e * per * pan, b.data, used * pan);
        cr_assert(d < 0, "expert %ld: packed byte %ld differs", e, d);
        d = first_diff(a.scale + e * per * span, b.scale, used * span);
        cr_assert(d < 0, "expert %ld: scale byte %ld differs", e, d);
        for (long i = used * pan; i < per * pan; i++)
            cr_assert_eq(ad[e * per * pan + i], 0, "expert %ld: pad byte %ld", e, i);
        for (long i = used * span; i < per * span; i++)
            cr_assert_eq(a.scale[e * per * span + i], 127, "expert %ld: pad scale %ld", e, i);
        kg_wt_free(&b);
    }
    kg_wt_free(&a);
    for (int i = 0; i < 6; i++)
        free(bases[i]);
}

/* Mismatched parts, bad counts, a panel width that splits an expert and overflowing sizes are
 * refused, naming the part. */
Test(wt_pack, experts_refused)
{
    float a[64] = { 0 };
    kg_wt w;
    char err[256] = "";
    kg_wt_src p[4] = { { KG_WT_F32, KG_WL_KN, 4, 4, a, NULL, 16, 1 },
                       { KG_WT_F32, KG_WL_KN, 4, 4, a, NULL, 16, 1 },
                       { KG_WT_F32, KG_WL_KN, 4, 4, a, NULL, 16, 1 },
                       { KG_WT_F32, KG_WL_KN, 4, 4, a, NULL, 16, 1 } };
    cr_assert_eq(kg_wt_pack_experts(&w, p, 2, 2, err, sizeof err), KG_OK, "%s", err);
    cr_assert_eq(w.N, 128);
    kg_wt_free(&w);
    cr_assert_eq(kg_wt_pack_experts(&w, p, 0, 1, err, sizeof err), KG_ESHAPE);
    cr_assert_eq(kg_wt_pack_experts(&w, p, 1, 0, err, sizeof err), KG_ESHAPE);
    p[3].N = 3;
    cr_assert_eq(kg_wt_pack_experts(&w, p, 2, 2, err, sizeof err), KG_ESHAPE);
    cr_assert(strstr(err, "expert 1 part 1"), "%s", err);
    p[3].N = 4, p[2].fmt = KG_WT_BF16;
    cr_assert_eq(kg_wt_pack_experts(&w, p, 2, 2, err, sizeof err), KG_ESHAPE);
    cr_assert(strstr(err, "expert 1 part 0"), "%s", err);
    p[2].fmt = KG_WT_F32, p[1].K = -1;
    cr_assert_eq(kg_wt_pack_experts(&w, p, 2, 2, err, sizeof err), KG_ESHAPE);
    cr_assert(strstr(err, "expert 0 part 1"), "%s", err);
    p[1].K = 4;
    for (int i = 0; i < 4; i++)
        p[i].nr = 3; /* 64 columns are not whole panels of 3 */
    cr_assert_eq(kg_wt_pack_experts(&w, p, 2, 2, err, sizeof err), KG_ESHAPE);
    cr_assert(strstr(err, "panel width"), "%s", err);
    /* 2^62 columns an expert, 4 experts: the packed N overflows */
    kg_wt_src big[4];
    for (int i = 0; i < 4; i++)
        big[i] = (kg_wt_src){ KG_WT_E4M3, KG_WL_KN, 1, 1L << 62, a, NULL, 0, 0 };
    cr_assert_eq(kg_wt_pack_experts(&w, big, 4, 1, err, sizeof err), KG_ESHAPE);
    cr_assert(strstr(err, "overflow"), "%s", err);
    cr_assert_eq(kg_wt_expert_cols(0), -1);
    cr_assert_eq(kg_wt_expert_cols(65), 128);
    cr_assert_eq(kg_wt_expert_cols(__LONG_MAX__), -1);
}
