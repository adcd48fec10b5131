#!/usr/bin/env python3
"""The import graph of profiler-runtime's modules: which file uses which (code only, comments
and doc links left out), the cycles among files, and the edges that go against the layers.

    python3 tools/module_graph.py [--edges]

Exits 1 if there is a cycle or an edge from a lower layer to a higher one."""
import pathlib, re, sys

SRC = pathlib.Path(__file__).resolve().parent.parent / "profiler-runtime" / "src"
# Bottom to top; a module may use its own layer's modules and those below. `atomic_file` is a
# leaf utility (it uses nothing of the crate) that every layer that writes files may use.
LAYERS = ["atomic_file", "record", "collect", "stream", "analyze", "export", "import", "production", "baseline", "top"]

def module_of(path):
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "mod":
        parts = parts[:-1]
    if parts == ["lib"] or parts[:1] == ["bin"]:
        return None
    return "::".join(parts)

def layer(module):
    head = module.split("::")[0]
    return head if head in LAYERS else "top"

files = {module_of(p): p for p in SRC.rglob("*.rs") if module_of(p)}
modules = sorted(files)
edges = {m: set() for m in modules}
ref = re.compile(r"\bcrate::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)")
for m, p in files.items():
    text = p.read_text()
    # Tests may use anything; they are not part of the layering.
    text = re.split(r"#\[cfg\(test\)\]\s*mod tests", text)[0]
    for line in text.splitlines():
        code = line.split("//")[0]
        for found in ref.findall(code):
            segs = found.split("::")
            # the longest module prefix that exists
            for n in range(len(segs), 0, -1):
                cand = "::".join(segs[:n])
                if cand in files and cand != m:
                    edges[m].add(cand)
                    break

# Tarjan's strongly connected components.
index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]
def strong(v):
    index[v] = low[v] = counter[0]; counter[0] += 1
    stack.append(v); on.add(v)
    for w in edges[v]:
        if w not in index:
            strong(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(sorted(comp))
sys.setrecursionlimit(10000)
for v in modules:
    if v not in index: strong(v)

upward = [(a, b) for a in modules for b in sorted(edges[a])
          if LAYERS.index(layer(b)) > LAYERS.index(layer(a))]
if "--edges" in sys.argv:
    for a in modules:
        print(f"{a}: {', '.join(sorted(edges[a]))}")
for comp in sccs:
    print("cycle:", " <-> ".join(comp))
for a, b in upward:
    print(f"upward: {a} ({layer(a)}) uses {b} ({layer(b)})")
print(f"{len(modules)} modules, {sum(map(len, edges.values()))} edges, {len(sccs)} cycles, {len(upward)} upward edges")
sys.exit(1 if sccs or upward else 0)
