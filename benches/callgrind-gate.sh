#!/usr/bin/env bash
# Instruction counts per call of the hot path under callgrind, compared with the recorded figures.
#
# For each case, runs `callgrind_probe CASE N` for two values of N (same number of digits, so the
# argument parsing costs the same) and divides the difference of the instruction totals by the
# difference of N: start-up, warm-up and the exit cancel out, and what is left is one call, to
# the instruction. Exits 1 if a gated case costs more instructions than its line in
# callgrind-baseline.txt, 2 if it cannot run (no valgrind, build failure). Installs nothing.
#
# Usage: benches/callgrind-gate.sh [--bless]   (--bless rewrites the baseline with today's figures)
# Honours CARGO_TARGET_DIR. Takes well under a minute after the build.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
baseline="$here/callgrind-baseline.txt"
bless=0
if [[ "${1:-}" == "--bless" ]]; then bless=1; fi

if ! command -v valgrind >/dev/null 2>&1; then
    echo "callgrind-gate: valgrind is not installed (apt-get install valgrind)" >&2
    exit 2
fi

cd "$root"
cargo build --release --quiet -p profiler-benches --bin callgrind_probe || {
    echo "callgrind-gate: building callgrind_probe failed" >&2
    exit 2
}
target_dir="${CARGO_TARGET_DIR:-$root/target}"
probe="$target_dir/release/callgrind_probe"

n1=100000
n2=300000
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Total instructions (Ir) of one run of the probe.
instructions() {
    local case="$1" n="$2" log="$work/$1.$2.log"
    valgrind --tool=callgrind --callgrind-out-file="$work/$1.$2.out" "$probe" "$case" "$n" 2>"$log" || {
        echo "callgrind-gate: valgrind failed on $case $n:" >&2
        cat "$log" >&2
        exit 2
    }
    sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' "$log"
}

# Recorded figure for a case, or empty.
recorded_figure() {
    if [[ -f "$baseline" ]]; then
        awk -v c="$1" '$1 == c { print $2 }' "$baseline"
    fi
}

# Per-call figures are gated as instructions over the bare call, which cancels the probe's own
# loop (its code can shift by an instruction when the compiler lays the probe out differently).
printf '%-22s %14s %14s %9s %10s %10s  %s\n' case "Ir (N=$n1)" "Ir (N=$n2)" "Ir/call" "over bare" baseline verdict
failed=0
new_baseline=""
bare=""
for case in $("$probe" --list); do
    a="$(instructions "$case" "$n1")"
    b="$(instructions "$case" "$n2")"
    per_call="$(awk -v a="$a" -v b="$b" -v n1="$n1" -v n2="$n2" 'BEGIN { printf "%.2f", (b - a) / (n2 - n1) }')"
    if [[ "$case" == bare ]]; then bare="$per_call"; fi
    over="$(awk -v p="$per_call" -v b="${bare:-0}" 'BEGIN { printf "%.2f", p - b }')"
    figure="$(recorded_figure "$case")"
    verdict="(not gated)"
    if [[ -n "$figure" ]]; then
        # Rises above the recorded figure by more than rounding: fail.
        if awk -v p="$over" -v f="$figure" 'BEGIN { exit !(p > f + 0.005) }'; then
            verdict="FAIL: above baseline"
            failed=1
        elif awk -v p="$over" -v f="$figure" 'BEGIN { exit !(p < f - 0.005) }'; then
            verdict="ok (below baseline: --bless to record the gain)"
        else
            verdict="ok"
        fi
    fi
    printf '%-22s %14s %14s %9s %10s %10s  %s\n' "$case" "$a" "$b" "$per_call" "$over" "${figure:--}" "$verdict"
    if [[ "$case" == bare ]]; then
        new_baseline+="bare $per_call (absolute: the probe's loop and the call)"$'\n'
    else
        new_baseline+="$case $over"$'\n'
    fi
done

if [[ "$bless" == 1 ]]; then
    {
        echo "# Instructions per call over the bare call, under callgrind (benches/callgrind-gate.sh --bless)."
        echo "# Every listed case is gated: the gate fails when a case costs more than its figure."
        echo "# rustc: $(rustc --version)"
        # bare and the floors measure the compiler, not our hot path: recorded for reference only.
        printf '%s' "$new_baseline" | grep -Ev '^(bare|two-rdtsc|two-rdtsc-two-stores) ' || true
        printf '%s' "$new_baseline" | grep -E '^(bare|two-rdtsc|two-rdtsc-two-stores) ' | sed 's/^/# /' || true
    } >"$baseline"
    echo "callgrind-gate: wrote $baseline"
    exit 0
fi

if [[ "$failed" == 1 ]]; then
    echo "callgrind-gate: the hot path got more expensive; see the table above" >&2
    exit 1
fi
echo "callgrind-gate: ok"
