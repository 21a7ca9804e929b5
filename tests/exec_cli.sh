#!/usr/bin/env bash
# exec_cli.sh: end-to-end checks of `kgen exec` (JIT and AOT runs on a shared rmsnorm_quant
# vector, --raw output, errors with their exit codes, --describe).
# usage: exec_cli.sh KGEN SCRATCH_DIR SHARED_DIR
set -euo pipefail

kgen=$1
scratch=$2
vec=$3/vectors/rmsnorm_quant/row_rms_norm_lb0p0_h200_r1
problem=rmsnorm_quant:H=200,norm_type=RMS_NORM,quantization_type=ROW,dtype=bf16
inputs=(--in "hidden=$vec/inp.npy" --in "gamma=$vec/gamma.npy")

[ -f "$vec/inp.npy" ] || { echo "no vectors at $vec (pass the shared folder)"; exit 1; }

rm -rf "$scratch"
mkdir -p "$scratch"
export KGEN_CACHE_DIR=$scratch/cache   # AOT builds stay in the scratch folder
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

# expect_ok WHAT ARGS...: exit 0.
expect_ok() {
    local what=$1
    shift
    run "$@"
    if [ "$rc" -eq 0 ]; then pass; else fail "$what: exit $rc: $err"; fi
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

# expect_file WHAT PATH: the file exists and is not empty.
expect_file() {
    if [ -s "$2" ]; then pass; else fail "$1: $2 missing or empty"; fi
}

# Bytes of a .npy file's data: the file size less the magic, version, length and header.
npy_data_bytes() {
    local size hlen
    size=$(stat -c %s "$1")
    hlen=$(od -An -tu2 -j8 -N2 --endian=little "$1" | tr -d ' ')
    echo $((size - 10 - hlen))
}

# expect_computed WHAT PATH: a float32 .npy file the kernel wrote whole. kgen exec starts each
# output as 0xff bytes (NaN in every float dtype), so a NaN left in it is an element the kernel
# did not write; and its data is not all zero bytes (a kernel that wrote zeros everywhere).
expect_computed() {
    local hlen values nonzero
    hlen=$(od -An -tu2 -j8 -N2 --endian=little "$2" | tr -d ' ')
    values=$(tail -c +$((11 + hlen)) "$2" | od -An -v -tf4)
    nonzero=$(tail -c +$((11 + hlen)) "$2" | tr -d '\000' | wc -c)
    if grep -qi nan <<<"$values"; then
        fail "$1: $2 holds NaN: the kernel left part of it unwritten"
    elif [ "$nonzero" -gt 0 ]; then pass; else fail "$1: $2 holds only zero bytes"; fi
}

# ---- runs: JIT, AOT (twice: the second from the cache), raw --------------------------------
expect_ok "jit run" exec "$problem" "${inputs[@]}" --out "$scratch/jit"
expect_file "jit run" "$scratch/jit/out.npy"
expect_file "jit run" "$scratch/jit/out_scale.npy"
[[ $out == *"out.npy"* ]] && pass || fail "jit run: summary does not list out.npy: $out"

expect_ok "aot run" exec "$problem" "${inputs[@]}" --out "$scratch/aot" --aot
expect_ok "aot run (cached)" exec "$problem" "${inputs[@]}" --out "$scratch/aot2" --aot
for f in out.npy out_scale.npy; do
    expect_computed "jit run" "$scratch/jit/$f"
    cmp -s "$scratch/jit/$f" "$scratch/aot/$f" && pass || fail "jit and aot $f differ"
    cmp -s "$scratch/aot/$f" "$scratch/aot2/$f" && pass || fail "aot and cached aot $f differ"
done

expect_ok "raw run" exec "$problem" "${inputs[@]}" --out "$scratch/raw" --raw
expect_file "raw run" "$scratch/raw/out.npy"
head -c 128 "$scratch/raw/out.npy" | grep -q "'|u1'" && pass || fail "raw out.npy is not uint8"
bytes=$(npy_data_bytes "$scratch/raw/out.npy")
[ "$bytes" -eq 204 ] && pass || fail "raw out.npy holds $bytes bytes, expected 204 (one row)"
[ ! -e "$scratch/raw/out_scale.npy" ] && pass || fail "raw run wrote out_scale.npy"

# ---- errors -------------------------------------------------------------------------------
expect_error "wrong H" 2 hidden \
    exec rmsnorm_quant:H=64,norm_type=RMS_NORM,quantization_type=ROW,dtype=bf16 \
    "${inputs[@]}" --out "$scratch/bad"
expect_error "unknown key" 2 nope exec "$problem,nope=1" "${inputs[@]}" --out "$scratch/bad"
expect_error "missing input" 2 gamma exec "$problem" --in "hidden=$vec/inp.npy" \
    --out "$scratch/bad"
expect_error "unreadable input" 2 gamma exec "$problem" --in "hidden=$vec/inp.npy" \
    --in "gamma=$scratch/absent.npy" --out "$scratch/bad"
expect_error "uint8 file for bf16" 2 hidden exec "$problem" --in "hidden=$vec/out_out.npy" \
    --in "gamma=$vec/gamma.npy" --out "$scratch/bad"
expect_error "no --out" 2 out exec "$problem" "${inputs[@]}"
[ ! -e "$scratch/bad" ] && pass || fail "a failed exec created its output folder"

# ---- a kernel with a packed weight (output projection, TKG, fp8 ROW) -----------------------
wvec=$(dirname "$(dirname "$vec")")/output_projection_tkg/row_b2_s5_bias
wproblem=output_projection:variant=TKG,quantization_type=ROW,N=4,D=64,H=256,bias=true,dtype=bf16
winputs=(--in "attention=$wvec/attention.npy" --in "weight=$wvec/weight.npy"
         --in "w_scale=$wvec/weight_scale.npy" --in "bias=$wvec/bias.npy")
expect_ok "weight jit run" exec "$wproblem" "${winputs[@]}" --out "$scratch/wjit"
expect_ok "weight aot run" exec "$wproblem" "${winputs[@]}" --out "$scratch/waot" --aot
expect_computed "weight jit run" "$scratch/wjit/out.npy"
cmp -s "$scratch/wjit/out.npy" "$scratch/waot/out.npy" && pass || fail "weight: jit and aot differ"
expect_error "weight file of the wrong size" 2 weight exec "$wproblem" \
    --in "attention=$wvec/attention.npy" --in "weight=$wvec/bias.npy" \
    --in "w_scale=$wvec/weight_scale.npy" --in "bias=$wvec/bias.npy" --out "$scratch/bad"
expect_error "[128, H] scale of the wrong width" 2 w_scale exec "$wproblem" \
    --in "attention=$wvec/attention.npy" --in "weight=$wvec/weight.npy" \
    --in "w_scale=$wvec/attention.npy" --in "bias=$wvec/bias.npy" --out "$scratch/bad"
# list arguments (transformer_tkg's per-layer weights and caches): NAME_0 .. NAME_{L-1} in,
# the updated caches out as K_caches_0.npy ..
tvec=$3/vectors/transformer_tkg/l2_b2_s1_pos
tproblem=transformer_tkg:H=256,I=256,q_heads=2,d_head=64,S_tkg=1,S_max=24,num_layers=2
tinputs=()
for f in "$tvec"/*.npy; do
    n=$(basename "$f" .npy)
    case $n in out_* | mask_active) continue ;; esac
    tinputs+=(--in "$n=$f")
done
expect_ok "list jit run" exec "$tproblem" "${tinputs[@]}" --out "$scratch/tjit"
expect_ok "list aot run" exec "$tproblem" "${tinputs[@]}" --out "$scratch/taot" --aot
for f in out.npy K_caches_0.npy K_caches_1.npy V_caches_0.npy V_caches_1.npy; do
    expect_computed "list jit run" "$scratch/tjit/$f"
    cmp -s "$scratch/tjit/$f" "$scratch/taot/$f" && pass || fail "list: jit and aot $f differ"
done
tmissing=()
for f in "$tvec"/*.npy; do
    n=$(basename "$f" .npy)
    case $n in out_* | mask_active | W_ups_1) continue ;; esac
    tmissing+=(--in "$n=$f")
done
expect_error "list element missing" 2 W_ups_1 exec "$tproblem" "${tmissing[@]}" \
    --out "$scratch/tbad"
expect_error "list element past the list" 2 W_ups_2 exec "$tproblem" "${tinputs[@]}" \
    --in "W_ups_2=$tvec/W_ups_1.npy" --out "$scratch/tbad"
expect_ok "describe weights" exec --describe output_projection
[[ $out == *"packed weight"* ]] && pass || fail "describe does not show the packed weight"

# ---- describe -----------------------------------------------------------------------------
expect_ok "describe" exec --describe rmsnorm_quant
[[ $out == *hidden* ]] && pass || fail "describe rmsnorm_quant does not mention 'hidden'"
expect_error "describe unknown" 2 nope exec --describe nope
expect_ok "help" exec --help

# ---- generate, check, list: exit codes ------------------------------------------------------
spec="$scratch/spec/mini.lua"
mkdir -p "$scratch/spec"
cat >"$spec" <<'LUA'
return {
  name = "mini",
  model = { hidden = 8, intermediate = 8, q_heads = 2, kv_heads = 1, head_dim = 4,
            layers = 1, vocab = 4, rms_eps = 1e-6, rope_theta = 10000 },
  dtype = "bf16", fp8 = { format = "e4m3" },
  limits = { max_tokens = 2, max_batch = 1, max_context = 2 },
  kernels = { { family = "cumsum" } },
}
LUA
expect_ok "generate" generate "$spec" -o "$scratch/gen"
expect_ok "check clean" check "$spec" "$scratch/gen"
expect_ok "list" list "$spec"
[[ $out == *"kg_cumsum_bf16__h8 "* ]] && pass || fail "list does not name the kernel"
[[ $out == *"rows=2:seq"* ]] && pass || fail "list does not show the token axis: $out"
listed=$out
expect_ok "list DIR" list "$scratch/gen"
[ "$out" = "$listed" ] && pass || fail "list of the folder differs from list of the spec"
expect_ok "run DIR" run "$scratch/gen" --repeat 1 --tokens 1 --threads 1
[[ $out == *"kg_cumsum_bf16__h8 "* ]] && pass || fail "run DIR: $out"
# the folder's manifest is input: a bad field is named with its file
cp -r "$scratch/gen" "$scratch/badgen"
sed -i 's/"nominal": 2,/"nominal": "2",/' "$scratch/badgen/manifest.json"
expect_error "bad manifest" 2 "manifest.json: field 'kernels[0].calls[0].nominal'" \
    list "$scratch/badgen"
echo "/* edited */" >>"$scratch/gen/kernels.inc"
before=$(cksum <"$scratch/gen/kernels.inc")
run check "$spec" "$scratch/gen"
[ "$rc" -eq 1 ] && [[ $out == *"+++ b/"* ]] && pass || fail "check on drift: exit $rc, $out"
[ "$(cksum <"$scratch/gen/kernels.inc")" = "$before" ] && pass || fail "check wrote into DIR"
touch "$scratch/gen/kg_old__x.c"
expect_ok "generate repairs" generate "$spec" -o "$scratch/gen"
[ ! -e "$scratch/gen/kg_old__x.c" ] && pass || fail "generate kept a stale kernel file"
sed 's/hidden = 8/hidden = "x"/' "$spec" >"$scratch/spec/bad.lua"
expect_error "bad spec" 2 "bad.lua:3: field 'model.hidden'" generate "$scratch/spec/bad.lua" \
    -o "$scratch/gen2"
expect_error "missing spec" 2 "absent.lua" generate "$scratch/spec/absent.lua"
expect_error "unknown command" 2 frobnicate frobnicate
expect_ok "version" --version

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
