#!/usr/bin/env bash
# kgen_no_kernels.sh: the kgen binary holds no generated kernel (it never links libkgen_aot), so
# a template that emits bad C can always be regenerated away. Its symbol table must show the
# runtime (so nm works on it) and no kernel: no kg_*__v entry point, no kg_aot_* registration.
# usage: kgen_no_kernels.sh KGEN
set -euo pipefail

syms=$(nm -P --defined-only "$1" | awk '{ print $1 }')
for want in kg_registry_new kg_jit_compile kg_gcc_compile; do
    grep -qx "$want" <<<"$syms" || { echo "FAIL: nm shows no $want: cannot read $1?"; exit 1; }
done
kernels=$(grep -E '^kg_.*__v$|^kg_aot_' <<<"$syms" || true)
if [ -n "$kernels" ]; then
    echo "FAIL: kgen holds generated kernels:"
    echo "$kernels" | head -n 5
    exit 1
fi
echo "kgen_no_kernels: $(wc -l <<<"$syms") symbols, no generated kernel"
