"""Weight layout transforms: PyTorch layout -> MLX layout.

A table entry says which of its arguments needs a transform (`weights: {weight: conv}`). When that
argument is a parameter used only in that role, the transform is applied once, when weights are
written (the saved tensor is in MLX layout). Otherwise the emitted code applies it at run time.
Each transform renders code for numpy (`xp="np"`), MLX (`xp="mx"`) or C++ (`xp="cpp"`); `apply` runs the
numpy or MLX form on an array (weight conversion, the type check's shapes).
"""
from __future__ import annotations

from typing import Callable

from .errors import TableError

# name -> fn(w_code, xp, node_args) -> code
_TRANSFORMS: dict[str, Callable[[str, str, dict], str]] = {}


def transform(name: str):
    def deco(fn):
        if name in _TRANSFORMS:
            raise TableError(f"layout transform {name!r} registered twice")
        _TRANSFORMS[name] = fn
        return fn
    return deco


@transform("conv")
def _conv(w: str, xp: str, args: dict) -> str:
    """(O, I/g, *K) -> (O, *K, I/g): channels last; transposed convolutions take conv_transpose."""
    if args.get("transposed"):
        return _conv_transpose(w, xp, args)
    return f"{xp}.moveaxis({w}, 1, -1)"


@transform("conv_transpose")
def _conv_transpose(w: str, xp: str, args: dict) -> str:
    """(I, O/g, *K) -> (O, *K, I/g), regrouped for groups > 1."""
    g = int(args.get("groups", 1) or 1)
    if g == 1:
        return f"{xp}.moveaxis({w}, 0, -1)"
    # (g*Ig, Og, *K) -> (g, Ig, Og, *K) -> (g, Og, *K, Ig) -> (g*Og, *K, Ig)
    return (f"{xp}.moveaxis({w}.reshape(({g}, {w}.shape[0] // {g}) + tuple({w}.shape[1:])), 1, -1)"
            f".reshape((-1,) + tuple({w}.shape[2:]) + ({w}.shape[0] // {g},))")


def render(name: str, w: str, xp: str, args: dict) -> str:
    try:
        fn = _TRANSFORMS[name]
    except KeyError:
        raise TableError(f"unknown weight layout transform {name!r} (known: {sorted(_TRANSFORMS)})") from None
    if xp == "cpp":  # C++: one runtime function per transform (fx2mlx/runtime_cpp/fx2mlx_runtime.h)
        return (f"fx::layout_{name}({w}, {int(args.get('groups', 1) or 1)}, "
                f"{'true' if args.get('transposed') else 'false'})")
    return fn(w, xp, args)


def apply(name: str, w, args: dict, xp: str = "np"):
    """Transform array `w` (a numpy array for xp="np", an MLX array for xp="mx") to the MLX layout."""
    if xp == "np":
        import numpy as lib
    elif xp == "mx":
        import mlx.core as lib
    else:
        raise ValueError(f"layouts.apply: xp is 'np' or 'mx', not {xp!r}")
    return eval(render(name, "w", xp, args), {xp: lib, "w": w})  # noqa: S307 - our own transforms
