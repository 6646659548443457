// fx2mlx C++ runtime: scatter / index_put family (fx2mlx/runtime/scatter.py).
// Included at the end of fx2mlx_runtime.h (uses its helpers: fx::scalar, fx::where, ...).
// The Python runtime updates a copy with `y[idx] = v` and `x.at[idx].add(v)`; MLX Python turns those into
// slice_update / scatter calls (python/src/indexing.cpp). The functions below make the same calls for the
// index forms the runtime uses. nonzero, masked_select, repeat_interleave (and index_put with a boolean
// mask) have data-dependent shapes: they evaluate arrays, so a graph using them runs uncompiled (main.cpp).
#pragma once

#include "fx2mlx_runtime.h"

namespace fx {

// A Python number as MLX Python converts it for `dtype` (mx.full(shape, v, dtype=...)): ints take the
// dtype (int32 for bool), floats take it when it is floating (else float32), through float unless float64.
template <Number T>
mx::array py_value(T v, mx::Dtype dtype) {
  if constexpr (std::is_same_v<T, bool>) {
    return mx::array(v, dtype);
  } else if constexpr (std::is_integral_v<T>) {
    return mx::array(static_cast<int64_t>(v), dtype == mx::bool_ ? mx::int32 : dtype);
  } else {
    const mx::Dtype d = mx::issubdtype(dtype, mx::floating) ? dtype : mx::float32;
    return d == mx::float64 ? mx::array(static_cast<double>(v), d) : mx::array(static_cast<float>(v), d);
  }
}

// ---- indexed updates as MLX Python performs them ---------------------------------------------------
enum class Update { set, add, multiply, maximum, minimum };  // y[idx] = v, x.at[idx].add(v), ...

struct ScatterArgs {
  std::vector<mx::array> indices;
  mx::array updates;
  std::vector<int> axes;
};

inline mx::array squeeze_leading_singletons(const mx::array& a) {
  std::vector<int> axes;
  for (int d = 0; d < rank(a) && a.shape(d) == 1; d++) axes.push_back(d);
  return mx::squeeze(a, axes);
}

// x[indices] with one index array (mlx_scatter_args_array).
inline ScatterArgs scatter_args(const mx::array& x, const mx::array& indices, const mx::array& update) {
  mx::Shape shape = indices.shape();
  shape.insert(shape.end(), x.shape().begin() + 1, x.shape().end());
  auto up = mx::broadcast_to(fx::squeeze_leading_singletons(update), shape);
  shape.insert(shape.begin() + rank(indices), 1);
  return {{indices}, mx::reshape(up, shape), {0}};
}

// x[entries] for a tuple of whole-axis slices (std::nullopt) and index arrays, at least one array
// (mlx_scatter_args_nd): the arrays broadcast together, numpy-style: their dims go where the first array is
// when the arrays are adjacent, else first. Slices up to the last array become arange indices; later ones
// stay whole (their start index only).
inline ScatterArgs scatter_args(const mx::array& x, const std::vector<OptArray>& entries, const mx::array& update) {
  const int n = static_cast<int>(entries.size());
  if (n > rank(x)) throw std::invalid_argument("Too many indices for array with " + std::to_string(rank(x)) + " dimensions.");
  auto up = fx::squeeze_leading_singletons(update);
  int max_dim = 0, num_slices = 0, num_arrays = 0, slices_post = 0;
  bool arrays_first = false, have_array = false, have_non_array = false;
  for (const auto& e : entries) {
    if (!e) {
      have_non_array = have_array;
      num_slices++;
      slices_post++;
    } else {
      have_array = true;
      arrays_first |= have_non_array;
      max_dim = std::max(max_dim, rank(*e));
      num_arrays++;
      slices_post = 0;
    }
  }
  const int idx_ndim = std::max(max_dim + num_slices - slices_post, 1);
  std::vector<mx::array> indices;
  mx::Shape update_shape(n, 1), slice_shapes;
  int slice_num = 0, array_num = 0;
  for (int ax = 0; ax < n; ax++) {
    mx::Shape idx_shape(idx_ndim, 1);
    const int size = x.shape(ax);
    if (entries[ax]) {
      const auto& idx = *entries[ax];
      const int st = (arrays_first ? 0 : slice_num) + max_dim - rank(idx);
      for (int j = 0; j < rank(idx); j++) idx_shape[st + j] = idx.shape(j);
      indices.push_back(mx::reshape(idx, idx_shape));
      if (!arrays_first && ++array_num == num_arrays) slice_num += max_dim;
    } else if (array_num >= num_arrays) {
      indices.push_back(mx::array({0}, idx_shape, mx::uint32));
      slice_shapes.push_back(size);
      update_shape[ax] = size;
    } else {
      idx_shape[slice_num + (arrays_first ? max_dim : 0)] = size;
      indices.push_back(mx::reshape(mx::arange(0, size, 1, mx::uint32), idx_shape));
      slice_num++;
    }
  }
  indices = mx::broadcast_arrays(indices);
  const mx::Shape rest(x.shape().begin() + n, x.shape().end());
  mx::Shape up_shape = indices[0].shape();
  up_shape.insert(up_shape.end(), slice_shapes.begin(), slice_shapes.end());
  up_shape.insert(up_shape.end(), rest.begin(), rest.end());
  up = mx::broadcast_to(up, up_shape);
  mx::Shape up_reshape = indices[0].shape();
  up_reshape.insert(up_reshape.end(), update_shape.begin(), update_shape.end());
  up_reshape.insert(up_reshape.end(), rest.begin(), rest.end());
  std::vector<int> axes(indices.size());
  std::iota(axes.begin(), axes.end(), 0);
  return {indices, mx::reshape(up, up_reshape), axes};
}

inline mx::array scatter_update(const mx::array& x, const ScatterArgs& a, Update op) {
  switch (op) {
    case Update::set: return mx::scatter(x, a.indices, a.updates, a.axes);
    case Update::add: return mx::scatter_add(x, a.indices, a.updates, a.axes);
    case Update::multiply: return mx::scatter_prod(x, a.indices, a.updates, a.axes);
    case Update::maximum: return mx::scatter_max(x, a.indices, a.updates, a.axes);
    case Update::minimum: return mx::scatter_min(x, a.indices, a.updates, a.axes);
  }
  throw std::logic_error("scatter_update");
}

// y[idx] = v / x.at[idx].add(v) / ... where idx is one index array or a tuple holding an index array.
template <class Idx>
mx::array update_at(const mx::array& x, const Idx& idx, const mx::array& v, Update op) {
  return fx::scatter_update(x, fx::scatter_args(x, idx, v), op);
}

// y[idx] = v for a tuple of slices (start, stop, step as get_slice_params leaves them) and at most one int,
// at axis int_axis (mlx_compute_slice_update_args): slice_update, with the update's leading 1s beyond x's
// rank dropped, and a size-1 axis for the int when the update reaches that far (counted from its last axis).
inline mx::array set_slices(const mx::array& x, mx::array v, const mx::Shape& starts, const mx::Shape& stops,
                            const mx::Shape& strides, std::optional<int> int_axis = std::nullopt) {
  std::vector<int> squeeze;
  for (int s = 0; s < rank(v) - 1 && v.shape(s) == 1 && rank(v) - s > rank(x); s++) squeeze.push_back(s);
  v = mx::squeeze(v, squeeze);
  if (int_axis && rank(v) >= rank(x) - *int_axis) v = mx::expand_dims(v, *int_axis - rank(x));
  return mx::slice_update(x, v, starts, stops, strides);
}

// ---- nonzero and boolean masks ---------------------------------------------------------------------
// torch.nonzero: (n, ndim) int64 coordinates of the non-zero elements, in row-major order (evaluates n).
inline mx::array nonzero(const mx::array& x) {
  auto flat = fx::ne(mx::reshape(x, {-1}), 0);
  const int n = flat.size() ? static_cast<int>(fx::item_int(mx::sum(flat))) : 0;
  const int size = static_cast<int>(flat.size());
  auto idx = mx::arange(static_cast<double>(size), mx::int64);
  auto key = mx::where(flat, idx, fx::add(idx, size));
  auto sel = mx::slice(mx::sort(key, -1), {0}, {n}, {1});
  Tuple coords;
  for (int d = rank(x) - 1; d >= 0; d--) {
    coords.push_back(fx::remainder(sel, x.shape(d)));
    sel = fx::floor_divide(sel, x.shape(d));
  }
  if (coords.empty()) return mx::zeros({n, 0}, mx::int64);
  std::reverse(coords.begin(), coords.end());
  return mx::astype(mx::stack(coords, 1), mx::int64);
}

// aten's index list (std::nullopt = a whole axis) with each boolean mask replaced by the index arrays of
// its non-zero elements (evaluates the mask).
inline std::vector<OptArray> index_tuple(const std::vector<OptArray>& indices) {
  std::vector<OptArray> idx;
  for (const auto& i : indices) {
    if (i && i->dtype() == mx::bool_) {
      auto nz = fx::nonzero(*i);
      for (int k = 0; k < rank(*i); k++) idx.push_back(fx::select(nz, 1, k));
    } else {
      idx.push_back(i);
    }
  }
  return idx;
}

// aten.index.Tensor when an index is a boolean mask (a data-dependent shape: evaluates the mask).
inline mx::array index_with_masks(const mx::array& x, const std::vector<OptArray>& indices) {
  return fx::index(x, fx::index_tuple(indices));
}

// aten.index_put: x[indices] = values (or += with accumulate), on a copy.
inline mx::array index_put(const mx::array& x, const std::vector<OptArray>& indices, const mx::array& values_,
                           bool accumulate = false) {
  auto values = mx::astype(values_, x.dtype());
  std::vector<mx::array> masks;
  for (const auto& i : indices)
    if (i) masks.push_back(*i);
  if (indices.size() == 1 && !masks.empty() && masks[0].dtype() == mx::bool_ && values.size() == 1 && !accumulate &&
      rank(masks[0]) <= rank(x)) {  // x[mask] = v: no data-dependent shape needed
    mx::Shape shape = masks[0].shape();
    shape.resize(rank(x), 1);
    return mx::where(mx::reshape(masks[0], shape), mx::reshape(values, {}), x);
  }
  return fx::update_at(x, fx::index_tuple(indices), values, accumulate ? Update::add : Update::set);
}

// ---- scatter along a dim ---------------------------------------------------------------------------
// The index tuple of x[i0, i1, ...] that puts index[..., j, ...] at position index[...] along `dim`.
inline std::vector<OptArray> scatter_index(const mx::array& index, int dim) {
  std::vector<OptArray> idx;
  for (int d = 0; d < rank(index); d++) {
    if (d == dim) {
      idx.push_back(index);
    } else {
      mx::Shape shape(rank(index), 1);
      shape[d] = index.shape(d);
      idx.push_back(mx::reshape(mx::arange(index.shape(d)), shape));
    }
  }
  return idx;
}

// The identity of a scatter reduction, as the number Python uses (0, 1, -inf / inf or the integer bounds).
inline mx::array reduce_identity(const std::string& reduce, mx::Dtype dtype) {
  const bool is_bool = dtype == mx::bool_, inexact = mx::issubdtype(dtype, mx::inexact);
  if (reduce == "sum" || reduce == "add" || reduce == "mean") return fx::py_value(0, dtype);
  if (reduce == "prod" || reduce == "multiply") return fx::py_value(1, dtype);
  if (reduce == "amax")
    return is_bool ? fx::py_value(false, dtype) : inexact ? fx::py_value(-INFINITY, dtype)
                                                          : fx::py_value(mx::iinfo(dtype).min, dtype);
  if (reduce == "amin")
    return is_bool ? fx::py_value(true, dtype) : inexact ? fx::py_value(INFINITY, dtype)
                                                         : fx::py_value(mx::iinfo(dtype).max, dtype);
  throw std::invalid_argument("scatter: unknown reduce " + reduce);
}

// aten.scatter / scatter_add / scatter_reduce along `dim`; src is an array already shaped like index.
inline mx::array scatter_impl(const mx::array& x, int dim, const mx::array& index, const mx::array& src,
                              const std::optional<std::string>& reduce, bool include_self) {
  const auto idx = fx::scatter_index(index, dim);
  if (!reduce) return fx::update_at(x, idx, src, Update::set);
  auto base = x;
  if (!include_self) base = fx::update_at(x, idx, mx::full(index.shape(), fx::reduce_identity(*reduce, x.dtype())), Update::set);
  if (*reduce == "sum" || *reduce == "add") return fx::update_at(base, idx, src, Update::add);
  if (*reduce == "prod" || *reduce == "multiply") return fx::update_at(base, idx, src, Update::multiply);
  if (*reduce == "amax") return fx::update_at(base, idx, src, Update::maximum);
  if (*reduce == "amin") return fx::update_at(base, idx, src, Update::minimum);
  auto total = fx::update_at(base, idx, src, Update::add);  // mean
  auto count = fx::update_at(mx::zeros(x.shape(), mx::int32), idx, mx::ones(index.shape(), mx::int32), Update::add);
  count = fx::maximum(fx::add(count, include_self ? 1 : 0), 1);
  if (mx::issubdtype(x.dtype(), mx::inexact)) return mx::astype(mx::divide(total, count), x.dtype());
  return mx::astype(mx::floor_divide(total, mx::astype(count, x.dtype())), x.dtype());
}

// src an array (aten.scatter.src, scatter_add, scatter_reduce) or a number (aten.scatter.value).
template <class Src>
mx::array scatter(const mx::array& x, int64_t dim, const mx::array& index_, const Src& src_,
                  const std::optional<std::string>& reduce = std::nullopt, bool include_self = true) {
  constexpr bool is_array = std::is_same_v<Src, mx::array>;
  if (rank(x) == 0) {
    auto s = [&]() -> Src { if constexpr (is_array) return mx::reshape(src_, {1}); else return src_; }();
    return mx::reshape(fx::scatter(mx::reshape(x, {1}), 0, mx::reshape(index_, {1}), s, reduce, include_self), {});
  }
  if (index_.size() == 0) return x;
  const int d = static_cast<int>(fx::imod(dim, static_cast<int64_t>(rank(x))));
  auto index = rank(index_) == 0 ? mx::reshape(index_, {1}) : index_;
  mx::array src = [&] {
    if constexpr (is_array) {  // src[:index.shape[0], :index.shape[1], ...]
      auto s = rank(src_) == 0 ? mx::reshape(src_, {1}) : src_;
      mx::Shape stops = s.shape();
      for (int k = 0; k < rank(index); k++) stops.at(k) = index.shape(k);
      return mx::astype(mx::slice(s, mx::Shape(rank(s), 0), stops, mx::Shape(rank(s), 1)), x.dtype());
    } else {
      return mx::full(index.shape(), fx::py_value(src_, x.dtype()));
    }
  }();
  return fx::scatter_impl(x, d, index, src, reduce, include_self);
}

// aten.index_reduce: x[..., index[i], ...] (reduce)= source[..., i, ...] along dim.
inline mx::array index_reduce(const mx::array& x, int64_t dim, const mx::array& index, const mx::array& source,
                              const std::string& reduce, bool include_self = true) {
  if (rank(x) == 0)
    return mx::reshape(fx::index_reduce(mx::reshape(x, {1}), 0, mx::reshape(index, {-1}), mx::reshape(source, {1}),
                                        reduce, include_self),
                       {});
  const int d = static_cast<int>(fx::imod(dim, static_cast<int64_t>(rank(x))));
  mx::Shape shape(rank(source), 1);
  shape[d] = index.shape(0);
  auto full = mx::broadcast_to(mx::reshape(index, shape), source.shape());
  return fx::scatter(x, d, full, source, reduce, include_self);
}

// ---- slices, diagonals, masks ----------------------------------------------------------------------
// Python's slice(start, stop, step).indices(size).
inline std::tuple<int, int, int> slice_indices(int64_t size, std::optional<int64_t> start, std::optional<int64_t> stop,
                                               int64_t step) {
  const int64_t lower = step < 0 ? -1 : 0, upper = step < 0 ? size - 1 : size;
  auto norm = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    return *v < 0 ? std::max(*v + size, lower) : std::min(*v, upper);
  };
  return {static_cast<int>(norm(start, step < 0 ? upper : lower)), static_cast<int>(norm(stop, step < 0 ? lower : upper)),
          static_cast<int>(step)};
}

