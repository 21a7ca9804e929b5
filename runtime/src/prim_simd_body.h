/* prim_simd_body.h: the element-wise and reduction primitives written once over a small vector
 * vocabulary, included by prim_avx512_ew.c (16 lanes) and prim_avx2.c (8 lanes), which define
 * before including it (attention's rows follow in prim_simd_attn_body.h, the training kernels'
 * in prim_simd_loss_body.h, over the same vocabulary):
 *   W               lanes per vector
 *   FN(name)        the implementation's symbol, kgp_<name>__<isa>
 *   vf, vi, vm      float vector, 32-bit int vector, lane mask
 *   ld st set1 vadd vsub vmul vdiv vabs    float loads, stores and arithmetic (one rounding each)
 *   ldn stn         the first n < W lanes loaded (the others 0) or stored, masked: no byte past
 *                   them is touched (attention's row tails)
 *   vmax            vmaxps: as vmin
 *   vfma            fused a * b + c, one rounding (fmaf's bits)
 *   bits fbits iset1 iand ior iadd isub srli slli    int lanes and reinterpretation
 *   igt isel fsel flt fgt isnanv anym           signed compare, selects, ordered compares
 *   ld16 st16       W u16 zero-extended to / truncated from 32-bit lanes
 *   ld16_in st16n   ld16 of x[j + i] where 0 <= j + i < w, 0 elsewhere, and st16 of the first
 *                   n <= W lanes: nothing outside x[0, w) or p[0, n) is touched (a conv row's
 *                   edges)
 *   st8             W bytes truncated from 32-bit lanes (each below 256)
 *   ld_ph           W fp16 to fp32 (vcvtph2ps: exact, NaN payload kept with the quiet bit set)
 *   ps2ph           fp32 to fp16 bits in 32-bit lanes (vcvtps2ph, round to nearest even)
 *   dup2 swap2 subadd    rot_pairs helpers: (c0 c0 c1 c1 ..), swap within pairs, even lanes
 *                   a - b and odd lanes a + b
 *   hsum hmax       horizontal sum and max
 *   vmin            vminps (the second operand when either is NaN or both are zeros)
 *   vround vscalef  nearest integer (ties to even); p * 2^n for integral n in [-126, 127]
 *   vfrac vldexp    y - floor(y); p * 2^floor(y) rounded once (both as the reference clamps y)
 *   ld2_bf16        2W bf16 widened into two vectors, lanes in any order (sums and maxima)
 *   imin            signed 32-bit minimum
 *   st_bf16_hw round_bf16_hw    a bf16 conversion instruction where the ISA has one: it stores
 *                   W bf16 of v (or gives them widened back to fp32) and returns 1 when its
 *                   rounding is the reference's for every lane, else returns 0 and does nothing
 *   transpose       W x W in registers: lane k of r[c] becomes the old lane c of r[k] (not
 *                   needed where KGR_CUMSUM_ROWS_ELSEWHERE and KGR_TRANSPOSE_ELSEWHERE say
 *                   cumsum_rows_f32 and transpose_f32 are defined by the including file)
 *   vd, vmd         W / 2 doubles and their lane mask, for the activations:
 *   dlo dhi fpack   low / high half of a vf widened to vd (exact); two vd rounded into a vf
 *   dset1 dadd dsub dmul ddiv dabs dlt dgt dsel    double arithmetic, compares, select
 *   dbits dfbits iadd64 slli64                     64-bit int lanes of a vd
 *
 * Element-wise primitives give exactly the scalar bits (prim_scalar.c): each vector operation
 * rounds once, in the order of the scalar expression, and the file is built with
 * -ffp-contract=off. Remainders shorter than a vector go to the scalar reference (but those
 * of axpy_rows_f32, dot_cols_f32 and exp_sum_f32, masked vectors: theirs are a decode tile's
 * positions).
 * Reductions sum in W-lane partial sums (kgen/abi.h allows their own order); maxabs is exact
 * anyway.
 * cumsum_f32 stays scalar: its contract is a left-to-right fp32 sum, a serial chain a SIMD scan
 * could only reassociate; cumsum_rows_f32 runs W such chains side by side instead. */

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

