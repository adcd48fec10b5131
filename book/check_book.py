#!/usr/bin/env python3
"""Checks what `mdbook build` lets through: every {{#include}} names a file that exists and, if
it names an anchor, the file has that ANCHOR/ANCHOR_END pair; every relative link and image
points at a file that exists, and every #fragment at a heading of that page; every image is
under the size limit. Prints one line per problem and exits 1 if there is any.

Usage: check_book.py BOOK_SRC_DIR
"""

import os
import re
import sys

INCLUDE = re.compile(r"\{\{#(include|rustdoc_include)\s+([^}\s]+)\s*\}\}")
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")
IMAGE_LIMIT = 300 * 1024


def without_code(text):
    """The lines of a Markdown file outside fenced code blocks, with inline code removed, as
    (line number, line) pairs."""
    inside = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            inside = not inside
            continue
        if not inside:
            yield number, re.sub(r"`[^`]*`", "", line)


def heading_ids(path):
    """The ids mdBook gives the headings of a page (its `normalize_id`, with -1, -2... for
    repeats)."""
    ids, seen = set(), {}
    with open(path, encoding="utf-8") as f:
        text = f.read()
    inside = False
    for line in text.splitlines():
        if FENCE.match(line):
            inside = not inside
            continue
        m = None if inside else HEADING.match(line)
        if not m:
            continue
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", m.group(2))  # links keep their text
        title = re.sub(r"<[^>]+>", "", title).replace("`", "").replace("*", "")
        base = "".join(
            c.lower() if (c.isalnum() or c in "_-") else ("-" if c.isspace() else "")
            for c in title
        )
        n = seen.get(base, 0)
        seen[base] = n + 1
        ids.add(base if n == 0 else f"{base}-{n}")
    return ids


def check_include(md_path, number, target, problems):
    path, _, selector = target.partition(":")
    full = os.path.normpath(os.path.join(os.path.dirname(md_path), path))
    where = f"{md_path}:{number}"
    if not os.path.isfile(full):
        problems.append(f"{where}: include of a missing file {path}")
        return
    if not selector or re.fullmatch(r"[0-9]*(:[0-9]*)?", selector):
        return  # the whole file, or a line range
    with open(full, encoding="utf-8") as f:
        text = f.read()
    anchor = re.escape(selector)
    if not re.search(rf"ANCHOR:\s*{anchor}\b", text):
        problems.append(f"{where}: {path} has no `ANCHOR: {selector}`")
    elif not re.search(rf"ANCHOR_END:\s*{anchor}\b", text):
        problems.append(f"{where}: {path} has no `ANCHOR_END: {selector}`")


def check_link(md_path, number, target, problems):
    if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("//"):
        return  # http:, https:, mailto: ...
    path, _, fragment = target.partition("#")
    where = f"{md_path}:{number}"
    full = md_path if not path else os.path.normpath(os.path.join(os.path.dirname(md_path), path))
    if not os.path.exists(full):
        problems.append(f"{where}: link to a missing file {path}")
        return
    if fragment and full.endswith(".md") and fragment not in heading_ids(full):
        problems.append(f"{where}: {path or 'this page'} has no heading #{fragment}")


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    src = sys.argv[1]
    problems = []
    pages = 0
    for root, _, files in os.walk(src):
        for name in sorted(files):
            path = os.path.join(root, name)
            if name.endswith(".md"):
                pages += 1
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                # Includes are found inside code blocks too: that is where they live.
                for number, line in enumerate(text.splitlines(), 1):
                    for m in INCLUDE.finditer(line):
                        check_include(path, number, m.group(2), problems)
                for number, line in without_code(text):
                    for m in LINK.finditer(line):
                        check_link(path, number, m.group(1), problems)
            elif name.lower().endswith((".png", ".jpg", ".svg")):
                size = os.path.getsize(path)
                if size > IMAGE_LIMIT:
                    problems.append(f"{path}: {size} bytes, over the {IMAGE_LIMIT}-byte limit")
    for problem in problems:
        print(problem)
    print(f"checked {pages} pages: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
