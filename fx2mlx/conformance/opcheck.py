"""Differential checks of single ops: PyTorch eager vs. the MLX code fx2mlx emits for them.

The op tests (tests/ops) and the OpInfo sweep (`fx2mlx.conformance.opinfo`) both use this. Many calls are checked
with one export: `check_calls` wraps every call in one module, captures it once, then lowers each
call's slice of the graph on its own (so one unsupported op fails only its own call), emits the
passing ones together and compares every output with PyTorch's.

Result of each call: `Result(status, reason, ops, max_err)` with status one of
  pass       every output has PyTorch's shape, dtype and values (within tolerance)
  fail       fx2mlx lowered it but the result differs, or running it raised
  unsupported  lowering refused (an op with no mapping, a `requires` condition, a failed type check)
  export     torch.export could not capture the call (not counted against fx2mlx)
  skip       PyTorch eager itself raised, or the call returns no tensors
"""
from __future__ import annotations

import contextlib
import functools
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch.utils import _pytree as pytree

from .compare import _dtname, compare_half, compare_values, mx_to_numpy, op_tolerance


@dataclass
class Call:
    """One op call to check: `fn(*args, **kwargs)`; tensors anywhere in args/kwargs become inputs."""

    name: str
    fn: Callable
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    tol: tuple[float, float] | None = None  # (atol, rtol) replacing `compare.op_tolerance`
    compare: str = "values"  # "values" | "normwise" (rtol relative to max |ref|) | "shape" (shape and dtype only)
    check: Callable | None = None  # extra predicate on (torch outputs, mlx outputs as numpy) -> str|None


@dataclass
class Result:
    name: str
    status: str
    reason: str = ""
    ops: tuple[str, ...] = ()  # ATen overloads in the call's graph (after fx2mlx's passes)
    max_err: float = 0.0

    def as_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "reason": self.reason, "ops": list(self.ops),
                "max_err": self.max_err}


# --------------------------------------------------------------------------------------------------
# Fast capture: torch.export's decomposition step re-collects every CompositeImplicitAutograd op on
# each call (~0.3 s). In a checking process no ops get registered between calls, so cache it.
# --------------------------------------------------------------------------------------------------
_CIA_CACHE: dict = {}


@contextlib.contextmanager
def _speed_up_export():
    """Within a checking call only (restored after, so nothing leaks into other code in the process)."""
    import torch.export.decomp_utils as du
    import torch.export.exported_program as epm

    orig_du, orig_epm = du._collect_all_valid_cia_ops, epm._collect_all_valid_cia_ops
    orig_traces = torch.fx.config.do_not_emit_stack_traces
    if "ops" not in _CIA_CACHE:
        _CIA_CACHE["ops"] = orig_du()

    def cached():
        return _CIA_CACHE["ops"]

    du._collect_all_valid_cia_ops = epm._collect_all_valid_cia_ops = cached
    torch.fx.config.do_not_emit_stack_traces = True  # source lines are not needed here (~25% of export time)
    try:
        yield
    finally:
        du._collect_all_valid_cia_ops, epm._collect_all_valid_cia_ops = orig_du, orig_epm
        torch.fx.config.do_not_emit_stack_traces = orig_traces


@functools.lru_cache(maxsize=None)
def _decomp_table_keys():
    from fx2mlx.compiler.capture import composite_ops_to_keep

    table = torch.export.default_decompositions()
    for op in composite_ops_to_keep():
        table.pop(op, None)
    return table


def _export(module: torch.nn.Module, args: tuple):
    """capture.export without its per-call overhead (same result)."""
    with _speed_up_export(), torch.no_grad():
        ep = torch.export.export(module, args, {}, strict=False)
        return ep.run_decompositions(_decomp_table_keys().copy())


# --------------------------------------------------------------------------------------------------
# torch <-> mlx values
# --------------------------------------------------------------------------------------------------
def to_mx(t: torch.Tensor):
    import mlx.core as mx

    from fx2mlx.compiler import dtypes
    from fx2mlx.compiler.weights import from_numpy, to_numpy

    name = str(t.dtype).replace("torch.", "")
    t = t.detach().cpu().resolve_conj().resolve_neg()
    a = from_numpy(to_numpy(t))  # (bfloat16 through float32)
    want = getattr(mx, dtypes.MX[name]) if name in dtypes.MX else a.dtype
    return a if a.dtype == want else a.astype(want)


