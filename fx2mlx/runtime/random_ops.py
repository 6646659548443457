"""Random ops on MLX's generator (same distributions as PyTorch's, different numbers)."""
import mlx.core as mx


def dropout(x, p, train):
    """aten.native_dropout -> (out, mask). Outside training (or p == 0) the input passes through."""
    if train is False or p == 0:
        return x, mx.ones(x.shape, dtype=mx.bool_)
    if p >= 1:
        return mx.zeros_like(x), mx.zeros(x.shape, dtype=mx.bool_)
    mask = mx.random.bernoulli(1.0 - p, x.shape)
    return x * mask * (1.0 / (1.0 - p)), mask
