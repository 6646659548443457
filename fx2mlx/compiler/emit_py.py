"""Emission of the standalone MLX Python module (`model.py`).

Logic lives here; formatting lives in `templates/model.py.j2`. The emitted module mirrors the PyTorch
module tree: one `nn.Module` class per PyTorch module type (instances whose code is the same share a
class), attribute names equal to the state_dict keys, parameters created with their MLX-layout shapes.
This module builds the tree, the forward bodies and the classes, and renders the file; ModuleList
loops are in `emit_loops`, mlx.nn layers in `emit_layers`, the vendored runtime code in `vendor`.
"""
from __future__ import annotations

import builtins
import re
from pathlib import Path

import jinja2

from . import dtypes, ir, signatures
from .emit_layers import builtin_layer, ctor_code
from .emit_loops import LoopFinder, emit_loop
from .lowering import Lowered
from .modtree import (Call, ClassDef, ModNode, attr_code, base_name, build_calls, owns, result_name, size_symbol,
                      value_types)
from .vendor import runtime_names, vendor_runtime
from .weights import weight_shapes

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def template_env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True, undefined=jinja2.StrictUndefined)


class PyEmitter:
    """`model.py` for one lowered program: `PyEmitter(lowered, dtype=..., source=...).render()`."""

    def __init__(self, lowered: Lowered, *, dtype: str | None = None, source: str = "", root_type: str | None = None):
        self.lowered = lowered
        self.program = lowered.program
        self.dtype = dtype
        self.source = source
        self.module_types = {mi.path: mi.type for mi in self.program.modules}
        self.root_type = root_type or self.module_types.get("", "fx2mlx.Model")
        self.weights = weight_shapes(lowered, dtype)
        self.by_input = {i.name: i for i in self.program.inputs}
        self.users = self._users()
        self.weight_names = self.program.weight_names()
        self.types = value_types(self.program)
        self.node_map = self.program.node_map()
        self.labels = self.program.dim_labels()
        self.renamed: dict[str, str] = {}
        self.arg_names: dict[int, list] = {}
        self.reserved = ({"self", "mx", "nn", "math", "json", "Path", "tree_flatten", "load", "INPUTS", "TIED", "RENAMED", "load_weights", "COMPILE", "CompiledForward"}
                         | (set(dir(builtins)) - {"input"}) | runtime_names(lowered.runtime_modules))

    # -- the module tree ----------------------------------------------------------------------------
    def _tree(self, calls: Call) -> ModNode:
        root = ModNode("", self.root_type)
        nodes = {"": root}
        order = {mi.path: i for i, mi in enumerate(self.program.modules)}

        def get(path: str) -> ModNode:
            if path in nodes:
                return nodes[path]
            parent_path, _, name = path.rpartition(".")
            parent = get(parent_path)
            m = ModNode(path, self.module_types.get(path, "fx2mlx.Module"))
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
        self.loops = LoopFinder(self.lowered, {p: nodes[p] for p in self.list_paths}, self.users, self.weight_names)
        self.renamed = _renames(nodes.values())
        return root

    # -- forward bodies -----------------------------------------------------------------------------
    def _users(self) -> dict[str, list[ir.Node]]:
        users: dict[str, list[ir.Node]] = {}
        for n in self.program.nodes:
            for r in n.refs():
                users.setdefault(r.name, []).append(n)
        return users

    def _attr(self, base: str, rel: str, prefix: str = "", lists: bool = True) -> str:
        return attr_code(base, rel, self.list_paths if lists else set(), prefix, self.renamed)

    def _size_label(self, v: str) -> str:
        """A readable name for the dynamic size value `v` (a sym_size.int node)."""
        sym = size_symbol(self.node_map[v], self.types)
        if sym in self.labels:
            return self.labels[sym]
        for i in self.program.user_inputs:
            if isinstance(i.type, ir.TensorType) and sym in i.type.shape:
                axis = i.type.shape.index(sym)
                if axis == 0 and i.type.rank >= 2:
                    return "batch"
                if axis == 1 and i.type.rank in (2, 3):
                    return "seq"
                return f"{i.name}_dim{axis}"
        return "size"

    def render_body(self, call: Call, is_root: bool) -> tuple:
        names: dict[str, str] = {}
        used: set[str] = set(self.reserved)

        def fresh(base: str) -> str:
            base = re.sub(r"\W", "_", base)
            if not base.isidentifier():  # empty, or starts with a digit
                base = f"v_{base}"
            name, k = base, 1
            while name in used:
                name, k = f"{base}_{k}", k + 1
            used.add(name)
            return name

        args = []
        proposed = self.arg_names.get(id(call)) or [None] * len(call.inputs)
        for v, want in zip(call.inputs, proposed):
            inp = self.by_input.get(v)
            if (is_root or (inp is not None and inp.type is None)) and inp is not None and inp.kind == "user":
                names[v] = fresh(v)  # (a non-tensor user input, e.g. a KV cache, keeps its name everywhere)
            elif inp is not None and inp.kind != "user":
                names[v] = fresh(inp.target.rsplit(".", 1)[-1].lstrip("_") or "w")
            elif want:
                names[v] = fresh(want)
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
                        return self._attr("self", rel, call.path)
            raise KeyError(f"value {v} is not visible in {call.path or '<root>'}")

        lines = []
        by_tensor: dict[str, list] = {}  # dynamic sizes read from a tensor input
        for v, (t, axis) in call.derived.items():
            names[v] = fresh(self._size_label(v))
            by_tensor.setdefault(t, []).append((names[v], axis))
        for t, sizes in by_tensor.items():
            lhs = ", ".join(n for n, _ in sizes)
            rhs = ", ".join(f"{namer(t)}.shape[{a}]" for _, a in sizes)
            lines.append(f"{lhs} = {rhs}")
        if is_root and self.dtype:  # a float16/bfloat16 model computes in that dtype: cast float inputs
            for i in self.program.user_inputs:
                if isinstance(i.type, ir.TensorType) and dtypes.is_float(i.type.dtype) and i.type.dtype != self.dtype:
                    lines.append(f"{names[i.name]} = {names[i.name]}.astype(mx.{dtypes.MX[self.dtype]})")
        items = call.items
        skip: set[str] = set()
        loops = self.loops.find(call, is_root)
        prefer = {}  # a value a loop carries: named after the members' argument (`hidden_states`)
        for loop in loops.values():
            first = loop.calls[0]
            want = (self.arg_names.get(id(first)) or [None] * len(first.inputs))[loop.chain]
            if loop.reuse and want:
                prefer[first.inputs[loop.chain]] = want
        idx = 0
        while idx < len(items):
            it = items[idx]
            if idx in loops:
                loop = loops[idx]
                rel = loop.list[len(call.path) + 1:] if call.path else loop.list
                lines += emit_loop(loop, self._attr("self", rel, call.path), names, namer, fresh)
                idx = loop.end
                continue
            idx += 1
            if isinstance(it, Call):
                rel = it.path[len(call.path) + 1:] if call.path else it.path
                outs = [fresh(prefer.get(o) or result_name(rel)) for o in it.outputs]
                for o, nm in zip(it.outputs, outs):
                    names[o] = nm
                callee = self._attr("self", rel, call.path)
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
            sym = size_symbol(n, self.types)
            names[n.name] = fresh(prefer.get(n.name) or (self._size_label(n.name) if sym else base_name(n.name)))
            lines.append(f"{names[n.name]} = {expr}")
        if is_root:
            ret = self._structure(self.program.out_spec, iter(self.program.outputs), namer)
            for target, ref in self._mutations():
                lines.append(f"{self._attr('self', target)} = {namer(ref)}")
        else:
            outs = [namer(o) for o in call.outputs]
            ret = outs[0] if len(outs) == 1 else ", ".join(outs) if outs else "None"
        sizes = {names[v] for v in call.derived} | {names[n.name] for n in items if isinstance(n, ir.Node)
                                                       and n.name in names and size_symbol(n, self.types)}
        lines = _drop_unused(lines, ret, sizes)
        m = re.match(r"^(\w+) = (.*)$", lines[-1]) if lines else None
        if m and m.group(1) == ret:  # `y = f(x); return y` -> `return f(x)`
            lines, ret = lines[:-1], m.group(2)
        return tuple(args), tuple(lines), ret

        lines.append(head)
        lines.append(f"    {h} = {item}({', '.join(args)})")
        names[calls[-1].outputs[0]] = h
        return loop["end"]

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
        proposed = signatures.input_names(self.program, list(calls.walk()))
        for c in calls.walk():  # values of fx2mlx's own ops (KV cache, RoPE) keep their names
            names = proposed.setdefault(id(c), [None] * len(c.inputs))
            for j, v in enumerate(c.inputs):
                n = self.node_map.get(v)
                if names[j] is None and n is not None and n.target.startswith("fx2mlx."):
                    names[j] = base_name(v)
        self.arg_names = _agreed_names(proposed, calls)
        classes: list[ClassDef] = []
        by_key: dict[tuple, ClassDef] = {}
        taken: dict[str, int] = {}
        for m in self._postorder(root):  # children first: a body's loops need its children's classes
            if m.calls:
                bodies = {self.render_body(c, m is root) for c in m.calls}
                if len(bodies) > 1:  # build_calls inlines calls whose structure differs; this is a bug
                    raise AssertionError(f"module {m.path} is called several times with different code")
                m.body = next(iter(bodies))
            if m.is_list:
                continue
            builtin = builtin_layer(m)
            if builtin is not None:
                name, ctor, suffix = builtin
                key = ("builtin", name, suffix)
                cls = by_key.get(key) or ClassDef(name, m.type, None, builtin=True, suffix=suffix)
                by_key[key] = cls
                cls.instances.append(m)
                m.cls, m.ctor = cls, ctor
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
        return {"classes": classes, "root": root.cls, "root_ctor": _kwargs(root.ctor)}

    def _struct(self, m: ModNode):
        """What a child contributes to its parent's class identity: its class, or a list's item classes."""
        if m.is_list:
            return ("list",) + tuple(self._struct(c) for _, c in sorted(m.children.items(), key=lambda kv: int(kv[0])))
        return (m.cls.name, m.cls.suffix) if m.cls else None

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
        return ctor_code(c.cls, [(k, repr(v)) for k, v in c.ctor.items()])

    def _constructor(self, cls: ClassDef) -> None:
        """Literal slots that differ between instances become constructor arguments."""
        slots: list[tuple[str, list]] = []  # (slot name, values per instance)
        first = cls.instances[0]
        for pname in first.params:
            slots.append((f"{pname}_shape", [m.params[pname][0] for m in cls.instances]))
        for cname, child in first.children.items():
            if not self._emitted(child):
                continue
            for arg in _flat_ctor(child):
                vals = [_flat_ctor(m.children[cname]).get(arg) for m in cls.instances]
                slots.append((f"{cname}_{arg}" if not cname[0].isdigit() else f"m{cname}_{arg}", vals))
        varying = {s for s, vals in slots if any(v != vals[0] for v in vals)}
        cls.ctor_params = [s for s, _ in slots if s in varying]
        for k, m in enumerate(cls.instances):
            m.ctor = {s: vals[k] for s, vals in slots if s in varying}
        lines = []
        for pname, (shape, dt) in first.params.items():
            slot = f"{pname}_shape"
            shape_code = slot if slot in varying else repr(tuple(shape))
            dtcode = "" if dt == "float32" else f", dtype=mx.{dtypes.MX[dt]}"
            lines.append(f"{self._attr('self', pname, lists=False)} = mx.zeros({shape_code}{dtcode})")
        for cname, child in first.children.items():
            if not self._emitted(child):
                continue
            expr = self._child_ctor_expr(child, cname, varying)
            lines.append(f"{self._attr('self', cname, lists=False)} = {expr}")
        cls.init_lines = lines

    def _child_ctor_expr(self, child: ModNode, cname: str, varying: set) -> str:
        flat = _flat_ctor(child)
        pref = f"{cname}_" if not cname[0].isdigit() else f"m{cname}_"
        if child.is_list:
            if any(pref + k in varying for k in flat):
                return self._list_expr(child, lambda k, v: pref + k if pref + k in varying else repr(v))
            return self._child_expr(child)
        return ctor_code(child.cls, [(k, pref + k if pref + k in varying else repr(v)) for k, v in child.ctor.items()])

    def _list_expr(self, lst: ModNode, fmt) -> str:
        parts = []
        for idx, c in sorted(lst.children.items(), key=lambda kv: int(kv[0])):
            if c.is_list:
                parts.append(self._list_expr(c, lambda k, v, idx=idx: fmt(f"{idx}_{k}", v)))
            else:
                parts.append(ctor_code(c.cls, [(k, fmt(f"{idx}_{k}", v)) for k, v in c.ctor.items()]))
        return "[" + ", ".join(parts) + "]"

    # -- the file -----------------------------------------------------------------------------------
    def render(self) -> str:
        built = self.build()
        code = "\n".join(line for c in built["classes"] if c.body for line in c.body[1] + (c.body[2],))
        runtime = [v for v in (vendor_runtime(m, code) for m in self.lowered.runtime_modules) if v]
        runtime.append(vendor_runtime("checks", "check_inputs(x)"))  # the root checks its inputs
        runtime.append(vendor_runtime("weights", "load_weights(model)"))
        reason = self.compile_reason(code + "\n".join(r["source"] for r in runtime))
        if not reason:
            runtime.append(vendor_runtime("compiled", "CompiledForward(model)"))
        # dynamic sizes by name ("batch", "seq"), static ones as numbers
        ins = [{"name": i.name, "shape": [self.labels.get(d, d) if isinstance(d, str) else d for d in i.type.shape],
                "dtype": i.type.dtype} for i in self.program.user_inputs if i.type is not None]
        return template_env().get_template("model.py.j2").render(
            source=self.source, classes=built["classes"], root=built["root"], root_ctor=built["root_ctor"],
            runtime=runtime, inputs=repr(ins), tied=repr(dict(sorted(self.program.aliases.items()))),
            renamed=repr(dict(sorted(self.renamed.items()))) if self.renamed else "",
            dims=repr({d.label: (d.min, d.max) for d in self.program.dims}),
            compile_reason=reason,
        )

    def compile_reason(self, code: str) -> str:
        """Why `load()` must not put this graph under mx.compile ("" when it may), decided from the emitted
        code: mx.compile would freeze the random keys of a graph that draws random numbers (as the C++
        target decides, cpp/emit.py `draws_random`), and cannot trace the Python objects of a stateful
        input such as a causal LM's KV cache (its generation loop runs eagerly). A graph that evaluates
        arrays for data-dependent sizes is caught when it is first traced (runtime/compiled.py)."""
        if "mx.random." in code:
            return "it draws random numbers: mx.compile would freeze the keys"
        if any(i.type is None for i in self.program.user_inputs):
            return "its KV cache is a Python object, which mx.compile cannot trace"
        return ""


