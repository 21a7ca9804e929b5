#!/usr/bin/env bash
# tests/bad/run.sh KGEN WORKDIR [SHARED]: feeds kgen every bad input of tests/bad/cases.txt (and
# every bad config.json of tests/bad/configs/cases.txt, through kgen spec --from-hf) and checks
# that each ends in a clear refusal: exit 2 (no crash: a signal would give >= 128; no hang:
# `timeout $limit` gives 124), exactly one line on stderr, naming the input and saying what
# cases.txt says, and nothing written. The .npy files, the FIFOs and the folders are made here
# (git keeps none of them). Prints "N passed, N failed".
set -u
# The bound on one refusal: well above what any takes alone (alloc_forever, filling the
# generator's memory limit, takes about 8 s under ASan), so a loaded machine is not taken for a hang.
limit=30
kgen=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
work=$2
golden=${3:-}/golden/llama_gqa
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)

# ---- inputs made at run time -----------------------------------------------------------------

# npy FILE MAJOR HEADER [DATA_BYTES]: a .npy file with the given header text, padded as numpy
# pads it (the data starts on a 64-byte boundary), then DATA_BYTES zero bytes.
npy() {
  local file=$1 major=$2 header=$3 data=${4:-0}
  local pre=$((major == 1 ? 10 : 12))
  local len=$((${#header} + 1))
  local pad=$(((64 - (pre + len) % 64) % 64))
  len=$((len + pad))
  {
    printf "\\x93NUMPY\\x$(printf %02x "$major")\\x00"
    printf "\\x$(printf %02x $((len & 255)))\\x$(printf %02x $((len >> 8 & 255)))"
    [ "$major" = 1 ] || printf '\x00\x00'
    printf '%s%*s\n' "$header" "$pad" ''
    head -c "$data" /dev/zero
  } > "$file"
}
dict() { printf "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" "$1" "$2"; }

npy "$work/ok.npy" 1 "$(dict '<f4' '(1, 4)')" 16
npy "$work/shape_overflow.npy" 1 "$(dict '<f4' '(4194304, 1099511627776)')"
npy "$work/shape_wraps.npy" 1 "$(dict '<f4' '(4294967296, 4294967296, 200)')"
npy "$work/overflow_then_zero.npy" 1 "$(dict '<f4' '(2305843009213693952, 16, 0)')"
npy "$work/data_short.npy" 1 "$(dict '<f4' '(68719476736,)')"
npy "$work/dim_too_big.npy" 1 "$(dict '<f4' '(99999999999999999999,)')"
npy "$work/rank9.npy" 1 "$(dict '<f4' '(1, 1, 1, 1, 1, 1, 1, 1, 4)')" 16
npy "$work/big_endian.npy" 1 "$(dict '>f4' '(1, 4)')" 16
# a version 2.0 header length of 0xfffffff0 in a 128-byte file
npy "$work/header_len_huge.npy" 2 "$(dict '<f4' '(1, 4)')"
printf '\xf0\xff\xff\xff' | dd of="$work/header_len_huge.npy" bs=1 seek=8 conv=notrunc 2>/dev/null
# a header length of 1000 in a 128-byte file
npy "$work/header_short.npy" 1 "$(dict '<f4' '(1, 4)')"
printf '\xe8\x03' | dd of="$work/header_short.npy" bs=1 seek=8 conv=notrunc 2>/dev/null
# a NUL inside the header text
npy "$work/nul_in_header.npy" 1 "$(dict '<f4' '(1, 4)')" 16
printf '\x00' | dd of="$work/nul_in_header.npy" bs=1 seek=12 conv=notrunc 2>/dev/null
printf 'PK\x03\x04 not a numpy file' > "$work/bad_magic.npy"
mkdir "$work/folder.npy" "$work/folder.lua"
mkfifo "$work/fifo.npy" "$work/fifo.lua"
# generated folders whose manifest.json is a FIFO, a folder
mkdir -p "$work/fifo_manifest" "$work/folder_manifest/manifest.json"
mkfifo "$work/fifo_manifest/manifest.json"
truncate -s 17M "$work/huge.lua"
# for the command-line cases: a regular file where a folder is wanted, a read-only folder, and
# a 9 GiB .npy that is one sparse hole (cheap to make, 9 GiB to read)
printf 'not a folder\n' > "$work/file"
mkdir "$work/readonly"
chmod 555 "$work/readonly"
npy "$work/sparse_9g.npy" 1 "$(dict '<u2' '(1179648, 4096)')"
truncate -s $((128 + 1179648 * 4096 * 2)) "$work/sparse_9g.npy"

# Hugging Face model folders that contradict their weights: the golden's config.json edited
# (4 layers where the weights have 3; intermediate 600 where they have 688), its
# model.safetensors linked
if [ ! -f "$golden/config.json" ]; then
  echo "FAIL: the HF golden is missing: $golden (pass the shared folder as argument 3)"
  exit 1
fi
for v in "layers|num_hidden_layers\": 3|num_hidden_layers\": 4" \
         "i600|intermediate_size\": 688|intermediate_size\": 600" \
         "i690|intermediate_size\": 688|intermediate_size\": 690" \
         "kv3|num_key_value_heads\": 2|num_key_value_heads\": 3"; do
  IFS='|' read -r name from to <<< "$v"
  mkdir "$work/model_$name"
  sed "s/$from/$to/" "$golden/config.json" > "$work/model_$name/config.json"
  ln -s "$golden/model.safetensors" "$work/model_$name/model.safetensors"
done
# 6 query heads, 3 KV heads: --tp 2 divides the first, not the second (nor 2 the 3)
sed -i 's/num_attention_heads": 4/num_attention_heads": 6/' "$work/model_kv3/config.json"

# Model folders whose model.safetensors is malformed (the golden's config.json beside it): each
# file is an 8-byte little-endian header length, the JSON header, then the data.
st() { # st NAME HEADER DATA-BYTES [HEADER-LENGTH]: writes $work/st_NAME/model.safetensors
  local d=$work/st_$1 n=${4:-${#2}}
  mkdir "$d"
  cp "$golden/config.json" "$d/config.json"
  { printf "$(printf '\\x%02x' $((n & 255)) $((n >> 8 & 255)) $((n >> 16 & 255)) \
      $((n >> 24 & 255)) 0 0 0 0)"; printf '%s' "$2"; head -c "$3" /dev/zero; } \
    > "$d/model.safetensors"
}
f32() { printf '"%s":{"dtype":"%s","shape":[%s],"data_offsets":[%s]}' "$@"; }
st truncated '' 0
truncate -s 3 "$work/st_truncated/model.safetensors"
st length_past_end '{}' 0 4096
st not_json 'nope!!' 0
st out_of_range "{$(f32 a F32 2 0,8)}" 4
st overlap "{$(f32 a F32 2 0,8),$(f32 b F32 2 4,12)}" 12
st count_overflow "{$(f32 a F32 4294967296,4294967296 0,8)}" 8
st bytes_mismatch "{$(f32 a F32 3 0,8)}" 8
st dtype "{$(f32 a Q4_K 2 0,8)}" 8

# ---- one case --------------------------------------------------------------------------------

pass=0
fail=0
bad() { echo "FAIL [$1] $2"; fail=$((fail + 1)); }

# check CASE INPUT-NAME TEXT OUTDIR -- COMMAND...: runs COMMAND and checks the refusal.
check() {
  local name=$1 who=$2 text=$3 outdir=$4
  shift 5
  local err="$work/stderr" rc
  timeout $limit "$@" > "$work/stdout" 2> "$err" < /dev/null
  rc=$?
  local lines
  lines=$(wc -l < "$err")
  if [ "$rc" = 124 ]; then bad "$name" "timed out ($limit s)"; return; fi
  if [ "$rc" -ge 128 ]; then bad "$name" "crashed (exit $rc): $(head -c 300 "$err")"; return; fi
  if [ "$rc" != 2 ]; then bad "$name" "exit $rc, expected 2: $(head -c 300 "$err")"; return; fi
  if [ "$lines" != 1 ]; then bad "$name" "$lines lines on stderr, expected 1"; return; fi
  if ! grep -qF -- "$who" "$err"; then
    bad "$name" "stderr does not name '$who': $(cat "$err")"; return
  fi
  if ! grep -qF -- "$text" "$err"; then
    bad "$name" "stderr lacks '$text': $(cat "$err")"; return
  fi
  # WHOLE (set for one call: WHOLE=LINE check ...): the line must be exactly LINE
  if [ -n "${WHOLE:-}" ] && [ "$(cat "$err")" != "$WHOLE" ]; then
    bad "$name" "stderr is not exactly '$WHOLE': $(cat "$err")"; return
  fi
  if [ -n "$outdir" ] && [ -n "$(ls -A "$outdir" 2>/dev/null)" ]; then
    bad "$name" "wrote into $outdir: $(ls "$outdir")"; return
  fi
  pass=$((pass + 1))
}

cd "$here"
while IFS='|' read -r kind input text; do
  case "$kind" in ''|'#'*) continue ;; esac
  input=${input//@W/$work}
  input=${input//@G/$golden}
  text=${text//@W/$work}
  out="$work/out"
  rm -rf "$out"
  case "$kind" in
    spec)
      check "list $input" "$input" "$text" "" -- "$kgen" list "$input"
      check "generate $input" "$input" "$text" "$out" -- "$kgen" generate "$input" -o "$out" ;;
    cli)
      # INPUT: kgen's arguments, word-split; leading NAME=VALUE words go to its environment
      read -r -a words <<< "$input"
      envs=()
      while [ ${#words[@]} -gt 0 ] && [[ ${words[0]} == [A-Z]*=* ]]; do
        envs+=("${words[0]}")
        words=("${words[@]:1}")
      done
      # root may write into a read-only folder: those cases run as nobody
      as=()
      if [ "$(id -u)" = 0 ] && [[ $input == *"$work/readonly"* ]]; then
        if ! command -v setpriv > /dev/null; then
          echo "SKIP [$input]: run as root without setpriv"
          continue
        fi
        as=(setpriv --reuid=65534 --regid=65534 --clear-groups)
      fi
      check "kgen $input" "kgen: " "$text" "$out" -- \
        "${as[@]}" env "${envs[@]}" "$kgen" "${words[@]}" ;;
    problem)
      check "exec $input" "problem '$input'" "$text" "$out" -- \
        "$kgen" exec "$input" --in "hidden=$work/ok.npy" --out "$out" ;;
    npy)
      check "exec $input" "input 'hidden'" "$text" "$out" -- \
        "$kgen" exec rmsnorm_quant:H=4,norm_type=NO_NORM --in "hidden=$input" --out "$out" ;;
    *) bad "$kind" "unknown kind in cases.txt" ;;
  esac
done < "$here/cases.txt"

# bad config.json files (configs/cases.txt, which tests/test_config.c checks through the library):
# through the CLI, each is one line, exactly "kgen: PATH: TEXT", exit 2
configs=0
while IFS='|' read -r file text; do
  case "$file" in ''|'#'*) continue ;; esac
  WHOLE="kgen: configs/$file: $text" check "spec --from-hf configs/$file" "configs/$file: " \
    "$text" "" -- "$kgen" spec --from-hf "configs/$file"
  configs=$((configs + 1))
done < "$here/configs/cases.txt"
if [ "$configs" -lt 40 ]; then
  bad "configs/cases.txt" "only $configs bad configs listed"
fi

# the inputs themselves are good: the same commands accept the good ones (so a refusal above
# is about the bad part, not the harness)
rm -rf "$work/out"
if timeout $limit "$kgen" exec rmsnorm_quant:H=4,norm_type=NO_NORM --in "hidden=$work/ok.npy" \
     --out "$work/out" > /dev/null 2>&1 && [ -f "$work/out/out.npy" ]; then
  pass=$((pass + 1))
else
  bad "exec ok.npy" "the good .npy is refused: the harness is wrong"
fi

if timeout 10 "$kgen" spec --from-hf "$golden" > "$work/stdout" 2>&1 \
     && grep -q 'llama' "$work/stdout"; then
  pass=$((pass + 1))
else
  bad "spec --from-hf golden" "a good config.json is refused: the harness is wrong"
fi

sed 's|0 / 0 --\[\[ BAD: NaN \]\]|1e-5|' specs/nan_eps.lua > "$work/good.lua"
if timeout $limit "$kgen" list "$work/good.lua" > /dev/null 2>&1; then
  pass=$((pass + 1))
else
  bad "list good.lua" "the spec the bad ones are made from is refused: the harness is wrong"
fi

# a killed generate leaves its temp file (.NAME.tmpPID); the next generate into that folder
# removes it when NAME is a file kgen owns and process PID is gone, and nothing else: not a
# live writer's temp file, not a user's file of a like name
gen="$work/gen"
timeout $limit "$kgen" generate specs/over_cap.lua -o "$gen" > /dev/null 2>&1
true & dead=$!
wait "$dead"
stale=(".kg_gone.c.tmp$dead" ".manifest.json.tmp$dead" ".kernels.inc.tmp$dead")
kept=(".kg_gone.c.tmp$$" ".notes.txt.tmp$dead" ".kg_gone.c.tmpx$dead" "kg_notes.tmp$dead"
      ".kg_gone.h.tmp$dead")
for f in "${stale[@]}" "${kept[@]}"; do echo partial > "$gen/$f"; done
timeout $limit "$kgen" generate specs/over_cap.lua -o "$gen" > "$work/stdout" 2>&1
for f in "${stale[@]}"; do
  if [ -e "$gen/$f" ]; then bad "generate: stale temp" "$f was left"; else pass=$((pass + 1)); fi
done
for f in "${kept[@]}"; do
  if [ -e "$gen/$f" ]; then pass=$((pass + 1)); else bad "generate: stale temp" "$f removed"; fi
done
if grep -q ' 3 stale removed' "$work/stdout"; then
  pass=$((pass + 1))
else
  bad "generate: stale temp" "the summary does not count 3 removed: $(cat "$work/stdout")"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
