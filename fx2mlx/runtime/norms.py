"""Normalisations that use batch statistics (training-mode batch norm, instance norm) or return their
statistics (native_group_norm, _native_batch_norm_legit): PyTorch's outputs, including mean and rstd."""
import mlx.core as mx


def _stats(x, axes, eps):
    """(mean, rstd) over axes in float32 (PyTorch's accumulation type for half inputs), keepdims."""
    xf = x.astype(mx.float32) if x.dtype in (mx.float16, mx.bfloat16) else x
    mean = mx.mean(xf, axis=axes, keepdims=True)
    var = mx.var(xf, axis=axes, keepdims=True)
    return mean, mx.rsqrt(var + eps)


def _affine(y, weight, bias, x):
    """weight * y + bias per channel, rounded to x's dtype once (y is float32 for half inputs, as
    PyTorch's kernels compute the whole normalisation in float32)."""
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y.astype(x.dtype)


def native_group_norm(x, weight, bias, n, c, hxw, group, eps):
    """aten.native_group_norm -> (out, mean (N, G), rstd (N, G))."""
    g = x.reshape(n, group, c * hxw // group)
    mean, rstd = _stats(g, [2], eps)
    y = ((g - mean) * rstd).reshape(x.shape)
    return _affine(y, weight, bias, x), mean.reshape(n, group).astype(x.dtype), rstd.reshape(n, group).astype(x.dtype)


def batch_norm_batch_stats(x, weight, bias, eps):
    """Batch norm with the batch's statistics (training mode) -> (out, mean (C,), rstd (C,))."""
    axes = [0] + list(range(2, x.ndim))
    mean, rstd = _stats(x, axes, eps)
    y = (x - mean) * rstd
    return _affine(y, weight, bias, x), mean.reshape(-1).astype(x.dtype), rstd.reshape(-1).astype(x.dtype)


def batch_norm_running_stats(x, weight, bias, running_mean, running_var, eps):
    """Batch norm with running statistics (eval mode)."""
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    y = (x - running_mean.reshape(shape)) * mx.rsqrt(running_var.reshape(shape) + eps)
    return _affine(y, weight, bias, x)


def native_batch_norm_legit(x, weight, bias, running_mean, running_var, training, eps):
    """aten._native_batch_norm_legit(.no_stats) -> (out, save_mean, save_rstd)."""
    if training or running_mean is None:
        return batch_norm_batch_stats(x, weight, bias, eps)
    empty = mx.zeros((0,), dtype=x.dtype)
    return batch_norm_running_stats(x, weight, bias, running_mean, running_var, eps), empty, empty


def instance_norm(x, weight, bias, running_mean, running_var, use_input_stats, eps):
    """aten.instance_norm: statistics per (sample, channel) over the spatial axes."""
    if not use_input_stats:
        return batch_norm_running_stats(x, weight, bias, running_mean, running_var, eps)
    mean, rstd = _stats(x, list(range(2, x.ndim)), eps)
    return _affine((x - mean) * rstd, weight, bias, x)


def native_layer_norm(x, normalized_shape, weight, bias, eps):
    """aten.native_layer_norm -> (out, mean, rstd); mean and rstd keep the normalised axes as size 1.
    (MLX is lazy: unused statistics cost nothing.)"""
    k = len(normalized_shape)
    axes = list(range(x.ndim - k, x.ndim))
    if k == 1:
        out = mx.fast.layer_norm(x, weight, bias, eps)
    else:
        mean, rstd = _stats(x, axes, eps)
        out = (x - mean) * rstd
        if weight is not None:
            out = out * weight
        if bias is not None:
            out = out + bias
        out = out.astype(x.dtype)
    mean, rstd = _stats(x, axes, eps)
    return out, mean.astype(x.dtype), rstd.astype(x.dtype)


def batch_norm_with_update(x, weight, bias, running_mean, running_var, momentum, eps):
    """aten._batch_norm_with_update_functional (training mode) -> (out, save_mean, save_rstd, reserve,
    new running_mean, new running_var), the running statistics updated as PyTorch does (unbiased var)."""
    out, mean, rstd = batch_norm_batch_stats(x, weight, bias, eps)
    n = x.size // x.shape[1]
    var = mx.var(x.astype(mx.float32), axis=[0] + list(range(2, x.ndim)), ddof=1 if n > 1 else 0)
    new_mean = (1 - momentum) * running_mean + momentum * mean.astype(running_mean.dtype)
    new_var = (1 - momentum) * running_var + momentum * var.astype(running_var.dtype)
    return out, mean, rstd, mx.zeros((0,), dtype=mx.uint8), new_mean, new_var
