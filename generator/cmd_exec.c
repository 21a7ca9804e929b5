#include "cli.h"
int kgc_exec(int argc, char **argv) { (void)argc; (void)argv; return kgc_error(KGC_FAIL, "exec: being written"); }
