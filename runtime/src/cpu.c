/* cpu.c: which vector extensions this CPU has and the OS saves state for (cpuid, xgetbv). */
#include <cpuid.h>

#include "prim.h"

static unsigned long long xgetbv0(void)
{
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

int kgr_cpu_features(void)
{
    unsigned int a, b, c, d;
    int f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE))
        return 0;
    unsigned long long xcr0 = xgetbv0();
    int ymm = (xcr0 & 0x6) == 0x6, zmm = (xcr0 & 0xe6) == 0xe6;
    int fma = (c & bit_FMA) != 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return 0;
    if (ymm && fma && (b & bit_AVX2))
        f |= KGR_CPU_AVX2;
    if (zmm && (b & bit_AVX512F) && (b & bit_AVX512BW) && (b & bit_AVX512VL) &&
        (b & bit_AVX512DQ))
        f |= KGR_CPU_AVX512;
    if ((f & KGR_CPU_AVX512) && (c & bit_AVX512VBMI))
        f |= KGR_CPU_AVX512_VBMI;
    if ((f & KGR_CPU_AVX512) && __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5)))
        f |= KGR_CPU_AVX512_BF16;
    return f;
}