# --------------------------------------------------------------------------------------------------
# One module for many calls
# --------------------------------------------------------------------------------------------------
def _tensor_leaves(out) -> list:
    return [t for t in pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]


class _Batch(torch.nn.Module):
    """forward(*tensors) runs every call on its slice of the inputs and returns all output tensors."""

    def __init__(self, calls: list[Call]):
        super().__init__()
        self.calls = calls
        self.specs = []
        self.inputs: list[torch.Tensor] = []
        self.slices = []
        for c in calls:
            leaves, spec = pytree.tree_flatten((tuple(c.args), dict(c.kwargs)))
            idx = [i for i, v in enumerate(leaves) if isinstance(v, torch.Tensor)]
            start = len(self.inputs)
            self.inputs.extend(leaves[i] for i in idx)
            self.specs.append((leaves, spec, idx))
            self.slices.append((start, len(self.inputs)))

    def forward(self, *tensors):
        outs = []
        for c, (leaves, spec, idx), (a, b) in zip(self.calls, self.specs, self.slices):
            leaves = list(leaves)
            for i, t in zip(idx, tensors[a:b]):
                leaves[i] = t.clone()  # ops that write into an input write into a copy
            args, kwargs = pytree.tree_unflatten(leaves, spec)
            outs.extend(_tensor_leaves(c.fn(*args, **kwargs)))
        return tuple(outs)


def _clone_inputs(c: Call) -> tuple[tuple, dict]:
    return pytree.tree_map(lambda v: v.clone() if isinstance(v, torch.Tensor) else v, (tuple(c.args), dict(c.kwargs)))


def eager(c: Call):
    """PyTorch's outputs of a call (tensor leaves), or raises."""
    args, kwargs = _clone_inputs(c)
    with torch.no_grad():
        return _tensor_leaves(c.fn(*args, **kwargs))


