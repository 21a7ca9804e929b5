/* prim_simd_body.h: the element-wise and reduction primitives written once over a small vector
 * vocabulary, included by prim_avx512_ew.c (16 lanes) and prim_avx2.c (8 lanes), which define
 * before including it:
 *   W               lanes per vector
 *   FN(name)        the implementation's symbol, kgp_<name>__<isa>
 *   vf, vi, vm      float vector, 32-bit int vector, lane mask
 *   ld st set1 vadd vsub vmul vabs    float loads, stores and arithmetic (one rounding each)
 *   bits fbits iset1 iand ior iadd srli slli    int lanes and reinterpretation
 *   igt isel fsel flt fgt isnanv anym           signed compare, selects, ordered compares
 *   ld16 st16       W u16 zero-extended to / truncated from 32-bit lanes
 *   ld_ph           W fp16 to fp32 (vcvtph2ps: exact, NaN payload kept with the quiet bit set)
 *   ps2ph           fp32 to fp16 bits in 32-bit lanes (vcvtps2ph, round to nearest even)
 *   dup2 swap2 subadd    rot_pairs helpers: (c0 c0 c1 c1 ..), swap within pairs, even lanes
 *                   a - b and odd lanes a + b
 *   hsum hmax       horizontal sum and max
 *
 * Element-wise primitives give exactly the scalar bits (prim_scalar.c): each vector operation
 * rounds once, in the order of the scalar expression, and the file is built with
 * -ffp-contract=off. Remainders shorter than a vector go to the scalar reference. Reductions sum
 * in W-lane partial sums (kgen/abi.h allows their own order); maxabs is exact anyway.
 * cumsum_f32 stays scalar: its contract is a left-to-right fp32 sum, a serial chain a SIMD scan
 * could only reassociate. */

/* ---- conversions ------------------------------------------------------------------------- */

#define F32_SIGN ((int)0x80000000u)
#define F32_INF 0x7f800000

/* bf16 bits (in 32-bit lanes) of fp32 bits u, exactly kg_f32_to_bf16: NaN -> 0x7fc0 | sign,
 * else u + 0x7fff + (bit 16 of u), top half (a carry into the exponent gives inf). */
static inline vi bf16_of(vi u)
{
    vm nan = igt(iand(u, iset1(0x7fffffff)), iset1(F32_INF));
    vi r = srli(iadd(iadd(u, iset1(0x7fff)), iand(srli(u, 16), iset1(1))), 16);
    vi q = ior(iand(srli(u, 16), iset1(0x8000)), iset1(0x7fc0));
    return isel(nan, q, r);
}

/* fp16 bits (in 32-bit lanes), exactly kg_f32_to_f16: the hardware conversion rounds to nearest
 * even, overflows to inf and makes fp16 subnormals; only its NaN keeps the payload's top bits,
 * where the reference gives 0x7e00 | sign. */
static inline vi f16_of(vf x)
{
    vi u = bits(x);
    return isel(isnanv(x), ior(iand(srli(u, 16), iset1(0x8000)), iset1(0x7e00)), ps2ph(x));
}

void FN(cvt_bf16_f32)(float *y, const kg_u16 *x, long n)
{
    long i = 0;
    for (; i + W <= n; i += W)
        st(y + i, fbits(slli(ld16(x + i), 16)));
    kgp_cvt_bf16_f32__scalar(y + i, x + i, n - i);
}

void FN(cvt_f16_f32)(float *y, const kg_u16 *x, long n)
{
    long i = 0;
    for (; i + W <= n; i += W)
        st(y + i, ld_ph(x + i));
    kgp_cvt_f16_f32__scalar(y + i, x + i, n - i);
}

void FN(cvt_f32_bf16)(kg_u16 *y, const float *x, long n)
{
    long i = 0;
    for (; i + W <= n; i += W)
        st16(y + i, bf16_of(bits(ld(x + i))));
    kgp_cvt_f32_bf16__scalar(y + i, x + i, n - i);
}

void FN(cvt_f32_f16)(kg_u16 *y, const float *x, long n)
{
    long i = 0;
    for (; i + W <= n; i += W)
        st16(y + i, f16_of(ld(x + i)));
    kgp_cvt_f32_f16__scalar(y + i, x + i, n - i);
}

void FN(round_bf16_f32)(float *y, const float *x, long n)
{
    long i = 0;
    for (; i + W <= n; i += W)
        st(y + i, fbits(slli(bf16_of(bits(ld(x + i))), 16)));
    kgp_round_bf16_f32__scalar(y + i, x + i, n - i);
}

