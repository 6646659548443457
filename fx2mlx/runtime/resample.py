"""Resampling with PyTorch's exact index arithmetic (aten/src/ATen/native/UpSample.h, GridSampler.h):
upsample (nearest, nearest-exact, linear/bilinear/trilinear, bicubic, anti-aliased bilinear/bicubic),
grid_sample, col2im (fold).
Tensors are channels-first (N, C, *spatial) as in PyTorch. Source indices are computed in float32,
as PyTorch does for float32/float16/bfloat16 inputs; half inputs are interpolated in float32."""
import math

import mlx.core as mx


def _scale(in_size, out_size, scale):
    """compute_scales_value: 1/scale if given, else in/out (as float32)."""
    if scale is not None and scale > 0:
        return mx.array(1.0 / scale, dtype=mx.float32)
    return mx.array(in_size, dtype=mx.float32) / mx.array(out_size, dtype=mx.float32)


def _area_scale(in_size, out_size, align_corners, scale):
    if align_corners:
        if out_size > 1:
            return mx.array(in_size - 1, dtype=mx.float32) / mx.array(out_size - 1, dtype=mx.float32)
        return mx.array(0.0, dtype=mx.float32)
    return _scale(in_size, out_size, scale)


def _source_index(scale, out_size, align_corners, cubic=False):
    dst = mx.arange(out_size, dtype=mx.float32)
    if align_corners:
        return scale * dst
    src = scale * (dst + 0.5) - 0.5
    return src if cubic else mx.maximum(src, 0.0)


def _scales_list(scales, nd):
    if scales is None:
        return [None] * nd
    return list(scales) if len(scales) == nd else list(scales) * nd


def _take(x, idx, axis):
    return mx.take(x, idx, axis=axis)


def upsample_nearest(x, out_size, scales=None, exact=False):
    """upsample_nearest{1,2,3}d / _upsample_nearest_exact{1,2,3}d; out_size is the spatial output size."""
    nd = len(out_size)
    scales = _scales_list(scales, nd)
    for i in range(nd):
        axis = x.ndim - nd + i
        n_in, n_out = x.shape[axis], out_size[i]
        if n_in == n_out and not exact:
            continue
        s = _scale(n_in, n_out, scales[i])
        dst = mx.arange(n_out, dtype=mx.float32)
        src = mx.floor((dst + 0.5) * s if exact else dst * s).astype(mx.int32)
        x = _take(x, mx.minimum(src, n_in - 1), axis)
    return x


def upsample_linear(x, out_size, align_corners, scales=None):
    """upsample_linear1d / upsample_bilinear2d / upsample_trilinear3d, separably per axis."""
    nd = len(out_size)
    scales = _scales_list(scales, nd)
    dtype = x.dtype
    x = x.astype(mx.float32) if dtype in (mx.float16, mx.bfloat16) else x
    for i in range(nd):
        axis = x.ndim - nd + i
        n_in, n_out = x.shape[axis], out_size[i]
        s = _area_scale(n_in, n_out, align_corners, scales[i])
        src = _source_index(s, n_out, align_corners)
        i0 = src.astype(mx.int32)  # src >= 0: truncation is floor
        i1 = mx.minimum(i0 + 1, n_in - 1)
        lam = src - i0.astype(mx.float32)
        shape = [1] * x.ndim
        shape[axis] = n_out
        lam = lam.reshape(shape).astype(x.dtype)
        x = _take(x, i0, axis) * (1 - lam) + _take(x, i1, axis) * lam
    return x.astype(dtype)


def _cubic_weights(t, a=-0.75):
    def near(v):  # |v| <= 1
        return ((a + 2) * v - (a + 3)) * v * v + 1

    def far(v):  # 1 < |v| < 2
        return ((a * v - 5 * a) * v + 8 * a) * v - 4 * a

    return [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]


def upsample_bicubic(x, out_size, align_corners, scales=None):
    """upsample_bicubic2d (A = -0.75, taps clamped at the border), separably per axis."""
    nd = len(out_size)
    scales = _scales_list(scales, nd)
    dtype = x.dtype
    x = x.astype(mx.float32) if dtype in (mx.float16, mx.bfloat16) else x
    for i in range(nd):
        axis = x.ndim - nd + i
        n_in, n_out = x.shape[axis], out_size[i]
        s = _area_scale(n_in, n_out, align_corners, scales[i])
        src = _source_index(s, n_out, align_corners, cubic=True)
        f = mx.floor(src)
        t = src - f
        f = f.astype(mx.int32)
        shape = [1] * x.ndim
        shape[axis] = n_out
        ws = _cubic_weights(t)
        acc = None
        for k in range(4):
            idx = mx.clip(f + (k - 1), 0, n_in - 1)
            term = _take(x, idx, axis) * ws[k].reshape(shape).astype(x.dtype)
            acc = term if acc is None else acc + term
        x = acc
    return x.astype(dtype)


