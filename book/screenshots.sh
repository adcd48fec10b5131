#!/usr/bin/env bash
# Makes the book's pictures from the examples' real output: the basic example's trace in the
# Speedscope app and in Perfetto UI (headless Chromium through viewers/check.mjs, which also
# checks that both load cleanly), and the flamegraph of 01_flamegraph_analysis.
# Usage: bash book/screenshots.sh     (writes book/src/images/*)
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
PROFILER_OUTPUT="$out/basic" cargo run -q --release -p profiler-examples --example basic_profiling >/dev/null
PROFILER_OUTPUT="$out/flame" cargo run -q --release -p profiler-examples --example 01_flamegraph_analysis >/dev/null
bash viewers/setup.sh
node viewers/check.mjs --trace "$out/basic.trace.json" --speedscope "$out/basic.speedscope.json" \
  --out "$out/shots" --only speedscope,perfetto
mkdir -p book/src/images
cp "$out/shots/speedscope.png" book/src/images/basic-speedscope.png
cp "$out/shots/perfetto.png" book/src/images/basic-perfetto.png
cp "$out/flame.svg" book/src/images/flamegraph.svg
ls -la book/src/images
