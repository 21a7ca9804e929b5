/* luacov.c: Lua line coverage as libFuzzer feedback, for the targets whose code under test is
 * mostly Lua (the generator). libFuzzer sees only instrumented C, and the Lua interpreter is
 * Debian's: without this, every spec or problem looks alike to it and it keeps no corpus.
 *
 * It interposes the two Lua calls the generator's host makes around Lua code: lua_pcallk
 * installs a line hook on a state that has no hook, and lua_sethook combines the template
 * engine's budget (debug.sethook) with it. Each executed line pair (previous line,
 * this line, hashed with the chunk's name) bumps a counter in the section libFuzzer reads as
 * extra counters. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <lua.h>
#include <stdint.h>
#include <string.h>

#define NCOUNTERS (1 << 16)

__attribute__((section("__libfuzzer_extra_counters"))) static uint8_t counters[NCOUNTERS];

typedef int pcallk_fn(lua_State *, int, int, int, lua_KContext, lua_KFunction);
typedef void sethook_fn(lua_State *, lua_Hook, int, int);

/* the host's own hook (its instruction budget), called from ours */
static lua_Hook host_hook;
static int host_mask;
static uint32_t prev;

static sethook_fn *real_sethook(void)
{
    static sethook_fn *fn;
    if (!fn)
        fn = (sethook_fn *)dlsym(RTLD_NEXT, "lua_sethook");
    return fn;
}

/* FNV-1a of the chunk name and the line */
static uint32_t where(const char *src, int line)
{
    uint32_t h = 2166136261u;
    for (; *src; src++)
        h = (h ^ (uint8_t)*src) * 16777619u;
    return (h ^ (uint32_t)line) * 16777619u;
}

static void hook(lua_State *L, lua_Debug *ar)
{
    if (ar->event == LUA_HOOKLINE) {
        int line = ar->currentline;
        if (lua_getinfo(L, "S", ar)) {
            uint32_t here = where(ar->short_src, line);
            counters[(here ^ (prev >> 1)) % NCOUNTERS]++;
            prev = here;
        }
    } else if (host_hook && (host_mask & (1 << ar->event))) {
        host_hook(L, ar);
    }
}

static void install(lua_State *L, int count)
{
    real_sethook()(L, hook, LUA_MASKLINE | (host_mask & ~LUA_MASKLINE), count);
}

/* True if f is the Lua debug library's hook dispatcher (debug.sethook: the template engine's
 * budget), false for a hook of the host's own (the spec chunk's instruction budget). */
static int from_debug_library(lua_Hook f)
{
    Dl_info info;
    return dladdr((void *)f, &info) && info.dli_fname && strstr(info.dli_fname, "liblua");
}

/* A hook of the host's own replaces ours until it is cleared: the spec chunk runs under a budget
 * of 10^8 instructions, which with a hook per line would take a minute to exhaust. The spec's
 * checks (spec.lua), the generator and the templates after it are traced. */
void lua_sethook(lua_State *L, lua_Hook f, int mask, int count)
{
    host_hook = f;
    host_mask = f ? mask : 0;
    if (f && !from_debug_library(f))
        real_sethook()(L, f, mask, count);
    else
        install(L, count);
}

int lua_pcallk(lua_State *L, int nargs, int nresults, int errfunc, lua_KContext ctx,
               lua_KFunction k)
{
    static pcallk_fn *real;
    if (!real)
        real = (pcallk_fn *)dlsym(RTLD_NEXT, "lua_pcallk");
    if (!lua_gethook(L))
        install(L, 0);
    return real(L, nargs, nresults, errfunc, ctx, k);
}
