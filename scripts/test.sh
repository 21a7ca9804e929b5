#!/usr/bin/env bash
# test.sh: every test kgen has, in three builds:
#   build/       the normal build and its CTest suite;
#   build-asan/  the same suite built with AddressSanitizer and UndefinedBehaviorSanitizer
#                (KGEN_SANITIZE=ON, gcc);
#   build-fuzz/  when clang is installed, the libFuzzer targets (KGEN_FUZZ=ON), each run for
#                KGEN_FUZZ_SECONDS (20) by its CTest.
# Each part runs even if an earlier one failed; the exit status is non-zero if any failed, and
# the CTest summaries are printed together at the end.
# usage: scripts/test.sh [-jN]   (CMake and CTest parallelism, default -j2)
set -uo pipefail
cd "$(dirname "$0")/.."

jobs=${1:--j2}
launcher=()
if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
summaries=""
status=0
start=$SECONDS

# part NAME BUILD_DIR TARGET [CMAKE_ARGS...]: configure, build TARGET, run the CTests.
part() {
    local name=$1 dir=$2 target=$3
    shift 3
    local t0=$SECONDS log rc
    echo "==== $name ($dir)"
    if ! cmake -S . -B "$dir" "${launcher[@]}" "$@" >/dev/null ||
       ! cmake --build "$dir" --target "$target" "$jobs"; then
        summaries+="$name: BUILD FAILED"$'\n'
        status=1
        return
    fi
    log=$(mktemp)
    ctest --test-dir "$dir" --output-on-failure "$jobs" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    [ "$rc" -eq 0 ] || status=1
    summaries+="$name ($((SECONDS - t0)) s): $(grep -E 'tests passed|No tests were found' "$log")"
    summaries+=$'\n'$(sed -n '/The following tests FAILED/,$p' "$log")$'\n'
    rm -f "$log"
}

part normal build all

# valgrind_cli is not defined in this build (valgrind cannot run ASan binaries); every other
# test runs under the sanitizers.
part sanitizers build-asan all -DKGEN_SANITIZE=ON

if command -v clang >/dev/null; then
    # only the fuzz targets are built there, not kgen and the AOT library
    part fuzz build-fuzz fuzz -DCMAKE_C_COMPILER=clang -DKGEN_FUZZ=ON -DKGEN_BUILD_TESTS=OFF
else
    summaries+="fuzz: skipped (no clang; scripts/setup-debian.sh installs it)"$'\n'
fi

echo
echo "==== summary ($((SECONDS - start)) s)"
printf '%s' "$summaries" | sed '/^$/d'
exit $status
