#!/usr/bin/env bash
# The single command CI runs: install the viewers (setup.sh), record the fixture with the real
# runtime, and load it into Speedscope, Perfetto UI and the catapult trace viewer (check.mjs).
#
#   viewers/run.sh OUTDIR     (screenshots and the fixture files end up in OUTDIR)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
out="${1:?usage: viewers/run.sh OUTDIR}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

"$here/setup.sh"
echo "viewers/run: recording the fixture"
(cd "$root" && cargo run --quiet -p profiler-runtime --features enable --example viewer_fixture -- "$out")
echo "viewers/run: loading it into the viewers"
# Every wait inside check.mjs has its own timeout; this bounds the whole run as well.
timeout 600 node "$here/check.mjs" \
  --trace "$out/fixture.trace.json" \
  --speedscope "$out/fixture.speedscope.json" \
  --expect "$out/fixture.expect.json" \
  --out "$out"