/* W bf16 of v at p, and v rounded to bf16 in fp32: the ISA's instruction when it is exact for
 * these lanes, else the integer rounding above. */
static inline void st_bf16(kg_u16 *p, vf v)
{
    if (!st_bf16_hw(p, v))
        st16(p, bf16_of(bits(v)));
}

static inline vf round_bf16(vf v)
{
    vf r;
    return round_bf16_hw(v, &r) ? r : fbits(slli(bf16_of(bits(v)), 16));
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
        st_bf16(y + i, ld(x + i));
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
        st(y + i, round_bf16(ld(x + i)));
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

/* One row's pairs j..h-1 of rot_half_rows past its last whole vector. */
static void rot_half_tail_f32(float *y, const float *x, const float *c, const float *s, long o,
                              long j, long h)
{
    for (; j < h; j++) {
        float a = x[j], b = x[j + h];
        y[j] = a * c[j] - b * s[j];
        y[j + h] = b * c[j + o] + a * s[j + o];
    }
}

static void rot_half_tail_bf16(kg_u16 *y, const kg_u16 *x, const float *c, const float *s,
                               long o, long j, long h)
{
    for (; j < h; j++) {
        float a = kg_bf16_to_f32(x[j]), b = kg_bf16_to_f32(x[j + h]);
        y[j] = kg_f32_to_bf16(a * c[j] - b * s[j]);
        y[j + h] = kg_f32_to_bf16(b * c[j + o] + a * s[j + o]);
    }
}

void FN(rot_half_rows_f32)(float *y, const float *x, const float *c, const float *s, long ts,
                           long o, long rows, long h)
{
    for (long r = 0; r < rows; r++, y += 2 * h, x += 2 * h, c += ts, s += ts) {
        long j = 0;
        for (; j + W <= h; j += W) {
            vf a = ld(x + j), b = ld(x + j + h);
            vf r0 = vsub(vmul(a, ld(c + j)), vmul(b, ld(s + j)));
            vf r1 = vadd(vmul(b, ld(c + j + o)), vmul(a, ld(s + j + o)));
            st(y + j, r0);
            st(y + j + h, r1);
        }
        rot_half_tail_f32(y, x, c, s, o, j, h);
    }
}

/* The fp32 arithmetic of rot_half_rows_f32 between an exact widening and st_bf16. */
void FN(rot_half_rows_bf16)(kg_u16 *y, const kg_u16 *x, const float *c, const float *s, long ts,
                            long o, long rows, long h)
{
    for (long r = 0; r < rows; r++, y += 2 * h, x += 2 * h, c += ts, s += ts) {
        long j = 0;
        for (; j + W <= h; j += W) {
            vf a = fbits(slli(ld16(x + j), 16)), b = fbits(slli(ld16(x + j + h), 16));
            vf r0 = vsub(vmul(a, ld(c + j)), vmul(b, ld(s + j)));
            vf r1 = vadd(vmul(b, ld(c + j + o)), vmul(a, ld(s + j + o)));
            st_bf16(y + j, r0);
            st_bf16(y + j + h, r1);
        }
        rot_half_tail_bf16(y, x, c, s, o, j, h);
    }
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

/* scale_mul_f32, round_bf16_f32 and maxabs_f32 in one pass. The first vector holding a NaN is
 * left unstored (y may be x) and the reference takes over from it, as in maxabs_f32, so the
 * result is the reference's first NaN. */
float FN(scale_round_bf16_f32)(float *y, const float *x, float s, const float *g, long n)
{
    long i = 0;
    vf vs = set1(s), m = set1(0.0f);
    for (; i + W <= n; i += W) {
        vf v = vmul(ld(x + i), vs);
        v = round_bf16(g ? vmul(v, ld(g + i)) : v);
        vf a = vabs(v);
        if (anym(isnanv(a)))
            break;
        st(y + i, v);
        m = vmax(m, a);
    }
    float r = hmax(m);
    float t = kgp_scale_round_bf16_f32__scalar(y + i, x + i, s, g ? g + i : 0, n - i);
    return t != t || t > r ? t : r;
}

/* ---- fp8 quantizers (kg_f32_to_e4m3 / kg_f32_to_e4m3fn and their decoders, kgen/dtype.h) ----- */

#define E4M3_MIN_NORMAL 0x3c800000 /* 2^-6 */
#define F32_QNAN 0x7fc00000
#define TWO_14 16384.0f            /* its ulp is 2^-9, the e4m3 subnormal step */
#define TWO_14_BITS 0x46800000

/* The e4m3 magnitude code of a finite fp32 magnitude a (bits, sign clear), exactly dtype.c's
 * round_mag(a, 3, 7). At or above 2^-6 (an e4m3 normal): adding 0x7ffff plus the lowest kept bit
 * rounds a's bits to 3 mantissa bits, nearest even, a carry bumping the exponent, and the rebias
 * 127 -> 7 subtracts 120 from the exponent field. Below: the code is |x| / 2^-9 rounded to
 * nearest even, which the fp32 addition |x| + 2^14 does (up to 8, the smallest normal code). The
 * result may pass the format's largest code; callers saturate. */
static inline vi e4m3_mag(vi a)
{
    vi norm = isub(srli(iadd(a, iadd(iset1(0x7ffff), iand(srli(a, 20), iset1(1)))), 20),
                   iset1(120 << 3));
    vi sub = isub(bits(vadd(fbits(a), set1(TWO_14))), iset1(TWO_14_BITS));
    return isel(igt(a, iset1(E4M3_MIN_NORMAL - 1)), norm, sub);
}

/* The fp32 bits of a finite e4m3 magnitude code c (exact, dtype.c's widen_mag(c, 3, 7)). */
static inline vi e4m3_widen(vi c)
{
    vi norm = iadd(slli(c, 20), iset1(120 << 23));
    vi sub = bits(vsub(fbits(iadd(c, iset1(TWO_14_BITS))), set1(TWO_14)));
    return isel(igt(c, iset1(7)), norm, sub);
}

/* clampf(v, lo, hi) of prim_scalar.c (v < lo ? lo : v > hi ? hi : v) in two instructions, for
 * lo <= hi or NaN bounds: vmaxps and vminps return their second operand when either is NaN or
 * both are zeros, so v is kept exactly where neither compare holds (a NaN v, a NaN bound, v == a
 * bound). Crossed bounds (the quantizers' m < 0) differ: those calls go to the reference. */
static inline vf clampv(vf v, vf lo, vf hi)
{
    return vmin(hi, vmax(lo, v));
}

static inline vf scale_clamp(vf x, vf s, vf lo, vf hi) { return clampv(vmul(x, s), lo, hi); }

/* e4m3 code of fp32 bits u: past 240 (|x| >= 248) and inf give inf 0x78, NaN gives 0x7c. The
 * magnitude of an inf or NaN rounds far past 0x77, so only NaN needs its own select. */
static inline vi e4m3_code(vi u, vi *mag)
{
    vi a = iand(u, iset1(0x7fffffff));
    vi m = imin(e4m3_mag(a), iset1(0x78)); /* codes are >= 0 */
    *mag = isel(igt(a, iset1(F32_INF)), iset1(0x7c), m);
    return ior(*mag, iand(srli(u, 24), iset1(0x80)));
}

/* e4m3fn code: past 448 (|x| > 464), inf and NaN all round past 0x7e and give the NaN 0x7f. */
static inline vi e4m3fn_code(vi u, vi *mag)
{
    *mag = imin(e4m3_mag(iand(u, iset1(0x7fffffff))), iset1(0x7f));
    return ior(*mag, iand(srli(u, 24), iset1(0x80)));
}

void FN(quant_e4m3_f32)(kg_u8 *q, const float *x, float s, float m, long n)
{
    long i = 0;
    if (m < 0) { /* crossed bounds: see clampv */
        kgp_quant_e4m3_f32__scalar(q, x, s, m, n);
        return;
    }
    vf vs = set1(s), lo = set1(-m), hi = set1(m);
    vi mag;
    for (; i + W <= n; i += W)
        st8(q + i, e4m3_code(bits(scale_clamp(ld(x + i), vs, lo, hi)), &mag));
    kgp_quant_e4m3_f32__scalar(q + i, x + i, s, m, n - i);
}

void FN(quant_e4m3fn_f32)(kg_u8 *q, const float *x, float s, float m, long n)
{
    long i = 0;
    if (m < 0) { /* crossed bounds: see clampv */
        kgp_quant_e4m3fn_f32__scalar(q, x, s, m, n);
        return;
    }
    vf vs = set1(s), lo = set1(-m), hi = set1(m);
    vi mag;
    for (; i + W <= n; i += W)
        st8(q + i, e4m3fn_code(bits(scale_clamp(ld(x + i), vs, lo, hi)), &mag));
    kgp_quant_e4m3fn_f32__scalar(q + i, x + i, s, m, n - i);
}

/* quant_rows_e4m3_*: per row, the largest magnitude (exact in any order: a max of values >= 0;
 * vmax(v, m) returns m where v is NaN, as the reference's compare passes a NaN over), the
 * scale as the reference computes it, then the codes of x / s (one correctly rounded division
 * each, as the reference's). LOAD(p) gives W fp32 values at p; VAL(p, j) one. */
#define QUANT_ROWS(name, T, LOAD, VAL)                                                        \
    void FN(name)(kg_u8 *q, float *s, const T *x, long n, long k)                             \
    {                                                                                         \
        for (long r = 0; r < n; r++, x += k, q += k) {                                        \
            long i = 0;                                                                       \
            vf m = set1(0.0f);                                                                \
            for (; i + W <= k; i += W)                                                        \
                m = vmax(vabs(LOAD(x + i)), m);                                               \
            float a = hmax(m);                                                                \
            for (; i < k; i++)                                                                \
                a = __builtin_fabsf(VAL(x, i)) > a ? __builtin_fabsf(VAL(x, i)) : a;          \
            float sc = a > 0 ? a / 240.0f : 1.0f;                                             \
            vf vs = set1(sc);                                                                 \
            vi mag;                                                                           \
            s[r] = sc;                                                                        \
            for (i = 0; i + W <= k; i += W)                                                   \
                st8(q + i, e4m3_code(bits(vdiv(LOAD(x + i), vs)), &mag));                     \
            for (; i < k; i++)                                                                \
                q[i] = kg_f32_to_e4m3(VAL(x, i) / sc);                                        \
        }                                                                                     \
    }

static inline vf ld_bf16(const kg_u16 *p) { return fbits(slli(ld16(p), 16)); }
#define VAL_F32(x, i) ((x)[i])
#define VAL_BF16(x, i) kg_bf16_to_f32((x)[i])
QUANT_ROWS(quant_rows_e4m3_f32, float, ld, VAL_F32)
QUANT_ROWS(quant_rows_e4m3_bf16, kg_u16, ld_bf16, VAL_BF16)
#undef QUANT_ROWS
#undef VAL_F32
#undef VAL_BF16

/* The decoded value of e4m3 code (magnitude mag): 0x78 is inf, 0x7c NaN (0x7fc00000 | sign). */
static inline vf e4m3_value(vi code, vi mag)
{
    vi v = isel(igt(mag, iset1(0x77)), iset1(F32_INF), e4m3_widen(mag));
    v = isel(igt(mag, iset1(0x78)), iset1(F32_QNAN), v);
    return fbits(ior(v, slli(iand(code, iset1(0x80)), 24)));
}

/* e4m3fn: 0x7f is NaN, 0x78..0x7e are the normals 256..448. */
static inline vf e4m3fn_value(vi code, vi mag)
{
    vi v = isel(igt(mag, iset1(0x7e)), iset1(F32_QNAN), e4m3_widen(mag));
    return fbits(ior(v, slli(iand(code, iset1(0x80)), 24)));
}

void FN(round_e4m3_f32)(float *y, const float *x, float s, float m, long n)
{
    long i = 0;
    if (m < 0) { /* crossed bounds: see clampv */
        kgp_round_e4m3_f32__scalar(y, x, s, m, n);
        return;
    }
    vf vs = set1(s), lo = set1(-m), hi = set1(m);
    for (; i + W <= n; i += W) {
        vi mag, c = e4m3_code(bits(scale_clamp(ld(x + i), vs, lo, hi)), &mag);
        st(y + i, e4m3_value(c, mag));
    }
    kgp_round_e4m3_f32__scalar(y + i, x + i, s, m, n - i);
}

void FN(round_e4m3fn_f32)(float *y, const float *x, float s, float m, long n)
{
    long i = 0;
    if (m < 0) { /* crossed bounds: see clampv */
        kgp_round_e4m3fn_f32__scalar(y, x, s, m, n);
        return;
    }
    vf vs = set1(s), lo = set1(-m), hi = set1(m);
    for (; i + W <= n; i += W) {
        vi mag, c = e4m3fn_code(bits(scale_clamp(ld(x + i), vs, lo, hi)), &mag);
        st(y + i, e4m3fn_value(c, mag));
    }
    kgp_round_e4m3fn_f32__scalar(y + i, x + i, s, m, n - i);
}

/* Whole blocks of 32 in vectors, the last partial block by the reference. The block exponent is
 * that of the largest non-NaN magnitude (the largest fp32 exponent field, as
 * kg_e8m0_block_exponent takes it); x / s and q * s are the reference's own operations. */
void FN(round_mx_e4m3fn_f32)(float *y, kg_u8 *e8, const float *x, long n)
{
    long b = 0;
    vf lo = set1(-448.0f), hi = set1(448.0f);
    for (; b * 32 + 32 <= n; b++) {
        const float *xb = x + b * 32;
        vf mx = set1(0.0f);
        for (int k = 0; k < 32; k += W) {
            vf v = ld(xb + k);
            mx = vmax(mx, fsel(isnanv(v), set1(0.0f), vabs(v)));
        }
        float top = hmax(mx);
        kg_u32 topbits;
        memcpy(&topbits, &top, 4);
        int e = (int)(topbits >> 23) - 8;
        e = e < 0 ? 0 : e > 254 ? 254 : e;
        float s = kg_e8m0_to_f32((kg_u8)e);
        vf vs = set1(s);
        for (int k = 0; k < 32; k += W) {
            vi mag, c = e4m3fn_code(bits(clampv(vdiv(ld(xb + k), vs), lo, hi)), &mag);
            st(y + b * 32 + k, vmul(e4m3fn_value(c, mag), vs));
        }
        if (e8)
            e8[b] = (kg_u8)e;
    }
    kgp_round_mx_e4m3fn_f32__scalar(y + b * 32, e8 ? e8 + b : 0, x + b * 32, n - b * 32);
}

/* ---- activations (the same double-precision algorithm as prim_scalar.c, step for step) ---- */

/* Constants shared with prim_scalar.c's copy: change both or the bit-exact test fails. */
#define EXP_SHIFT 0x1.8p52 /* adding it rounds |v| < 2^51 to an integer, nearest even */
#define LOG2E 1.4426950408889634
#define LN2_HI 6.93147180369123816490e-01 /* ln 2 to 32 bits: n * LN2_HI is exact */
#define LN2_LO 1.90821492927058770002e-10
#define SQRT1_2 0.70710678118654752440
#define GELU_TANH_K 1.59576912160573071175 /* 2 sqrt(2/pi): 0.5(1 + tanh u) = sigmoid(2u) */
static const double ERFC_P[14] = {
    0.008232402249845875, 0.11774521800644977, -1.1186981624725758, 3.8278516092116748,
    -7.035770699740481,   7.660146773776329,   -5.097003420968402,  2.3068817349492097,
    -0.9320374480870743,  0.09576134069571446, 0.054622101612510646, 0.37795350545980677,
    0.9998224537668073,   -1.265507408319349,
};

/* e^a for -708 <= a <= 708: a = n ln2 + r, e^r by Taylor to r^9, times 2^n in the exponent. */
static inline vd dexp(vd a)
{
    vd kd = dadd(dmul(a, dset1(LOG2E)), dset1(EXP_SHIFT));
    vi nb = dbits(kd);
    kd = dsub(kd, dset1(EXP_SHIFT));
    vd r = dsub(dsub(a, dmul(kd, dset1(LN2_HI))), dmul(kd, dset1(LN2_LO)));
    vd p = dset1(1.0 / 362880);
    p = dadd(dmul(p, r), dset1(1.0 / 40320));
    p = dadd(dmul(p, r), dset1(1.0 / 5040));
    p = dadd(dmul(p, r), dset1(1.0 / 720));
    p = dadd(dmul(p, r), dset1(1.0 / 120));
    p = dadd(dmul(p, r), dset1(1.0 / 24));
    p = dadd(dmul(p, r), dset1(1.0 / 6));
    p = dadd(dmul(p, r), dset1(0.5));
    p = dadd(dmul(p, r), dset1(1.0));
    p = dadd(dmul(p, r), dset1(1.0));
    return dmul(p, dfbits(slli64(iadd64(nb, 1023), 52)));
}

static inline vd dsigmoid(vd k)
{
    vd a = dsub(dset1(0.0), dabs(k));
    vd t = dsel(dlt(a, dset1(-708.0)), dset1(0.0), dexp(a));
    vd s = ddiv(dset1(1.0), dadd(dset1(1.0), t));
    return dsel(dlt(k, dset1(0.0)), dmul(t, s), s);
}

static inline vd dsilu(vd x) { return dmul(x, dsigmoid(x)); }
static inline vd dswish(vd x) { return dmul(x, dsigmoid(dmul(dset1(1.702), x))); }

static inline vd dgelu_tanh(vd x)
{
    vd u = dadd(x, dmul(dset1(0.044715), dmul(dmul(x, x), x)));
    return dmul(x, dsigmoid(dmul(dset1(GELU_TANH_K), u)));
}

static inline vd dgelu(vd x)
{
    vd z = dmul(dabs(x), dset1(SQRT1_2));
    vd t = ddiv(dset1(2.0), dadd(dset1(2.0), z));
    vd p = dset1(ERFC_P[0]);
    for (int k = 1; k < 14; k++)
        p = dadd(dmul(p, t), dset1(ERFC_P[k]));
    vd e = dsel(dgt(z, dset1(13.0)), dset1(0.0), dmul(t, dexp(dsub(p, dmul(z, z)))));
    vd h = dmul(dset1(0.5), e);
    return dmul(x, dsel(dlt(x, dset1(0.0)), h, dsub(dset1(1.0), h)));
}

#define ACTIVATION(name, f)                                                                    \
    void FN(name)(float *y, const float *x, long n)                                            \
    {                                                                                          \
        long i = 0;                                                                            \
        for (; i + W <= n; i += W) {                                                           \
            vf v = ld(x + i);                                                                  \
            st(y + i, fpack(f(dlo(v)), f(dhi(v))));                                            \
        }                                                                                      \
        kgp_##name##__scalar(y + i, x + i, n - i);                                             \
    }
ACTIVATION(silu_f32, dsilu)
ACTIVATION(gelu_f32, dgelu)
ACTIVATION(gelu_tanh_f32, dgelu_tanh)
ACTIVATION(swish_f32, dswish)
#undef ACTIVATION

/* kgp_glu_bwd_f32__scalar's sequence on W / 2 doubles at a time (two halves of a vector). */
static inline void glu_bwd_half(vd x, vd uu, vd d, int swish, vd *h, vd *dg, vd *du)
{
    vd k = swish ? dmul(dset1(1.702), x) : x;
    vd s = dsigmoid(k);
    vd a = dmul(x, s);
    vd fp = dmul(s, dadd(dset1(1.0), dmul(k, dsub(dset1(1.0), s))));
    *h = dmul(a, uu);
    *dg = dmul(dmul(d, uu), fp);
    *du = dmul(d, a);
}

void FN(glu_bwd_f32)(float *dg, float *du, float *h, const float *dh, const float *g,
                     const float *u, float glo, float ghi, float ulo, float uhi, int swish,
                     long n)
{
    long i = 0;
    vf zero = set1(0.0f);
    for (; i + W <= n; i += W) {
        vf x = ld(g + i), uu = ld(u + i), d = ld(dh + i);
        vd h0, h1, g0, g1, u0, u1;
        glu_bwd_half(dlo(x), dlo(uu), dlo(d), swish, &h0, &g0, &u0);
        glu_bwd_half(dhi(x), dhi(uu), dhi(d), swish, &h1, &g1, &u1);
        vf vg = fpack(g0, g1), vu = fpack(u0, u1);
        vg = fsel(fgt(x, set1(glo)), fsel(flt(x, set1(ghi)), vg, zero), zero);
        vu = fsel(fgt(uu, set1(ulo)), fsel(flt(uu, set1(uhi)), vu, zero), zero);
        st(h + i, fpack(h0, h1));
        st(dg + i, vg);
        st(du + i, vu);
    }
    kgp_glu_bwd_f32__scalar(dg + i, du + i, h + i, dh + i, g + i, u + i, glo, ghi, ulo, uhi,
                            swish, n - i);
}

/* ---- transpose --------------------------------------------------------------------------------- */

/* W x W blocks through the registers (W loads, transpose, W stores), swept in tiles of
 * TRANSPOSE_TILE x TRANSPOSE_TILE so the rows a tile writes stay in L1 until every block of
 * them is in; rows and columns past the last whole block go to the reference. */
#ifndef KGR_TRANSPOSE_ELSEWHERE
#define TRANSPOSE_TILE 64
void FN(transpose_f32)(float *y, long ldy, const float *x, long ldx, long rows, long cols)
{
    long rw = rows / W * W, cw = cols / W * W;
    for (long r0 = 0; r0 < rw; r0 += TRANSPOSE_TILE)
        for (long c0 = 0; c0 < cw; c0 += TRANSPOSE_TILE) {
            long r1 = r0 + TRANSPOSE_TILE < rw ? r0 + TRANSPOSE_TILE : rw;
            long c1 = c0 + TRANSPOSE_TILE < cw ? c0 + TRANSPOSE_TILE : cw;
            for (long r = r0; r < r1; r += W)
                for (long c = c0; c < c1; c += W) {
                    vf v[W];
                    for (int k = 0; k < W; k++)
                        v[k] = ld(x + (r + k) * ldx + c);
                    transpose(v);
                    for (int k = 0; k < W; k++)
                        st(y + (c + k) * ldy + r, v[k]);
                }
        }
    kgp_transpose_f32__scalar(y + cw * ldy, ldy, x + cw, ldx, rw, cols - cw);
    kgp_transpose_f32__scalar(y + rw, ldy, x + rw * ldx, ldx, rows - rw, cols);
}
#undef TRANSPOSE_TILE
#endif

/* ---- prefix sums across rows ------------------------------------------------------------------ */

/* W rows at a time: a W x W block is transposed so that vector c holds column c of W rows, the W
 * left-to-right chains advance together by one vector add per column (lane k is row k's chain,
 * in the reference's order), and the block is transposed back. Columns past the last whole
 * block, and rows past the last group of W, go to the reference. A block is read whole before it
 * is stored, so y may be x. */
#ifndef KGR_CUMSUM_ROWS_ELSEWHERE
void FN(cumsum_rows_f32)(float *y, long ldy, const float *x, long ldx, float *carry, long rows,
                         long n)
{
    long r = 0;
    for (; r + W <= rows; r += W) {
        vf acc = ld(carry + r);
        long j = 0;
        for (; j + W <= n; j += W) {
            vf v[W];
            for (int k = 0; k < W; k++)
                v[k] = ld(x + (r + k) * ldx + j);
            transpose(v);
            for (int c = 0; c < W; c++)
                v[c] = acc = vadd(acc, v[c]);
            transpose(v);
            for (int k = 0; k < W; k++)
                st(y + (r + k) * ldy + j, v[k]);
        }
        st(carry + r, acc);
        for (int k = 0; k < W; k++)
            carry[r + k] = kgp_cumsum_f32__scalar(y + (r + k) * ldy + j, x + (r + k) * ldx + j,
                                                  carry[r + k], n - j);
    }
    kgp_cumsum_rows_f32__scalar(y + r * ldy, ldy, x + r * ldx, ldx, carry + r, rows - r, n);
}
#endif
