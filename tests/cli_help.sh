#!/usr/bin/env bash
# cli_help.sh: the help text is typed once. For every command listed by `kgen --help`: its
# synopsis there equals the first lines of `kgen CMD --help`, and every option the synopsis
# names is accepted by the command (not rejected as unknown); an option no command has is
# rejected, which shows the check can tell. The README's CLI block equals `kgen --help`.
# usage: cli_help.sh KGEN README SCRATCH_DIR
set -euo pipefail

kgen=$1
readme=$2
scratch=$3
rm -rf "$scratch"
mkdir -p "$scratch"
passed=0
failed=0
pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }

# A spec path that cannot exist: every command stops at it after parsing its options, so no
# command does real work here.
none=$scratch/none/none.lua

"$kgen" --help >"$scratch/help"
cmds=$(grep -oE '^  kgen [a-z][a-z-]*' "$scratch/help" | awk '{ print $2 }' | uniq)
[ -n "$cmds" ] && pass || fail "kgen --help lists no command"

# The synopsis lines of CMD in `kgen --help`: its "  kgen CMD" lines and their continuation
# lines (indented further than the 6 spaces of a summary), one line, spaces squeezed.
synopsis_in_usage() {
    awk -v cmd="$1" '
        $0 ~ "^  kgen " cmd "( |$)" { on = 1; print; next }
        on && /^       +[^ ]/ { print; next }
        { on = 0 }' "$scratch/help" | sed 's/^ *//' | tr -s ' \n' '  ' | sed 's/ $//'
}

# The first lines of `kgen CMD --help`, up to the first empty line, without "usage: ".
synopsis_in_help() {
    "$kgen" "$1" --help | awk '/^$/ { exit } { print }' | sed 's/^usage: //; s/^ *//' |
        tr -s ' \n' '  ' | sed 's/ $//'
}

# Options a synopsis names, one per line: "OPT" or "OPT VALUE" when a placeholder follows it.
options_of() {
    echo "$1" | tr ' ' '\n' | awk '
        { w[NR] = $0 }
        END {
            for (i = 1; i <= NR; i++) {
                word = w[i]; gsub(/^\[/, "", word)
                closed = word ~ /\]$/; gsub(/\]$/, "", word)
                n = split(word, alt, "|")
                for (j = 1; j <= n; j++) {
                    if (alt[j] !~ /^-/) continue
                    val = ""
                    if (n == 1 && !closed && i < NR && w[i + 1] !~ /^[-\[]/ && w[i + 1] != "kgen")
                        val = w[i + 1]
                    gsub(/\]$/, "", val)
                    print alt[j] (val == "" ? "" : " " val)
                }
            }
        }' | sort -u
}

# Runs kgen; sets rc and err.
run() {
    rc=0
    "$kgen" "$@" >"$scratch/stdout" 2>"$scratch/stderr" || rc=$?
    err=$(cat "$scratch/stderr")
}

for cmd in $cmds; do
    usage_syn=$(synopsis_in_usage "$cmd")
    help_syn=$(synopsis_in_help "$cmd")
    if [ -n "$usage_syn" ] && [ "$usage_syn" = "$help_syn" ]; then pass; else
        fail "$cmd: kgen --help says '$usage_syn', kgen $cmd --help says '$help_syn'"; fi
    [[ $usage_syn == "kgen $cmd"* ]] && pass || fail "$cmd: synopsis '$usage_syn'"

    # the check can tell: an option nobody has is rejected as unknown
    run "$cmd" --no-such-option "$none"
    if [ "$rc" -eq 2 ] && [[ $err == *"unknown option '--no-such-option'"* ]]; then pass; else
        fail "$cmd --no-such-option: exit $rc, $err"; fi

    while read -r opt placeholder; do
        [ -n "$opt" ] || continue
        args=("$opt")
        if [ -n "$placeholder" ]; then
            if [[ $placeholder == *=* ]]; then args+=("x=1"); else args+=("1"); fi
        fi
        run "$cmd" "${args[@]}" "$none"
        if [[ $err == *"unknown option"* || $err == *"unexpected argument '$opt'"* ||
              $err == *"unexpected argument '1'"* ]]; then
            fail "kgen $cmd ${args[*]}: rejected: $err"
        else
            pass
        fi
    done < <(options_of "$usage_syn")
    if [ -n "${KGEN_TEST_VERBOSE:-}" ]; then options_of "$usage_syn" | sed "s|^|  $cmd |"; fi
done

# ---- the README's CLI block ------------------------------------------------------------------
# The fenced block after the line "<!-- kgen --help -->".
awk '/^<!-- kgen --help -->$/ { mark = 1; next }
     mark == 1 && /^```/ { mark = 2; next }
     mark == 2 && /^```/ { exit }
     mark == 2 { print }' "$readme" >"$scratch/readme_help"
if [ -s "$scratch/readme_help" ] && diff -u "$scratch/readme_help" "$scratch/help"; then pass; else
    fail "README's CLI block differs from kgen --help (diff above)"; fi

echo "cli_help: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
