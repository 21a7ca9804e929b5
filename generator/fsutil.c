/* fsutil.c: writing generated files atomically and only when changed, temp folders, clean-up. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

#include "fsutil.h"

/* mkdir that takes an existing folder as success and anything else already there (a regular
 * file) as ENOTDIR. */
static int make_folder(const char *path)
{
    struct stat st;
    if (mkdir(path, 0777) == 0)
        return 0;
    if (errno != EEXIST)
        return -1;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    errno = ENOTDIR;
    return -1;
}

int kgf_mkdirs(const char *dir)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return errno = ENAMETOOLONG, -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (make_folder(buf) != 0)
                return -1;
            *p = '/';
        }
    }
    return make_folder(buf);
}

/* Opened with O_NONBLOCK so a FIFO without a writer is refused at fstat instead of blocking
 * the open; a directory, a device or a file over max is refused before anything is read. */
char *kgf_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
    char dummy[8];
    if (!err)
        err = dummy, errlen = sizeof dummy;
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
    size_t n = 0, want = buf ? (size_t)st.st_size : 0;
    while (buf && n < want) {
        ssize_t got = read(fd, buf + n, want - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf(err, errlen, "%s: cannot read (%s)", path, strerror(errno));
            free(buf);
            buf = NULL;
        }
        if (got <= 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    if (buf) {
        buf[n] = '\0';
        if (len)
            *len = n;
    }
    return buf;
}

char *kgf_read(const char *path, size_t *len)
{
    return kgf_read_file(path, KGF_MAX_FILE, len, NULL, 0);
}

/* A file being written is ".NAME.tmpPID" beside NAME until it is renamed over it. */
#define TEMP_MARK ".tmp"

int kgf_write_if_changed(const char *dir, const char *name, const char *text, size_t len)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t old_len;
    char *old = kgf_read(path, &old_len);
    int same = old && old_len == len && memcmp(old, text, len) == 0;
    free(old);
    if (same)
        return 0;
    snprintf(tmp, sizeof tmp, "%s/.%s" TEMP_MARK "%ld", dir, name, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return -1;
    int ok = fwrite(text, 1, len, f) == len, err = ok ? 0 : errno ? errno : EIO;
    if (fclose(f) != 0 && ok)
        ok = 0, err = errno;
    if (ok && rename(tmp, path) != 0)
        ok = 0, err = errno;
    if (!ok) {
        unlink(tmp);
        errno = err;   /* the reason the caller prints, not unlink's */
        return -1;
    }
    return 1;
}

char *kgf_tempdir(void)
{
    const char *base = getenv("TMPDIR");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s/kgen.XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(buf) ? strdup(buf) : NULL;
}

void kgf_remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char path[4096];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                unlink(path);
            }
        closedir(d);
    }
    rmdir(dir);
}

static int owned(const char *name)
{
    size_t n = strlen(name);
    return (strncmp(name, "kg_", 3) == 0 && n > 2 && strcmp(name + n - 2, ".c") == 0) ||
           strcmp(name, "kernels.inc") == 0 || strcmp(name, "manifest.json") == 0;
}

/* Whether name is a temp file kgf_write_if_changed left behind for a file kgen owns: ".NAME"
 * TEMP_MARK "PID" with NAME owned and no process PID (a live one may be writing it now: a
 * generate into the same folder at the same time). */
static int dead_temp(const char *name)
{
    const char *mark = name[0] == '.' ? strstr(name, TEMP_MARK) : NULL;
    char owner[256], *end;
    if (!mark)
        return 0;
    while (strstr(mark + 1, TEMP_MARK))   /* the last ".tmp": a name may hold one itself */
        mark = strstr(mark + 1, TEMP_MARK);
    if ((size_t)(mark - name) >= sizeof owner)
        return 0;
    snprintf(owner, sizeof owner, "%.*s", (int)(mark - name - 1), name + 1);
    const char *digits = mark + strlen(TEMP_MARK);
    long pid = strtol(digits, &end, 10);
    if (!owned(owner) || *digits < '0' || *digits > '9' || *end || pid <= 0)
        return 0;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

int kgf_remove_stale(const char *dir, const char *const *keep, int n)
{
    DIR *d = opendir(dir);
    int removed = 0;
    if (!d)
        return 0;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d))) {
        int kept = !owned(e->d_name) && !dead_temp(e->d_name);
        for (int i = 0; i < n && !kept; i++)
            kept = strcmp(keep[i], e->d_name) == 0;
        if (!kept) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            removed += unlink(path) == 0;
        }
    }
    closedir(d);
    return removed;
}
