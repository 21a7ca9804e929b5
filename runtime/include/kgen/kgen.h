/* kgen/kgen.h: the kgen runtime's public API. A program fills a registry with generated kernels
 * (JIT-compiled from their C text with libtcc, or linked ahead of time), looks kernels up by
 * name once, and calls them through their family's typed signature (kgen/kernels.h). */
#ifndef KGEN_H
#define KGEN_H

#include <stddef.h>
#include "kgen/abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- kernels ------------------------------------------------------------------------------ */

/* Every kernel also has a uniform entry point: tensors in signature order, per-call sizes. */
typedef int kg_kernel_v(void *const *t, const long *n);

/* What the registry knows of one kernel; strings live as long as the registry. */
typedef struct kg_kernel {
    const char *name;     /* symbol, e.g. kg_rmsnorm_quant_bf16_e4m3__h4096_rms_row */
    const char *family;   /* e.g. rmsnorm_quant; selects the typed signature */
    const char *problem;  /* canonical "family:key=value,..." string */
    void (*fn)(void);     /* the kernel; cast to its family's kg_<family>_fn * */
    kg_kernel_v *call;    /* the uniform entry point */
    double flops, bytes_read, bytes_written;  /* per call at the spec's nominal sizes */
} kg_kernel;

/* What a kernel is before it is compiled (from its manifest entry, or a kernels.inc line in the
 * AOT build). */
typedef struct kg_kernel_info {
    const char *family, *name, *problem;
    double flops, bytes_read, bytes_written;
} kg_kernel_info;

/* ---- the registry ----------------------------------------------------------------------- */
/* Threads. On one registry, any number of threads may at the same time look kernels up
 * (kg_registry_find, _count, _at) and add them (kg_registry_add, kg_jit_compile,
 * kg_jit_load_dir): adds are serialized inside, lookups take no lock and see every kernel
 * whose add returned before the lookup began (and maybe some being added). A kg_kernel pointer
 * stays valid, its fields unchanged, until kg_registry_free, which must not overlap any other
 * call on that registry. kg_registry_error holds the last failure of any thread: read it on
 * the thread whose call failed, while no other thread's call on the registry fails. A kernel
 * may run on several threads at once (its scratch is per thread); kg_set_threads and
 * kg_threads may be called from any thread; kg_prim_select rewrites the primitive table and
 * must not overlap any other kgen call. tests/tsan_registry.c checks these promises under
 * ThreadSanitizer. */

typedef struct kg_registry kg_registry;

kg_registry *kg_registry_new(void);
void kg_registry_free(kg_registry *reg);

/* The message of the last failed call on reg (one line, names file:line where known). */
const char *kg_registry_error(const kg_registry *reg);

/* Adds an already compiled kernel (the AOT library does this). Adding a name twice keeps the
 * first and returns KG_OK if it is the same function, KG_ESPEC otherwise. */
int kg_registry_add(kg_registry *reg, const kg_kernel_info *info, void (*fn)(void),
                    kg_kernel_v *call);

/* Looks a kernel up; NULL (and KG_ENOTFOUND in kg_registry_error) if absent. Lock-free: call
 * it from any thread, also while others add (see Threads above). */
const kg_kernel *kg_registry_find(kg_registry *reg, const char *name);

int kg_registry_count(const kg_registry *reg);
const kg_kernel *kg_registry_at(const kg_registry *reg, int i);

/* ---- JIT (libtcc) ------------------------------------------------------------------------ */

/* Compiles n generated sources in one libtcc state and registers their kernels. labels[i] is
 * the file name compile errors are reported against (e.g. "generated/tiny/kg_....c").
 * If seconds is not NULL, seconds[i] receives the compile time of source i and seconds[n]
 * the time of the final link. Returns KG_OK or KG_ECOMPILE with "file:line: message". */
int kg_jit_compile(kg_registry *reg, int n, const kg_kernel_info *info,
                   const char *const *labels, const char *const *sources, double *seconds);

/* JIT-compiles every kernel DIR/manifest.json lists (kgen/manifest.h), each from the file it
 * names in DIR. */
int kg_jit_load_dir(kg_registry *reg, const char *dir, double *seconds_total);

/* The text the JIT puts before every generated file (kgen/abi.h). */
extern const char kg_abi_text[];

/* ---- primitives and threads ------------------------------------------------------------- */

/* Chooses the primitive implementations: "scalar", "avx2", "avx512", or NULL for the best
 * this CPU has (the KGEN_ISA environment variable, if set, overrides NULL). Called once at
 * start-up automatically; call it before any JIT compile to change the choice, since JIT code
 * binds the implementation in force when it is compiled. Returns KG_ESPEC for an ISA this CPU
 * lacks or that the runtime was built without. */
