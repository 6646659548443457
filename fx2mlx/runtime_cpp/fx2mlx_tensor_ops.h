// fx2mlx C++ runtime: tensor ops of a few MLX calls (fx2mlx/runtime/tensor_ops.py; tri_indices from
// fx2mlx/runtime/creation.py): unfold, vector norms, running max/min with indices, kthvalue, medians.
// Included at the end of fx2mlx_runtime.h (uses its helpers: fx::scalar, fx::where, ...).
#pragma once

#include "fx2mlx_runtime.h"

namespace fx {

// Tensor.unfold: windows of `size` every `step` along dim; the window axis is appended last.
inline mx::array unfold(const mx::array& x, int64_t dim, int64_t size, int64_t step) {
  if (rank(x) == 0) return mx::broadcast_to(x, {static_cast<int>(size)});
  const int d = axis(dim, rank(x));
  const int n = static_cast<int>((x.shape(d) - size) / step + 1), k = static_cast<int>(size);
  auto idx = mx::add(fx::mul(mx::reshape(mx::arange(n), {n, 1}), step), mx::reshape(mx::arange(k), {1, k}));
  return mx::moveaxis(mx::take(x, idx, d), d + 1, -1);
}

// torch.linalg.vector_norm over dim ([]: all axes).
inline mx::array vector_norm(const mx::array& x, double ord = 2, const Ints& dim = {}, bool keepdim = false) {
  const bool all = dim.empty() || rank(x) == 0;
  if (x.size() == 0 && ord != 0 && ord > 0 && all)
    return mx::zeros(keepdim ? mx::Shape(rank(x), 1) : mx::Shape{}, x.dtype());
  auto sum = [&](const mx::array& v) { return all ? mx::sum(v, keepdim) : mx::sum(v, dim, keepdim); };
  auto a = mx::abs(x);
  if (ord == INFINITY) return all ? mx::max(a, keepdim) : mx::max(a, dim, keepdim);
  if (ord == -INFINITY) return all ? mx::min(a, keepdim) : mx::min(a, dim, keepdim);
  if (ord == 0) return sum(mx::astype(fx::ne(a, 0), x.dtype()));
  if (ord == 1) return sum(a);
  if (ord == 2) return mx::sqrt(sum(mx::multiply(a, a)));
  return fx::pow(sum(fx::pow(a, ord)), 1.0 / ord);
}

// torch.cummax / cummin -> {values, indices}: running extreme and the (last) index where it was reached.
inline Tuple cum_extreme(const mx::array& x, int64_t dim, bool largest) {
  if (rank(x) == 0) return {x, mx::zeros({}, mx::int64)};
  const int d = axis(dim, rank(x));
  const bool inexact = mx::issubdtype(x.dtype(), mx::inexact);
  auto values = largest ? mx::cummax(x, d) : mx::cummin(x, d);
  if (inexact) {  // a NaN propagates from where it appears
    auto nan_seen = fx::gt(mx::cummax(mx::astype(mx::isnan(x), mx::int32), d), 0);
    values = fx::where(nan_seen, NAN, values);
  }
  mx::Shape shape(rank(x), 1);
  shape[d] = x.shape(d);
  auto pos = mx::broadcast_to(mx::reshape(mx::arange(x.shape(d)), shape), x.shape());
  auto hit = inexact ? mx::logical_or(mx::equal(x, values), mx::logical_and(mx::isnan(x), mx::isnan(values)))
                     : mx::equal(x, values);
  auto idx = mx::cummax(fx::where(hit, pos, -1), d);
  return {values, mx::astype(idx, mx::int64)};
}

// argsort along d with NaN after +inf (kthvalue, median).
inline mx::array nan_last_order(const mx::array& x, int d) {
  const bool inexact = mx::issubdtype(x.dtype(), mx::inexact);
  auto key = inexact ? fx::where(mx::isnan(x), INFINITY, x) : x;
  auto order = mx::argsort(key, d);
  if (inexact) {
    auto nan = mx::take_along_axis(mx::isnan(x), order, d);
    order = mx::take_along_axis(order, mx::argsort(mx::astype(nan, mx::int32), d), d);
  }
  return order;
}

// torch.kthvalue -> {value, index}: the k-th smallest value (1-based) along dim.
inline Tuple kthvalue(const mx::array& x, int64_t k, int64_t dim = -1, bool keepdim = false) {
  if (rank(x) == 0) return {x, mx::zeros({}, mx::int64)};
  const int d = axis(dim, rank(x));
  auto idx = fx::slice(fx::nan_last_order(x, d), d, k - 1, k, 1);
  auto val = mx::take_along_axis(x, idx, d);
  if (!keepdim) {
    idx = mx::squeeze(idx, d);
    val = mx::squeeze(val, d);
  }
  return {val, mx::astype(idx, mx::int64)};
}

// torch.median / nanmedian along dim -> {value, index}: the lower median (element ceil(n/2) - 1 of the
// sorted values). With NaN present, median returns NaN; nanmedian skips NaN.
inline Tuple median(const mx::array& x, int64_t dim, bool keepdim = false, bool ignore_nan = false) {
  if (rank(x) == 0) return {x, mx::zeros({}, mx::int64)};
  const int d = axis(dim, rank(x));
  const int n = x.shape(d);
  auto order = fx::nan_last_order(x, d);
  mx::array k = x;
  if (mx::issubdtype(x.dtype(), mx::inexact)) {
    auto count = mx::sum(mx::logical_not(mx::isnan(x)), d, true);
    if (ignore_nan) {
      k = fx::maximum(fx::floor_divide(fx::sub(count, 1), 2), 0);
    } else {  // the first NaN sits at index `count`
      k = mx::where(fx::lt(count, n), mx::array(n - 1), mx::array(fx::ifloordiv(n - 1, 2)));
      k = mx::where(fx::lt(count, n), count, k);
    }
  } else {
    mx::Shape shape = x.shape();
    shape[d] = 1;
    k = mx::full(shape, fx::ifloordiv(n - 1, 2), mx::int32);
  }
  auto idx = mx::take_along_axis(order, mx::astype(k, mx::int32), d);
  auto val = mx::take_along_axis(x, idx, d);
  if (!keepdim) {
    idx = mx::squeeze(idx, d);
    val = mx::squeeze(val, d);
  }
  return {val, mx::astype(idx, mx::int64)};
}

// torch.median / nanmedian over all elements: the value only.
inline mx::array median_all(const mx::array& x, bool ignore_nan = false) {
  return fx::median(mx::reshape(x, {-1}), 0, false, ignore_nan)[0];
}

// torch.tril_indices / triu_indices (creation.py): (2, N) row-major coordinates of the lower (upper) triangle.
inline mx::array tri_indices(int64_t row, int64_t col, int64_t offset, mx::Dtype dtype, bool upper) {
  auto r = mx::reshape(mx::arange(static_cast<int>(row)), {-1, 1});
  auto c = mx::reshape(mx::arange(static_cast<int>(col)), {1, -1});
  auto mask = upper ? fx::ge(mx::subtract(c, r), offset) : fx::le(mx::subtract(c, r), offset);
  int64_t n = 0;
  for (int64_t i = 0; i < row; i++)
    n += upper ? std::max<int64_t>(0, col - std::max<int64_t>(0, i + offset))
               : std::max<int64_t>(0, std::min(col, i + offset + 1));
  auto flat = mx::arange(static_cast<int>(row * col));
  auto keys = fx::where(mx::reshape(mask, {-1}), flat, row * col);
  auto idx = fx::slice(mx::sort(keys), 0, 0, n, 1);
  return mx::astype(mx::stack({fx::floor_divide(idx, col), fx::remainder(idx, col)}), dtype);
}

}  // namespace fx
