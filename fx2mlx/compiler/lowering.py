"""Lowering: every IR node -> an MLX expression.

Order of precedence: hand-written overrides (`overrides.py`), then the YAML tables. Ops with neither
are collected and reported together in one error. Each lowered node is then checked by building it
lazily in MLX on arrays of the example shapes (nothing is computed: MLX is lazy, so shapes and dtypes
come for free): the result's shape must equal PyTorch's, and where MLX's dtype differs from PyTorch's
the emitted code casts it. A wrong lowering fails at compile time, naming its table entry.
"""
from __future__ import annotations

import functools
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

import jinja2

from . import dtypes, ir, layouts
from .errors import LoweringError, UnsupportedOpsError
from .forms import HELPERS, Out, V, cpp_code, mx_dtype, py_code
from .interp import Interpreter
from .optable import OpEntry, default_tables
from .overrides import OVERRIDES, Override

Namer = Callable[[str], str]  # value name -> code in the current scope


@functools.lru_cache(maxsize=None)
def _template(text: str, lang: str) -> jinja2.Template:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, finalize=py_code if lang == "py" else cpp_code,
                             trim_blocks=True, lstrip_blocks=True)
    env.globals.update(HELPERS)
    return env.from_string(text)


# --------------------------------------------------------------------------------------------------
# Lowered program
# --------------------------------------------------------------------------------------------------
@dataclass
class LoweredNode:
    node: ir.Node
    entry: OpEntry | None  # table entry, or None for an override
    override: Override | None
    cast: str | None = None  # torch dtype the result is cast to (MLX's differs)

    @property
    def origin(self) -> str:
        if self.override is not None:
            return f"override {self.override.name} ({self.override.where})"
        return f"table {self.entry.loc}"

    @property
    def runtime(self) -> tuple[str, ...]:
        return self.override.runtime if self.override else self.entry.runtime


@dataclass
class Lowered:
    program: ir.Program
    nodes: dict[str, LoweredNode]
    weight_layouts: dict[str, tuple[str, dict]]  # input name -> (transform, node args) applied at save
    types: dict[str, ir.ValueType] = field(default_factory=dict)

    @property
    def runtime_modules(self) -> list[str]:
        mods = []
        for ln in self.nodes.values():
            for m in ln.runtime:
                if m not in mods:
                    mods.append(m)
        return mods

    def render(self, name: str, namer: Namer, lang: str = "py") -> str:
        ln = self.nodes[name]
        values = self._template_vars(ln.node, namer, lang)
        if ln.override is not None:
            fn = ln.override.py if lang == "py" else ln.override.cpp
            if fn is None:
                raise LoweringError(f"override {ln.override.name} has no {lang} form")
            code = fn(ln.node, values)
        else:
            text = ln.entry.py if lang == "py" else ln.entry.cpp
            if text is None:
                raise LoweringError(f"{ln.node.target} ({ln.entry.loc}) has no {lang} form yet")
            code = _template(text, lang).render(values).strip()
        if ln.cast:
            code = f"({code}).astype({mx_dtype(ln.cast)})" if lang == "py" else \
                f"mx::astype({code}, mx::{dtypes.CPP[ln.cast]})"
        return code

    def _template_vars(self, node: ir.Node, namer: Namer, lang: str = "py") -> dict:
        entry = self.nodes[node.name].entry

        def conv(v, role=None):
            if isinstance(v, ir.Ref):
                code = namer(v.name)
                if role is not None and v.name not in self.weight_layouts:
                    code = layouts.render(role, code, "mx" if lang == "py" else "cpp", node.kwargs)
                return V(code, self.types.get(v.name), v.name)
            if isinstance(v, tuple):
                return [conv(x) for x in v]
            return v

        roles = dict(entry.weights) if entry else {}
        values = {("self_" if k == "self" else k): conv(v, roles.get(k)) for k, v in node.args}
        if entry and entry.promote:
            _promote(values, [("self_" if a == "self" else a) for a in entry.promote], lang)
        if entry and entry.opmath:
            _opmath(values, [("self_" if a == "self" else a) for a in entry.opmath], lang)
        values["out"] = Out(node.type)
        return values


