"""Elementwise helpers with PyTorch semantics that MLX spells differently."""
import mlx.core as mx


def trunc(x):
    """Round toward zero (torch.trunc)."""
    if not mx.issubdtype(x.dtype, mx.floating):
        return x
    return mx.where(x < 0, mx.ceil(x), mx.floor(x))


def trunc_divide(a, b):
    """Division rounded toward zero (torch.div(..., rounding_mode='trunc'))."""
    q = a / b
    if isinstance(q, mx.array) and not mx.issubdtype(q.dtype, mx.floating):
        return q
    t = mx.where(q < 0, mx.ceil(q), mx.floor(q))
    dt = mx.result_type(a, b) if hasattr(mx, "result_type") else t.dtype
    return t if mx.issubdtype(dt, mx.floating) else t.astype(dt)


def fmod(a, b):
    """C-style remainder: the result takes the dividend's sign (torch.fmod)."""
    r = mx.remainder(a, b)
    return mx.where((r != 0) & ((r < 0) != (a < 0)), r - b, r)