/* Round trip through fp16; a NaN becomes the widened 0x7e00 | sign, fp32 0x7fc00000 | sign. */
void FN(round_f16_f32)(float *y, const float *x, long n)
{
    long i = 0;
    for (; i + W <= n; i += W) {
        vf v = ld(x + i);
        vf r = ph_to_ps(ps2ph(v));
        vf q = fbits(ior(iand(bits(v), iset1(F32_SIGN)), iset1(0x7fc00000)));
        st(y + i, fsel(isnanv(v), q, r));
    }
    kgp_round_f16_f32__scalar(y + i, x + i, n - i);
}

/* ---- element-wise arithmetic ---------------------------------------------------------------- */

void FN(scale_mul_f32)(float *y, const float *x, float s, const float *g, long n)
{
    long i = 0;
    vf vs = set1(s);
    if (g) {
        for (; i + W <= n; i += W)
            st(y + i, vmul(vmul(ld(x + i), vs), ld(g + i)));
        kgp_scale_mul_f32__scalar(y + i, x + i, s, g + i, n - i);
    } else {
        for (; i + W <= n; i += W)
            st(y + i, vmul(ld(x + i), vs));
        kgp_scale_mul_f32__scalar(y + i, x + i, s, 0, n - i);
    }
}

/* v < lo ? lo : v > hi ? hi : v with ordered compares, so a NaN v is kept (min/max would not). */
void FN(clamp_f32)(float *y, const float *x, float lo, float hi, long n)
{
    long i = 0;
    vf vlo = set1(lo), vhi = set1(hi);
    for (; i + W <= n; i += W) {
        vf v = ld(x + i);
        st(y + i, fsel(flt(v, vlo), vlo, fsel(fgt(v, vhi), vhi, v)));
    }
    kgp_clamp_f32__scalar(y + i, x + i, lo, hi, n - i);
}

void FN(add_f32)(float *y, const float *a, const float *b, long n)
{
    long i = 0;
    for (; i + W <= n; i += W)
        st(y + i, vadd(ld(a + i), ld(b + i)));
    kgp_add_f32__scalar(y + i, a + i, b + i, n - i);
}

void FN(mul_f32)(float *y, const float *a, const float *b, long n)
{
    long i = 0;
    for (; i + W <= n; i += W)
        st(y + i, vmul(ld(a + i), ld(b + i)));
    kgp_mul_f32__scalar(y + i, a + i, b + i, n - i);
}

void FN(affine_f32)(float *y, const float *x, float mu, float s, const float *g, const float *b,
                    long n)
{
    long i = 0;
    vf vmu = set1(mu), vs = set1(s);
    if (g && b) {
        for (; i + W <= n; i += W)
            st(y + i, vadd(vmul(vmul(vsub(ld(x + i), vmu), vs), ld(g + i)), ld(b + i)));
    } else if (g) {
        for (; i + W <= n; i += W)
            st(y + i, vmul(vmul(vsub(ld(x + i), vmu), vs), ld(g + i)));
    } else if (b) {
        for (; i + W <= n; i += W)
            st(y + i, vadd(vmul(vsub(ld(x + i), vmu), vs), ld(b + i)));
    } else {
        for (; i + W <= n; i += W)
            st(y + i, vmul(vsub(ld(x + i), vmu), vs));
    }
    kgp_affine_f32__scalar(y + i, x + i, mu, s, g ? g + i : 0, b ? b + i : 0, n - i);
}

/* ---- rotations (each vector reads all its inputs before it stores, so y may alias x) ------- */

void FN(rot_rows_f32)(float *y0, float *y1, const float *x0, const float *x1, const float *c,
                      const float *s, long n)
{
    long i = 0;
    for (; i + W <= n; i += W) {
        vf a = ld(x0 + i), b = ld(x1 + i), vc = ld(c + i), vs = ld(s + i);
        vf r0 = vsub(vmul(a, vc), vmul(b, vs));
        vf r1 = vadd(vmul(b, vc), vmul(a, vs));
        st(y0 + i, r0);
        st(y1 + i, r1);
    }
    kgp_rot_rows_f32__scalar(y0 + i, y1 + i, x0 + i, x1 + i, c + i, s + i, n - i);
}

/* W/2 pairs per vector: x*(c c) gives (a*c, b*c), swap(x)*(s s) gives (b*s, a*s); even lanes
 * subtract, odd lanes add (a*s + b*c is b*c + a*s: addition commutes exactly). */
