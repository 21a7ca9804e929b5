#!/usr/bin/env bash
# run.sh: kgen as a program uses it. Installs the build tree into WORK/prefix with
# `cmake --install`, writes the llama-tiny model with the installed kgen, then builds demo.c
# twice against the installed tree, with `cc $(pkg-config --cflags --libs --static kgen)` and
# with a CMake project using find_package(kgen), and checks that both print the token ids
# `kgen run --model` prints for the same prompt; the CMake project also links kgen::aot
# (aot.c). Any failing step fails the test.
# usage: run.sh CMAKE BUILD_DIR SOURCE_DIR WORK CC LIBDIR (LIBDIR: CMAKE_INSTALL_LIBDIR)
set -euo pipefail
cmake=$1 build=$2 src=$3 work=$4 cc=$5 libdir=$6
prompt=100,200,300,400

fail() { echo "install: $*" >&2; exit 1; }

rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix
"$cmake" --install "$build" --prefix "$prefix" >"$work/install.log" ||
    fail "cmake --install failed: $(tail -3 "$work/install.log")"

"$prefix/bin/kgen" make-model llama-tiny -o "$work/model" >/dev/null
line=$("$prefix/bin/kgen" run --model "$work/model" --prompt-ids $prompt --max-new 3 |
       grep '^tokens: ') || fail "kgen run printed no tokens line"
want=${line#*| }
[[ $want =~ ^[0-9]+\ [0-9]+\ [0-9]+$ ]] || fail "kgen run: cannot read three ids in '$line'"
echo "kgen run: $want"

# check NAME LINE: LINE is what a demo printed
check() {
    [ "$2" = "tokens: $want" ] || fail "$1 printed '$2', kgen run '$want'"
    echo "$1: ${2#tokens: }"
}

# pkg-config: only the installed tree's kgen.pc, whose paths must lead into the prefix
export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig PKG_CONFIG_LIBDIR=$prefix/$libdir/pkgconfig:$(
    pkg-config --variable pc_path pkg-config)
flags=$(pkg-config --cflags --libs --static kgen) || fail "pkg-config does not find kgen"
[[ $flags == *"$prefix/"* ]] || fail "pkg-config's flags do not name $prefix: $flags"
# shellcheck disable=SC2086 # the flags are words
"$cc" -o "$work/demo_pc" "$src/demo.c" $flags || fail "the pkg-config build failed"
check pkg-config "$("$work/demo_pc" "$work/model" $prompt)"

# find_package(kgen) from the prefix alone
"$cmake" -S "$src" -B "$work/cmake" -DCMAKE_C_COMPILER="$cc" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF >"$work/cmake.log" ||
    fail "configuring the find_package project failed: $(tail -5 "$work/cmake.log")"
grep -qx "kgen_DIR:PATH=$prefix/$libdir/cmake/kgen" "$work/cmake/CMakeCache.txt" ||
    fail "find_package(kgen) did not take $prefix/$libdir/cmake/kgen"
"$cmake" --build "$work/cmake" >"$work/build.log" ||
    fail "the find_package build failed: $(tail -5 "$work/build.log")"
check find_package "$("$work/cmake/demo" "$work/model" $prompt)"
"$work/cmake/aot" tiny || fail "kgen::aot: the tiny spec's kernels are not there"

# the MPI back end of the collectives, when this build has it: installed, found by
# find_package(kgen) as kgen::coll_mpi, and a program linking it runs (a singleton MPI rank)
if [ -f "$build/libkgen_coll_mpi.a" ]; then
    [ -f "$prefix/$libdir/libkgen_coll_mpi.a" ] || fail "libkgen_coll_mpi.a is not installed"
    [ -x "$work/cmake/mpi" ] || fail "kgen::coll_mpi: the find_package project built no mpi"
    # (a sanitizer build: OpenMPI's own allocations are not kgen's leaks, as for coll_mpi)
    out=$(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
          ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 "$work/cmake/mpi") ||
        fail "kgen::coll_mpi: mpi failed: $out"
    [ "$out" = "mpi: ok" ] || fail "kgen::coll_mpi: mpi printed '$out'"
    echo "$out"
fi
