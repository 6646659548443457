"""Attention with PyTorch's semantics where MLX's fast kernel differs."""
import mlx.core as mx


def attention_bool_mask(q, k, v, scale, mask):
    """scaled_dot_product_attention with a boolean mask (True = attend). Rows where every key is
    masked give zeros, as PyTorch's do, instead of NaN."""
    out = mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=mask)
    return mx.where(mx.any(mask, axis=-1, keepdims=True), out, mx.zeros((), dtype=out.dtype))
