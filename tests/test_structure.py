"""The package's shape: no import cycles, no oversized modules (pure Python, no MLX or torch needed).

(a) Import cycles: module-level imports are counted for the whole package; inside fx2mlx/compiler/ every
    import counts, function-level ones too (a deferred import that only hides a cycle is still a cycle
    between layers). Relative imports are resolved; `from pkg import name` counts `pkg.name` when that is
    a module, else `pkg`.
(b) Line budget: no module over MAX_LINES, except the data files listed in LONG_DATA.
"""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "fx2mlx"
MAX_LINES = 600
# Modules allowed past MAX_LINES: tables and data only, never logic.
LONG_DATA = {
    "fx2mlx/conformance/opcases.py",  # the differential op cases: ~600 lines of Call(...) data
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path], all_levels: bool) -> set[str]:
    """fx2mlx modules that `name` imports (module level only unless `all_levels`)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nodes = ast.walk(tree) if all_levels else _module_level(tree.body)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in modules:  # `import fx2mlx.compiler.ir as x` names the module itself
                t = t.rpartition(".")[0]
            if t and t != name and t.startswith("fx2mlx"):
                found.add(t)
    return found


def _module_level(body):
    """Statements that run at import: the top level, including if/try/with blocks, not def bodies."""
    for node in body:
        yield node
        if isinstance(node, (ast.If, ast.Try, ast.With)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                for sub in getattr(node, field, []):
                    yield from _module_level(sub.body if isinstance(sub, ast.ExceptHandler) else [sub])


def import_graph() -> nx.DiGraph:
    modules = _modules()
    g = nx.DiGraph()
    g.add_nodes_from(modules)
    for name, path in modules.items():
        in_compiler = name.startswith("fx2mlx.compiler")
        for target in _imports(name, path, modules, all_levels=in_compiler):
            # A package's __init__ importing its own submodules is not a dependency between layers.
            if not (path.name == "__init__.py" and target.startswith(name + ".")):
                g.add_edge(name, target)
    return g


def test_no_import_cycles():
    g = import_graph()
    cycles = [c for c in nx.simple_cycles(g) if len(c) > 1]
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c + [c[0]]) for c in cycles[:20])


def test_module_line_budget():
    over = {}
    for name, path in _modules().items():
        rel = str(path.relative_to(ROOT))
        n = len(path.read_text().splitlines())
        if n > MAX_LINES and rel not in LONG_DATA:
            over[rel] = n
    assert not over, f"modules over {MAX_LINES} lines (split them): {over}"


def test_long_data_list_is_current():
    """Every exclusion names a file that exists and still needs it."""
    for rel in LONG_DATA:
        assert len((ROOT / rel).read_text().splitlines()) > MAX_LINES, f"{rel} fits now: drop it from LONG_DATA"
