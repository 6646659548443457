"""Shapes that follow the inputs: which dimensions of the example inputs torch.export may keep dynamic.

By default every axis of every tensor input is offered to torch.export as `Dim.AUTO`: it stays dynamic
unless the model fixes it (a weight shape, a reshape to a constant, a size-0/1 example). Each axis that
comes out static is recorded with the reason (`ir.StaticDim`), found by watching torch's shape
environment during the export: the size-0/1 specialisation of an example, or the guard that pinned the
symbol to a constant with the user's source line. Dynamic axes become `ir.Dim`s (label, range, the
inputs that share the symbol). Axes the user asks for explicitly (`--dynamic`) are `Dim.DYNAMIC`: a
conflict there is an error that quotes torch's whole report, suggested fixes included.
"""
from __future__ import annotations

import contextlib
import inspect
import logging
import os
import re
import traceback
from dataclasses import dataclass, field
import torch

from . import ir

AUTO = "auto"
STATIC = "static"
_TORCH_DIR = os.path.dirname(torch.__file__)


@dataclass
class ShapeLog:
    """What torch's ShapeEnv did during one export: symbols created per source, and specialisations."""

    created: list[tuple[str, str]] = field(default_factory=list)  # (source name, symbol or constant)
    pinned: dict[str, tuple[int, str | None]] = field(default_factory=dict)  # symbol -> (value, user frame)


@contextlib.contextmanager
def watch_shape_env():
    """Record symbol creation and specialisation (ShapeEnv.create_symbol / _set_replacement) and keep
    torch's own shape logging out of the terminal. Yields a ShapeLog."""
    from torch.fx.experimental import symbolic_shapes as ss

    log = ShapeLog()
    create, replace = getattr(ss.ShapeEnv, "create_symbol", None), getattr(ss.ShapeEnv, "_set_replacement", None)

    def create_symbol(self, val, source, *a, **k):
        r = create(self, val, source, *a, **k)
        try:
            log.created.append((source.name if isinstance(source.name, str) else source.name(), str(r)))
        except Exception:  # noqa: BLE001 - bookkeeping only
            pass
        return r

    def set_replacement(self, a, tgt, msg):
        try:
            if getattr(tgt, "is_number", False) and str(a) not in log.pinned:
                log.pinned[str(a)] = (int(tgt), _user_frame())
        except Exception:  # noqa: BLE001 - bookkeeping only
            pass
        return replace(self, a, tgt, msg)

    loggers = [logging.getLogger(n) for n in ("torch._export.non_strict_utils", "torch.fx.experimental.symbolic_shapes",
                                              "torch._dynamo", "torch.export", "torch._export")]
    levels = [lg.level for lg in loggers]
    patched = create is not None and replace is not None
    if patched:
        ss.ShapeEnv.create_symbol, ss.ShapeEnv._set_replacement = create_symbol, set_replacement
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield log
    finally:
        if patched:
            ss.ShapeEnv.create_symbol, ss.ShapeEnv._set_replacement = create, replace
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


def is_library_file(path: str) -> bool:
    """Code of torch, fx2mlx or Python's own machinery, not the user's: skipped when quoting a source line."""
    p = os.path.abspath(path)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return p.startswith(_TORCH_DIR) or p.startswith(here) or "<frozen" in path or "/contextlib.py" in p


def _user_frame() -> str | None:
    frames = [f for f in traceback.extract_stack()[:-2] if not is_library_file(f.filename)
              and "site-packages/torch" not in f.filename]
    if not frames:
        return None
    f = frames[-1]
    return f"{f.filename}:{f.lineno} in {f.name}" + (f": {f.line.strip()}" if f.line else "")