void FN(rot_pairs_f32)(float *y, const float *x, const float *c, const float *s, long h)
{
    long j = 0;
    for (; j + W / 2 <= h; j += W / 2) {
        vf v = ld(x + 2 * j);
        vf t1 = vmul(v, dup2(c + j)), t2 = vmul(swap2(v), dup2(s + j));
        st(y + 2 * j, subadd(t1, t2));
    }
    kgp_rot_pairs_f32__scalar(y + 2 * j, x + 2 * j, c + j, s + j, h - j);
}

/* The scalar tail runs on the last h - j pairs with halves h apart: rebuild it on offsets. */
static void rot_hf_tail(float *y, const float *x, const float *c, const float *s, long j, long h,
                        int bwd)
{
    for (; j < h; j++) {
        float a = x[j], b = x[j + h];
        if (bwd) {
            y[j] = a * c[j] + b * s[j + h];
            y[j + h] = b * c[j + h] - a * s[j];
        } else {
            y[j] = a * c[j] - b * s[j];
            y[j + h] = b * c[j + h] + a * s[j + h];
        }
    }
}

void FN(rot_hf_f32)(float *y, const float *x, const float *c, const float *s, long h)
{
    long j = 0;
    for (; j + W <= h; j += W) {
        vf a = ld(x + j), b = ld(x + j + h);
        vf r0 = vsub(vmul(a, ld(c + j)), vmul(b, ld(s + j)));
        vf r1 = vadd(vmul(b, ld(c + j + h)), vmul(a, ld(s + j + h)));
        st(y + j, r0);
        st(y + j + h, r1);
    }
    rot_hf_tail(y, x, c, s, j, h, 0);
}

void FN(rot_hf_bwd_f32)(float *y, const float *x, const float *c, const float *s, long h)
{
    long j = 0;
    for (; j + W <= h; j += W) {
        vf a = ld(x + j), b = ld(x + j + h);
        vf r0 = vadd(vmul(a, ld(c + j)), vmul(b, ld(s + j + h)));
        vf r1 = vsub(vmul(b, ld(c + j + h)), vmul(a, ld(s + j)));
        st(y + j, r0);
        st(y + j + h, r1);
    }
    rot_hf_tail(y, x, c, s, j, h, 1);
}

/* ---- reductions ------------------------------------------------------------------------------ */

float FN(sumsq_f32)(const float *x, long n)
{
    long i = 0;
    vf a0 = set1(0.0f), a1 = a0, a2 = a0, a3 = a0;
    for (; i + 4 * W <= n; i += 4 * W) {
        vf v0 = ld(x + i), v1 = ld(x + i + W), v2 = ld(x + i + 2 * W), v3 = ld(x + i + 3 * W);
        a0 = vadd(a0, vmul(v0, v0));
        a1 = vadd(a1, vmul(v1, v1));
        a2 = vadd(a2, vmul(v2, v2));
        a3 = vadd(a3, vmul(v3, v3));
    }
    for (; i + W <= n; i += W) {
        vf v = ld(x + i);
        a0 = vadd(a0, vmul(v, v));
    }
    return hsum(vadd(vadd(a0, a1), vadd(a2, a3))) + kgp_sumsq_f32__scalar(x + i, n - i);
}

float FN(sum_f32)(const float *x, long n)
{
    long i = 0;
    vf a0 = set1(0.0f), a1 = a0, a2 = a0, a3 = a0;
    for (; i + 4 * W <= n; i += 4 * W) {
        a0 = vadd(a0, ld(x + i));
        a1 = vadd(a1, ld(x + i + W));
        a2 = vadd(a2, ld(x + i + 2 * W));
        a3 = vadd(a3, ld(x + i + 3 * W));
    }
    for (; i + W <= n; i += W)
        a0 = vadd(a0, ld(x + i));
    return hsum(vadd(vadd(a0, a1), vadd(a2, a3))) + kgp_sum_f32__scalar(x + i, n - i);
}

/* Exactly the scalar result: the max of magnitudes (all >= +0) does not depend on order, and
 * at the first vector holding a NaN the scalar takes over from there, so it returns the first
 * NaN (sign cleared) as the reference does. */
float FN(maxabs_f32)(const float *x, long n)
{
    long i = 0;
    vf m = set1(0.0f);
    for (; i + W <= n; i += W) {
        vf v = vabs(ld(x + i));
        if (anym(isnanv(v)))
            return kgp_maxabs_f32__scalar(x + i, n - i);
        m = vmax(m, v);
    }
    float r = hmax(m), t = kgp_maxabs_f32__scalar(x + i, n - i);
    return t != t || t > r ? t : r;
}
