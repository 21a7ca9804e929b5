#!/usr/bin/env bash
# valgrind.sh: `kgen generate` (a spec to a scratch folder) and `kgen exec` (small JIT runs on
# the shared vectors, one with a packed weight) under valgrind's memcheck: no invalid access,
# no use of uninitialised memory, no definite leak. Possible leaks (OpenMP's and libtcc's
# process-lifetime state) are not errors.
# usage: valgrind.sh KGEN SPECS_DIR SCRATCH_DIR SHARED_DIR
set -euo pipefail

kgen=$1
specs=$2
scratch=$3
vectors=$4/vectors
[ -d "$vectors" ] || { echo "no vectors at $vectors (pass the shared folder)"; exit 1; }

rm -rf "$scratch"
mkdir -p "$scratch"
passed=0
failed=0

# memcheck WHAT RC ARGS...: kgen ARGS under valgrind must exit RC (99 is valgrind's: an error
# or a definite leak).
memcheck() {
    local what=$1 want=$2
    shift 2
    local log="$scratch/${what// /_}.log" rc=0
    valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
        --log-file="$log" "$kgen" "$@" >"$scratch/stdout" 2>"$scratch/stderr" || rc=$?
    if [ "$rc" -eq "$want" ]; then
        passed=$((passed + 1))
        return
    fi
    failed=$((failed + 1))
    echo "FAIL: $what: exit $rc, expected $want: kgen $*"
    cat "$scratch/stderr"
    grep -E "ERROR SUMMARY|definitely lost|Invalid|uninitialised|  (at|by) 0x" "$log" | head -40
}

vec=$vectors/rmsnorm_quant/row_rms_norm_lb0p0_h200_r1
wvec=$vectors/output_projection_tkg/row_b2_s5_bias

memcheck "generate" 0 generate "$specs/tiny.lua" -o "$scratch/tiny"
memcheck "exec" 0 exec rmsnorm_quant:H=200,norm_type=RMS_NORM,quantization_type=ROW,dtype=bf16 \
    --in "hidden=$vec/inp.npy" --in "gamma=$vec/gamma.npy" --out "$scratch/exec"
memcheck "exec weight" 0 \
    exec output_projection:variant=TKG,quantization_type=ROW,N=4,D=64,H=256,bias=true,dtype=bf16 \
    --in "attention=$wvec/attention.npy" --in "weight=$wvec/weight.npy" \
    --in "w_scale=$wvec/weight_scale.npy" --in "bias=$wvec/bias.npy" --out "$scratch/wexec"
# a refused input takes the error path, which must free what it had built as well
memcheck "exec refused" 2 exec rmsnorm_quant:H=64,norm_type=RMS_NORM,quantization_type=ROW \
    --in "hidden=$vec/inp.npy" --in "gamma=$vec/gamma.npy" --out "$scratch/bad"

echo "valgrind: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
