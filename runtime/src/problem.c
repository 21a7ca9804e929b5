/* problem.c: reading keys of a "family:key=value,..." problem string (what kernels.inc carries
 * for each kernel), so tests and tools take sizes from the generator instead of retyping them. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kgen/kgen.h"

/* Finds key in the part after ':' and copies its value into buf. */
static int find_value(const char *problem, const char *key, char *buf, size_t len)
{
    const char *p = strchr(problem, ':');
    p = p ? p + 1 : problem;
    size_t klen = strlen(key);
    while (*p) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        if ((size_t)(end - p) > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
            size_t n = (size_t)(end - p) - klen - 1;
            if (n + 1 > len)
                return 0;
            memcpy(buf, p + klen + 1, n);
            buf[n] = '\0';
            return 1;
        }
        p = *end ? end + 1 : end;
    }
    return 0;
}

int kg_problem_str(const char *problem, const char *key, char *buf, size_t len)
{
    return find_value(problem, key, buf, len);
}

int kg_problem_long(const char *problem, const char *key, long *value)
{
    char buf[64], *end;
    if (!find_value(problem, key, buf, sizeof buf))
        return 0;
    errno = 0;
    long v = strtol(buf, &end, 10);
    if (end == buf || *end || errno == ERANGE) /* empty, trailing text, or past a long */
        return 0;
    *value = v;
    return 1;
}

int kg_problem_double(const char *problem, const char *key, double *value)
{
    char buf[64], *end;
    if (!find_value(problem, key, buf, sizeof buf))
        return 0;
    errno = 0;
    double v = strtod(buf, &end);
    if (end == buf || *end || !isfinite(v)) /* empty, trailing text, NaN, inf or past a double */
        return 0;
    *value = v;
    return 1;
}