# --------------------------------------------------------------------------------------------------
# The dynamic_shapes argument
# --------------------------------------------------------------------------------------------------
def input_names(module: torch.nn.Module, args: tuple, kwargs: dict) -> list[str]:
    """Names of the positional arguments (forward's parameters), then the keyword arguments."""
    try:
        params = [p for p in inspect.signature(module.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = [params[i].name if i < len(params) else f"args_{i}" for i in range(len(args))]
    return names + list(kwargs)


def leaves(module, args: tuple, kwargs: dict) -> list[tuple[str, torch.Tensor]]:
    """(source name as torch.export writes it, tensor) for every tensor in the inputs, in flat order."""
    out: list[tuple[str, torch.Tensor]] = []

    def walk(v, path):
        if isinstance(v, torch.Tensor):
            out.append((path, v))
        elif isinstance(v, (list, tuple)):
            for i, x in enumerate(v):
                walk(x, f"{path}[{i}]")
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(x, f"{path}[{k!r}]")

    for name, v in zip(input_names(module, args, kwargs), list(args) + list(kwargs.values())):
        walk(v, f"L[{name!r}]")
    return out


def dynamic_spec(module, args: tuple, kwargs: dict, mode: str = AUTO, explicit: dict | None = None):
    """dynamic_shapes for torch.export: every axis Dim.AUTO (mode "auto") or none (mode "static"), and the
    axes in `explicit` ({source name: {axis, ...}}) Dim.DYNAMIC."""
    explicit = explicit or {}
    Dim = torch.export.Dim

    def spec(v, path):
        if isinstance(v, torch.Tensor):
            want = explicit.get(path, set())
            if mode == STATIC and not want:
                return None
            d = {i: (Dim.DYNAMIC if i in want else Dim.AUTO) for i in range(v.dim()) if mode == AUTO or i in want}
            return d or None
        if isinstance(v, (list, tuple)):
            return [spec(x, f"{path}[{i}]") for i, x in enumerate(v)]
        if isinstance(v, dict):
            return {k: spec(x, f"{path}[{k!r}]") for k, x in v.items()}
        return None

    names = input_names(module, args, kwargs)
    values = list(args) + list(kwargs.values())
    specs = {n: spec(v, f"L[{n!r}]") for n, v in zip(names, values)}
    if all(_empty(s) for s in specs.values()):
        return None
    return specs


def _empty(s) -> bool:
    if s is None:
        return True
    if isinstance(s, (list, tuple)):
        return all(_empty(x) for x in s)
    if isinstance(s, dict) and s and not all(isinstance(k, int) for k in s):
        return all(_empty(x) for x in s.values())
    return False


# --------------------------------------------------------------------------------------------------
# What came out: dims and static dims
# --------------------------------------------------------------------------------------------------
def describe(ep, module, args: tuple, kwargs: dict, user_inputs: list[ir.Input], log: ShapeLog | None,
             mode: str, labels: dict | None = None, note: str | None = None) -> tuple[tuple, tuple]:
    """(dims, static_dims) of an exported program. `labels`: {(input name, axis): label} hints."""
    labels = labels or {}
    sources = [p for p, _ in leaves(module, args, kwargs)]
    created = dict(log.created) if log else {}
    ranges = {str(k): v for k, v in getattr(ep, "range_constraints", {}).items()}
    by_symbol: dict[str, list[tuple[str, int]]] = {}
    static: list[ir.StaticDim] = []
    tensors = [i for i in user_inputs if isinstance(i.type, ir.TensorType)]
    for inp, src in zip(tensors, sources):
        for axis, d in enumerate(inp.type.shape):
            if isinstance(d, str):
                by_symbol.setdefault(d, []).append((inp.name, axis))
            elif mode != STATIC:
                static.append(ir.StaticDim(inp.name, axis, int(d), note or _reason(f"{src}.size()[{axis}]", int(d),
                                                                                 created, log)))
    dims = []
    taken: set[str] = set()
    for sym, axes in by_symbol.items():
        label = next((labels[a] for a in axes if a in labels), None)
        if label is None:
            label = "batch" if all(ax == 0 for _, ax in axes) else f"{axes[0][0]}_dim{axes[0][1]}"
        base, k = label, 1
        while label in taken:
            label, k = f"{base}_{k}", k + 1
        taken.add(label)
        vr = ranges.get(sym)
        lo = int(vr.lower) if vr is not None and _finite(vr.lower) else 0
        lo = 1 if lo == 2 else lo  # torch's default lower bound (it assumes 0/1 are specialised); MLX runs size 1
        hi = int(vr.upper) if vr is not None and _finite(vr.upper) else None
        dims.append(ir.Dim(sym, label, tuple(axes), lo, hi))
    return tuple(dims), tuple(static)


def _finite(v) -> bool:
    return bool(getattr(v, "is_Integer", False)) or isinstance(v, int)


def _reason(source: str, size: int, created: dict, log: ShapeLog | None) -> str:
    if log is None:
        return "kept static"
    sym = created.get(source)
    if sym is None or not re.fullmatch(r"[a-z]+\d+", sym):
        if size in (0, 1):
            return (f"the example has size {size} there, and torch.export specialises sizes 0 and 1; "
                    "give an example of size 2 or more to make it dynamic")
        return "torch.export kept it static"
    value, where = log.pinned.get(sym, (size, None))
    return f"the model fixes it to {value}" + (f" at {where}" if where else " (a weight shape or a guard in the traced code)")


def explicit_axes(dynamic_shapes, module, args, kwargs) -> dict[str, set[int]]:
    """{source name: axes} of a user's dynamic_shapes dict (by input name, as parse_dynamic builds it)."""
    out: dict[str, set[int]] = {}
    if not dynamic_shapes:
        return out
    for name, spec in dynamic_shapes.items():
        if isinstance(spec, dict) and all(isinstance(k, int) for k in spec):
            out[f"L[{name!r}]"] = set(spec)
    return out


def summary(dims: tuple, static: tuple) -> list[str]:
    """Lines for the compile output: the dynamic dims and the axes kept static, with why."""
    lines = []
    if dims:
        lines.append("dynamic: " + ", ".join(
            f"{d.label} ({', '.join(f'{n}[{a}]' for n, a in d.axes)}"
            + (f", {d.min}..{d.max}" if d.max is not None else (f", >= {d.min}" if d.min > 1 else "")) + ")"
            for d in dims))
    for s in static:
        lines.append(f"static: {s.input}[{s.axis}] = {s.size}: {s.reason}")
    return lines