// aten.slice_scatter: a copy of x with x[..., start:end:step, ...] = src.
inline mx::array slice_scatter(const mx::array& x, const mx::array& src, int64_t dim = 0,
                               std::optional<int64_t> start = std::nullopt, std::optional<int64_t> end = std::nullopt,
                               int64_t step = 1) {
  const int d = static_cast<int>(fx::imod(dim, static_cast<int64_t>(rank(x))));
  mx::Shape starts(rank(x), 0), stops = x.shape(), strides(rank(x), 1);
  std::tie(starts[d], stops[d], strides[d]) = fx::slice_indices(x.shape(d), start, end, step);
  return fx::set_slices(x, mx::astype(src, x.dtype()), starts, stops, strides);
}

// aten.select_scatter: a copy of x with x[..., index, ...] = src.
inline mx::array select_scatter(const mx::array& x, const mx::array& src, int64_t dim, int64_t index) {
  const int d = static_cast<int>(fx::imod(dim, static_cast<int64_t>(rank(x))));
  mx::Shape starts(rank(x), 0), stops = x.shape(), strides(rank(x), 1);
  starts[d] = static_cast<int>(index < 0 ? index + x.shape(d) : index);
  stops[d] = starts[d] + 1;
  return fx::set_slices(x, mx::astype(src, x.dtype()), starts, stops, strides, d);
}

