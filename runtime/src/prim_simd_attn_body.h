/* prim_simd_attn_body.h: attention's row primitives (scores against key rows or columns, P @ V
 * rows, the softmax's max and exp-sum) over the vector vocabulary of prim_simd_body.h, included
 * right after it by prim_avx512_ew.c and prim_avx2.c; their scalar references are in
 * prim_scalar.c. */

/* ---- attention's pieces ----------------------------------------------------------------------- */

/* QB query rows against KB key rows stored [n, d]: QB x KB accumulators of W lanes along d,
 * each key vector loaded once for all QB queries; the lane sums and the tail of d (scalar,
 * ascending) make each score. Called with constant QB, KB, and the loops unrolled by pragma
 * (gcc -O2 left them rolled, the accumulators in memory) so they live in registers. */
static inline __attribute__((always_inline)) void dot_rows_block(float *s, long lds,
    const float *q, long ldq, const float *k, long ldk, long d, int QB, int KB)
{
    vf acc[4][2];
    #pragma GCC unroll 4
    for (int a = 0; a < QB; a++)
        #pragma GCC unroll 4
        for (int b = 0; b < KB; b++)
            acc[a][b] = set1(0.0f);
    long t = 0;
    for (; t + W <= d; t += W) {
        vf kv[2];
        #pragma GCC unroll 4
        for (int b = 0; b < KB; b++)
            kv[b] = ld(k + b * ldk + t);
        #pragma GCC unroll 4
        for (int a = 0; a < QB; a++) {
            vf qv = ld(q + a * ldq + t);
            #pragma GCC unroll 4
            for (int b = 0; b < KB; b++)
                acc[a][b] = vfma(qv, kv[b], acc[a][b]);
        }
    }
    #pragma GCC unroll 4
    for (int a = 0; a < QB; a++)
        #pragma GCC unroll 4
        for (int b = 0; b < KB; b++) {
            float r = hsum(acc[a][b]);
            for (long u = t; u < d; u++)
                r += q[a * ldq + u] * k[b * ldk + u];
            s[a * lds + b] = r;
        }
}

void FN(dot_rows_f32)(float *s, long lds, const float *q, long ldq, long m, const float *k,
                      long ldk, long n, long d)
{
    long i = 0;
    for (; i + 4 <= m; i += 4) {
        long j = 0;
        for (; j + 2 <= n; j += 2)
            dot_rows_block(s + i * lds + j, lds, q + i * ldq, ldq, k + j * ldk, ldk, d, 4, 2);
        if (j < n)
            dot_rows_block(s + i * lds + j, lds, q + i * ldq, ldq, k + j * ldk, ldk, d, 4, 1);
    }
    for (; i < m; i++) {
        long j = 0;
        for (; j + 2 <= n; j += 2)
            dot_rows_block(s + i * lds + j, lds, q + i * ldq, ldq, k + j * ldk, ldk, d, 1, 2);
        if (j < n)
            dot_rows_block(s + i * lds + j, lds, q + i * ldq, ldq, k + j * ldk, ldk, d, 1, 1);
    }
}

/* Keys stored [d, n]: W keys per vector, each lane the reference's fma chain over t. */
void FN(dot_cols_f32)(float *s, long lds, const float *q, long ldq, long m, const float *kt,
                      long ldk, long n, long d)
{
    long j = 0;
    for (; j + W <= n; j += W)
        for (long i = 0; i < m; i++) {
            vf acc = set1(0.0f);
            for (long t = 0; t < d; t++)
                acc = vfma(set1(q[i * ldq + t]), ld(kt + t * ldk + j), acc);
            st(s + i * lds + j, acc);
        }
    if (j < n) /* the last n - j < W keys: masked, as axpy_rows_f32's tail */
        for (long i = 0; i < m; i++) {
            vf acc = set1(0.0f);
            for (long t = 0; t < d; t++)
                acc = vfma(set1(q[i * ldq + t]), ldn(kt + t * ldk + j, n - j), acc);
            stn(s + i * lds + j, acc, n - j);
        }
}

/* QB output rows by 2 vectors of d: each value vector loaded once for the QB rows, each lane
 * the reference's fma chain over j. */
