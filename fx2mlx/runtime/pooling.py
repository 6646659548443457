"""Max pooling that also returns PyTorch's indices (flat positions in each input plane), its backward,
max_unpool, and adaptive max pooling. Inputs are channels-first, batched (N, C, *S) or not (C, *S)."""
import math

import mlx.core as mx


def _mp_geometry(size, k, s, p, d, ceil_mode):
    eff = d * (k - 1) + 1
    num = size + 2 * p - eff
    out = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:  # the last window must start inside the input or left pad
        out -= 1
    return out


def _mp_list(v, nd, default=None):
    if v is None or len(v) == 0:
        return list(default)
    return list(v) * nd if len(v) == 1 else list(v)


def max_pool_with_indices(x, nd, kernel_size, stride, padding, dilation, ceil_mode):
    """max_pool{1,2,3}d_with_indices -> (values, int64 indices into the flattened input plane)."""
    unbatched = x.ndim == nd + 1
    if unbatched:
        x = mx.expand_dims(x, 0)
    k = _mp_list(kernel_size, nd)
    s = _mp_list(stride, nd, k)
    p = _mp_list(padding, nd, [0] * nd)
    d = _mp_list(dilation, nd, [1] * nd)
    spatial = list(x.shape[2:])
    out = [_mp_geometry(spatial[i], k[i], s[i], p[i], d[i], ceil_mode) for i in range(nd)]
    right = [max(0, (out[i] - 1) * s[i] + d[i] * (k[i] - 1) + 1 - spatial[i] - p[i]) for i in range(nd)]
    low = -mx.inf if mx.issubdtype(x.dtype, mx.inexact) else mx.iinfo(x.dtype).min
    xp = mx.pad(x, [(0, 0), (0, 0)] + [(p[i], right[i]) for i in range(nd)], constant_values=low)
    xp = mx.contiguous(xp)
    strides = [1] * xp.ndim
    for i in range(xp.ndim - 2, -1, -1):
        strides[i] = strides[i + 1] * xp.shape[i + 1]
    shape = list(xp.shape[:2]) + out + k
    st = strides[:2] + [strides[2 + i] * s[i] for i in range(nd)] + [strides[2 + i] * d[i] for i in range(nd)]
    w = mx.as_strided(xp, shape, st).reshape(list(xp.shape[:2]) + out + [math.prod(k)])
    values = mx.max(w, axis=-1)
    arg = mx.argmax(w, axis=-1).astype(mx.int64)
    flat = mx.zeros(arg.shape, dtype=mx.int64)
    rest = arg
    plane = 1
    for i in range(nd - 1, -1, -1):  # kernel offset -> input coordinate, row-major over the input plane
        ki = rest % k[i]
        rest = rest // k[i]
        oshape = [1] * (2 + nd)
        oshape[2 + i] = out[i]
        o = mx.arange(out[i], dtype=mx.int64).reshape(oshape)
        coord = o * s[i] - p[i] + ki * d[i]
        flat = flat + coord * plane
        plane *= spatial[i]
    if unbatched:
        values, flat = values[0], flat[0]
    return values, flat


def max_pool_backward(grad, x, nd, indices):
    """max_pool{2,3}d_with_indices_backward: each output's gradient added at its input position."""
    unbatched = x.ndim == nd + 1
    shape = x.shape
    if unbatched:
        grad, indices, x = mx.expand_dims(grad, 0), mx.expand_dims(indices, 0), mx.expand_dims(x, 0)
    n, c = x.shape[0], x.shape[1]
    plane = math.prod(x.shape[2:])
    base = (mx.arange(n * c, dtype=mx.int64) * plane).reshape(n, c, *([1] * (indices.ndim - 2)))
    flat = (indices + base).reshape(-1)
    out = mx.zeros((n * c * plane,), dtype=grad.dtype).at[flat].add(grad.reshape(-1))
    return out.reshape(shape)


def max_unpool(x, indices, output_size):
    """max_unpool{2,3}d: values written at their flat indices in zero output planes of output_size."""
    nd = len(output_size)
    unbatched = x.ndim == nd + 1
    if unbatched:
        x, indices = mx.expand_dims(x, 0), mx.expand_dims(indices, 0)
    n, c = x.shape[0], x.shape[1]
    plane = math.prod(output_size)
    base = (mx.arange(n * c, dtype=mx.int64) * plane).reshape(n, c, *([1] * (x.ndim - 2)))
    flat = (indices.astype(mx.int64) + base).reshape(-1)
    out = mx.zeros((n * c * plane,), dtype=x.dtype)
    out[flat] = x.reshape(-1)
    out = out.reshape(n, c, *output_size)
    return out[0] if unbatched else out


