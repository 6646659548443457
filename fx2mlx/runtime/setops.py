"""Set-like and counting ops: unique (and unique_consecutive), searchsorted/bucketize, isin, histograms
(histc, histogram, histogramdd), bincount, segment_reduce, nonzero_static. `unique` and `bincount` have
data-dependent shapes: they evaluate their input (like `.item()`)."""
import mlx.core as mx


def _first_true_positions(flags, k):
    """Positions of the first k True entries of a 1-D bool array (in order)."""
    n = flags.size
    idx = mx.arange(n, dtype=mx.int64)
    return mx.sort(mx.where(flags, idx, idx + n))[:k]


def _lex_order(rows):
    """Stable lexicographic order of the rows of a 2-D array (last column least significant)."""
    order = mx.arange(rows.shape[0])
    for j in range(rows.shape[1] - 1, -1, -1):
        col = mx.take(rows[:, j], order)
        order = mx.take(order, mx.argsort(col))
    return order


def unique(x, sorted=True, return_inverse=False, return_counts=False, dim=None, consecutive=False):
    """torch.unique / unique_consecutive (dim=None: over all elements) -> (values, inverse, counts)."""
    if dim is None:
        rows = x.reshape(-1, 1)
    else:
        dim = dim % x.ndim
        moved = mx.moveaxis(x, dim, 0)
        rest = 1
        for v in moved.shape[1:]:
            rest *= v
        rows = moved.reshape(moved.shape[0], rest)
    n = rows.shape[0]
    if n == 0:
        empty = mx.zeros((0,) + (x.shape[:dim] + x.shape[dim + 1:] if dim is not None else ()), dtype=x.dtype)
        vals = empty if dim is None else mx.moveaxis(mx.zeros((0,) + moved.shape[1:], dtype=x.dtype), 0, dim)
        inv_shape = x.shape if dim is None and return_inverse else (0,)
        if dim is not None:
            inv_shape = (0,)
        return vals, mx.zeros(inv_shape, dtype=mx.int64), mx.zeros((0,), dtype=mx.int64)
    if consecutive:
        order = mx.arange(n)
    elif rows.shape[1] == 1:
        order = mx.argsort(rows[:, 0])
    else:
        order = _lex_order(rows)
    s = mx.take(rows, order, axis=0)
    if rows.shape[1] == 0:
        new = mx.concatenate([mx.array([True]), mx.zeros((n - 1,), dtype=mx.bool_)])
    else:
        new = mx.concatenate([mx.array([True]), mx.any(s[1:] != s[:-1], axis=1)])
    k = int(mx.sum(new).item())
    starts = _first_true_positions(new, k)
    values = mx.take(s, starts, axis=0)
    if dim is None:
        values = values.reshape(-1)
    else:
        values = mx.moveaxis(values.reshape((k,) + moved.shape[1:]), 0, dim)
    group = (mx.cumsum(new.astype(mx.int64)) - 1)
    inverse = mx.zeros((n,), dtype=mx.int64)
    inverse[order] = group
    if dim is None:
        inverse = inverse.reshape(x.shape)
    counts = mx.concatenate([starts[1:], mx.array([n], dtype=mx.int64)]) - starts
    if dim is not None:  # with a dim, PyTorch always returns the inverse and the counts
        return values, inverse, counts
    none = mx.zeros((0,), dtype=mx.int64)  # PyTorch returns empty tensors for what was not asked
    return values, inverse if return_inverse else none, counts if return_counts else none


def searchsorted(sorted_sequence, values, right=False, side=None, sorter=None, out_int32=False):
    """torch.searchsorted (1-D or batched boundaries, optional sorter); NaN sorts last."""
    if side is not None:
        right = side == "right"
    seq = sorted_sequence
    if sorter is not None:
        seq = mx.take_along_axis(seq, sorter, axis=-1)
    scalar = not isinstance(values, mx.array)
    v = mx.array(values, dtype=seq.dtype) if scalar else values
    if seq.ndim == 1:
        s = seq.reshape((1,) * v.ndim + (seq.shape[0],))
    else:
        s = mx.expand_dims(seq, -2)
    vv = mx.expand_dims(v, -1)
    hit = (vv >= s) if right else (vv > s)
    if mx.issubdtype(seq.dtype, mx.inexact):
        hit = hit | (mx.isnan(vv) & ~mx.isnan(s))  # NaN values go after every number
    out = mx.sum(hit, axis=-1)
    return out.astype(mx.int32 if out_int32 else mx.int64)


