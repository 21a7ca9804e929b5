/* test_template_bounds.c: the template engine ends a template that would not end: an endless
 * loop stops at its instruction budget, a partial that includes itself at the nesting limit,
 * each with the template:line that was running (the fuzzer's regression inputs, as tests that
 * run in every build). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "kgen/kgen.h"

/* Renders text as template "t.c.in" with N = 4; returns the status, message in msg. */
static int render(const char *text, char *msg, size_t len)
{
    kgg *g = kgg_new();
    cr_assert(g);
    char *out = NULL;
    int rc = kgg_render(g, "t.c.in", text, "{ N = 4 }", &out);
    snprintf(msg, len, "%s", rc == KG_OK ? out : kgg_error(g));
    free(out);
    kgg_free(g);
    return rc;
}

Test(template_bounds, an_endless_loop_ends_at_the_budget_naming_its_line, .timeout = 30)
{
    char msg[2048];
    int rc = render("x\n$local n = N\n$while n > 0 do\n${f32(n)}\n$end\n", msg, sizeof msg);
    cr_assert_eq(rc, KG_ESPEC, "rendered: %.200s", msg);
    /* the hook fires on the loop's test (line 3) or inside its body (line 4) */
    int in_loop = !strncmp(msg, "t.c.in:3: ", 10) || !strncmp(msg, "t.c.in:4: ", 10);
    cr_assert(in_loop && strstr(msg, "budget"), "%s", msg);
}

Test(template_bounds, a_long_but_finite_loop_renders)
{
    char msg[2048];
    int rc = render("$local s = 0\n$for i = 1, 100000 do s = s + i end\n${s}\n", msg,
                    sizeof msg);
    cr_assert_eq(rc, KG_OK, "%s", msg);
    cr_assert_str_eq(msg, "5000050000\n");
}

Test(template_bounds, a_partial_that_includes_itself_ends_at_the_nesting_limit,
     .timeout = 30)
{
    char msg[2048];
    int rc = render("a\n$include('t.c.in')\n", msg, sizeof msg);
    cr_assert_eq(rc, KG_ESPEC, "rendered: %.200s", msg);
    cr_assert(strncmp(msg, "t.c.in:2: ", 10) == 0 && strstr(msg, "nested more than 8 deep"),
              "%s", msg);
}
