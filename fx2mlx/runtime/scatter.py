"""Scatter, index_put and friends with PyTorch's semantics: functional updates of a copy (MLX's
`a[idx] = v` updates `a` in place, so every function writes into `mx.array(x)`, a fresh array).
`nonzero` has a data-dependent shape: it evaluates its input (like `.item()`)."""
import mlx.core as mx


def nonzero(x):
    """torch.nonzero: (n, ndim) int64 coordinates of the non-zero elements, in row-major order."""
    flat = x.reshape(-1) != 0
    n = int(mx.sum(flat).item()) if flat.size else 0
    idx = mx.arange(flat.size, dtype=mx.int64)
    key = mx.where(flat, idx, idx + flat.size)
    sel = mx.sort(key)[:n]
    coords = []
    for s in reversed(x.shape):
        coords.append(sel % s)
        sel = sel // s
    if not coords:
        return mx.zeros((n, 0), dtype=mx.int64)
    return mx.stack(coords[::-1], axis=1).astype(mx.int64)


def _index_tuple(indices):
    """aten's index list (None = a full slice, bool masks) as an MLX index tuple."""
    idx = []
    for i in indices:
        if i is None:
            idx.append(slice(None))
        elif i.dtype == mx.bool_:
            nz = nonzero(i)
            idx.extend(nz[:, k] for k in range(i.ndim))
        else:
            idx.append(i)
    return tuple(idx)


def index_put(x, indices, values, accumulate=False):
    """aten.index_put: x[indices] = values (or += with accumulate), on a copy."""
    values = values.astype(x.dtype)
    masks = [i for i in indices if i is not None]
    if (len(indices) == 1 and masks and masks[0].dtype == mx.bool_ and values.size == 1 and not accumulate
            and masks[0].ndim <= x.ndim):  # x[mask] = v: no data-dependent shape needed
        m = masks[0].reshape(masks[0].shape + (1,) * (x.ndim - masks[0].ndim))
        return mx.where(m, values.reshape(()), x)
    idx = _index_tuple(indices)
    if accumulate:
        return x.at[idx].add(values)
    y = mx.array(x)
    y[idx] = values
    return y


def _scatter_index(index, dim):
    idx = []
    for d in range(index.ndim):
        if d == dim:
            idx.append(index)
        else:
            shape = [1] * index.ndim
            shape[d] = index.shape[d]
            idx.append(mx.arange(index.shape[d]).reshape(shape))
    return tuple(idx)


def _lowest(dtype):
    if dtype == mx.bool_:
        return False
    return -mx.inf if mx.issubdtype(dtype, mx.inexact) else mx.iinfo(dtype).min


def _highest(dtype):
    if dtype == mx.bool_:
        return True
    return mx.inf if mx.issubdtype(dtype, mx.inexact) else mx.iinfo(dtype).max


def scatter(x, dim, index, src, reduce=None, include_self=True):
    """aten.scatter / scatter_add / scatter_reduce along `dim` (src a tensor or a scalar)."""
    if x.ndim == 0:
        return scatter(x.reshape(1), 0, index.reshape(1), src.reshape(1) if isinstance(src, mx.array) else src,
                       reduce, include_self).reshape(())
    if index.size == 0:
        return x
    dim = dim % x.ndim
    if index.ndim == 0:
        index = index.reshape(1)
    idx = _scatter_index(index, dim)
    if isinstance(src, mx.array):
        src = src.reshape(src.shape or (1,)) if src.ndim == 0 else src
        src = src[tuple(slice(0, s) for s in index.shape)].astype(x.dtype)
    else:
        src = mx.full(index.shape, src, dtype=x.dtype)
    if reduce is None:
        y = mx.array(x)
        y[idx] = src
        return y
    identity = {"sum": 0, "add": 0, "mean": 0, "prod": 1, "multiply": 1,
                "amax": _lowest(x.dtype), "amin": _highest(x.dtype)}[reduce]
    base = x
    if not include_self:
        base = mx.array(x)
        base[idx] = mx.full(index.shape, identity, dtype=x.dtype)
    if reduce in ("sum", "add"):
        return base.at[idx].add(src)
    if reduce in ("prod", "multiply"):
        return base.at[idx].multiply(src)
    if reduce == "amax":
        return base.at[idx].maximum(src)
    if reduce == "amin":
        return base.at[idx].minimum(src)
    total = base.at[idx].add(src)  # mean
    count = mx.zeros(x.shape, dtype=mx.int32).at[idx].add(mx.ones(index.shape, dtype=mx.int32))
    count = mx.maximum(count + (1 if include_self else 0), 1)
    if mx.issubdtype(x.dtype, mx.inexact):
        return (total / count).astype(x.dtype)
    return mx.floor_divide(total, count.astype(x.dtype)).astype(x.dtype)


def _slice_of(size, start, end, step):
    start = 0 if start is None else start
    end = size if end is None else end
    return slice(*slice(start, end, step).indices(size))