def _opmath(values: dict, names: list[str], lang: str = "py") -> None:
    """float16/bfloat16 tensor arguments -> float32 (the type check casts the result back)."""
    for n in names:
        for i, v in enumerate(values.get(n) if isinstance(values.get(n), list) else [values.get(n)]):
            if isinstance(v, V) and v.is_tensor and v.dtype in ("float16", "bfloat16"):
                code = f"{v.code}.astype(mx.float32)" if lang == "py" else f"mx::astype({v.code}, mx::float32)"
                w = V(code, ir.TensorType(v.shape, "float32"), v.name)
                if isinstance(values[n], list):
                    values[n][i] = w
                else:
                    values[n] = w


def _promote(values: dict, names: list[str], lang: str = "py") -> None:
    tensors = [values[n] for n in names if isinstance(values.get(n), V) and values[n].is_tensor]
    scalars = [values[n] for n in names if not isinstance(values.get(n), V) and values.get(n) is not None]
    dims = [t.dtype for t in tensors if t.rank > 0]
    zero = [t.dtype for t in tensors if t.rank == 0]
    target = dtypes.result_type(dims, zero, scalars)
    for n in names:
        v = values.get(n)
        if isinstance(v, V) and v.is_tensor and v.dtype != target:
            code = f"{v.code}.astype({mx_dtype(target)})" if lang == "py" else \
                f"mx::astype({v.code}, mx::{dtypes.CPP[target]})"
            values[n] = V(code, ir.TensorType(v.shape, target), v.name)


# --------------------------------------------------------------------------------------------------
# The lowering pass
# --------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def lowerable_targets() -> frozenset[str]:
    return frozenset(default_tables()) | frozenset(OVERRIDES)


def lower(program: ir.Program, *, dtype: str | None = None, check: bool = True) -> Lowered:
    _check_dtypes(program)
    tables = default_tables()
    nodes: dict[str, LoweredNode] = {}
    missing: dict[str, list[ir.Node]] = defaultdict(list)
    for n in program.nodes:
        ov = OVERRIDES.get(n.target)
        if ov is not None and ov.matches(n):
            nodes[n.name] = LoweredNode(n, None, ov)
        elif n.target in tables:
            nodes[n.name] = LoweredNode(n, tables[n.target], None)
        else:
            missing[n.target].append(n)
    if missing:
        raise UnsupportedOpsError(*_unsupported_report(missing))
    types = {i.name: i.type for i in program.inputs}
    types.update({n.name: n.type for n in program.nodes})
    lowered = Lowered(program, nodes, _weight_layouts(program, nodes), types)
    _check_requires(lowered)
    if check:
        typecheck(lowered, dtype)
    return lowered


def _dtypes_of(v) -> list[str]:
    """Dtype names in a value type or an argument (nested tuples included)."""
    if isinstance(v, ir.TensorType):
        return [v.dtype]
    if isinstance(v, ir.DType):
        return [v.name]
    if isinstance(v, ir.TupleType):
        return [d for t in v.items for d in _dtypes_of(t)]
    if isinstance(v, (tuple, list)):
        return [d for x in v for d in _dtypes_of(x)]
    return []


def _check_dtypes(program: ir.Program) -> None:
    """Every tensor (and dtype argument) must have an MLX dtype: report the ones that do not, and where."""
    uses: dict[str, list[str]] = defaultdict(list)  # dtype -> the values that have it
    for i in program.inputs:
        for d in _dtypes_of(i.type):
            if d not in dtypes.MX:
                uses[d].append(f"{i.kind} input {i.name}{f' ({i.target})' if i.target else ''}")
    for n in program.nodes:
        for d in sorted({d for d in _dtypes_of(n.type) + [d for _, v in n.args for d in _dtypes_of(v)]}):
            if d not in dtypes.MX:
                code = f": {n.source.code}" if n.source and n.source.code else ""
                uses[d].append(f"{n.target} at {n.source or '<unknown source>'}{code} "
                               f"[module {n.module_path or '<root>'}]")
    if uses:
        lines = []
        for d, where in uses.items():
            lines.append(f"dtype {d} cannot be lowered: {dtypes.missing_reason(d)}; used by")
            lines += [f"    {w}" for w in where[:5]] + ([f"    … ({len(where) - 5} more)"] if len(where) > 5 else [])
        raise LoweringError("\n".join(lines))