def _f32(v):
    """Round a Python float to the nearest float32 (ties to even), as a Python float."""
    if v == 0 or v != v or v in (float("inf"), float("-inf")):
        return v
    m, e = math.frexp(v)
    return math.ldexp(round(m * (1 << 24)), e - 24)


def _floor_half_up(v):
    """floor(v + 0.5) of float32 v with v + 0.5 exact (PyTorch adds the 0.5 in double)."""
    f = mx.floor(v)
    return (f + (v - f >= 0.5)).astype(mx.int32)


def _aa_filter(t, cubic):
    t = mx.abs(t)
    if not cubic:  # triangle
        return mx.where(t < 1.0, 1.0 - t, 0.0)
    a = -0.5  # Keys' cubic with a = -0.5 (as PIL)
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return mx.where(t < 1.0, near, mx.where(t < 2.0, far, 0.0))


def _resample_aa_axis(x, axis, n_out, align_corners, scale, cubic):
    """One axis of PyTorch's separable anti-aliased resampling (UpSampleKernel.cpp,
    _compute_index_ranges_weights with antialias): output i averages inputs xmin..xmin+xsize-1 with
    filter((k - center + 0.5) / max(scale, 1)) weights, normalised; the support grows with the
    downsampling factor."""
    n_in = x.shape[axis]
    if align_corners:
        s = _f32((n_in - 1) / (n_out - 1)) if n_out > 1 else 0.0
    else:
        s = _f32(1.0 / scale) if scale is not None and scale > 0 else _f32(n_in / n_out)
    half = 2.0 if cubic else 1.0
    support = _f32(half * s) if s >= 1.0 else half
    invscale = _f32(1.0 / s) if s >= 1.0 else 1.0
    taps = int(math.ceil(support)) * 2 + 1
    center = mx.array(s, dtype=mx.float32) * (mx.arange(n_out, dtype=mx.float32) + 0.5)
    sup = mx.array(support, dtype=mx.float32)
    xmin = mx.maximum(_floor_half_up(center - sup), 0)
    xsize = mx.clip(mx.minimum(_floor_half_up(center + sup), n_in) - xmin, 0, taps)
    j = mx.arange(taps, dtype=mx.int32)
    k = mx.expand_dims(xmin, 1) + j  # (n_out, taps)
    used = j < mx.expand_dims(xsize, 1)
    arg = (k.astype(mx.float32) - mx.expand_dims(center, 1) + 0.5) * mx.array(invscale, dtype=mx.float32)
    w = mx.where(used, _aa_filter(arg, cubic), 0.0)
    total = mx.sum(w, axis=1, keepdims=True)
    w = mx.where(total != 0, w / mx.where(total != 0, total, 1.0), w)
    v = mx.take(x, mx.clip(k, 0, n_in - 1).reshape(-1), axis=axis)
    v = v.reshape(x.shape[:axis] + (n_out, taps) + x.shape[axis + 1:])
    shape = (n_out, taps) + (1,) * (x.ndim - axis - 1)
    term = mx.where(used.reshape(shape), v * w.reshape(shape).astype(v.dtype), 0)
    return mx.sum(term, axis=axis + 1)


def upsample_aa(x, out_size, align_corners, scales=None, cubic=False):
    """_upsample_bilinear2d_aa / _upsample_bicubic2d_aa (antialias=True in F.interpolate): separable,
    the last axis first; axes whose size does not change are left as they are."""
    nd = len(out_size)
    scales = _scales_list(scales, nd)
    dtype = x.dtype
    x = x.astype(mx.float32) if dtype in (mx.float16, mx.bfloat16) else x
    for i in reversed(range(nd)):
        axis = x.ndim - nd + i
        if x.shape[axis] != out_size[i]:
            x = _resample_aa_axis(x, axis, out_size[i], align_corners, scales[i], cubic)
    return x.astype(dtype)


