// fx2mlx C++ runtime: cdist/pdist, embedding bags, pooling, normalisation (fx2mlx/runtime/distance.py, layers.py, pooling.py, norms.py).
// Included at the end of fx2mlx_runtime.h (uses its helpers: fx::scalar, fx::where, ...).
#pragma once

#include "fx2mlx_runtime.h"

namespace fx {

// ---- distances (fx2mlx/runtime/distance.py) ----------------------------------------------------------
// The p-norm of the differences d along axis (p = 0 counts non-zeros, inf takes the max).
inline mx::array pnorm(const mx::array& d, double p, int ax) {
  auto a = mx::abs(d);
  if (p == 0) return mx::sum(mx::astype(fx::ne(a, 0), d.dtype()), ax);
  if (p == INFINITY) return mx::max(a, ax);
  if (p == 1) return mx::sum(a, ax);
  if (p == 2) return mx::sqrt(mx::sum(mx::multiply(a, a), ax));
  return fx::pow(mx::sum(fx::pow(a, p), ax), 1.0 / p);
}

// aten._cdist_forward: (..., P, M) x (..., R, M) -> (..., P, R).
inline mx::array cdist(const mx::array& x1, const mx::array& x2, double p) {
  if (x1.shape(-2) == 0 || x2.shape(-2) == 0 || x1.shape(-1) == 0) {
    auto shape = mx::broadcast_shapes(mx::Shape(x1.shape().begin(), x1.shape().end() - 2),
                                      mx::Shape(x2.shape().begin(), x2.shape().end() - 2));
    shape.push_back(x1.shape(-2));
    shape.push_back(x2.shape(-2));
    return mx::zeros(shape, x1.dtype());
  }
  auto d = mx::subtract(mx::expand_dims(x1, -2), mx::expand_dims(x2, -3));
  return fx::pnorm(d, p, -1);
}

// aten._pdist_forward: distances between the rows i < j of x (N, M), in row-major order.
inline mx::array pdist(const mx::array& x, double p) {
  const int n = x.shape(0);
  std::vector<int> ii, jj;
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++) ii.push_back(i), jj.push_back(j);
  if (ii.empty()) return mx::zeros({0}, x.dtype());
  const int m = static_cast<int>(ii.size());
  auto d = mx::subtract(mx::take(x, mx::array(ii.data(), {m}), 0), mx::take(x, mx::array(jj.data(), {m}), 0));
  return fx::pnorm(d, p, -1);
}

// aten._embedding_bag: bags of rows of weight, reduced by sum (0), mean (1) or max (2). Returns
// {output, offset2bag, bag_size, max_indices} as PyTorch does (the last three for reference).
inline Tuple embedding_bag(const mx::array& weight, const mx::array& indices, const mx::array& offsets, int64_t mode,
                           const OptArray& per_sample_weights, bool include_last_offset,
                           std::optional<int64_t> padding_idx) {
  const int n = indices.shape(0);
  const int nb = offsets.shape(0) - (include_last_offset ? 1 : 0);
  auto pos = mx::arange(n);
  auto bag = fx::sub(mx::sum(mx::less_equal(mx::expand_dims(fx::slice(offsets, 0, 0, nb, 1), 0), mx::expand_dims(pos, 1)), 1),
                     1);  // (N,)
  if (include_last_offset) bag = fx::where(mx::greater_equal(pos, fx::select(offsets, 0, nb)), -1, bag);
  const bool pad = padding_idx && *padding_idx >= 0;
  auto keep = pad ? fx::ne(indices, *padding_idx) : mx::ones({n}, mx::bool_);
  auto member = mx::logical_and(mx::equal(mx::expand_dims(bag, 0), mx::expand_dims(mx::arange(nb), 1)),
                                mx::expand_dims(keep, 0));  // (B, N)
  auto rows = mx::take(weight, indices, 0);
  if (rows.dtype() == mx::float16 || rows.dtype() == mx::bfloat16)  // bags accumulate in float32, rounded once
    rows = mx::astype(rows, mx::float32);
  if (per_sample_weights) rows = mx::multiply(rows, mx::expand_dims(mx::astype(*per_sample_weights, rows.dtype()), 1));
  auto count = mx::astype(mx::sum(member, 1), mx::int64);
  mx::array out = rows;
  OptArray max_idx;
  if (mode == 2) {
    auto masked = fx::where(mx::expand_dims(member, 2), mx::expand_dims(rows, 0), -INFINITY);
    auto nonempty = fx::gt(mx::expand_dims(count, 1), 0);
    out = mx::astype(fx::where(nonempty, mx::max(masked, 1), 0), weight.dtype());
    auto arg = mx::argmax(masked, 1);
    max_idx = mx::astype(fx::where(nonempty, mx::take(indices, arg, 0), 0), mx::int64);
  } else {
    out = mx::matmul(mx::astype(member, rows.dtype()), rows);
    if (mode == 1) out = mx::divide(out, mx::reshape(mx::astype(fx::maximum(count, 1), out.dtype()), {-1, 1}));
  }
  // PyTorch's auxiliary outputs, shaped as its meta function gives them: bag_size has one entry per offset,
  // max_indices one per bag (and feature, in max mode)
  const int n_off = offsets.shape(0);
  auto bag_size = n_off > nb ? mx::concatenate({count, mx::zeros({n_off - nb}, mx::int64)}) : count;
  if (mode == 0) bag_size = mx::zeros({n_off}, mx::int64);
  auto offset2bag = mode != 0 || pad ? mx::astype(bag, mx::int64) : mx::zeros({0}, mx::int64);
  if (!max_idx) max_idx = mode == 0 ? mx::zeros({nb}, mx::int64) : count;
  return {mx::astype(out, weight.dtype()), offset2bag, bag_size, *max_idx};
}

