#!/usr/bin/env bash
# bench/run-vs-torch.sh: kgen run against PyTorch CPU on the same seeded random-weight model
# (Llama-3-8B layer shapes, 2 layers, vocabulary 128256: `kgen make-model llama3-8b-2l`), on
# the same thread count: prefill tokens/s at 512 tokens and decode tokens/s at context 1024,
# each as a ratio to this machine's roofline probed in the same run (`kgen bench --roofline`).
# First a sanity line: the PyTorch forward (bench/torch_llama.py) agrees with kgen on the
# logits of the llama-tiny preset. Speed is measured here, never asserted; not run in CI.
#
# usage: bench/run-vs-torch.sh [--kgen PATH] [--threads N] [--work DIR] [--model DIR]
#                              [--steps S] [--prefill P] [--skip-fp32]
#   --kgen PATH   the kgen binary (default build/kgen)
#   --threads N   threads of kgen, of PyTorch and of the probes (default 1)
#   --work DIR    where the models are written once and kept (default ${TMPDIR:-/tmp}/kgen-bench)
#   --model DIR   the benchmark model (default WORK/llama3-8b-2l, written if absent: 3 GB)
#   --steps S     decode steps timed, centred on context 1024 (default 16)
#   --prefill P   the prefill timed, in tokens (default 512; PyTorch's bf16 matmuls are slow
#                 on a CPU without avx512_bf16: a smaller P gives a quicker, rougher run)
#   --skip-fp32   PyTorch in bf16 only
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
kgen=$here/../build/kgen
threads=1
work=${TMPDIR:-/tmp}/kgen-bench
model=
steps=16
fp32=1
P=512          # prefill tokens
while [ $# -gt 0 ]; do
    case $1 in
        --kgen) kgen=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --work) work=$2; shift 2 ;;
        --model) model=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        --prefill) P=$2; shift 2 ;;
        --skip-fp32) fp32=0; shift ;;
        *) echo "run-vs-torch.sh: unknown argument '$1' (see the head of $0)" >&2; exit 2 ;;
    esac
done
# Debian's python3-torch is for Debian's python3: a python3 earlier in PATH (pyenv, a venv)
# may not see it; $PYTHON chooses one
python=
for p in ${PYTHON:-python3 /usr/bin/python3}; do
    if "$p" -c 'import torch, numpy' 2>/dev/null; then python=$p; break; fi
done
if [ -z "$python" ]; then
    echo "run-vs-torch.sh: needs PyTorch and numpy for python3:" \
         "apt-get install python3-torch python3-numpy" >&2
    exit 1
fi
[ -x "$kgen" ] || { echo "run-vs-torch.sh: no kgen at $kgen (build it, or --kgen PATH)" >&2; exit 1; }
mkdir -p "$work"
model=${model:-$work/llama3-8b-2l}
py=$here/torch_llama.py
C=1024         # decode context
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# key FILE NAME: the value of a `NAME value` line
key() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }
# ids N FROM: N token ids, comma-separated (the same formula as torch_llama.py's)
ids() { awk -v n="$1" -v v="$2" 'BEGIN { for (i = 0; i < n; i++) printf "%s%d", i ? "," : "",
                                         i * 7919 % v }'; }

# the sanity model in f32 (kgen's f32 path computes in f32 as PyTorch does: the logits agree to
# rounding; bf16 weights would add kgen's bf16 rounding of the activations), the benchmark one
# in bf16 as the preset writes it
tiny=$work/llama-tiny-f32
if [ ! -f "$tiny/model.safetensors" ]; then
    "$kgen" make-model llama-tiny --dtype f32 -o "$tiny" > /dev/null
fi
if [ ! -f "$model/model.safetensors" ]; then
    echo "writing the llama3-8b-2l model to $model (3 GB, once)"
    "$kgen" make-model llama3-8b-2l -o "$model" > /dev/null
fi

# ---- sanity: the PyTorch forward agrees with kgen on llama-tiny ---------------------------------
"$python" - "$tmp/ids.npy" <<'EOF'
import sys, numpy as np
np.save(sys.argv[1], (np.arange(2 * 12, dtype=np.int64).reshape(2, 12) * 97 + 5) % 2048)
EOF
"$kgen" run --model "$tiny" --input-ids "$tmp/ids.npy" --prefill 8 --decode 4 \
    --dump "$tmp/dump" --threads "$threads" > /dev/null
"$python" "$py" check "$tiny" --ids "$tmp/ids.npy" --prefill 8 --decode 4 \
    --dump "$tmp/dump" --threads "$threads" > "$tmp/check"
printf 'sanity (llama-tiny in f32, 2 rows, prefill 8 + 4 decode steps): PyTorch fp32 vs kgen, '
printf 'max |logit diff| prefill %s, decode %s (logits up to %s)\n' "$(key "$tmp/check" \
    check_prefill_maxdiff)" "$(key "$tmp/check" check_decode_maxdiff)" \
    "$(key "$tmp/check" logit_scale)"

