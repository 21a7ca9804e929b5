/* test_manifest.c: the manifest reader (kgen/manifest.h): every bundled generated folder loads
 * and describes kernels that make sense (files present, shapes positive, token axes, the cost
 * polynomial agreeing with the nominal cost block), and malformed manifests are refused with
 * one line naming the file and the field. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kgen/manifest.h"
#include "util/jitp.h"

/* ---- the bundled folders ------------------------------------------------------------------ */

/* Checks one kernel; returns 1 if its nominal cost could be compared with the polynomial. */
static int check_kernel(const char *dir, const kg_manifest_kernel *k)
{
    char path[8200];
    snprintf(path, sizeof path, "%s/%s", dir, k->file);
    cr_assert_eq(access(path, R_OK), 0, "%s: %s is listed but missing", dir, k->file);
    long n[KG_MANIFEST_MAX_CALLS], shape[KG_MANIFEST_MAX_RANK];
    kg_manifest_sizes(k, 0, n);
    int batch_one = 1, seq = 0;
    for (int c = 0; c < k->ncalls; c++) {
        cr_assert_eq(n[c], k->calls[c].nominal);
        batch_one &= k->calls[c].tokens != KG_AXIS_BATCH || n[c] == 1;
        seq += k->calls[c].tokens == KG_AXIS_SEQ;
    }
    cr_assert_gt(seq, 0, "%s: no sequence axis, so --tokens cannot move it", k->symbol);
    for (int a = 0; a < k->nargs; a++) {
        int rank = kg_manifest_shape(&k->args[a], n, shape);
        for (int d = 0; d < rank; d++)
            cr_assert_gt(shape[d], 0, "%s: %s axis %d is %ld", k->symbol, k->args[a].name, d,
                         shape[d]);
    }
    long tokens = kg_manifest_tokens(k, n);
    cr_assert_gt(tokens, 0, "%s", k->symbol);
    /* at the nominal sizes with every batch axis 1, a call is the polynomial's call at the
     * nominal tokens; with a nominal batch above 1 it need not be (rope_hf's tables shared by
     * the batch are read once, not once per sequence) */
    if (!batch_one)
        return 0;
    double cost[3];
    kg_manifest_cost(k, tokens, cost);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(cost[i], k->cost[i], "%s: cost %d at %ld tokens: polynomial %.17g, nominal "
                     "%.17g", k->symbol, i, tokens, cost[i], k->cost[i]);
    return 1;
}

