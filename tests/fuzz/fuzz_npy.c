/* fuzz_npy.c: libFuzzer target of the .npy reader (kg_npy_read). Any input is a file a user
 * could pass to `kgen exec --in`: it must be read or refused with a message, never crash. An
 * array it accepts must hold every byte its shape promises, and survive a round trip through
 * kg_npy_write with the same dtype, shape and bytes. */
#include "fuzz.h"

#include "kgen/kgen.h"
#include "kgen/npy.h"

/* The bytes `a` holds (the reader only returns whole-byte dtypes). */
static size_t nbytes(const kg_npy *a)
{
    return (size_t)kg_npy_count(a) * (size_t)(kg_dtype_bits(a->dtype) / 8);
}

/* A second memory file the accepted array is written to. */
static const char *out_path(void)
{
    static char path[32];
    if (!path[0]) {
        int fd = memfd_create("kgen-fuzz-out", 0);
        FZ_CHECK(fd >= 0, "memfd_create failed");
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    return path;
}

static void round_trip(const kg_npy *a)
{
    char err[512] = "";
    const char *path = out_path();
    int rc = kg_npy_write(path, a, err, sizeof err);
    FZ_CHECK(rc == KG_OK, "an array the reader accepted cannot be written: %s", err);
    kg_npy b;
    rc = kg_npy_read(path, &b, err, sizeof err);
    FZ_CHECK(rc == KG_OK, "what kg_npy_write wrote does not read back: %s", err);
    FZ_CHECK(b.dtype == a->dtype && b.rank == a->rank, "dtype or rank changed in a round trip");
    for (int d = 0; d < a->rank; d++)
        FZ_CHECK(b.shape[d] == a->shape[d], "axis %d changed in a round trip", d);
    FZ_CHECK(memcmp(a->data, b.data, nbytes(a)) == 0, "data changed in a round trip");
    kg_npy_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512] = "";
    kg_npy a;
    memset(&a, 0xa5, sizeof a); /* the reader must set every field it returns */
    int rc = kg_npy_read(fz_file(data, size), &a, err, sizeof err);
    if (rc != KG_OK) {
        FZ_CHECK(a.data == NULL, "a refused file left data behind (rc %d)", rc);
        FZ_CHECK(err[0] != '\0', "refused without a message (rc %d)", rc);
        return 0;
    }
    FZ_CHECK(a.rank >= 0 && a.rank <= KG_NPY_MAX_RANK, "rank %d", a.rank);
    for (int d = 0; d < a.rank; d++)
        FZ_CHECK(a.shape[d] >= 0, "axis %d is %ld", d, a.shape[d]);
    FZ_CHECK(kg_dtype_bits(a.dtype) % 8 == 0 && kg_dtype_bits(a.dtype) > 0, "dtype %d",
             (int)a.dtype);
    /* reading every byte lets AddressSanitizer check the buffer is as long as the shape says */
    volatile uint8_t sum = 0;
    const uint8_t *p = a.data;
    size_t n = nbytes(&a);
    FZ_CHECK(n == 0 || p != NULL, "no data for %zu bytes", n);
    for (size_t i = 0; i < n; i++)
        sum ^= p[i];
    (void)sum;
    round_trip(&a);
    kg_npy_free(&a);
    return 0;
}
