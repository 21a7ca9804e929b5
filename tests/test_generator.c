/* test_generator.c: the generator's rules: the template engine (each rule, each error's text),
 * spec validation messages, names that parse back, and output that is a pure function of its
 * inputs. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host.h"
#include "kgen/abi.h"
#include "kgen/manifest.h"
#include "util/jitp.h"

static kgg *g;
static void setup(void) { g = kgg_new(); }
static void teardown(void) { kgg_free(g); }

/* Renders `text`; returns the output (caller frees) or NULL with the error in kgg_error. */
static char *render(const char *text, const char *params)
{
    char *out = NULL;
    return kgg_render(g, "t.c.in", text, params, &out) == KG_OK ? out : NULL;
}

static void expect_error(const char *text, const char *params, const char *want)
{
    char *out = render(text, params);
    cr_assert_null(out, "rendered without error: %s", out);
    cr_assert(strstr(kgg_error(g), want), "error '%s' lacks '%s'", kgg_error(g), want);
}

TestSuite(template, .init = setup, .fini = teardown);

Test(template, substitutes_strings_and_integers)
{
    char *out = render("int ${NAME}[${N * 2}];\n", "{ NAME = 'x', N = 4 }");
    cr_assert_str_eq(out, "int x[8];\n");
    free(out);
}

Test(template, control_lines_and_indentation_stripped)
{
    char *out = render("{\n    $for i = 0, N - 1 do\n        a[${i}] = 0;\n    $end\n}\n",
                       "{ N = 2 }");
    cr_assert_str_eq(out, "{\n    a[0] = 0;\n    a[1] = 0;\n}\n");
    free(out);
    out = render("$if A then\nx\n$else\ny\n$end\n", "{ A = false }");
    cr_assert_str_eq(out, "y\n");
    free(out);
}

Test(template, floats_only_through_f32)
{
    char *out = render("${f32(X)} ${f32(Y)} ${f32(Z)}\n", "{ X = 240, Y = 1e-6, Z = 0.1 }");
    cr_assert_str_eq(out, "240.0f 1e-06f 0.1f\n");
    free(out);
    expect_error("a\n${X}\n", "{ X = 1.5 }", "t.c.in:2: ${} takes strings and integers");
    expect_error("${T}\n", "{ T = {} }", "t.c.in:1: ${} takes strings and integers; got a table");
}

Test(template, assert_names_template_line)
{
    expect_error("x\n$assert(H % 8 == 0, 'H must be a multiple of 8')\n", "{ H = 12 }",
                 "t.c.in:2: H must be a multiple of 8");
}

Test(template, syntax_errors_name_template_line)
{
    expect_error("a\nb\n$if x = 1 then\n$end\n", "{}", "t.c.in:3:");
    expect_error("a\n$for i = 1, 2 do\nb\n", "{}", "t.c.in:2: '$for' is not closed with '$end'");
    expect_error("a\n$end\n", "{}", "t.c.in:2: '$end' without an open block");
    expect_error("a ${X\n", "{ X = 1 }", "t.c.in:1: unclosed ${");
    expect_error("a ${}\n", "{}", "t.c.in:1: empty ${}");
}

Test(template, sandbox_has_no_io_os_pairs)
{
    expect_error("$io.write('x')\n", "{}", "t.c.in:1:");
    expect_error("$os.time()\n", "{}", "t.c.in:1:");
    expect_error("$for k in pairs({}) do\n$end\n", "{}", "t.c.in:1:");
    expect_error("$next({})\n", "{}", "t.c.in:1:");
    expect_error("$math.random()\n", "{}", "t.c.in:1:");
}

/* ---- specs ---------------------------------------------------------------------------------- */

TestSuite(spec, .init = setup, .fini = teardown);

static const char good_spec[] =
    "return {\n"
    "  name = 'bad',\n"
    "  model = { hidden = 64, intermediate = 96, q_heads = 4, kv_heads = 2, head_dim = 16,\n"
    "            layers = 1, vocab = 10, rms_eps = 1e-5, rope_theta = 10000 },\n"
    "  dtype = 'bf16',\n"
    "  fp8 = { format = 'e4m3' },\n"
    "  limits = { max_tokens = 8, max_batch = 1, max_context = 16 },\n"
    "  kernels = {\n"
    "    { family = 'rmsnorm_quant', quantization_type = 'ROW' },\n"
    "  },\n"
    "}\n";

