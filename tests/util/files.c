/* tests/util/files.c: a fresh folder per test and small file helpers (files.h). */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/files.h"
#include "util/vectors.h"

/* A fresh folder per test (each Criterion test runs in its own process). */
static char g_tmp[64];

void kgt_tmp_make(void)
{
    snprintf(g_tmp, sizeof g_tmp, "/tmp/kgt_files_XXXXXX");
    cr_assert_not_null(mkdtemp(g_tmp), "mkdtemp failed");
}

/* Removes the folder's files and then the folder (it holds no sub-folders but case ones). */
static void remove_tmp_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        int n = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (n < 0 || (size_t)n >= sizeof path)
            continue; /* cut short it would name another file; left, as the folder then is */
        if (unlink(path) != 0)
            remove_tmp_dir(path);
    }
    closedir(d);
    rmdir(dir);
}

void kgt_tmp_drop(void)
{
    if (g_tmp[0])
        remove_tmp_dir(g_tmp);
}

const char *kgt_tmp_dir(void) { return g_tmp; }

/* A path inside the test's folder (static buffer: use before the next call). */
const char *kgt_tmp(const char *name)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", g_tmp, name);
    return path;
}

/* A path under shared/vectors (static buffer: use before the next call). */
const char *kgt_vectors_path(const char *rel)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/vectors/%s", kgt_shared_dir(), rel);
    return path;
}

void kgt_write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    cr_assert_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* The whole file, malloc'd; *n its size. */
unsigned char *kgt_read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(*n ? *n : 1);
    cr_assert_eq(fread(p, 1, *n, f), *n);
    fclose(f);
    return p;
}

/* Writes a hand-made .npy: magic, version major.0, the header text as given (no padding
 * added), then nbytes of data. */
void kgt_make_npy(const char *path, int major, const char *header, const void *data,
                  size_t nbytes)
{
    size_t hlen = strlen(header), lenbytes = major == 1 ? 2 : 4;
    unsigned char *buf = malloc(12 + hlen + nbytes);
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    for (size_t k = 0; k < lenbytes; k++)
        buf[8 + k] = (unsigned char)(hlen >> (8 * k));
    memcpy(buf + 8 + lenbytes, header, hlen);
    if (nbytes)
        memcpy(buf + 8 + lenbytes + hlen, data, nbytes);
    kgt_write_bytes(path, buf, 8 + lenbytes + hlen + nbytes);
    free(buf);
}