// aten.masked_scatter: the True positions of mask take source's elements in order.
inline mx::array masked_scatter(const mx::array& x_, const mx::array& mask_, const mx::array& source) {
  const auto shape = mx::broadcast_shapes(x_.shape(), mask_.shape());
  auto x = mx::broadcast_to(x_, shape);
  auto mask = mx::reshape(mx::broadcast_to(mask_, shape), {-1});
  if (source.size() == 0) return x;
  auto pos = fx::clip(fx::sub(mx::cumsum(mx::astype(mask, mx::int32)), 1), 0, static_cast<int64_t>(source.size()) - 1);
  auto vals = mx::take(mx::astype(mx::reshape(source, {-1}), x.dtype()), pos, 0);
  return mx::reshape(mx::where(mask, vals, mx::reshape(x, {-1})), x.shape());
}

// aten.put: x.flatten()[index] = source (or += with accumulate).
inline mx::array put(const mx::array& x, const mx::array& index, const mx::array& source, bool accumulate = false) {
  if (index.size() == 0) return x;
  auto flat = mx::reshape(x, {-1});
  auto src = mx::astype(mx::reshape(source, {-1}), x.dtype());
  return mx::reshape(fx::update_at(flat, mx::reshape(index, {-1}), src, accumulate ? Update::add : Update::set),
                     x.shape());
}

