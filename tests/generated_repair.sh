#!/usr/bin/env bash
# generated_repair.sh: generating and checking never need the generated code. A copy of a spec's
# generated folder with a kernel file broken (a line that is not C) is detected by `kgen check`,
# repaired by `kgen generate`, and then checks clean, byte for byte the committed file.
# usage: generated_repair.sh KGEN SOURCE_DIR SPEC SCRATCH_DIR
set -euo pipefail

kgen=$1
src=$2
spec=$3
scratch=$4
rm -rf "$scratch"
mkdir -p "$scratch"
cp -r "$src/generated/$spec" "$scratch/$spec"
dir=$scratch/$spec
victim=$(cd "$dir" && ls kg_*.c | head -n 1)
[ -n "$victim" ] || { echo "FAIL: no kernel file in generated/$spec"; exit 1; }
echo "this line is not C" >>"$dir/$victim"

cd "$src"   # the spec's display name in generated text is relative (specs/<file>)
rc=0
"$kgen" check "specs/$spec.lua" "$dir" >"$scratch/check1" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || { echo "FAIL: check of the broken copy: exit $rc, expected 1"; exit 1; }
grep -q "this line is not C" "$scratch/check1" ||
    { echo "FAIL: check's diff does not show the broken line"; exit 1; }

"$kgen" generate "specs/$spec.lua" -o "$dir" ||
    { echo "FAIL: generate over the broken copy failed"; exit 1; }
"$kgen" check "specs/$spec.lua" "$dir" ||
    { echo "FAIL: check after generate failed"; exit 1; }
cmp "$dir/$victim" "$src/generated/$spec/$victim" ||
    { echo "FAIL: $victim was not repaired"; exit 1; }
echo "generated_repair: $victim broken, detected, repaired"
