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


def _shift_operands(a, b):
    """A Python int operand takes the array operand's dtype (the table promoted the arrays already)."""
    if not isinstance(a, mx.array):
        a = mx.array(a, dtype=b.dtype)
    if not isinstance(b, mx.array):
        b = mx.array(b, dtype=a.dtype)
    return a, b


def bitwise_left_shift(a, b):
    """a << b as PyTorch's CPU kernel defines it: a shift amount < 0 or >= the bit width gives 0 (C leaves
    it undefined; MLX's kernel masks the amount)."""
    a, b = _shift_operands(a, b)
    bits = a.dtype.size * 8
    out = mx.left_shift(a, mx.clip(b, 0, bits - 1))
    return mx.where((b < 0) | (b >= bits), mx.zeros_like(out), out)


def bitwise_right_shift(a, b):
    """a >> b (arithmetic for signed types) as PyTorch's CPU kernel defines it: a shift amount < 0 or past
    the sign bit shifts by bits - 1 (signed: all sign bits) or gives 0 (unsigned)."""
    a, b = _shift_operands(a, b)
    bits = a.dtype.size * 8
    if mx.issubdtype(a.dtype, mx.signedinteger):
        return mx.right_shift(a, mx.where((b < 0) | (b >= bits - 1), bits - 1, b).astype(a.dtype))
    out = mx.right_shift(a, mx.clip(b, 0, bits - 1))
    return mx.where(b >= bits, mx.zeros_like(out), out)
