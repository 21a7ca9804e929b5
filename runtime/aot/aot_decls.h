/* aot_decls.h: forced into every generated file the AOT build compiles (-include), so gcc checks
 * each kernel's definition against its family's typedef in kgen/kernels.h. Needs the spec's
 * generated folder on the include path for kernels.inc. */
#include "kgen/kgen.h"
#include "kgen/kernels.h"

#define KG_KERNEL(family, symbol, problem, flops, bytes_read, bytes_written) \
    kg_##family##_fn symbol;                                                 \
    kg_kernel_v symbol##__v;
#include "kernels.inc"
#undef KG_KERNEL
