// fx2mlx C++ runtime: linear algebra and complex numbers (fx2mlx/runtime/linalg.py).
// Included at the end of fx2mlx_runtime.h (uses its helpers: fx::scalar, fx::where, ...).
// MLX's LAPACK-backed kernels (mx::linalg) run on the CPU stream only: they get fx::linalg_stream().
#pragma once

#include <complex>

#include "fx2mlx_runtime.h"

namespace fx {

inline mx::StreamOrDevice linalg_stream() { return mx::Device(mx::Device::cpu); }

// a.shape[:-drop] (the batch of a stack of matrices), and a shape with dims appended.
inline mx::Shape matrix_batch(const mx::array& a, int drop = 2) {
  return mx::Shape(a.shape().begin(), a.shape().end() - drop);
}
inline mx::Shape shape_plus(mx::Shape s, const mx::Shape& tail) {
  s.insert(s.end(), tail.begin(), tail.end());
  return s;
}
// The info output of the *_ex ops: zeros over the batch.
inline mx::array linalg_info(const mx::array& a) { return mx::zeros(fx::matrix_batch(a), mx::int32); }

// aten.linalg_cross: mx.linalg.cross on the broadcast operands.
inline mx::array cross(const mx::array& a, const mx::array& b, int64_t dim) {
  auto ab = mx::broadcast_arrays({a, b});
  return mx::linalg::cross(ab[0], ab[1], static_cast<int>(dim));
}

// aten._linalg_svd -> {U, S, Vh}.
inline Tuple svd(const mx::array& a, bool full_matrices = false, bool compute_uv = true) {
  const int m = a.shape(-2), n = a.shape(-1), k = std::min(m, n);
  const auto batch = fx::matrix_batch(a);
  if (a.size() == 0) {
    auto s = mx::zeros(fx::shape_plus(batch, {k}), a.dtype());
    if (!compute_uv) return {mx::zeros({0}, a.dtype()), s, mx::zeros({0}, a.dtype())};
    auto eye_m = mx::broadcast_to(mx::eye(m, a.dtype()), fx::shape_plus(batch, {m, m}));
    auto eye_n = mx::broadcast_to(mx::eye(n, a.dtype()), fx::shape_plus(batch, {n, n}));
    return {full_matrices ? eye_m : fx::slice(eye_m, -1, 0, k, 1), s, full_matrices ? eye_n : fx::slice(eye_n, -2, 0, k, 1)};
  }
  if (!compute_uv) {
    auto s = mx::linalg::svd(a, false, fx::linalg_stream())[0];
    auto empty = mx::zeros({0}, a.dtype());
    return {empty, s, empty};
  }
  auto usv = mx::linalg::svd(a, true, fx::linalg_stream());
  if (!full_matrices) return {fx::slice(usv[0], -1, 0, k, 1), usv[1], fx::slice(usv[2], -2, 0, k, 1)};
  return usv;
}

// aten.linalg_qr -> {Q, R}: reduced, complete or r.
inline Tuple qr(const mx::array& a, const std::string& mode = "reduced") {
  const int m = a.shape(-2), n = a.shape(-1);
  const auto batch = fx::matrix_batch(a);
  if (mode == "complete" && m > n) {  // Q is (m, m): complete the basis with the Q of [A | I]
    auto eye = mx::broadcast_to(mx::eye(m, a.dtype()), fx::shape_plus(batch, {m, m}));
    auto q = mx::linalg::qr(mx::concatenate({a, fx::slice(eye, -1, 0, m - n, 1)}, -1), fx::linalg_stream()).first;
    auto r = mx::linalg::qr(a, fx::linalg_stream()).second;
    r = mx::concatenate({r, mx::zeros(fx::shape_plus(batch, {m - n, n}), a.dtype())}, -2);
    return {q, r};
  }
  if (a.size() == 0) {
    const int k = std::min(m, n), qm = mode == "complete" ? m : k;
    auto q = mx::broadcast_to(mx::eye(m, qm, 0, a.dtype()), fx::shape_plus(batch, {m, qm}));
    auto r = mx::zeros(fx::shape_plus(batch, {mode == "complete" ? qm : k, n}), a.dtype());
    return {mode == "r" ? mx::zeros({0}, a.dtype()) : q, r};
  }
  auto [q, r] = mx::linalg::qr(a, fx::linalg_stream());
  if (mode == "r") return {mx::zeros({0}, a.dtype()), r};
  return {q, r};
}

// A with ones on the diagonal.
inline mx::array unit_diag(const mx::array& a) {
  auto eye = mx::eye(a.shape(-1), mx::bool_);
  return mx::where(eye, mx::ones({}, a.dtype()), a);
}

// Zeros of the shape of a triangular solve's result (empty operands).
inline mx::array solve_zeros(const mx::array& a, const mx::array& b) {
  auto batch = mx::broadcast_shapes(fx::matrix_batch(a), fx::matrix_batch(b));
  return mx::zeros(fx::shape_plus(batch, {b.shape(-2), b.shape(-1)}), b.dtype());
}

// aten.linalg_solve_triangular: A X = B (left) or X A = B.
inline mx::array solve_triangular(mx::array a, const mx::array& b, bool upper, bool left = true,
                                  bool unitriangular = false) {
  if (unitriangular) a = fx::unit_diag(a);
  a = upper ? mx::triu(a) : mx::tril(a);
  if (a.size() == 0 || b.size() == 0) return fx::solve_zeros(a, b);
  if (left) return mx::linalg::solve_triangular(a, b, upper, fx::linalg_stream());
  auto xt = mx::linalg::solve_triangular(mx::swapaxes(a, -1, -2), mx::swapaxes(b, -1, -2), !upper, fx::linalg_stream());
  return mx::swapaxes(xt, -1, -2);
}

// aten.triangular_solve -> {solution, A}.
inline Tuple triangular_solve(const mx::array& b, const mx::array& a, bool upper = true, bool transpose = false,
                              bool unitriangular = false) {
  auto t = upper ? mx::triu(a) : mx::tril(a);
  if (unitriangular) t = fx::unit_diag(t);
  if (t.size() == 0 || b.size() == 0) return {fx::solve_zeros(a, b), a};
  if (transpose) {
    t = mx::swapaxes(t, -1, -2);
    upper = !upper;
  }
  return {mx::linalg::solve_triangular(t, b, upper, fx::linalg_stream()), a};
}

// aten.linalg_lu_factor_ex -> {LU, 1-based int32 pivots, info}.
inline Tuple lu_factor(const mx::array& a) {
  if (a.size() == 0) {
    const int k = std::min(a.shape(-2), a.shape(-1));
    return {a, mx::zeros(fx::shape_plus(fx::matrix_batch(a), {k}), mx::int32), fx::linalg_info(a)};
  }
  auto [lu, piv] = mx::linalg::lu_factor(a, fx::linalg_stream());
  return {lu, fx::add(mx::astype(piv, mx::int32), 1), fx::linalg_info(a)};
}

// LAPACK pivots (1-based row swaps, applied in order) -> the row permutation, lazily.
inline mx::array perm_from_pivots(const mx::array& piv, int n) {
  auto pos = mx::arange(static_cast<double>(n), mx::int32);
  auto perm = mx::broadcast_to(pos, fx::shape_plus(fx::matrix_batch(piv, 1), {n}));
  for (int i = 0; i < piv.shape(-1); i++) {
    auto p = mx::expand_dims(fx::sub(mx::astype(fx::select(piv, -1, i), mx::int32), 1), -1);
    auto vi = fx::slice(perm, -1, i, i + 1, 1);
    auto vp = mx::take_along_axis(perm, p, -1);
    perm = mx::where(fx::eq(pos, i), vp, mx::where(mx::equal(pos, p), vi, perm));
  }
  return perm;
}

// aten.lu_unpack -> {P, L, U} with A = P L U.
// A part not asked for is empty, as in PyTorch.
inline Tuple lu_unpack(const mx::array& lu, const mx::array& piv, bool unpack_data = true, bool unpack_pivots = true) {
  const int m = lu.shape(-2), n = lu.shape(-1), k = std::min(m, n);
  auto empty = mx::zeros({0}, lu.dtype());
  auto lower = unpack_data ? mx::add(fx::slice(mx::tril(lu, -1), -1, 0, k, 1), mx::eye(m, k, 0, lu.dtype())) : empty;
  auto upper = unpack_data ? fx::slice(mx::triu(lu), -2, 0, k, 1) : empty;
  if (!unpack_pivots) return {empty, lower, upper};
  auto perm = fx::perm_from_pivots(piv, m);  // row i of P^T A is row perm[i] of A
  auto pt = mx::astype(mx::equal(mx::expand_dims(perm, -1), mx::arange(m)), lu.dtype());  // row i of P^T is e_perm[i]
  return {mx::swapaxes(pt, -1, -2), lower, upper};
}

// aten.linalg_lu -> {P, L, U}.
inline Tuple lu(const mx::array& a) {
  auto f = fx::lu_factor(a);
  return fx::lu_unpack(f[0], f[1]);
}

// aten.linalg_lu_solve.
inline mx::array lu_solve(const mx::array& lu_data, const mx::array& piv, const mx::array& b, bool left = true,
                          bool adjoint = false) {
  if (lu_data.size() == 0 || b.size() == 0) return fx::solve_zeros(lu_data, b);
  auto plu = fx::lu_unpack(lu_data, piv);
  const auto &p = plu[0], &lower = plu[1], &upper = plu[2];
  if (left && !adjoint) {  // A X = B, A = P L U
    auto y = mx::linalg::solve_triangular(lower, mx::matmul(mx::swapaxes(p, -1, -2), b), false, fx::linalg_stream());
    return mx::linalg::solve_triangular(upper, y, true, fx::linalg_stream());
  }
  auto a = mx::matmul(mx::matmul(p, lower), upper);
  if (adjoint) a = mx::swapaxes(a, -1, -2);
  if (left) return mx::linalg::solve(a, b, fx::linalg_stream());
  return mx::swapaxes(mx::linalg::solve(mx::swapaxes(a, -1, -2), mx::swapaxes(b, -1, -2), fx::linalg_stream()), -1, -2);
}

// aten._linalg_solve_ex -> {X, LU, pivots, info}; B is a vector when it has one dim less than A.
inline Tuple solve(mx::array a, mx::array b, bool left = true) {
  // PyTorch's rule (linalg_solve_is_vector_rhs): B is a vector when it is 1-D, or has one dim less than A and
  // A's shape without its last dim
  mx::Shape a_rows(a.shape().begin(), a.shape().end() - 1);
  const bool vector = b.ndim() == 1 || (b.ndim() == a.ndim() - 1 && b.shape() == a_rows);
  if (a.size() == 0 || b.size() == 0) {
    auto f = fx::lu_factor(a);
    auto shape = mx::broadcast_shapes(fx::matrix_batch(a), fx::matrix_batch(b, vector ? 1 : 2));
    shape = fx::shape_plus(shape, vector ? mx::Shape{a.shape(-1)}
                                  : left ? mx::Shape{a.shape(-1), b.shape(-1)} : mx::Shape{b.shape(-2), a.shape(-1)});
    return {mx::zeros(shape, a.dtype()), f[0], f[1], f[2]};
  }
  if (!left) {  // X A = B  <=>  A^T X^T = B^T (PyTorch refuses a vector B here)
    a = mx::swapaxes(a, -1, -2);
    b = mx::swapaxes(b, -1, -2);
  }
  auto bb = vector ? mx::expand_dims(b, -1) : b;
  auto batch = mx::broadcast_shapes(fx::matrix_batch(a), fx::matrix_batch(bb));  // MLX's solve does not broadcast
  auto x = mx::linalg::solve(mx::broadcast_to(a, fx::shape_plus(batch, {a.shape(-2), a.shape(-1)})),
                             mx::broadcast_to(bb, fx::shape_plus(batch, {bb.shape(-2), bb.shape(-1)})),
                             fx::linalg_stream());
  if (vector) x = fx::select(x, -1, 0);
  else if (!left) x = mx::swapaxes(x, -1, -2);
  auto f = fx::lu_factor(a);
  return {x, f[0], f[1], f[2]};
}

// The determinant from the LU factorization (sign flipped per row swap).
inline mx::array det_from_lu(const mx::array& f, const mx::array& piv) {
  const int n = f.shape(-1);
  auto d = mx::prod(mx::diagonal(f, 0, -2, -1), -1);
  auto swaps = mx::sum(mx::not_equal(piv, mx::arange(1.0, n + 1.0, piv.dtype())), -1);
  return mx::where(fx::eq(fx::remainder(swaps, 2), 1), mx::negative(d), d);
}

// aten._linalg_det -> {det, LU, pivots}.
inline Tuple det(const mx::array& a) {
  auto f = fx::lu_factor(a);
  if (a.size() == 0) return {mx::ones(fx::matrix_batch(a), a.dtype()), f[0], f[1]};
  return {mx::linalg::det(a, fx::linalg_stream()), f[0], f[1]};
}

// aten._linalg_slogdet -> {sign, logabsdet, LU, pivots}.
inline Tuple slogdet(const mx::array& a) {
  auto fp = fx::lu_factor(a);
  const auto &f = fp[0], &piv = fp[1];
  if (a.size() == 0) return {mx::ones(fx::matrix_batch(a), a.dtype()), mx::zeros(fx::matrix_batch(a), a.dtype()), f, piv};
  auto d = fx::det_from_lu(f, piv);
  const int n = f.shape(-1);
  auto diag = mx::diagonal(f, 0, -2, -1);
  auto logabs = mx::sum(mx::log(mx::abs(diag)), -1);
  auto neg = mx::add(mx::sum(fx::lt(diag, 0), -1), mx::sum(mx::not_equal(piv, mx::arange(1.0, n + 1.0, piv.dtype())), -1));
  auto sign = fx::where(fx::eq(d, 0), 0.0, mx::where(fx::eq(fx::remainder(neg, 2), 1), mx::array(-1.0f), mx::array(1.0f)));
  return {mx::astype(sign, a.dtype()), logabs, f, piv};
}

// aten.linalg_inv_ex -> {inverse, info}.
inline Tuple inv(const mx::array& a) {
  if (a.size() == 0) return {a, fx::linalg_info(a)};
  return {mx::linalg::inv(a, fx::linalg_stream()), fx::linalg_info(a)};
}

// aten.linalg_cholesky_ex / cholesky (lower L with A = L L^H, or upper).
inline mx::array cholesky(const mx::array& a, bool upper = false) {
  if (a.size() == 0) return a;
  return mx::linalg::cholesky(a, upper, fx::linalg_stream());
}

// aten.cholesky_solve: solve A X = B with A = L L^T (or U^T U).
inline mx::array cholesky_solve(const mx::array& b, const mx::array& factor, bool upper = false) {
  if (b.size() == 0 || factor.size() == 0) return fx::solve_zeros(factor, b);
  auto lower = upper ? mx::swapaxes(factor, -1, -2) : factor;
  auto y = mx::linalg::solve_triangular(lower, b, false, fx::linalg_stream());
  return mx::linalg::solve_triangular(mx::swapaxes(lower, -1, -2), y, true, fx::linalg_stream());
}

// aten.cholesky_inverse: the inverse of A from its Cholesky factor.
inline mx::array cholesky_inverse(const mx::array& factor, bool upper = false) {
  if (factor.size() == 0) return factor;
  return mx::linalg::cholesky_inv(factor, upper, fx::linalg_stream());
}

// aten._linalg_eigh -> {eigenvalues ascending, eigenvectors}.
inline Tuple eigh(const mx::array& a, const std::string& uplo = "L", bool compute_v = true) {
  if (a.size() == 0) return {mx::zeros(fx::matrix_batch(a, 1), a.dtype()), compute_v ? a : mx::zeros({0}, a.dtype())};
  auto [w, v] = mx::linalg::eigh(a, uplo, fx::linalg_stream());
  if (!compute_v) return {w, mx::zeros({0}, a.dtype())};
  return {w, v};
}

// linalg_pinv's cut-off per matrix: max(atol, rtol * top), rtol = default_rtol when neither is given
// (atol, rtol: tensors over the batch).
inline mx::array pinv_tol(const mx::array& top, const OptArray& atol, const OptArray& rtol, double default_rtol) {
  auto tol = mx::zeros_like(top);
  if (atol) tol = mx::maximum(tol, mx::expand_dims(*atol, -1));
  if (rtol) tol = mx::maximum(tol, mx::multiply(mx::expand_dims(*rtol, -1), top));
  else if (!atol) tol = mx::maximum(tol, fx::mul(default_rtol, top));
  return tol;
}

// aten.linalg_pinv.atol_rtol_tensor: V diag(1/s) U^H over singular values above the tolerance.
inline mx::array pinv(const mx::array& a, const OptArray& atol = std::nullopt, const OptArray& rtol = std::nullopt,
                      bool hermitian = false) {
  const int m = a.shape(-2), n = a.shape(-1);
  if (m == 0 || n == 0) return mx::zeros(fx::shape_plus(fx::matrix_batch(a), {n, m}), a.dtype());
  const double eps = 1.1920928955078125e-07;
  if (hermitian) {  // PyTorch reads the lower triangle and uses the eigendecomposition
    auto [w, v] = mx::linalg::eigh(a, "L", fx::linalg_stream());
    auto wmax = mx::max(mx::abs(w), -1, true);
    auto tol = fx::pinv_tol(wmax, atol, rtol, n * eps);
    auto keep = mx::greater(mx::abs(w), tol);
    auto winv = fx::where(keep, fx::div(1.0, fx::where(keep, w, 1.0)), 0.0);
    return mx::matmul(mx::multiply(v, mx::expand_dims(winv, -2)), mx::swapaxes(v, -1, -2));
  }
  auto usv = mx::linalg::svd(a, true, fx::linalg_stream());
  const int k = std::min(m, n);
  auto u = fx::slice(usv[0], -1, 0, k, 1), s = usv[1], vt = fx::slice(usv[2], -2, 0, k, 1);
  auto smax = mx::max(s, -1, true);
  auto tol = fx::pinv_tol(smax, atol, rtol, std::max(m, n) * eps);
  auto keep = mx::greater(s, tol);
  auto sinv = fx::where(keep, fx::div(1.0, fx::where(keep, s, 1.0)), 0.0);
  return mx::matmul(mx::swapaxes(vt, -1, -2), mx::multiply(mx::expand_dims(sinv, -1), mx::swapaxes(u, -1, -2)));
}

// aten.linalg_matrix_exp: scaling and squaring (each matrix scaled by its own power of two) with a
// degree-18 Taylor polynomial. The number of squarings is the largest s, which needs the data; while
// mx::compile traces the graph (nothing can be evaluated, and the graph is reused for other values) it is
// the most any finite norm of the dtype needs: the extra squarings are masked off, the values are the same.
inline mx::array matrix_exp(const mx::array& a) {
  if (a.size() == 0) return a;
  auto norm = mx::max(mx::sum(mx::abs(a), -2), -1);
  auto s = fx::maximum(fx::add(mx::ceil(mx::log2(fx::maximum(norm, 1e-30))), 1), 0);  // per matrix
  const int steps = a.is_tracer() ? static_cast<int>(std::ceil(std::log2(mx::finfo(a.dtype()).max))) + 1
                                  : static_cast<int>(mx::astype(mx::max(s), mx::float32).item<float>());
  auto x = mx::divide(a, mx::expand_dims(fx::pow(2.0, s), {-1, -2}));
  auto eye = mx::broadcast_to(mx::eye(a.shape(-1), a.dtype()), a.shape());
  auto result = eye, term = eye;
  for (int k = 1; k < 19; k++) {
    term = fx::div(mx::matmul(term, x), k);
    result = mx::add(result, term);
  }
  for (int k = 0; k < steps; k++)
    result = mx::where(mx::expand_dims(fx::lt(k, s), {-1, -2}), mx::matmul(result, result), result);
  return result;
}

// r with its block [r0, r1) x [c0, c1) of the last two axes replaced by `update`.
inline mx::array set_block(const mx::array& r, const mx::array& update, int r0, int r1, int c0, int c1) {
  const int d = rank(r);
  mx::Shape start(d, 0), stop = r.shape();
  start[d - 2] = r0;
  stop[d - 2] = r1;
  start[d - 1] = c0;
  stop[d - 1] = c1;
  return mx::slice_update(r, update, start, stop);
}

// aten.geqrf: Householder QR as LAPACK stores it -> {R with the reflectors below, tau}.
inline Tuple geqrf(const mx::array& a) {
  const int m = a.shape(-2), n = a.shape(-1), k = std::min(m, n);
  mx::array r = a;
  Tuple taus;
  for (int j = 0; j < k; j++) {
    auto x = fx::select(fx::slice(r, -2, j, m, 1), -1, j);
    auto alpha = fx::select(x, -1, 0);
    auto tail = fx::slice(x, -1, 1, m - j, 1);
    auto xnorm = m - j > 1 ? mx::sqrt(mx::sum(mx::multiply(tail, tail), -1)) : mx::zeros_like(alpha);
    auto norm = mx::sqrt(mx::add(mx::multiply(alpha, alpha), mx::multiply(xnorm, xnorm)));
    auto beta = mx::where(fx::ge(alpha, 0), mx::negative(norm), norm);
    auto trivial = fx::eq(xnorm, 0);
    auto tau = fx::where(trivial, 0.0, mx::divide(mx::subtract(beta, alpha), fx::where(trivial, 1.0, beta)));
    auto scale = fx::where(trivial, 0.0, fx::div(1.0, fx::where(trivial, 1.0, mx::subtract(alpha, beta))));
    auto v = mx::multiply(x, mx::expand_dims(scale, -1));
    auto one = mx::ones(fx::shape_plus(fx::matrix_batch(v, 1), {1}), v.dtype());
    v = mx::concatenate({one, fx::slice(v, -1, 1, m - j, 1)}, -1);
    auto sub = fx::slice(fx::slice(r, -2, j, m, 1), -1, j, n, 1);
    auto w = mx::sum(mx::multiply(mx::expand_dims(v, -1), sub), -2);  // v^T sub
    auto outer = mx::multiply(mx::expand_dims(v, -1), mx::expand_dims(w, -2));
    sub = mx::subtract(sub, mx::multiply(mx::expand_dims(tau, {-1, -2}), outer));
    r = fx::set_block(r, sub, j, m, j, n);
    r = fx::set_block(r, mx::expand_dims(mx::where(trivial, alpha, beta), {-1, -2}), j, j + 1, j, j + 1);
    if (m - j > 1) r = fx::set_block(r, mx::expand_dims(fx::slice(v, -1, 1, m - j, 1), -1), j + 1, m, j, j + 1);
    taus.push_back(tau);
  }
  auto tau = taus.empty() ? mx::zeros(fx::shape_plus(fx::matrix_batch(a), {0}), a.dtype()) : mx::stack(taus, -1);
  return {r, tau};
}

// Q = H_1 ... H_k from geqrf's reflectors (m x m).
inline mx::array householder_q(const mx::array& a, const mx::array& tau) {
  const int m = a.shape(-2), k = tau.shape(-1);
  const auto batch = fx::matrix_batch(a);
  auto q = mx::broadcast_to(mx::eye(m, a.dtype()), fx::shape_plus(batch, {m, m}));
  for (int j = 0; j < k; j++) {
    auto v = mx::concatenate({mx::zeros(fx::shape_plus(batch, {j}), a.dtype()), mx::ones(fx::shape_plus(batch, {1}), a.dtype()),
                              fx::select(fx::slice(a, -2, j + 1, m, 1), -1, j)}, -1);
    auto qv = mx::sum(mx::multiply(q, mx::expand_dims(v, -2)), -1);  // Q v
    auto outer = mx::multiply(mx::expand_dims(qv, -1), mx::expand_dims(v, -2));
    q = mx::subtract(q, mx::multiply(mx::expand_dims(fx::select(tau, -1, j), {-1, -2}), outer));
  }
  return q;
}

// aten.linalg_householder_product: the first n columns of H_1 ... H_k.
inline mx::array householder_product(const mx::array& a, const mx::array& tau) {
  return fx::slice(fx::householder_q(a, tau), -1, 0, a.shape(-1), 1);
}

// aten.ormqr: op(Q) @ other (left) or other @ op(Q), Q from geqrf's reflectors.
inline mx::array ormqr(const mx::array& a, const mx::array& tau, const mx::array& other, bool left = true,
                       bool transpose = false) {
  auto q = fx::householder_q(a, tau);
  if (transpose) q = mx::swapaxes(q, -1, -2);
  return left ? mx::matmul(q, other) : mx::matmul(other, q);
}

// aten.linalg_eig -> {complex eigenvalues, complex eigenvectors}, LAPACK's normalisation.
inline Tuple eig(const mx::array& a) {
  auto [w, v] = mx::linalg::eig(a, fx::linalg_stream());
  return {w, v};
}

// ---- complex numbers (op_mappings/complex.yaml) ----------------------------------------------------
// 1j * x (MLX Python's complex scalar: complex64).
inline mx::array times_i(const mx::array& x) { return mx::multiply(mx::array(std::complex<float>(0.0f, 1.0f)), x); }

}  // namespace fx