// ---- pooling with indices (fx2mlx/runtime/pooling.py) ------------------------------------------------
// A pooling parameter for nd dims: one value for all, or default_ when empty.
inline Ints mp_list(const Ints& v, int nd, const Ints& default_) {
  if (v.empty()) return default_;
  return v.size() == 1 ? Ints(nd, v[0]) : v;
}

// max_pool{1,2,3}d_with_indices -> {values, int64 indices into the flattened input plane}.
inline Tuple max_pool_with_indices(mx::array x, int nd, const Ints& kernel_size, const Ints& stride,
                                   const Ints& padding, const Ints& dilation, bool ceil_mode) {
  const bool unbatched = rank(x) == nd + 1;
  if (unbatched) x = mx::expand_dims(x, 0);
  auto k = fx::mp_list(kernel_size, nd, {});
  auto s = fx::mp_list(stride, nd, k);
  auto p = fx::mp_list(padding, nd, Ints(nd, 0));
  auto d = fx::mp_list(dilation, nd, Ints(nd, 1));
  Ints spatial(x.shape().begin() + 2, x.shape().end()), out;
  std::vector<std::pair<int, int>> widths{{0, 0}, {0, 0}};
  for (int i = 0; i < nd; i++) out.push_back(fx::pool_out(spatial[i], k[i], s[i], p[i], d[i], ceil_mode));
  for (int i = 0; i < nd; i++)
    widths.push_back({p[i], std::max(0, (out[i] - 1) * s[i] + d[i] * (k[i] - 1) + 1 - spatial[i] - p[i])});
  auto low = mx::issubdtype(x.dtype(), mx::inexact) ? fx::scalar(-INFINITY, x) : fx::scalar(mx::iinfo(x.dtype()).min, x);
  auto xp = mx::pad(x, widths, low);
  mx::Shape wshape{xp.shape(0), xp.shape(1)};
  wshape.insert(wshape.end(), out.begin(), out.end());
  wshape.push_back(std::accumulate(k.begin(), k.end(), 1, std::multiplies<int>()));
  auto w = mx::reshape(fx::windows(xp, k, s, d, out), wshape);  // (N, C, *out, prod(kernel))
  auto values = mx::max(w, -1);
  auto arg = mx::astype(mx::argmax(w, -1), mx::int64);
  auto flat = mx::zeros(arg.shape(), mx::int64);
  auto rest = arg;
  int64_t plane = 1;
  for (int i = nd - 1; i >= 0; i--) {  // kernel offset -> input coordinate, row-major over the input plane
    auto ki = fx::remainder(rest, k[i]);
    rest = fx::floor_divide(rest, k[i]);
    mx::Shape oshape(2 + nd, 1);
    oshape[2 + i] = out[i];
    auto o = mx::reshape(mx::arange(static_cast<double>(out[i]), mx::int64), oshape);
    auto coord = mx::add(fx::sub(fx::mul(o, s[i]), p[i]), fx::mul(ki, d[i]));
    flat = mx::add(flat, fx::mul(coord, plane));
    plane *= spatial[i];
  }
  if (unbatched) return {fx::select(values, 0, 0), fx::select(flat, 0, 0)};
  return {values, flat};
}

// (N, C, 1, ...) offsets n*C*plane + c*plane of each (sample, channel) plane in a flat buffer.
inline mx::array plane_base(int n, int c, int64_t plane, int rank) {
  mx::Shape shape{n, c};
  shape.resize(rank, 1);
  return mx::reshape(fx::mul(mx::arange(static_cast<double>(n * c), mx::int64), plane), shape);
}