def _first_line(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    msg = s[0] if s else ""
    return f"{type(e).__name__}: {msg}"[:300]


def _unsupported_reason(e) -> str:
    from fx2mlx.compiler.errors import UnsupportedOpsError

    if isinstance(e, UnsupportedOpsError) and e.ops and "count" in e.ops[0]:
        return "no lowering for " + ", ".join(o["op"] for o in e.ops)
    text = str(e)
    if "cannot lower:" in text:
        return "requires: " + text.split("cannot lower:", 1)[1].strip().splitlines()[0][:300]
    return _first_line(e)


def _subprogram(program, outputs: list):
    """The part of `program` that computes `outputs` (a flat tuple)."""
    from dataclasses import replace

    from fx2mlx.compiler.passes import eliminate_dead_code

    spec = {"kind": "tuple", "children": [{"kind": "leaf"}] * len(outputs)}
    p = replace(program, outputs=tuple(outputs), out_spec=spec)
    return eliminate_dead_code(p)


def _ops_of(program) -> tuple[str, ...]:
    return tuple(sorted({n.target for n in program.nodes}))


def _emit_and_load(lowered, weights: dict):
    """model.py (+ weights) into a temporary folder, imported; returns the loaded model."""
    import mlx.core as mx

    from fx2mlx.api import load_module
    from fx2mlx.compiler.emit_py import PyEmitter
    from fx2mlx.compiler.weights import mlx_weights

    code = PyEmitter(lowered, source="fx2mlx.conformance.opcheck").render()
    tmp = Path(tempfile.mkdtemp(prefix="fx2mlx-opcheck-"))
    (tmp / "model.py").write_text(code)
    mx.save_safetensors(str(tmp / "weights.safetensors"), mlx_weights(lowered, weights))
    mod = load_module(tmp / "model.py")
    return mod.load(tmp, compile=False), code, tmp  # the lowering itself, not mx.compile's fusion


def eager32(c: Call):
    """The call with its float16/bfloat16 tensors upcast to float32 (PyTorch's float32 result for the
    same half-precision values), or None when that does not run."""
    def up(v):
        return v.float() if isinstance(v, torch.Tensor) and v.dtype in (torch.float16, torch.bfloat16) else v

    args, kwargs = pytree.tree_map(up, _clone_inputs(c))
    try:
        with torch.no_grad():
            return _tensor_leaves(c.fn(*args, **kwargs))
    except Exception:  # noqa: BLE001
        return None


# call id -> PyTorch's outputs on float32-upcast inputs, for calls with float16/bfloat16 results
_REFS32: dict[int, list | None] = {}


def references(calls: list[Call]) -> tuple[dict[int, Result], dict[int, list], list[int]]:
    """PyTorch's outputs of each call: (results of the calls that are skipped, refs by call index, the
    indices of the calls to check). Half-precision calls also get their float32 reference (`_REFS32`,
    removed by `forget_references`)."""
    results: dict[int, Result] = {}
    refs: dict[int, list] = {}
    live = []
    for i, c in enumerate(calls):
        try:
            refs[i] = eager(c)
        except Exception as e:  # noqa: BLE001
            results[i] = Result(c.name, "skip", "PyTorch raised " + _first_line(e))
            continue
        if not refs[i]:
            results[i] = Result(c.name, "skip", "returns no tensors")
            continue
        if any(r.dtype in (torch.float16, torch.bfloat16) for r in refs[i]):
            _REFS32[id(c)] = eager32(c)
        live.append(i)
    return results, refs, live


def forget_references(calls: list[Call]) -> None:
    for c in calls:
        _REFS32.pop(id(c), None)


def check_calls(calls: list[Call], *, chunk: int = 24) -> list[Result]:
    """Check many calls with as few exports as possible (see the module docstring)."""
    results, refs, live = references(calls)
    for k in range(0, len(live), chunk):
        _check_group(calls, live[k:k + chunk], refs, results)
    forget_references(calls)
    return [results[i] for i in range(len(calls))]


def _check_group(calls, idxs: list[int], refs, results) -> None:
    """Export the calls together; a failure before lowering is narrowed down by halving the group."""
    from fx2mlx.compiler.capture import to_ir

    group = [calls[i] for i in idxs]
    batch = _Batch(group)
    n_out = [len(refs[i]) for i in idxs]
    stage = "export"
    try:
        ep = _export(batch, tuple(batch.inputs))
        stage = "capture"  # torch.export succeeded: what fails from here on is fx2mlx's
        program, weights = to_ir(ep, batch, "fx2mlx.conformance.opcheck")
        if len(program.outputs) != sum(n_out):
            raise ValueError(f"the graph has {len(program.outputs)} outputs, the calls {sum(n_out)} tensors")
        if len(program.user_inputs) != len(batch.inputs):
            raise ValueError(f"the graph has {len(program.user_inputs)} inputs, the calls {len(batch.inputs)} tensors")
    except Exception as e:  # noqa: BLE001
        if len(idxs) > 1:
            half = len(idxs) // 2
            _check_group(calls, idxs[:half], refs, results)
            _check_group(calls, idxs[half:], refs, results)
            return
        status = "export" if stage == "export" else "unsupported"
        results[idxs[0]] = Result(group[0].name, status, ("" if stage == "export" else "capture: ") + _first_line(e))
        return
    tensors = {inp.name: t for inp, t in zip(program.user_inputs, batch.inputs)}
    _lower_and_run(calls, idxs, n_out, program, weights, tensors, refs, results)


def _lower_and_run(calls, idxs, n_out, program, weights, tensors, refs, results) -> None:
    from fx2mlx.compiler.lowering import lower
    from fx2mlx.compiler.passes import run_default_passes

    raw = program
    program = run_default_passes(program)

    def split(outs):
        parts, pos = [], 0
        for n in n_out:
            parts.append(list(outs[pos:pos + n]))
            pos += n
        return parts

    per_call, per_call_raw = split(program.outputs), split(raw.outputs)
    ok_outputs, ok_idx, ops_of = [], [], {}
    for i, o, o_raw in zip(idxs, per_call, per_call_raw):
        sub = _subprogram(program, o)
        # the exported graph's ops (before fx2mlx's passes remove clones and aliases) and the lowered ones
        ops_of[i] = tuple(sorted(set(_ops_of(sub)) | set(_ops_of(_subprogram(raw, o_raw)))))
        try:
            lower(sub)
        except Exception as e:  # noqa: BLE001
            results[i] = Result(calls[i].name, "unsupported", _unsupported_reason(e), ops_of[i])
            continue
        ok_idx.append(i)
        ok_outputs.append(o)
    if not ok_idx:
        return
    if len(ok_idx) > 1:
        try:
            _run(calls, ok_idx, ok_outputs, program, weights, tensors, refs, results, ops_of)
            return
        except Exception:  # noqa: BLE001 - attribute the failure call by call
            pass
    for i, o in zip(ok_idx, ok_outputs):
        try:
            _run(calls, [i], [o], program, weights, tensors, refs, results, ops_of)
        except Exception as e:  # noqa: BLE001
            results[i] = Result(calls[i].name, "fail", "running the MLX code raised " + _first_line(e), ops_of[i])


def _run(calls, idxs, outputs, program, weights, tensors, refs, results, ops_of) -> None:
    import shutil

    import mlx.core as mx

    from fx2mlx.compiler.lowering import lower

    flat = [o for os_ in outputs for o in os_]
    sub = _subprogram(program, flat)
    lowered = lower(sub)
    model, code, tmp = _emit_and_load(lowered, weights)
    shutil.rmtree(tmp, ignore_errors=True)
    # every user input is an argument of the generated __call__, in program order
    got = _flat(model(*[to_mx(tensors[inp.name]) for inp in sub.user_inputs]))
    mx.eval([g for g in got if isinstance(g, mx.array)])
    pos = 0
    for i, os_ in zip(idxs, outputs):
        mine = got[pos:pos + len(os_)]
        pos += len(os_)
        results[i] = _judge(calls[i], refs[i], mine, ops_of[i])


def _flat(v) -> list:
    """Graph outputs as a flat list (an op that returns a list, e.g. split, gives several tensors)."""
    if isinstance(v, (tuple, list)):
        return [x for item in v for x in _flat(item)]
    return [v]


def _judge(c: Call, ref: list, got: list, ops) -> Result:
    import mlx.core as mx

    if len(ref) != len(got):
        return Result(c.name, "fail", f"{len(got)} outputs, PyTorch has {len(ref)}", ops)
    worst = 0.0
    for k, (r, g) in enumerate(zip(ref, got)):
        if c.compare == "shape":
            if not isinstance(g, mx.array) or tuple(g.shape) != tuple(r.shape) or _dtname(g) != _dtname(r):
                return Result(c.name, "fail", f"output {k}: shape/dtype {getattr(g, 'shape', None)} "
                                              f"{_dtname(g) if isinstance(g, mx.array) else ''} vs {tuple(r.shape)} {_dtname(r)}", ops)
            continue
        tol = c.tol or op_tolerance(ops, _dtname(r))
        why, err = compare_values(r, g, tol, normwise=c.compare == "normwise")
        if why and r.dtype in (torch.float16, torch.bfloat16) and _REFS32.get(id(c)) is not None \
                and len(_REFS32[id(c)]) == len(ref):
            half_why, err = compare_half(r, _REFS32[id(c)][k], g, tol)
            if half_why is None:
                why = None
            else:
                why = f"{why}; {half_why}"
        worst = max(worst, err if math.isfinite(err) else worst)
        if why:
            return Result(c.name, "fail", f"output {k}: {why}", ops, err)
    if c.check is not None:
        why = c.check(ref, [mx_to_numpy(g) if isinstance(g, mx.array) else g for g in got])
        if why:
            return Result(c.name, "fail", why, ops)
    return Result(c.name, "pass", "", ops, worst)


# --------------------------------------------------------------------------------------------------
# One overload at the IR level (for overloads torch.export never emits: out= variants, stride
# queries on static shapes, the mutating batch norm)
# --------------------------------------------------------------------------------------------------
def check_ir(name: str, overload: str, args: tuple = (), kwargs: dict | None = None, tol=None,
             compare: str = "values") -> Result:
    """Build a one-node program calling `overload` (e.g. 'aten.atan2.out'), compile it and compare
    with the overload run eagerly on the same arguments."""
    import mlx.core as mx

    from fx2mlx.compiler import ir
    from fx2mlx.compiler.capture import _vtype
    from fx2mlx.compiler.lowering import lower

    kwargs = dict(kwargs or {})
    ns, opname, ov = overload.split(".")
    op = getattr(getattr(getattr(torch.ops, ns), opname), ov)
    try:
        a2, k2 = pytree.tree_map(lambda v: v.clone() if isinstance(v, torch.Tensor) else v, (tuple(args), kwargs))
        with torch.no_grad():
            ref = op(*a2, **k2)
    except Exception as e:  # noqa: BLE001
        return Result(name, "skip", "PyTorch raised " + _first_line(e))
    inputs, tensors = [], {}

    def conv(v):
        if isinstance(v, torch.Tensor):
            nm = f"in{len(inputs)}"
            inputs.append(ir.Input(nm, "user", _vtype(v)))
            tensors[nm] = v
            return ir.Ref(nm)
        if isinstance(v, (list, tuple)):
            return tuple(conv(x) for x in v)
        if isinstance(v, torch.dtype):
            return ir.DType(str(v).replace("torch.", ""))
        if isinstance(v, (torch.device, torch.layout, torch.memory_format)):
            return str(v)
        return v

    bound = []
    for i, a in enumerate(op._schema.arguments):
        if i < len(args) and not a.kwarg_only:
            v = args[i]
        elif a.name in kwargs:
            v = kwargs[a.name]
        elif a.has_default_value():
            v = a.default_value
        else:
            v = None
        bound.append((a.name, conv(v)))
    otype = _vtype(ref)
    nodes = [ir.Node("r", overload, tuple(bound), otype)]
    refs_out = list(ref) if isinstance(ref, (tuple, list)) else [ref]
    if isinstance(ref, (tuple, list)):
        for k, t in enumerate(ref):
            nodes.append(ir.Node(f"r_{k}", "operator.getitem.default", (("a", ir.Ref("r")), ("b", k)), _vtype(t)))
        outputs = tuple(ir.Ref(f"r_{k}") for k in range(len(ref)))
    else:
        outputs = (ir.Ref("r"),)
    leaf = {"kind": "leaf"}
    program = ir.Program(tuple(inputs), tuple(nodes), outputs,
                         {"kind": "tuple", "children": [{"kind": "tuple", "children": [leaf] * len(inputs)},
                                                        {"kind": "dict", "keys": [], "children": []}]},
                         {"kind": "tuple", "children": [leaf] * len(outputs)})
    ops = (overload,)
    try:
        lowered = lower(program)
    except Exception as e:  # noqa: BLE001
        return Result(name, "unsupported", _unsupported_reason(e), ops)
    try:
        model, code, tmp = _emit_and_load(lowered, {})
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        got = model(*[to_mx(tensors[i.name]) for i in inputs])
        got = list(got) if isinstance(got, (tuple, list)) else [got]
        mx.eval([g for g in got if isinstance(g, mx.array)])
    except Exception as e:  # noqa: BLE001
        return Result(name, "fail", "running the MLX code raised " + _first_line(e), ops)
    worst = 0.0
    for k, (r, g) in enumerate(zip(refs_out, got)):
        if isinstance(r, torch.Tensor) and compare == "shape":
            if tuple(g.shape) != tuple(r.shape) or _dtname(g) != _dtname(r):
                return Result(name, "fail", f"output {k}: {tuple(g.shape)} {_dtname(g)} vs {tuple(r.shape)} {_dtname(r)}", ops)
        elif isinstance(r, torch.Tensor):
            why, err = compare_values(r, g, tol or op_tolerance(ops, _dtname(r)))
            if why:
                return Result(name, "fail", f"output {k}: {why}", ops, err)
            worst = max(worst, err)
        elif isinstance(r, float) and isinstance(g, (int, float)):
            if not math.isclose(r, g, rel_tol=1e-6, abs_tol=1e-6):
                return Result(name, "fail", f"output {k}: MLX {g!r}, PyTorch {r!r}", ops)
        elif r != g:
            return Result(name, "fail", f"output {k}: MLX {g!r}, PyTorch {r!r}", ops)
    return Result(name, "pass", "", ops, worst)
