/* npy.c: NumPy .npy files in and out (kgen/npy.h).
 * Reads versions 1.0-3.0 through a small scanner for the header's Python dict literal; writes
 * version 1.0 laid out byte for byte as numpy.save does (data starts on a 64-byte boundary). */
#include "kgen/npy.h"
#include "kgen/abi.h"
#include "kgen/ckd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c copies little-endian data straight to memory: little-endian hosts only"
#endif

#define MAGIC "\x93NUMPY"
#define MAGIC_LEN 6
#define ALIGN 64                 /* numpy's ARRAY_ALIGN */
#define GROWTH_DIGITS 21         /* numpy's GROWTH_AXIS_MAX_DIGITS */
#define MAX_HEADER (1L << 20)    /* numpy writes headers of a few hundred bytes (and reads at
                                    most 10000 by default): a longer one is not a tensor file */
#define MAX_DIM (1LL << 62)      /* a dimension with more digits is refused while it is read */
#define ACCEPTED "little-endian <f4, <f2, <u2, |u1, |b1, <i4, <i8, <u4"

/* ---- errors and dtype tables ----------------------------------------------------------- */

/* Writes a one-line message into err (if any) and returns code, so callers can `return fail()`. */
static int fail(int code, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* The descrs kg_npy_read accepts and the dtype each becomes. */
static const struct { const char *descr; kg_dtype dtype; } read_types[] = {
    { "<f4", KG_F32 }, { "<f2", KG_F16 }, { "<u2", KG_BF16 }, { "|u1", KG_U8 },
    { "<u1", KG_U8 },  { "|b1", KG_U8 },  { "<i4", KG_I32 },  { "<i8", KG_I64 }, { "<u4", KG_U32 },
};

/* Bytes per element as stored in kg_npy.data; 0 for e2m1 (packed nibbles: no .npy mapping). */
static int elem_size(kg_dtype t)
{
    switch (t) {
    case KG_F32: case KG_I32: case KG_U32: return 4;
    case KG_BF16: case KG_F16: return 2;
    case KG_E4M3: case KG_E4M3FN: case KG_E5M2: case KG_E8M0: case KG_U8: return 1;
    case KG_I64: return 8;
    default: return 0;
    }
}

/* The descr written for dtype t (NULL if it has none). */
static const char *write_descr(kg_dtype t)
{
    switch (t) {
    case KG_F32: return "<f4";
    case KG_BF16: return "<u2";
    case KG_F16: return "<f2";
    case KG_E4M3: case KG_E4M3FN: case KG_E5M2: case KG_E8M0: case KG_U8: return "|u1";
    case KG_I32: return "<i4";
    case KG_I64: return "<i8";
    case KG_U32: return "<u4";
    default: return NULL;
    }
}

long kg_npy_count(const kg_npy *a)
{
    size_t n;
    if (a->rank < 0 || a->rank > KG_NPY_MAX_RANK || kg_ckd_shape(&n, 1, a->shape, a->rank) ||
        n > (size_t)__LONG_MAX__)
        return -1;
    return (long)n;
}

void kg_npy_free(kg_npy *a)
{
    if (!a)
        return;
    free(a->data);
    a->data = NULL;
    a->rank = 0;
}

/* ---- header dict scanner ------------------------------------------------------------------ */
/* The header is a Python dict literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * Whitespace, quote style, key order and trailing commas vary between writers, so this is a
 * tiny tokenizer rather than a fixed-format match. Scanners return 0 on success, -1 on error. */

typedef struct header {
    char descr[32];
    int has_descr, structured, fortran, has_fortran, has_shape, rank;
    int dim_too_big;       /* a dimension above MAX_DIM: reported as such, not as malformed */
    long long shape[KG_NPY_MAX_RANK];
} header;

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* A quoted string (' or "), copied into buf (truncated to size-1); *pp moves past it. */
static int scan_string(const char **pp, char *buf, size_t size)
{
    const char *p = *pp;
    char q = *p++;
    size_t n = 0;
    if (q != '\'' && q != '"')
        return -1;
    for (; *p && *p != q; p++) {
        if (*p == '\\' && p[1])
            p++;
        if (n + 1 < size)
            buf[n++] = *p;
    }
    if (*p != q)
        return -1;
    buf[n] = '\0';
    *pp = p + 1;
    return 0;
}

/* True / False. */
static int scan_bool(const char **pp, int *val)
{
    if (strncmp(*pp, "True", 4) == 0) {
        *val = 1, *pp += 4;
        return 0;
    }
    if (strncmp(*pp, "False", 5) == 0) {
        *val = 0, *pp += 5;
        return 0;
    }
    return -1;
}

/* One non-negative dimension; Python 2 writers appended an 'L'. */
static int scan_dim(const char **pp, long long *val)
{
    const char *p = *pp;
    long long v = 0;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (MAX_DIM - 9) / 10)
            return -1; /* checked before the multiply, so v never overflows */
        v = v * 10 + (*p - '0');
    }
    if (*p == 'L' || *p == 'l')
        p++;
    *val = v, *pp = p;
    return 0;
}

