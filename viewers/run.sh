#!/usr/bin/env bash
# The single command CI runs: install the viewers (setup.sh), record the fixtures and run the main
# example with the real runtime, and load what they wrote into Speedscope, Perfetto UI and the
# catapult trace viewer (check.mjs).
#
#   viewers/run.sh OUTDIR     (screenshots and the recorded files end up in OUTDIR)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
out="${1:?usage: viewers/run.sh OUTDIR}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

"$here/setup.sh"
echo "viewers/run: recording the fixtures"
(cd "$root" && cargo run --quiet -p profiler-runtime --features enable --example viewer_fixture -- "$out")
# The trace users get from Tutorial 01, run as the tutorial says (release); its report goes to a file.
echo "viewers/run: running the main example (basic_profiling)"
(cd "$root" && PROFILER_OUTPUT="$out/basic_profiling" \
  cargo run --quiet --release -p profiler-examples --example basic_profiling >"$out/basic_profiling.txt")
# A streamed run ended by SIGTERM: the signal handler completes sigterm.perfetto-trace, then the
# signal kills the process (cargo then reports a failure: the status is not what is checked, the
# line the profiler prints when it completes the file is).
echo "viewers/run: a streamed run ended by SIGTERM (stream_sigterm)"
rm -f "$out/sigterm.perfetto-trace"
(cd "$root" && cargo run --quiet -p profiler-runtime --features enable --example stream_sigterm -- "$out" \
  2>"$out/sigterm.stderr.txt") || true
grep -q "profiler: completed .*sigterm.perfetto-trace at SIGTERM" "$out/sigterm.stderr.txt" || {
  echo "viewers/run: stream_sigterm did not complete its file at SIGTERM:" >&2
  cat "$out/sigterm.stderr.txt" >&2
  exit 1
}
# What our reader (import::read_perfetto) makes of each streamed file: the Perfetto UI must agree.
streamed=("$out/basic_profiling.perfetto-trace" "$out/sigterm.perfetto-trace")
for file in "${streamed[@]}"; do
  (cd "$root" && cargo run --quiet -p profiler-runtime --features enable --example perfetto_expect -- "$file") \
    >"${file%.perfetto-trace}.perfetto-expect.json"
done
echo "viewers/run: loading them into the viewers"
# Every wait inside check.mjs has its own timeout; this bounds the whole run as well.
timeout 900 node "$here/check.mjs" \
  --trace "$out/fixture.trace.json" \
  --speedscope "$out/fixture.speedscope.json" \
  --expect "$out/fixture.expect.json" \
  --also-trace "$out/siblings.trace.json" \
  --also-trace "$out/basic_profiling.trace.json" \
  --perfetto-trace "$out/basic_profiling.perfetto-trace" \
  --perfetto-trace "$out/sigterm.perfetto-trace" \
  --out "$out"