def _unsupported_report(missing: dict[str, list[ir.Node]]):
    total = sum(len(v) for v in missing.values())
    lines = [f"{len(missing)} unsupported op(s) ({total} node(s)) — no override or table entry lowers them:"]
    ops = []
    for target, ns in sorted(missing.items(), key=lambda kv: -len(kv[1])):
        lines.append(f"  {target}  ×{len(ns)}")
        seen = set()
        for n in ns:
            where = f"{n.source}" if n.source else "<unknown source>"
            key = (where, n.module_path)
            if key in seen:
                continue
            seen.add(key)
            mod = n.module_path or "<root>"
            typ = n.stack[-1].type_name if n.stack else ""
            code = f": {n.source.code}" if n.source and n.source.code else ""
            lines.append(f"      at {where}{code}  [module {mod}{' (' + typ + ')' if typ else ''}]")
            if len(seen) >= 5:
                lines.append(f"      … ({len(ns) - 5} more)")
                break
        ops.append({"op": target, "count": len(ns),
                    "sources": [str(n.source) if n.source else None for n in ns],
                    "modules": [n.module_path for n in ns]})
    lines.append("Add an entry to fx2mlx/op_mappings/<family>.yaml (or an override) for each; see "
                 "`fx2mlx ops --missing`.")
    return "\n".join(lines), ops


def _weight_layouts(program: ir.Program, nodes: dict[str, LoweredNode]) -> dict[str, tuple[str, dict]]:
    """Parameters whose every use asks for the same layout get it at save time."""
    weight_inputs = {i.name for i in program.weight_inputs}
    roles: dict[str, set] = defaultdict(set)
    args_of: dict[str, dict] = {}
    for ln in nodes.values():
        wroles = dict(ln.entry.weights) if ln.entry else {}
        for k, v in ln.node.args:
            for r in ir.iter_refs(v):
                if r.name in weight_inputs:
                    role = wroles.get(k) if isinstance(v, ir.Ref) else None
                    key = (role, tuple(sorted((a, b) for a, b in ln.node.args if a in ("groups", "transposed"))))
                    roles[r.name].add(key)
                    if role:
                        args_of[r.name] = ln.node.kwargs
    out = {}
    for name, rs in roles.items():
        if len(rs) == 1:
            role, _ = next(iter(rs))
            if role:
                out[name] = (role, {"groups": args_of[name].get("groups", 1),
                                    "transposed": bool(args_of[name].get("transposed", False))})
    return out


def _check_requires(lowered: Lowered) -> None:
    problems = []
    for ln in lowered.nodes.values():
        if not ln.entry or not ln.entry.requires:
            continue
        values = lowered._template_vars(ln.node, lambda n: n)
        for cond, msg in ln.entry.requires:
            ok = _template("{{ 1 if (" + cond + ") else 0 }}", "py").render(values)
            if ok.strip() != "1":
                problems.append(f"{ln.node.target} at {ln.node.source or '?'} [module {ln.node.module_path or '<root>'}]: "
                                f"{msg} ({ln.entry.loc})")
    if problems:
        raise UnsupportedOpsError("these ops are used in a way fx2mlx cannot lower:\n  " + "\n  ".join(problems),
                                  [{"op": p} for p in problems])


# --------------------------------------------------------------------------------------------------
# Lazy shape/dtype check
# --------------------------------------------------------------------------------------------------
def _placeholder(t: ir.ValueType, mx, dtype_map, example_shape=None):
    if isinstance(t, ir.TensorType):
        shape = tuple(example_shape) if example_shape else tuple(d if isinstance(d, int) else 2 for d in t.shape)
        dt = dtype_map.get(t.dtype, t.dtype)
        return mx.zeros(shape, dtype=getattr(mx, dtypes.MX[dt]))
    if isinstance(t, ir.ScalarType):
        return {"int": 2, "float": 1.0, "bool": True}[t.kind]
    return None


