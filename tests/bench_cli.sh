#!/usr/bin/env bash
# bench_cli.sh: end-to-end checks of `kgen bench` (--quick): the CSV's header, probe rows and one
# row per selected kernel with positive numbers, usage errors, a bad regex, and --plot where
# gnuplot is installed. Speed is never asserted: only that numbers are there and positive.
# usage: bench_cli.sh KGEN SPEC_DIR SCRATCH_DIR
set -euo pipefail

kgen=$1
specs=$2
scratch=$3

rm -rf "$scratch"
mkdir -p "$scratch"
passed=0
failed=0

pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }

# Runs kgen with the given arguments; sets rc, and out/err to its stdout/stderr text.
run() {
    rc=0
    "$kgen" "$@" >"$scratch/stdout" 2>"$scratch/stderr" || rc=$?
    out=$(cat "$scratch/stdout")
    err=$(cat "$scratch/stderr")
}

# expect_error WHAT CODE WORD ARGS...: exit CODE with one "kgen: " line that mentions WORD.
expect_error() {
    local what=$1 code=$2 word=$3
    shift 3
    run "$@"
    if [ "$rc" -ne "$code" ]; then
        fail "$what: exit $rc, expected $code: $err"
    elif [ "$(printf '%s\n' "$err" | wc -l)" -ne 1 ] || [[ $err != "kgen: "* ]]; then
        fail "$what: expected one 'kgen: ' line, got: $err"
    elif [[ $err != *"$word"* ]]; then
        fail "$what: message does not mention '$word': $err"
    else
        pass
    fi
}

# A positive number?
positive() { awk -v x="$1" 'BEGIN { exit !(x + 0 > 0) }'; }

# ---- a megakernel against the chain of its single-op kernels -----------------------------------
# 2 layers of one KV head: an attention block, the output projection and the MLP each = 6 calls.
mcsv=$scratch/mega.csv
run bench "$specs/tiny.lua" --quick --threads 1 --min-runs 2 --min-time 0.01 \
    --kernel '^kg_transformer_tkg_f32__h256_i688_nq2_d64_s1_smax256_l2_' --csv "$mcsv"
ab=$(sed -n 's/.*alternating samples: chain \/ megakernel \([0-9.]*\) (medians.*/\1/p' <<<"$out")
if [ "$rc" -eq 0 ] && [[ $out == *"megakernels against the chain"* ]] &&
   [[ $out == *"chain / megakernel time: "* ]] && [[ $out == *"6 calls"* ]] &&
   [ -n "$ab" ] && positive "$ab"; then pass; else
    fail "bench of a megakernel: exit $rc: $out $err"; fi
# its CSV: one chain row, named by the megakernel, with the printed alternating ratio
crow=$(grep '^chain,kg_transformer_tkg_f32__h256_i688_nq2_d64_s1_smax256_l2_' "$mcsv" || true)
cab=$(sed -n 's/.*ab_ratio=\([0-9.e+-]*\).*/\1/p' <<<"$crow")
IFS=, read -r _ _ _ cus _ <<<"$crow"
if [ "$(grep -c '^chain,' "$mcsv")" -eq 1 ] && [[ $crow == *"layers=2 calls=6 "* ]] &&
   [ -n "$cab" ] && positive "$cus" &&
   awk -v a="$ab" -v b="$cab" 'BEGIN { d = a - b; exit !(d < 0.0006 && d > -0.0006) }'; then
    pass; else fail "bench --csv of a megakernel: chain row '$crow' (printed ratio $ab)"; fi

# ---- a run with a kernel filter and CSV ------------------------------------------------------
tiny=$specs/tiny.lua
filter='^kg_(rope|cumsum)_'
csv=$scratch/bench.csv
run bench "$tiny" --quick --threads 1 --kernel "$filter" --csv "$csv"
if [ "$rc" -ne 0 ]; then
    fail "bench --csv: exit $rc: $err"
