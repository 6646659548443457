"""Tensor ops whose PyTorch semantics take a few MLX calls: unfold (sliding windows), pad with every
mode (negative widths crop; circular wraps), vector norms, running max/min with indices, medians."""
import math

import mlx.core as mx


def unfold(x, dim, size, step):
    """Tensor.unfold: windows of `size` every `step` along dim; the window axis is appended last."""
    if x.ndim == 0:
        return mx.broadcast_to(x, (size,))
    dim = dim % x.ndim
    n = (x.shape[dim] - size) // step + 1
    idx = mx.arange(n).reshape(n, 1) * step + mx.arange(size).reshape(1, size)
    return mx.moveaxis(mx.take(x, idx, axis=dim), dim + 1, -1)


def pad(x, widths, mode="constant", value=None):
    """aten.pad / constant_pad_nd: PyTorch's pad list (last axis first, (before, after) pairs)."""
    pairs = [(0, 0)] * x.ndim
    for i in range(len(widths) // 2):
        pairs[x.ndim - 1 - i] = (widths[2 * i], widths[2 * i + 1])
    crop = tuple(slice(-a if a < 0 else None, b if b < 0 else None) for a, b in pairs)
    x = x[crop]  # negative widths remove elements
    pairs = [(max(a, 0), max(b, 0)) for a, b in pairs]
    if mode == "constant":
        return mx.pad(x, pairs, constant_values=0 if value is None else value)
    if mode == "reflect":
        return mx.pad(x, pairs, mode="reflect")
    if mode == "replicate":
        return mx.pad(x, pairs, mode="edge")
    if mode == "circular":
        for axis, (a, b) in enumerate(pairs):
            if a or b:
                n = x.shape[axis]
                idx = mx.remainder(mx.arange(-a, n + b), n)
                x = mx.take(x, idx, axis=axis)
        return x
    raise ValueError(f"pad mode {mode!r} is not supported")


def vector_norm(x, ord=2, dim=None, keepdim=False):
    """torch.linalg.vector_norm over dim (None: all axes)."""
    axes = None if dim is None or len(dim) == 0 or x.ndim == 0 else list(dim)
    if x.size == 0 and ord != 0 and ord > 0 and axes is None:
        return mx.zeros((1,) * x.ndim if keepdim else (), dtype=x.dtype)
    a = mx.abs(x)
    if ord == math.inf:
        return mx.max(a, axis=axes, keepdims=keepdim)
    if ord == -math.inf:
        return mx.min(a, axis=axes, keepdims=keepdim)
    if ord == 0:
        return mx.sum((a != 0).astype(x.dtype), axis=axes, keepdims=keepdim)
    if ord == 1:
        return mx.sum(a, axis=axes, keepdims=keepdim)
    if ord == 2:
        return mx.sqrt(mx.sum(a * a, axis=axes, keepdims=keepdim))
    return mx.power(mx.sum(mx.power(a, ord), axis=axes, keepdims=keepdim), 1.0 / ord)


def cum_extreme(x, dim, largest):
    """torch.cummax / cummin: running extreme and the (last) index where it was reached."""
    if x.ndim == 0:
        return x, mx.zeros((), dtype=mx.int64)
    dim = dim % x.ndim
    values = mx.cummax(x, axis=dim) if largest else mx.cummin(x, axis=dim)
    if mx.issubdtype(x.dtype, mx.inexact):  # a NaN propagates from where it appears
        nan_seen = mx.cummax(mx.isnan(x).astype(mx.int32), axis=dim) > 0
        values = mx.where(nan_seen, mx.nan, values)
    shape = [1] * x.ndim
    shape[dim] = x.shape[dim]
    pos = mx.broadcast_to(mx.arange(x.shape[dim]).reshape(shape), x.shape)
    hit = (x == values) | (mx.isnan(x) & mx.isnan(values)) if mx.issubdtype(x.dtype, mx.inexact) else x == values
    idx = mx.cummax(mx.where(hit, pos, -1), axis=dim)
    return values, idx.astype(mx.int64)


def kthvalue(x, k, dim=-1, keepdim=False):
    """torch.kthvalue: the k-th smallest value (1-based) along dim and its index."""
    if x.ndim == 0:
        return x, mx.zeros((), dtype=mx.int64)
    dim = dim % x.ndim
    key = mx.where(mx.isnan(x), mx.inf, x) if mx.issubdtype(x.dtype, mx.inexact) else x
    order = mx.argsort(key, axis=dim)
    if mx.issubdtype(x.dtype, mx.inexact):  # NaN sorts after +inf
        nan = mx.take_along_axis(mx.isnan(x), order, axis=dim)
        order = mx.take_along_axis(order, mx.argsort(nan.astype(mx.int32), axis=dim), axis=dim)
    sl = tuple(slice(None) if d != dim else slice(k - 1, k) for d in range(x.ndim))
    idx = order[sl]
    val = mx.take_along_axis(x, idx, axis=dim)
    if not keepdim:
        idx, val = mx.squeeze(idx, dim), mx.squeeze(val, dim)
    return val, idx.astype(mx.int64)


def median(x, dim=None, keepdim=False, ignore_nan=False):
    """torch.median / nanmedian: the lower median (element ceil(n/2) - 1 of the sorted values) and its index.
    With NaN present, median returns NaN; nanmedian skips NaN."""
    if dim is None:
        flat = x.reshape(-1)
        v, _ = median(flat, 0, False, ignore_nan)
        return v
    if x.ndim == 0:
        return x, mx.zeros((), dtype=mx.int64)
    dim = dim % x.ndim
    n = x.shape[dim]
    floating = mx.issubdtype(x.dtype, mx.inexact)
    key = mx.where(mx.isnan(x), mx.inf, x) if floating else x
    order = mx.argsort(key, axis=dim)
    if floating:
        nan = mx.take_along_axis(mx.isnan(x), order, axis=dim)
        order = mx.take_along_axis(order, mx.argsort(nan.astype(mx.int32), axis=dim), axis=dim)
        count = mx.sum(mx.logical_not(mx.isnan(x)), axis=dim, keepdims=True)
        if ignore_nan:
            k = mx.maximum((count - 1) // 2, 0)
        else:
            k = mx.where(count < n, n - 1, (n - 1) // 2)  # first NaN sits at index `count`
            k = mx.where(count < n, count, k)
    else:
        k = mx.full([1 if d == dim else s for d, s in enumerate(x.shape)], (n - 1) // 2, dtype=mx.int32)
    idx = mx.take_along_axis(order, k.astype(mx.int32), axis=dim)
    val = mx.take_along_axis(x, idx, axis=dim)
    if not keepdim:
        idx, val = mx.squeeze(idx, dim), mx.squeeze(val, dim)
    return val, idx.astype(mx.int64)


def variance(x, dim, correction, keepdim=False):
    """torch.var with a non-integer correction: sum((x - mean)^2) / max(N - correction, 0)."""
    axes = None if dim is None or len(dim) == 0 else [d % x.ndim for d in dim]
    n = x.size if axes is None else math.prod(x.shape[d] for d in axes)
    mean = mx.mean(x, axis=axes, keepdims=True)
    ss = mx.sum(mx.square(x - mean), axis=axes, keepdims=keepdim)
    return ss / max(n - correction, 0)