// max_pool{2,3}d_with_indices_backward: each output's gradient added at its input position.
inline mx::array max_pool_backward(mx::array grad, mx::array x, int nd, mx::array indices) {
  const bool unbatched = rank(x) == nd + 1;
  const auto shape = x.shape();
  if (unbatched) grad = mx::expand_dims(grad, 0), indices = mx::expand_dims(indices, 0), x = mx::expand_dims(x, 0);
  const int n = x.shape(0), c = x.shape(1);
  int64_t plane = 1;
  for (int i = 2; i < rank(x); i++) plane *= x.shape(i);
  auto flat = mx::reshape(mx::add(indices, fx::plane_base(n, c, plane, rank(indices))), {-1});
  auto out = mx::zeros({static_cast<int>(n * c * plane)}, grad.dtype());
  out = mx::scatter_add(out, flat, mx::reshape(grad, {-1, 1}), 0);
  return mx::reshape(out, shape);
}

// max_unpool{2,3}d: values written at their flat indices in zero output planes of output_size.
inline mx::array max_unpool(mx::array x, mx::array indices, const std::vector<int64_t>& output_size) {
  const int nd = static_cast<int>(output_size.size());
  const bool unbatched = rank(x) == nd + 1;
  if (unbatched) x = mx::expand_dims(x, 0), indices = mx::expand_dims(indices, 0);
  const int n = x.shape(0), c = x.shape(1);
  int64_t plane = 1;
  for (auto v : output_size) plane *= v;
  auto flat = mx::reshape(mx::add(mx::astype(indices, mx::int64), fx::plane_base(n, c, plane, rank(x))), {-1});
  auto out = mx::zeros({static_cast<int>(n * c * plane)}, x.dtype());
  out = mx::scatter(out, flat, mx::reshape(x, {-1, 1}), 0);
  mx::Shape shape{n, c};
  for (auto v : output_size) shape.push_back(static_cast<int>(v));
  out = mx::reshape(out, shape);
  return unbatched ? fx::select(out, 0, 0) : out;
}

// adaptive_max_pool{1,2,3}d -> {values, int64 flat indices}: bins [floor(i*S/O), ceil((i+1)*S/O)).
inline Tuple adaptive_max_pool(mx::array x, const Ints& output_size) {
  const int nd = static_cast<int>(output_size.size());
  const bool unbatched = rank(x) == nd + 1;
  if (unbatched) x = mx::expand_dims(x, 0);
  const mx::Shape spatial(x.shape().begin() + 2, x.shape().end());
  const int n = x.shape(0), c = x.shape(1);
  auto flat_x = mx::reshape(x, {n, c, -1});
  const int size = std::accumulate(spatial.begin(), spatial.end(), 1, std::multiplies<int>());
  auto pos = mx::reshape(mx::arange(static_cast<double>(size), mx::int64), spatial);
  Tuple vals, idxs;
  Ints bin(nd, 0);  // the current bin of each axis, row-major
  const int total = std::accumulate(output_size.begin(), output_size.end(), 1, std::multiplies<int>());
  for (int b = 0; b < total; b++) {
    mx::Shape lo, hi;
    for (int i = 0; i < nd; i++) {
      const int S = spatial[i], O = output_size[i];
      lo.push_back(bin[i] * S / O);
      hi.push_back(((bin[i] + 1) * S + O - 1) / O);
    }
    auto p = mx::reshape(mx::slice(pos, lo, hi), {-1});
    auto v = mx::take(flat_x, p, 2);
    auto a = mx::argmax(v, 2);
    vals.push_back(mx::max(v, 2));
    idxs.push_back(mx::take(p, a));
    for (int i = nd - 1; i >= 0 && ++bin[i] == output_size[i]; i--) bin[i] = 0;
  }
  mx::Shape shape{n, c};
  shape.insert(shape.end(), output_size.begin(), output_size.end());
  auto values = mx::reshape(mx::stack(vals, -1), shape);
  auto indices = mx::astype(mx::reshape(mx::stack(idxs, -1), shape), mx::int64);
  if (unbatched) return {fx::select(values, 0, 0), fx::select(indices, 0, 0)};
  return {values, indices};
}

// PyTorch's generate_intervals, vectorised over the planes: sample (N, C) -> starts (N, C, n_out).
inline mx::array fractional_starts(const mx::array& sample, int n_in, int n_out, int pool) {
  mx::Shape shape = sample.shape();
  shape.push_back(1);
  if (n_out == 1) return mx::full(shape, mx::array(n_in - pool), mx::int32);
  auto alpha = mx::array(static_cast<float>(static_cast<double>(n_in - pool) / (n_out - 1)));
  auto i = mx::arange(static_cast<double>(n_out), mx::float32);
  auto s = mx::expand_dims(mx::astype(sample, mx::float32), -1);
  auto starts = mx::subtract(mx::astype(mx::multiply(mx::add(i, s), alpha), mx::int32),
                             mx::astype(mx::multiply(s, alpha), mx::int32));
  auto last = mx::full(shape, mx::array(n_in - pool), mx::int32);
  return mx::concatenate({fx::slice(starts, -1, std::nullopt, -1, 1), last}, -1);
}

