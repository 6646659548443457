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
    """aten.pad / constant_pad_nd: PyTorch's pad list (last axis first, (before, after) pairs); negative
    widths crop. Non-constant modes gather: output i reads input i - before, replicated, reflected or
    wrapped into range (PyTorch's index rule, which also defines negative widths)."""
    pairs = [(0, 0)] * x.ndim
    for i in range(len(widths) // 2):
        pairs[x.ndim - 1 - i] = (widths[2 * i], widths[2 * i + 1])
    if mode == "constant":
        crop = tuple(slice(-a if a < 0 else None, b if b < 0 else None) for a, b in pairs)
        x = x[crop]
        return mx.pad(x, [(max(a, 0), max(b, 0)) for a, b in pairs], constant_values=0 if value is None else value)
    if mode not in ("reflect", "replicate", "circular"):
        raise ValueError(f"pad mode {mode!r} is not supported")
    if mode == "circular":  # PyTorch crops first, then wraps around what is left
        crop = tuple(slice(-a if a < 0 else None, b if b < 0 else None) for a, b in pairs)
        x = x[crop]
        pairs = [(max(a, 0), max(b, 0)) for a, b in pairs]
    for axis, (a, b) in enumerate(pairs):
        if a == 0 and b == 0:
            continue
        n = x.shape[axis]
        j = mx.arange(-a, n + b)
        if mode == "replicate":
            j = mx.clip(j, 0, n - 1)
        elif mode == "reflect":
            j = (n - 1) - mx.abs((n - 1) - mx.abs(j))
        else:
            j = mx.remainder(j, n)
        x = mx.take(x, j, axis=axis)
    return x


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


def trilinear(i1, i2, i3, expand1, expand2, expand3, sumdim):
    """aten._trilinear (bilinear layers): unsqueeze each input at its expand dims, multiply, sum."""
    for d in sorted(expand1):
        i1 = mx.expand_dims(i1, d)
    for d in sorted(expand2):
        i2 = mx.expand_dims(i2, d)
    for d in sorted(expand3):
        i3 = mx.expand_dims(i3, d)
    p = i1 * i2 * i3
    return mx.sum(p, axis=list(sumdim)) if len(sumdim) else p


def round_decimals(x, decimals):
    """torch.round(x, decimals=d): half to even at 10**-d."""
    if decimals >= 0:
        ten = float(10 ** decimals)
        return mx.round(x * ten) / ten
    ten = float(10 ** (-decimals))
    return mx.round(x / ten) * ten


def nextafter(x, y):
    """torch.nextafter: the next representable value after x towards y (float32, float16, bfloat16),
    stepping the bit pattern as an integer of the same width."""
    it = mx.int32 if x.dtype == mx.float32 else mx.int16
    bits = x.view(it)
    step = mx.where((x < y) == (x > 0), 1, -1).astype(it)
    nxt = (bits + step).view(x.dtype)
    neg_tiny = -(2 ** 31 - 1) if it == mx.int32 else -(2 ** 15 - 1)  # sign bit + the smallest subnormal
    tiny = mx.where(y > 0, mx.array(1, dtype=it), mx.array(neg_tiny, dtype=it)).view(x.dtype)
    out = mx.where(x == 0, tiny, nxt)
    out = mx.where(x == y, y, out)
    return mx.where(mx.isnan(x) | mx.isnan(y), mx.array(mx.nan, dtype=x.dtype), out)


def mode(x, dim=-1, keepdim=False):
    """torch.mode: the most frequent value along dim (the smallest of ties) and its last index."""
    if x.dtype == mx.bool_:
        value, idx = mode(x.astype(mx.uint8), dim, keepdim)
        return value.astype(mx.bool_), idx
    if x.ndim == 0:
        return x, mx.zeros((), dtype=mx.int64)
    dim = dim % x.ndim
    xm = mx.moveaxis(x, dim, -1)
    counts = mx.sum(mx.expand_dims(xm, -1) == mx.expand_dims(xm, -2), axis=-1)
    best = mx.max(counts, axis=-1, keepdims=True)
    big = mx.where(counts == best, xm, mx.array(mx.inf if mx.issubdtype(x.dtype, mx.inexact) else mx.iinfo(x.dtype).max, dtype=x.dtype))
    value = mx.min(big, axis=-1, keepdims=True)
    n = xm.shape[-1]
    idx = mx.max(mx.where(xm == value, mx.arange(n), -1), axis=-1, keepdims=True)
    value, idx = mx.moveaxis(value, -1, dim), mx.moveaxis(idx, -1, dim)
    if not keepdim:
        value, idx = mx.squeeze(value, dim), mx.squeeze(idx, dim)
    return value, idx.astype(mx.int64)


def embedding_renorm(weight, indices, max_norm, norm_type):
    """aten.embedding_renorm: the rows used by indices rescaled to norm <= max_norm (as in place)."""
    norms = vector_norm(weight, norm_type, [1], True)
    used = mx.zeros((weight.shape[0],), dtype=mx.int32).at[indices.reshape(-1)].add(1) > 0
    scale = mx.where((norms > max_norm) & mx.expand_dims(used, 1), max_norm / (norms + 1e-7), 1.0)
    return (weight * scale).astype(weight.dtype)
