#!/usr/bin/env python3
"""Checks what `mdbook build` lets through: every {{#include}} names a file that exists and, if
it names an anchor, the file has that ANCHOR/ANCHOR_END pair; every relative link and image
points at a file that exists, and every #fragment at a heading of that page; every image is
under the size limit.

Given the built book as well, it also reads the rendered pages: every Markdown table of a chapter
must come out as an HTML <table> with the rows and columns it has in the source, every row of the
source must have as many cells as its header (the renderer pads or cuts a malformed row without a
word), and no rendered paragraph may hold a line of raw table pipes (what a blank line inside a
table, or rows without a delimiter row, turn into).

Prints one line per problem and exits 1 if there is any.

Usage: check_book.py BOOK_SRC_DIR [BOOK_HTML_DIR]
"""

import html.parser
import os
import re
import sys

INCLUDE = re.compile(r"\{\{#(include|rustdoc_include)\s+([^}\s]+)\s*\}\}")
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")
IMAGE_LIMIT = 300 * 1024


def outside_fences(text):
    """The lines of a Markdown file outside fenced code blocks, as (line number, line) pairs."""
    inside = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            inside = not inside
            continue
        if not inside:
            yield number, line


def without_code(text):
    """The lines of a Markdown file outside fenced code blocks, with inline code removed, as
    (line number, line) pairs."""
    for number, line in outside_fences(text):
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


def split_row(line):
    """The cells of a table row: split on the pipes not escaped with a backslash, without the
    optional outer pipes (GitHub's rule, which mdBook's pulldown-cmark follows: a pipe inside a
    code span splits the cell too unless it is escaped)."""
    row = line.strip()
    if row.startswith("|"):
        row = row[1:]
    if row.endswith("|") and not row.endswith("\\|"):
        row = row[:-1]
    return re.split(r"(?<!\\)\|", row)


DELIMITER = re.compile(r"^\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?$")


def source_tables(md_path, problems):
    """The tables of a Markdown file, in order, as (line number, columns, body rows); a row whose
    cell count differs from the header's is a problem."""
    with open(md_path, encoding="utf-8") as f:
        text = f.read()
    lines = list(outside_fences(text))
    tables = []
    i = 0
    while i + 1 < len(lines):
        number, header = lines[i]
        if "|" in header and DELIMITER.match(lines[i + 1][1].strip()):
            columns = len(split_row(lines[i + 1][1]))
            if len(split_row(header)) != columns:
                problems.append(
                    f"{md_path}:{number}: table header has {len(split_row(header))} cells, "
                    f"its delimiter row {columns}"
                )
            rows = 0
            i += 2
            # A table ends at the first blank line (or a line without a pipe).
            while i < len(lines) and lines[i][0] == lines[i - 1][0] + 1 and "|" in lines[i][1]:
                cells = len(split_row(lines[i][1]))
                if cells != columns:
                    problems.append(
                        f"{md_path}:{lines[i][0]}: table row has {cells} cells, the header {columns}"
                    )
                rows += 1
                i += 1
            tables.append((number, columns, rows))
        else:
            i += 1
    return tables


class RenderedPage(html.parser.HTMLParser):
    """The tables (each a list of rows, each row its cell count) and the paragraphs of a page
    mdBook rendered. A paragraph is kept twice, line for line: as its text, and with the text of
    its <code> spans masked, so that a pipe inside code is not taken for a table's."""

    def __init__(self):
        super().__init__()
        self.tables = []
        self.paragraphs = []
        self._in_table = 0
        self._row = None
        self._paragraph = None
        self._code = 0

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._in_table += 1
            self.tables.append([])
        elif tag == "tr" and self._in_table:
            self._row = 0
        elif tag in ("td", "th") and self._row is not None:
            self._row += 1
        elif tag == "p":
            self._paragraph = ([], [])
        elif tag == "code":
            self._code += 1

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_table -= 1
        elif tag == "tr" and self._row is not None:
            self.tables[-1].append(self._row)
            self._row = None
        elif tag == "p" and self._paragraph is not None:
            text, masked = self._paragraph
            self.paragraphs.append(("".join(text), "".join(masked)))
            self._paragraph = None
        elif tag == "code":
            self._code -= 1

    def handle_data(self, data):
        if self._paragraph is not None:
            self._paragraph[0].append(data)
            self._paragraph[1].append(re.sub(r"[^\n]", "_", data) if self._code else data)


def chapters(src):
    """The Markdown files SUMMARY.md lists, relative to the source directory."""
    with open(os.path.join(src, "SUMMARY.md"), encoding="utf-8") as f:
        return [m.group(1) for m in re.finditer(r"\]\(([^)\s]+\.md)\)", f.read())]


def check_rendered(src, out, problems):
    """Compares each chapter's tables with the HTML mdBook made of them; returns the number of
    tables checked."""
    checked = 0
    for chapter in chapters(src):
        md_path = os.path.join(src, chapter)
        # mdBook's index preprocessor turns README.md into index.html.
        page = re.sub(r"(^|/)README\.md$", r"\1index.md", chapter)[: -len(".md")] + ".html"
        html_path = os.path.join(out, page)
        if not os.path.isfile(html_path):
            problems.append(f"{html_path}: not built (chapter {chapter})")
            continue
        expected = source_tables(md_path, problems)
        parser = RenderedPage()
        with open(html_path, encoding="utf-8") as f:
            parser.feed(f.read())
        for text, masked in parser.paragraphs:
            for line, plain in zip(text.splitlines(), masked.splitlines()):
                plain = plain.strip()
                if len(plain) > 1 and plain.startswith("|") and plain.endswith("|"):
                    problems.append(
                        f"{html_path}: raw table pipes in a paragraph (a blank line inside a "
                        f"table of {md_path}, or rows without a header?): {line.strip()[:90]}"
                    )
        if len(parser.tables) != len(expected):
            problems.append(
                f"{html_path}: {len(parser.tables)} tables rendered, {len(expected)} in {md_path}"
            )
        for (number, columns, rows), rendered in zip(expected, parser.tables):
            where = f"{md_path}:{number}"
            if len(rendered) != rows + 1:
                problems.append(
                    f"{where}: table of 1+{rows} rows rendered with {len(rendered)} rows"
                )
            if any(cells != columns for cells in rendered):
                problems.append(
                    f"{where}: table of {columns} columns rendered with rows of {sorted(set(rendered))}"
                )
            checked += 1
    return checked


def main():
    if len(sys.argv) not in (2, 3):
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
    tables = check_rendered(src, sys.argv[2], problems) if len(sys.argv) == 3 else None
    for problem in problems:
        print(problem)
    rendered = "" if tables is None else f" and {tables} rendered tables"
    print(f"checked {pages} pages{rendered}: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