// fractional_max_pool{2,3}d with the given random samples (N, C, nd) -> {values, flat indices}.
inline Tuple fractional_max_pool(mx::array x, const Ints& kernel_size, const Ints& output_size, mx::array samples) {
  const int nd = static_cast<int>(output_size.size());
  const bool unbatched = rank(x) == nd + 1;
  if (unbatched) x = mx::expand_dims(x, 0), samples = mx::expand_dims(samples, 0);
  const int n = x.shape(0), c = x.shape(1);
  const Ints spatial(x.shape().begin() + 2, x.shape().end());
  auto prod = [](auto b, auto e) { return std::accumulate(b, e, 1, std::multiplies<int>()); };
  std::optional<mx::array> flat_pos;
  for (int i = 0; i < nd; i++) {  // sample k drives the k-th spatial dim counted from the last (W first in 2-D)
    const int k = nd == 2 ? nd - 1 - i : i;
    auto st = fx::fractional_starts(fx::select(samples, -1, k), spatial[i], output_size[i], kernel_size[i]);
    auto coord = mx::add(mx::expand_dims(st, -1), mx::arange(kernel_size[i]));  // (N, C, O_i, K_i)
    mx::Shape shape(2 + 2 * nd, 1);
    shape[0] = n, shape[1] = c, shape[2 + i] = output_size[i], shape[2 + nd + i] = kernel_size[i];
    auto term = fx::mul(mx::reshape(coord, shape), prod(spatial.begin() + i + 1, spatial.end()));
    flat_pos = flat_pos ? mx::add(*flat_pos, term) : term;
  }
  mx::Shape full{n, c}, out_shape{n, c};
  full.insert(full.end(), output_size.begin(), output_size.end());
  full.insert(full.end(), kernel_size.begin(), kernel_size.end());
  out_shape.insert(out_shape.end(), output_size.begin(), output_size.end());
  const int windows = prod(output_size.begin(), output_size.end()), taps = prod(kernel_size.begin(), kernel_size.end());
  auto result = [unbatched](const mx::array& values, const mx::array& idx) {
    return unbatched ? Tuple{fx::select(values, 0, 0), fx::select(idx, 0, 0)} : Tuple{values, idx};
  };
  if (n * c == 0) {  // MLX cannot argmax an empty array
    auto out = mx::zeros(out_shape, x.dtype());
    return result(out, mx::astype(out, mx::int64));
  }
  auto fp = mx::reshape(mx::broadcast_to(*flat_pos, full), {n, c, windows * taps});
  auto vals = mx::reshape(mx::take_along_axis(mx::reshape(x, {n, c, prod(spatial.begin(), spatial.end())}), fp, 2),
                          {n, c, windows, taps});
  auto arg = mx::argmax(vals, -1);
  auto values = mx::reshape(mx::max(vals, -1), out_shape);
  auto idx = mx::take_along_axis(mx::reshape(fp, {n, c, windows, taps}), mx::expand_dims(arg, -1), -1);
  return result(values, mx::astype(mx::reshape(idx, out_shape), mx::int64));
}

// ---- batch norm updating its running statistics (fx2mlx/runtime/norms.py) ------------------------------
// aten._batch_norm_with_update_functional (training mode) -> {out, save_mean, save_rstd, reserve, new running_mean,
// new running_var}, the running statistics updated as PyTorch does (unbiased var).
inline Tuple batch_norm_with_update(const mx::array& x, const OptArray& weight, const OptArray& bias,
                                    const mx::array& running_mean, const mx::array& running_var, double momentum,
                                    double eps) {
  auto stats = fx::batch_norm_batch_stats(x, weight, bias, eps);
  const auto& mean = stats[1];
  const int64_t n = x.size() / x.shape(1);
  std::vector<int> axes{0};
  for (int i = 2; i < rank(x); i++) axes.push_back(i);
  auto var = mx::var(mx::astype(x, mx::float32), axes, false, n > 1 ? 1 : 0);
  auto new_mean = mx::add(fx::mul(1 - momentum, running_mean), fx::mul(momentum, mx::astype(mean, running_mean.dtype())));
  auto new_var = mx::add(fx::mul(1 - momentum, running_var), fx::mul(momentum, mx::astype(var, running_var.dtype())));
  return {stats[0], mean, stats[2], mx::zeros({0}, mx::uint8), new_mean, new_var};
}

}  // namespace fx