/* Writes a spec with `from` replaced by `to` and expects generation to fail with `want`. */
static void expect_spec_error(const char *from, const char *to, const char *want)
{
    char path[] = "/tmp/kgen_specXXXXXX.lua", text[4096];
    int fd = mkstemps(path, 4);
    const char *at = strstr(good_spec, from);
    cr_assert_not_null(at, "test bug: '%s' not in the spec", from);
    snprintf(text, sizeof text, "%.*s%s%s", (int)(at - good_spec), good_spec, to,
             at + strlen(from));
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    kgg_file *files;
    int n;
    char *name;
    int rc = kgg_generate(g, path, &files, &n, &name);
    unlink(path);
    cr_assert_eq(rc, KG_ESPEC, "accepted: %s -> %s", from, to);
    char want_full[512];
    snprintf(want_full, sizeof want_full, "%s%s", path, want);
    cr_assert(strstr(kgg_error(g), want_full), "error '%s' lacks '%s'", kgg_error(g), want_full);
}

Test(spec, one_line_errors_name_file_line_and_field)
{
    expect_spec_error("hidden = 64, ", "", ": field 'model.hidden' is missing");
    expect_spec_error("hidden = 64", "hidden = 'x'",
                      ":3: field 'model.hidden': expected an integer, got \"x\"");
    expect_spec_error("dtype = 'bf16'", "dtype = 'fp64'",
                      ":5: field 'dtype': expected one of bf16, fp16, f32, got \"fp64\"");
    expect_spec_error("max_context = 16 },", "max_context = 16 }, colour = 1,",
                      ":7: field 'colour' is not a spec field");
    expect_spec_error("kv_heads = 2", "kv_heads = 3",
                      ":3: field 'model.q_heads': 4 is not a multiple of model.kv_heads (3)");
    expect_spec_error("quantization_type = 'ROW'", "quantization_type = 'COLUMN'",
                      ":9: field 'kernels[1].quantization_type' (rmsnorm_quant): expected one "
                      "of ROW, STATIC, got \"COLUMN\"");
    expect_spec_error("family = 'rmsnorm_quant'", "family = 'nope'",
                      ":9: field 'kernels[1].family': expected one of");
    expect_spec_error("quantization_type = 'ROW'", "lower_bound = -1",
                      ":9: field 'kernels[1].lower_bound' (rmsnorm_quant): expected a number "
                      ">= 0");
    expect_spec_error("return {", "return {{", ":");
}

/* `isa` once named the instruction set in every kernel name but changed no generated code: a
 * spec, a kernel entry or a problem string that still sets it is refused with the reason. */
Test(spec, retired_isa_is_refused)
{
    expect_spec_error("max_context = 16 },", "max_context = 16 }, isa = 'avx512',",
                      ":7: field 'isa' is no longer a spec field: no kernel's code depended "
                      "on it");
    expect_spec_error("quantization_type = 'ROW'", "quantization_type = 'ROW', isa = 'avx2'",
                      ":9: field 'kernels[1].isa' (rmsnorm_quant): no longer a key: no kernel's "
                      "code depended on it");
    kgg_kernel k = { 0 };
    cr_assert_neq(kgg_problem(g, "cumsum:H=8,isa=avx512", &k), KG_OK);
    cr_assert(strstr(kgg_error(g), "key 'isa': no longer a key"), "%s", kgg_error(g));
    kgg_kernel_clear(&k);
}

Test(spec, template_assert_fails_generation)
{
    expect_spec_error("quantization_type = 'ROW'", "quantization_type = 'ROW', quant_max = 300",
                      ":9: field 'kernels[1].quant_max' (rmsnorm_quant): 300 exceeds the largest "
                      "finite e4m3 (240)");
}

Test(spec, template_assert_names_spec_entry_and_template_line)
{
    expect_spec_error("    { family = 'rmsnorm_quant', quantization_type = 'ROW' },\n",
                      "    { family = 'rmsnorm_quant', quantization_type = 'ROW' },\n"
                      "    { family = 'rmsnorm_quant', H = 300000 },\n",
                      ": kernels[2]: templates/rmsnorm_quant.c.in:6: H must be at most 262144");
}

Test(spec, code_budget)
{
    expect_spec_error("max_context = 16 },", "max_context = 16 }, codegen = { max_lines = 20 },",
                      ": kernels[1]: kernel kg_rmsnorm_quant_bf16_e4m3__h64_rms_row_eps1em05 is ");
}

/* ---- names and determinism --------------------------------------------------------------- */

TestSuite(generated, .init = setup, .fini = teardown);

/* Every kernel of every bundled spec (as the manifest generated in memory lists them): its name
 * parses back to the keys it spells. */