def typecheck(lowered: Lowered, dtype: str | None = None, example: dict | None = None) -> None:
    """Build every node lazily in MLX and compare its shape and dtype with PyTorch's."""
    import mlx.core as mx
    import numpy as np

    dtype_map = {"float32": dtype} if dtype and dtype != "float32" else {}
    env: dict[str, Any] = {}
    shapes = dict(lowered.program.example_shapes)  # symbolic dims: example sizes
    sizes = example_sizes(lowered.program)
    for i in lowered.program.inputs:
        t = i.type
        if i.name in lowered.weight_layouts and isinstance(t, ir.TensorType):
            role, args = lowered.weight_layouts[i.name]
            shaped = np.zeros(tuple(d if isinstance(d, int) else 2 for d in t.shape), dtype=np.int8)
            t = ir.TensorType(tuple(layouts.apply(role, shaped, args).shape), t.dtype)
        if example and i.name in example:
            env[i.name] = example[i.name]
        else:
            env[i.name] = _placeholder(t, mx, dtype_map, shapes.get(i.name))
    for ln in lowered.nodes.values():
        ln.cast = None  # set again below where MLX's dtype differs from PyTorch's
    interp = Interpreter.of(lowered)
    for n in lowered.program.nodes:
        ln = lowered.nodes[n.name]
        code = interp.forms[n.name]
        try:
            val = interp.node(n.name, env)
        except Exception as e:
            raise LoweringError(_where(ln) + f": the MLX form failed to build: {type(e).__name__}: {e}\n    code: {code}") from e
        expect = n.type
        if isinstance(expect, ir.TensorType) and isinstance(val, mx.array):
            want = dtype_map.get(expect.dtype, expect.dtype)
            _check_shape(ln, expect, val.shape, code, sizes)
            if _dtname(val.dtype) != want:
                ln.cast = want
                val = val.astype(getattr(mx, dtypes.MX[want]))
        elif isinstance(expect, ir.TupleType) and isinstance(val, (tuple, list)):
            for t, v in zip(expect.items, val):
                if isinstance(t, ir.TensorType) and isinstance(v, mx.array):
                    _check_shape(ln, t, v.shape, code, sizes)
        elif isinstance(expect, ir.TensorType):
            raise LoweringError(_where(ln) + f": expected a tensor, the MLX form gave {type(val).__name__}\n    code: {code}")
        env[n.name] = val


def _dtname(d) -> str:
    s = str(d).replace("mlx.core.", "")
    return "bool" if s == "bool_" else s


def _check_shape(ln: LoweredNode, expect: ir.TensorType, got, code: str, sizes: dict | None = None) -> None:
    """The MLX result's shape against PyTorch's, symbolic sizes evaluated at the example's sizes."""
    want = tuple(_size(d, sizes or {}) for d in expect.shape)
    if len(want) != len(got) or any(a is not None and a != b for a, b in zip(want, got)):
        shown = tuple("?" if a is None else a for a in want)
        sym = f" (symbolically {tuple(expect.shape)})" if not expect.is_static_shape() else ""
        raise LoweringError(_where(ln) + f": MLX result has shape {tuple(got)}, PyTorch's is {shown}{sym}\n    code: {code}")


_SYMPY_FUNCS = {"Max": max, "Min": min, "floor": math.floor, "ceiling": math.ceil, "FloorDiv": lambda a, b: a // b,
                "CleanDiv": lambda a, b: a // b, "Mod": lambda a, b: a % b, "PythonMod": lambda a, b: a % b}


def _size(d, sizes: dict) -> int | None:
    """A dimension at the example's sizes: ints as they are, symbolic expressions evaluated (None if not)."""
    if isinstance(d, int):
        return d
    if d in sizes:
        return sizes[d]
    try:
        v = eval(str(d), {"__builtins__": {}, **_SYMPY_FUNCS}, dict(sizes))  # noqa: S307 - torch's own size expressions
    except Exception:  # noqa: BLE001 - an expression we cannot evaluate is not checked
        return None
    return int(v) if isinstance(v, (int, float)) and float(v).is_integer() else None


def example_sizes(program: ir.Program) -> dict[str, int]:
    """symbol -> its size in the example inputs."""
    out = {}
    for i in program.user_inputs:
        if isinstance(i.type, ir.TensorType):
            for d, n in zip(i.type.shape, program.example_shape(i.name) or ()):
                if isinstance(d, str):
                    out.setdefault(d, int(n))
    return out


def _where(ln: LoweredNode) -> str:
    n = ln.node
    return (f"{n.target} ({ln.origin}) at {n.source or '<unknown source>'} "
            f"[module {n.module_path or '<root>'}]")