/* A tuple of dimensions: (), (5,), (2, 3), (2,3,). Rank beyond KG_NPY_MAX_RANK sets rank to
 * KG_NPY_MAX_RANK + 1 so the caller can report it as unsupported rather than malformed. */
static int scan_shape(const char **pp, header *h)
{
    const char *p = skip_ws(*pp);
    if (*p++ != '(')
        return -1;
    h->rank = 0;
    for (p = skip_ws(p); *p != ')'; p = skip_ws(p)) {
        long long v;
        if (scan_dim(&p, &v) < 0) {
            h->dim_too_big = *p >= '0' && *p <= '9';
            return -1;
        }
        if (h->rank < KG_NPY_MAX_RANK)
            h->shape[h->rank] = v;
        if (h->rank <= KG_NPY_MAX_RANK)
            h->rank++;
        p = skip_ws(p);
        if (*p == ',')
            p++;
        else if (*p != ')')
            return -1;
    }
    *pp = p + 1;
    return 0;
}

/* Skips the value of a key kgen does not know: strings, bracketed groups and bare tokens, up
 * to the ',' or '}' that ends it. */
static int skip_value(const char **pp)
{
    const char *p = *pp;
    char tmp[2];
    int depth = 0;
    while (*p && !(depth == 0 && (*p == ',' || *p == '}'))) {
        if (*p == '\'' || *p == '"') {
            if (scan_string(&p, tmp, sizeof tmp) < 0)
                return -1;
            continue;
        }
        if (*p == '(' || *p == '[' || *p == '{')
            depth++;
        else if ((*p == ')' || *p == ']' || *p == '}') && --depth < 0)
            return -1;
        p++;
    }
    *pp = p;
    return *p ? 0 : -1;
}

/* The value of one key; a non-string descr (a list: structured dtype) is flagged, not parsed. */
static int scan_value(const char **pp, const char *key, header *h)
{
    if (strcmp(key, "descr") == 0) {
        h->has_descr = 1;
        if (**pp == '\'' || **pp == '"')
            return scan_string(pp, h->descr, sizeof h->descr);
        h->structured = 1;
        return skip_value(pp);
    }
    if (strcmp(key, "fortran_order") == 0) {
        h->has_fortran = 1;
        return scan_bool(pp, &h->fortran);
    }
    if (strcmp(key, "shape") == 0) {
        h->has_shape = 1;
        return scan_shape(pp, h);
    }
    return skip_value(pp);
}

/* The whole dict: '{' (key ':' value ',')* '}' with an optional trailing comma. */
static int scan_header(const char *p, header *h)
{
    char key[32];
    memset(h, 0, sizeof *h);
    p = skip_ws(p);
    if (*p++ != '{')
        return -1;
    for (p = skip_ws(p); *p != '}'; p = skip_ws(p)) {
        if (scan_string(&p, key, sizeof key) < 0)
            return -1;
        p = skip_ws(p);
        if (*p++ != ':')
            return -1;
        p = skip_ws(p);
        if (scan_value(&p, key, h) < 0)
            return -1;
        p = skip_ws(p);
        if (*p == ',')
            p++;
        else if (*p != '}')
            return -1;
    }
    return h->has_descr && h->has_fortran && h->has_shape ? 0 : -1;
}

/* ---- reading ------------------------------------------------------------------------------- */
/* Every size comes from the file, so each is checked against the file's real length before
 * anything is allocated: a 128-byte file cannot make kgen ask for more than it holds. */

/* Opens path for reading if it is a regular file. O_NONBLOCK so that a FIFO without a writer
 * is refused instead of blocking the open; a directory is refused instead of reading as empty.
 * *size is the file's length. */
