"""Attention with PyTorch's semantics where MLX's fast kernel differs."""
import mlx.core as mx


def attention_bool_mask(q, k, v, scale, mask):
    """scaled_dot_product_attention with a boolean mask (True = attend). Rows where every key is
    masked give zeros, as PyTorch's do, instead of NaN."""
    out = mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=mask)
    return mx.where(mx.any(mask, axis=-1, keepdims=True), out, mx.zeros((), dtype=out.dtype))


def attention_nd(q, k, v, scale, mask=None, causal=False):
    """scaled_dot_product_attention on inputs of any rank >= 2 (PyTorch's math path): the batch
    dimensions (all but the last two) broadcast together and are flattened into MLX's heads axis.
    `causal` is PyTorch's top-left aligned lower triangle."""
    L, S = q.shape[-2], k.shape[-2]
    lead = mx.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    n = 1
    for d in lead:
        n *= d

    def flat(t, rows):
        return mx.broadcast_to(t, tuple(lead) + (rows, t.shape[-1])).reshape(1, n, rows, t.shape[-1])

    if causal:
        mask = mx.tril(mx.ones((L, S), dtype=mx.bool_))
    if mask is not None:
        mask = mx.broadcast_to(mask, tuple(lead) + (L, S)).reshape(1, n, L, S)
    q4, k4, v4 = flat(q, L), flat(k, S), flat(v, S)
    if mask is not None and mask.dtype == mx.bool_:
        out = attention_bool_mask(q4, k4, v4, scale, mask)
    else:
        out = mx.fast.scaled_dot_product_attention(q4, k4, v4, scale=scale, mask=mask)
    return out.reshape(tuple(lead) + (L, v.shape[-1]))