int kg_prim_select(const char *isa);
const char *kg_prim_isa(void);

/* The address of primitive "kgp_NAME" as currently selected, or NULL. */
void *kg_prim_lookup(const char *symbol);

/* The most threads kgp_parallel_for starts (libgomp fails to start a team of 100000; 1024 is
 * far past any machine kgen targets). */
#define KG_MAX_THREADS 1024

/* Threads used by kgp_parallel_for. n in 1 .. KG_MAX_THREADS sets the count; 0 restores the
 * default (OpenMP's, usually one per core, at most KG_MAX_THREADS); any other n returns
 * KG_EARG and changes nothing. kg_threads is the count in force (1 .. KG_MAX_THREADS). */
int kg_set_threads(int n);
int kg_threads(void);

/* ---- weights ----------------------------------------------------------------------------- */

/* How a weight W [K, N] (K: contraction) is stored before packing. "x4" words hold 4 elements
 * along K, element q in bits [8q, 8q+8) (fp4: [4q, 4q+4)), so a word is 32 bits for fp8 and 16
 * for fp4. Each layout also fixes where an MX weight's E8M0 scales sit; a scale covers kb = 32
 * consecutive k unless the layout says otherwise. Layout names follow shared/reference/. */
typedef enum kg_wt_layout {
    KG_WL_KN = 0,         /* [K, N] row-major; MX scales [K/32, N] */
    KG_WL_X4,             /* [K/4, N] x4, word (r, n) slot q = row 4r+q (QKV MX_CONTIGUOUS,
                             output projection MX and STATIC_MX); scales [K/32, N] */
    KG_WL_X4_INTERLEAVED, /* QKV MX_INTERLEAVED: [K/4, N] x4 of the rows permuted by
                             arange(K).reshape(2,K/4,2).transpose(1,0,2).flatten(): slot q of
                             word r = row (q/2)*K/2 + 2r + q%2; scales [K/32, N] by logical row */
    KG_WL_MLP_MX_GATE_UP, /* MLP-MX gate/up: [128, K/512, N] x4, word [p, j, n] slot q = row
                             512j + 4p + q; scales [16, K/512, N], [s, j, n] covers rows
                             512j + 32s .. +31 */
    KG_WL_MLP_MX_DOWN,    /* MLP-MX down: [P, ceil(K/512), N] x4, P = 128 (K >= 512) or K/4;
                             word [p, t, n] slot q = row 512t + 128q + p (K < 512: q*K/4 + p);
                             scales [P/8, ceil(K/512), N], [s, t, n] covers p in [8s, 8s+8) and
                             every q: runs of 8 consecutive rows (kb = 8) */
    KG_WL_MLP_SMX_GATE_UP,/* MLP STATIC_MX gate/up swizzle: logical [K, N] viewed as
                             [2, K/512, 128, 2, N/512, 128, 4], stored transposed (2,1,4,6,5,0,3) */
    KG_WL_MLP_SMX_DOWN,   /* MLP STATIC_MX down swizzle: logical [K, N] viewed as
                             [K/512, 128, 4, N], stored transposed (1,0,3,2) */
    KG_WL_NK,             /* [N, K] row-major: W transposed, as a Hugging Face linear weight
                             [out_features, in_features] is stored; no MX scales */
    KG_WL_MOE_MX_GATE_UP, /* MoE MX gate/up of one expert, W [K = H, N = 2I] (gate columns then
                             up): [128, 2, K/512, N/2] x4, word [p, g, j, i] slot q = row
                             q*K/4 + 128j + p of column g*N/2 + i; scales [16, 2, K/512, N/2],
                             [s, g, j, i] covers p in [8s, 8s+8) and every q: runs of 8
                             consecutive rows (kb = 8) */
    KG_WL_COUNT
} kg_wt_layout;

/* A weight as stored: element format, layout, logical size, the data and (MX) its scales. */
typedef struct kg_wt_src {
    int fmt;           /* enum kg_wt_fmt (kgen/abi.h) */
    int layout;        /* enum kg_wt_layout */
    long K, N;         /* the logical matrix W [K, N] */
    const void *data;
    const void *scale; /* E8M0 scales in the layout's arrangement; NULL: not an MX weight */
    long nr, kg;       /* packed geometry; 0 picks the one the active ISA's GEMM wants */
} kg_wt_src;

