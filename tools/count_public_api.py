#!/usr/bin/env python3
"""Counts profiler-runtime's public items from rustdoc's JSON output: every item reachable from the
crate root through public modules and re-exports, `#[doc(hidden)]` ones left out.

    RUSTDOCFLAGS="-Z unstable-options --output-format json" \
        cargo +nightly doc -p profiler-runtime --all-features --no-deps
    python3 tools/count_public_api.py target/doc/profiler_runtime.json [--list]

Prints the items in modules (types, functions, constants, macros, modules), then methods and
fields separately."""
import collections
import json
import sys

data = json.load(open(sys.argv[1]))
index, root = data["index"], data["root"]
seen, items = set(), []


def hidden(item):
    return any("hidden" in str(a) for a in item.get("attrs", []))


def visit(iid, path, member=False):
    if iid in seen or str(iid) not in index:
        return
    seen.add(iid)
    item = index[str(iid)]
    if hidden(item) or (iid != root and item.get("visibility") not in ("public", "default", None)):
        return
    kind = next(iter(item["inner"]))
    body = item["inner"][kind]
    if kind == "use":
        seen.discard(iid)
        if body.get("id") is not None:
            visit(body["id"], path)
        return
    name = f"{path}::{item.get('name')}"
    items.append((("method" if kind == "function" else kind) if member else kind, name))
    if kind == "module":
        for child in body["items"]:
            visit(child, name)
    elif kind in ("struct", "enum", "trait"):
        children = list(body.get("impls", []))
        if kind == "struct" and isinstance(body.get("kind"), dict) and "plain" in body["kind"]:
            children += body["kind"]["plain"]["fields"]
        if kind == "enum":
            children += body["variants"]
        if kind == "trait":
            children += body["items"]
        for child in children:
            inner = index.get(str(child), {}).get("inner", {})
            if "impl" in inner:
                impl = inner["impl"]
                if impl.get("trait") is None and not impl.get("is_synthetic") and not impl.get("blanket_impl"):
                    for m in impl["items"]:
                        visit(m, name, member=True)
            else:
                visit(child, name, member=True)


visit(root, "")
counts = collections.Counter(kind for kind, _ in items)
in_modules = sum(n for k, n in counts.items() if k not in ("method", "struct_field", "variant", "assoc_const", "assoc_type"))
print(f"{in_modules} items in modules, {counts['method']} methods, {counts['struct_field']} fields, "
      f"{counts['variant']} variants; {dict(counts)}")
if "--list" in sys.argv:
    for kind, name in sorted(items, key=lambda x: x[1]):
        print(kind, name)