def _drop_unused(lines: list, ret: str, names: set) -> list:
    """Drop `a, b = x.shape[i], x.shape[j]` lines (no side effects) whose names nothing reads."""
    out = list(lines)
    for k in range(len(out) - 1, -1, -1):
        m = re.match(r"^([\w, ]+) = (.*)$", out[k])
        lhs = [x.strip() for x in m.group(1).split(",")] if m else []
        if not lhs or not set(lhs) <= names:
            continue
        rest = "\n".join(out[k + 1:] + [ret])
        if not any(re.search(rf"\b{re.escape(x)}\b", rest) for x in lhs):
            del out[k]
    return out



def _renames(nodes) -> dict[str, str]:
    """Attribute names for state_dict name parts that start with `_` (MLX's `parameters()` skips
    those): the name without its leading underscores, unique among its siblings everywhere."""
    siblings = [set(m.children) | set(m.params) for m in nodes]
    parts = sorted({k for names in siblings for k in names if k.startswith("_")})
    taken = {k for names in siblings for k in names}
    out = {}
    for part in parts:
        new = part.lstrip("_") or "m"
        new = new if new.isidentifier() else f"m{new}"
        while new in taken or new in out.values():
            new += "_"
        out[part] = new
    return out


def _agreed_names(proposed: dict[int, list], root: Call) -> dict[int, list]:
    """Argument names every call of a module type (with that many inputs) agrees on; others None, so
    that instances of one class keep one `__call__`."""
    groups: dict[tuple, list] = {}
    for c in root.walk():
        groups.setdefault((c.type, len(c.inputs)), []).append(c)
    out = {}
    for cs in groups.values():
        names = []
        for j in range(len(cs[0].inputs)):
            got = {(proposed.get(id(c)) or [None] * len(c.inputs))[j] for c in cs}
            names.append(got.pop() if len(got) == 1 else None)
        if len(set(n for n in names if n)) != len([n for n in names if n]):
            names = [None] * len(names)
        for c in cs:
            out[id(c)] = names
    return out


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