def adaptive_max_pool(x, output_size):
    """adaptive_max_pool{1,2,3}d -> (values, int64 flat indices): bins [floor(i*S/O), ceil((i+1)*S/O))."""
    nd = len(output_size)
    unbatched = x.ndim == nd + 1
    if unbatched:
        x = mx.expand_dims(x, 0)
    spatial = list(x.shape[2:])
    n, c = x.shape[0], x.shape[1]
    flat_x = x.reshape(n, c, -1)
    pos = mx.arange(math.prod(spatial), dtype=mx.int64).reshape(spatial)
    bins = [[((j * spatial[i]) // output_size[i], -(-((j + 1) * spatial[i]) // output_size[i]))
             for j in range(output_size[i])] for i in range(nd)]
    vals, idxs = [], []

    def rec(i, sl):
        if i == nd:
            region = tuple(slice(a, b) for a, b in sl)
            p = pos[region].reshape(-1)
            v = mx.take(flat_x, p, axis=2)
            a = mx.argmax(v, axis=2)
            vals.append(mx.max(v, axis=2))
            idxs.append(mx.take(p, a))
            return
        for b in bins[i]:
            rec(i + 1, sl + [b])

    rec(0, [])
    values = mx.stack(vals, axis=-1).reshape(n, c, *output_size)
    indices = mx.stack(idxs, axis=-1).reshape(n, c, *output_size).astype(mx.int64)
    if unbatched:
        values, indices = values[0], indices[0]
    return values, indices


def _fractional_starts(sample, n_in, n_out, pool):
    """PyTorch's generate_intervals, vectorised over the planes: sample (N, C) -> starts (N, C, n_out)."""
    if n_out == 1:
        return mx.full(sample.shape + (1,), n_in - pool, dtype=mx.int32)
    alpha = mx.array((n_in - pool) / (n_out - 1), dtype=mx.float32)
    i = mx.arange(n_out, dtype=mx.float32)
    s = mx.expand_dims(sample.astype(mx.float32), -1)
    starts = ((i + s) * alpha).astype(mx.int32) - (s * alpha).astype(mx.int32)
    last = mx.full(sample.shape + (1,), n_in - pool, dtype=mx.int32)
    return mx.concatenate([starts[..., :-1], last], axis=-1)


def fractional_max_pool(x, kernel_size, output_size, samples):
    """fractional_max_pool{2,3}d with the given random samples (N, C, nd) -> (values, flat indices)."""
    nd = len(output_size)
    unbatched = x.ndim == nd + 1
    if unbatched:
        x, samples = mx.expand_dims(x, 0), mx.expand_dims(samples, 0)
    n, c = x.shape[0], x.shape[1]
    spatial = list(x.shape[2:])
    flat_pos = None
    for i in range(nd):  # sample k drives the k-th spatial dim counted from the last (W first in 2-D)
        k = (nd - 1 - i) if nd == 2 else i
        st = _fractional_starts(samples[..., k], spatial[i], output_size[i], kernel_size[i])
        coord = mx.expand_dims(st, -1) + mx.arange(kernel_size[i], dtype=mx.int32)  # (N, C, O_i, K_i)
        shape = [n, c] + [1] * (2 * nd)
        shape[2 + i] = output_size[i]
        shape[2 + nd + i] = kernel_size[i]
        stride = math.prod(spatial[i + 1:])
        term = coord.reshape(shape) * stride
        flat_pos = term if flat_pos is None else flat_pos + term
    full = [n, c] + list(output_size) + list(kernel_size)
    windows, taps = math.prod(output_size), math.prod(kernel_size)
    if n * c == 0:  # MLX cannot argmax an empty array
        out = mx.zeros([n, c] + list(output_size), dtype=x.dtype)
        values, idx = out, out.astype(mx.int64)
        return (values[0], idx[0]) if unbatched else (values, idx)
    flat_pos = mx.broadcast_to(flat_pos, full).reshape(n, c, windows * taps)
    vals = mx.take_along_axis(x.reshape(n, c, math.prod(spatial)), flat_pos, axis=2).reshape(n, c, windows, taps)
    arg = mx.argmax(vals, axis=-1)
    values = mx.max(vals, axis=-1).reshape([n, c] + list(output_size))
    idx = mx.take_along_axis(flat_pos.reshape(n, c, windows, taps), mx.expand_dims(arg, -1), axis=-1)
    idx = idx.reshape([n, c] + list(output_size)).astype(mx.int64)
    if unbatched:
        values, idx = values[0], idx[0]
    return values, idx
