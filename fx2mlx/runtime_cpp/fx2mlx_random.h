// fx2mlx C++ runtime: random number generators (fx2mlx/runtime/random_ops.py).
// Included at the end of fx2mlx_runtime.h (uses its helpers: fx::scalar, fx::where, ...).
// MLX's global generator, as MLX Python's: every draw takes the next key of the global key sequence, so a
// program seeded like the Python model (mx::random::seed / mx.random.seed) draws the same numbers.
#pragma once

#include "fx2mlx_runtime.h"

namespace fx {

// A Python number as MLX Python makes an array of it: bool, int32 (int64 beyond int32's range), float32.
template <Number T>
mx::array py_array(T v) {
  if constexpr (std::is_same_v<T, bool>) {
    return mx::array(v);
  } else if constexpr (std::is_integral_v<T>) {
    const auto i = static_cast<int64_t>(v);
    return i == static_cast<int32_t>(i) ? mx::array(static_cast<int32_t>(i)) : mx::array(i, mx::int64);
  } else {
    return mx::array(static_cast<float>(v));
  }
}
inline mx::array py_array(const mx::array& a) { return a; }

// aten.native_dropout -> {out, mask}. Outside training (or p == 0) the input passes through.
inline Tuple dropout(const mx::array& x, double p, std::optional<bool> train) {
  if ((train && !*train) || p == 0) return {x, mx::ones(x.shape(), mx::bool_)};
  if (p >= 1) return {mx::zeros_like(x), mx::zeros(x.shape(), mx::bool_)};
  auto mask = mx::random::bernoulli(fx::py_array(1.0 - p), x.shape());
  return {fx::mul(mx::multiply(x, mask), 1.0 / (1.0 - p)), mask};
}

// Samples shaped like x: uniform(a, b), normal(a, b), exponential(a), cauchy(a, b), log_normal(a, b),
// geometric(a), bernoulli(a).
inline mx::array random_like(const mx::array& x, const std::string& kind, double a = 0.0, double b = 1.0) {
  const mx::Shape& shape = x.shape();
  const mx::Dtype dt = mx::issubdtype(x.dtype(), mx::inexact) ? x.dtype() : mx::float32;
  auto unit = [&] { return mx::random::uniform(fx::py_array(0), fx::py_array(1), shape); };
  mx::array out = x;
  if (kind == "uniform") {
    out = mx::random::uniform(fx::py_array(a), fx::py_array(b), shape, dt);
  } else if (kind == "normal") {
    out = fx::add(fx::mul(mx::random::normal(shape, dt), b), a);
  } else if (kind == "exponential") {
    out = fx::div(mx::negative(mx::log1p(mx::negative(unit()))), a);
  } else if (kind == "cauchy") {
    out = fx::add(a, fx::mul(b, mx::tan(fx::mul(3.141592653589793, fx::sub(unit(), 0.5)))));
  } else if (kind == "log_normal") {
    out = mx::exp(fx::add(fx::mul(mx::random::normal(shape), b), a));
  } else if (kind == "geometric") {
    out = mx::ceil(mx::divide(mx::log1p(mx::negative(unit())), mx::log1p(fx::py_array(-a))));
  } else {  // bernoulli
    out = mx::random::bernoulli(fx::py_array(a), shape);
  }
  return mx::astype(out, x.dtype());
}

// Integers uniform in [low, high).
inline mx::array randint(int64_t low, int64_t high, const mx::Shape& shape, mx::Dtype dtype) {
  return mx::astype(mx::random::randint(fx::py_array(low), fx::py_array(high), shape), dtype);
}

// torch.multinomial: indices sampled from each row of probs (Gumbel top-k without replacement).
inline mx::array multinomial(const mx::array& probs, int64_t num_samples, bool replacement = false) {
  auto logits = mx::log(probs);
  if (replacement) return mx::astype(mx::random::categorical(logits, -1, static_cast<int>(num_samples)), mx::int64);
  auto g = mx::subtract(logits, mx::log(mx::negative(mx::log(mx::random::uniform(logits.shape())))));
  return mx::astype(fx::slice(mx::argsort(mx::negative(g), -1), -1, 0, num_samples, 1), mx::int64);
}

}  // namespace fx
