"""Emission of the standalone MLX Python module (`model.py`).

Logic lives here; formatting lives in `templates/model.py.j2`. The emitted module mirrors the PyTorch
module tree: one `nn.Module` class per PyTorch module type (instances whose code is the same share a
class), attribute names equal to the state_dict keys, parameters created with their MLX-layout shapes.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from . import dtypes, ir, layouts
from .lowering import Lowered
from .modtree import Call, attr_code, base_name, build_calls, owns

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
RUNTIME = Path(__file__).resolve().parent.parent / "runtime"


def template_env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True, undefined=jinja2.StrictUndefined)


@dataclass
class ModNode:
    path: str
    type: str
    children: dict = field(default_factory=dict)  # name -> ModNode
    params: dict = field(default_factory=dict)  # name -> (shape, dtype)
    calls: list = field(default_factory=list)  # Call
    body: tuple | None = None  # (args, lines, returns) of the forward
    cls: "ClassDef | None" = None
    ctor: dict = field(default_factory=dict)  # constructor kwargs for this instance
    is_list: bool = False

    @property
    def type_name(self) -> str:
        return re.sub(r"\W", "_", self.type.rsplit(".", 1)[-1])


@dataclass
class ClassDef:
    name: str
    torch_type: str
    body: tuple | None
    ctor_params: list = field(default_factory=list)
    init_lines: list = field(default_factory=list)
    instances: list = field(default_factory=list)
    doc: str = ""


def weight_shapes(lowered: Lowered, dtype: str | None) -> dict[str, tuple[tuple, str]]:
    """Weight target -> (shape in MLX layout, dtype as stored)."""
    import numpy as np

    out = {}
    for i in lowered.program.weight_inputs:
        t = i.type
        shape = tuple(t.shape)
        if i.name in lowered.weight_layouts:
            role, args = lowered.weight_layouts[i.name]
            fake = np.zeros(shape, dtype=np.int8)
            shape = tuple(layouts.apply(role, fake, args).shape)
        dt = t.dtype
        if dtype and dtypes.is_float(dt):
            dt = dtype
        out[i.target] = (shape, dt)
    return out


class PyEmitter:
    def __init__(self, lowered: Lowered, *, dtype: str | None = None, source: str = "", root_type: str | None = None):
        self.lowered = lowered
        self.program = lowered.program
        self.dtype = dtype
        self.source = source
        types = dict(m for m in ((mi.path, mi.type) for mi in self.program.modules))
        self.root_type = root_type or types.get("", "fx2mlx.Model")
        self.weights = weight_shapes(lowered, dtype)
        self.by_input = {i.name: i for i in self.program.inputs}
        self.users = self._users()
        self.weight_names = self.program.weight_names()
        import builtins

        self.reserved = ({"self", "mx", "nn", "math", "json", "Path", "tree_flatten", "load", "INPUTS"}
                         | set(dir(builtins)) | runtime_names(lowered.runtime_modules))

    # -- the module tree ----------------------------------------------------------------------------
    def _tree(self, calls: Call) -> ModNode:
        types = {mi.path: mi.type for mi in self.program.modules}
        root = ModNode("", self.root_type)
        nodes = {"": root}
        order = {mi.path: i for i, mi in enumerate(self.program.modules)}

        def get(path: str) -> ModNode:
            if path in nodes:
                return nodes[path]
            parent_path, _, name = path.rpartition(".")
            parent = get(parent_path)
            m = ModNode(path, types.get(path, "fx2mlx.Module"))
            parent.children[name] = m
            nodes[path] = m
            return m

        aliases = self.program.aliases
        for target, (shape, dt) in list(self.weights.items()) + [(a, self.weights[c]) for a, c in aliases.items()
                                                                 if c in self.weights]:
            owner, _, leaf = target.rpartition(".")
            get(owner).params[leaf] = (shape, dt)
        for c in calls.walk():
            get(c.path).calls.append(c)
        root.calls.append(calls)
        for m in nodes.values():  # children in the PyTorch module order
            m.children = dict(sorted(m.children.items(), key=lambda kv: order.get(kv[1].path, len(order))))
        for m in nodes.values():
            m.is_list = (not m.params and not m.calls and bool(m.children)
                         and all(k.isdigit() for k in m.children)
                         and sorted(int(k) for k in m.children) == list(range(len(m.children))))
        self.list_paths = {p for p, m in nodes.items() if m.is_list}
        return root

    # -- forward bodies -----------------------------------------------------------------------------
    def _users(self) -> dict[str, list[ir.Node]]:
        users: dict[str, list[ir.Node]] = {}
        for n in self.program.nodes:
            for r in n.refs():
                users.setdefault(r.name, []).append(n)
        return users

    def render_body(self, call: Call, is_root: bool) -> tuple:
        names: dict[str, str] = {}
        used: set[str] = set(self.reserved)

        def fresh(base: str) -> str:
            base = re.sub(r"\W", "_", base)
            if not base.isidentifier() or base in used or base[0].isdigit():
                base = f"v_{base}" if not base.isidentifier() or base[0].isdigit() else base
            name, k = base, 1
            while name in used:
                name, k = f"{base}_{k}", k + 1
            used.add(name)
            return name

        args = []
        for v in call.inputs:
            inp = self.by_input.get(v)
            if (is_root or (inp is not None and inp.type is None)) and inp is not None and inp.kind == "user":
                names[v] = fresh(v)  # (a non-tensor user input, e.g. a KV cache, keeps its name everywhere)
            elif inp is not None and inp.kind != "user":
                names[v] = fresh(inp.target.rsplit(".", 1)[-1])
            else:
                names[v] = fresh("x")
            args.append(names[v])
        if is_root:  # every user input is an argument, in order, even if unused
            args = []
            for i in self.program.user_inputs:
                if i.name not in names:
                    names[i.name] = fresh(i.name)
                args.append(names[i.name] + ("=None" if i.type is None else ""))  # non-tensor: optional state

        def namer(v: str) -> str:
            if v in names:
                return names[v]
            inp = self.by_input.get(v)
            if inp is not None and inp.kind != "user":
                for target in self.weight_names[v]:
                    if owns(call.path, target):
                        rel = target[len(call.path) + 1:] if call.path else target
                        return attr_code("self", rel, self.list_paths, call.path)
            raise KeyError(f"value {v} is not visible in {call.path or '<root>'}")

        lines = []
        if is_root and self.dtype:  # a float16/bfloat16 model computes in that dtype: cast float inputs
            for i in self.program.user_inputs:
                if isinstance(i.type, ir.TensorType) and dtypes.is_float(i.type.dtype) and i.type.dtype != self.dtype:
                    lines.append(f"{names[i.name]} = {names[i.name]}.astype(mx.{dtypes.MX[self.dtype]})")
        items = call.items
        skip: set[str] = set()
        for idx, it in enumerate(items):
            if isinstance(it, Call):
                outs = [fresh(base_name(o)) for o in it.outputs]
                for o, nm in zip(it.outputs, outs):
                    names[o] = nm
                rel = it.path[len(call.path) + 1:] if call.path else it.path
                callee = attr_code("self", rel, self.list_paths, call.path)
                argstr = ", ".join(namer(v) for v in it.inputs)
                if outs:
                    lines.append(f"{', '.join(outs)} = {callee}({argstr})")
                else:
                    lines.append(f"{callee}({argstr})")
                continue
            n = it
            if n.name in skip:
                continue
            expr = self.lowered.render(n.name, namer)
            if isinstance(n.type, ir.TupleType):
                getters = self.users.get(n.name, [])
                if getters and all(u.target == "operator.getitem.default" and u in items for u in getters):
                    slots = ["_"] * len(n.type.items)
                    for u in getters:
                        i = u.arg("b")
                        if slots[i] == "_":
                            names[u.name] = slots[i] = fresh(base_name(n.name) + (f"_{i}" if i else ""))
                        else:
                            names[u.name] = slots[i]
                        skip.add(u.name)
                    lines.append(f"{', '.join(slots)} = {expr}")
                    continue
            names[n.name] = fresh(base_name(n.name))
            lines.append(f"{names[n.name]} = {expr}")
        if is_root:
            ret = self._structure(self.program.out_spec, iter(self.program.outputs), namer)
            for target, ref in self._mutations():
                lines.append(f"{attr_code('self', target, self.list_paths)} = {namer(ref)}")
        else:
            outs = [namer(o) for o in call.outputs]
            ret = outs[0] if len(outs) == 1 else ", ".join(outs) if outs else "None"
        m = re.match(r"^(\w+) = (.*)$", lines[-1]) if lines else None
        if m and m.group(1) == ret:  # `y = f(x); return y` -> `return f(x)`
            lines, ret = lines[:-1], m.group(2)
        return tuple(args), tuple(lines), ret

    def _mutations(self):
        return [(t, v.name) for t, v in self.program.mutations if isinstance(v, ir.Ref)]

    def _structure(self, spec, flat, namer) -> str:
        kind = spec["kind"]
        if kind == "leaf":
            v = next(flat)
            if isinstance(v, ir.Ref):
                return namer(v.name)
            return repr(v)
        if kind == "none":
            return "None"
        parts = [self._structure(c, flat, namer) for c in spec["children"]]
        if kind == "dict":
            return "{" + ", ".join(f"{k!r}: {p}" for k, p in zip(spec["keys"], parts)) + "}"
        if kind == "list":
            return "[" + ", ".join(parts) + "]"
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"

    # -- classes ------------------------------------------------------------------------------------
    def build(self) -> dict:
        calls = build_calls(self.program, self.root_type)
        root = self._tree(calls)
        # bodies (a module whose calls differ cannot share one __call__)
        for m in self._postorder(root):
            if m.calls:
                bodies = {self.render_body(c, m is root) for c in m.calls}
                if len(bodies) > 1:  # build_calls inlines calls whose structure differs; this is a bug
                    raise AssertionError(f"module {m.path} is called several times with different code")
                m.body = next(iter(bodies))
        classes: list[ClassDef] = []
        by_key: dict[tuple, ClassDef] = {}
        taken: dict[str, int] = {}
        for m in self._postorder(root):
            if m.is_list:
                continue
            key = (m.type, m.body, tuple((k, v[1]) for k, v in m.params.items()),
                   tuple((k, self._struct(c)) for k, c in m.children.items() if self._emitted(c)))
            cls = by_key.get(key)
            if cls is None:
                n = taken.get(m.type_name, 0)
                taken[m.type_name] = n + 1
                name = m.type_name if n == 0 else f"{m.type_name}_{n}"
                if name in ("Module",) or name in {c.name for c in classes}:
                    name = f"{name}_{n + 1}"
                cls = ClassDef(name, m.type, m.body)
                by_key[key] = cls
                classes.append(cls)
            cls.instances.append(m)
            m.cls = cls
        for cls in classes:
            self._constructor(cls)
        root_cls = root.cls
        return {"classes": classes, "root": root_cls, "root_ctor": _kwargs(root.ctor)}

    def _struct(self, m: ModNode):
        """What a child contributes to its parent's class identity: its class, or a list's item classes."""
        if m.is_list:
            return ("list",) + tuple(self._struct(c) for _, c in sorted(m.children.items(), key=lambda kv: int(kv[0])))
        return m.cls.name if m.cls else None

    def _emitted(self, m: ModNode) -> bool:
        return bool(m.params or m.calls or any(self._emitted(c) for c in m.children.values()))

    def _postorder(self, m: ModNode):
        for c in m.children.values():
            if self._emitted(c):
                yield from self._postorder(c)
        yield m

    def _child_expr(self, c: ModNode) -> str:
        if c.is_list:
            items = [self._child_expr(x) for _, x in sorted(c.children.items(), key=lambda kv: int(kv[0]))]
            if items and all(i == items[0] for i in items):
                return f"[{items[0]} for _ in range({len(items)})]"
            return "[" + ", ".join(items) + "]"
        return f"{c.cls.name}({_kwargs(c.ctor)})"

    def _constructor(self, cls: ClassDef) -> None:
        """Literal slots that differ between instances become constructor arguments."""
        slots: list[tuple[str, str, list]] = []  # (slot name, kind, values per instance)
        first = cls.instances[0]
        for pname in first.params:
            slots.append((f"{pname}_shape", "param:" + pname, [m.params[pname][0] for m in cls.instances]))
        for cname, child in first.children.items():
            if not self._emitted(child):
                continue
            for arg in _flat_ctor(child):
                vals = [_flat_ctor(m.children[cname]).get(arg) for m in cls.instances]
                slots.append((f"{cname}_{arg}" if not cname[0].isdigit() else f"m{cname}_{arg}", f"child:{cname}:{arg}", vals))
        varying = {s for s, _, vals in slots if any(v != vals[0] for v in vals)}
        cls.ctor_params = [s for s, _, _ in slots if s in varying]
        for m in cls.instances:
            m.ctor = {s: vals[cls.instances.index(m)] for s, _, vals in slots if s in varying}
        lines = []
        for pname, (shape, dt) in first.params.items():
            slot = f"{pname}_shape"
            shape_code = slot if slot in varying else repr(tuple(shape))
            dtcode = "" if dt == "float32" else f", dtype=mx.{dtypes.MX[dt]}"
            lines.append(f"{attr_code('self', pname, set())} = mx.zeros({shape_code}{dtcode})")
        for cname, child in first.children.items():
            if not self._emitted(child):
                continue
            expr = self._child_ctor_expr(child, cname, varying)
            lines.append(f"{attr_code('self', cname, set())} = {expr}")
        cls.init_lines = lines

    def _child_ctor_expr(self, child: ModNode, cname: str, varying: set) -> str:
        flat = _flat_ctor(child)
        pref = f"{cname}_" if not cname[0].isdigit() else f"m{cname}_"
        if child.is_list:
            if any(pref + k in varying for k in flat):
                return self._list_expr(child, lambda k, v: pref + k if pref + k in varying else repr(v))
            return self._child_expr(child)
        args = ", ".join(f"{k}={pref + k if pref + k in varying else repr(v)}" for k, v in child.ctor.items())
        return f"{child.cls.name}({args})"

    def _list_expr(self, lst: ModNode, fmt) -> str:
        parts = []
        for idx, c in sorted(lst.children.items(), key=lambda kv: int(kv[0])):
            if c.is_list:
                parts.append(self._list_expr(c, lambda k, v, idx=idx: fmt(f"{idx}_{k}", v)))
            else:
                parts.append(f"{c.cls.name}(" + ", ".join(f"{k}={fmt(f'{idx}_{k}', v)}" for k, v in c.ctor.items()) + ")")
        return "[" + ", ".join(parts) + "]"

    # -- the file -----------------------------------------------------------------------------------
    def render(self) -> str:
        built = self.build()
        code = "\n".join(line for c in built["classes"] if c.body for line in c.body[1] + (c.body[2],))
        runtime = [v for v in (vendor_runtime(m, code) for m in self.lowered.runtime_modules) if v]
        ins = [{"name": i.name, "shape": list(i.type.shape), "dtype": i.type.dtype} for i in self.program.user_inputs
               if i.type is not None]
        return template_env().get_template("model.py.j2").render(
            source=self.source, classes=built["classes"], root=built["root"], root_ctor=built["root_ctor"],
            runtime=runtime, inputs=repr(ins), tied=repr(dict(sorted(self.program.aliases.items()))), out_spec=json.dumps(self.program.out_spec),
        )


def _flat_ctor(m: ModNode) -> dict:
    if m.is_list:
        out = {}
        for idx, c in m.children.items():
            for k, v in _flat_ctor(c).items():
                out[f"{idx}_{k}"] = v
        return out
    return dict(m.ctor)


def _kwargs(d: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in d.items())


def _runtime_defs(name: str) -> tuple[str, list[tuple[str, str, set]]]:
    """A runtime module's docstring and its top-level definitions: (name, source, names it uses)."""
    import ast

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
    return {d[0] for m in modules for d in _runtime_defs(m)[1]}


def _names_used(code: str) -> set[str]:
    """Names the generated code reads (not attributes such as `mx.pad`, not keywords such as `mode=`)."""
    import ast

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
