/* kernels.c: a spec's kernels for the commands (kgc_kernels_load): its manifest and kernel
 * texts, generated in memory from SPEC.lua or read from a generated folder. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "fsutil.h"
#include "host.h"
#include "kernels.h"

/* ---- a spec's kernels --------------------------------------------------------------------- */

/* SPEC.lua: generated in memory by the generator library (kgg_kernels); the manifest and the
 * texts move into ks. */
static int load_spec(const char *spec, int texts, kgc_kernels *ks)
{
    kgg *g = kgg_new();
    kgg_kernels gk;
    if (!g)
        return kgc_error(KGC_FAIL, "cannot start Lua");
    int rc = kgg_kernels_from_spec(g, spec, &gk);
    if (rc != KG_OK) {
        rc = kgc_error(kgc_exit_for(rc), "%s", kgg_error(g));
        kgg_free(g);
        return rc;
    }
    kgg_free(g);
    ks->m = gk.m, gk.m = NULL;
    for (int i = 0; i < ks->m->nkernels; i++) {
        if (texts)
            ks->text[i] = gk.text[i], ks->label[i] = gk.label[i];
        else
            free(gk.text[i]), free(gk.label[i]);
    }
    free(gk.text), free(gk.label), free(gk.info);
    return KGC_OK;
}

/* A generated folder: its manifest.json and the files it lists. */
static int load_dir(const char *dir, int texts, kgc_kernels *ks)
{
    char err[1024];
    int rc = kg_manifest_load(dir, &ks->m, err, sizeof err);
    if (rc != KG_OK)
        return kgc_error(kgc_exit_for(rc), "%s", err);
    for (int i = 0; texts && i < ks->m->nkernels; i++) {
        size_t len = strlen(dir) + strlen(ks->m->kernels[i].file) + 2, n;
        if (!(ks->label[i] = malloc(len)))
            return kgc_error(KGC_FAIL, "out of memory");
        snprintf(ks->label[i], len, "%s/%s", dir, ks->m->kernels[i].file);
        if (!(ks->text[i] = kgf_read(ks->label[i], &n)))
            return kgc_error(KGC_USAGE, "%s: cannot read (listed in %s)", ks->label[i],
                             ks->m->source);
    }
    return KGC_OK;
}

int kgc_kernels_load(const char *source, int texts, kgc_kernels *ks)
{
    struct stat st;
    memset(ks, 0, sizeof *ks);
    double t0 = kgc_now();
    /* a .lua path is always a spec, so a folder that happens to be named x.lua is refused as
     * one ("not a regular file") instead of being read as a generated folder */
    size_t len = strlen(source);
    int lua = len > 4 && strcmp(source + len - 4, ".lua") == 0;
    ks->generated = lua || stat(source, &st) != 0 || !S_ISDIR(st.st_mode);
    /* the texts are filled once the manifest says how many kernels there are */
    ks->text = calloc(KG_MANIFEST_MAX_KERNELS + 1, sizeof *ks->text);
    ks->label = calloc(KG_MANIFEST_MAX_KERNELS + 1, sizeof *ks->label);
    if (!ks->text || !ks->label)
        return kgc_error(KGC_FAIL, "out of memory");
    int rc = ks->generated ? load_spec(source, texts, ks) : load_dir(source, texts, ks);
    ks->seconds = kgc_now() - t0;
    if (rc != KGC_OK)
        kgc_kernels_free(ks);
    return rc;
}

void kgc_kernels_free(kgc_kernels *ks)
{
    for (int i = 0; ks->text && ks->label && i < KG_MANIFEST_MAX_KERNELS; i++) {
        free(ks->text[i]);
        free(ks->label[i]);
    }
    free(ks->text);
    free(ks->label);
    kg_manifest_free(ks->m);
    memset(ks, 0, sizeof *ks);
}
