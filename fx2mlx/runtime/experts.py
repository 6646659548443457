"""Mixture-of-experts matmuls: each row goes through its own expert's weight, as gathered matmuls
(mx.gather_mm / mx.gather_qmm), the way mlx-lm's SwitchLinear does. No data-dependent shapes: every
row is computed once with the expert it was routed to, whatever the routing."""
import mlx.core as mx


def gather_linear(x, weight, indices):
    """x (S, in), weight (E, out, in) stacked experts, indices (S,) -> (S, out): row s times weight[indices[s]].T"""
    return gather_matmul(x, weight.swapaxes(-1, -2), indices)


def gather_matmul(x, weight, indices):
    """x (S, in), weight (E, in, out) stacked experts, indices (S,) -> (S, out): row s times weight[indices[s]].
    From 64 rows on (a prefill), rows are sorted by expert first so that each expert's rows form one
    matrix product (sorted_indices), then put back in order, as mlx-lm's SwitchGLU does."""
    dtype = x.dtype
    if dtype != mx.float32 and mx.default_device() == mx.cpu:  # MLX's CPU gather_mm is float32-only
        x, weight = x.astype(mx.float32), weight.astype(mx.float32)
    if indices.size >= 64:
        order = mx.argsort(indices)
        y = mx.gather_mm(mx.expand_dims(x[order], -2), weight, rhs_indices=indices[order], sorted_indices=True)
        y = y.squeeze(-2)[mx.argsort(order)]
    else:
        y = mx.gather_mm(mx.expand_dims(x, -2), weight, rhs_indices=indices).squeeze(-2)
    return y.astype(dtype)


def gather_qlinear(x, weight, scales, biases, indices, group_size, bits):
    """gather_linear with quantized experts (weight packed by mx.quantize along `in`); sorted from 64 rows on."""
    if indices.size >= 64:
        order = mx.argsort(indices)
        y = mx.gather_qmm(mx.expand_dims(x[order], -2), weight, scales, biases, rhs_indices=indices[order],
                          transpose=True, group_size=group_size, bits=bits, sorted_indices=True)
        return y.squeeze(-2)[mx.argsort(order)]
    return mx.gather_qmm(mx.expand_dims(x, -2), weight, scales, biases, rhs_indices=indices, transpose=True,
                         group_size=group_size, bits=bits).squeeze(-2)


def grouped_matmul(x, weight, offsets):
    """Rows of x (S, in) grouped by expert (rows offsets[e-1]:offsets[e] belong to expert e; rows past
    offsets[-1] give zeros), weight (E, in, out) -> (S, out). The group of each row is counted from the
    offsets, so nothing depends on the data's sizes."""
    rows = mx.arange(x.shape[0])
    group = (mx.expand_dims(rows, -1) >= mx.expand_dims(offsets, 0)).astype(mx.int32).sum(-1)
    inside = group < weight.shape[0]
    y = gather_matmul(x, weight, mx.minimum(group, weight.shape[0] - 1))
    return mx.where(mx.expand_dims(inside, -1), y, mx.zeros_like(y))