def slice_scatter(x, src, dim=0, start=None, end=None, step=1):
    """aten.slice_scatter: a copy of x with x[..., start:end:step, ...] = src."""
    dim = dim % x.ndim
    idx = [slice(None)] * x.ndim
    idx[dim] = _slice_of(x.shape[dim], start, end, step)
    y = mx.array(x)
    y[tuple(idx)] = src.astype(x.dtype)
    return y


def select_scatter(x, src, dim, index):
    """aten.select_scatter: a copy of x with x[..., index, ...] = src."""
    dim = dim % x.ndim
    idx = [slice(None)] * x.ndim
    idx[dim] = index
    y = mx.array(x)
    y[tuple(idx)] = src.astype(x.dtype)
    return y


def masked_scatter(x, mask, source):
    """aten.masked_scatter: the True positions of mask take source's elements in order."""
    shape = mx.broadcast_shapes(x.shape, mask.shape)
    x = mx.broadcast_to(x, shape)
    mask = mx.broadcast_to(mask, shape).reshape(-1)
    if source.size == 0:
        return x
    pos = mx.clip(mx.cumsum(mask.astype(mx.int32)) - 1, 0, source.size - 1)
    vals = source.reshape(-1).astype(x.dtype)[pos]
    return mx.where(mask, vals, x.reshape(-1)).reshape(x.shape)


def index_reduce(x, dim, index, source, reduce, include_self=True):
    """aten.index_reduce: x[..., index[i], ...] (reduce)= source[..., i, ...] along dim."""
    if x.ndim == 0:
        return index_reduce(x.reshape(1), 0, index.reshape(-1), source.reshape(1), reduce, include_self).reshape(())
    dim = dim % x.ndim
    shape = [1] * source.ndim
    shape[dim] = index.shape[0]
    full = mx.broadcast_to(index.reshape(shape), source.shape)
    return scatter(x, dim, full, source, reduce, include_self)


def put(x, index, source, accumulate=False):
    """aten.put: x.flatten()[index] = source (or += with accumulate)."""
    if index.size == 0:
        return x
    flat = x.reshape(-1)
    idx = index.reshape(-1)
    src = source.reshape(-1).astype(x.dtype)
    if accumulate:
        return flat.at[idx].add(src).reshape(x.shape)
    y = mx.array(flat)
    y[idx] = src
    return y.reshape(x.shape)


def diagonal_scatter(x, src, offset=0, dim1=0, dim2=1):
    """aten.diagonal_scatter: a copy of x with its diagonal (as torch.diagonal) replaced by src."""
    d1, d2 = dim1 % x.ndim, dim2 % x.ndim
    n = src.shape[-1]
    i = mx.arange(n) + (max(-offset, 0))
    j = mx.arange(n) + (max(offset, 0))
    perm = [a for a in range(x.ndim) if a not in (d1, d2)] + [d1, d2]
    inv = [perm.index(a) for a in range(x.ndim)]
    y = mx.array(mx.transpose(x, perm))
    y[..., i, j] = src.astype(x.dtype)
    return mx.transpose(y, inv)


def as_strided_scatter(x, src, size, stride, storage_offset=None):
    """aten.as_strided_scatter: the elements as_strided(x, size, stride) would view, replaced by src."""
    pos = mx.array(storage_offset or 0, dtype=mx.int64)
    for k, (s, st) in enumerate(zip(size, stride)):
        shape = [1] * len(size)
        shape[k] = s
        pos = pos + mx.arange(s, dtype=mx.int64).reshape(shape) * st
    y = mx.array(mx.contiguous(x).reshape(-1))
    y[pos.reshape(-1)] = src.reshape(-1).astype(x.dtype)
    return y.reshape(x.shape)


def masked_select(x, mask):
    """aten.masked_select: the elements where mask (broadcast) is True, flattened (evaluates mask)."""
    shape = mx.broadcast_shapes(x.shape, mask.shape)
    flat = mx.broadcast_to(x, shape).reshape(-1)
    m = mx.broadcast_to(mask, shape).reshape(-1)
    pos = nonzero(m)
    return flat[pos[:, 0]] if pos.shape[0] else mx.zeros((0,), dtype=x.dtype)


def index_with_masks(x, indices):
    """aten.index.Tensor when an index is a boolean mask (a data-dependent shape: evaluates the mask)."""
    return x[_index_tuple(indices)]


def repeat_interleave(repeats, output_size=None):
    """aten.repeat_interleave.Tensor: i repeated repeats[i] times (evaluates the total)."""
    n = repeats.shape[0]
    ends = mx.cumsum(repeats)
    total = output_size if output_size is not None else (int(ends[-1].item()) if n else 0)
    pos = mx.arange(total)
    return mx.sum(mx.expand_dims(pos, 1) >= mx.expand_dims(ends, 0), axis=1).astype(mx.int64)
