#!/usr/bin/env bash
# Builds the book with a pinned mdBook and fails on what mdBook itself lets through: a missing
# include file or anchor (mdBook 0.4 logs an error and exits 0), a broken relative link or
# #fragment, an image over 300 KB, and a broken table (a blank line inside it, a row with the
# wrong number of cells), found by reading the rendered HTML. Run from anywhere; CI runs
# `bash book/check.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

MDBOOK_VERSION=0.4.52
if [ "$(mdbook --version 2>/dev/null || true)" != "mdbook v$MDBOOK_VERSION" ]; then
  # Only `build` is needed: without the default `watch`/`serve` features the install is smaller.
  echo "installing mdbook $MDBOOK_VERSION (about 5 minutes on two cores)"
  cargo install mdbook --version "$MDBOOK_VERSION" --locked --no-default-features --features search
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
mdbook build book 2>&1 | tee "$log"
if grep -E '\[(ERROR|WARN)\]' "$log" >/dev/null; then
  echo "mdbook reported errors or warnings (above)"
  exit 1
fi
# A directive mdBook did not expand would be shown to readers as text.
if grep -rl '{{#' book/book --include='*.html' >/dev/null; then
  echo "unexpanded mdBook directives in:"; grep -rl '{{#' book/book --include='*.html'
  exit 1
fi
# Includes, links and images in the sources; tables in the sources against the rendered pages.
python3 book/check_book.py book/src book/book
echo "book: built into book/book, includes, links and tables checked"