static inline __attribute__((always_inline)) void axpy_rows_block(float *o, long ldo,
    const float *p, long ldp, const float *v, long ldv, long n, long t, int QB, int TB)
{
    vf acc[4][2];
    #pragma GCC unroll 4
    for (int a = 0; a < QB; a++)
        #pragma GCC unroll 4
        for (int b = 0; b < TB; b++)
            acc[a][b] = ld(o + a * ldo + t + b * W);
    for (long j = 0; j < n; j++) {
        vf vv[2];
        #pragma GCC unroll 4
        for (int b = 0; b < TB; b++)
            vv[b] = ld(v + j * ldv + t + b * W);
        #pragma GCC unroll 4
        for (int a = 0; a < QB; a++) {
            vf pv = set1(p[a * ldp + j]);
            #pragma GCC unroll 4
            for (int b = 0; b < TB; b++)
                acc[a][b] = vfma(pv, vv[b], acc[a][b]);
        }
    }
    #pragma GCC unroll 4
    for (int a = 0; a < QB; a++)
        #pragma GCC unroll 4
        for (int b = 0; b < TB; b++)
            st(o + a * ldo + t + b * W, acc[a][b]);
}

void FN(axpy_rows_f32)(float *o, long ldo, const float *p, long ldp, long m, const float *v,
                       long ldv, long n, long d)
{
    long i = 0, t;
    for (; i + 4 <= m; i += 4) {
        for (t = 0; t + 2 * W <= d; t += 2 * W)
            axpy_rows_block(o + i * ldo, ldo, p + i * ldp, ldp, v, ldv, n, t, 4, 2);
        for (; t + W <= d; t += W)
            axpy_rows_block(o + i * ldo, ldo, p + i * ldp, ldp, v, ldv, n, t, 4, 1);
    }
    for (; i < m; i++) {
        for (t = 0; t + 2 * W <= d; t += 2 * W)
            axpy_rows_block(o + i * ldo, ldo, p + i * ldp, ldp, v, ldv, n, t, 1, 2);
        for (; t + W <= d; t += W)
            axpy_rows_block(o + i * ldo, ldo, p + i * ldp, ldp, v, ldv, n, t, 1, 1);
    }
    /* the last d - t < W columns: masked vectors, each lane the same fma chain. The scalar
     * reference's fmaf calls were ~8% of tiny.lua's decode megakernel, whose transposed keys
     * make a tile's positions this d (m 2, n 64, d 7 from L1, one Zen 5 thread: 0.13 against
     * 2.6 us a call) */
    t = d / W * W;
    if (t < d)
        for (i = 0; i < m; i++) {
            vf acc = ldn(o + i * ldo + t, d - t);
            for (long j = 0; j < n; j++)
                acc = vfma(set1(p[i * ldp + j]), ldn(v + j * ldv + t, d - t), acc);
            stn(o + i * ldo + t, acc, d - t);
        }
}

/* Exact but for a zero's sign: the max does not depend on order, and at the first vector
 * holding a NaN the reference takes over (its first NaN is the answer). */
float FN(max_f32)(const float *x, long n)
{
    long i = 0;
    vf mv = set1(-__builtin_inff());
    for (; i + W <= n; i += W) {
        vf v = ld(x + i);
        if (anym(isnanv(v)))
            return kgp_max_f32__scalar(x + i, n - i);
        mv = vmax(mv, v);
    }
    float r = hmax(mv), t = kgp_max_f32__scalar(x + i, n - i);
    return t != t || t > r ? t : r;
}

/* kg_exp of prim_scalar.c, operation for operation (its constants repeated: change both). */
static inline vf vexp(vf t)
{
    static const float P[6] = { 1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                                4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f };
    vf kd = vadd(vmul(t, set1(1.44269504088896341f)), set1(0x1.8p23f));
    vi nb = bits(kd);
    kd = vsub(kd, set1(0x1.8p23f));
    vf r = vsub(vsub(t, vmul(kd, set1(0.693359375f))), vmul(kd, set1(-2.12194440e-4f)));
    vf p = set1(P[0]);
    for (int i = 1; i < 6; i++)
        p = vadd(vmul(p, r), set1(P[i]));
    p = vadd(vadd(vmul(p, vmul(r, r)), r), set1(1.0f));
    vf e = vmul(p, fbits(slli(iadd(nb, iset1(127)), 23)));
    e = fsel(flt(t, set1(-87.0f)), set1(0.0f), e);
    return fsel(fgt(t, set1(88.0f)), set1(__builtin_inff()), e);
}

float FN(exp_sum_f32)(float *y, const float *x, float m, long n)
{
    long i = 0;
    vf acc = set1(0.0f), mv = set1(m);
    for (; i + W <= n; i += W) {
        vf e = vexp(vsub(ld(x + i), mv));
        st(y + i, e);
        acc = vadd(acc, e);
    }
    if (i < n) { /* the last n - i as a masked vector, its other lanes adding 0 */
        vf e = fsel(first_n(n - i), vexp(vsub(ldn(x + i, n - i), mv)), set1(0.0f));
        stn(y + i, e, n - i);
        acc = vadd(acc, e);
    }
    return hsum(acc);
}
