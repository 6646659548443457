"""Capture: a PyTorch model (factory, Hugging Face directory or in-process module) -> fx2mlx IR.

This is the only module that touches torch.fx. It runs `torch.export.export(strict=False)` (strict as a
fallback), keeps the composite ops that fx2mlx lowers well (every composite op that has a table entry
or an override is removed from the decomposition table), and converts the graph to `ir.Program`.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import re
import sys
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from . import ir
from .errors import CaptureError, SourceError
from .hf import traceable_experts
from .shapes import is_library_file
from .signatures import record_signatures


@dataclass
class Captured:
    """The result of capture: the IR plus the weights it refers to (by input target)."""

    program: ir.Program
    weights: dict[str, torch.Tensor]
    example_inputs: list[torch.Tensor]  # flat user inputs, in program.user_inputs order
    module: torch.nn.Module | None = None
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    description: str = ""
    exported: object = None  # the torch.export ExportedProgram (after decomposition); node names = IR names


# --------------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------------
@dataclass
class Source:
    module: torch.nn.Module
    args: tuple
    kwargs: dict
    description: str  # how to get it again (recorded in the manifest)


@dataclass
class ProgramSource:
    """Several named graphs declared by the user (a factory returning a dict or an fx2mlx.Program)."""

    graphs: dict[str, Source]
    description: str


def load_source(spec: str, inputs: str | None = None, *, allow_pickle: bool = False) -> Source | ProgramSource:
    """Resolve a SOURCE spec: `path/file.py:func`, `pkg.mod:func`, or a Hugging Face model directory
    (pickled checkpoints only with allow_pickle, loaded with torch.load(weights_only=True))."""
    path = Path(spec)
    if path.is_dir():
        from .hf import load_hf_dir

        module, args, kwargs = load_hf_dir(path, allow_pickle=allow_pickle)
        desc = f"hf:{path.resolve()}"
    elif ":" in spec and not path.exists():
        target, func_name = spec.rsplit(":", 1)
        factory = _load_factory(target, func_name, spec)
        try:
            result = factory()
        except Exception as e:  # the user's factory failed: show their traceback line
            loc = _user_frame(e)
            raise SourceError(f"factory {spec!r} raised {type(e).__name__}: {e}" + (f" (at {loc})" if loc else "")) from e
        desc = f"factory:{Path(target).resolve()}:{func_name}" if target.endswith(".py") else f"factory:{spec}"
        if hasattr(result, "to_source") and not isinstance(result, torch.nn.Module):  # e.g. fx2mlx.Stream
            if inputs:
                raise SourceError("--inputs applies to single-graph sources; a program's graphs take their own")
            return result.to_source(desc)
        graphs = result.graphs if hasattr(result, "graphs") and not isinstance(result, torch.nn.Module) else result
        if isinstance(graphs, dict):  # a program: {name: (module, args[, kwargs])}
            if inputs:
                raise SourceError("--inputs applies to single-graph sources; a program's graphs take their own")
            return ProgramSource({name: Source(*_unpack_factory_result(r, f"{spec}[{name!r}]"), f"{desc}#{name}")
                                  for name, r in graphs.items()}, desc)
        module, args, kwargs = _unpack_factory_result(result, spec)
    else:
        raise SourceError(
            f"cannot use SOURCE {spec!r}: expected a Hugging Face model directory (with config.json), "
            "a factory 'path/to/file.py:function' or 'package.module:function'"
            + (" — the path does not exist" if not path.exists() else " — it is a file, not a factory spec"))
    if inputs:
        args, kwargs = _override_inputs(args, kwargs, inputs)
    return Source(module, tuple(args), dict(kwargs), desc)


def _load_factory(target: str, func_name: str, spec: str) -> Callable:
    if target.endswith(".py"):
        file = Path(target)
        if not file.is_file():
            raise SourceError(f"factory file not found: {target} (from SOURCE {spec!r})")
        name = f"_fx2mlx_factory_{abs(hash(str(file.resolve())))}"
        mspec = importlib.util.spec_from_file_location(name, file)
        mod = importlib.util.module_from_spec(mspec)
        sys.modules[name] = mod
        sys.path.insert(0, str(file.resolve().parent))
        try:
            mspec.loader.exec_module(mod)
        except Exception as e:
            raise SourceError(f"importing {target} failed: {type(e).__name__}: {e}") from e
        finally:
            sys.path.pop(0)
    else:
        try:
            mod = importlib.import_module(target)
        except Exception as e:
            raise SourceError(f"cannot import module {target!r} (from SOURCE {spec!r}): {e}") from e
    fn = getattr(mod, func_name, None)
    if fn is None or not callable(fn):
        raise SourceError(f"{target} has no function {func_name!r} (from SOURCE {spec!r})")
    return fn


def _unpack_factory_result(result: Any, spec: str):
    if isinstance(result, torch.nn.Module):
        raise SourceError(f"factory {spec!r} returned only a module; return (module, args) or (module, args, kwargs)")
    if not isinstance(result, (tuple, list)) or len(result) not in (2, 3) or not isinstance(result[0], torch.nn.Module):
        raise SourceError(f"factory {spec!r} must return (module, args), (module, args, kwargs), or a program "
                          f"({{name: (module, args[, kwargs])}} or fx2mlx.Program), got {type(result).__name__}")
    module, args = result[0], result[1]
    kwargs = result[2] if len(result) == 3 else {}
    if isinstance(args, torch.Tensor):
        args = (args,)
    return module, tuple(args), dict(kwargs or {})


def _override_inputs(args, kwargs, file: str):
    """Replace example inputs by the tensors of a safetensors file (keys: input names or input_0...)."""
    from safetensors.torch import load_file

    try:
        tensors = load_file(file)
    except Exception as e:
        raise SourceError(f"cannot read inputs file {file}: {e}") from e
    # input_i replaces the i-th tensor among the positional and then keyword inputs (the order of the
    # compiled model's inputs); other keys replace or add keyword inputs by name.
    args, kwargs = list(args), dict(kwargs)
    slots = [("a", i) for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
    slots += [("k", k) for k, v in kwargs.items() if isinstance(v, torch.Tensor)]
    for i, (where, key) in enumerate(slots):
        t = tensors.pop(f"input_{i}", None)
        if t is not None:
            if where == "a":
                args[key] = t
            else:
                kwargs[key] = t
    kwargs.update(tensors)
    return tuple(args), kwargs


# --------------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------------
def parse_dynamic(specs: list[str] | None, module: torch.nn.Module, args: tuple, kwargs: dict):
    """`NAME:DIM[=LABEL]` specs -> torch.export dynamic_shapes. Dims with the same label share one symbol
    (default label: NAME_DIM). NAME is a forward argument name (positional or keyword)."""
    if not specs:
        return None
    import inspect

    params = list(inspect.signature(module.forward).parameters)
    pos_names = params[: len(args)]
    dims: dict[str, Any] = {}
    shapes: dict[str, dict] = {}
    for spec in specs:
        m = re.fullmatch(r"(\w+):(-?\d+)(?:=(\w+))?", spec.strip())
        if not m:
            raise SourceError(f"bad --dynamic {spec!r}: expected NAME:DIM or NAME:DIM=LABEL (e.g. input_ids:1=seq)")
        name, dim, label = m.group(1), int(m.group(2)), m.group(3) or f"{m.group(1)}_{m.group(2)}"
        if name not in pos_names and name not in kwargs:
            raise SourceError(f"--dynamic {spec!r}: {name!r} is not an input (inputs: {', '.join(pos_names + list(kwargs))})")
        # Dim.DYNAMIC lets torch.export infer the range and the equalities between inputs (a named Dim
        # would have to state them); the label only documents intent.
        value = args[pos_names.index(name)] if name in pos_names else kwargs[name]
        rank = value.dim() if isinstance(value, torch.Tensor) else None
        if rank is None:
            raise SourceError(f"--dynamic {spec!r}: {name!r} is not a tensor input")
        if not -rank <= dim < rank:
            raise SourceError(f"--dynamic {spec!r}: {name!r} has {rank} axes (0..{rank - 1}), not axis {dim}")
        dim = dim % rank
        dims.setdefault(label, torch.export.Dim.DYNAMIC)
        shapes.setdefault(name, {})[dim] = dims[label]
    out: dict[str, Any] = {}
    for i, n in enumerate(pos_names):
        out[n] = shapes.get(n)
    for k in kwargs:
        out[k] = shapes.get(k)
    return out


def composite_ops_to_keep() -> list:
    """Composite ops to keep out of decomposition: those the op tables or overrides lower directly."""
    from .lowering import lowerable_targets

    keep = []
    table = torch.export.default_decompositions()
    for op in list(table.keys()):
        if str(op) in lowerable_targets():
            keep.append(op)
    return keep


def export(module: torch.nn.Module, args: tuple, kwargs: dict, dynamic_shapes=None):
    """torch.export with strict=False (strict=True as fallback), then decompose to our opset."""
    module = module.eval()
    errors = []
    ep = None
    for strict in (False, True):
        try:
            with torch.no_grad(), warnings.catch_warnings(), traceable_experts(module):
                warnings.simplefilter("ignore", FutureWarning)  # torch's own pytree deprecations
                warnings.filterwarnings("ignore", message=".*assigned during export.*")
                ep = torch.export.export(module, tuple(args), dict(kwargs), dynamic_shapes=dynamic_shapes, strict=strict)
            break
        except Exception as e:  # noqa: BLE001 - reported below with the user's line
            errors.append(e)
            if type(e).__name__ in ("UserError", "ConstraintViolationError"):
                break  # the user's dynamic-shape spec: strict mode would fail the same way
    if ep is None:
        raise CaptureError(explain_export_failure(module, errors[0]))
    table = torch.export.default_decompositions()
    for op in composite_ops_to_keep():
        table.pop(op, None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            ep = ep.run_decompositions(table)
    except Exception as e:
        raise CaptureError(f"torch.export captured {type(module).__name__} but decomposing it failed: "
                           f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
    return ep


def explain_export_failure(module: torch.nn.Module, e: Exception) -> str:
    text = str(e)
    if type(e).__name__ in ("UserError", "ConstraintViolationError") or "conflicts between user-specified" in text:
        # a dynamic-shape conflict: torch's report is the useful part (every conflict and its suggested fix)
        body = text.split("\nThe error above occurred when calling torch.export.export")[0].strip()
        return (f"torch.export could not keep the requested dimensions of {type(module).__name__} dynamic:\n"
                + "\n".join("  " + ln for ln in body.splitlines())
                + "\n  Drop those axes from --dynamic (fx2mlx keeps every other axis dynamic where the model "
                  "allows it), or pass --static.")
    loc = _user_frame(e) or _frame_in_message(text)
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(e).__name__)
    msg = (f"torch.export could not capture {type(module).__name__}: {type(e).__name__}: {first}")
    if loc:
        msg += f"\n  at {loc}"
    msg += ("\n  fx2mlx compiles what torch.export can trace into one graph. Common causes: Python control "
            "flow that depends on tensor values (if x.sum() > 0, .item(), .tolist(), data-dependent shapes "
            "such as nonzero or repeat_interleave by a tensor), unsupported Python side effects, or "
            "non-tensor outputs. Rewrite that line with tensor ops (torch.where, masks), move the "
            "data-dependent step out of forward, or split the model into graphs around it.")
    return msg


def _user_frame(e: BaseException) -> str | None:
    frames = traceback.extract_tb(e.__traceback__) if e.__traceback__ else []
    user = [f for f in frames if not is_library_file(f.filename)]
    if not user:
        return None
    f = user[-1]
    return f"{f.filename}:{f.lineno} in {f.name}" + (f": {f.line.strip()}" if f.line else "")


def _frame_in_message(text: str) -> str | None:
    frames = re.findall(r'File "([^"]+)", line (\d+)', text)
    user = [(f, ln) for f, ln in frames if not is_library_file(f)]
    return f"{user[-1][0]}:{user[-1][1]}" if user else None


# --------------------------------------------------------------------------------------------------
# ExportedProgram -> IR
# --------------------------------------------------------------------------------------------------
def capture(module: torch.nn.Module, args: tuple, kwargs: dict | None = None, *, dynamic_shapes=None,
            description: str = "python", shapes: str | None = None, labels: dict | None = None) -> Captured:
    """torch.export -> IR. shapes=None: static except the axes in `dynamic_shapes` (torch.export's
    argument); "auto": every axis dynamic where the model allows it (fx2mlx.compiler.shapes), the axes in
    `dynamic_shapes` required dynamic; "static": every axis at its example size."""
    from dataclasses import replace

    from . import shapes as sh

    kwargs = kwargs or {}
    args = tuple(args)
    log, note, mode = None, None, shapes or sh.STATIC
    if shapes is None:
        spec = dynamic_shapes
    else:
        explicit = sh.explicit_axes(dynamic_shapes, module, args, kwargs)
        spec = sh.dynamic_spec(module, args, kwargs, shapes, explicit)
    with sh.watch_shape_env() as log:
        try:
            ep = export(module, args, kwargs, spec)
        except CaptureError as e:
            if shapes != sh.AUTO or dynamic_shapes or spec is None:
                raise
            # some models trace only at fixed sizes: compile them static and say why
            log, mode = None, sh.AUTO
            ep = export(module, args, kwargs, None)
            note = "kept static: the dynamic capture failed (" + str(e).splitlines()[0][:300] + ")"
    program, weights = to_ir(ep, module, description)
    program = record_signatures(program, module, args, kwargs)  # forward-argument names (readability only)
    dims, static = sh.describe(ep, module, args, kwargs, program.user_inputs, log, mode, labels, note)
    program = replace(program, dims=dims, static_dims=static)
    flat, _ = torch.utils._pytree.tree_flatten((args, dict(kwargs)))
    example = [t for t in flat if isinstance(t, torch.Tensor)]
    return Captured(program, weights, example, module, args, dict(kwargs), description, ep)


_SKIP_TARGETS = {"aten._assert_tensor_metadata.default", "aten._assert_scalar.default",
                 "aten.sym_constrain_range_for_size.default", "aten._assert_async.msg"}


def to_ir(ep, module: torch.nn.Module | None = None, description: str = "") -> tuple[ir.Program, dict]:
    from torch.export.graph_signature import InputKind

    sig = ep.graph_signature
    kinds = {InputKind.USER_INPUT: "user", InputKind.PARAMETER: "parameter", InputKind.BUFFER: "buffer",
             InputKind.CONSTANT_TENSOR: "constant"}
    spec_by_name = {s.arg.name: s for s in sig.input_specs}
    weights: dict[str, torch.Tensor] = {}
    inputs: list[ir.Input] = []
    nodes: list[ir.Node] = []
    consts: dict[str, Any] = {}  # constant (non-tensor) user inputs, substituted into uses
    effects: set[str] = set()  # effect tokens and the effectful checks that use them (dropped)
    outputs: tuple = ()
    mutations: list = []
    # frames of things that are not submodules (e.g. transformers' export hooks) are not module calls
    module_paths = {p for p, _ in module.named_modules(remove_duplicate=False)} if module is not None else None
    example_sizes = {n.name: n.meta["val"].shape for n in ep.graph.nodes if n.op == "placeholder"
                     and isinstance(n.meta.get("val"), torch.Tensor) and spec_by_name[n.name].kind == InputKind.USER_INPUT}
    example_sizes = {k: [d.node.hint if isinstance(d, torch.SymInt) else d for d in v] for k, v in example_sizes.items()}
    state = dict(ep.state_dict)
    state.update(ep.constants)
    for n in ep.graph.nodes:
        if n.op == "placeholder":
            s = spec_by_name[n.name]
            if s.kind == InputKind.TOKEN:  # effect token (ordering of error checks): no value
                effects.add(n.name)
                continue
            if s.kind not in kinds:
                raise CaptureError(f"unsupported graph input kind {s.kind} for {n.name}")
            if s.kind == InputKind.USER_INPUT and not isinstance(n.meta.get("val"), torch.Tensor):
                consts[n.name] = getattr(s.arg, "value", None)
                continue
            target = s.target
            if s.kind != InputKind.USER_INPUT:
                weights[target] = state[s.target].detach()
            inputs.append(ir.Input(n.name, kinds[s.kind], _vtype(n.meta.get("val")), target))
        elif n.op == "call_function":
            target = _target_name(n.target)
            if target in _SKIP_TARGETS:
                continue
            if n.target is torch.ops.higher_order.with_effects:
                # an effectful op ordered by a token, e.g. linalg's singular-matrix check: dropped when it
                # yields nothing but the token (a check); one whose values are used cannot be dropped
                used = [u for u in n.users if u.args[1] != 0 and u.users]
                if used:
                    raise CaptureError(f"effectful op {_target_name(n.args[1])} returns values the graph uses"
                                       f"{_src_suffix(n)}; "
                                       "fx2mlx drops only effectful checks")
                effects.add(n.name)
                continue
            if target == "operator.getitem.default" and getattr(n.args[0], "name", None) in effects:
                effects.add(n.name)
                continue
            args = _bind_args(n, consts)
            nodes.append(ir.Node(n.name, target, args, _vtype(n.meta.get("val")),
                                 _frames(n, module_paths), _source(n.meta.get("stack_trace"))))
        elif n.op == "output":
            outs = list(n.args[0])
            user_outs = []
            out_specs = sig.output_specs
            for o, s in zip(outs, out_specs):
                kind = s.kind.name
                if kind == "USER_OUTPUT":
                    user_outs.append(_arg(o, consts))
                elif kind == "BUFFER_MUTATION":
                    mutations.append((s.target, _arg(o, consts)))
                elif kind == "TOKEN":
                    continue
                else:
                    raise CaptureError(f"unsupported graph output kind {kind} (user input mutation?) in {s}")
            outputs = tuple(user_outs)
        elif n.op == "get_attr":
            raise CaptureError(
                f"the graph uses a sub-graph ({n.target}) — a higher-order op such as torch.cond or a loop; "
                "fx2mlx does not lower control-flow operators yet" + _src_suffix(n))
    meta = (("source", description), ("torch", torch.__version__))
    aliases = {}
    if module is not None:  # tied weights: keep one stored name (one torch.export uses), alias the rest
        used = {r.name for n in nodes for r in n.refs()} | {r.name for o in outputs for r in ir.iter_refs(o)}
        used_targets = {i.target for i in inputs if i.kind != "user" and i.name in used}
        aliases = _aliases(module, used_targets)
        inputs = [i for i in inputs if i.kind == "user" or i.target not in aliases]
        weights = {k: v for k, v in weights.items() if k not in aliases}
    modules = tuple(ir.ModuleInfo(p, _qualname(type(m))) for p, m in module.named_modules()) if module else ()
    program = ir.Program(tuple(inputs), tuple(nodes), outputs, spec_to_json(ep.call_spec.in_spec, consts, sig),
                         spec_to_json(ep.call_spec.out_spec), modules, meta,
                         tied=tuple(sorted(aliases.items())), mutations=tuple(mutations),
                         example_shapes=tuple((i.name, tuple(int(d) for d in example_sizes[i.name]))
                                              for i in inputs if i.name in example_sizes))
    return program, weights


def _aliases(module: torch.nn.Module, targets: set[str]) -> dict[str, str]:
    """Tied parameters: every other state_dict name of a captured weight -> the captured name."""
    by_id: dict[int, list[str]] = {}
    for name, t in list(module.named_parameters(remove_duplicate=False)) + list(module.named_buffers(remove_duplicate=False)):
        by_id.setdefault(id(t), []).append(name)
    out = {}
    for names in by_id.values():
        canon = [n for n in names if n in targets]
        if canon:
            for n in names:
                if n != canon[0]:
                    out[n] = canon[0]
    return out


def _target_name(t) -> str:
    if isinstance(t, torch._ops.OpOverload):
        return f"{t.namespace}.{t._schema.name.split('::')[-1]}.{t._overloadname}"
    mod = getattr(t, "__module__", "") or ""
    name = getattr(t, "__name__", str(t))
    if mod in ("_operator", "operator"):
        return f"operator.{name}.default"
    if mod.startswith("torch") and name in ("sym_sum", "sym_max", "sym_min", "sym_not", "sym_float", "sym_int", "sym_ite"):
        return f"torch.{name}.default"
    return f"{mod}.{name}"


def _bind_args(n, consts) -> tuple:
    t = n.target
    if isinstance(t, torch._ops.OpOverload):
        schema = t._schema
        out = []
        pos = list(n.args)
        for i, a in enumerate(schema.arguments):
            if i < len(pos) and not a.kwarg_only:
                v = pos[i]
            elif a.name in n.kwargs:
                v = n.kwargs[a.name]
            elif a.has_default_value():
                v = a.default_value
            else:
                v = None
            out.append((a.name, _arg(v, consts)))
        return tuple(out)
    names = ["a", "b", "c", "d"]
    return tuple((names[i] if i < 4 else f"arg{i}", _arg(v, consts)) for i, v in enumerate(n.args)) + \
        tuple((k, _arg(v, consts)) for k, v in n.kwargs.items())


def _arg(v, consts) -> Any:
    if isinstance(v, torch.fx.Node):
        if v.name in consts:
            return consts[v.name]
        return ir.Ref(v.name)
    if isinstance(v, (list, tuple)):
        return tuple(_arg(x, consts) for x in v)
    if isinstance(v, torch.dtype):
        return ir.DType(str(v).replace("torch.", ""))
    if isinstance(v, (torch.device, torch.layout, torch.memory_format)):
        return str(v)
    if isinstance(v, torch.Tensor):
        if v.numel() == 1:
            return v.item()
        raise CaptureError(f"a tensor constant of shape {tuple(v.shape)} appears inline in the graph")
    if isinstance(v, (torch.SymInt, torch.SymFloat, torch.SymBool)):
        return str(v)
    return v


def _vtype(val) -> ir.ValueType:
    if isinstance(val, torch.Tensor):
        return ir.TensorType(tuple(int(d) if isinstance(d, int) or str(d).isdigit() else str(d) for d in val.shape),
                             str(val.dtype).replace("torch.", ""))
    if isinstance(val, (list, tuple)):
        return ir.TupleType(tuple(_vtype(v) for v in val))
    if isinstance(val, (torch.SymInt, int)) and not isinstance(val, bool):
        return ir.ScalarType("int")
    if isinstance(val, (torch.SymFloat, float)):
        return ir.ScalarType("float")
    if isinstance(val, (torch.SymBool, bool)):
        return ir.ScalarType("bool")
    return None


def _frames(n, module_paths: set[str] | None = None) -> tuple:
    stack = n.meta.get("nn_module_stack") or {}
    frames = []
    for key, (path, typ) in stack.items():
        if path == "" or (module_paths is not None and path not in module_paths):
            continue
        frames.append(ir.ModuleFrame(key, path, typ if isinstance(typ, str) else _qualname(typ)))
    return tuple(frames)


_FRAME = re.compile(r'File "([^"]+)", line (\d+), in ([^\n]+)\n\s*([^\n]*)')


def _source(stack_trace: str | None) -> ir.SourceLoc | None:
    if not stack_trace:
        return None
    frames = _FRAME.findall(stack_trace)
    if not frames:
        return None
    user = [f for f in frames if not is_library_file(f[0])]
    f = (user or frames)[-1]
    return ir.SourceLoc(f[0], int(f[1]), f[2].strip(), f[3].strip())


def _src_suffix(n) -> str:
    s = _source(n.meta.get("stack_trace"))
    return f" (at {s}: {s.code})" if s else ""


def _qualname(cls) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


# --------------------------------------------------------------------------------------------------
# pytree specs as JSON
# --------------------------------------------------------------------------------------------------
def spec_to_json(spec, consts: dict | None = None, sig=None) -> Any:
    """TreeSpec -> JSON. Leaves are {"kind": "leaf"}; containers keep their keys (ModelOutput -> dict)."""
    if spec.is_leaf():
        return {"kind": "leaf"}
    t = spec.type
    children = [spec_to_json(c) for c in spec.children()]
    if t is tuple or t is list:
        return {"kind": t.__name__, "children": children}
    if t is dict:
        return {"kind": "dict", "keys": list(spec.context), "children": children}
    if t is type(None):
        return {"kind": "none"}
    if isinstance(t, type) and issubclass(t, tuple) and hasattr(t, "_fields"):
        return {"kind": "tuple", "children": children, "type": _qualname(t)}
    ctx = spec.context
    keys = None
    if isinstance(ctx, (list, tuple)) and all(isinstance(k, str) for k in ctx):
        keys = list(ctx)
    elif isinstance(ctx, str):
        try:
            parsed = json.loads(ctx)
            if isinstance(parsed, list) and all(isinstance(k, str) for k in parsed):
                keys = parsed
        except ValueError:
            pass
    if keys is not None and len(keys) == len(children):
        return {"kind": "dict", "keys": keys, "children": children, "type": _qualname(t)}
    return {"kind": "tuple", "children": children, "type": _qualname(t)}
