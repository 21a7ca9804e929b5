/* prim_simd_loss_body.h: the training kernels' row primitives (online log-sum-exp, cross
 * entropy's gradient, depthwise conv) over the vector vocabulary of prim_simd_body.h, included
 * right after it by prim_avx512_ew.c and prim_avx2.c; their scalar references are prim_loss.c. */

/* ---- training rows: online log-sum-exp, cross entropy's gradient, depthwise conv --------- */

/* The training rows' exponential, kgr_exp2_poly (prim_loss.c) step for step: 2^floor(y) p(f),
 * f = y - floor(y), p by FMA steps from the highest of prim.h's coefficients. */
static const float EXP2_D3[3] = KGR_EXP2_D3, EXP2_D5[5] = KGR_EXP2_D5;

static inline vf exp2_d3(vf y)
{
    vf f = vfrac(y), p = set1(EXP2_D3[2]);
    p = vfma(p, f, set1(EXP2_D3[1]));
    p = vfma(p, f, set1(EXP2_D3[0]));
    return vldexp(vfma(p, f, set1(1.0f)), y);
}

static inline vf exp2_d5(vf y)
{
    vf f = vfrac(y), p = set1(EXP2_D5[4]);
    for (int i = 3; i >= 0; i--)
        p = vfma(p, f, set1(EXP2_D5[i]));
    return vldexp(vfma(p, f, set1(1.0f)), y);
}

/* Two vectors of a row: f32 in order, bf16 in ld2_bf16's order (the sum and max do not care) */
static inline void ld2_f32(const float *p, vf *a, vf *b) { *a = ld(p), *b = ld(p + W); }

/* The online step in blocks of LSE_BLOCK values, each read once: the exp-sum relative to a
 * reference r (y = x log2 e - r log2 e, one FMA: not exactly 0 at x = r, but the rows are long
 * here; the short ones and the two-pass blocks compute (x - m) log2 e as the reference does,
 * exactly 0 at the max), added to d as it is. r is the running m, or for a row's first block
 * the max of its first 4W values, so m stays a value of the row, at or below the max; the
 * scalar reference keeps the max itself, and ln d + m is the same either way. The block's max
 * is not tracked: the exponentials and the vector max share the FP pipes, and the sum tells
 * as much. A block summing past LSE_SUM_MAX (a value far above r, an inf, or a NaN) is read
 * again from L1 by the two-pass step: its max first, then the sum relative to it, which is
 * then the new m. The last values below 4W go to the reference. The bytes LSE_AHEAD on are
 * prefetched: the loop's arithmetic leaves the hardware prefetcher too few misses in flight
 * (one Zen 5 thread, medians of 30 interleaved passes over 66 MB: 8 KiB ahead read 25.2 GB/s,
 * 2 KiB 22.5, none 23.9; 16 and 32 KiB as 8). One Zen 5 thread, bf16 rows of 128256 in L2:
 * 28.4-28.9 GB/s with the max tracked in blocks of 2048, 30.2-31.3 without it, 34.0-34.3 in
 * blocks of 8192 (a short block loop's exit costs more than its sum); 512 rows from DRAM
 * 26.6-27.1, 29.7-30.5. */
