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
    char *out1 = NULL, *out2 = NULL;
    int rc = kgg_render(g, "fuzz.c.in", text, PARAMS, &out1);
    if (rc != KG_OK) {
        FZ_CHECK(rc == KG_ESPEC, "rc %d", rc);
        FZ_CHECK(kgg_error(g)[0] != '\0', "refused without a message");
    } else {
        /* a second rendering only of what rendered: a template stopped at its instruction
         * budget costs the most, and once is enough */
        FZ_CHECK(out1 != NULL, "rendered to nothing");
        rc = kgg_render(g, "fuzz.c.in", text, PARAMS, &out2);
        FZ_CHECK(rc == KG_OK, "rendered once, then refused: %s", kgg_error(g));
        FZ_CHECK(strcmp(out1, out2) == 0, "two renderings of one template differ");
    }
    free(out1);
    free(out2);
    free(text);
    return 0;
}
