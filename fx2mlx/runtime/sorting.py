"""sort and topk with PyTorch's results: int64 indices, stable order of ties, NaN sorted as the largest
value (first in descending order)."""
import mlx.core as mx


def _descending_key(x):
    """A key whose ascending order is x's descending order (ties keep their order: argsort is stable)."""
    if x.dtype == mx.bool_:
        return mx.logical_not(x).astype(mx.int32)
    if mx.issubdtype(x.dtype, mx.integer):
        return mx.bitwise_invert(x)  # -x - 1: monotone, no overflow at the minimum
    return mx.where(mx.isnan(x), -mx.inf, -x)


def sort(x, dim=-1, descending=False):
    """aten.sort: (values, int64 indices) along dim."""
    if x.ndim == 0:
        return x, mx.zeros((), dtype=mx.int64)
    if x.size == 0:
        return x, mx.zeros(x.shape, dtype=mx.int64)
    if descending:
        key = _descending_key(x)
        if mx.issubdtype(x.dtype, mx.inexact):  # NaN first, then +inf, ... : order NaN before -(-inf)
            nan = mx.isnan(x)
            idx = mx.argsort(key, axis=dim)
            nan_first = mx.argsort(mx.logical_not(mx.take_along_axis(nan, idx, axis=dim)).astype(mx.int32), axis=dim)
            idx = mx.take_along_axis(idx, nan_first, axis=dim)
        else:
            idx = mx.argsort(key, axis=dim)
    else:
        idx = mx.argsort(x.astype(mx.int32) if x.dtype == mx.bool_ else x, axis=dim)
    return mx.take_along_axis(x, idx, axis=dim), idx.astype(mx.int64)


def topk(x, k, dim=-1, largest=True, sorted=True):
    """aten.topk: the k largest (or smallest) values along dim, sorted, and their int64 indices."""
    if x.ndim == 0:
        return x, mx.zeros((), dtype=mx.int64)
    values, idx = sort(x, dim, descending=largest)
    dim = dim % x.ndim
    sl = tuple(slice(None) if d != dim else slice(0, k) for d in range(x.ndim))
    return values[sl], idx[sl]