Test(manifest, bundled_folders_load)
{
    char specs[] = KGEN_SPECS, *save = NULL;
    int folders = 0, compared = 0;
    for (char *s = strtok_r(specs, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
        char dir[4096], err[1024];
        snprintf(dir, sizeof dir, "%s/generated/%s", kgt_source_dir(), s);
        kg_manifest *m;
        cr_assert_eq(kg_manifest_load(dir, &m, err, sizeof err), KG_OK, "%s", err);
        cr_assert_str_eq(m->spec, s);
        cr_assert_gt(m->nkernels, 0, "%s lists no kernel", dir);
        for (int i = 0; i < m->nkernels; i++) {
            compared += check_kernel(dir, &m->kernels[i]);
            cr_assert_eq(kg_manifest_find(m, m->kernels[i].symbol), &m->kernels[i]);
        }
        kg_manifest_free(m);
        folders++;
    }
    cr_assert_geq(folders, 4, "KGEN_SPECS names %d folders", folders);
    cr_assert_gt(compared, 10, "only %d kernels had their cost polynomial compared", compared);
}

/* A call at T tokens: batch axes 1, sequence axes T, the rest nominal; the polynomial is the
 * one the generator wrote. */
Test(manifest, sizes_and_cost_at_tokens)
{
    static const char text[] =
        "{\"spec\": \"t\", \"spec_file\": \"t.lua\", \"kernels\": [{\"symbol\": \"kg_x\", "
        "\"family\": \"f\", \"problem\": \"f:\", \"file\": \"kg_x.c\", \"template\": \"t\", "
        "\"calls\": [{\"name\": \"B\", \"nominal\": 4, \"tokens\": \"batch\"}, "
        "{\"name\": \"S\", \"nominal\": 64, \"tokens\": \"seq\"}, "
        "{\"name\": \"L\", \"nominal\": 9, \"tokens\": null}], "
        "\"args\": [{\"name\": \"x\", \"dir\": \"in\", \"dtype\": \"bf16\", "
        "\"shape\": [\"B\", \"S\", 8], \"used\": true, \"scalar\": false, \"first_row\": false, "
        "\"init\": \"normal\"}], "
        "\"cost\": {\"flops\": 1, \"bytes_read\": 2, \"bytes_written\": 3}, "
        "\"cost_tokens\": {\"flops\": [1, 2, 0.5], \"bytes_read\": [0, 3, 0], "
        "\"bytes_written\": [7, 0, 0]}}]}";
    char err[512];
    kg_manifest *m;
    cr_assert_eq(kg_manifest_parse(text, strlen(text), "t.json", &m, err, sizeof err), KG_OK,
                 "%s", err);
    const kg_manifest_kernel *k = &m->kernels[0];
    long n[3], shape[8];
    kg_manifest_sizes(k, 10, n);
    cr_assert(n[0] == 1 && n[1] == 10 && n[2] == 9, "sizes %ld %ld %ld", n[0], n[1], n[2]);
    cr_assert_eq(kg_manifest_tokens(k, n), 10);
    cr_assert_eq(kg_manifest_shape(&k->args[0], n, shape), 3);
    cr_assert(shape[0] == 1 && shape[1] == 10 && shape[2] == 8);
    double c[3];
    kg_manifest_cost(k, 10, c);
    cr_assert(c[0] == 71 && c[1] == 30 && c[2] == 7, "cost %g %g %g", c[0], c[1], c[2]);
    kg_manifest_sizes(k, 0, n);
    cr_assert_eq(kg_manifest_tokens(k, n), 256);
    kg_manifest_free(m);
}

/* ---- malformed manifests ------------------------------------------------------------------ */

/* A well-formed one-kernel manifest with `from` replaced by `to` (which must occur). */
static char *variant(const char *from, const char *to)
{
    static const char base[] =
        "{\"spec\": \"t\", \"spec_file\": \"t.lua\", \"kernels\": [{\"symbol\": \"kg_x\", "
        "\"family\": \"f\", \"problem\": \"f:\", \"file\": \"kg_x.c\", \"template\": \"t\", "
        "\"calls\": [{\"name\": \"rows\", \"nominal\": 4, \"tokens\": \"seq\"}], "
        "\"args\": [{\"name\": \"x\", \"dir\": \"in\", \"dtype\": \"bf16\", "
        "\"shape\": [\"...rows\", 8], \"used\": true, \"scalar\": false, \"first_row\": false, "
        "\"init\": \"normal\", \"weight\": {\"layout\": \"kn\", \"mx\": false}}], "
        "\"cost\": {\"flops\": 1, \"bytes_read\": 2, \"bytes_written\": 3}, "
        "\"cost_tokens\": {\"flops\": [0, 1, 0], \"bytes_read\": [0, 2, 0], "
        "\"bytes_written\": [0, 3, 0]}}]}";
    const char *at = strstr(base, from);
    cr_assert_not_null(at, "'%s' is not in the base manifest", from);
    size_t len = strlen(base) - strlen(from) + strlen(to) + 1;
    char *s = malloc(len);
    snprintf(s, len, "%.*s%s%s", (int)(at - base), base, to, at + strlen(from));
    return s;
}

/* The variant is refused with one line that names the file and contains `want`. */
static void refused(const char *from, const char *to, const char *want)
{
    char *text = variant(from, to), err[512];
    kg_manifest *m = (kg_manifest *)1;
    int rc = kg_manifest_parse(text, strlen(text), "gen/manifest.json", &m, err, sizeof err);
    cr_assert_neq(rc, KG_OK, "accepted with %s -> %s", from, to);
    cr_assert_null(m);
    cr_assert(!strncmp(err, "gen/manifest.json", 17), "message does not name the file: %s", err);
    cr_assert(strstr(err, want), "'%s' lacks '%s'", err, want);
    cr_assert_null(strchr(err, '\n'), "more than one line: %s", err);
    free(text);
}

Test(manifest, base_variant_is_valid)
{
    char *text = variant("\"t.lua\"", "\"t.lua\""), err[512];
    kg_manifest *m;
    cr_assert_eq(kg_manifest_parse(text, strlen(text), "b.json", &m, err, sizeof err), KG_OK,
                 "%s", err);
    cr_assert(m->kernels[0].args[0].weight && m->kernels[0].args[0].shape[0].lead);
    kg_manifest_free(m);
    free(text);
}

/* A list argument: its count, the elements given and the ones of another dtype; the bundled
 * megakernels carry them. */
Test(manifest, list_arguments)
{
    char *text = variant("\"mx\": false}}", "\"mx\": false}, \"list\": {\"count\": 3, "
                         "\"given\": 5, \"alt_dtype\": \"e4m3\", \"alt\": 4}}"), err[512];
    kg_manifest *m;
    cr_assert_eq(kg_manifest_parse(text, strlen(text), "b.json", &m, err, sizeof err), KG_OK,
                 "%s", err);
    const kg_manifest_arg *a = &m->kernels[0].args[0];
    cr_assert(a->list == 3 && a->list_given == 5 && a->list_alt == 4, "list %d given %lu alt %lu",
              a->list, a->list_given, a->list_alt);
    cr_assert_str_eq(a->alt_dtype, "e4m3");
    kg_manifest_free(m);
    free(text);
    refused("\"mx\": false}}", "\"mx\": false}, \"list\": {\"count\": 64, \"given\": 1, "
            "\"alt_dtype\": \"bf16\", \"alt\": 0}}", "list.count': 64 is outside");
    refused("\"mx\": false}}", "\"mx\": false}, \"list\": {\"count\": 2, \"given\": 4, "
            "\"alt_dtype\": \"bf16\", \"alt\": 0}}", "list.given': 4 is outside");
    refused("\"mx\": false}}", "\"mx\": false}, \"list\": {\"count\": 2, \"given\": 3}}",
            "list.alt': missing");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/generated/tiny", kgt_source_dir());
    cr_assert_eq(kg_manifest_load(dir, &m, err, sizeof err), KG_OK, "%s", err);
    int lists = 0;
    for (int i = 0; i < m->nkernels; i++)
        for (int j = 0; j < m->kernels[i].nargs; j++)
            lists += m->kernels[i].args[j].list > 0;
    cr_assert_eq(lists, 2 * 12, "tiny's two megakernels have 12 list arguments each: %d", lists);
    kg_manifest_free(m);
}

Test(manifest, missing_fields)
{
    refused("\"symbol\": \"kg_x\", ", "", "field 'kernels[0].symbol': missing");
    refused("\"nominal\": 4, ", "", "field 'kernels[0].calls[0].nominal': missing");
    refused("\"used\": true, ", "", "field 'kernels[0].args[0].used': missing");
    refused("\"bytes_written\": 3", "\"bytes_writ\": 3",
            "kernels[0].cost.bytes_written': missing");
    refused("\"kernels\"", "\"kernel\"", "field 'kernels': missing");
}

Test(manifest, sizes_out_of_bounds)
{
    refused("[\"...rows\", 8]", "[1, 1, 1, 1, 1, 1, 1, 1, 1]",
            "field 'kernels[0].args[0].shape': 9 elements, more than 8");
    refused("\"...rows\", 8]", "\"...rows\", 8000000000000000]",
            "field 'kernels[0].args[0].shape[1]': 8000000000000000 is outside");
    refused("\"...rows\", 8]", "\"...rows\", -1]", "shape[1]': -1 is outside");
    refused("\"nominal\": 4", "\"nominal\": 0", "calls[0].nominal': 0 is outside");
    refused("[0, 1, 0]", "[0, 1, 0, 5]", "cost_tokens.flops': 4 elements, more than 3");
    refused("[0, 1, 0]", "[0, 1]", "cost_tokens.flops': expected 3 coefficients, got 2");
    refused("\"flops\": 1,", "\"flops\": 1e300,", "cost.flops': 1e+300 is not a cost");
    /* argument names hold at most 63 characters (kg_manifest_arg.name is char[64]) */
    refused("\"name\": \"x\"",
            "\"name\": \"an_argument_name_of_sixty_four_characters_one_more_than_it_holds\"",
            "args[0].name': longer than 63 characters");
    /* each size within bounds, but batch times sequence passes a long (found by fuzz_manifest:
     * kg_manifest_tokens overflowed) */
    refused("{\"name\": \"rows\", \"nominal\": 4, \"tokens\": \"seq\"}",
            "{\"name\": \"B\", \"nominal\": 1099511627776, \"tokens\": \"batch\"}, "
            "{\"name\": \"C\", \"nominal\": 1099511627776, \"tokens\": \"batch\"}, "
            "{\"name\": \"rows\", \"nominal\": 4, \"tokens\": \"seq\"}",
            "field 'kernels[0].calls': the tokens at the nominal sizes");
}

Test(manifest, wrong_types_and_values)
{
    refused("\"nominal\": 4", "\"nominal\": \"4\"", "calls[0].nominal': expected an integer, "
            "got a string");
    refused("\"used\": true", "\"used\": 1", "args[0].used': expected a boolean, got an integer");
    refused("[{\"name\": \"rows\", \"nominal\": 4, \"tokens\": \"seq\"}]", "{\"rows\": 4}",
            "field 'kernels[0].calls': expected an array, got an object");
    refused("\"tokens\": \"seq\"", "\"tokens\": \"time\"", "calls[0].tokens': expected");
    refused("\"dir\": \"in\"", "\"dir\": \"up\"", "args[0].dir': expected in, out or inout");
    refused("[\"...rows\", 8]", "[\"T\", 8]", "shape[0]': 'T' is not a per-call size");
    refused("[\"...rows\", 8]", "[8, \"...rows\"]", "only the first axis");
    refused("\"file\": \"kg_x.c\"", "\"file\": \"../x.c\"", "file': '../x.c' is not a file name");
    refused("{\"spec\"", "[{\"spec\"", "not JSON");
}

/* A folder without a manifest is named; so is a manifest's missing kernel file (the JIT). */
Test(manifest, missing_files)
{
    char err[512];
    kg_manifest *m;
    cr_assert_eq(kg_manifest_load("/nonexistent", &m, err, sizeof err), KG_EIO);
    cr_assert(strstr(err, "/nonexistent/manifest.json: cannot open (No such file"), "%s", err);
}

/* A temp folder for the file-kind cases, removed by the test. */
static char g_dir[64];
static void make_dir(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/kgt_manifest_XXXXXX");
    cr_assert_not_null(mkdtemp(g_dir));
}

/* "DIR/NAME" in a static buffer. */
static const char *in_dir(const char *name)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    return path;
}