# ---- grid_sample --------------------------------------------------------------------------------
def _unnormalize(coord, size, align_corners):
    if align_corners:
        return (coord + 1) / 2 * (size - 1)
    return ((coord + 1) * size - 1) / 2


def _reflect(coord, twice_low, twice_high):
    if twice_low == twice_high:
        return mx.zeros_like(coord)
    lo = twice_low / 2
    span = (twice_high - twice_low) / 2
    coord = mx.abs(coord - lo)
    extra = mx.remainder(coord, span)
    flips = mx.floor(coord / span)
    return mx.where(mx.remainder(flips, 2) == 0, extra + lo, span - extra + lo)


def _pad_coord(coord, size, padding_mode, align_corners):
    if padding_mode == 1:  # border
        return mx.clip(coord, 0, size - 1)
    if padding_mode == 2:  # reflection
        if align_corners:
            coord = _reflect(coord, 0, 2 * (size - 1))
        else:
            coord = _reflect(coord, -1, 2 * size - 1)
        return mx.clip(coord, 0, size - 1)
    return coord


def _gather2d(x, iy, ix, padding_mode):
    """x (N, C, H, W); integer iy, ix (N, Ho, Wo) -> (N, C, Ho, Wo); out of bounds -> 0 (zeros padding)."""
    n, c, h, w = x.shape
    valid = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    iyc, ixc = mx.clip(iy, 0, h - 1), mx.clip(ix, 0, w - 1)
    flat = (iyc * w + ixc).reshape(n, 1, -1)
    v = mx.take_along_axis(x.reshape(n, c, h * w), mx.broadcast_to(flat, (n, c, flat.shape[-1])), axis=2)
    v = v.reshape(n, c, *iy.shape[1:])
    return mx.where(mx.expand_dims(valid, 1), v, mx.zeros((), dtype=v.dtype))


def grid_sample_2d(x, grid, interpolation_mode, padding_mode, align_corners):
    """aten.grid_sampler_2d: modes 0 bilinear, 1 nearest, 2 bicubic; padding 0 zeros, 1 border, 2 reflection."""
    dtype = x.dtype
    if dtype in (mx.float16, mx.bfloat16):
        x, grid = x.astype(mx.float32), grid.astype(mx.float32)
    h, w = x.shape[2], x.shape[3]
    gx = _unnormalize(grid[..., 0], w, align_corners)
    gy = _unnormalize(grid[..., 1], h, align_corners)
    if interpolation_mode == 2:  # bicubic: taps are padded one by one
        fx, fy = mx.floor(gx), mx.floor(gy)
        tx, ty = gx - fx, gy - fy
        wx, wy = _cubic_weights(tx), _cubic_weights(ty)
        out = None
        for j in range(4):
            row = None
            for i in range(4):
                cx = _pad_coord(fx + (i - 1), w, padding_mode, align_corners)
                cy = _pad_coord(fy + (j - 1), h, padding_mode, align_corners)
                v = _gather2d(x, cy.astype(mx.int32), cx.astype(mx.int32), padding_mode)
                term = v * mx.expand_dims(wx[i], 1)
                row = term if row is None else row + term
            term = row * mx.expand_dims(wy[j], 1)
            out = term if out is None else out + term
        return out.astype(dtype)
    gx = _pad_coord(gx, w, padding_mode, align_corners)
    gy = _pad_coord(gy, h, padding_mode, align_corners)
    if interpolation_mode == 1:  # nearest (round half to even, as nearbyint)
        return _gather2d(x, mx.round(gy).astype(mx.int32), mx.round(gx).astype(mx.int32), padding_mode).astype(dtype)
    x0, y0 = mx.floor(gx), mx.floor(gy)
    tx, ty = mx.expand_dims(gx - x0, 1), mx.expand_dims(gy - y0, 1)
    x0, y0 = x0.astype(mx.int32), y0.astype(mx.int32)
    nw = _gather2d(x, y0, x0, padding_mode)
    ne = _gather2d(x, y0, x0 + 1, padding_mode)
    sw = _gather2d(x, y0 + 1, x0, padding_mode)
    se = _gather2d(x, y0 + 1, x0 + 1, padding_mode)
    out = nw * (1 - tx) * (1 - ty) + ne * tx * (1 - ty) + sw * (1 - tx) * ty + se * tx * ty
    return out.astype(dtype)