/* Packs src into w (allocating; free with kg_wt_free). Returns KG_OK, or KG_ESHAPE /
 * KG_ESPEC with a one-line reason in err (sizes the layout cannot hold, MX scales on a format
 * without them), or KG_ENOMEM. The packed layout is documented at kg_wt in kgen/abi.h.
 * Packed weights of 4 MiB or more sit on huge pages where the OS grants them. An nk weight of
 * whole-byte elements is packed on the runtime's threads (kgp_parallel_for). KGEN_WT_PACK=generic
 * in the environment packs element by element (the reference the fast kn path is tested
 * against). */
int kg_wt_pack(kg_wt *w, const kg_wt_src *src, char *err, size_t errlen);
/* Packs W = [W_0 | W_1 | ... | W_{n-1}], the parts side by side along N (a fused QKV weight
 * from its q, k and v projections), each part read in its own stored layout (kn or nk, no MX
 * scales), all of one format and K; no concatenated copy is made. Returns as kg_wt_pack. */
int kg_wt_pack_parts(kg_wt *w, const kg_wt_src *parts, int n, char *err, size_t errlen);
/* Each expert's columns in a packed expert weight start on a multiple of this (a multiple of
 * every ISA's panel width, so an expert is whole panels: a kernel cuts a view per expert). */
#define KG_WT_EXPERT_ALIGN 64

/* Columns of one expert in a packed expert weight: n rounded up to KG_WT_EXPERT_ALIGN (-1 if
 * n < 1 or the rounding overflows). */
long kg_wt_expert_cols(long n);

/* Packs the weights of E experts side by side along N, the layout moe_tkg (and moe_cte) take:
 * W [K, E * P] with P = kg_wt_expert_cols(sum of an expert's parts' N); expert e's columns from
 * e * P on are its parts' columns in order (parts[e * nparts + i], i = 0 .. nparts-1: gate then
 * up for a gate/up weight), the pad columns zero (MX scale 127). Every part is read in its own
 * stored layout (any kg_wt_layout, MX scales where the layout has them), all of one format, K,
 * geometry and MX block length; so bf16/f32, fp8 (ROW: the per-column fp32 scales stay the
 * caller's [E, N] array, in the same column order) and MX (E8M0 scales, packed with the codes)
 * weights all pack here. Returns as kg_wt_pack (KG_ESHAPE naming the part on a mismatch or an
 * overflowing size). */
int kg_wt_pack_experts(kg_wt *w, const kg_wt_src *parts, int E, int nparts, char *err,
                       size_t errlen);
void kg_wt_free(kg_wt *w);

/* The stored shape of src's data (which = 0, in elements, or in x4 words for x4 layouts) or of
 * its scales (which = 1); returns the rank (0 if the layout cannot hold K, N). */
int kg_wt_stored_shape(const kg_wt_src *src, int which, long shape[8]);

/* "f32", "bf16", "fp16", "e4m3", "e4m3fn", "e5m2", "e2m1" and back (-1 if unknown). */
const char *kg_wt_fmt_name(int fmt);
int kg_wt_fmt_from_name(const char *name);
/* Bits of one stored element of format fmt (e2m1: 4), 0 for an unknown format. */
int kg_wt_fmt_bits(int fmt);
/* "kn", "x4", "x4_interleaved", "mlp_mx_gate_up", "mlp_mx_down", "mlp_smx_gate_up",
 * "mlp_smx_down", "nk", "moe_mx_gate_up" and back (-1 if unknown). */
const char *kg_wt_layout_name(int layout);
int kg_wt_layout_from_name(const char *name);

/* ---- memory for streamed buffers --------------------------------------------------------- */

/* Memory for a buffer a kernel streams (packed weights, activations, a bandwidth probe's read
 * buffer): 64-byte aligned; from 4 MiB up 2 MiB-aligned and asked for transparent huge pages,
 * since on 4 KiB pages the TLB misses of a stream cost about a fifth of the bandwidth. NULL if
 * bytes is 0 or cannot be had. Release with free(). */
void *kg_stream_alloc(size_t bytes);

/* ---- scratch ------------------------------------------------------------------------------ */

/* Grows the calling thread's kernel scratch (kgp_scratch) to at least bytes now, so a service
 * can take the memory at start-up; KG_OK or KG_ENOMEM. */
int kg_scratch_reserve(long bytes);

/* ---- problem strings --------------------------------------------------------------------- */

/* Reads key `key` of a "family:key=value,..." string. Return 1 if found and its value is what
 * was asked for: a whole decimal number that fits a long, a finite double, or a string that
 * fits len with its NUL; 0 otherwise (empty, trailing text, out of range). */
int kg_problem_long(const char *problem, const char *key, long *value);
int kg_problem_double(const char *problem, const char *key, double *value);
int kg_problem_str(const char *problem, const char *key, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* KGEN_H */