/* A FIFO (no writer: reading would block forever), a folder and a file over the cap in place of
 * manifest.json are refused at once, naming the file, as the other readers of untrusted files
 * do; the cap is checked before anything is allocated (the big file is one sparse hole). */
Test(manifest, not_a_regular_file_or_too_big, .init = make_dir, .timeout = 10)
{
    char err[512];
    kg_manifest *m;
    cr_assert_eq(mkfifo(in_dir("manifest.json"), 0600), 0);
    cr_assert_eq(kg_manifest_load(g_dir, &m, err, sizeof err), KG_EIO);
    cr_assert(strstr(err, "manifest.json: not a regular file"), "%s", err);
    cr_assert_null(m);
    unlink(in_dir("manifest.json"));

    cr_assert_eq(mkdir(in_dir("manifest.json"), 0700), 0);
    cr_assert_eq(kg_manifest_load(g_dir, &m, err, sizeof err), KG_EIO);
    cr_assert(strstr(err, "manifest.json: not a regular file"), "%s", err);
    rmdir(in_dir("manifest.json"));

    FILE *f = fopen(in_dir("manifest.json"), "w");
    cr_assert_not_null(f);
    fclose(f);
    cr_assert_eq(truncate(in_dir("manifest.json"), (off_t)KG_MANIFEST_MAX_BYTES + 1), 0);
    cr_assert_eq(kg_manifest_load(g_dir, &m, err, sizeof err), KG_EIO);
    cr_assert(strstr(err, "manifest.json: 67108865 bytes, above the limit of 67108864"), "%s",
              err);
    cr_assert_eq(truncate(in_dir("manifest.json"), 0), 0);
    cr_assert_eq(kg_manifest_load(g_dir, &m, err, sizeof err), KG_ESPEC, "an empty file is "
                 "read, and is not JSON");
    unlink(in_dir("manifest.json"));
    rmdir(g_dir);
}

