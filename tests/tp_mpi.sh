#!/usr/bin/env bash
# tests/tp_mpi.sh MPIEXEC KGEN GOLDEN WORK: kgen run --tp 2 over MPI (mpirun -np 2, one rank a
# process) against the threads back end (--tp 2 in one process) on the HF golden: the checking
# interface writes the same files, bit for bit (the two back ends' collectives give the same
# bits, and --threads 1 keeps each rank's kernels alike); greedy decoding prints once, the
# tokens of the threads run; a process count other than --tp is refused with exit 2 and one
# line. Prints what failed and exits 1, or exits 0.
set -u
mpiexec=$1
kgen=$2
golden=$3
work=$4
fail() { echo "FAIL: $*"; exit 1; }
[ -f "$golden/config.json" ] || fail "the HF golden is missing: $golden"
rm -rf "$work"
mkdir -p "$work"
# mpirun as root, and 2 processes on a machine that may have fewer free cores (OpenMPI)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
mpi() { "$mpiexec" -np "$1" "${@:2}"; }

# ids.npy: int64 [2, 10] (a .npy v1 header padded to 128 bytes, then little-endian values,
# each below 256)
i64() { printf "\\x$(printf %02x "$1")\\x00\\x00\\x00\\x00\\x00\\x00\\x00"; }
{
  header="{'descr': '<i8', 'fortran_order': False, 'shape': (2, 10), }"
  printf '\x93NUMPY\x01\x00\x76\x00%s%*s\n' "$header" $((117 - ${#header})) ''
  for v in 1 5 9 33 7 100 200 3 4 5 2 6 10 34 8 101 201 4 5 6; do i64 "$v"; done
} > "$work/ids.npy"
[ "$(stat -c %s "$work/ids.npy")" = 288 ] || fail "ids.npy is $(stat -c %s "$work/ids.npy") bytes"

check="--model $golden --input-ids $work/ids.npy --prefill 7 --decode 3 --threads 1 --tp 2"
"$kgen" run $check --dump "$work/threads" || fail "kgen run --tp 2 (threads) failed"
mpi 2 "$kgen" run $check --dump "$work/mpi" > "$work/mpi.out" 2>&1 \
  || { cat "$work/mpi.out"; fail "mpirun -np 2 kgen run --tp 2 failed"; }
n=0
for f in prefill decode0 decode1 decode2; do
  for k in logits hidden; do
    cmp "$work/threads/${f}_$k.npy" "$work/mpi/${f}_$k.npy" \
      || fail "${f}_$k.npy: MPI and threads differ"
    n=$((n + 1))
  done
done
[ "$n" = 8 ] && [ "$(ls "$work/mpi" | wc -l)" = 8 ] || fail "not the 8 files: $(ls "$work/mpi")"

# greedy decoding: rank 0 prints the tokens once, the threads run's tokens
gen="--model $golden --prompt-ids 1,2,3 --max-new 6 --threads 1 --tp 2"
"$kgen" run $gen > "$work/gen_threads.out" || fail "kgen run --tp 2 --prompt-ids failed"
mpi 2 "$kgen" run $gen > "$work/gen_mpi.out" 2> "$work/gen_mpi.err" \
  || { cat "$work/gen_mpi.err"; fail "mpirun kgen run --tp 2 --prompt-ids failed"; }
[ "$(grep -c '^tokens:' "$work/gen_mpi.out")" = 1 ] \
  || fail "not one tokens line under MPI: $(cat "$work/gen_mpi.out")"
[ "$(grep '^tokens:' "$work/gen_mpi.out")" = "$(grep '^tokens:' "$work/gen_threads.out")" ] \
  || fail "MPI and threads decode other tokens"
grep -q 'tensor parallelism: 2 ranks (MPI' "$work/gen_mpi.out" || fail "no MPI line in the summary"

# a process count other than --tp: exit 2, one line from kgen (mpirun adds its own)
mpi 2 "$kgen" run --model "$golden" --prompt-ids 1 --tp 3 > "$work/bad.out" 2> "$work/bad.err"
rc=$?
[ "$rc" = 2 ] || fail "mpirun -np 2 kgen run --tp 3: exit $rc, not 2"
[ "$(grep -c '^kgen: ' "$work/bad.err")" = 1 ] || fail "not one line: $(cat "$work/bad.err")"
grep -q '^kgen: run: --tp 3, but mpirun started 2 processes' "$work/bad.err" \
  || fail "the message: $(grep '^kgen: ' "$work/bad.err")"
# refused sharding: every rank refuses, rank 0 says so once
mpi 2 "$kgen" run --model "$golden" --prompt-ids 1 --tp 2 --max-context 999999 \
  > "$work/bad2.out" 2> "$work/bad2.err"
rc=$?
[ "$rc" = 2 ] || fail "mpirun -np 2 kgen run --tp 2 --max-context 999999: exit $rc, not 2"
[ "$(grep -c '^kgen: ' "$work/bad2.err")" = 1 ] || fail "not one line: $(cat "$work/bad2.err")"
# kgen bench --coll over MPI: rank 0 prints the three sizes once
mpi 2 "$kgen" bench --coll --calls 210 > "$work/coll.out" 2> "$work/coll.err" \
  || { cat "$work/coll.err"; fail "mpirun -np 2 kgen bench --coll failed"; }
grep -q '^all-reduce (sum, fp32), 2 ranks (MPI' "$work/coll.out" \
  && [ "$(grep -c ' us (' "$work/coll.out")" = 3 ] \
  || fail "bench --coll under MPI: $(cat "$work/coll.out")"
echo "tp_mpi: MPI and threads agree"