static FILE *open_regular(const char *path, long long *size, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        fail(KG_EIO, err, errlen, "%s: cannot open (%s)", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        fail(KG_EIO, err, errlen, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        fail(KG_EIO, err, errlen, "%s: cannot open (%s)", path, strerror(errno));
        close(fd);
        return NULL;
    }
    *size = (long long)st.st_size;
    return f;
}

/* Reads magic, version, header length and the header text (NUL-terminated, malloc'd); *used
 * becomes the offset of the data. */
static int read_header_text(FILE *f, const char *path, long long fsize, char **text,
                            long long *used, char *err, size_t errlen)
{
    unsigned char pre[12];
    size_t got = fread(pre, 1, 8, f);
    if (got < MAGIC_LEN || memcmp(pre, MAGIC, MAGIC_LEN) != 0)
        return fail(KG_EIO, err, errlen, "%s: not a .npy file (bad magic)", path);
    if (got < 8)
        return fail(KG_EIO, err, errlen, "%s: truncated header", path);
    int major = pre[6], minor = pre[7], lenbytes = major == 1 ? 2 : 4;
    if (major < 1 || major > 3)
        return fail(KG_EIO, err, errlen, "%s: unsupported .npy version %d.%d (kgen reads "
                    "1.0 to 3.0)", path, major, minor);
    if (fread(pre + 8, 1, lenbytes, f) != (size_t)lenbytes)
        return fail(KG_EIO, err, errlen, "%s: truncated header", path);
    unsigned long hlen = pre[8] | (unsigned long)pre[9] << 8;
    if (lenbytes == 4)
        hlen |= (unsigned long)pre[10] << 16 | (unsigned long)pre[11] << 24;
    if (hlen > MAX_HEADER)
        return fail(KG_EIO, err, errlen, "%s: header length %lu is above kgen's limit of %ld",
                    path, hlen, MAX_HEADER);
    *used = 8 + lenbytes + (long long)hlen;
    if (*used > fsize)
        return fail(KG_EIO, err, errlen, "%s: truncated header (%lu bytes declared, the file "
                    "holds %lld)", path, hlen, fsize - 8 - lenbytes);
    *text = malloc(hlen + 1);
    if (!*text)
        return fail(KG_ENOMEM, err, errlen, "%s: out of memory", path);
    if (fread(*text, 1, hlen, f) != hlen)
        return fail(KG_EIO, err, errlen, "%s: truncated header", path);
    (*text)[hlen] = '\0';
    if (strlen(*text) != hlen)
        return fail(KG_EIO, err, errlen, "%s: malformed header dict (a NUL byte in it)", path);
    return KG_OK;
}

/* The data's byte count for shape h at elem bytes per element, or -1 if forming it overflows
 * (multiplied in file order: a partial product that overflows is refused even if a later
 * dimension is 0). */
static long long data_bytes(const header *h, int elem)
{
    long dims[KG_NPY_MAX_RANK];
    for (int d = 0; d < h->rank; d++)
        dims[d] = (long)h->shape[d];
    size_t bytes;
    if (kg_ckd_shape(&bytes, (size_t)elem, dims, h->rank) || bytes > (size_t)__LONG_LONG_MAX__)
        return -1;
    return (long long)bytes;
}

/* Turns the header text into out's dtype/rank/shape, rejecting what kgen does not read, a
 * shape whose data the file does not hold (avail: the bytes after the header) and one whose
 * data is over max bytes. */
static int parse_header(const char *text, const char *path, long long avail, size_t max,
                        kg_npy *out, char *err, size_t errlen)
{
    header h;
    if (scan_header(text, &h) < 0)
        return h.dim_too_big
            ? fail(KG_ESHAPE, err, errlen, "%s: a dimension of the shape is above 2^62", path)
            : fail(KG_EIO, err, errlen, "%s: malformed header dict", path);
    if (h.structured)
        return fail(KG_ESHAPE, err, errlen, "%s: unsupported dtype (structured) (kgen reads "
                    ACCEPTED ")", path);
    size_t i, n = sizeof read_types / sizeof read_types[0];
    for (i = 0; i < n && strcmp(h.descr, read_types[i].descr) != 0; i++)
        ;
    if (i == n)
        return fail(KG_ESHAPE, err, errlen, "%s: unsupported dtype '%s' (kgen reads "
                    ACCEPTED ")", path, h.descr);
    if (h.fortran)
        return fail(KG_ESHAPE, err, errlen, "%s: fortran_order arrays are not supported "
                    "(kgen reads C-order; save np.ascontiguousarray(a))", path);
    if (h.rank > KG_NPY_MAX_RANK)
        return fail(KG_ESHAPE, err, errlen, "%s: rank above %d is not supported", path,
                    KG_NPY_MAX_RANK);
    long long bytes = data_bytes(&h, elem_size(read_types[i].dtype));
    if (bytes < 0)
        return fail(KG_ESHAPE, err, errlen, "%s: the shape's size overflows (the header "
                    "declares more elements than any file can hold)", path);
    if (bytes > avail)
        return fail(KG_EIO, err, errlen, "%s: truncated data (%lld of %lld bytes)", path,
                    avail, bytes);
    if ((unsigned long long)bytes > max)
        return fail(KG_ESHAPE, err, errlen, "%s: the data takes %lld bytes, above the limit of "
                    "%zu", path, bytes, max);
    out->dtype = read_types[i].dtype;
    out->rank = h.rank;
    for (int d = 0; d < h.rank; d++)
        out->shape[d] = (long)h.shape[d];
    return KG_OK;
}

/* Reads count() elements following the header (parse_header checked the file holds them);
 * extra trailing bytes are ignored as numpy does. */
static int read_data(FILE *f, const char *path, kg_npy *out, char *err, size_t errlen)
{
    size_t bytes;
    if (kg_ckd_shape(&bytes, (size_t)elem_size(out->dtype), out->shape, out->rank))
        return fail(KG_ESHAPE, err, errlen, "%s: the shape's size overflows", path);
    out->data = malloc(bytes ? bytes : 1);
    if (!out->data)
        return fail(KG_ENOMEM, err, errlen, "%s: out of memory (%zu bytes)", path, bytes);
    size_t got = fread(out->data, 1, bytes, f);
    if (got != bytes)
        return fail(KG_EIO, err, errlen, "%s: truncated data (%zu of %zu bytes)", path, got,
                    bytes);
    return KG_OK;
}

int kg_npy_read(const char *path, kg_npy *out, char *err, size_t errlen)
{
    return kg_npy_read_max(path, KG_NPY_MAX_BYTES, out, err, errlen);
}

int kg_npy_read_max(const char *path, size_t max_bytes, kg_npy *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    long long fsize = 0, used = 0;
    FILE *f = open_regular(path, &fsize, err, errlen);
    if (!f)
        return KG_EIO;
    char *text = NULL;
    int rc = read_header_text(f, path, fsize, &text, &used, err, errlen);
    if (rc == KG_OK)
        rc = parse_header(text, path, fsize - used, max_bytes, out, err, errlen);
    if (rc == KG_OK)
        rc = read_data(f, path, out, err, errlen);
    free(text);
    fclose(f);
    if (rc != KG_OK)
        kg_npy_free(out);
    return rc;
}

/* ---- writing ------------------------------------------------------------------------------- */

/* Builds numpy's version 1.0 header text: the dict, GROWTH_DIGITS spare spaces for appending
 * along axis 0, then spaces and '\n' so the data starts at a multiple of ALIGN. Returns its
 * length (the header length field), or -1 if it does not fit in buf. */
static long format_header(char *buf, size_t size, const char *descr, const kg_npy *a)
{
    size_t n = (size_t)snprintf(buf, size, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                                descr);
    for (int d = 0; d < a->rank && n < size; d++)
        n += (size_t)snprintf(buf + n, size - n, d ? ", %ld" : "%ld", a->shape[d]);
    if (n < size)
        n += (size_t)snprintf(buf + n, size - n, "%s), }", a->rank == 1 ? "," : "");
    if (a->rank > 0 && n < size) {
        int digits = snprintf(NULL, 0, "%ld", a->shape[0]);
        for (int k = digits; k < GROWTH_DIGITS && n < size; k++)
            buf[n++] = ' ';
    }
    size_t pad = ALIGN - (MAGIC_LEN + 4 + n + 1) % ALIGN;
    if (n + pad + 1 >= size)
        return -1;
    memset(buf + n, ' ', pad);
    n += pad;
    buf[n++] = '\n';
    return (long)n;
}

int kg_npy_write(const char *path, const kg_npy *a, char *err, size_t errlen)
{
    const char *descr = write_descr(a->dtype);
    if (!descr)
        return fail(KG_ESHAPE, err, errlen, "%s: dtype %d has no .npy form (packed e2m1: write "
                    "the bytes as u8)", path, (int)a->dtype);
    if (a->rank < 0 || a->rank > KG_NPY_MAX_RANK)
        return fail(KG_ESHAPE, err, errlen, "%s: rank %d out of range", path, a->rank);
    for (int d = 0; d < a->rank; d++)
        if (a->shape[d] < 0)
            return fail(KG_ESHAPE, err, errlen, "%s: negative dimension", path);
    size_t bytes;
    if (kg_ckd_shape(&bytes, (size_t)elem_size(a->dtype), a->shape, a->rank))
        return fail(KG_ESHAPE, err, errlen, "%s: the shape's size overflows", path);
    if (bytes && !a->data)
        return fail(KG_ESHAPE, err, errlen, "%s: no data", path);

    char text[512];
    long hlen = format_header(text, sizeof text, descr, a);
    if (hlen < 0)
        return fail(KG_ESHAPE, err, errlen, "%s: header too long", path);
    unsigned char pre[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                              (unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8) };
    FILE *f = fopen(path, "wb");
    if (!f)
        return fail(KG_EIO, err, errlen, "%s: cannot create (%s)", path, strerror(errno));
    int ok = fwrite(pre, 1, sizeof pre, f) == sizeof pre
          && fwrite(text, 1, (size_t)hlen, f) == (size_t)hlen
          && (bytes == 0 || fwrite(a->data, 1, bytes, f) == bytes);
    if (fclose(f) != 0)
        ok = 0;
    if (!ok)
        return fail(KG_EIO, err, errlen, "%s: write failed (%s)", path, strerror(errno));
    return KG_OK;
}
