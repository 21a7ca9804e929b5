/* kernels.h: a spec's kernels generated in memory (kgg_kernels_ prefix): its manifest and
 * each kernel's C text, ready for the runtime's JIT (kg_jit_compile) or gcc build
 * (kg_gcc_compile). The CLI and the model library (model/) both start from it. */
#ifndef KGEN_GEN_KERNELS_H
#define KGEN_GEN_KERNELS_H

#include <stddef.h>

#include "host.h"
#include "kgen/manifest.h"

typedef struct kgg_kernels {
    kg_manifest *m;
    char **text, **label; /* per manifest kernel: its C text, the file errors name */
    kg_kernel_info *info; /* per manifest kernel, pointing into m */
} kgg_kernels;

/* Generates the spec at path (from_text: the spec text itself, label naming it) and takes the
 * manifest and kernel texts out of the files; labels are "generated/<spec>/<file>". Returns
 * KG_OK or a KG_* status with one line in kgg_error(g). */
int kgg_kernels_from_spec(kgg *g, const char *path, kgg_kernels *ks);
int kgg_kernels_from_text(kgg *g, const char *text, size_t len, const char *label,
                          kgg_kernels *ks);
void kgg_kernels_free(kgg_kernels *ks);

#endif