// aten.diagonal_scatter: a copy of x with its diagonal (as torch.diagonal) replaced by src.
inline mx::array diagonal_scatter(const mx::array& x, const mx::array& src, int64_t offset = 0, int64_t dim1 = 0,
                                  int64_t dim2 = 1) {
  const int64_t nd = rank(x);
  const int d1 = static_cast<int>(fx::imod(dim1, nd)), d2 = static_cast<int>(fx::imod(dim2, nd));
  const int n = src.shape(-1);
  auto i = fx::add(mx::arange(n), std::max<int64_t>(-offset, 0));
  auto j = fx::add(mx::arange(n), std::max<int64_t>(offset, 0));
  std::vector<int> perm, inv(nd);
  for (int a = 0; a < nd; a++)
    if (a != d1 && a != d2) perm.push_back(a);
  perm.push_back(d1);
  perm.push_back(d2);
  for (int k = 0; k < nd; k++) inv[perm[k]] = k;
  std::vector<OptArray> idx(nd - 2);  // y[..., i, j]
  idx.push_back(i);
  idx.push_back(j);
  auto y = fx::update_at(mx::transpose(x, perm), idx, mx::astype(src, x.dtype()), Update::set);
  return mx::transpose(y, inv);
}

// aten.as_strided_scatter: the elements as_strided(x, size, stride) would view, replaced by src.
inline mx::array as_strided_scatter(const mx::array& x, const mx::array& src, const std::vector<int64_t>& size,
                                    const std::vector<int64_t>& stride,
                                    std::optional<int64_t> storage_offset = std::nullopt) {
  auto pos = mx::array(storage_offset.value_or(0), mx::int64);
  for (size_t k = 0; k < size.size(); k++) {
    mx::Shape shape(size.size(), 1);
    shape[k] = static_cast<int>(size[k]);
    pos = mx::add(pos, fx::mul(mx::reshape(mx::arange(static_cast<double>(size[k]), mx::int64), shape), stride[k]));
  }
  auto y = mx::reshape(mx::contiguous(x), {-1});
  y = fx::update_at(y, mx::reshape(pos, {-1}), mx::astype(mx::reshape(src, {-1}), x.dtype()), Update::set);
  return mx::reshape(y, x.shape());
}

