#!/usr/bin/env bash
# Proves that with `profiler-runtime/enable` off, `#[profile]` leaves the machine code unchanged.
#
# Builds this crate's library in release twice, with the attributes (default features) and
# without them (feature `bare`), emits the assembly of each, normalises what legitimately differs
# (symbol hashes, which include the feature set, and file-level directives), and compares
# every function. Exits non-zero, printing the diff, if any instruction differs.
#
# Usage: tests/feature-off/check-codegen.sh     (CARGO_TARGET_DIR is honoured; default: ./target)
set -euo pipefail
cd "$(dirname "$0")"
target="${CARGO_TARGET_DIR:-$PWD/target}/codegen"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for variant in attributed bare; do
    features=()
    if [ "$variant" = bare ]; then features=(--features bare); fi
    dir="$target/$variant"
    # Only this package, only in this script's own directory: forces the assembly to be emitted.
    cargo clean --quiet --release -p profiler-feature-off --target-dir "$dir" 2>/dev/null || true
    cargo rustc --quiet --release --lib "${features[@]}" --target-dir "$dir" -- \
        --emit asm -C codegen-units=1
    asm=("$dir"/release/deps/profiler_feature_off-*.s)
    if [ "${#asm[@]}" -ne 1 ] || [ ! -f "${asm[0]}" ]; then
        echo "check-codegen: expected one assembly file in $dir/release/deps" >&2
        exit 2
    fi
    # Legacy mangling ends in a hash of the crate and features (17h<16 hex>E); v0 mangling
    # carries a crate disambiguator (Cs<base62>_); anonymous constants are named after the crate
    # hash (.Lanon.<hex>). Directives naming the file or compiler vary too.
    sed -E \
        -e 's/17h[0-9a-f]{16}E/17hHASHE/g' \
        -e 's/\.Lanon\.[0-9a-f]+\./.Lanon.HASH./g' \
        -e 's/Cs[0-9a-zA-Z]+_/CsHASH_/g' \
        -e '/^\s*\.(file|ident)\b/d' \
        "${asm[0]}" >"$work/$variant.s"
done

functions=$(grep -cE '^[_a-zA-Z][^ :]*:$' "$work/attributed.s" || true)
instructions=$(grep -cE '^\s+[a-z]' "$work/attributed.s" | tr -d ' ' || true)
for name in checksum fib parse_sum checked Pool5total label_numbers drive; do
    if ! grep -q "$name" "$work/attributed.s"; then
        echo "check-codegen: no code for \`$name\` was emitted; the comparison would prove nothing" >&2
        exit 2
    fi
done
if diff -u "$work/bare.s" "$work/attributed.s" >"$work/diff"; then
    echo "check-codegen: identical machine code with and without #[profile] ($functions labels, $instructions instruction and directive lines)"
else
    cat "$work/diff"
    echo "check-codegen: #[profile] changed the machine code with the feature off" >&2
    exit 1
fi
