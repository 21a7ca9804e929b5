/* kernels.c: a spec's kernels generated in memory (kernels.h): the manifest.json the generator
 * wrote, parsed, and the text of every kernel it lists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

/* Moves the texts of ks's kernels out of the generated files by the names the manifest gives;
 * labels as if the files were in generated/<spec>/. */
static int take_texts(kgg *g, kgg_kernels *ks, kgg_file *files, int nfiles)
{
    int n = ks->m->nkernels;
    ks->text = calloc((size_t)n + 1, sizeof *ks->text);
    ks->label = calloc((size_t)n + 1, sizeof *ks->label);
    ks->info = calloc((size_t)n + 1, sizeof *ks->info);
    if (!ks->text || !ks->label || !ks->info)
        return kgg_fail(g, KG_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        const char *file = ks->m->kernels[i].file;
        for (int f = 0; f < nfiles && !ks->text[i]; f++)
            if (!strcmp(files[f].name, file))
                ks->text[i] = files[f].text, files[f].text = NULL;
        size_t len = strlen(ks->m->spec) + strlen(file) + 16;
        if ((ks->label[i] = malloc(len)))
            snprintf(ks->label[i], len, "generated/%s/%s", ks->m->spec, file);
        if (!ks->text[i] || !ks->label[i])
            return kgg_fail(g, KG_ESPEC, "%s: the manifest lists %s, which was not generated",
                            ks->m->source, file);
        ks->info[i] = kg_manifest_info(&ks->m->kernels[i]);
    }
    return KG_OK;
}

/* The manifest among the generated files, parsed, then the texts. */
static int take(kgg *g, const char *label, kgg_file *files, int n, kgg_kernels *ks)
{
    char err[1024], what[600];
    int mi = 0, rc;
    while (mi < n && strcmp(files[mi].name, "manifest.json"))
        mi++;
    snprintf(what, sizeof what, "%s (manifest.json generated in memory)", label);
    if (mi == n)
        rc = kgg_fail(g, KG_ESPEC, "%s: no manifest.json was generated", label);
    else if ((rc = kg_manifest_parse(files[mi].text, files[mi].len, what, &ks->m, err,
                                     sizeof err)) != KG_OK)
        rc = kgg_fail(g, rc, "%s", err);
    else
        rc = take_texts(g, ks, files, n);
    kgg_files_free(files, n);
    if (rc != KG_OK)
        kgg_kernels_free(ks);
    return rc;
}

int kgg_kernels_from_spec(kgg *g, const char *path, kgg_kernels *ks)
{
    kgg_file *files = NULL;
    int n = 0;
    char *name = NULL;
    memset(ks, 0, sizeof *ks);
    int rc = kgg_generate(g, path, &files, &n, &name);
    free(name);
    return rc != KG_OK ? rc : take(g, path, files, n, ks);
}

int kgg_kernels_from_text(kgg *g, const char *text, size_t len, const char *label,
                          kgg_kernels *ks)
{
    kgg_file *files = NULL;
    int n = 0;
    char *name = NULL;
    memset(ks, 0, sizeof *ks);
    int rc = kgg_generate_text(g, text, len, label, &files, &n, &name);
    free(name);
    return rc != KG_OK ? rc : take(g, label, files, n, ks);
}

void kgg_kernels_free(kgg_kernels *ks)
{
    for (int i = 0; ks->m && i < ks->m->nkernels; i++) {
        if (ks->text)
            free(ks->text[i]);
        if (ks->label)
            free(ks->label[i]);
    }
    free(ks->text);
    free(ks->label);
    free(ks->info);
    kg_manifest_free(ks->m);
    memset(ks, 0, sizeof *ks);
}