Test(generated, names_parse_back)
{
    static const char *specs[] = { "llama3_8b", "tiny", "edge_odd", "edge_one" };
    for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
        char path[4096], *name, err[1024];
        snprintf(path, sizeof path, "%s/specs/%s.lua", kgt_source_dir(), specs[s]);
        kgg_file *files;
        int n, checked = 0;
        cr_assert_eq(kgg_generate(g, path, &files, &n, &name), KG_OK, "%s", kgg_error(g));
        const kgg_file *mf = &files[n - 1];
        cr_assert_str_eq(mf->name, "manifest.json");
        kg_manifest *m;
        cr_assert_eq(kg_manifest_parse(mf->text, mf->len, path, &m, err, sizeof err), KG_OK,
                     "%s", err);
        for (int i = 0; i < m->nkernels; i++, checked++) {
            char *parsed, *named;
            const kg_manifest_kernel *k = &m->kernels[i];
            cr_assert_eq(kgg_string_call(g, "parse_name", k->symbol, &parsed), KG_OK, "%s",
                         kgg_error(g));
            cr_assert_eq(kgg_string_call(g, "named_keys", k->problem, &named), KG_OK);
            cr_assert_str_eq(parsed, named, "%s parses to %s", k->symbol, parsed);
            free(parsed);
            free(named);
        }
        cr_assert_gt(checked, 0, "%s: no kernels", path);
        kg_manifest_free(m);
        kgg_files_free(files, n);
        free(name);
    }
}

/* The preamble's problem (the keys away from the family's defaults, one to a line) joined back
 * into one string is a problem string for the same kernel: its canonical form is the one
 * kernels.inc carries. */
static void preamble_problem(const char *text, char *out, size_t len)
{
    static const char label[] = " * problem: the keys away from the family's defaults";
    const char *p = strstr(text, label);
    cr_assert_not_null(p, "no problem in the preamble:\n%.400s", text);
    p = strchr(p, '\n') + 1;
    size_t n = 0;
    while (strncmp(p, " *   ", 5) == 0) {
        const char *end = strchr(p, '\n');
        size_t w = (size_t)(end - p) - 5;
        cr_assert_lt(n + w, len);
        memcpy(out + n, p + 5, w);
        n += w;
        p = end + 1;
    }
    out[n] = '\0';
    cr_assert_gt(n, 0, "empty problem in the preamble:\n%.400s", text);
}

Test(generated, preamble_problem_names_the_kernel)
{
    static const char *specs[] = { "llama3_8b", "tiny", "edge_odd", "edge_one" };
    int shorter = 0, checked = 0;
    for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
        char path[4096], *name, problem[4096], err[512];
        snprintf(path, sizeof path, "%s/specs/%s.lua", kgt_source_dir(), specs[s]);
        kgg_file *files;
        int n;
        cr_assert_eq(kgg_generate(g, path, &files, &n, &name), KG_OK, "%s", kgg_error(g));
        const kgg_file *mf = NULL;
        for (int i = 0; i < n; i++)
            if (strcmp(files[i].name, "manifest.json") == 0)
                mf = &files[i];
        cr_assert_not_null(mf, "%s: no manifest.json", specs[s]);
        kg_manifest *m;
        cr_assert_eq(kg_manifest_parse(mf->text, mf->len, "manifest.json", &m, err, sizeof err),
                     KG_OK, "%s", err);
        for (int i = 0; i < m->nkernels; i++) {
            const kg_manifest_kernel *mk = &m->kernels[i];
            const kgg_file *f = NULL;
            for (int j = 0; j < n; j++)
                if (strcmp(files[j].name, mk->file) == 0)
                    f = &files[j];
            cr_assert_not_null(f, "%s: %s not generated", specs[s], mk->file);
            preamble_problem(f->text, problem, sizeof problem);
            kgg_kernel k = { 0 };
            cr_assert_eq(kgg_problem(g, problem, &k), KG_OK, "%s: %s", mk->symbol, kgg_error(g));
            cr_assert_str_eq(k.problem, mk->problem, "%s: the preamble's %s", mk->symbol, problem);
            cr_assert_str_eq(k.name, mk->symbol);
            shorter += strlen(problem) < strlen(mk->problem);
            checked++;
            kgg_kernel_clear(&k);
        }
        kg_manifest_free(m);
        kgg_files_free(files, n);
        free(name);
    }
    cr_assert_gt(checked, 0, "no kernel checked");
    cr_assert_gt(shorter, 0, "no preamble left a key at its default out");
}

Test(generated, names_reject_garbage)
{
    char *out;
    cr_assert_neq(kgg_string_call(g, "parse_name", "kg_rmsnorm_quant_bf16_e4m3__h64_zz", &out),
                  KG_OK);
    cr_assert(strstr(kgg_error(g), "unknown tokens: zz"), "%s", kgg_error(g));
    /* the old grammar's ISA part is not a name any more */
    cr_assert_neq(kgg_string_call(g, "parse_name", "kg_rmsnorm_quant_bf16_e4m3__h64__avx512",
                                  &out), KG_OK);
    cr_assert(strstr(kgg_error(g), "not kg_<family>_<dtypes>__<tokens>"), "%s", kgg_error(g));
    cr_assert_neq(kgg_string_call(g, "parse_name", "nonsense", &out), KG_OK);
}