#define LSE_BLOCK 8192
#define LSE_SUM_MAX 0x1p64f /* far from fp32's range, d stays finite over any row */
#define LSE_AHEAD 8192
#define LSE_SIMD(name, T, LOAD2, EXP2)                                                        \
    static void name##_two_pass(float *md, const T *xb, long nb)                              \
    {                                                                                         \
        vf mv = set1(-__builtin_inff()), a, b;                                                \
        for (long i = 0; i < nb; i += 2 * W) {                                                \
            LOAD2(xb + i, &a, &b);                                                            \
            mv = vmax(a, vmax(b, mv));                                                        \
        }                                                                                     \
        float mx = hmax(mv);                                                                  \
        if (mx == -__builtin_inff()) {                                                        \
            kgp_##name##__scalar(md, xb, nb);                                                 \
            return;                                                                           \
        }                                                                                     \
        if (mx < md[0])                                                                       \
            mx = md[0];                                                                       \
        vf acc0 = set1(0.0f), acc1 = acc0, l2e = set1(KGR_LOG2E), mxv = set1(mx);             \
        for (long i = 0; i < nb; i += 2 * W) {                                                \
            LOAD2(xb + i, &a, &b);                                                            \
            acc0 = vadd(acc0, EXP2(vmul(vsub(a, mxv), l2e)));                                 \
            acc1 = vadd(acc1, EXP2(vmul(vsub(b, mxv), l2e)));                                 \
        }                                                                                     \
        md[1] = md[1] * kgr_exp_f32(md[0] - mx) + hsum(vadd(acc0, acc1));                     \
        md[0] = mx;                                                                           \
    }                                                                                         \
    void FN(name)(float *md, const T *x, long n)                                              \
    {                                                                                         \
        long nv = n / (4 * W) * (4 * W);                                                      \
        for (long b = 0; b < nv; b += LSE_BLOCK) {                                            \
            long nb = nv - b < LSE_BLOCK ? nv - b : LSE_BLOCK;                                \
            const T *xb = x + b;                                                              \
            float r = md[0]; /* the reference: a row's first block takes a guess */          \
            if (r == -__builtin_inff()) {                                                     \
                vf a, c, e, h;                                                                \
                LOAD2(xb, &a, &c);                                                            \
                LOAD2(xb + 2 * W, &e, &h);                                                    \
                r = hmax(vmax(vmax(a, c), vmax(e, h)));                                       \
            }                                                                                 \
            if (r == -__builtin_inff()) {                                                     \
                name##_two_pass(md, xb, nb);                                                  \
                continue;                                                                     \
            }                                                                                 \
            vf acc0 = set1(0.0f), acc1 = acc0, acc2 = acc0, acc3 = acc0, a, c, e, h;           \
            vf l2e = set1(KGR_LOG2E), nl = set1(-(r * KGR_LOG2E));                            \
            for (long i = 0; i < nb; i += 4 * W) {                                            \
                for (unsigned k = 0; k < 4 * W * sizeof(T); k += 64)                          \
                    __builtin_prefetch((const char *)(xb + i) + LSE_AHEAD + k);               \
                LOAD2(xb + i, &a, &c);                                                        \
                LOAD2(xb + i + 2 * W, &e, &h);                                                \
                acc0 = vadd(acc0, EXP2(vfma(a, l2e, nl)));                                    \
                acc1 = vadd(acc1, EXP2(vfma(c, l2e, nl)));                                    \
                acc2 = vadd(acc2, EXP2(vfma(e, l2e, nl)));                                    \
                acc3 = vadd(acc3, EXP2(vfma(h, l2e, nl)));                                    \
            }                                                                                 \
            float sum = hsum(vadd(vadd(acc0, acc1), vadd(acc2, acc3)));                       \
            if (!(sum <= LSE_SUM_MAX)) {                                                      \
                name##_two_pass(md, xb, nb);                                                  \
                continue;                                                                     \
            }                                                                                 \
            /* d is relative to r (m = r), or 0 or NaN (m = -inf) */                          \
            md[0] = r;                                                                        \
            md[1] += sum;                                                                     \
        }                                                                                     \
        kgp_##name##__scalar(md, x + nv, n - nv);                                             \
    }
LSE_SIMD(lse_f32, float, ld2_f32, exp2_d5)
LSE_SIMD(lse_bf16, kg_u16, ld2_bf16, exp2_d3)
#undef LSE_SIMD

/* kgp_ce_grad_*__scalar's bits: y = fma(x, log2 e, nl), its exponential, the scale (bf16: the
 * exp rounded to bf16 first) */
void FN(ce_grad_f32)(float *g, const float *x, float lse, float s, long n)
{
    long i = 0;
    vf nl = set1(-(lse * KGR_LOG2E)), sv = set1(s), l2e = set1(KGR_LOG2E);
    for (; i + W <= n; i += W)
        st(g + i, vmul(exp2_d5(vfma(ld(x + i), l2e, nl)), sv));
    kgp_ce_grad_f32__scalar(g + i, x + i, lse, s, n - i);
}

/* With s a power of two at most 1 (reduction sum, or mean over 2^k positions), bf16(bf16(e) s)
 * is bf16(e s) while e s is normal: the scaling is exact and commutes with the rounding. So
 * such a vector rounds once, by the conversion instruction where the ISA has one (st_bf16_hw
 * refuses a subnormal or NaN lane, which then takes the two roundings). */
void FN(ce_grad_bf16)(kg_u16 *g, const kg_u16 *x, float lse, float s, long n)
{
    long i = 0;
    int e2;
    vf nl = set1(-(lse * KGR_LOG2E)), sv = set1(s), l2e = set1(KGR_LOG2E);
    if (s > 0.0f && s <= 1.0f && __builtin_frexpf(s, &e2) == 0.5f)
        for (; i + W <= n; i += W) {
            vf e = exp2_d3(vfma(ld_bf16(x + i), l2e, nl));
            if (!st_bf16_hw(g + i, vmul(e, sv)))
                st_bf16(g + i, vmul(round_bf16(e), sv));
        }
    for (; i + W <= n; i += W)
        st_bf16(g + i, vmul(round_bf16(exp2_d3(vfma(ld_bf16(x + i), l2e, nl))), sv));
    kgp_ce_grad_bf16__scalar(g + i, x + i, lse, s, n - i);
}

