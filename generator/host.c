/* host.c: runs the generator's Lua (embedded in the binary) and converts between its tables
 * and C structs. Errors from Lua are one-line messages; they become KG_ESPEC. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <nettle/sha2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "host.h"
#include "kgen/abi.h"

typedef struct kg_embedded { const char *name; const char *text; size_t len; } kg_embedded;
extern const kg_embedded kgg_lua_files[];
extern const kg_embedded kgg_template_files[];
extern const char kgg_families_text[]; /* generator/families.txt */

/* What a spec may cost. A spec is untrusted Lua: `while true do end` or a loop filling a table
 * must end in a one-line error, not a hang or the machine's memory. The budget counts the VM
 * instructions of the spec's own chunk (the generator's work after it is not counted: it is
 * bounded by the checked sizes); the memory limit holds for the whole Lua state. */
#define SPEC_BUDGET 100000000        /* instructions: about a second; real specs use < 10^5 */
#define MEM_LIMIT ((size_t)256 << 20) /* the bundled specs peak near 5 MiB */

struct kgg {
    lua_State *L;
    size_t mem, mem_limit;  /* bytes the Lua state holds, and the most it may */
    char error[2048];
};

static int fail(kgg *g, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->error, sizeof g->error, fmt, ap);
    va_end(ap);
    return status;
}

int kgg_fail(kgg *g, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->error, sizeof g->error, fmt, ap);
    va_end(ap);
    return status;
}

const char *kgg_error(const kgg *g)
{
    return g->error;
}

/* ---- host functions visible to Lua ------------------------------------------------------ */

static int l_sha256(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    struct sha256_ctx ctx;
    uint8_t d[SHA256_DIGEST_SIZE];
    char hex[2 * SHA256_DIGEST_SIZE + 1];
    sha256_init(&ctx);
    sha256_update(&ctx, n, (const uint8_t *)s);
    sha256_digest(&ctx, sizeof d, d);
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    lua_pushstring(L, hex);
    return 1;
}

static int l_template(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    for (const kg_embedded *e = kgg_template_files; e->name; e++)
        if (strcmp(e->name, name) == 0) {
            lua_pushlstring(L, e->text, e->len);
            return 1;
        }
    return luaL_error(L, "template '%s' is not one of kgen's templates", name);
}

/* package.preload["a.b"] for every embedded generator/lua/a/b.lua, with the file's path as
 * chunk name so Lua errors point into the source tree. */
static void preload_modules(lua_State *L)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    for (const kg_embedded *e = kgg_lua_files; e->name; e++) {
        char mod[256], chunk[300];
        snprintf(mod, sizeof mod, "%.*s", (int)(strlen(e->name) - 4), e->name);
        for (char *p = mod; *p; p++)
            if (*p == '/')
                *p = '.';
        snprintf(chunk, sizeof chunk, "@generator/lua/%s", e->name);
        if (luaL_loadbuffer(L, e->text, e->len, chunk) != LUA_OK) {
            fprintf(stderr, "kgen: %s\n", lua_tostring(L, -1));
            abort(); /* a build defect, not an input error */
        }
        lua_setfield(L, -2, mod);
    }
    lua_pop(L, 2);
}

/* lua_Alloc with a ceiling: a request that would take the state past g->mem_limit fails, which
 * Lua turns into a memory error (LUA_ERRMEM) that unwinds to the nearest pcall. */
static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    kgg *g = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        g->mem -= old;
        return NULL;
    }
    if (nsize > old && nsize - old > g->mem_limit - g->mem)
        return NULL;
    void *p = realloc(ptr, nsize);
    if (p)
        g->mem = g->mem - old + nsize;
    return p;
}

/* The count hook: fires once, when the spec chunk has run SPEC_BUDGET instructions. */
static void budget_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_getfield(L, LUA_REGISTRYINDEX, "kgen.spec_running");
    const char *name = lua_tostring(L, -1);
    lua_pushfstring(L, "spec %s: exceeded the instruction budget of %d (an endless loop?)",
                    name ? name : "?", SPEC_BUDGET);
    lua_error(L);
}