# ---- fold / unfold ------------------------------------------------------------------------------
def col2im(x, output_size, kernel_size, dilation, padding, stride):
    """aten.col2im (F.fold): (N, C*kh*kw, L) -> (N, C, H, W), overlapping blocks summed."""
    unbatched = x.ndim == 2
    if unbatched:
        x = mx.expand_dims(x, 0)
    kh, kw = kernel_size
    dh, dw = dilation
    ph, pw = padding
    sh, sw = stride
    oh, ow = output_size
    lh = (oh + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    lw = (ow + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    n = x.shape[0]
    c = x.shape[1] // (kh * kw)
    blocks = x.reshape(n, c, kh, kw, lh, lw)
    out = mx.zeros((n, c, oh + 2 * ph, ow + 2 * pw), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            ys = slice(i * dh, i * dh + sh * (lh - 1) + 1, sh)
            xs = slice(j * dw, j * dw + sw * (lw - 1) + 1, sw)
            out = out.at[:, :, ys, xs].add(blocks[:, :, i, j])
    out = out[:, :, ph:ph + oh, pw:pw + ow]
    return out[0] if unbatched else out


def im2col(x, kernel_size, dilation, padding, stride):
    """aten.im2col (F.unfold): (N, C, H, W) -> (N, C*kh*kw, L)."""
    unbatched = x.ndim == 3
    if unbatched:
        x = mx.expand_dims(x, 0)
    kh, kw = kernel_size
    dh, dw = dilation
    ph, pw = padding
    sh, sw = stride
    n, c, h, w = x.shape
    lh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    lw = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    xp = mx.pad(x, [(0, 0), (0, 0), (ph, ph), (pw, pw)])
    cols = []
    for i in range(kh):
        for j in range(kw):
            cols.append(xp[:, :, i * dh:i * dh + sh * (lh - 1) + 1:sh, j * dw:j * dw + sw * (lw - 1) + 1:sw])
    out = mx.stack(cols, axis=2).reshape(n, c * kh * kw, lh * lw)
    return out[0] if unbatched else out


def _gather3d(x, iz, iy, ix):
    """x (N, C, D, H, W); integer iz, iy, ix (N, *O) -> (N, C, *O); out of bounds -> 0."""
    n, c, d, h, w = x.shape
    valid = (iz >= 0) & (iz < d) & (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    flat = ((mx.clip(iz, 0, d - 1) * h + mx.clip(iy, 0, h - 1)) * w + mx.clip(ix, 0, w - 1)).reshape(n, 1, -1)
    v = mx.take_along_axis(x.reshape(n, c, d * h * w), mx.broadcast_to(flat, (n, c, flat.shape[-1])), axis=2)
    v = v.reshape(n, c, *iz.shape[1:])
    return mx.where(mx.expand_dims(valid, 1), v, mx.zeros((), dtype=v.dtype))


def grid_sample_3d(x, grid, interpolation_mode, padding_mode, align_corners):
    """aten.grid_sampler_3d: modes 0 trilinear, 1 nearest; padding 0 zeros, 1 border, 2 reflection."""
    dtype = x.dtype
    if dtype in (mx.float16, mx.bfloat16):
        x, grid = x.astype(mx.float32), grid.astype(mx.float32)
    d, h, w = x.shape[2], x.shape[3], x.shape[4]
    gx = _pad_coord(_unnormalize(grid[..., 0], w, align_corners), w, padding_mode, align_corners)
    gy = _pad_coord(_unnormalize(grid[..., 1], h, align_corners), h, padding_mode, align_corners)
    gz = _pad_coord(_unnormalize(grid[..., 2], d, align_corners), d, padding_mode, align_corners)
    if interpolation_mode == 1:
        r = [mx.round(g).astype(mx.int32) for g in (gz, gy, gx)]
        return _gather3d(x, *r).astype(dtype)
    x0, y0, z0 = mx.floor(gx), mx.floor(gy), mx.floor(gz)
    tx, ty, tz = [mx.expand_dims(t, 1) for t in (gx - x0, gy - y0, gz - z0)]
    x0, y0, z0 = x0.astype(mx.int32), y0.astype(mx.int32), z0.astype(mx.int32)
    out = None
    for dz in (0, 1):
        for dy in (0, 1):
            for dx in (0, 1):
                wgt = (tz if dz else 1 - tz) * (ty if dy else 1 - ty) * (tx if dx else 1 - tx)
                term = _gather3d(x, z0 + dz, y0 + dy, x0 + dx) * wgt
                out = term if out is None else out + term
    return out.astype(dtype)
