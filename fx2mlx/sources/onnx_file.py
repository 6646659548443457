"""ONNX files as sources: onnx2torch turns the graph into a torch.fx module, then the usual capture path.

Loading an ONNX file parses protobuf only (no code runs). Example inputs come from the graph's input
types: fixed sizes as declared, symbolic ones (`batch`, `time`, unnamed) a default size (2 for the first
axis, 16 elsewhere) left dynamic where the model allows it; `--input-shape NAME=2x8x100` sets them. Every op
onnx2torch cannot convert (and every unsupported LSTM/GRU option) is reported at once before converting.
"""
from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import torch

from ..compiler.errors import SourceError
from .onnx_fold import fold_shapes, has_shape_arithmetic, register_static

DEFAULT_BATCH, DEFAULT_SIZE = 2, 16


def _import_onnx2torch():
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise SourceError("ONNX sources need the `onnx` and `onnx2torch` packages: pip install 'fx2mlx[onnx]'") from None
    if "torchvision" not in sys.modules:
        try:
            import torchvision  # noqa: F401
        except ImportError:  # onnx2torch imports it for NonMaxSuppression/RoiAlign only: stand in for it
            sys.modules["torchvision"] = _missing_torchvision()
    try:
        import onnx2torch
    except ImportError:
        raise SourceError("ONNX sources need the `onnx2torch` package: pip install 'fx2mlx[onnx]'") from None
    from .onnx_rnn import register

    register()
    register_static()
    return onnx2torch


def _missing_torchvision():
    """A placeholder so that onnx2torch imports without torchvision; models using the two ops that need
    it (NonMaxSuppression, RoiAlign) are refused before conversion (`unsupported_ops`)."""
    mod = types.ModuleType("torchvision")
    mod.__fx2mlx_placeholder__ = True
    ops = types.ModuleType("torchvision.ops")

    def missing(*a, **k):
        raise SourceError("this ONNX op needs torchvision, which is not installed")

    ops.roi_align = ops.nms = ops.box_convert = missing
    mod.ops = ops
    sys.modules["torchvision.ops"] = ops
    return mod


def read_model(path: Path):
    import onnx

    try:
        model = onnx.load(str(path))
    except Exception as e:  # noqa: BLE001 - protobuf decode errors and missing external data alike
        raise SourceError(f"{path} is not a readable ONNX model ({type(e).__name__}: {_first(e)})") from None
    if not model.graph.node:
        raise SourceError(f"{path}: the ONNX graph has no nodes (is it an ONNX model file?)")
    try:
        onnx.checker.check_model(model)
    except Exception as e:  # noqa: BLE001
        raise SourceError(f"{path} is not a valid ONNX model: {_first(e)}") from None
    return model


def unsupported_ops(model) -> list[str]:
    """Every node onnx2torch (with fx2mlx's LSTM/GRU converters) cannot convert, grouped by op."""
    from onnx2torch.node_converters import get_converter
    from onnx2torch.onnx_graph import OnnxGraph

    from .onnx_rnn import unsupported_reason

    opsets = {o.domain: o.version for o in model.opset_import}
    graph = OnnxGraph(model.graph)
    problems: dict[str, list[str]] = {}
    no_tv = getattr(sys.modules.get("torchvision"), "__fx2mlx_placeholder__", False)
    for name, node in graph.nodes.items():
        op = f"{node.domain + '.' if node.domain else ''}{node.operation_type}"
        why = None
        try:
            get_converter(domain=node.domain, operation_type=node.operation_type, version=opsets.get(node.domain, 1))
        except NotImplementedError:
            why = f"{op} (opset {opsets.get(node.domain)})"
        if why is None and node.operation_type in ("LSTM", "GRU"):
            r = unsupported_reason(node, graph)
            why = f"{op} with {r}" if r else None
        if why is None and no_tv and node.operation_type in ("NonMaxSuppression", "RoiAlign"):
            why = f"{op} (onnx2torch needs torchvision for it)"
        if why:
            problems.setdefault(why, []).append(node.name or name)
    return [f"{k} at {', '.join(v[:3])}{' …' if len(v) > 3 else ''}" for k, v in problems.items()]