# ---- the roofline, then kgen, then PyTorch --------------------------------------------------------
"$kgen" bench --roofline --threads "$threads" --csv "$tmp/roof.csv" | sed -n 2p
bw=$(awk -F, '$2 == "read_bandwidth" { print $6 }' "$tmp/roof.csv")
fp32_peak=$(awk -F, '$2 == "fp32_fma_peak" { print $5 }' "$tmp/roof.csv")
bf16_peak=$(awk -F, '$2 == "bf16_dot_peak" { print $5 }' "$tmp/roof.csv")
"$python" "$py" costs "$model" --prefill $P --context $C > "$tmp/costs"

vocab=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["vocab_size"])' \
        "$model/config.json")
echo "kgen run: prefill $P tokens"
"$kgen" run --model "$model" --prompt-ids "$(ids $P "$vocab")" --max-new 1 \
    --threads "$threads" --max-context $((C + steps)) > "$tmp/kgen_prefill"
grep -E '^(model|start-up|prefill|memory):' "$tmp/kgen_prefill" | sed 's/^/  /'
first=$((C - steps / 2))  # the first decode step's context; the prefill is one less
echo "kgen run: prefill $((first - 1)) tokens, then $steps decode steps at context $first.."
"$kgen" run --model "$model" --prompt-ids "$(ids $((first - 1)) "$vocab")" \
    --max-new $((steps + 1)) --threads "$threads" --max-context $((C + steps)) \
    > "$tmp/kgen_decode"
grep -E '^(prefill|decode):' "$tmp/kgen_decode" | sed 's/^/  /'
k_prefill=$(sed -n 's/^prefill: .* \([0-9.]*\) tokens\/s$/\1/p' "$tmp/kgen_prefill")
k_decode=$(sed -n 's/^decode: .* \([0-9.]*\) tokens\/s$/\1/p' "$tmp/kgen_decode")
k_steps=$(sed -n 's/^decode: \([0-9]*\) tokens,.*/\1/p' "$tmp/kgen_decode")
if [ -z "$k_prefill" ] || [ -z "$k_decode" ] || [ "$k_steps" != "$steps" ]; then
    echo "run-vs-torch.sh: cannot read kgen run's summary:" >&2
    cat "$tmp/kgen_prefill" "$tmp/kgen_decode" >&2
    exit 1
fi

dtypes="bf16"
[ "$fp32" = 1 ] && dtypes="bf16 fp32"
for d in $dtypes; do
    echo "PyTorch $d: prefill $P tokens, then $steps decode steps from context $first"
    "$python" "$py" time "$model" --dtype "$d" --threads "$threads" --prefill $P --context $C \
        --steps "$steps" > "$tmp/torch_$d"
    echo "  load $(key "$tmp/torch_$d" load_s) s, prefill $(key "$tmp/torch_$d" prefill_s) s," \
         "decode $(key "$tmp/torch_$d" decode_s) s"
done

# ---- the table ------------------------------------------------------------------------------------
weights=$(key "$tmp/costs" weight_bytes)
kv=$(key "$tmp/costs" kv_bytes)
flops=$(key "$tmp/costs" prefill_flops)
peak=$bf16_peak peak_name="bf16 dot"
if [ -z "$peak" ]; then peak=$fp32_peak peak_name="fp32 FMA (no bf16 dot on this CPU)"; fi
awk -v bw="$bw" -v w="$weights" -v kv="$kv" -v fl="$flops" -v P=$P -v C=$C \
    -v peak="$peak" -v fpeak="$fp32_peak" -v pname="$peak_name" -v t="$threads" '
BEGIN {
    roof_decode = bw * 1e9 / (w + kv)
    printf "\nroofline, %d thread%s: read %.1f GB/s; decode at context %d reads %.3f GB a token " \
           "(weights as stored + bf16 KV) -> %.2f tokens/s; prefill %d tokens = %.1f GFLOP, " \
           "peak %s %.1f GFLOP/s -> %.2f tokens/s (fp32 runs: fp32 FMA %.1f)\n\n",
           t, t == 1 ? "" : "s", bw, C, (w + kv) / 1e9, roof_decode, P, fl / 1e9, pname, peak,
           peak * 1e9 * P / fl, fpeak
    printf "| %-13s | %17s | %8s | %17s | %8s |\n", "run", "prefill tok/s", "of peak",
           "decode tok/s", "of roof"
    printf "|---------------|-------------------|----------|-------------------|----------|\n"
}
{
    pk = $1 ~ /fp32/ ? fpeak : peak
    printf "| %-13s | %17.2f | %8.2f | %17.3f | %8.2f |\n", $1, $2, $2 * fl / P / (pk * 1e9),
           $3, $3 / roof_decode
}' < <(
    echo "kgen_bf16 $k_prefill $k_decode"
    for d in $dtypes; do
        echo "torch_$d $(key "$tmp/torch_$d" prefill_tps) $(key "$tmp/torch_$d" decode_tps)"
    done
)
echo "(kgen vs PyTorch bf16: prefill $(awk -v a="$k_prefill" -v b="$(key "$tmp/torch_bf16" \
    prefill_tps)" 'BEGIN { printf "%.2f", a / b }')x, decode $(awk -v a="$k_decode" \
    -v b="$(key "$tmp/torch_bf16" decode_tps)" 'BEGIN { printf "%.2f", a / b }')x)"
