/* tests/util/files.h: for tests of the readers (npy, vector cases): a fresh folder per test
 * and small file helpers; each fails the calling test (Criterion) on an I/O error. */
#ifndef KGT_FILES_H
#define KGT_FILES_H

#include <stddef.h>

/* A fresh folder under /tmp for the test (.init), and its removal with what it holds
 * (.fini; each Criterion test runs in its own process). */
void kgt_tmp_make(void);
void kgt_tmp_drop(void);
/* The folder itself. */
const char *kgt_tmp_dir(void);
/* A path inside the test's folder, or under shared/vectors (static buffers: use each before
 * the next call). */
const char *kgt_tmp(const char *name);
const char *kgt_vectors_path(const char *rel);

void kgt_write_bytes(const char *path, const void *p, size_t n);
/* The whole file, malloc'd; *n its size. */
unsigned char *kgt_read_bytes(const char *path, size_t *n);
/* Writes a hand-made .npy: magic, version major.0, the header text as given (no padding
 * added), then nbytes of data. */
void kgt_make_npy(const char *path, int major, const char *header, const void *data,
                  size_t nbytes);

#endif