/* The message of a failed spec chunk: its own string, or one that says what was raised instead
 * (error(nil) or error({}) must not print "(null)"). */
static void push_spec_error(lua_State *L, int status, const char *name)
{
    if (status == LUA_ERRMEM) {
        lua_gc(L, LUA_GCCOLLECT); /* the chunk's garbage is unreachable now: room for a message */
        lua_pushfstring(L, "spec %s: exceeded the generator's memory limit of %d MiB", name,
                        (int)(MEM_LIMIT >> 20));
    } else if (lua_type(L, -1) == LUA_TSTRING) {
        lua_pushvalue(L, -1);
    } else {
        lua_pushfstring(L, "spec %s: raised an error with a %s value instead of a message", name,
                        luaL_typename(L, -1));
    }
}

/* host.run_spec(chunk, name): calls the compiled spec chunk under the instruction budget.
 * Returns true and the chunk's value, or false and a one-line message (as pcall would). */
static int l_run_spec(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    const char *name = luaL_checkstring(L, 2);
    lua_pushvalue(L, 2);
    lua_setfield(L, LUA_REGISTRYINDEX, "kgen.spec_running");
    lua_pushvalue(L, 1);
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, SPEC_BUDGET);
    int status = lua_pcall(L, 0, 1, 0);
    lua_sethook(L, NULL, 0, 0);
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "kgen.spec_running");
    if (status == LUA_OK) {
        lua_pushboolean(L, 1);
        lua_insert(L, -2);
        return 2;
    }
    push_spec_error(L, status, name);
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
}

/* An error outside any pcall (loading the generator's own modules): a defect of kgen. */
static int panic(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "kgen: internal error: %s\n", msg ? msg : "(not a string)");
    return 0; /* Lua aborts */
}

kgg *kgg_new(void)
{
    kgg *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->mem_limit = MEM_LIMIT;
    if (!(g->L = lua_newstate(limited_alloc, g))) {
        free(g);
        return NULL;
    }
    lua_State *L = g->L;
    lua_atpanic(L, panic);
    luaL_openlibs(L);
    preload_modules(L);
    lua_newtable(L);
    lua_pushstring(L, KGEN_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushcfunction(L, l_sha256);
    lua_setfield(L, -2, "sha256");
    lua_pushcfunction(L, l_template);
    lua_setfield(L, -2, "template");
    lua_pushstring(L, kgg_families_text);
    lua_setfield(L, -2, "families");
    lua_pushcfunction(L, l_run_spec);
    lua_setfield(L, -2, "run_spec");
    lua_setglobal(L, "host");
    return g;
}

void kgg_free(kgg *g)
{
    if (g) {
        lua_close(g->L);
        free(g);
    }
}

/* ---- calling main.lua ------------------------------------------------------------------- */

/* Pushes main[fn]; the caller pushes arguments and calls call(). */
static void push_main(lua_State *L, const char *fn)
{
    lua_getglobal(L, "require");
    lua_pushstring(L, "main");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, fn);
    lua_remove(L, -2);
}

/* Calls the function below nargs arguments; a failure becomes a one-line KG_ESPEC message
 * (`what` names the spec or problem in the messages that would not otherwise say). */
static int call(kgg *g, int nargs, int nres, const char *what)
{
    int status = lua_pcall(g->L, nargs, nres, 0);
    if (status == LUA_OK)
        return KG_OK;
    const char *msg = lua_tostring(g->L, -1);
    if (status == LUA_ERRMEM)
        fail(g, KG_ESPEC, "%s: exceeded the generator's memory limit of %d MiB", what,
             (int)(MEM_LIMIT >> 20));
    else if (msg)
        fail(g, KG_ESPEC, "%s", msg);
    else
        fail(g, KG_ESPEC, "%s: the generator raised a %s value instead of a message", what,
             luaL_typename(g->L, -1));
    lua_pop(g->L, 1);
    lua_gc(g->L, LUA_GCCOLLECT); /* give back what the failed call held */
    return KG_ESPEC;
}

