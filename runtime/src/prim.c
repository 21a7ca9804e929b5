/* prim.c: picks one implementation of every primitive per process and exposes it twice: as the
 * kgp_* functions AOT-compiled kernels link against (one indirect jump), and as a symbol table
 * the JIT binds directly. */
#include <stdlib.h>
#include <string.h>

#include "kgen/kgen.h"
#include "prim.h"
#include "prim_attn.h"
#include "registry.h"

typedef struct table {
#define FIELD(ret, name, params, args) ret(*name) params;
    KGP_LIST(FIELD)
#undef FIELD
} table;

static const table scalar_table = {
#define SCALAR(ret, name, params, args) kgp_##name##__scalar,
    KGP_LIST(SCALAR)
#undef SCALAR
};

/* SIMD tables start as copies of the scalar one and have the entries replaced that have a
 * SIMD version (filled before the first selection). */
static table avx2_table, avx512_table;

static void fill_simd_tables(void)
{
    avx2_table = scalar_table;
    avx2_table.gemm_f32 = kgp_gemm_f32__avx2;
    avx512_table = scalar_table;
    avx512_table.gemm_f32 = kgp_gemm_f32__avx512;
    avx2_table.gemm_bf16 = kgp_gemm_bf16__avx2;
    avx512_table.gemm_bf16 = kgp_gemm_bf16__avx512;
    /* attention's tile product and decode's passes (qk_*, pv_*): each ISA its own */
    avx2_table.tile_fma_f32 = kgp_tile_fma_f32__avx2;
    avx512_table.tile_fma_f32 = kgp_tile_fma_f32__avx512;
#define SET_ATTN(name)                             \
    avx2_table.name = kgp_##name##__avx2;          \
    avx512_table.name = kgp_##name##__avx512;
    SET_ATTN(qk_f32) SET_ATTN(qk_bf16) SET_ATTN(qk_f16) SET_ATTN(qk_e4m3) SET_ATTN(pv_bf16)
    SET_ATTN(pv_f16) SET_ATTN(pv_e4m3)
#undef SET_ATTN
#define SET(name)                                  \
    avx2_table.name = kgp_##name##__avx2;          \
    avx512_table.name = kgp_##name##__avx512;
    KGR_SIMD_EW_LIST(SET)
#undef SET
}

/* One row per ISA the runtime offers, in rising order of preference. */
typedef struct isa_row { const char *name; int needs; const table *t; } isa_row;
static const isa_row isas[] = {
    { "scalar", 0, &scalar_table },
    { "avx2", KGR_CPU_AVX2, &avx2_table },
    { "avx512", KGR_CPU_AVX512 | KGR_CPU_AVX512_BF16 | KGR_CPU_AVX512_VBMI, &avx512_table },
};

static table active = {
#define SCALAR(ret, name, params, args) kgp_##name##__scalar,
    KGP_LIST(SCALAR)
#undef SCALAR
};
static const char *active_isa = "scalar";

static kgr_symbol symbols[] = {
#define SYM(ret, name, params, args) { "kgp_" #name, 0 },
    KGP_LIST(SYM)
#undef SYM
};

static void fill_symbols(void)
{
    int i = 0;
#define ADDR(ret, name, params, args) symbols[i++].addr = (void *)active.name;
    KGP_LIST(ADDR)
#undef ADDR
}

int kg_prim_select(const char *isa)
{
    int have = kgr_cpu_features();
    const isa_row *pick = NULL;
    if (!isa)
        isa = getenv("KGEN_ISA");
    if (!isa || !*isa) {
        for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++)
            if ((isas[i].needs & have) == isas[i].needs)
                pick = &isas[i];
    } else {
        for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++)
            if (strcmp(isas[i].name, isa) == 0 && (isas[i].needs & have) == isas[i].needs)
                pick = &isas[i];
        if (!pick)
            return KG_ESPEC;
    }
    active = *pick->t;
    active_isa = pick->name;
    fill_symbols();
    return KG_OK;
}

void *kgr_prim_impl(const char *isa, const char *name)
{
    int have = kgr_cpu_features();
    const table *t = NULL;
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++)
        if (strcmp(isas[i].name, isa) == 0 && (isas[i].needs & have) == isas[i].needs)
            t = isas[i].t;
    if (!t)
        return NULL;
    if (strncmp(name, "kgp_", 4) == 0)
        name += 4;
#define IMPL(ret, nm, params, args) \
    if (strcmp(name, #nm) == 0)     \
        return (void *)t->nm;
    KGP_LIST(IMPL)
#undef IMPL
    return NULL;
}

const char *kg_prim_isa(void)
{
    return active_isa;
}

__attribute__((constructor)) static void select_at_start(void)
{
    fill_simd_tables();
    if (kg_prim_select(NULL) != KG_OK)
        kg_prim_select("scalar");
}

int kgr_prim_symbols(const kgr_symbol **syms)
{
    *syms = symbols;
    return (int)(sizeof symbols / sizeof symbols[0]);
}

void *kg_prim_lookup(const char *symbol)
{
    for (size_t i = 0; i < sizeof symbols / sizeof symbols[0]; i++)
        if (strcmp(symbols[i].name, symbol) == 0)
            return symbols[i].addr;
    return NULL;
}

/* The packed-weight geometry the active GEMM reads fastest (kgen/abi.h, kg_wt). The scalar
 * GEMM reads any geometry; for it, 16 columns of fp32 are one cache line. */
void kgr_wt_geometry(int fmt, long *nr, long *kg)
{
    if (strcmp(active_isa, "avx512") == 0) {
        kgr_avx512_geometry(fmt, nr, kg);
        return;
    }
    if (strcmp(active_isa, "avx2") == 0) {
        kgr_avx2_geometry(fmt, nr, kg);
        return;
    }
    *nr = 16;
    *kg = 1;
}

/* The functions AOT-compiled kernels call. */
#define WRAP_VOID(ret, name, params, args) \
    void kgp_##name params { active.name args; }
#define WRAP_FLOAT(ret, name, params, args) \
    ret kgp_##name params { return active.name args; }
KGP_LIST_VOID(WRAP_VOID)
KGP_LIST_MATH(WRAP_VOID)
KGP_LIST_FLOAT(WRAP_FLOAT)
KGP_LIST_ATTN(WRAP_VOID)
KGP_LIST_LOSS(WRAP_VOID)
