/* fuzz.h: what the libFuzzer targets share: the input as a file (the readers under test take
 * paths) and a check that aborts with a message, so libFuzzer records the input. */
#ifndef KGEN_FUZZ_H
#define KGEN_FUZZ_H

#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* A property the code under test promised and broke: libFuzzer saves the input on abort. */
#define FZ_CHECK(cond, ...)                                                   \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "fuzz: %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
            abort();                                                          \
        }                                                                     \
    } while (0)

/* Puts data in a memory-backed file (one per process, rewritten for each input) and returns
 * its path, /proc/self/fd/N: the readers open it as any regular file, and nothing touches the
 * disk. */
static inline const char *fz_file(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[32];
    if (fd < 0) {
        fd = memfd_create("kgen-fuzz", 0);
        FZ_CHECK(fd >= 0, "memfd_create failed");
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    FZ_CHECK(ftruncate(fd, 0) == 0, "ftruncate failed");
    FZ_CHECK(size == 0 || pwrite(fd, data, size, 0) == (ssize_t)size, "pwrite failed");
    return path;
}

/* The input as a C string (an embedded NUL ends it, as it would for any caller); free it. */
static inline char *fz_string(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    FZ_CHECK(s != NULL, "out of memory");
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
