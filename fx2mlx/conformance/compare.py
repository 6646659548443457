"""Comparing one op's MLX result with PyTorch's: shape, dtype, values within the tolerance of the result's
dtype, widened by the `tolerance` of the op-table entries (or overrides) that lowered the call's ops.
Used by `opcheck` and `cppcheck`.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch

# (atol, rtol) per result dtype. The `tolerance` of the table entries (and overrides) that lower a call's
# ops widens them (`op_tolerance`); a case's own `Call.tol` replaces both.
TOLERANCES = {
    "float32": (1e-5, 1e-4), "float64": (1e-5, 1e-4), "float16": (1e-3, 2e-3), "bfloat16": (1e-2, 1.6e-2),
    "complex64": (1e-5, 1e-4),
}


@functools.lru_cache(maxsize=None)
def _entries_tolerance(ops: tuple[str, ...]) -> tuple[float, float]:
    """The loosest (atol, rtol) of the table entries and overrides that lower `ops`."""
    from fx2mlx.compiler.optable import default_tables
    from fx2mlx.compiler.overrides import OVERRIDES

    tables = default_tables()
    tols = [tables[o].tolerance for o in ops if o in tables] + [OVERRIDES[o].tolerance for o in ops if o in OVERRIDES]
    return max((t[0] for t in tols), default=0.0), max((t[1] for t in tols), default=0.0)


def op_tolerance(ops, dtype: str) -> tuple[float, float] | None:
    """(atol, rtol) for a result of `dtype` computed by `ops`: the dtype's tolerance, widened (never
    tightened) by the `tolerance` of the entries that lower them. None for dtypes compared exactly."""
    base = TOLERANCES.get(dtype)
    if base is None:
        return None
    atol, rtol = _entries_tolerance(tuple(sorted(ops)))
    return max(base[0], atol), max(base[1], rtol)


def mx_to_numpy(a) -> np.ndarray:
    import mlx.core as mx

    if a.dtype == mx.bfloat16:
        a = a.astype(mx.float32)
    return np.array(a, copy=False)


def _dtname(a) -> str:
    s = str(a.dtype).replace("mlx.core.", "").replace("torch.", "")
    return "bool" if s == "bool_" else s


def compare_values(ref: torch.Tensor, got, tol=None, normwise: bool = False) -> tuple[str | None, float]:
    """None if `got` (mx.array) matches `ref` (torch) in shape, dtype and values; else why.
    normwise: the relative tolerance scales with the largest |ref| (for ill-conditioned results such as
    matrix exponentials, where PyTorch's own float32 error is relative to the norm, not to each entry)."""
    import mlx.core as mx

    if not isinstance(got, mx.array):
        return f"MLX gave {type(got).__name__}, PyTorch a tensor", math.inf
    if tuple(got.shape) != tuple(ref.shape):
        return f"shape {tuple(got.shape)}, PyTorch's is {tuple(ref.shape)}", math.inf
    rdt, gdt = _dtname(ref), _dtname(got)
    if rdt != gdt:
        return f"dtype {gdt}, PyTorch's is {rdt}", math.inf
    r = ref.detach().cpu().resolve_conj().resolve_neg()
    r = (r.float() if r.dtype == torch.bfloat16 else r).numpy()
    g = mx_to_numpy(got)
    if r.size == 0:
        return None, 0.0
    if rdt == "bool" or not (np.issubdtype(r.dtype, np.floating) or np.issubdtype(r.dtype, np.complexfloating)):
        bad = r != g
        if bad.any():
            i = np.argwhere(bad)[0]
            return f"{int(bad.sum())} of {r.size} elements differ (e.g. at {tuple(int(x) for x in i)}: " \
                   f"MLX {g[tuple(i)]!r}, PyTorch {r[tuple(i)]!r})", math.inf
        return None, 0.0
    atol, rtol = tol or TOLERANCES.get(rdt, (1e-5, 1e-4))
    r64, g64 = r.astype(np.complex128 if np.iscomplexobj(r) else np.float64), g.astype(np.complex128 if np.iscomplexobj(g) else np.float64)
    nan_r, nan_g = np.isnan(r64), np.isnan(g64)
    if (nan_r != nan_g).any():
        i = np.argwhere(nan_r != nan_g)[0]
        return f"NaN mismatch at {tuple(int(x) for x in i)}: MLX {g[tuple(i)]!r}, PyTorch {r[tuple(i)]!r}", math.inf
    fin = ~nan_r
    inf_r = np.isinf(r64) & fin
    if (inf_r & (r64 != g64)).any():
        i = np.argwhere(inf_r & (r64 != g64))[0]
        return f"inf mismatch at {tuple(int(x) for x in i)}: MLX {g[tuple(i)]!r}, PyTorch {r[tuple(i)]!r}", math.inf
    ok = fin & ~inf_r
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.where(ok, np.abs(r64 - g64), 0.0)
        bound = atol + rtol * np.abs(np.where(ok, r64, 0.0))
        if normwise:
            bound = atol + rtol * float(np.abs(np.where(ok, r64, 0.0)).max())
    worst = float(err.max()) if err.size else 0.0
    if not np.isfinite(worst) or (err > bound).any():
        i = np.argwhere(~(err <= bound))[0]
        return (f"max abs error {worst:.3g} > atol {atol:g} + rtol {rtol:g}·|ref| "
                f"(e.g. at {tuple(int(x) for x in i)}: MLX {g[tuple(i)]!r}, PyTorch {r[tuple(i)]!r})"), worst
    return None, worst


def compare_half(ref: torch.Tensor, ref32: torch.Tensor, got, tol=None) -> tuple[str | None, float]:
    """A float16/bfloat16 result judged against the float32 computation on the same values: PyTorch's
    CPU kernels and MLX both compute in float32 and round, but in different orders (summation, fused
    bias, intermediate roundings), so two correct half results can differ by several ulp where values
    cancel. `got` passes if its distance from the float32 result, rounded to the half type, is within
    the dtype tolerance plus PyTorch's own largest distance from it: MLX is no less accurate than
    PyTorch. Non-finite values must match that rounded float32 result."""
    import mlx.core as mx

    if not isinstance(got, mx.array) or _dtname(got) != _dtname(ref) or tuple(got.shape) != tuple(ref.shape):
        return "dtype or shape differ", math.inf
    if tuple(ref32.shape) != tuple(ref.shape) or ref32.dtype != torch.float32:
        return "no float32 reference", math.inf
    best = ref32.to(ref.dtype).float().numpy().astype(np.float64)  # the correctly rounded half result
    p = ref.float().numpy().astype(np.float64)
    g = mx_to_numpy(got.astype(mx.float32)).astype(np.float64)
    fin = np.isfinite(best)
    if (np.isnan(g) != np.isnan(best)).any() or (~fin & ~np.isnan(best) & (g != best)).any():
        return "non-finite values differ from the float32 result", math.inf
    atol, rtol = tol or TOLERANCES[_dtname(ref)]
    both = fin & np.isfinite(p)
    own = float(np.abs(p - best)[both].max()) if both.any() else 0.0
    err = np.abs(np.where(fin, g - best, 0.0))
    bound = atol + rtol * np.abs(np.where(fin, best, 0.0)) + own
    worst = float(err.max()) if err.size else 0.0
    if (err > bound).any():
        return (f"vs the float32 result: MLX max error {worst:.3g}, PyTorch's own {own:.3g}"), worst
    return None, worst
