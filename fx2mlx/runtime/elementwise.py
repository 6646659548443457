"""Elementwise helpers with PyTorch semantics that MLX spells differently."""
import mlx.core as mx


def trunc(x):
    """Round toward zero (torch.trunc)."""
    if not mx.issubdtype(x.dtype, mx.floating):
        return x
    return mx.where(x < 0, mx.ceil(x), mx.floor(x))


def _is_integral(v):
    if isinstance(v, mx.array):
        return not mx.issubdtype(v.dtype, mx.inexact)
    return isinstance(v, int)


def trunc_divide(a, b):
    """Division rounded toward zero (torch.div(..., rounding_mode='trunc')); exact for integers."""
    if _is_integral(a) and _is_integral(b):
        q = mx.floor_divide(a, b)
        return mx.where((q < 0) & (q * b != a), q + 1, q)
    q = a / b
    return mx.where(q < 0, mx.ceil(q), mx.floor(q))


def fmod(a, b):
    """C-style remainder: the result takes the dividend's sign (torch.fmod)."""
    r = mx.remainder(a, b)
    return mx.where((r != 0) & ((r < 0) != (a < 0)), r - b, r)