/* The same for a kernel source a manifest lists (kg_jit_load_dir): a FIFO is refused, not
 * waited on. The manifest is edge_one's, its first kernel's file a FIFO. */
Test(manifest, jit_load_dir_refuses_a_fifo_source, .init = make_dir, .timeout = 10)
{
    char src[4096], err[512];
    snprintf(src, sizeof src, "%s/generated/edge_one", kgt_source_dir());
    kg_manifest *m;
    cr_assert_eq(kg_manifest_load(src, &m, err, sizeof err), KG_OK, "%s", err);
    snprintf(src, sizeof src, "%s/generated/edge_one/manifest.json", kgt_source_dir());
    FILE *in = fopen(src, "rb"), *out = fopen(in_dir("manifest.json"), "wb");
    cr_assert(in && out);
    int ch;
    while ((ch = fgetc(in)) != EOF)
        fputc(ch, out);
    fclose(in), fclose(out);
    char fifo[512];
    snprintf(fifo, sizeof fifo, "%s", in_dir(m->kernels[0].file));
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    kg_registry *reg = kg_registry_new();
    cr_assert_eq(kg_jit_load_dir(reg, g_dir, NULL), KG_EIO);
    cr_assert(strstr(kg_registry_error(reg), "not a regular file (listed in"), "%s",
              kg_registry_error(reg));
    cr_assert(strstr(kg_registry_error(reg), m->kernels[0].file), "%s", kg_registry_error(reg));
    kg_registry_free(reg);
    kg_manifest_free(m);
    unlink(fifo);
    unlink(in_dir("manifest.json"));
    rmdir(g_dir);
}