def input_specs(model, shapes: dict[str, tuple]) -> list[tuple[str, tuple, torch.dtype, set]]:
    """(name, example shape, dtype, symbolic axes) of each graph input that is not an initializer."""
    from onnx.helper import tensor_dtype_to_np_dtype

    inits = {i.name for i in model.graph.initializer}
    out = []
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        tt = inp.type.tensor_type
        if not inp.type.HasField("tensor_type"):
            raise SourceError(f"ONNX input {inp.name!r} is not a tensor (sequences and maps are not supported)")
        dims, sym = [], set()
        for k, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(d.dim_value)
            else:
                dims.append(DEFAULT_BATCH if k == 0 else DEFAULT_SIZE)
                sym.add(k)
        if inp.name in shapes:
            given = shapes[inp.name]
            if len(given) != len(dims):
                raise SourceError(f"--input-shape {inp.name}: {len(given)} sizes given, the input has rank {len(dims)}")
            bad = [f"axis {k}: {g} (the file says {d})" for k, (g, d) in enumerate(zip(given, dims))
                   if k not in sym and g != d]
            if bad:
                raise SourceError(f"--input-shape {inp.name}: fixed axes differ: {'; '.join(bad)}")
            dims = list(given)
        dtype = torch.from_numpy(np.zeros(0, tensor_dtype_to_np_dtype(tt.elem_type))).dtype
        out.append((inp.name, tuple(dims), dtype, sym))
    unknown = set(shapes) - {n for n, *_ in out}
    if unknown:
        raise SourceError(f"--input-shape names no input of the model: {', '.join(sorted(unknown))} "
                          f"(inputs: {', '.join(n for n, *_ in out)})")
    return out


def example(shape, dtype, gen) -> torch.Tensor:
    if dtype.is_floating_point:
        return torch.randn(shape, generator=gen).to(dtype)
    if dtype == torch.bool:
        return torch.rand(shape, generator=gen) > 0.5
    return torch.randint(0, 2, shape, generator=gen).to(dtype)


def load_onnx(path: Path, shapes: dict[str, tuple]):
    """-> (module, args, input names, info for the manifest)."""
    o2t = _import_onnx2torch()
    model = read_model(path)
    problems = unsupported_ops(model)
    if problems:
        raise SourceError(f"{path}: {len(problems)} kind(s) of ONNX node cannot be converted: " + "; ".join(problems))
    specs = input_specs(model, shapes)
    names = [n for n, *_ in specs]
    folded = has_shape_arithmetic(model)
    if folded:
        model = fold_shapes(model, {n: shape for n, shape, _, _ in specs})
    try:
        module = o2t.convert(model, save_input_names=all(n.isidentifier() for n in names))
    except Exception as e:  # noqa: BLE001 - onnx2torch's own failures
        raise SourceError(f"{path}: onnx2torch failed: {type(e).__name__}: {_first(e)}") from None
    gen = torch.Generator().manual_seed(0)
    args = tuple(example(shape, dtype, gen) for _, shape, dtype, _ in specs)
    info = {"inputs": names, "outputs": [o.name for o in model.graph.output],
            "symbolic_axes": {n: sorted(sym) for n, _, _, sym in specs if sym},
            "shapes_folded": {n: list(shape) for n, shape, _, _ in specs} if folded else None}
    return module.eval(), args, info


def onnxruntime_outputs(path: Path, names: list[str], arrays: list) -> list:
    """The original file run by onnxruntime (CPU) on numpy inputs."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise SourceError("checking an ONNX source needs onnxruntime: pip install 'fx2mlx[onnx]'") from None
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the graph as written
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, dict(zip(names, arrays)))


def _first(e: BaseException) -> str:
    s = str(e).strip()
    return s.splitlines()[0] if s else type(e).__name__
