/* load_dir.c: JIT-compiles a generated folder: the kernels listed in its kernels.inc, each
 * from <symbol>.c beside it. kernels.inc is the only list; this reads its KG_KERNEL lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/kgen.h"
#include "registry.h"

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        buf[n] = '\0';
    fclose(f);
    return buf;
}

/* KG_KERNEL(family, symbol, "problem", flops, bytes_read, bytes_written) */
static int parse_line(const char *line, char *fam, char *sym, char *prob, double *cost)
{
    return sscanf(line, " KG_KERNEL ( %127[^, ] , %255[^, ] , \"%1023[^\"]\" , %lf , %lf , %lf )",
                  fam, sym, prob, &cost[0], &cost[1], &cost[2]) == 6;
}

int kg_jit_load_dir(kg_registry *reg, const char *dir, double *seconds_total)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/kernels.inc", dir);
    char *inc = read_text(path);
    if (!inc)
        return kgr_fail(reg, KG_EIO, "%s: cannot read", path);
    int cap = 0, n = 0, rc = KG_OK;
    for (char *p = inc; *p; p++)
        cap += *p == '\n';
    kg_kernel_info *info = calloc((size_t)cap + 1, sizeof *info);
    char **labels = calloc((size_t)cap + 1, sizeof *labels);
    char **srcs = calloc((size_t)cap + 1, sizeof *srcs);
    double *secs = calloc((size_t)cap + 2, sizeof *secs);
    char *save = NULL;
    for (char *line = strtok_r(inc, "\n", &save); line && rc == KG_OK;
         line = strtok_r(NULL, "\n", &save)) {
        char fam[128], sym[256], prob[1024];
        double cost[3];
        if (strncmp(line, "KG_KERNEL", 9) != 0)
            continue;
        if (!parse_line(line, fam, sym, prob, cost)) {
            rc = kgr_fail(reg, KG_ESPEC, "%s: cannot read the line '%s'", path, line);
            break;
        }
        info[n] = (kg_kernel_info){ strdup(fam), strdup(sym), strdup(prob),
                                    cost[0], cost[1], cost[2] };
        snprintf(path, sizeof path, "%s/%s.c", dir, sym);
        labels[n] = strdup(path);
        srcs[n] = read_text(path);
        if (!srcs[n])
            rc = kgr_fail(reg, KG_EIO, "%s: cannot read (listed in %s/kernels.inc)", path, dir);
        n++;
    }
    if (rc == KG_OK)
        rc = kg_jit_compile(reg, n, info, (const char *const *)labels,
                            (const char *const *)srcs, secs);
    if (seconds_total) {
        *seconds_total = 0;
        for (int i = 0; i <= n; i++)
            *seconds_total += secs[i];
    }
    for (int i = 0; i < n; i++) {
        free((char *)info[i].family);
        free((char *)info[i].name);
        free((char *)info[i].problem);
        free(labels[i]);
        free(srcs[i]);
    }
    free(info);
    free(labels);
    free(srcs);
    free(secs);
    free(inc);
    return rc;
}
