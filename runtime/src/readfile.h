/* readfile.h: the runtime's one reader of whole text files it did not write (kgrf_ prefix):
 * a generated folder's manifest.json and kernel sources. */
#ifndef KGEN_RT_READFILE_H
#define KGEN_RT_READFILE_H

#include <stddef.h>

/* The largest file kgrf_read takes: far above any manifest or kernel source kgen writes (a
 * kernel is capped at a few thousand lines), far below what would exhaust memory. */
#define KGRF_MAX_FILE ((size_t)64 << 20)

/* Reads the regular file path whole (NUL-terminated, malloc'd; *len its length). A FIFO, a
 * directory or a device is refused without blocking or reading ("PATH: not a regular file"),
 * a file over max bytes before anything is allocated; otherwise NULL with "PATH: cannot open
 * (why)" / "cannot read (why)" / "out of memory" in err. */
char *kgrf_read(const char *path, size_t max, size_t *len, char *err, size_t errlen);

#endif
