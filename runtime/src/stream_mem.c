/* stream_mem.c: memory for buffers kernels stream (kg_stream_alloc), on huge pages when large.
 * The packed weights, the CLI's kernel arguments and the benchmark's buffers all come from here,
 * so a bandwidth figure and the kernels it is compared with read the same kind of pages. */
#include <stdlib.h>
#include <sys/mman.h>

#include "kgen/ckd.h"
#include "kgen/kgen.h"

enum { HUGE_PAGE = 2 << 20 };

/* Measured on one Zen 4 VM: the llama3_8b bf16 MLP GEMV read 20-25 GB/s on huge pages against
 * 16-18 on 4 KiB pages, and a 4 KiB page fault costs ~2.7 us (77 ms of first touch for a 112 MiB
 * weight, 14 ms with 2 MiB pages). Plain pages where the kernel has no THP. */
void *kg_stream_alloc(size_t bytes)
{
    size_t whole;
    if (bytes == 0)
        return NULL;
    if (bytes < 2 * (size_t)HUGE_PAGE)
        return kg_ckd_round_up(&whole, bytes, 64) ? NULL : aligned_alloc(64, whole);
    if (kg_ckd_round_up(&whole, bytes, HUGE_PAGE))
        return NULL;
    void *p = aligned_alloc(HUGE_PAGE, whole);
#ifdef MADV_HUGEPAGE
    if (p)
        madvise(p, whole, MADV_HUGEPAGE);
#endif
    return p;
}
