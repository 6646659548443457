"""Vendoring of `fx2mlx/runtime/*.py` into the emitted `model.py`: only the top-level definitions the
generated code uses, and what those use in turn, copied in file order. Runtime modules stand alone (no
module calls another's), so each is vendored by name."""
from __future__ import annotations

import ast
import re
from pathlib import Path

RUNTIME = Path(__file__).resolve().parent.parent / "runtime"


def _runtime_defs(name: str) -> tuple[str, list[tuple[str, str, set]]]:
    """A runtime module's docstring and its top-level definitions: (name, source, names it uses)."""
    text = (RUNTIME / f"{name}.py").read_text()
    tree = ast.parse(text)
    lines = text.splitlines()
    defs = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Assign)):
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            src = "\n".join(lines[start - 1: node.end_lineno])
            names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        defs.append((t.id, src, names - {t.id}))
            else:
                defs.append((node.name, src, names))
    doc = (ast.get_docstring(tree) or "").strip().splitlines()
    return (doc[0] if doc else ""), defs


def runtime_names(modules: list[str]) -> set[str]:
    """The names the runtime modules define (generated local names must not shadow them)."""
    return {d[0] for m in modules for d in _runtime_defs(m)[1]}


def _names_used(code: str) -> set[str]:
    """Names the generated code reads (not attributes such as `mx.pad`, not keywords such as `mode=`)."""
    names: set[str] = set()
    for line in code.splitlines():
        try:
            tree = ast.parse(line.strip())
        except SyntaxError:
            names |= set(re.findall(r"(?<![.\w])([A-Za-z_]\w*)\s*\(", line))  # calls, conservatively
            continue
        names |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return names


def vendor_runtime(name: str, code: str) -> dict | None:
    """The definitions of runtime module `name` that `code` uses (and what they use), in file order."""
    doc, defs = _runtime_defs(name)
    by_name = {d[0]: d for d in defs}
    words = _names_used(code)
    need = set()
    todo = [w for w in words if w in by_name]
    while todo:
        n = todo.pop()
        if n in need:
            continue
        need.add(n)
        todo.extend(x for x in by_name[n][2] if x in by_name)
    if not need:
        return None
    src = "\n\n\n".join(d[1] for d in defs if d[0] in need)
    return {"name": name, "doc": doc, "source": src}
