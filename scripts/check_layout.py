#!/usr/bin/env python3
"""The layout rules of ARCHITECTURE.md that the compiler does not check, run by
scripts/test.sh: no source file under crates/*/src over 1,200 lines (test files aside), and
no file-level import cycle inside a crate. An edge is a file naming another through
`crate::…` or `super::…` (a `pub use` re-export and a module naming its own children are
the module tree, not imports). Exits non-zero, listing what breaks a rule."""
import os, re, sys, glob
root = sys.argv[1] if len(sys.argv) > 1 else '.'
cycles = 0
for src in sorted(glob.glob(os.path.join(root, 'crates/*/src'))):
    files = {}
    for p in glob.glob(src + '/**/*.rs', recursive=True):
        rel = os.path.relpath(p, src)[:-3]
        parts = rel.split('/')
        if parts[-1] in ('lib', 'main'): parts = parts[:-1]
        elif parts[-1] == 'mod': parts = parts[:-1]
        files[tuple(parts)] = p
    def resolve(path):
        # longest module prefix that is a file
        for n in range(len(path), -1, -1):
            if tuple(path[:n]) in files: return tuple(path[:n])
        return None
    edges = {m: set() for m in files}
    for m, p in files.items():
        text = open(p).read()
        text = re.sub(r'#\[cfg\(test\)\]\s*mod tests\s*\{.*', '', text, flags=re.S)
        text = '\n'.join(l for l in text.splitlines() if not l.strip().startswith('//'))
        # Re-exports are the module tree's, not imports.
        text = re.sub(r'pub(\(crate\))?\s+use\s[^;]*;', '', text)
        paths = []
        # Grouped imports: `use crate::{a::b, c::{d, e}}` names crate::a and crate::c.
        for g in re.finditer(r'\b((?:crate|super)(?:::super)*)::\{', text):
            depth, j = 1, g.end()
            while j < len(text) and depth:
                depth += {'{': 1, '}': -1}.get(text[j], 0)
                j += 1
            inner = re.sub(r'\{[^{}]*\}', '', text[g.end():j - 1])
            for item in inner.split(','):
                item = item.strip()
                if item and item != 'self':
                    paths.append(g.group(1) + '::' + item.split(' as ')[0])
        paths += [m_.group(0) for m_ in re.finditer(r'\b(?:crate|super)(?:::\w+)+', text)]
        for path in paths:
            segs = path.split('::')
            base = list(m[:-1]) if segs[0] == 'super' else []
            # `super` of a/b.rs is module a; of a/mod.rs, a's parent: both m[:-1].
            segs = segs[1:]
            while segs and segs[0] == 'super':
                base, segs = base[:-1], segs[1:]
            t = resolve(base + segs)
            if t is not None and t != m:
                edges[m].add(t)
            # A module naming its own children (`run::requirements`) is the module tree, not
            # an import: not an edge.
    # find cycles (Tarjan)
    index = {}; low = {}; stack = []; on = set(); out = []; i = [0]
    def strong(v):
        index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
        for w in edges[v]:
            if w not in index: strong(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: out.append(comp)
    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index: strong(v)
    if os.environ.get('EDGES'): print(src, sum(len(e) for e in edges.values()), 'edges')
    for comp in out:
        cycles += 1
        print(src, ' <-> '.join('/'.join(c) or 'lib' for c in comp))
MAX_LINES = 1200
long = []
for p in sorted(glob.glob(os.path.join(root, 'crates/*/src/**/*.rs'), recursive=True)):
    if p.endswith('tests.rs') or '/tests/' in p:
        continue
    n = sum(1 for _ in open(p))
    if n > MAX_LINES:
        long.append(p)
        print(f'{p}: {n} lines (at most {MAX_LINES})')
print(f'{cycles} import cycles, {len(long)} files over {MAX_LINES} lines')
sys.exit(1 if cycles or long else 0)