/* Three generations of the same spec are byte-identical (fresh Lua states: hash seeds differ). */
Test(generated, three_runs_identical)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/specs/llama3_8b.lua", kgt_source_dir());
    kgg_file *first = NULL;
    int nfirst = 0;
    for (int run = 0; run < 3; run++) {
        kgg *h = kgg_new();
        kgg_file *files;
        int n;
        char *name;
        cr_assert_eq(kgg_generate(h, path, &files, &n, &name), KG_OK, "%s", kgg_error(h));
        if (run == 0) {
            first = files;
            nfirst = n;
        } else {
            cr_assert_eq(n, nfirst);
            for (int i = 0; i < n; i++) {
                cr_assert_str_eq(files[i].name, first[i].name);
                cr_assert(files[i].len == first[i].len &&
                          !memcmp(files[i].text, first[i].text, files[i].len),
                          "run %d: %s differs", run, files[i].name);
            }
            kgg_files_free(files, n);
        }
        free(name);
        kgg_free(h);
    }
    kgg_files_free(first, nfirst);
}

/* The file of `name` among files, or NULL. */
static const kgg_file *file_named(const kgg_file *files, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(files[i].name, name) == 0)
            return &files[i];
    return NULL;
}

/* A one-key change to a spec makes a small diff: the changed kernel's file goes and its new
 * file comes, kernels.inc and manifest.json change, and every other kernel's file is byte for
 * byte what it was (nothing spec-wide, such as the spec's hash, in a kernel's preamble). */
Test(generated, one_key_change_rewrites_one_kernel)
{
    static const char from[] = "{ family = \"rmsnorm_quant\", quantization_type = \"ROW\" }",
                      to[] = "{ family = \"rmsnorm_quant\", quantization_type = \"ROW\", "
                             "eps = 1e-6 }";
    char path[4096];
    snprintf(path, sizeof path, "%s/specs/tiny.lua", kgt_source_dir());
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    static char text[1 << 16], changed[1 << 16];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    cr_assert(len > 0 && len < sizeof text - 1, "%s: %zu bytes", path, len);
    text[len] = 0;
    const char *at = strstr(text, from);
    cr_assert_not_null(at, "test bug: specs/tiny.lua lacks %s", from);
    snprintf(changed, sizeof changed, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));

    kgg_file *a, *b;
    int na, nb;
    char *name;
    cr_assert_eq(kgg_generate_text(g, text, len, "specs/tiny.lua", &a, &na, &name), KG_OK, "%s",
                 kgg_error(g));
    free(name);
    cr_assert_eq(kgg_generate_text(g, changed, strlen(changed), "specs/tiny.lua", &b, &nb, &name),
                 KG_OK, "%s", kgg_error(g));
    free(name);
    cr_assert_eq(na, nb);
    int same = 0, gone = 0, differ = 0;
    for (int i = 0; i < na; i++) {
        const kgg_file *o = &a[i], *m = file_named(b, nb, o->name);
        if (!m) {
            gone++;
            cr_assert(strstr(o->name, "kg_rmsnorm_quant_"), "%s is gone", o->name);
        } else if (m->len == o->len && !memcmp(m->text, o->text, o->len)) {
            same++;
        } else {
            differ++;
            cr_assert(!strcmp(o->name, "kernels.inc") || !strcmp(o->name, "manifest.json"),
                      "%s changed with another kernel's key", o->name);
        }
    }
    cr_assert_eq(gone, 1, "%d files gone", gone);
    cr_assert_eq(differ, 2, "%d files differ", differ);
    cr_assert_eq(same, na - 3);
    cr_assert_gt(same, 10, "only %d kernels compared", same);
    kgg_files_free(a, na);
    kgg_files_free(b, nb);
}

/* A kernel name not in the registry, and a compile error that names the generated file. */
Test(generated, registry_and_jit_errors)
{
    kg_registry *reg = kg_registry_new();
    cr_assert_null(kg_registry_find(reg, "kg_nope__x"));
    cr_assert(strstr(kg_registry_error(reg), "kg_nope__x is not in the registry"));
    kg_kernel_info info = { "rmsnorm_quant", "kg_broken", "", 0, 0, 0 };
    const char *label = "generated/x/kg_broken.c", *src = "int kg_broken(void)\n{\n  return x;\n}\n";
    cr_assert_eq(kg_jit_compile(reg, 1, &info, &label, &src, NULL), KG_ECOMPILE);
    cr_assert(strstr(kg_registry_error(reg), "generated/x/kg_broken.c:3:"), "%s",
              kg_registry_error(reg));
    kg_registry_free(reg);
}
