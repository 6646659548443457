"""FFTs with PyTorch's normalisation modes (aten._fft_r2c/_fft_c2r/_fft_c2c: 0 = none, 1 = 1/sqrt(n),
2 = 1/n). MLX's forward transforms are unnormalised and its inverse ones divide by n, as numpy's."""
import math

import mlx.core as mx


def _n(shape, dims):
    n = 1
    for d in dims:
        n *= shape[d]
    return n


def _forward_scale(y, n, normalization):
    if normalization == 1:
        return y * (1.0 / math.sqrt(n))
    if normalization == 2:
        return y * (1.0 / n)
    return y


def _inverse_scale(y, n, normalization):
    if normalization == 0:
        return y * float(n)
    if normalization == 1:
        return y * math.sqrt(n)
    return y


def fft_r2c(x, dim, normalization, onesided):
    """aten._fft_r2c: real -> complex FFT over dims (the last one halved when onesided)."""
    dim = [d % x.ndim for d in dim]
    x = x.astype(mx.float32) if x.dtype != mx.float32 else x
    y = mx.fft.rfftn(x, axes=dim) if onesided else mx.fft.fftn(x.astype(mx.complex64), axes=dim)
    return _forward_scale(y, _n(x.shape, dim), normalization)


def fft_c2r(x, dim, normalization, last_dim_size):
    """aten._fft_c2r: complex (one-sided) -> real inverse FFT; last_dim_size is the last dim's output size."""
    dim = [d % x.ndim for d in dim]
    s = [x.shape[d] for d in dim[:-1]] + [last_dim_size]
    y = mx.fft.irfftn(x, s=s, axes=dim)
    n = 1
    for v in s:
        n *= v
    return _inverse_scale(y, n, normalization)


def fft_c2c(x, dim, normalization, forward):
    """aten._fft_c2c: complex -> complex FFT (forward) or inverse FFT."""
    dim = [d % x.ndim for d in dim]
    n = _n(x.shape, dim)
    if forward:
        return _forward_scale(mx.fft.fftn(x, axes=dim), n, normalization)
    return _inverse_scale(mx.fft.ifftn(x, axes=dim), n, normalization)
