/* readfile.c: kgrf_read. The file is opened with O_NONBLOCK so that a FIFO without a writer is
 * refused at fstat instead of blocking the open; the size fstat gives bounds the allocation,
 * never ftell (which a directory answers with a huge number). */
#include "readfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Reads want bytes of fd into buf; returns how many it got (fewer: the file shrank), or -1. */
static long long read_all(int fd, char *buf, size_t want)
{
    size_t n = 0;
    while (n < want) {
        ssize_t got = read(fd, buf + n, want - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return -1;
        if (got == 0)
            break;
        n += (size_t)got;
    }
    return (long long)n;
}

char *kgrf_read(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open (%s)", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        snprintf(err, errlen, "%s: not a regular file", path);
    else if ((unsigned long long)st.st_size > max)
        snprintf(err, errlen, "%s: %lld bytes, above the limit of %zu", path,
                 (long long)st.st_size, max);
    else if (!(buf = malloc((size_t)st.st_size + 1)))
        snprintf(err, errlen, "%s: out of memory", path);
    long long n = buf ? read_all(fd, buf, (size_t)st.st_size) : 0;
    if (buf && n < 0) {
        snprintf(err, errlen, "%s: cannot read (%s)", path, strerror(errno));
        free(buf);
        buf = NULL;
    }
    close(fd);
    if (buf) {
        buf[n] = '\0';
        if (len)
            *len = (size_t)n;
    }
    return buf;
}