else
    pass
fi
want=$("$kgen" list "$tiny" | grep -cE "$filter" || true)
[ "$want" -gt 0 ] || fail "kgen list shows no kernel matching $filter"

header=kind,name,threads,us_per_call,gflops,gbs,intensity,bound,roofline_ratio,openblas_ratio,paired_ratio,detail
if [ -s "$csv" ] && [ "$(head -n 1 "$csv")" = "$header" ]; then pass; else
    fail "CSV header: $(head -n 1 "$csv" 2>/dev/null)"; fi

# probes: read bandwidth (column gbs) and fp32 peak (gflops) positive; the bf16 peak positive or
# empty (a CPU without avx512_bf16)
IFS=, read -r _ _ _ _ _ bw _ < <(grep '^probe,read_bandwidth,' "$csv" || true)
IFS=, read -r _ _ _ _ fp32 _ < <(grep '^probe,fp32_fma_peak,' "$csv" || true)
IFS=, read -r _ _ _ _ bf16 _ < <(grep '^probe,bf16_dot_peak,' "$csv" || true)
if positive "${bw:-}" && positive "${fp32:-}"; then pass; else
    fail "probe rows: read '${bw:-}' GB/s, fp32 '${fp32:-}' GFLOP/s"; fi
if [ -z "${bf16:-}" ] || positive "$bf16"; then pass; else fail "bf16 probe: '$bf16'"; fi
if grep -q '^probe,bf16_dot_peak,' "$csv"; then pass; else fail "no bf16 probe row"; fi

# one kernel row per selected kernel, each with a positive time and a bound
rows=$(grep -c '^kernel,' "$csv" || true)
if [ "$rows" -eq "$want" ]; then pass; else fail "$rows kernel rows, expected $want"; fi
bad=$(awk -F, '$1 == "kernel" && !($4 > 0 && ($5 > 0 || $6 > 0) && $8 ~ /^(mem|fp32|bf16)$/ &&
               $9 > 0) { print $2 }' "$csv")
if [ -z "$bad" ]; then pass; else fail "kernel rows without positive numbers: $bad"; fi
if grep '^kernel,' "$csv" | cut -d, -f2 | grep -qvE "$filter"; then
    fail "a kernel outside --kernel '$filter' was measured"; else pass; fi
# the table on stdout names the same kernels
for k in $(grep '^kernel,' "$csv" | cut -d, -f2); do
    if [[ $out == *"$k"* ]]; then pass; else fail "table lacks $k"; fi
done

# ---- --gemm without a spec: the runtime's GEMM on the reference shapes --kernel selects -------
# (the decode shapes only: the prefill ones take seconds per call)
gcsv=$scratch/gemm.csv
run bench --gemm --quick --threads 1 --kernel '_m1_' --csv "$gcsv"
if [ "$rc" -eq 0 ]; then pass; else fail "bench --gemm: exit $rc: $err"; fi
for g in gemm_bf16_m1_k4096_n14336 gemm_e4m3_m1_k4096_n14336 gemm_f32_m1_k4096_n14336; do
    # positive time, the memory bound, a roofline ratio, an OpenBLAS (sgemv) ratio and a paired
    # ratio (the read passes between samples ran)
    if awk -F, -v g="$g" '$1 == "kernel" && $2 == g && $4 > 0 && $8 == "mem" && $9 > 0 &&
                          $10 > 0 && $11 > 0 { found = 1 } END { exit !found }' "$gcsv"; then
        pass; else fail "bench --gemm: no complete row for $g"; fi
done
rows=$(grep -c '^kernel,' "$gcsv" || true)
if [ "$rows" -eq 3 ]; then pass; else fail "bench --gemm --kernel _m1_: $rows rows, expected 3"; fi
expect_error "no GEMM match" 2 "reference GEMM" bench --gemm --quick --kernel '^nothing$'

