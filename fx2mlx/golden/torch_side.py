"""The PyTorch side: every named graph value of the captured model, computed by PyTorch.

IR value names are the fx node names of the ExportedProgram (after decomposition), so running that
graph with a `torch.fx.Interpreter` and recording every node gives PyTorch's value for every IR name.
This is the only golden module that imports torch.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..compiler.capture import Captured, capture, load_source
from ..compiler.weights import to_numpy
from .errors import GoldenError


class _Recorder(torch.fx.Interpreter):
    def __init__(self, gm, keep: set[str] | None):
        super().__init__(gm)
        self.values: dict[str, Any] = {}
        self.keep = keep

    def run_node(self, n):
        out = super().run_node(n)
        if n.op in ("call_function", "placeholder") and (self.keep is None or n.name in self.keep):
            self.values[n.name] = out
        return out


def flat_graph_inputs(captured: Captured, user_inputs: list | None = None) -> list:
    """The ExportedProgram graph's placeholders in order: parameters/buffers/constants by their
    graph-signature target, then the user inputs (tensors from `user_inputs`, constants as captured)."""
    from torch.export.graph_signature import InputKind

    ep = captured.exported
    if ep is None:
        raise GoldenError("the captured model has no ExportedProgram (capture it with fx2mlx.compiler.capture)")
    specs = {s.arg.name: s for s in ep.graph_signature.input_specs}
    state = dict(ep.state_dict)
    state.update(ep.constants)
    users = iter(user_inputs if user_inputs is not None else captured.example_inputs)
    flat = []
    for n in ep.graph.nodes:
        if n.op != "placeholder":
            continue
        s = specs[n.name]
        if s.kind == InputKind.TOKEN:  # an effect token (e.g. linalg's error checks): an empty tensor
            flat.append(torch.tensor([]))
        elif s.kind == InputKind.USER_INPUT:
            if isinstance(n.meta.get("val"), torch.Tensor):
                flat.append(next(users))
            else:
                flat.append(getattr(s.arg, "value", None))
        else:
            flat.append(state[s.target])
    return flat


def run_graph(captured: Captured, user_inputs: list | None = None, keep: set[str] | None = None) -> dict[str, Any]:
    """Run the decomposed graph; fx node name -> PyTorch value (tensors, tuples, Python scalars)."""
    interp = _Recorder(captured.exported.graph_module, keep)
    with torch.no_grad():
        interp.run(*flat_graph_inputs(captured, user_inputs))
    return interp.values


def to_host(v: Any) -> Any:
    """A PyTorch value as numpy (tensors), Python scalars, tuples of those, or None."""
    if isinstance(v, torch.Tensor):
        return to_numpy(v)
    if isinstance(v, (list, tuple)):
        return tuple(to_host(x) for x in v)
    if isinstance(v, (bool, int, float)) or v is None:
        return v
    if isinstance(v, (torch.SymInt, torch.SymFloat, torch.SymBool)):
        return v.node.hint if hasattr(v, "node") else None
    return None


def tensor_dtype(v: Any) -> Any:
    """PyTorch dtype name(s) of a value (numpy cannot say bfloat16)."""
    if isinstance(v, torch.Tensor):
        return str(v.dtype).replace("torch.", "")
    if isinstance(v, (list, tuple)):
        return tuple(tensor_dtype(x) for x in v)
    return None


def optional_names(program) -> set[str]:
    """Values of `program` PyTorch need not have: the outputs of fx2mlx pseudo-ops that got a name of their
    own (KV-cache attention, cache entries and offsets, RoPE tables...) and non-tensor user inputs (the KV
    cache). A fused node that kept the name of the PyTorch node it replaced is compared normally."""
    names = {i.name for i in program.user_inputs if i.type is None}
    names |= {n.name for n in program.nodes if n.target.startswith("fx2mlx.")}
    return names


def golden_values(captured: Captured, program=None, user_inputs: list | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(IR name -> host value, IR name -> torch dtype) for the user inputs and every node of `program`
    (default: the captured program). Weights are not included: the MLX side reads its own.
    Names in `optional_names(program)` are included where PyTorch has them and skipped otherwise."""
    program = program or captured.program
    names = {i.name for i in program.user_inputs} | {n.name for n in program.nodes}
    raw = run_graph(captured, user_inputs, keep=names)
    missing = sorted(names - set(raw) - optional_names(program))
    if missing:
        raise GoldenError(f"{len(missing)} value(s) of the compiled program do not exist in the PyTorch graph "
                          f"({', '.join(missing[:5])}{', …' if len(missing) > 5 else ''}): the source no longer "
                          "matches the compiled output; recompile it")
    return {k: to_host(v) for k, v in raw.items()}, {k: tensor_dtype(v) for k, v in raw.items()}


def torch_values(captured: Captured) -> dict[str, np.ndarray]:
    """IR value name -> PyTorch's value as numpy, for every tensor value of the captured graph: user
    inputs and every node (elements of tuple-valued nodes are named by their getitem nodes).
    bfloat16 tensors come back as float32. Weights are not included."""
    names = {i.name for i in captured.program.user_inputs} | {n.name for n in captured.program.nodes}
    raw = run_graph(captured, keep=names)
    return {k: to_numpy(v) for k, v in raw.items() if isinstance(v, torch.Tensor)}


def recapture(spec: str, inputs: str | None = None) -> Captured:
    """Capture SOURCE again (the spec as the CLI takes it)."""
    src = load_source(spec, inputs)
    return capture(src.module, src.args, src.kwargs, description=src.description)


def recapture_llm(folder: str, inputs: str | None = None) -> tuple[Captured, list | None]:
    """Capture a decoder LLM directory exactly as fx2mlx.llm.recipe.compile_llm does (same model loading,
    same capture_llm), so fx node names match OUT/ir.json. -> (captured, the user inputs to run it on:
    the token ids of `inputs` (a safetensors file, key input_ids or input_0) where they fit, else None,
    the recipe's example ids)."""
    from pathlib import Path

    from ..recipes.causal_lm import capture_llm, load_model

    path = Path(folder)
    model, on_meta = load_model(path, meta=False)
    if on_meta:  # (load_model with meta=False returns the real model; kept for safety)
        raise GoldenError(f"{folder}: the model's weights could not be loaded for the golden check")
    captured = capture_llm(model, f"hf:{path.resolve()}")
    ids = None
    if inputs:
        from safetensors.torch import load_file

        tensors = load_file(str(inputs))
        t = tensors.get("input_ids", tensors.get("input_0"))
        tok = next((i for i in captured.program.user_inputs if i.name == "input_ids"), None)
        if t is not None and tok is not None and tok.type is not None and t.dim() == len(tok.type.shape) \
                and not t.is_floating_point() and t.shape[1] >= 2:
            ids = [t.to(torch.int64)]
    return captured, ids


def source_spec(recorded: str, override: str | None) -> str:
    """The SOURCE spec to rebuild the PyTorch model: --source, else the one recorded in the manifest."""
    if override:
        return override
    kind, _, rest = recorded.partition(":")
    if kind == "hf":
        return rest
    if kind in ("factory", "onnx", "torchscript"):
        return rest
    raise GoldenError(f"OUT was compiled from an in-process module ({recorded!r}); fx2mlx cannot rebuild it. "
                      "Pass --source FACTORY (a 'file.py:function' or 'package.module:function' returning "
                      "(module, args[, kwargs])), or re-check against stored golden tensors with --offline")
