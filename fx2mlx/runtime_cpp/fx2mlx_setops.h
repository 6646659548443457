// fx2mlx C++ runtime: set-like and counting ops (fx2mlx/runtime/setops.py): unique (and
// unique_consecutive), searchsorted/bucketize, isin, histograms (histc, histogram, histogramdd), bincount,
// segment_reduce, nonzero_static. `unique` and `bincount` have data-dependent shapes: they evaluate their
// input (like `.item()`), so a graph with them runs uncompiled (`--no-compile`).
// Included at the end of fx2mlx_runtime.h (uses its helpers: fx::scalar, fx::where, ...; fx::py_array of
// fx2mlx_random.h).
#pragma once

#include "fx2mlx_runtime.h"

namespace fx {

// MLX Python's updates for a[idx] (idx an integer array indexing axis 0; a.at[idx].add, a[idx] = ...):
// leading size-1 axes dropped, broadcast to idx.shape + a.shape[1:], the slice axis (size 1) after idx's.
inline mx::array index_updates(const mx::array& a, const mx::array& idx, const mx::array& updates) {
  int s = 0;
  while (s < rank(updates) && updates.shape(s) == 1) s++;
  auto up = mx::reshape(updates, mx::Shape(updates.shape().begin() + s, updates.shape().end()));
  mx::Shape shape = idx.shape();
  shape.insert(shape.end(), a.shape().begin() + 1, a.shape().end());
  up = mx::broadcast_to(up, shape);
  shape.insert(shape.begin() + rank(idx), 1);
  return mx::reshape(up, shape);
}
// a.at[idx].add(updates)
inline mx::array at_add(const mx::array& a, const mx::array& idx, const mx::array& updates) {
  return mx::scatter_add(a, idx, fx::index_updates(a, idx, updates), 0);
}

// Positions of the first k True entries of a 1-D bool array (in order).
inline mx::array first_true_positions(const mx::array& flags, int64_t k) {
  const int64_t n = flags.size();
  auto idx = mx::arange(static_cast<double>(n), mx::int64);
  return fx::slice(mx::sort(mx::where(flags, idx, fx::add(idx, n))), 0, 0, k, 1);
}

// Stable lexicographic order of the rows of a 2-D array (last column least significant).
inline mx::array lex_order(const mx::array& rows) {
  auto order = mx::arange(rows.shape(0));
  for (int j = rows.shape(1) - 1; j >= 0; j--) {
    auto col = mx::take(fx::select(rows, 1, j), order);
    order = mx::take(order, mx::argsort(col));
  }
  return order;
}

// torch.unique / unique_consecutive (dim = nullopt: over all elements) -> {values, inverse, counts}.
inline Tuple unique(const mx::array& x, bool sorted = true, bool return_inverse = false, bool return_counts = false,
                    std::optional<int64_t> dim = std::nullopt, bool consecutive = false) {
  mx::array rows = x, moved = x;
  int d = 0;
  if (!dim) {
    rows = mx::reshape(x, {-1, 1});
  } else {
    d = axis(*dim, rank(x)) % rank(x);
    moved = mx::moveaxis(x, d, 0);
    int rest = 1;
    for (int i = 1; i < rank(moved); i++) rest *= moved.shape(i);
    rows = mx::reshape(moved, {moved.shape(0), rest});
  }
  const int n = rows.shape(0);
  mx::Shape inner(moved.shape().begin() + 1, moved.shape().end());  // moved.shape[1:]
  auto with_rows = [&](int k) {
    mx::Shape s{k};
    s.insert(s.end(), inner.begin(), inner.end());
    return s;
  };
  if (n == 0) {
    auto vals = !dim ? mx::zeros({0}, x.dtype()) : mx::moveaxis(mx::zeros(with_rows(0), x.dtype()), 0, d);
    const mx::Shape inv_shape = !dim && return_inverse ? x.shape() : mx::Shape{0};
    return {vals, mx::zeros(inv_shape, mx::int64), mx::zeros({0}, mx::int64)};
  }
  mx::array order = consecutive ? mx::arange(n) : rows.shape(1) == 1 ? mx::argsort(fx::select(rows, 1, 0)) : fx::lex_order(rows);
  auto s = mx::take(rows, order, 0);
  auto first = mx::array({true});
  auto new_ = rows.shape(1) == 0
                  ? mx::concatenate({first, mx::zeros({n - 1}, mx::bool_)})
                  : mx::concatenate({first, mx::any(mx::not_equal(fx::slice(s, 0, 1, std::nullopt, 1),
                                                                  fx::slice(s, 0, std::nullopt, -1, 1)), 1)});
  const int64_t k = fx::item_int(mx::sum(new_));
  auto starts = fx::first_true_positions(new_, k);
  auto values = mx::take(s, starts, 0);
  values = !dim ? mx::reshape(values, {-1}) : mx::moveaxis(mx::reshape(values, with_rows(static_cast<int>(k))), 0, d);
  auto group = fx::sub(mx::cumsum(mx::astype(new_, mx::int64)), 1);
  auto inverse = mx::zeros({n}, mx::int64);
  inverse = mx::scatter(inverse, order, fx::index_updates(inverse, order, group), 0);
  if (!dim) inverse = mx::reshape(inverse, x.shape());
  auto counts = mx::subtract(
      mx::concatenate({fx::slice(starts, 0, 1, std::nullopt, 1), mx::array({static_cast<int64_t>(n)}, mx::int64)}),
      starts);
  if (dim) return {values, inverse, counts};  // with a dim, PyTorch always returns the inverse and the counts
  auto none = mx::zeros({0}, mx::int64);    // PyTorch returns empty tensors for what was not asked
  return {values, return_inverse ? inverse : none, return_counts ? counts : none};
}

// torch.searchsorted (1-D or batched boundaries, optional sorter); NaN sorts last.
template <class V>
mx::array searchsorted(const mx::array& sorted_sequence, const V& values, bool right = false,
                       const std::optional<std::string>& side = std::nullopt, const OptArray& sorter = std::nullopt,
                       bool out_int32 = false) {
  if (side) right = *side == "right";
  auto seq = sorter ? mx::take_along_axis(sorted_sequence, *sorter, -1) : sorted_sequence;
  mx::array v = [&] {
    if constexpr (Number<V>) return mx::array(values, seq.dtype());
    else return values;
  }();
  mx::array s = seq;
  if (rank(seq) == 1) {
    mx::Shape shape(rank(v), 1);
    shape.push_back(seq.shape(0));
    s = mx::reshape(seq, shape);
  } else {
    s = mx::expand_dims(seq, -2);
  }
  auto vv = mx::expand_dims(v, -1);
  auto hit = right ? mx::greater_equal(vv, s) : mx::greater(vv, s);
  if (mx::issubdtype(seq.dtype(), mx::inexact))  // NaN values go after every number
    hit = mx::logical_or(hit, mx::logical_and(mx::isnan(vv), mx::logical_not(mx::isnan(s))));
  return mx::astype(mx::sum(hit, -1), out_int32 ? mx::int32 : mx::int64);
}

// torch.isin: whether each element appears in test_elements.
template <class E, class T>
mx::array isin(const E& elements, const T& test_elements, bool invert = false) {
  auto e = fx::py_array(elements);
  auto t = mx::reshape(fx::py_array(test_elements), {-1});
  auto hit = t.size() == 0 ? mx::zeros(e.shape(), mx::bool_) : mx::any(mx::equal(mx::expand_dims(e, -1), t), -1);
  return invert ? mx::logical_not(hit) : hit;
}

// torch.linspace's float arithmetic between 0-d float32 a and b: from the start for the first half, from the
// end after.
inline mx::array hist_linspace(const mx::array& a, const mx::array& b, int64_t n) {
  auto i = mx::arange(static_cast<double>(n), mx::float32);
  auto step = fx::div(mx::subtract(b, a), std::max<int64_t>(n - 1, 1));
  return mx::where(fx::lt(i, n / 2), mx::add(a, mx::multiply(step, i)),
                   mx::subtract(b, mx::multiply(step, fx::sub(n - 1, i))));
}

// PyTorch's bin of x among `bins` edges-delimited bins: the linear position, then (local_search)
// std::upper_bound over edges[max(pos - 1, 0) : min(pos + 2, bins + 1)].
inline mx::array linear_bin(const mx::array& x, const mx::array& edges, int64_t bins, bool local_search = true) {
  auto lo = fx::select(edges, 0, 0), hi = fx::select(edges, 0, -1);
  auto pos = mx::astype(mx::divide(fx::mul(mx::subtract(x, lo), bins), mx::subtract(hi, lo)), mx::int32);
  if (!local_search) return pos;
  auto start = fx::maximum(fx::sub(pos, 1), 0);
  auto stop = fx::minimum(fx::add(pos, 2), bins + 1);
  auto cand = mx::add(mx::expand_dims(start, -1), mx::arange(3));
  auto ok = mx::logical_and(mx::less(cand, mx::expand_dims(stop, -1)),
                            mx::less_equal(mx::take(edges, fx::clip(cand, 0, bins)), mx::expand_dims(x, -1)));
  return fx::sub(mx::add(start, mx::sum(ok, -1)), 1);
}

// Counts (or weight sums) of x in [edges[i], edges[i+1]) (the last bin closed): PyTorch's linear position,
// corrected against the edges (histogram) or not (histc).
inline mx::array hist_bin_counts(const mx::array& x0, const mx::array& edges, int64_t bins,
                                 const OptArray& weight = std::nullopt, bool local_search = true) {
  auto x = mx::reshape(x0, {-1});
  auto lo = fx::select(edges, 0, 0), hi = fx::select(edges, 0, -1);
  auto pos = fx::linear_bin(x, edges, bins, local_search);
  pos = fx::where(fx::eq(pos, bins), bins - 1, pos);
  auto inside = mx::logical_and(mx::greater_equal(x, lo), mx::less_equal(x, hi));
  pos = fx::clip(pos, 0, bins - 1);
  auto w = weight ? mx::astype(mx::reshape(*weight, {-1}), mx::float32) : mx::ones(x.shape(), mx::float32);
  return fx::at_add(mx::zeros({static_cast<int>(bins)}, mx::float32), pos, fx::where(inside, w, 0.0));
}

// The histogram's range: (lo, hi) if given, else the data's; widened by `widen` when empty.
inline std::pair<mx::array, mx::array> hist_outer_edges(const mx::array& x, std::optional<double> lo,
                                                         std::optional<double> hi, double widen) {
  mx::array a = x, b = x;
  if (!lo) {
    a = x.size() ? mx::min(x) : fx::py_array(0.0);
    b = x.size() ? mx::max(x) : fx::py_array(widen == 0.5 ? 1.0 : 0.0);
  } else {
    a = fx::py_array(*lo);
    b = fx::py_array(*hi);
  }
  a = mx::astype(a, mx::float32);
  b = mx::astype(b, mx::float32);
  auto same = mx::equal(a, b);
  return {mx::where(same, fx::sub(a, widen), a), mx::where(same, fx::add(b, widen), b)};
}

// torch.histc: equal-width bins over [min, max] (the data's range when min == max == 0).
inline mx::array histc(const mx::array& x, int64_t bins = 100, double lo = 0, double hi = 0) {
  auto xf = mx::astype(x, mx::float32);
  const bool data_range = lo == 0 && hi == 0;
  auto [a, b] = fx::hist_outer_edges(xf, data_range ? std::nullopt : std::optional(lo), hi, 1.0);
  auto edges = fx::hist_linspace(a, b, bins + 1);
  return mx::astype(fx::hist_bin_counts(xf, edges, bins, std::nullopt, false), x.dtype());
}

// torch.histogram with a bin count or with bin edges -> {hist, bin_edges}.
template <class B>
Tuple histogram(const mx::array& x, const B& bins, const std::optional<std::vector<double>>& range = std::nullopt,
                const OptArray& weight = std::nullopt, bool density = false) {
  auto xf = mx::astype(x, mx::float32);
  mx::array edges = xf, hist = xf;
  if constexpr (std::is_same_v<B, mx::array>) {
    edges = mx::astype(bins, mx::float32);
    const int nb = edges.shape(0) - 1;
    auto flat = mx::reshape(xf, {-1});
    auto pos = fx::sub(mx::sum(mx::greater_equal(mx::expand_dims(flat, -1), mx::expand_dims(edges, 0)), -1), 1);
    pos = fx::where(fx::eq(pos, nb), nb - 1, pos);
    auto inside = mx::logical_and(mx::greater_equal(flat, fx::select(edges, 0, 0)),
                                  mx::less_equal(flat, fx::select(edges, 0, -1)));
    auto w = weight ? mx::astype(mx::reshape(*weight, {-1}), mx::float32) : mx::ones(flat.shape(), mx::float32);
    hist = fx::at_add(mx::zeros({nb}, mx::float32), fx::clip(pos, 0, nb - 1), fx::where(inside, w, 0.0));
  } else {
    const int64_t nb = bins;
    auto [a, b] = fx::hist_outer_edges(xf, range ? std::optional((*range)[0]) : std::nullopt,
                                       range ? std::optional((*range)[1]) : std::nullopt, 0.5);
    edges = fx::hist_linspace(a, b, nb + 1);
    hist = fx::hist_bin_counts(xf, edges, nb, weight);
  }
  if (density)
    hist = mx::divide(hist, mx::multiply(mx::sum(hist), mx::subtract(fx::slice(edges, 0, 1, std::nullopt, 1),
                                                                      fx::slice(edges, 0, std::nullopt, -1, 1))));
  return {mx::astype(hist, x.dtype()), mx::astype(edges, x.dtype())};
}

// std::upper_bound(seq, seq + n, v) - seq for each value of v (libstdc++'s bisection, so the result for
// unsorted seq is PyTorch's too).
inline mx::array upper_bound_positions(const mx::array& seq, const mx::array& v) {
  const int n = seq.shape(0);
  auto first = mx::zeros(v.shape(), mx::int32);
  auto count = mx::full(v.shape(), n, mx::int32);
  for (int m = n; m > 0; m >>= 1) {  // n.bit_length() steps
    auto half = fx::floor_divide(count, 2);
    auto mid = mx::add(first, half);
    auto below = mx::less(v, mx::take(seq, fx::minimum(mid, n - 1)));
    auto active = fx::gt(count, 0);
    first = mx::where(mx::logical_and(active, mx::logical_not(below)), fx::add(mid, 1), first);
    count = mx::where(active, mx::where(below, half, fx::sub(mx::subtract(count, half), 1)), count);
  }
  return first;
}

// torch.histogramdd's bin edges: bins[d] + 1 equal-width edges per innermost coordinate d, over range
// (lo0, hi0, lo1, hi1, ...) or the data's range (widened by 0.5 when empty; [0, 1] for no data).
inline Tuple histogramdd_bin_edges(const mx::array& x, const std::vector<int64_t>& bins,
                                   const std::optional<std::vector<double>>& range = std::nullopt) {
  const int d = x.shape(-1);
  auto pts = mx::astype(mx::reshape(x, {-1, d}), mx::float32);
  Tuple edges;
  for (int i = 0; i < d; i++) {
    mx::array a = pts, b = pts;
    if (range) {
      a = fx::py_array((*range)[2 * i]);
      b = fx::py_array((*range)[2 * i + 1]);
    } else if (pts.shape(0) == 0) {
      a = fx::py_array(0.0);
      b = fx::py_array(1.0);
    } else {
      a = mx::min(fx::select(pts, 1, i));
      b = mx::max(fx::select(pts, 1, i));
    }
    auto same = mx::equal(a, b);
    auto a2 = mx::where(same, fx::sub(a, 0.5), a), b2 = mx::where(same, fx::add(b, 0.5), b);
    edges.push_back(mx::astype(fx::hist_linspace(a2, b2, bins[i] + 1), x.dtype()));
  }
  return edges;
}

// torch.histogramdd's histogram from its edges (by_count: equal-width edges, PyTorch's linear position +
// local search; else PyTorch's binary search). Points outside the edges (or NaN) are not counted.
inline mx::array histogramdd_from_edges(const mx::array& x, Tuple edges, bool by_count, const OptArray& weight,
                                        bool density) {
  const int d = x.shape(-1);
  auto pts = mx::reshape(x, {-1, d});
  std::vector<int> sizes;
  for (auto& e : edges) {
    e = mx::astype(e, x.dtype());
    sizes.push_back(e.shape(0) - 1);
  }
  auto flat = mx::zeros({pts.shape(0)}, mx::int32);
  auto inside = mx::ones({pts.shape(0)}, mx::bool_);
  for (int i = 0; i < d; i++) {
    const auto& e = edges[i];
    auto v = fx::select(pts, 1, i);
    const int nb = sizes[i];
    auto lo = fx::select(e, 0, 0), hi = fx::select(e, 0, -1);
    inside = mx::logical_and(mx::logical_and(inside, mx::greater_equal(v, lo)), mx::less_equal(v, hi));
    auto pos = by_count ? fx::linear_bin(v, e, nb) : fx::sub(fx::upper_bound_positions(e, v), 1);
    pos = fx::clip(fx::where(fx::eq(pos, nb), nb - 1, pos), 0, std::max(nb - 1, 0));
    flat = mx::add(fx::mul(flat, nb), pos);
  }
  int total = 1;
  for (int nb : sizes) total *= nb;
  auto w = weight ? mx::astype(mx::reshape(*weight, {-1}), mx::float32) : mx::ones({pts.shape(0)}, mx::float32);
  auto hist = mx::zeros({total}, mx::float32);
  if (pts.shape(0)) hist = fx::at_add(hist, flat, fx::where(inside, w, 0.0));
  hist = mx::reshape(mx::astype(hist, x.dtype()), mx::Shape(sizes.begin(), sizes.end()));
  if (density) {
    hist = mx::divide(hist, mx::sum(hist));
    for (int i = 0; i < d; i++) {
      mx::Shape shape(d, 1);
      shape[i] = sizes[i];
      auto widths = mx::subtract(fx::slice(edges[i], 0, 1, std::nullopt, 1), fx::slice(edges[i], 0, std::nullopt, -1, 1));
      hist = mx::divide(hist, mx::reshape(widths, shape));
    }
  }
  return hist;
}
// _histogramdd_from_bin_cts: bin counts.
inline mx::array histogramdd(const mx::array& x, const std::vector<int64_t>& bins,
                             const std::optional<std::vector<double>>& range = std::nullopt,
                             const OptArray& weight = std::nullopt, bool density = false) {
  return fx::histogramdd_from_edges(x, fx::histogramdd_bin_edges(x, bins, range), true, weight, density);
}
// _histogramdd_from_bin_tensors: edge tensors.
inline mx::array histogramdd(const mx::array& x, const Tuple& bins, std::nullopt_t, const OptArray& weight = std::nullopt,
                             bool density = false) {
  return fx::histogramdd_from_edges(x, bins, false, weight, density);
}

// torch.bincount: evaluates max(x) for the output length.
inline mx::array bincount(const mx::array& x, const OptArray& weights = std::nullopt, int64_t minlength = 0) {
  const int64_t n = std::max<int64_t>(x.size() ? fx::item_int(mx::max(x)) + 1 : 0, minlength);
  auto w = weights ? *weights : mx::ones(x.shape(), mx::int64);
  return fx::at_add(mx::zeros({static_cast<int>(n)}, w.dtype()), x, w);
}

// torch.segment_reduce along axis: sum, mean, max, min, prod. lengths (..., S) or offsets (..., S + 1) may be
// batched: their leading dims are data.shape[:axis] (one segmentation per row). `initial`: a number or
// std::nullopt.
template <class Init = std::nullopt_t>
mx::array segment_reduce(const mx::array& data, const std::string& reduce, const OptArray& lengths_,
                         const OptArray& offsets, int64_t axis_ = 0, Init initial = std::nullopt) {
  constexpr bool has_initial = Number<Init>;
  const int ax = axis(axis_, rank(data)) % rank(data);
  mx::array starts = data, ends = data, lengths = data;
  if (!lengths_) {
    starts = fx::slice(*offsets, -1, std::nullopt, -1, 1);
    ends = fx::slice(*offsets, -1, 1, std::nullopt, 1);
    lengths = mx::subtract(ends, starts);
  } else {
    lengths = *lengths_;
    ends = mx::cumsum(lengths, -1);
    starts = mx::subtract(ends, lengths);
  }
  const mx::Shape lead(data.shape().begin(), data.shape().begin() + ax);
  if (rank(lengths) == 1 && !lead.empty()) {  // one segmentation shared by every row
    mx::Shape full = lead;
    full.push_back(lengths.shape(0));
    starts = mx::broadcast_to(starts, full);
    ends = mx::broadcast_to(ends, full);
    lengths = mx::broadcast_to(lengths, full);
  }
  auto with_rest = [&](mx::Shape s) {  // s + (1,) * (data.ndim - axis - 1)
    s.insert(s.end(), rank(data) - ax - 1, 1);
    return s;
  };
  auto pos = mx::arange(data.shape(ax));
  auto member = mx::logical_and(mx::greater_equal(pos, mx::expand_dims(starts, -1)),
                                mx::less(pos, mx::expand_dims(ends, -1)));  // lead + (S, n)
  auto m = mx::reshape(member, with_rest(member.shape()));
  auto x = mx::expand_dims(data, ax);  // lead + (1, n) + rest
  const int red = ax + 1;
  auto empty = mx::reshape(fx::eq(lengths, 0), with_rest(lengths.shape()));
  auto mean_of = [&](const mx::array& total) {
    return mx::divide(total, mx::reshape(mx::astype(fx::maximum(lengths, 1), total.dtype()), with_rest(lengths.shape())));
  };
  // PyTorch accumulates sum/mean/prod in the data's dtype, element by element: for half types (short axes)
  // that rounding is reproduced by a sequential loop; otherwise the reduction is vectorised.
  const bool sequential = (data.dtype() == mx::float16 || data.dtype() == mx::bfloat16) && data.shape(ax) <= 256;
  mx::array out = data, fill = data;  // fill: the value of an empty segment without `initial`
  if (sequential && (reduce == "sum" || reduce == "mean" || reduce == "prod")) {
    const int unit = reduce == "prod" ? 1 : 0;
    mx::Shape acc_shape = lengths.shape();
    acc_shape.insert(acc_shape.end(), data.shape().begin() + ax + 1, data.shape().end());
    mx::array acc = [&] {
      if constexpr (has_initial) return mx::full(acc_shape, initial, data.dtype());
      else return mx::full(acc_shape, unit, data.dtype());
    }();
    const mx::Shape idx_shape = with_rest(lengths.shape());
    for (int k = 0; k < data.shape(ax); k++) {
      auto idx = mx::reshape(fx::clip(fx::add(starts, k), 0, data.shape(ax) - 1), idx_shape);
      auto v = mx::take_along_axis(data, idx, ax);
      auto step = reduce == "prod" ? mx::multiply(acc, v) : mx::add(acc, v);
      acc = mx::where(mx::reshape(fx::lt(k, lengths), idx_shape), mx::astype(step, data.dtype()), acc);
    }
    out = acc;
    if (reduce == "mean") out = mean_of(out);
    fill = reduce == "mean" ? fx::scalar(NAN, out) : fx::scalar(unit, out);
  } else if (reduce == "sum" || reduce == "mean") {
    out = mx::sum(fx::where(m, x, 0), red);
    if constexpr (has_initial) out = fx::add(out, initial);  // the reduction starts from `initial` (also the mean)
    if (reduce == "mean") {
      out = mean_of(out);
      fill = fx::scalar(NAN, out);
    } else {
      fill = fx::scalar(0, out);
    }
  } else if (reduce == "prod") {
    out = mx::prod(fx::where(m, x, 1), red);
    if constexpr (has_initial) out = fx::mul(out, initial);
    fill = fx::scalar(1, out);
  } else if (reduce == "max") {
    out = mx::max(fx::where(m, x, -INFINITY), red);
    if constexpr (has_initial) out = fx::maximum(out, initial);
    fill = fx::scalar(-INFINITY, out);
  } else {
    out = mx::min(fx::where(m, x, INFINITY), red);
    if constexpr (has_initial) out = fx::minimum(out, initial);
    fill = fx::scalar(INFINITY, out);
  }
  if constexpr (has_initial) fill = fx::scalar(initial, out);
  return mx::astype(mx::where(empty, fill, out), data.dtype());
}

// torch.nonzero_static: the first `size` coordinates of non-zeros, padded with fill_value.
inline mx::array nonzero_static(const mx::array& x, int64_t size, int64_t fill_value = -1) {
  auto flat = fx::ne(mx::reshape(x, {-1}), 0);
  const int64_t n = flat.size();
  auto idx = mx::arange(static_cast<double>(n), mx::int64);
  auto key = mx::sort(mx::where(flat, idx, fx::add(idx, n)));
  if (size > n) key = mx::concatenate({key, mx::full({static_cast<int>(size - n)}, 2 * n, mx::int64)});
  key = fx::slice(key, 0, 0, size, 1);
  auto valid = fx::lt(key, n);
  auto sel = fx::where(valid, key, 0);
  Tuple coords;
  for (int i = rank(x) - 1; i >= 0; i--) {
    coords.insert(coords.begin(), fx::remainder(sel, x.shape(i)));
    sel = fx::floor_divide(sel, x.shape(i));
  }
  if (coords.empty()) return mx::zeros({static_cast<int>(size), 0}, mx::int64);
  auto out = mx::stack(coords, 1);
  return mx::astype(fx::where(mx::expand_dims(valid, 1), out, fill_value), mx::int64);
}

}  // namespace fx
