/* fuzz_spec.c: libFuzzer target of the spec loader and validator (kgg_generate on a spec
 * file). A spec is Lua a user may not have written: any text must generate a folder or be
 * refused with a message, never crash. A folder it generates must be whole, and its
 * manifest.json must read back with the manifest reader tools use. */
#include "fuzz.h"

#include "host.h"
#include "kgen/manifest.h"

/* The generated files: named, and a manifest that kg_manifest_parse accepts. */
static void check_files(const kgg_file *files, int n, const char *spec)
{
    int manifests = 0;
    FZ_CHECK(n > 0, "spec '%s' generated no files", spec);
    for (int i = 0; i < n; i++) {
        FZ_CHECK(files[i].name && files[i].name[0] && files[i].text, "file %d is incomplete", i);
        FZ_CHECK(strchr(files[i].name, '/') == NULL && strcmp(files[i].name, "..") != 0,
                 "file name '%s' leaves the output folder", files[i].name);
        if (strcmp(files[i].name, "manifest.json") != 0)
            continue;
        manifests++;
        kg_manifest *m = NULL;
        char err[512];
        int rc = kg_manifest_parse(files[i].text, files[i].len, "manifest.json", &m, err,
                                   sizeof err);
        FZ_CHECK(rc == KG_OK, "the generated manifest does not read back: %s", err);
        FZ_CHECK(strcmp(m->spec, spec) == 0, "manifest of spec '%s' says '%s'", spec, m->spec);
        kg_manifest_free(m);
    }
    FZ_CHECK(manifests == 1, "%d manifests", manifests);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a fresh generator per input, so a crash replays from its input alone */
    kgg *g = kgg_new();
    FZ_CHECK(g != NULL, "kgg_new failed");
    kgg_file *files = NULL;
    int nfiles = 0;
    char *name = NULL;
    int rc = kgg_generate(g, fz_file(data, size), &files, &nfiles, &name);
    if (rc != KG_OK) {
        FZ_CHECK(rc == KG_ESPEC || rc == KG_EIO, "rc %d: %s", rc, kgg_error(g));
        FZ_CHECK(kgg_error(g)[0] != '\0', "refused without a message");
    } else {
        FZ_CHECK(name != NULL, "no spec name");
        check_files(files, nfiles, name);
        kgg_files_free(files, nfiles);
        free(name);
    }
    kgg_free(g);
    return 0;
}