def isin(elements, test_elements, invert=False):
    """torch.isin: whether each element appears in test_elements."""
    e = elements if isinstance(elements, mx.array) else mx.array(elements)
    t = test_elements.reshape(-1) if isinstance(test_elements, mx.array) else mx.array([test_elements])
    if t.size == 0:
        hit = mx.zeros(e.shape, dtype=mx.bool_)
    else:
        hit = mx.any(mx.expand_dims(e, -1) == t, axis=-1)
    return mx.logical_not(hit) if invert else hit


def _linspace(a, b, n):
    """torch.linspace's float arithmetic: from the start for the first half, from the end after."""
    i = mx.arange(n, dtype=mx.float32)
    step = (b - a) / max(n - 1, 1)
    return mx.where(i < n // 2, a + step * i, b - step * (n - 1 - i))


def _linear_bin(x, edges, bins, local_search=True):
    """PyTorch's bin of x among `bins` edges-delimited bins: the linear position, then (local_search)
    std::upper_bound over edges[max(pos - 1, 0) : min(pos + 2, bins + 1)]."""
    lo, hi = edges[0], edges[-1]
    pos = ((x - lo) * bins / (hi - lo)).astype(mx.int32)
    if not local_search:
        return pos
    start = mx.maximum(pos - 1, 0)
    stop = mx.minimum(pos + 2, bins + 1)
    cand = mx.expand_dims(start, -1) + mx.arange(3)
    ok = (cand < mx.expand_dims(stop, -1)) & (mx.take(edges, mx.clip(cand, 0, bins)) <= mx.expand_dims(x, -1))
    return start + mx.sum(ok, axis=-1) - 1


def _bin_counts(x, edges, bins, weight=None, local_search=True):
    """Counts (or weight sums) of x in [edges[i], edges[i+1]) (the last bin closed): PyTorch's
    linear position, corrected against the edges (histogram) or not (histc)."""
    x = x.reshape(-1)
    lo, hi = edges[0], edges[-1]
    pos = _linear_bin(x, edges, bins, local_search)
    pos = mx.where(pos == bins, bins - 1, pos)
    inside = (x >= lo) & (x <= hi)
    pos = mx.clip(pos, 0, bins - 1)
    w = mx.ones(x.shape, dtype=mx.float32) if weight is None else weight.reshape(-1).astype(mx.float32)
    return mx.zeros((bins,), dtype=mx.float32).at[pos].add(mx.where(inside, w, 0.0))


def _outer_edges(x, lo, hi, widen):
    """The histogram's range: (lo, hi) if given, else the data's; widened by `widen` when empty."""
    if lo is None:
        a = mx.min(x) if x.size else mx.array(0.0)
        b = mx.max(x) if x.size else mx.array(1.0 if widen == 0.5 else 0.0)
    else:
        a, b = mx.array(float(lo)), mx.array(float(hi))
    a, b = a.astype(mx.float32), b.astype(mx.float32)
    same = a == b
    return mx.where(same, a - widen, a), mx.where(same, b + widen, b)


def histc(x, bins=100, lo=0, hi=0):
    """torch.histc: equal-width bins over [min, max] (the data's range when min == max == 0)."""
    xf = x.astype(mx.float32)
    a, b = _outer_edges(xf, None if lo == hi == 0 else lo, hi, 1.0)
    edges = _linspace(a, b, bins + 1)
    return _bin_counts(xf, edges, bins, local_search=False).astype(x.dtype)


def histogram(x, bins, range_=None, weight=None, density=False):
    """torch.histogram with a bin count or with bin edges -> (hist, bin_edges)."""
    xf = x.astype(mx.float32)
    if isinstance(bins, mx.array):
        edges = bins.astype(mx.float32)
        nb = edges.shape[0] - 1
        flat = xf.reshape(-1)
        pos = mx.sum(mx.expand_dims(flat, -1) >= mx.expand_dims(edges, 0), axis=-1) - 1
        pos = mx.where(pos == nb, nb - 1, pos)
        inside = (flat >= edges[0]) & (flat <= edges[-1])
        w = mx.ones(flat.shape, dtype=mx.float32) if weight is None else weight.reshape(-1).astype(mx.float32)
        hist = mx.zeros((nb,), dtype=mx.float32).at[mx.clip(pos, 0, nb - 1)].add(mx.where(inside, w, 0.0))
    else:
        nb = bins
        a, b = _outer_edges(xf, None if range_ is None else range_[0], None if range_ is None else range_[1], 0.5)
        edges = _linspace(a, b, nb + 1)
        hist = _bin_counts(xf, edges, nb, weight)
    if density:
        hist = hist / (mx.sum(hist) * (edges[1:] - edges[:-1]))
    return hist.astype(x.dtype), edges.astype(x.dtype)


def _upper_bound(seq, v):
    """std::upper_bound(seq, seq + n, v) - seq for each value of v (libstdc++'s bisection, so the
    result for unsorted seq is PyTorch's too)."""
    n = seq.shape[0]
    first = mx.zeros(v.shape, dtype=mx.int32)
    count = mx.full(v.shape, n, dtype=mx.int32)
    for _ in range(n.bit_length()):
        half = count // 2
        mid = first + half
        below = v < mx.take(seq, mx.minimum(mid, n - 1))
        active = count > 0
        first = mx.where(active & ~below, mid + 1, first)
        count = mx.where(active, mx.where(below, half, count - half - 1), count)
    return first


def histogramdd_bin_edges(x, bins, range_=None):
    """torch.histogramdd's bin edges: bins[d] + 1 equal-width edges per innermost coordinate d, over
    range_ (lo0, hi0, lo1, hi1, ...) or the data's range (widened by 0.5 when empty; [0, 1] for no data)."""
    d = x.shape[-1]
    pts = x.reshape(-1, d).astype(mx.float32)
    edges = []
    for i in range(d):
        if range_ is not None:
            a, b = mx.array(float(range_[2 * i])), mx.array(float(range_[2 * i + 1]))
        elif pts.shape[0] == 0:
            a, b = mx.array(0.0), mx.array(1.0)
        else:
            a, b = mx.min(pts[:, i]), mx.max(pts[:, i])
        same = a == b
        a, b = mx.where(same, a - 0.5, a), mx.where(same, b + 0.5, b)
        edges.append(_linspace(a, b, bins[i] + 1).astype(x.dtype))
    return edges


def histogramdd(x, bins, range_=None, weight=None, density=False):
    """torch.histogramdd's histogram (_histogramdd_from_bin_cts / _from_bin_tensors): bins is a list of
    bin counts (equal-width edges, PyTorch's linear position + local search) or of edge tensors
    (PyTorch's binary search). Points outside the edges (or NaN) are not counted."""
    d = x.shape[-1]
    pts = x.reshape(-1, d)
    by_count = not isinstance(bins[0], mx.array)
    edges = histogramdd_bin_edges(x, bins, range_) if by_count else list(bins)
    edges = [e.astype(x.dtype) for e in edges]
    sizes = [e.shape[0] - 1 for e in edges]
    flat = mx.zeros(pts.shape[:1], dtype=mx.int32)
    inside = mx.ones(pts.shape[:1], dtype=mx.bool_)
    for i, e in enumerate(edges):
        v, nb = pts[:, i], sizes[i]
        lo, hi = e[0], e[-1]
        inside = inside & (v >= lo) & (v <= hi)
        if by_count:
            pos = _linear_bin(v, e, nb)
        else:
            pos = _upper_bound(e, v) - 1
        pos = mx.clip(mx.where(pos == nb, nb - 1, pos), 0, max(nb - 1, 0))
        flat = flat * nb + pos
    total = 1
    for nb in sizes:
        total *= nb
    w = mx.ones(pts.shape[:1], dtype=mx.float32) if weight is None else weight.reshape(-1).astype(mx.float32)
    hist = mx.zeros((total,), dtype=mx.float32)
    if pts.shape[0]:
        hist = hist.at[flat].add(mx.where(inside, w, 0.0))
    hist = hist.astype(x.dtype).reshape(sizes)
    if density:
        hist = hist / mx.sum(hist)
        for i, e in enumerate(edges):
            shape = [1] * d
            shape[i] = sizes[i]
            hist = hist / (e[1:] - e[:-1]).reshape(shape)
    return hist


def bincount(x, weights=None, minlength=0):
    """torch.bincount: evaluates max(x) for the output length."""
    n = max(int(mx.max(x).item()) + 1 if x.size else 0, minlength)
    w = mx.ones(x.shape, dtype=mx.int64) if weights is None else weights
    out = mx.zeros((n,), dtype=w.dtype).at[x].add(w)
    return out


def segment_reduce(data, reduce, lengths=None, offsets=None, axis=0, initial=None):
    """torch.segment_reduce along axis: sum, mean, max, min, prod. lengths (..., S) or offsets
    (..., S + 1) may be batched: their leading dims are data.shape[:axis] (one segmentation per row)."""
    axis = axis % data.ndim
    if lengths is None:
        starts, ends = offsets[..., :-1], offsets[..., 1:]
        lengths = ends - starts
    else:
        ends = mx.cumsum(lengths, axis=-1)
        starts = ends - lengths
    lead = data.shape[:axis]
    if lengths.ndim == 1 and lead:  # one segmentation shared by every row
        full = lead + lengths.shape
        starts, ends, lengths = (mx.broadcast_to(t, full) for t in (starts, ends, lengths))
    rest = (1,) * (data.ndim - axis - 1)
    pos = mx.arange(data.shape[axis])
    member = (pos >= mx.expand_dims(starts, -1)) & (pos < mx.expand_dims(ends, -1))  # lead + (S, n)
    m = member.reshape(member.shape + rest)
    x = mx.expand_dims(data, axis)  # lead + (1, n) + rest
    red = axis + 1
    empty = (lengths == 0).reshape(lengths.shape + rest)
    # PyTorch accumulates sum/mean/prod in the data's dtype, element by element: for half types (short
    # axes) that rounding is reproduced by a sequential loop; otherwise the reduction is vectorised.
    sequential = data.dtype in (mx.float16, mx.bfloat16) and data.shape[axis] <= 256
    if sequential and reduce in ("sum", "mean", "prod"):
        unit = 1 if reduce == "prod" else 0
        acc = mx.full(lengths.shape + data.shape[axis + 1:], unit if initial is None else initial, dtype=data.dtype)
        idx_shape = lengths.shape + rest
        for k in range(data.shape[axis]):
            idx = mx.clip(starts + k, 0, data.shape[axis] - 1).reshape(idx_shape)
            v = mx.take_along_axis(data, idx, axis=axis)
            step = acc * v if reduce == "prod" else acc + v
            acc = mx.where((k < lengths).reshape(idx_shape), step.astype(data.dtype), acc)
        out = acc
        if reduce == "mean":
            out = out / mx.maximum(lengths, 1).astype(out.dtype).reshape(lengths.shape + rest)
        default = mx.nan if reduce == "mean" else unit
    elif reduce == "sum" or reduce == "mean":
        out = mx.sum(mx.where(m, x, 0), axis=red)
        if initial is not None:  # the reduction starts from `initial` (also for the mean)
            out = out + initial
        if reduce == "mean":
            out = out / mx.maximum(lengths, 1).astype(out.dtype).reshape(lengths.shape + rest)
            default = mx.nan
        else:
            default = 0
    elif reduce == "prod":
        out = mx.prod(mx.where(m, x, 1), axis=red)
        if initial is not None:
            out = out * initial
        default = 1
    elif reduce == "max":
        out = mx.max(mx.where(m, x, -mx.inf), axis=red)
        if initial is not None:
            out = mx.maximum(out, initial)
        default = -mx.inf
    else:
        out = mx.min(mx.where(m, x, mx.inf), axis=red)
        if initial is not None:
            out = mx.minimum(out, initial)
        default = mx.inf
    fill = initial if initial is not None else default
    return mx.where(empty, fill, out).astype(data.dtype)


def nonzero_static(x, size, fill_value=-1):
    """torch.nonzero_static: the first `size` coordinates of non-zeros, padded with fill_value."""
    flat = x.reshape(-1) != 0
    n = flat.size
    idx = mx.arange(n, dtype=mx.int64)
    key = mx.sort(mx.where(flat, idx, idx + n))
    if size > n:
        key = mx.concatenate([key, mx.full((size - n,), 2 * n, dtype=mx.int64)])
    key = key[:size]
    valid = key < n
    sel = mx.where(valid, key, 0)
    coords = []
    for s in reversed(x.shape):
        coords.append(sel % s)
        sel = sel // s
    if not coords:
        return mx.zeros((size, 0), dtype=mx.int64)
    out = mx.stack(coords[::-1], axis=1)
    return mx.where(mx.expand_dims(valid, 1), out, fill_value).astype(mx.int64)