void kgg_display_name(const char *path, char *buf, size_t len)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    int in_specs = base - path >= 6 && strncmp(base - 6, "specs/", 6) == 0 &&
                   (base - path == 6 || base[-7] == '/');
    snprintf(buf, len, "%s%s", in_specs ? "specs/" : "", base);
}

/* Pushes main[fn](source, path, display) for a spec's text. */
static int call_spec_text(kgg *g, const char *fn, const char *src, size_t n, const char *path,
                          int nres)
{
    char display[512];
    kgg_display_name(path, display, sizeof display);
    push_main(g->L, fn);
    lua_pushlstring(g->L, src, n);
    lua_pushstring(g->L, path);
    lua_pushstring(g->L, display);
    return call(g, 3, nres, display);
}

/* The same for a spec file. */
static int call_spec(kgg *g, const char *fn, const char *path, int nres)
{
    size_t n;
    char why[512];
    char *src = kgf_read_file(path, KGF_MAX_SPEC, &n, why, sizeof why);
    if (!src)
        return fail(g, KG_EIO, "%s", why);
    int rc = call_spec_text(g, fn, src, n, path, nres);
    free(src);
    return rc;
}

static char *field_str(lua_State *L, int idx, const char *key)
{
    lua_getfield(L, idx, key);
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    char *r = s ? malloc(n + 1) : NULL;
    if (r) {
        memcpy(r, s, n);
        r[n] = '\0';
    }
    lua_pop(L, 1);
    return r;
}

static void field_buf(lua_State *L, int idx, const char *key, char *buf, size_t len)
{
    lua_getfield(L, idx, key);
    const char *s = lua_tostring(L, -1);
    snprintf(buf, len, "%s", s ? s : "");
    lua_pop(L, 1);
}

static double field_num(lua_State *L, int idx, const char *key)
{
    lua_getfield(L, idx, key);
    double v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return v;
}

