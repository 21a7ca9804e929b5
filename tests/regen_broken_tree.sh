#!/usr/bin/env bash
# regen_broken_tree.sh: the `regen` and `check-generated` targets work when generated files are
# broken. Copies the source tree (the files git tracks), appends a line that is not C to one
# kernel file of generated/SPEC and to the derived kgen/kernels.h, and one that is not JSON to
# generated/SPEC/manifest.json (which the configure step reads), configures a fresh build of the
# copy and builds `regen` (which builds kgen first) and `check-generated`: both must succeed and
# the files must come back byte for byte. Were kgen to link the generated code, or the configure
# step to need a valid manifest, this would fail.
# usage: regen_broken_tree.sh SOURCE_DIR SPEC SCRATCH_DIR C_COMPILER [LAUNCHER]
set -euo pipefail

src=$1
spec=$2
scratch=$3
cc=$4
launcher=${5:-}
rm -rf "$scratch"
mkdir -p "$scratch/tree"
(cd "$src" && git ls-files -z | xargs -0 cp --parents -t "$scratch/tree")
kernel=generated/$spec/$(cd "$scratch/tree/generated/$spec" && ls kg_*.c | head -n 1)
victims=("$kernel" "generated/$spec/manifest.json" runtime/include/kgen/kernels.h)
for f in "${victims[@]}"; do
    echo "this line is not C, nor JSON" >>"$scratch/tree/$f"
done

cmake -S "$scratch/tree" -B "$scratch/build" -DKGEN_BUILD_TESTS=OFF -DCMAKE_C_COMPILER="$cc" \
      ${launcher:+-DCMAKE_C_COMPILER_LAUNCHER="$launcher"} >"$scratch/configure.log" 2>&1 ||
    { cat "$scratch/configure.log"; echo "FAIL: configure"; exit 1; }
cmake --build "$scratch/build" --target regen -j2 >"$scratch/regen.log" 2>&1 ||
    { tail -n 20 "$scratch/regen.log"; echo "FAIL: the regen target"; exit 1; }
cmake --build "$scratch/build" --target check-generated >"$scratch/check.log" 2>&1 ||
    { tail -n 20 "$scratch/check.log"; echo "FAIL: the check-generated target"; exit 1; }
for f in "${victims[@]}"; do
    cmp "$scratch/tree/$f" "$src/$f" || { echo "FAIL: regen did not repair $f"; exit 1; }
done
rm -rf "$scratch"
echo "regen_broken_tree: ${victims[*]} broken; regen built kgen and repaired them;" \
     "check-generated clean"
