/* fsutil.h: the few file operations the CLI needs (kgf_ prefix). */
#ifndef KGEN_FSUTIL_H
#define KGEN_FSUTIL_H

#include <stddef.h>

/* Creates dir and its parents; 0 on success, else -1 with errno set (ENOTDIR when a file that
 * is not a folder is in the way). */
int kgf_mkdirs(const char *dir);
/* Writes text to dir/name only if it differs from what is there, atomically (temp file
 * .NAME.tmpPID in the same folder, then rename). Returns 1 if written, 0 if unchanged, -1 with
 * errno set on error. */
int kgf_write_if_changed(const char *dir, const char *name, const char *text, size_t len);
/* The largest file kgf_read reads, and the largest spec (a spec is a few KiB; the bound keeps
 * a wrong path, say a weights file, from being read whole into memory). */
#define KGF_MAX_FILE (64u << 20)
#define KGF_MAX_SPEC (16u << 20)
/* Reads a whole regular file of at most max bytes, NUL-terminated; *len (if not NULL) is its
 * length. NULL with a one-line message naming the file in err if it cannot be opened, is not
 * a regular file (a directory or FIFO: refused without blocking), or is larger than max. */
char *kgf_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen);
/* kgf_read_file up to KGF_MAX_FILE, without the message. */
char *kgf_read(const char *path, size_t *len);
/* A fresh private folder under $TMPDIR (or /tmp); caller frees the string. */
char *kgf_tempdir(void);
/* Removes a folder and the files directly in it. */
void kgf_remove_dir(const char *dir);
/* Removes files of dir that kgen owns (kg_*.c, kernels.inc, manifest.json) and that are not in
 * keep[0..n), and the temp files of kgf_write_if_changed for such files whose writer is dead
 * (a killed generate's .kg_x.c.tmp1234; nothing else of that shape). Returns how many were
 * removed. */
int kgf_remove_stale(const char *dir, const char *const *keep, int n);

#endif