# ---- --roofline: the probes alone (what bench/run-vs-torch.sh reads) --------------------------
rcsv=$scratch/roofline.csv
run bench --roofline --quick --threads 1 --csv "$rcsv"
if [ "$rc" -eq 0 ] && [[ $out == *"roofline (probed in this run, 1 thread): read "* ]]; then
    pass; else fail "bench --roofline: exit $rc: $out $err"; fi
IFS=, read -r _ _ th _ _ bw _ < <(grep '^probe,read_bandwidth,' "$rcsv" || true)
if positive "${bw:-}" && [ "${th:-}" = 1 ]; then pass; else
    fail "bench --roofline: read '${bw:-}' GB/s on '${th:-}' threads"; fi
if [ "$(grep -c '^probe,' "$rcsv")" -eq 3 ] && ! grep -q '^kernel,' "$rcsv"; then pass; else
    fail "bench --roofline: expected 3 probe rows and no kernel row: $(cat "$rcsv")"; fi
expect_error "roofline and a spec" 2 "--roofline takes no SPEC" bench --roofline "$tiny"
expect_error "roofline and --gemm" 2 "--roofline takes no SPEC" bench --roofline --gemm

# ---- usage errors: exit 2 with one message -------------------------------------------------
expect_error "no spec" 2 "SPEC or --gemm" bench
expect_error "bad regex" 2 "regex" bench "$tiny" --kernel 'rope('
expect_error "no match" 2 "matches" bench "$tiny" --kernel '^nothing$'
expect_error "bad tokens" 2 "--tokens" bench "$tiny" --tokens 0
expect_error "bad threads" 2 "--threads" bench "$tiny" --threads two
expect_error "missing value" 2 "--csv" bench "$tiny" --csv
expect_error "unknown option" 2 "--fast" bench "$tiny" --fast
expect_error "missing spec file" 2 "nope.lua" bench "$scratch/nope.lua"

# ---- --plot ----------------------------------------------------------------------------------
if command -v gnuplot >/dev/null; then
    png=$scratch/roofline.png
    run bench "$tiny" --quick --threads 1 --kernel '^kg_cumsum_' --plot "$png"
    if [ "$rc" -eq 0 ] && [ -s "$png" ] && [ -s "$scratch/roofline.gp" ]; then pass; else
        fail "bench --plot: exit $rc: $err"; fi
    if [ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then pass; else
        fail "$png is not a PNG"; fi
else
    echo "SKIP: --plot checks (gnuplot is not installed; scripts/setup-debian.sh installs it)"
fi

# ---- --aot: the same kernels built by gcc (kg_gcc_compile) --------------------------------
# (it once crashed: the kernel texts were not loaded for --aot)
run bench "$tiny" --aot --quick --threads 1 --kernel '^kg_cumsum_' \
    --csv "$scratch/aot.csv"
if [ "$rc" -ne 0 ]; then
    fail "bench --aot: exit $rc: $err"
elif ! grep -q '^kernel,kg_cumsum_' "$scratch/aot.csv"; then
    fail "bench --aot: no cumsum row in its CSV"
else
    pass
fi

# ---- --coll: the all-reduce's latency over threads as ranks (MPI: tests/tp_mpi.sh) --------
run bench --coll --ranks 2 --calls 210
if [ "$rc" -ne 0 ]; then
    fail "bench --coll: exit $rc: $err"
elif ! grep -q '^all-reduce (sum, fp32), 2 ranks (threads' <<< "$out" ||
     [ "$(grep -cE '^  \[(1|1, 4096|16, 4096)\] +fp32 \( *[0-9]+ bytes\): +[0-9.]+ us' \
          <<< "$out")" != 3 ]; then
    fail "bench --coll: not the three sizes' times: $out"
else
    pass
fi
expect_error "coll ranks" 2 "--ranks" bench --coll --ranks 0
expect_error "coll option" 2 "--coll takes only" bench --coll --gemm

echo "bench_cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
