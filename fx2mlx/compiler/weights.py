"""Weights: PyTorch tensors -> `weights.safetensors` in MLX layout, keyed by state_dict names; their
shapes in that layout (for the emitters' parameter declarations)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import dtypes, layouts
from .lowering import Lowered


def to_numpy(t) -> np.ndarray:
    """A torch tensor (any dtype, including bfloat16) as numpy; bfloat16 goes through float32."""
    import torch

    t = t.detach().cpu().resolve_conj().resolve_neg()  # (lazy conjugate/negative views have no numpy form)
    if t.dtype == torch.bfloat16:
        t = t.float()
    return t.contiguous().numpy()


def from_numpy(a: np.ndarray):
    """A numpy array as a C-contiguous mx.array (a copy).

    Zero-size arrays are made with `mx.zeros` instead: in MLX 0.32.4 an array with no elements imported
    from numpy keeps flags on which the CPU reduction can call `nd_loop` with an empty shape and spin
    forever on out-of-bounds memory (`mx.sum(mx.array(np.zeros((0,), np.float32)), axis=0)` hangs in a
    fraction of runs; `mx.zeros((0,))` never does). tests/test_arrays.py holds the reproduction."""
    import mlx.core as mx

    a = np.asarray(a)
    if a.size == 0:
        return mx.zeros(a.shape, dtype=mx.array(np.zeros((), a.dtype)).dtype)
    return mx.array(np.array(a, copy=True, order="C"))  # (ascontiguousarray makes 0-d arrays 1-d)


def mlx_weights(lowered: Lowered, weights: dict, dtype: str | None = None) -> dict:
    """Captured weights (by target) -> dict of mx.arrays in MLX layout, cast to `dtype` if given."""
    import mlx.core as mx

    out = {}
    for i in lowered.program.weight_inputs:
        t = weights[i.target]
        src_dtype = str(t.dtype).replace("torch.", "")
        a = to_numpy(t)
        if i.name in lowered.weight_layouts:
            role, args = lowered.weight_layouts[i.name]
            a = layouts.apply(role, a, args)
        arr = from_numpy(a)
        target_dt = dtype if (dtype and dtypes.is_float(src_dtype)) else src_dtype
        if str(arr.dtype).replace("mlx.core.", "").replace("bool_", "bool") != target_dt:
            arr = arr.astype(getattr(mx, dtypes.MX[target_dt]))
        out[i.target] = arr
    return out


def weight_shapes(lowered: Lowered, dtype: str | None) -> dict[str, tuple[tuple, str]]:
    """Weight target -> (shape in MLX layout, dtype as stored)."""
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


def save(path: Path, arrays: dict, metadata: dict | None = None) -> None:
    import mlx.core as mx

    mx.save_safetensors(str(path), arrays, metadata=metadata or {})
