"""Pairwise distances (cdist, pdist) and embedding bags with PyTorch's semantics."""
import math

import mlx.core as mx


def _pnorm(d, p, axis):
    """The p-norm of the differences d along axis (p = 0 counts non-zeros, inf takes the max)."""
    a = mx.abs(d)
    if p == 0:
        return mx.sum((a != 0).astype(d.dtype), axis=axis)
    if p == math.inf:
        return mx.max(a, axis=axis)
    if p == 1:
        return mx.sum(a, axis=axis)
    if p == 2:
        return mx.sqrt(mx.sum(a * a, axis=axis))
    return mx.power(mx.sum(mx.power(a, p), axis=axis), 1.0 / p)


def cdist(x1, x2, p):
    """aten._cdist_forward: (..., P, M) x (..., R, M) -> (..., P, R)."""
    if x1.shape[-2] == 0 or x2.shape[-2] == 0:
        return mx.zeros(mx.broadcast_shapes(x1.shape[:-2], x2.shape[:-2]) + (x1.shape[-2], x2.shape[-2]), dtype=x1.dtype)
    if x1.shape[-1] == 0:
        return mx.zeros(mx.broadcast_shapes(x1.shape[:-2], x2.shape[:-2]) + (x1.shape[-2], x2.shape[-2]), dtype=x1.dtype)
    d = mx.expand_dims(x1, -2) - mx.expand_dims(x2, -3)
    return _pnorm(d, p, -1)


def pdist(x, p):
    """aten._pdist_forward: distances between the rows i < j of x (N, M), in row-major order."""
    n = x.shape[0]
    ii = [i for i in range(n) for j in range(i + 1, n)]
    jj = [j for i in range(n) for j in range(i + 1, n)]
    if not ii:
        return mx.zeros((0,), dtype=x.dtype)
    d = x[mx.array(ii)] - x[mx.array(jj)]
    return _pnorm(d, p, -1)


def embedding_bag(weight, indices, offsets, mode, per_sample_weights=None, include_last_offset=False,
                  padding_idx=-1):
    """aten._embedding_bag: bags of rows of weight, reduced by sum (0), mean (1) or max (2).
    Returns (output, offset2bag, bag_size, max_indices) as PyTorch does (the last three for reference)."""
    n = indices.shape[0]
    nb = offsets.shape[0] - (1 if include_last_offset else 0)
    pos = mx.arange(n)
    bag = mx.sum(mx.expand_dims(offsets[:nb], 0) <= mx.expand_dims(pos, 1), axis=1) - 1  # (N,)
    if include_last_offset:
        bag = mx.where(pos >= offsets[nb], -1, bag)
    keep = indices != padding_idx if padding_idx is not None and padding_idx >= 0 else mx.ones((n,), dtype=mx.bool_)
    member = (mx.expand_dims(bag, 0) == mx.expand_dims(mx.arange(nb), 1)) & mx.expand_dims(keep, 0)  # (B, N)
    rows = weight[indices]
    if rows.dtype in (mx.float16, mx.bfloat16):  # bags accumulate in float32, rounded once (as PyTorch)
        rows = rows.astype(mx.float32)
    if per_sample_weights is not None:
        rows = rows * mx.expand_dims(per_sample_weights.astype(rows.dtype), 1)
    count = mx.sum(member, axis=1).astype(mx.int64)
    if mode == 2:
        masked = mx.where(mx.expand_dims(member, 2), mx.expand_dims(rows, 0), -mx.inf)
        out = mx.where(mx.expand_dims(count, 1) > 0, mx.max(masked, axis=1), 0).astype(weight.dtype)
        arg = mx.argmax(masked, axis=1)
        max_idx = mx.where(mx.expand_dims(count, 1) > 0, indices[arg], 0).astype(mx.int64)
    else:
        out = member.astype(rows.dtype) @ rows
        if mode == 1:
            out = out / mx.maximum(count, 1).astype(out.dtype).reshape(-1, 1)
        max_idx = None
    # PyTorch's auxiliary outputs, shaped as its meta function gives them: bag_size has one entry per
    # offset, max_indices one per bag (and feature, in max mode)
    n_off = offsets.shape[0]
    bag_size = mx.concatenate([count, mx.zeros((n_off - nb,), dtype=mx.int64)]) if n_off > nb else count
    if mode == 0:
        bag_size = mx.zeros((n_off,), dtype=mx.int64)
    offset2bag = bag.astype(mx.int64) if (mode != 0 or (padding_idx is not None and padding_idx >= 0)) \
        else mx.zeros((0,), dtype=mx.int64)
    if max_idx is None:
        max_idx = mx.zeros((nb,), dtype=mx.int64) if mode == 0 else count
    return out.astype(weight.dtype), offset2bag, bag_size, max_idx
