// fx2mlx C++ runtime: resampling, FFT, im2col/col2im, grid sampling (fx2mlx/runtime/resample.py, spectral.py).
// Included at the end of fx2mlx_runtime.h (uses its helpers: fx::scalar, fx::where, ...).
#pragma once

#include "fx2mlx_runtime.h"

namespace fx {

// ---- FFTs (fx2mlx/runtime/spectral.py) -------------------------------------------------------------
// PyTorch's normalisation modes (aten._fft_r2c/_fft_c2r/_fft_c2c: 0 = none, 1 = 1/sqrt(n), 2 = 1/n). MLX's
// forward transforms are unnormalised and its inverse ones divide by n, as numpy's.
inline std::vector<int> fft_axes(const mx::array& x, const std::vector<int64_t>& dim) {
  std::vector<int> axes;
  for (int64_t d : dim) axes.push_back(static_cast<int>(fx::imod(d, static_cast<int64_t>(rank(x)))));
  return axes;
}

inline int64_t fft_size(const mx::array& x, const std::vector<int>& axes) {
  int64_t n = 1;
  for (int d : axes) n *= x.shape(d);
  return n;
}

inline mx::array fft_forward_scale(const mx::array& y, int64_t n, int64_t normalization) {
  if (normalization == 1) return fx::mul(y, 1.0 / std::sqrt(static_cast<double>(n)));
  if (normalization == 2) return fx::mul(y, 1.0 / static_cast<double>(n));
  return y;
}

inline mx::array fft_inverse_scale(const mx::array& y, int64_t n, int64_t normalization) {
  if (normalization == 0) return fx::mul(y, static_cast<double>(n));
  if (normalization == 1) return fx::mul(y, std::sqrt(static_cast<double>(n)));
  return y;
}

// aten._fft_r2c: real -> complex FFT over dim (the last one halved when onesided).
inline mx::array fft_r2c(mx::array x, const std::vector<int64_t>& dim, int64_t normalization, bool onesided) {
  auto axes = fx::fft_axes(x, dim);
  if (x.dtype() != mx::float32) x = mx::astype(x, mx::float32);
  auto y = onesided ? mx::fft::rfftn(x, axes) : mx::fft::fftn(mx::astype(x, mx::complex64), axes);
  return fx::fft_forward_scale(y, fx::fft_size(x, axes), normalization);
}

// aten._fft_c2r: complex (one-sided) -> real inverse FFT; last_dim_size is the last dim's output size.
inline mx::array fft_c2r(const mx::array& x, const std::vector<int64_t>& dim, int64_t normalization,
                         int64_t last_dim_size) {
  auto axes = fx::fft_axes(x, dim);
  mx::Shape s;
  for (size_t i = 0; i + 1 < axes.size(); i++) s.push_back(x.shape(axes[i]));
  s.push_back(static_cast<int>(last_dim_size));
  auto y = mx::fft::irfftn(x, s, axes);
  int64_t n = 1;
  for (int v : s) n *= v;
  return fx::fft_inverse_scale(y, n, normalization);
}

// aten._fft_c2c: complex -> complex FFT (forward) or inverse FFT.
inline mx::array fft_c2c(const mx::array& x, const std::vector<int64_t>& dim, int64_t normalization, bool forward) {
  auto axes = fx::fft_axes(x, dim);
  const int64_t n = fx::fft_size(x, axes);
  if (forward) return fx::fft_forward_scale(mx::fft::fftn(x, axes), n, normalization);
  return fx::fft_inverse_scale(mx::fft::ifftn(x, axes), n, normalization);
}

// ---- bicubic and anti-aliased upsampling (fx2mlx/runtime/resample.py) ------------------------------
// Keys' cubic convolution weights of the taps at -1, 0, 1, 2 around the fractional position t.
inline Tuple cubic_weights(const mx::array& t, double a = -0.75) {
  auto near = [a](const mx::array& v) {  // |v| <= 1
    return fx::add(fx::mul(fx::mul(fx::sub(fx::mul(a + 2, v), a + 3), v), v), 1);
  };
  auto far = [a](const mx::array& v) {  // 1 < |v| < 2
    return fx::sub(fx::mul(fx::add(fx::mul(fx::sub(fx::mul(a, v), 5 * a), v), 8 * a), v), 4 * a);
  };
  return {far(fx::add(t, 1.0)), near(t), near(fx::sub(1.0, t)), far(fx::sub(2.0, t))};
}

// upsample_bicubic2d (A = -0.75, taps clamped at the border), separably per axis.
inline mx::array upsample_bicubic(mx::array x, const std::vector<int>& out_size, bool align_corners,
                                  const std::vector<double>& scales) {
  const int nd = static_cast<int>(out_size.size());
  auto sc = fx::resample_scales(scales, nd);
  const auto dtype = x.dtype();
  if (dtype == mx::float16 || dtype == mx::bfloat16) x = mx::astype(x, mx::float32);
  for (int i = 0; i < nd; i++) {
    const int ax = rank(x) - nd + i, n_in = x.shape(ax), n_out = out_size[i];
    auto s = fx::area_scale(n_in, n_out, align_corners, sc[i]);
    auto src = fx::source_index(s, n_out, align_corners, true);
    auto f = mx::floor(src);
    auto t = mx::subtract(src, f);
    f = mx::astype(f, mx::int32);
    mx::Shape shape(rank(x), 1);
    shape[ax] = n_out;
    auto ws = fx::cubic_weights(t);
    std::optional<mx::array> acc;
    for (int k = 0; k < 4; k++) {
      auto idx = fx::clip(fx::add(f, k - 1), 0, n_in - 1);
      auto term = mx::multiply(mx::take(x, idx, ax), mx::astype(mx::reshape(ws[k], shape), x.dtype()));
      acc = acc ? mx::add(*acc, term) : term;
    }
    x = *acc;
  }
  return mx::astype(x, dtype);
}

// A double rounded to the nearest float32 (ties to even), kept as a double.
inline double f32(double v) { return static_cast<double>(static_cast<float>(v)); }

// floor(v + 0.5) of float32 v with v + 0.5 exact (PyTorch adds the 0.5 in double).
inline mx::array floor_half_up(const mx::array& v) {
  auto f = mx::floor(v);
  return mx::astype(mx::add(f, fx::ge(mx::subtract(v, f), 0.5)), mx::int32);
}

inline mx::array aa_filter(mx::array t, bool cubic) {
  t = mx::abs(t);
  if (!cubic) return fx::where(fx::lt(t, 1.0), fx::sub(1.0, t), 0.0);  // triangle
  const double a = -0.5;  // Keys' cubic with a = -0.5 (as PIL)
  auto near = fx::add(fx::mul(fx::mul(fx::sub(fx::mul(a + 2, t), a + 3), t), t), 1);
  auto far = fx::sub(fx::mul(fx::add(fx::mul(fx::sub(fx::mul(a, t), 5 * a), t), 8 * a), t), 4 * a);
  return fx::where(fx::lt(t, 1.0), near, fx::where(fx::lt(t, 2.0), far, 0.0));
}

// One axis of PyTorch's separable anti-aliased resampling (UpSampleKernel.cpp, _compute_index_ranges_weights
// with antialias): output i averages inputs xmin..xmin+xsize-1 with filter((k - center + 0.5) / max(scale, 1))
// weights, normalised; the support grows with the downsampling factor.
inline mx::array resample_aa_axis(const mx::array& x, int ax, int n_out, bool align_corners,
                                  std::optional<double> scale, bool cubic) {
  const int n_in = x.shape(ax);
  double s;
  if (align_corners) s = n_out > 1 ? fx::f32(static_cast<double>(n_in - 1) / (n_out - 1)) : 0.0;
  else s = scale && *scale > 0 ? fx::f32(1.0 / *scale) : fx::f32(static_cast<double>(n_in) / n_out);
  const double half = cubic ? 2.0 : 1.0;
  const double support = s >= 1.0 ? fx::f32(half * s) : half;
  const double invscale = s >= 1.0 ? fx::f32(1.0 / s) : 1.0;
  const int taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  auto center = mx::multiply(mx::array(static_cast<float>(s)), fx::add(mx::arange(static_cast<double>(n_out), mx::float32), 0.5));
  auto sup = mx::array(static_cast<float>(support));
  auto xmin = fx::maximum(fx::floor_half_up(mx::subtract(center, sup)), 0);
  auto xsize = fx::clip(mx::subtract(fx::minimum(fx::floor_half_up(mx::add(center, sup)), n_in), xmin), 0, taps);
  auto j = mx::arange(taps);
  auto k = mx::add(mx::expand_dims(xmin, 1), j);  // (n_out, taps)
  auto used = mx::less(j, mx::expand_dims(xsize, 1));
  auto arg = mx::multiply(fx::add(mx::subtract(mx::astype(k, mx::float32), mx::expand_dims(center, 1)), 0.5),
                          mx::array(static_cast<float>(invscale)));
  auto w = fx::where(used, fx::aa_filter(arg, cubic), 0.0);
  auto total = mx::sum(w, 1, true);
  auto nz = fx::ne(total, 0);
  w = mx::where(nz, mx::divide(w, fx::where(nz, total, 1.0)), w);
  auto v = mx::take(x, mx::reshape(fx::clip(k, 0, n_in - 1), {-1}), ax);
  mx::Shape vs(x.shape().begin(), x.shape().begin() + ax);
  vs.push_back(n_out);
  vs.push_back(taps);
  vs.insert(vs.end(), x.shape().begin() + ax + 1, x.shape().end());
  v = mx::reshape(v, vs);
  mx::Shape shape{n_out, taps};
  shape.resize(2 + rank(x) - ax - 1, 1);
  auto term = fx::where(mx::reshape(used, shape), mx::multiply(v, mx::astype(mx::reshape(w, shape), v.dtype())), 0);
  return mx::sum(term, ax + 1);
}

// _upsample_bilinear2d_aa / _upsample_bicubic2d_aa (antialias=True in F.interpolate): separable, the last axis
// first; axes whose size does not change are left as they are.
inline mx::array upsample_aa(mx::array x, const std::vector<int>& out_size, bool align_corners,
                             const std::vector<std::optional<double>>& scales, bool cubic = false) {
  const int nd = static_cast<int>(out_size.size());
  const auto dtype = x.dtype();
  if (dtype == mx::float16 || dtype == mx::bfloat16) x = mx::astype(x, mx::float32);
  for (int i = nd - 1; i >= 0; i--) {
    const int ax = rank(x) - nd + i;
    auto scale = scales.size() == static_cast<size_t>(nd) ? scales[i] : scales[0];
    if (x.shape(ax) != out_size[i]) x = fx::resample_aa_axis(x, ax, out_size[i], align_corners, scale, cubic);
  }
  return mx::astype(x, dtype);
}

// ---- grid_sample ------------------------------------------------------------------------------------
inline mx::array grid_unnormalize(const mx::array& coord, int size, bool align_corners) {
  if (align_corners) return fx::mul(fx::div(fx::add(coord, 1), 2), size - 1);
  return fx::div(fx::sub(fx::mul(fx::add(coord, 1), size), 1), 2);
}

inline mx::array grid_reflect(mx::array coord, int twice_low, int twice_high) {
  if (twice_low == twice_high) return mx::zeros_like(coord);
  const double lo = twice_low / 2.0, span = (twice_high - twice_low) / 2.0;
  coord = mx::abs(fx::sub(coord, lo));
  auto extra = fx::remainder(coord, span);
  auto flips = mx::floor(fx::div(coord, span));
  return mx::where(fx::eq(fx::remainder(flips, 2), 0), fx::add(extra, lo), fx::add(fx::sub(span, extra), lo));
}

// padding_mode 0 zeros (left to the gather), 1 border, 2 reflection.
inline mx::array grid_pad_coord(mx::array coord, int size, int64_t padding_mode, bool align_corners) {
  if (padding_mode == 1) return fx::clip(coord, 0, size - 1);
  if (padding_mode == 2) {
    coord = align_corners ? fx::grid_reflect(coord, 0, 2 * (size - 1)) : fx::grid_reflect(coord, -1, 2 * size - 1);
    return fx::clip(coord, 0, size - 1);
  }
  return coord;
}

// x (N, C, *S); integer coordinates (N, *O), one per spatial axis -> (N, C, *O); out of bounds -> 0.
inline mx::array grid_gather(const mx::array& x, const Tuple& coords) {
  const int n = x.shape(0), c = x.shape(1);
  std::optional<mx::array> valid, flat;
  int plane = 1;
  for (size_t i = 0; i < coords.size(); i++) {
    const int size = x.shape(2 + static_cast<int>(i));
    plane *= size;
    auto ok = mx::logical_and(fx::ge(coords[i], 0), fx::lt(coords[i], size));
    valid = valid ? mx::logical_and(*valid, ok) : ok;
    auto ci = fx::clip(coords[i], 0, size - 1);
    flat = flat ? mx::add(fx::mul(*flat, size), ci) : ci;
  }
  auto f = mx::reshape(*flat, {n, 1, -1});
  auto v = mx::take_along_axis(mx::reshape(x, {n, c, plane}), mx::broadcast_to(f, {n, c, f.shape(-1)}), 2);
  mx::Shape shape{n, c};
  shape.insert(shape.end(), coords[0].shape().begin() + 1, coords[0].shape().end());
  v = mx::reshape(v, shape);
  return mx::where(mx::expand_dims(*valid, 1), v, mx::zeros({}, v.dtype()));
}

// aten.grid_sampler_2d: modes 0 bilinear, 1 nearest, 2 bicubic; padding 0 zeros, 1 border, 2 reflection.
inline mx::array grid_sample_2d(mx::array x, mx::array grid, int64_t interpolation_mode, int64_t padding_mode,
                                bool align_corners) {
  const auto dtype = x.dtype();
  if (dtype == mx::float16 || dtype == mx::bfloat16) {
    x = mx::astype(x, mx::float32);
    grid = mx::astype(grid, mx::float32);
  }
  const int h = x.shape(2), w = x.shape(3);
  auto gx = fx::grid_unnormalize(fx::select(grid, -1, 0), w, align_corners);
  auto gy = fx::grid_unnormalize(fx::select(grid, -1, 1), h, align_corners);
  auto i32 = [](const mx::array& a) { return mx::astype(a, mx::int32); };
  if (interpolation_mode == 2) {  // bicubic: taps are padded one by one
    auto fx_ = mx::floor(gx), fy = mx::floor(gy);
    auto wx = fx::cubic_weights(mx::subtract(gx, fx_)), wy = fx::cubic_weights(mx::subtract(gy, fy));
    std::optional<mx::array> out;
    for (int j = 0; j < 4; j++) {
      std::optional<mx::array> row;
      for (int i = 0; i < 4; i++) {
        auto cx = fx::grid_pad_coord(fx::add(fx_, i - 1), w, padding_mode, align_corners);
        auto cy = fx::grid_pad_coord(fx::add(fy, j - 1), h, padding_mode, align_corners);
        auto term = mx::multiply(fx::grid_gather(x, {i32(cy), i32(cx)}), mx::expand_dims(wx[i], 1));
        row = row ? mx::add(*row, term) : term;
      }
      auto term = mx::multiply(*row, mx::expand_dims(wy[j], 1));
      out = out ? mx::add(*out, term) : term;
    }
    return mx::astype(*out, dtype);
  }
  gx = fx::grid_pad_coord(gx, w, padding_mode, align_corners);
  gy = fx::grid_pad_coord(gy, h, padding_mode, align_corners);
  if (interpolation_mode == 1)  // nearest (round half to even, as nearbyint)
    return mx::astype(fx::grid_gather(x, {i32(mx::round(gy)), i32(mx::round(gx))}), dtype);
  auto x0f = mx::floor(gx), y0f = mx::floor(gy);
  auto tx = mx::expand_dims(mx::subtract(gx, x0f), 1), ty = mx::expand_dims(mx::subtract(gy, y0f), 1);
  auto x0 = i32(x0f), y0 = i32(y0f);
  auto x1 = fx::add(x0, 1), y1 = fx::add(y0, 1);
  auto nw = fx::grid_gather(x, {y0, x0});
  auto ne = fx::grid_gather(x, {y0, x1});
  auto sw = fx::grid_gather(x, {y1, x0});
  auto se = fx::grid_gather(x, {y1, x1});
  auto ux = fx::sub(1, tx), uy = fx::sub(1, ty);
  auto out = mx::add(mx::add(mx::add(mx::multiply(mx::multiply(nw, ux), uy), mx::multiply(mx::multiply(ne, tx), uy)),
                             mx::multiply(mx::multiply(sw, ux), ty)),
                     mx::multiply(mx::multiply(se, tx), ty));
  return mx::astype(out, dtype);
}

// aten.grid_sampler_3d: modes 0 trilinear, 1 nearest; padding 0 zeros, 1 border, 2 reflection.
inline mx::array grid_sample_3d(mx::array x, mx::array grid, int64_t interpolation_mode, int64_t padding_mode,
                                bool align_corners) {
  const auto dtype = x.dtype();
  if (dtype == mx::float16 || dtype == mx::bfloat16) {
    x = mx::astype(x, mx::float32);
    grid = mx::astype(grid, mx::float32);
  }
  const int d = x.shape(2), h = x.shape(3), w = x.shape(4);
  auto coord = [&](int k, int size) {
    return fx::grid_pad_coord(fx::grid_unnormalize(fx::select(grid, -1, k), size, align_corners), size, padding_mode,
                              align_corners);
  };
  auto gx = coord(0, w), gy = coord(1, h), gz = coord(2, d);
  auto i32 = [](const mx::array& a) { return mx::astype(a, mx::int32); };
  if (interpolation_mode == 1) return mx::astype(fx::grid_gather(x, {i32(mx::round(gz)), i32(mx::round(gy)), i32(mx::round(gx))}), dtype);
  auto x0 = mx::floor(gx), y0 = mx::floor(gy), z0 = mx::floor(gz);
  auto tx = mx::expand_dims(mx::subtract(gx, x0), 1), ty = mx::expand_dims(mx::subtract(gy, y0), 1),
       tz = mx::expand_dims(mx::subtract(gz, z0), 1);
  x0 = i32(x0), y0 = i32(y0), z0 = i32(z0);
  std::optional<mx::array> out;
  for (int dz : {0, 1})
    for (int dy : {0, 1})
      for (int dx : {0, 1}) {
        auto wgt = mx::multiply(mx::multiply(dz ? tz : fx::sub(1, tz), dy ? ty : fx::sub(1, ty)), dx ? tx : fx::sub(1, tx));
        auto term = mx::multiply(fx::grid_gather(x, {fx::add(z0, dz), fx::add(y0, dy), fx::add(x0, dx)}), wgt);
        out = out ? mx::add(*out, term) : term;
      }
  return mx::astype(*out, dtype);
}

// ---- fold / unfold ------------------------------------------------------------------------------------
// aten.col2im (F.fold): (N, C*kh*kw, L) -> (N, C, H, W), overlapping blocks summed.
inline mx::array col2im(mx::array x, const std::vector<int64_t>& output_size, const Ints& kernel_size,
                        const Ints& dilation, const Ints& padding, const Ints& stride) {
  const bool unbatched = rank(x) == 2;
  if (unbatched) x = mx::expand_dims(x, 0);
  const int kh = kernel_size[0], kw = kernel_size[1], dh = dilation[0], dw = dilation[1];
  const int ph = padding[0], pw = padding[1], sh = stride[0], sw = stride[1];
  const int oh = static_cast<int>(output_size[0]), ow = static_cast<int>(output_size[1]);
  const int lh = fx::ifloordiv(oh + 2 * ph - dh * (kh - 1) - 1, sh) + 1;
  const int lw = fx::ifloordiv(ow + 2 * pw - dw * (kw - 1) - 1, sw) + 1;
  const int n = x.shape(0), c = x.shape(1) / (kh * kw);
  auto blocks = mx::reshape(x, {n, c, kh, kw, lh, lw});
  auto out = mx::zeros({n, c, oh + 2 * ph, ow + 2 * pw}, x.dtype());
  for (int i = 0; i < kh; i++)
    for (int j = 0; j < kw; j++)
      out = mx::slice_update_add(out, fx::select(fx::select(blocks, 2, i), 2, j), {0, 0, i * dh, j * dw},
                                 {n, c, i * dh + sh * (lh - 1) + 1, j * dw + sw * (lw - 1) + 1}, {1, 1, sh, sw});
  out = mx::slice(out, {0, 0, ph, pw}, {n, c, ph + oh, pw + ow});
  return unbatched ? fx::select(out, 0, 0) : out;
}

// aten.im2col (F.unfold): (N, C, H, W) -> (N, C*kh*kw, L).
inline mx::array im2col(mx::array x, const Ints& kernel_size, const Ints& dilation, const Ints& padding,
                        const Ints& stride) {
  const bool unbatched = rank(x) == 3;
  if (unbatched) x = mx::expand_dims(x, 0);
  const int kh = kernel_size[0], kw = kernel_size[1], dh = dilation[0], dw = dilation[1];
  const int ph = padding[0], pw = padding[1], sh = stride[0], sw = stride[1];
  const int n = x.shape(0), c = x.shape(1), h = x.shape(2), w = x.shape(3);
  const int lh = fx::ifloordiv(h + 2 * ph - dh * (kh - 1) - 1, sh) + 1;
  const int lw = fx::ifloordiv(w + 2 * pw - dw * (kw - 1) - 1, sw) + 1;
  auto xp = mx::pad(x, std::vector<std::pair<int, int>>{{0, 0}, {0, 0}, {ph, ph}, {pw, pw}});
  Tuple cols;
  for (int i = 0; i < kh; i++)
    for (int j = 0; j < kw; j++)
      cols.push_back(mx::slice(xp, {0, 0, i * dh, j * dw}, {n, c, i * dh + sh * (lh - 1) + 1, j * dw + sw * (lw - 1) + 1},
                               {1, 1, sh, sw}));
  auto out = mx::reshape(mx::stack(cols, 2), {n, c * kh * kw, lh * lw});
  return unbatched ? fx::select(out, 0, 0) : out;
}

}  // namespace fx
