"""Shared test helpers: compile a model with fx2mlx and compare it with PyTorch."""
from __future__ import annotations

import numpy as np
import torch

import fx2mlx


def torch_outputs(module, args, kwargs):
    with torch.no_grad():
        out = module(*args, **kwargs)
    return out


def flatten(out) -> list:
    """Tensors of a (nested) output, in order; ModelOutput/dict by key order."""
    if isinstance(out, torch.Tensor) or type(out).__module__.startswith("mlx"):
        return [out]
    if isinstance(out, dict):
        return [t for v in out.values() for t in flatten(v)]
    if hasattr(out, "to_tuple"):
        return [t for v in out.to_tuple() for t in flatten(v)]
    if isinstance(out, (list, tuple)):
        return [t for v in out for t in flatten(v)]
    return []


def max_abs_diff(a, b) -> float:
    a = np.asarray(a.detach().float().numpy() if isinstance(a, torch.Tensor) else np.array(a), dtype=np.float64)
    b = np.asarray(b.detach().float().numpy() if isinstance(b, torch.Tensor) else np.array(b), dtype=np.float64)
    assert a.shape == b.shape, f"shape {a.shape} vs {b.shape}"
    return float(np.abs(a - b).max()) if a.size else 0.0


def compile_and_compare(module, args, kwargs=None, *, atol=1e-4, out_dir=None, dtype=None):
    """Compile, run both sides on the example inputs, assert every output tensor within atol."""
    kwargs = kwargs or {}
    ref = torch_outputs(module, args, kwargs)
    compiled = fx2mlx.convert(module, args, kwargs, out_dir=out_dir, dtype=dtype, force=True)
    tensors = [a for a in args if isinstance(a, torch.Tensor)] + [v for v in kwargs.values() if isinstance(v, torch.Tensor)]
    out = compiled(*tensors[: len(args)], **{k: v for k, v in kwargs.items() if isinstance(v, torch.Tensor)})
    ref_flat, out_flat = flatten(ref), flatten(out)
    assert len(ref_flat) == len(out_flat), f"{len(ref_flat)} outputs in PyTorch, {len(out_flat)} in MLX"
    diffs = [max_abs_diff(r, o) for r, o in zip(ref_flat, out_flat)]
    for i, d in enumerate(diffs):
        assert d <= atol, f"output {i}: max abs diff {d:.3g} > {atol}"
    return compiled, diffs
