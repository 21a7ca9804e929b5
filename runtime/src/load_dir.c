/* load_dir.c: JIT-compiles a generated folder: the kernels its manifest.json lists, each from
 * the file the manifest names beside it (read by kgrf_read: a FIFO or a folder in its place is
 * refused, not waited on). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/kgen.h"
#include "kgen/manifest.h"
#include "readfile.h"
#include "registry.h"

int kg_jit_load_dir(kg_registry *reg, const char *dir, double *seconds_total)
{
    char err[1024];
    kg_manifest *m;
    if (seconds_total)
        *seconds_total = 0;
    int rc = kg_manifest_load(dir, &m, err, sizeof err);
    if (rc != KG_OK)
        return kgr_fail(reg, rc, "%s", err);
    int n = m->nkernels;
    kg_kernel_info *info = calloc((size_t)n + 1, sizeof *info);
    char **labels = calloc((size_t)n + 1, sizeof *labels);
    char **srcs = calloc((size_t)n + 1, sizeof *srcs);
    double *secs = calloc((size_t)n + 1, sizeof *secs);
    if (!info || !labels || !srcs || !secs)
        rc = kgr_fail(reg, KG_ENOMEM, "%s: out of memory", dir);
    for (int i = 0; i < n && rc == KG_OK; i++) {
        char path[4096];
        info[i] = kg_manifest_info(&m->kernels[i]);
        snprintf(path, sizeof path, "%s/%s", dir, m->kernels[i].file);
        labels[i] = strdup(path);
        if (!(srcs[i] = kgrf_read(path, KGRF_MAX_FILE, NULL, err, sizeof err)))
            rc = kgr_fail(reg, KG_EIO, "%s (listed in %s)", err, m->source);
    }
    if (rc == KG_OK)
        rc = kg_jit_compile(reg, n, info, (const char *const *)labels,
                            (const char *const *)srcs, secs);
    for (int i = 0; seconds_total && rc == KG_OK && i <= n; i++)
        *seconds_total += secs[i];
    for (int i = 0; labels && srcs && i < n; i++) {
        free(labels[i]);
        free(srcs[i]);
    }
    free(info);
    free(labels);
    free(srcs);
    free(secs);
    kg_manifest_free(m);
    return rc;
}
