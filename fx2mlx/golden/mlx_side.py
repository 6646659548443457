"""The MLX side: the emitted model of a compiled output, run two ways, every layer's output recorded.

* accumulated: `model(*inputs)` as a user runs it; each generated class's `__call__` is wrapped at class
  level for the duration of the run, and outputs are recorded per module path and call index.
* isolated: each module call is fed PyTorch's values of its inputs (weights it does not own come from
  weights.safetensors) and run alone, so errors do not pile up.

Per value: every IR node evaluated flat from its lowering by the lowering interpreter (`compiler.interp`),
either chained on its own results (accumulated) or fed PyTorch's values (isolated), which names the
exact op inside a diverging layer. No torch here: this module also serves `--offline`.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..compiler import dtypes as dtmod
from ..compiler import ir
from ..compiler.modtree import Call, build_calls
from ..compiler.weights import from_numpy


@dataclass
class CompiledOutput:
    out: Path
    program: ir.Program
    manifest: dict
    root: Call
    model: Any
    weights: dict
    codes: dict[str, str] | None  # node -> its MLX form over `_v[name]` values (None: lowering failed)
    origins: dict[str, str]  # node -> the table entry or override that lowered it
    runtime: list[str]  # fx2mlx.runtime modules the forms call
    lower_error: str | None
    dtype: str  # compile dtype (float32, float16, bfloat16)
    renamed: dict = field(default_factory=dict)  # state_dict name part -> attribute (model.py's RENAMED)

    @property
    def calls(self) -> list[Call]:
        return list(self.root.walk())

    def mlx_dtype(self, torch_dtype: str | None) -> str | None:
        """The dtype the emitted code computes a value of PyTorch dtype `torch_dtype` in."""
        if torch_dtype == "float32" and self.dtype != "float32":
            return self.dtype
        return torch_dtype

    def origin(self, node: ir.Node) -> str | None:
        return self.origins.get(node.name) or self.manifest.get("ops", {}).get(node.target)

    def lowering_record(self) -> dict:
        """What --offline needs to evaluate nodes without the op tables (whose loading imports torch)."""
        return {"codes": self.codes, "origins": self.origins, "runtime": self.runtime}


def root_type(program: ir.Program) -> str:
    return next((m.type for m in program.modules if m.path == ""), "fx2mlx.Model")


def open_output(out: Path, lowering: dict | None = None, info: dict | None = None) -> CompiledOutput:
    """Load one compiled graph (its folder, and `info`: its manifest entry plus the program's dtype and
    source). Node forms come from lowering its ir.json again, or from `lowering` (as stored with the
    golden tensors by `CompiledOutput.lowering_record`)."""
    import mlx.core as mx

    from ..api import load_graph, load_module

    out = Path(out)
    for f in ("model.py", "weights.safetensors", "ir.json"):
        if not (out / f).is_file():
            from .errors import GoldenError

            raise GoldenError(f"{out} is not a compiled fx2mlx graph: {f} is missing")
    try:
        program = ir.Program.from_json((out / "ir.json").read_text())
    except (ValueError, KeyError, TypeError) as e:
        from .errors import GoldenError

        raise GoldenError(f"{out / 'ir.json'} cannot be read ({type(e).__name__}: {e}); recompile") from None
    manifest = info or {}
    dtype = manifest.get("dtype") or "float32"
    root = build_calls(program, root_type(program))
    module, model = load_graph(out, compile=False)  # uncompiled: the harness wraps classes' __call__
    renamed = dict(getattr(module, "RENAMED", {}) or {})  # state_dict name part -> attribute
    weights = mx.load(str(out / "weights.safetensors"))
    if lowering is not None and lowering.get("codes") is not None:
        return CompiledOutput(out, program, manifest, root, model, weights, lowering["codes"],
                              lowering.get("origins") or {}, lowering.get("runtime") or [], None, dtype, renamed)
    codes, origins, runtime, err = None, {}, list(manifest.get("runtime") or []), None
    try:
        from ..compiler.interp import Interpreter
        from ..compiler.lowering import lower

        lowered = lower(program, dtype=None if dtype == "float32" else dtype)
        codes = Interpreter.of(lowered).forms
        origins = {k: ln.origin for k, ln in lowered.nodes.items()}
        runtime = lowered.runtime_modules
    except Exception as e:  # noqa: BLE001 - tables changed since compile: per-value checks are skipped
        err = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return CompiledOutput(out, program, manifest, root, model, weights, codes, origins, runtime, err, dtype, renamed)


# --------------------------------------------------------------------------------------------------
# host <-> MLX
# --------------------------------------------------------------------------------------------------
def dtype_name(d) -> str:
    s = str(d).replace("mlx.core.", "")
    return "bool" if s == "bool_" else s


def to_host(v: Any) -> tuple[Any, Any]:
    """An MLX result -> (numpy / Python scalar / tuple, dtype name(s))."""
    import mlx.core as mx

    if isinstance(v, mx.array):
        dt = dtype_name(v.dtype)
        if dt == "bfloat16":
            v = v.astype(mx.float32)
        return np.array(v), dt
    if isinstance(v, (list, tuple)):
        items = [to_host(x) for x in v]
        return tuple(i[0] for i in items), tuple(i[1] for i in items)
    if isinstance(v, (bool, int, float)):
        return v, None
    return v, None


def feeder(c: CompiledOutput, expected: dict[str, Any], torch_dtypes: dict[str, Any],
           fallback: dict[str, Any] | None = None) -> Callable[[str], Any]:
    """IR value name -> the MLX value fed in isolated mode: weights from weights.safetensors (in MLX
    layout, as the emitted code expects them), everything else PyTorch's value in the compute dtype.
    A value PyTorch has no name for (a pseudo-op's output, e.g. a KV-cache entry or offset) is taken from
    `fallback` (the MLX accumulated values); a non-tensor user input without one (the KV cache) is None."""
    import mlx.core as mx

    by_input = {i.name: i for i in c.program.inputs}
    cache: dict[str, Any] = {}

    def conv(v, dt):
        if isinstance(v, np.ndarray):
            a = from_numpy(v)
            want = c.mlx_dtype(dt) or dtype_name(a.dtype)
            if dtype_name(a.dtype) != want and want in dtmod.MX:
                a = a.astype(getattr(mx, dtmod.MX[want]))
            return a
        if isinstance(v, tuple):
            dts = dt if isinstance(dt, tuple) else (None,) * len(v)
            return tuple(conv(x, d) for x, d in zip(v, dts))
        return v

    def feed(name: str) -> Any:
        if name in cache:
            return cache[name]
        inp = by_input.get(name)
        if inp is not None and inp.kind != "user":
            val = c.weights[inp.target]
        elif name in expected:
            val = conv(expected[name], torch_dtypes.get(name))
        elif inp is not None and inp.type is None:
            val = None  # a non-tensor input (the KV cache): the plain forward
        elif fallback is not None and name in fallback and not isinstance(fallback[name], str):
            return fallback[name]  # not cached: the fallback may be filled later
        else:
            why = f" ({fallback[name]})" if fallback is not None and isinstance(fallback.get(name), str) else ""
            raise KeyError(f"no PyTorch value for {name}{why}")
        cache[name] = val
        return val

    return feed


def _eval(v):
    import mlx.core as mx

    arrays = [x for x in (v if isinstance(v, (list, tuple)) else [v]) if isinstance(x, mx.array)]
    if arrays:
        mx.eval(*arrays)
    return v


def _err(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


# --------------------------------------------------------------------------------------------------
# layers
# --------------------------------------------------------------------------------------------------
def _outputs_list(call: Call, result) -> list:
    if len(call.outputs) == 1:
        return [result]
    return list(result) if isinstance(result, (list, tuple)) else [result]


def _modules_by_path(model, renamed: dict | None = None) -> dict[str, Any]:
    """PyTorch module path -> the emitted module (attributes renamed from `_x` map back to their path)."""
    back = {v: k for k, v in (renamed or {}).items()}
    return {".".join(back.get(part, part) for part in p.split(".")) if p else p: m for p, m in model.named_modules()}


def run_layers_accumulated(c: CompiledOutput, inputs: list) -> tuple[dict[str, Any], Any]:
    """Run the emitted model once on `inputs`. -> (call key -> list of outputs or an error string,
    the model's return value or an error string)."""
    mods = _modules_by_path(c.model, c.renamed)
    path_of = {id(m): p for p, m in mods.items()}
    by_path: dict[str, list[Call]] = defaultdict(list)
    for call in c.calls:
        by_path[call.path].append(call)
    classes = {type(mods[p]) for p in by_path if p in mods}
    recorded: dict[str, list] = defaultdict(list)
    active: set[int] = set()
    saved = {}

    def wrap(cls):
        orig = cls.__dict__["__call__"]

        def __call__(self, *args, **kwargs):
            if id(self) in active:  # a subclass calling super().__call__: record the outer call only
                return orig(self, *args, **kwargs)
            active.add(id(self))
            try:
                result = orig(self, *args, **kwargs)
            finally:
                active.discard(id(self))
            p = path_of.get(id(self))
            if p is not None:
                recorded[p].append(_eval(result))
            return result

        return orig, __call__

    for cls in classes:
        if "__call__" in cls.__dict__:
            saved[cls], new = wrap(cls)
            cls.__call__ = new
    try:
        try:
            result = _eval_tree(c.model(*inputs))
        except Exception as e:  # noqa: BLE001 - reported per layer
            result = _err(e)
    finally:
        for cls, orig in saved.items():
            cls.__call__ = orig
    out: dict[str, Any] = {}
    for p, calls in by_path.items():
        got = recorded.get(p, [])
        for i, call in enumerate(calls):
            if not call.outputs:
                continue
            if i < len(got):
                out[call.key] = _outputs_list(call, got[i])
            else:
                why = result if isinstance(result, str) else f"module {p or '<root>'} was called {len(got)} time(s)"
                out[call.key] = f"not reached ({why})"
    return out, result


def _eval_tree(v):
    import mlx.core as mx

    if isinstance(v, mx.array):
        mx.eval(v)
    elif isinstance(v, dict):
        for x in v.values():
            _eval_tree(x)
    elif isinstance(v, (list, tuple)):
        for x in v:
            _eval_tree(x)
    return v


def flatten_output(spec: dict, value) -> list:
    """The model's return value -> flat leaves in the order of program.outputs (the out_spec)."""
    kind = spec["kind"]
    if kind == "leaf":
        return [value]
    if kind == "none":
        return []
    children = spec.get("children", [])
    if kind == "dict":
        items = [value[k] for k in spec["keys"]] if isinstance(value, dict) else list(value)
    else:
        items = list(value)
    return [x for ch, v in zip(children, items) for x in flatten_output(ch, v)]


def run_layers_isolated(c: CompiledOutput, feed: Callable[[str], Any]) -> dict[str, Any]:
    """Each module call alone, fed PyTorch's inputs. -> call key -> list of outputs or an error string."""
    mods = _modules_by_path(c.model, c.renamed)
    out: dict[str, Any] = {}
    for call in c.calls:
        if not call.outputs:
            continue
        m = mods.get(call.path)
        if m is None:
            out[call.key] = f"error: no module {call.path} in the emitted model"
            continue
        try:
            args = [feed(v) for v in call.inputs]
            out[call.key] = _outputs_list(call, _eval(m(*args)))
        except Exception as e:  # noqa: BLE001
            out[call.key] = _err(e)
    return out


# --------------------------------------------------------------------------------------------------
# values (flat, per IR node)
# --------------------------------------------------------------------------------------------------
def _interpreter(c: CompiledOutput):
    from ..compiler.interp import Interpreter

    return Interpreter(c.codes, c.runtime)


def run_values_accumulated(c: CompiledOutput, inputs: list) -> dict[str, Any]:
    """Every node from its lowering, chained on its own results. -> name -> value or error string."""
    interp = _interpreter(c)
    env: dict[str, Any] = {}
    for i, x in zip(c.program.user_inputs, inputs):
        env[i.name] = x
    for i in c.program.weight_inputs:
        env[i.name] = c.weights[i.target]
    out: dict[str, Any] = {}
    for n in c.program.nodes:
        try:
            val = _eval(interp.node(n.name, env))
        except Exception as e:  # noqa: BLE001
            val = _err(e)
        env[n.name] = val
        out[n.name] = val
    return out


def run_values_isolated(c: CompiledOutput, feed: Callable[[str], Any]) -> dict[str, Any]:
    """Every node alone, its inputs PyTorch's values. -> name -> value or error string."""
    interp = _interpreter(c)
    out: dict[str, Any] = {}
    for n in c.program.nodes:
        try:
            env = {r.name: feed(r.name) for r in n.refs()}
            out[n.name] = _eval(interp.node(n.name, env))
        except Exception as e:  # noqa: BLE001
            out[n.name] = _err(e)
    return out
