"""Layers whose PyTorch semantics take more than one MLX call: convolution on channels-first tensors,
normalisation, pooling. Tensors stay in PyTorch's layout (N, C, *spatial) between ops; weights of
convolutions arrive in MLX's layout (O, *K, I/groups), converted once when the weights were saved."""
import math

import mlx.core as mx


def conv(x, weight, bias, stride, padding, dilation, groups):
    """aten.convolution (not transposed): x (N, C, *S), weight (O, *K, C/groups)."""
    if groups > 1 and x.ndim == 5:  # MLX groups only 1-D/2-D convolutions: one conv per group
        xs = mx.split(x, groups, axis=1)
        ws = mx.split(weight, groups, axis=0)
        y = mx.concatenate([conv(a, w, None, stride, padding, dilation, 1) for a, w in zip(xs, ws)], axis=1)
        return y if bias is None else y + bias.reshape((1, -1, 1, 1, 1))
    y = mx.conv_general(mx.moveaxis(x, 1, -1), weight, stride=list(stride), padding=list(padding),
                        kernel_dilation=list(dilation), groups=groups)
    if bias is not None:
        y = y + bias
    return mx.moveaxis(y, -1, 1)


def conv_transpose(x, weight, bias, stride, padding, dilation, output_padding, groups):
    """aten.convolution (transposed): x (N, C, *S), weight (O, *K, C/groups)."""
    nd = x.ndim - 2
    if groups > 1 and nd == 3:  # MLX groups only 1-D/2-D convolutions: one conv per group
        xs = mx.split(x, groups, axis=1)
        ws = mx.split(weight, groups, axis=0)
        y = mx.concatenate([conv_transpose(a, w, None, stride, padding, dilation, output_padding, 1)
                            for a, w in zip(xs, ws)], axis=1)
        return y if bias is None else y + bias.reshape((1, -1, 1, 1, 1))
    fn = {1: mx.conv_transpose1d, 2: mx.conv_transpose2d, 3: mx.conv_transpose3d}[nd]
    one = (lambda v: v[0]) if nd == 1 else (lambda v: tuple(v))
    if any(output_padding):  # the full transposed conv, then PyTorch's window [p, p + out) of it
        y = fn(mx.moveaxis(x, 1, -1), weight, stride=one(stride), padding=one([0] * nd), dilation=one(dilation),
               groups=groups)
        for i in range(nd):
            k = weight.shape[1 + i]
            out = (x.shape[2 + i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (k - 1) + output_padding[i] + 1
            full = y.shape[1 + i]
            if padding[i] + out > full:
                widths = [(0, 0)] * y.ndim
                widths[1 + i] = (0, padding[i] + out - full)
                y = mx.pad(y, widths)
            y = mx.take(y, mx.arange(padding[i], padding[i] + out), axis=1 + i)
        if bias is not None:
            y = y + bias
        return mx.moveaxis(y, -1, 1)
    y = fn(mx.moveaxis(x, 1, -1), weight, stride=one(stride), padding=one(padding), dilation=one(dilation),
           output_padding=one(output_padding), groups=groups)
    if bias is not None:
        y = y + bias
    return mx.moveaxis(y, -1, 1)


def layer_norm(x, normalized_shape, weight, bias, eps):
    """Layer norm over the last len(normalized_shape) axes."""
    axes = list(range(x.ndim - len(normalized_shape), x.ndim))
    mean = mx.mean(x, axis=axes, keepdims=True)
    var = mx.var(x, axis=axes, keepdims=True)
    y = (x - mean) * mx.rsqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def _channel_shape(x):
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def group_norm(x, num_groups, weight, bias, eps):
    """Group norm on (N, C, *S), statistics per (sample, group); float16/bfloat16 inputs are normalised
    in float32 and rounded once, as PyTorch does."""
    n = x.shape[0]
    g = x.reshape(n, num_groups, math.prod(x.shape[1:]) // num_groups)
    if g.dtype in (mx.float16, mx.bfloat16):
        g = g.astype(mx.float32)
    mean = mx.mean(g, axis=-1, keepdims=True)
    var = mx.var(g, axis=-1, keepdims=True)
    y = ((g - mean) * mx.rsqrt(var + eps)).reshape(x.shape)
    if weight is not None:
        y = y * weight.reshape(_channel_shape(x))
    if bias is not None:
        y = y + bias.reshape(_channel_shape(x))
    return y.astype(x.dtype)


def batch_norm(x, weight, bias, running_mean, running_var, eps):
    """Batch norm in inference mode (running statistics) on (N, C, *S)."""
    shape = _channel_shape(x)
    y = (x - running_mean.reshape(shape)) * mx.rsqrt(running_var.reshape(shape) + eps)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def weight_norm(v, g, dim):
    """torch._weight_norm: v * g / ||v|| (norm over every axis but `dim`); returns (w, norm)."""
    axes = [a for a in range(v.ndim) if a != (dim % v.ndim)] if dim is not None and dim != -1 or v.ndim == 1 else None
    norm = mx.sqrt(mx.sum(v * v, axis=axes, keepdims=True))
    return v * (g / norm), norm


def _pool_out(size, k, s, p, d, ceil_mode):
    eff = d * (k - 1) + 1
    num = size + 2 * p - eff
    out = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:  # the last window must start inside the input or left pad
        out -= 1
    return out


def _windows(x, kernel, stride, dilation, out):
    """(N, C, *S) -> (N, C, *out, *kernel) strided view of pooling windows."""
    x = mx.contiguous(x) if hasattr(mx, "contiguous") else x
    nd = len(kernel)
    strides = [1] * x.ndim
    for i in range(x.ndim - 2, -1, -1):
        strides[i] = strides[i + 1] * x.shape[i + 1]
    shape = list(x.shape[:2]) + list(out) + list(kernel)
    st = strides[:2] + [strides[2 + i] * stride[i] for i in range(nd)] + [strides[2 + i] * dilation[i] for i in range(nd)]
    return mx.as_strided(x, shape, st)


def _pool_prep(x, kernel_size, stride, padding, dilation, ceil_mode):
    nd = x.ndim - 2
    k = list(kernel_size) * nd if len(kernel_size) == 1 else list(kernel_size)
    s = list(stride) if stride else k
    s = s * nd if len(s) == 1 else s
    p = list(padding) * nd if len(padding) == 1 else list(padding)
    d = list(dilation) * nd if len(dilation) == 1 else list(dilation)
    out = [_pool_out(x.shape[2 + i], k[i], s[i], p[i], d[i], ceil_mode) for i in range(nd)]
    # pad left by p and right so that every window fits
    right = [max(0, (out[i] - 1) * s[i] + d[i] * (k[i] - 1) + 1 - x.shape[2 + i] - p[i]) for i in range(nd)]
    return k, s, p, d, out, right


def max_pool(x, kernel_size, stride, padding, dilation, ceil_mode):
    """max_pool{1,2,3}d on channels-first input."""
    nd = x.ndim - 2
    k, s, p, d, out, right = _pool_prep(x, kernel_size, stride, padding, dilation, ceil_mode)
    xp = mx.pad(x, [(0, 0), (0, 0)] + [(p[i], right[i]) for i in range(nd)], constant_values=-math.inf)
    w = _windows(xp, k, s, d, out)
    return mx.max(w, axis=list(range(-nd, 0)))


def avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override=None):
    """avg_pool{1,2,3}d on channels-first input, with PyTorch's divisor rules."""
    nd = x.ndim - 2
    k, s, p, d, out, right = _pool_prep(x, kernel_size, stride, padding, [1] * nd, ceil_mode)
    widths = [(0, 0), (0, 0)] + [(p[i], right[i]) for i in range(nd)]
    total = mx.sum(_windows(mx.pad(x, widths), k, s, d, out), axis=list(range(-nd, 0)))
    if divisor_override:
        return total / divisor_override
    ones = mx.ones((1, 1) + tuple(x.shape[2:]), dtype=x.dtype)
    if count_include_pad:  # padding counts, the ceil-mode overhang beyond it does not
        ones = mx.pad(ones, [(0, 0), (0, 0)] + [(p[i], p[i]) for i in range(nd)], constant_values=1)
        widths = [(0, 0), (0, 0)] + [(0, right[i]) for i in range(nd)]
    count = mx.sum(_windows(mx.pad(ones, widths), k, s, d, out), axis=list(range(-nd, 0)))
    return total / count


def adaptive_avg_pool(x, output_size):
    """adaptive_avg_pool{1,2,3}d: bins [floor(i*S/O), ceil((i+1)*S/O)). Axis by axis, in float32 for
    half inputs (rounded once at the end, as PyTorch's single window mean)."""
    dtype = x.dtype
    if dtype in (mx.float16, mx.bfloat16):
        x = x.astype(mx.float32)
    nd = len(output_size)
    for i in range(nd):
        axis = x.ndim - nd + i
        size, o = x.shape[axis], output_size[i]
        if o is None or o == size:
            continue
        if size % o == 0:
            shape = list(x.shape)
            shape[axis:axis + 1] = [o, size // o]
            x = mx.mean(x.reshape(shape), axis=axis + 1)
        else:
            parts = []
            for j in range(o):
                a, b = (j * size) // o, -(-((j + 1) * size) // o)
                idx = [slice(None)] * x.ndim
                idx[axis] = slice(a, b)
                parts.append(mx.mean(x[tuple(idx)], axis=axis, keepdims=True))
            x = mx.concatenate(parts, axis=axis)
    return x.astype(dtype)
