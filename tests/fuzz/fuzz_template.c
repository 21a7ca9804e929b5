/* fuzz_template.c: libFuzzer target of the template engine (kgg_render, template.lua): the
 * input is a template's text, rendered with a fixed set of parameters. Templates are kgen's own,
 * but every spec and problem passes through the engine, so its translation must never crash,
 * must refuse what it cannot translate with a message, and must render deterministically (the
 * same text twice, whatever Lua's hash order). */
#include "fuzz.h"

#include "host.h"
#include "kgen/kgen.h"

/* The parameters every input is rendered with; the seed templates use them. */
static const char PARAMS[] =
    "{ N = 4, M = 3, NAME = 'kg_fuzz', DTYPE = 'float', EPS = 1e-6, FLAG = true, "
    "LIST = { 1, 2, 3 }, MAP = { a = 1, b = 2 } }";

static kgg *g;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g)
        FZ_CHECK((g = kgg_new()) != NULL, "kgg_new failed");
    char *text = fz_string(data, size);
    char *out1 = NULL, *out2 = NULL, err1[2048];
    int rc1 = kgg_render(g, "fuzz.c.in", text, PARAMS, &out1);
    snprintf(err1, sizeof err1, "%s", rc1 == KG_OK ? "" : kgg_error(g));
    int rc2 = kgg_render(g, "fuzz.c.in", text, PARAMS, &out2);
    FZ_CHECK(rc1 == rc2, "rendered once (rc %d) and refused once (rc %d): %s", rc1, rc2,
             rc1 ? err1 : kgg_error(g));
    if (rc1 != KG_OK) {
        FZ_CHECK(rc1 == KG_ESPEC, "rc %d", rc1);
        FZ_CHECK(err1[0] != '\0', "refused without a message");
        FZ_CHECK(strcmp(err1, kgg_error(g)) == 0, "two messages for one template: '%s', '%s'",
                 err1, kgg_error(g));
    } else {
        FZ_CHECK(out1 && out2, "rendered to nothing");
        FZ_CHECK(strcmp(out1, out2) == 0, "two renderings of one template differ");
    }
    free(out1);
    free(out2);
    free(text);
    return 0;
}