/* Four vectors of outputs per pass over the filter taps (the tap's phase and offset stepped,
 * not divided), then one vector at a time; rows narrower than a vector by the reference: each
 * output the same fmaf chain as the reference's. */
void FN(dwconv_f32)(float *y, const float *x, long ldp, const float *f, long S, long stride,
                    long Q)
{
    long q = 0;
    for (; q + 4 * W <= Q; q += 4 * W) {
        vf a0 = set1(0.0f), a1 = a0, a2 = a0, a3 = a0;
        const float *xs = x + q;
        for (long s = 0, ph = 0; s < S; s++) {
            vf fs = set1(f[s]);
            a0 = vfma(fs, ld(xs), a0);
            a1 = vfma(fs, ld(xs + W), a1);
            a2 = vfma(fs, ld(xs + 2 * W), a2);
            a3 = vfma(fs, ld(xs + 3 * W), a3);
            if (++ph == stride)
                ph = 0, xs += 1 - (stride - 1) * ldp;
            else
                xs += ldp;
        }
        st(y + q, a0), st(y + q + W, a1), st(y + q + 2 * W, a2), st(y + q + 3 * W, a3);
    }
    /* then one vector at a time, the last as the vector ending at Q (it writes some outputs
     * again, with the same bits; the reference's fmaf is a call, some 20 times slower) */
    for (; q < Q && Q >= W; q += W) {
        long t = q + W <= Q ? q : Q - W;
        vf a = set1(0.0f);
        const float *xs = x + t;
        for (long s = 0, ph = 0; s < S; s++) {
            a = vfma(set1(f[s]), ld(xs), a);
            if (++ph == stride)
                ph = 0, xs += 1 - (stride - 1) * ldp;
            else
                xs += ldp;
        }
        st(y + t, a);
    }
    if (q < Q)
        kgp_dwconv_f32__scalar(y + q, x + q, ldp, f, S, stride, Q - q);
}

/* Outputs [o, o + n) (n <= W) as one vector, each tap's lanes outside the row loaded as the
 * reference's +0 padding: the edges, where taps leave the row. */
static void dw_edge_bf16(kg_u16 *y, const kg_u16 *x, long w, const float *f, long S, long pl,
                         long o, long n)
{
    vf a = set1(0.0f);
    for (long s = 0; s < S; s++)
        a = vfma(set1(f[s]), fbits(slli(ld16_in(x, o - pl + s, w), 16)), a);
    st16n(y + o, bf16_of(bits(a)), n);
}

/* Outputs whose taps all lie in x (q in [pl, w + pl - S]) four vectors at a time, widened from
 * x per tap (the row is read once from memory, its taps from L1), rounded once, then one at a
 * time, the last few as the vector ending at the interior's end (it writes some outputs again,
 * with the same bits); the edges, and rows with no whole vector inside, by dw_edge_bf16. The
 * reference computes each output alike (fmaf over the taps, padding +0), so the bits are its. */
void FN(dwconv_bf16)(kg_u16 *y, const kg_u16 *x, long w, const float *f, long S, long pl, long Q)
{
    long q0 = pl < Q ? pl : Q, q1 = w + pl - S + 1 < Q ? w + pl - S + 1 : Q, q = q0;
    if (q1 - q0 < W) { /* no whole vector inside */
        for (long o = 0; o < Q; o += W)
            dw_edge_bf16(y, x, w, f, S, pl, o, Q - o < W ? Q - o : W);
        return;
    }
    for (long o = 0; o < q0; o += W)
        dw_edge_bf16(y, x, w, f, S, pl, o, q0 - o < W ? q0 - o : W);
    for (; q + 4 * W <= q1; q += 4 * W) {
        vf a0 = set1(0.0f), a1 = a0, a2 = a0, a3 = a0;
        const kg_u16 *xs = x + q - pl;
        for (long s = 0; s < S; s++, xs++) {
            vf fs = set1(f[s]);
            a0 = vfma(fs, ld_bf16(xs), a0);
            a1 = vfma(fs, ld_bf16(xs + W), a1);
            a2 = vfma(fs, ld_bf16(xs + 2 * W), a2);
            a3 = vfma(fs, ld_bf16(xs + 3 * W), a3);
        }
        st_bf16(y + q, a0), st_bf16(y + q + W, a1);
        st_bf16(y + q + 2 * W, a2), st_bf16(y + q + 3 * W, a3);
    }
    for (; q < q1; q += W) {
        long t = q + W <= q1 ? q : q1 - W;
        vf a = set1(0.0f);
        for (long s = 0; s < S; s++)
            a = vfma(set1(f[s]), ld_bf16(x + t - pl + s), a);
        st_bf16(y + t, a);
    }
    for (long o = q1; o < Q; o += W)
        dw_edge_bf16(y, x, w, f, S, pl, o, Q - o < W ? Q - o : W);
}