// aten.masked_select: the elements where mask (broadcast) is True, flattened (evaluates the mask).
inline mx::array masked_select(const mx::array& x, const mx::array& mask) {
  const auto shape = mx::broadcast_shapes(x.shape(), mask.shape());
  auto flat = mx::reshape(mx::broadcast_to(x, shape), {-1});
  auto m = mx::reshape(mx::broadcast_to(mask, shape), {-1});
  auto pos = fx::nonzero(m);
  return pos.shape(0) ? mx::take(flat, fx::select(pos, 1, 0), 0) : mx::zeros({0}, x.dtype());
}

// aten.repeat_interleave.Tensor: i repeated repeats[i] times (evaluates the total unless output_size is given).
inline mx::array repeat_interleave(const mx::array& repeats, std::optional<int64_t> output_size = std::nullopt) {
  const int n = repeats.shape(0);
  auto ends = mx::cumsum(repeats);
  const int64_t total = output_size ? *output_size : n ? fx::item_int(mx::take(ends, n - 1, 0)) : 0;
  auto pos = mx::arange(static_cast<int>(total));
  return mx::astype(mx::sum(mx::greater_equal(mx::expand_dims(pos, 1), mx::expand_dims(ends, 0)), 1), mx::int64);
}

}  // namespace fx