static int field_bool(lua_State *L, int idx, const char *key)
{
    lua_getfield(L, idx, key);
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* Reads an argument table { name, dir, dtype, shape, used, scalar, init } at the stack top. */
static void read_arg(lua_State *L, kgg_arg *a)
{
    int t = lua_gettop(L);
    memset(a, 0, sizeof *a);
    field_buf(L, t, "name", a->name, sizeof a->name);
    field_buf(L, t, "dtype", a->dtype, sizeof a->dtype);
    field_buf(L, t, "init", a->init, sizeof a->init);
    char dir[8];
    field_buf(L, t, "dir", dir, sizeof dir);
    a->out = strcmp(dir, "out") == 0;
    a->inout = strcmp(dir, "inout") == 0;
    field_buf(L, t, "weight_layout", a->wt_layout, sizeof a->wt_layout);
    a->weight = a->wt_layout[0] != '\0';
    a->wt_mx = field_bool(L, t, "weight_mx");
    a->used = field_bool(L, t, "used");
    a->scalar = field_bool(L, t, "scalar");
    lua_getfield(L, t, "list");
    lua_Integer nl = lua_tointeger(L, -1);
    a->list = nl > 0 && nl <= KGG_MAX_LIST ? (int)nl : 0;
    lua_pop(L, 1);
    lua_getfield(L, t, "list_given");
    a->list_given = (unsigned long)lua_tointeger(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, t, "list_alt");
    a->list_alt = (unsigned long)lua_tointeger(L, -1);
    lua_pop(L, 1);
    field_buf(L, t, "alt_dtype", a->alt_dtype, sizeof a->alt_dtype);
    lua_getfield(L, t, "shape");
    a->rank = (int)luaL_len(L, -1);
    if (a->rank > KGG_MAX_RANK)
        a->rank = KGG_MAX_RANK;
    for (int i = 0; i < a->rank; i++) {
        lua_geti(L, -1, i + 1);
        a->shape[i] = (long)lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* Nonzero (with a message) if a kernel's argument or per-call size list is longer than the
 * fixed arrays of kgg_kernel hold: read partially, it would call the kernel wrongly. */
static int too_many(kgg *g, const char *who, int nargs, int ncalls)
{
    if (nargs <= KGG_MAX_ARGS && ncalls <= KGG_MAX_CALLS)
        return 0;
    fail(g, KG_ESPEC, "%s: %d arguments and %d per-call sizes, above kgen's limits of %d and %d",
         who, nargs, ncalls, KGG_MAX_ARGS, KGG_MAX_CALLS);
    return 1;
}

/* Reads a kernel view (main.lua's view()) at the stack top; KG_ESPEC if it does not fit. */
static int read_kernel(kgg *g, lua_State *L, kgg_kernel *k)
{
    int t = lua_gettop(L);
    memset(k, 0, sizeof *k);
    lua_getfield(L, t, "args");
    int nargs = (int)luaL_len(L, -1);
    lua_getfield(L, t, "calls");
    int ncalls = (int)luaL_len(L, -1);
    lua_pop(L, 2);
    lua_getfield(L, t, "name");
    int bad = too_many(g, lua_tostring(L, -1) ? lua_tostring(L, -1) : "?", nargs, ncalls);
    lua_pop(L, 1);
    if (bad)
        return KG_ESPEC;
    k->name = field_str(L, t, "name");
    k->family = field_str(L, t, "family");
    k->problem = field_str(L, t, "problem");
    k->text = field_str(L, t, "text");
    k->flops = field_num(L, t, "flops");
    k->read = field_num(L, t, "read");
    k->written = field_num(L, t, "written");
    lua_getfield(L, t, "args");
    k->nargs = (int)luaL_len(L, -1);
    for (int i = 0; i < k->nargs; i++) {
        lua_geti(L, -1, i + 1);
        read_arg(L, &k->args[i]);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_getfield(L, t, "calls");
    k->ncalls = (int)luaL_len(L, -1);
    for (int i = 0; i < k->ncalls; i++) {
        lua_geti(L, -1, i + 1);
        snprintf(k->calls[i], sizeof k->calls[i], "%s", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_getfield(L, t, "nominal");
    for (int i = 0; i < k->ncalls && i < KGG_MAX_CALLS; i++) {
        lua_geti(L, -1, i + 1);
        k->nominal[i] = (long)lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return KG_OK;
}

/* ---- public calls ------------------------------------------------------------------------ */

/* The files main.generate left on the stack (a list, then the spec's name on top). */
static int take_files(kgg *g, const char *spec_path, kgg_file **files, int *nfiles,
                      char **spec_name)
{
    lua_State *L = g->L;
    *spec_name = strdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    int n = (int)luaL_len(L, -1);
    *files = calloc((size_t)n + 1, sizeof **files);
    *nfiles = 0;
    for (int i = 0; *files && *spec_name && i < n; i++) {
        lua_geti(L, -1, i + 1);
        kgg_file *f = &(*files)[i];
        f->name = field_str(L, -1, "name");
        lua_getfield(L, -1, "text");
        const char *s = lua_tolstring(L, -1, &f->len);
        f->text = s ? malloc(f->len + 1) : NULL;
        if (f->text)
            memcpy(f->text, s, f->len + 1);
        lua_pop(L, 2);
        *nfiles = i + 1;
        if (!f->name || !f->text)
            break;
    }
    lua_pop(L, 1);
    if (*nfiles == n && *spec_name)
        return KG_OK;
    kgg_files_free(*files, *nfiles);
    free(*spec_name);
    *files = NULL, *spec_name = NULL, *nfiles = 0;
    return fail(g, KG_ENOMEM, "%s: out of memory holding the generated files", spec_path);
}

int kgg_generate(kgg *g, const char *spec_path, kgg_file **files, int *nfiles, char **spec_name)
{
    int rc = call_spec(g, "generate", spec_path, 2);
    return rc != KG_OK ? rc : take_files(g, spec_path, files, nfiles, spec_name);
}

int kgg_generate_text(kgg *g, const char *text, size_t len, const char *label, kgg_file **files,
                      int *nfiles, char **spec_name)
{
    if (len > KGF_MAX_SPEC)
        return fail(g, KG_ESPEC, "%s: a spec of %zu bytes is past the %u-byte limit", label,
                    len, KGF_MAX_SPEC);
    int rc = call_spec_text(g, "generate", text, len, label, 2);
    return rc != KG_OK ? rc : take_files(g, label, files, nfiles, spec_name);
}

void kgg_files_free(kgg_file *files, int n)
{
    for (int i = 0; i < n; i++) {
        free(files[i].name);
        free(files[i].text);
    }
    free(files);
}

int kgg_problem(kgg *g, const char *problem, kgg_kernel *k)
{
    push_main(g->L, "problem");
    lua_pushstring(g->L, problem);
    int rc = call(g, 1, 1, problem);
    if (rc != KG_OK)
        return rc;
    rc = read_kernel(g, g->L, k);
    lua_pop(g->L, 1);
    return rc;
}

void kgg_kernel_clear(kgg_kernel *k)
{
    free(k->name);
    free(k->family);
    free(k->problem);
    free(k->text);
    memset(k, 0, sizeof *k);
}

int kgg_bind(kgg *g, const char *problem, int nin, const char *const *names, const int *ranks,
             const long (*shapes)[KGG_MAX_RANK], long *n, int *ncalls, kgg_arg *args,
             int *nargs)
{
    lua_State *L = g->L;
    push_main(L, "bind");
    lua_pushstring(L, problem);
    lua_newtable(L);
    for (int i = 0; i < nin; i++) {
        lua_newtable(L);
        for (int d = 0; d < ranks[i]; d++) {
            lua_pushinteger(L, shapes[i][d]);
            lua_seti(L, -2, d + 1);
        }
        lua_setfield(L, -2, names[i]);
    }
    int rc = call(g, 2, 2, problem);
    if (rc != KG_OK)
        return rc;
    *nargs = (int)luaL_len(L, -1);
    *ncalls = (int)luaL_len(L, -2);
    if (too_many(g, problem, *nargs, *ncalls)) {
        lua_pop(L, 2);
        return KG_ESPEC;
    }
    for (int i = 0; i < *nargs; i++) {
        lua_geti(L, -1, i + 1);
        read_arg(L, &args[i]);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    for (int i = 0; i < *ncalls; i++) {
        lua_geti(L, -1, i + 1);
        n[i] = (long)lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return KG_OK;
}

int kgg_string_call(kgg *g, const char *fn, const char *arg, char **out)
{
    push_main(g->L, fn);
    lua_pushstring(g->L, arg);
    int rc = call(g, 1, 1, arg);
    if (rc != KG_OK)
        return rc;
    *out = strdup(lua_tostring(g->L, -1));
    lua_pop(g->L, 1);
    return KG_OK;
}

int kgg_header(kgg *g, char **text)
{
    push_main(g->L, "header");
    int rc = call(g, 0, 1, "kgen header");
    if (rc != KG_OK)
        return rc;
    *text = strdup(lua_tostring(g->L, -1));
    lua_pop(g->L, 1);
    return KG_OK;
}

int kgg_render(kgg *g, const char *name, const char *text, const char *params_lua, char **out)
{
    push_main(g->L, "render_text");
    lua_pushstring(g->L, name);
    lua_pushstring(g->L, text);
    lua_pushstring(g->L, params_lua);
    int rc = call(g, 3, 1, name);
    if (rc != KG_OK)
        return rc;
    *out = strdup(lua_tostring(g->L, -1));
    lua_pop(g->L, 1);
    return KG_OK;
}
