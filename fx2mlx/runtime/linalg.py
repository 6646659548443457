"""Linear algebra on MLX's CPU kernels (mx.linalg runs on the CPU stream only), with PyTorch's outputs:
LAPACK-style 1-based int32 pivots, reduced/complete QR, the auxiliary results of the *_ex ops.
Decompositions whose vectors are defined only up to sign (SVD, eigh) match PyTorch's values, not
necessarily its signs."""
import mlx.core as mx

CPU = mx.cpu


def svd(a, full_matrices=False, compute_uv=True):
    """aten._linalg_svd -> (U, S, Vh)."""
    m, n = a.shape[-2], a.shape[-1]
    k = min(m, n)
    if a.size == 0:
        s = mx.zeros(a.shape[:-2] + (k,), dtype=a.dtype)
        if not compute_uv:
            return mx.zeros((0,), dtype=a.dtype), s, mx.zeros((0,), dtype=a.dtype)
        eye_m = mx.broadcast_to(mx.eye(m, dtype=a.dtype), a.shape[:-2] + (m, m))
        eye_n = mx.broadcast_to(mx.eye(n, dtype=a.dtype), a.shape[:-2] + (n, n))
        return (eye_m if full_matrices else eye_m[..., :, :k]), s, (eye_n if full_matrices else eye_n[..., :k, :])
    if not compute_uv:
        s = mx.linalg.svd(a, compute_uv=False, stream=CPU)
        empty = mx.zeros((0,), dtype=a.dtype)
        return empty, s, empty
    u, s, vt = mx.linalg.svd(a, stream=CPU)
    if not full_matrices:
        u, vt = u[..., :, :k], vt[..., :k, :]
    return u, s, vt


def qr(a, mode="reduced"):
    """aten.linalg_qr: reduced, complete or r."""
    m, n = a.shape[-2], a.shape[-1]
    if mode == "complete" and m > n:  # Q is (m, m): complete the basis with the Q of [A | I]
        eye = mx.broadcast_to(mx.eye(m, dtype=a.dtype), a.shape[:-2] + (m, m))
        q, _ = mx.linalg.qr(mx.concatenate([a, eye[..., :, : m - n]], axis=-1), stream=CPU)
        _, r = mx.linalg.qr(a, stream=CPU)
        r = mx.concatenate([r, mx.zeros(a.shape[:-2] + (m - n, n), dtype=a.dtype)], axis=-2)
        return q, r
    if a.size == 0:
        k = min(m, n)
        qm = m if mode == "complete" else k
        q = mx.broadcast_to(mx.eye(m, qm, dtype=a.dtype), a.shape[:-2] + (m, qm))
        r = mx.zeros(a.shape[:-2] + (qm if mode == "complete" else k, n), dtype=a.dtype)
        return (mx.zeros((0,), dtype=a.dtype) if mode == "r" else q), r
    q, r = mx.linalg.qr(a, stream=CPU)
    if mode == "r":
        return mx.zeros((0,), dtype=a.dtype), r
    return q, r


def _unit_diag(a):
    n = a.shape[-1]
    eye = mx.eye(n, dtype=mx.bool_)
    return mx.where(eye, mx.ones((), dtype=a.dtype), a)


def solve_triangular(a, b, upper, left=True, unitriangular=False):
    """aten.linalg_solve_triangular: A X = B (left) or X A = B."""
    if unitriangular:
        a = _unit_diag(a)
    a = mx.triu(a) if upper else mx.tril(a)
    if a.size == 0 or b.size == 0:
        return mx.zeros(mx.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + b.shape[-2:], dtype=b.dtype)
    if left:
        return mx.linalg.solve_triangular(a, b, upper=upper, stream=CPU)
    xt = mx.linalg.solve_triangular(mx.swapaxes(a, -1, -2), mx.swapaxes(b, -1, -2), upper=not upper, stream=CPU)
    return mx.swapaxes(xt, -1, -2)


def triangular_solve(b, a, upper=True, transpose=False, unitriangular=False):
    """aten.triangular_solve -> (solution, a)."""
    t = mx.triu(a) if upper else mx.tril(a)
    if unitriangular:
        t = _unit_diag(t)
    if t.size == 0 or b.size == 0:
        return mx.zeros(mx.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + b.shape[-2:], dtype=b.dtype), a
    if transpose:
        t = mx.swapaxes(t, -1, -2)
        upper = not upper
    return mx.linalg.solve_triangular(t, b, upper=upper, stream=CPU), a


def lu_factor(a):
    """aten.linalg_lu_factor_ex -> (LU, 1-based int32 pivots, info)."""
    if a.size == 0:
        k = min(a.shape[-2], a.shape[-1])
        return a, mx.zeros(a.shape[:-2] + (k,), dtype=mx.int32), mx.zeros(a.shape[:-2], dtype=mx.int32)
    lu, piv = mx.linalg.lu_factor(a, stream=CPU)
    return lu, piv.astype(mx.int32) + 1, mx.zeros(a.shape[:-2], dtype=mx.int32)


def _perm_from_pivots(piv, n):
    """LAPACK pivots (1-based row swaps, applied in order) -> the row permutation, lazily."""
    batch = piv.shape[:-1]
    pos = mx.arange(n, dtype=mx.int32)
    perm = mx.broadcast_to(pos, batch + (n,))
    for i in range(piv.shape[-1]):
        p = mx.expand_dims(piv[..., i].astype(mx.int32) - 1, -1)
        vi = perm[..., i:i + 1]
        vp = mx.take_along_axis(perm, p, axis=-1)
        perm = mx.where(pos == i, vp, mx.where(pos == p, vi, perm))
    return perm


def lu_unpack(lu, piv, unpack_data=True, unpack_pivots=True):
    """aten.lu_unpack -> (P, L, U) with A = P L U; a part not asked for is empty, as in PyTorch."""
    m, n = lu.shape[-2], lu.shape[-1]
    k = min(m, n)
    empty = mx.zeros((0,), dtype=lu.dtype)
    lower = mx.tril(lu, -1)[..., :, :k] + mx.eye(m, k, dtype=lu.dtype) if unpack_data else empty
    upper = mx.triu(lu)[..., :k, :] if unpack_data else empty
    if not unpack_pivots:
        return empty, lower, upper
    perm = _perm_from_pivots(piv, m)  # row i of P^T A is row perm[i] of A
    pt = (mx.expand_dims(perm, -1) == mx.arange(m)).astype(lu.dtype)  # row i of P^T is e_perm[i]
    return mx.swapaxes(pt, -1, -2), lower, upper


def lu(a, pivot=True):
    """aten.linalg_lu -> (P, L, U)."""
    f, piv, _ = lu_factor(a)
    return lu_unpack(f, piv)


def lu_solve(lu_data, piv, b, left=True, adjoint=False):
    """aten.linalg_lu_solve."""
    if lu_data.size == 0 or b.size == 0:
        return mx.zeros(mx.broadcast_shapes(lu_data.shape[:-2], b.shape[:-2]) + b.shape[-2:], dtype=b.dtype)
    p, lower, upper = lu_unpack(lu_data, piv)
    if left and not adjoint:  # A X = B, A = P L U
        y = mx.linalg.solve_triangular(lower, mx.swapaxes(p, -1, -2) @ b, upper=False, stream=CPU)
        return mx.linalg.solve_triangular(upper, y, upper=True, stream=CPU)
    a = p @ lower @ upper
    if adjoint:
        a = mx.swapaxes(a, -1, -2)
    if left:
        return mx.linalg.solve(a, b, stream=CPU)
    return mx.swapaxes(mx.linalg.solve(mx.swapaxes(a, -1, -2), mx.swapaxes(b, -1, -2), stream=CPU), -1, -2)


def _vector_rhs(a, b) -> bool:
    """PyTorch's rule (linalg_solve_is_vector_rhs): B is a vector when it is 1-D, or has one dim less than
    A and A's shape without its last dim."""
    return b.ndim == 1 or (b.ndim == a.ndim - 1 and tuple(b.shape) == tuple(a.shape[:-1]))


def solve(a, b, left=True):
    """aten._linalg_solve_ex -> (X, LU, pivots, info): A X = B (left) or X A = B."""
    vector = _vector_rhs(a, b)
    if a.size == 0 or b.size == 0:
        f, piv, info = lu_factor(a)
        shape = mx.broadcast_shapes(a.shape[:-2], b.shape[:-1] if vector else b.shape[:-2])
        xs = shape + ((a.shape[-1],) if vector else ((a.shape[-1], b.shape[-1]) if left else (b.shape[-2], a.shape[-1])))
        return mx.zeros(xs, dtype=a.dtype), f, piv, info
    if not left:  # X A = B  <=>  A^T X^T = B^T
        a = mx.swapaxes(a, -1, -2)
        b = mx.swapaxes(b, -1, -2)
    bb = mx.expand_dims(b, -1) if vector else b
    batch = mx.broadcast_shapes(a.shape[:-2], bb.shape[:-2])  # MLX's solve does not broadcast batches
    x = mx.linalg.solve(mx.broadcast_to(a, batch + a.shape[-2:]), mx.broadcast_to(bb, batch + bb.shape[-2:]),
                        stream=CPU)
    if vector:
        x = x[..., 0]
    elif not left:
        x = mx.swapaxes(x, -1, -2)
    f, piv, info = lu_factor(a)
    return x, f, piv, info


def det(a):
    """aten._linalg_det -> (det, LU, pivots)."""
    if a.size == 0:
        f, piv, _ = lu_factor(a)
        return mx.ones(a.shape[:-2], dtype=a.dtype), f, piv
    f, piv, _ = lu_factor(a)
    return mx.linalg.det(a, stream=CPU) if hasattr(mx.linalg, "det") else _det_from_lu(f, piv), f, piv


def _det_from_lu(f, piv):
    n = f.shape[-1]
    d = mx.prod(mx.diagonal(f, 0, -2, -1), axis=-1)
    swaps = mx.sum(piv != mx.arange(1, n + 1, dtype=piv.dtype), axis=-1)
    return mx.where(swaps % 2 == 1, -d, d)


def slogdet(a):
    """aten._linalg_slogdet -> (sign, logabsdet, LU, pivots)."""
    if a.size == 0:
        f, piv, _ = lu_factor(a)
        return mx.ones(a.shape[:-2], dtype=a.dtype), mx.zeros(a.shape[:-2], dtype=a.dtype), f, piv
    f, piv, _ = lu_factor(a)
    d = _det_from_lu(f, piv)
    n = f.shape[-1]
    diag = mx.diagonal(f, 0, -2, -1)
    logabs = mx.sum(mx.log(mx.abs(diag)), axis=-1)
    neg = mx.sum(diag < 0, axis=-1) + mx.sum(piv != mx.arange(1, n + 1, dtype=piv.dtype), axis=-1)
    sign = mx.where(d == 0, 0.0, mx.where(neg % 2 == 1, -1.0, 1.0)).astype(a.dtype)
    return sign, logabs, f, piv


def inv(a):
    """aten.linalg_inv_ex -> (inverse, info)."""
    if a.size == 0:
        return a, mx.zeros(a.shape[:-2], dtype=mx.int32)
    return mx.linalg.inv(a, stream=CPU), mx.zeros(a.shape[:-2], dtype=mx.int32)


def cholesky(a, upper=False):
    """aten.linalg_cholesky_ex / cholesky (lower L with A = L L^H, or upper)."""
    if a.size == 0:
        return a
    return mx.linalg.cholesky(a, upper=upper, stream=CPU)


def cholesky_solve(b, factor, upper=False):
    """aten.cholesky_solve: solve A X = B with A = L L^T (or U^T U)."""
    if b.size == 0 or factor.size == 0:
        return mx.zeros(mx.broadcast_shapes(b.shape[:-2], factor.shape[:-2]) + b.shape[-2:], dtype=b.dtype)
    lower = mx.swapaxes(factor, -1, -2) if upper else factor
    y = mx.linalg.solve_triangular(lower, b, upper=False, stream=CPU)
    return mx.linalg.solve_triangular(mx.swapaxes(lower, -1, -2), y, upper=True, stream=CPU)


def cholesky_inverse(factor, upper=False):
    """aten.cholesky_inverse: inverse of A from its Cholesky factor."""
    if factor.size == 0:
        return factor
    return mx.linalg.cholesky_inv(factor, upper=upper, stream=CPU)


def eigh(a, uplo="L", compute_v=True):
    """aten._linalg_eigh -> (eigenvalues ascending, eigenvectors)."""
    if a.size == 0:
        return mx.zeros(a.shape[:-1], dtype=a.dtype), a if compute_v else mx.zeros((0,), dtype=a.dtype)
    w, v = mx.linalg.eigh(a, UPLO=uplo, stream=CPU)
    if not compute_v:
        return w, mx.zeros((0,), dtype=a.dtype)
    return w, v


def pinv(a, atol=None, rtol=None, hermitian=False):
    """aten.linalg_pinv.atol_rtol_tensor: V diag(1/s) U^H over singular values above the tolerance."""
    m, n = a.shape[-2], a.shape[-1]
    if m == 0 or n == 0:
        return mx.zeros(a.shape[:-2] + (n, m), dtype=a.dtype)
    if hermitian:  # PyTorch reads the lower triangle and uses the eigendecomposition
        w, v = mx.linalg.eigh(a, stream=CPU)
        wmax = mx.max(mx.abs(w), axis=-1, keepdims=True)
        if atol is None and rtol is None:
            rtol = n * 1.1920928955078125e-07
        tol = mx.zeros_like(wmax)
        if atol is not None:
            tol = mx.maximum(tol, atol if not isinstance(atol, mx.array) else mx.expand_dims(atol, -1))
        if rtol is not None:
            tol = mx.maximum(tol, (rtol if not isinstance(rtol, mx.array) else mx.expand_dims(rtol, -1)) * wmax)
        winv = mx.where(mx.abs(w) > tol, 1.0 / mx.where(mx.abs(w) > tol, w, 1.0), 0.0)
        return (v * mx.expand_dims(winv, -2)) @ mx.swapaxes(v, -1, -2)
    u, s, vt = mx.linalg.svd(a, stream=CPU)
    k = min(m, n)
    u, vt = u[..., :, :k], vt[..., :k, :]
    smax = mx.max(s, axis=-1, keepdims=True)
    if atol is None and rtol is None:
        rtol = max(m, n) * 1.1920928955078125e-07
    tol = mx.zeros_like(smax)
    if atol is not None:
        tol = mx.maximum(tol, atol if not isinstance(atol, mx.array) else mx.expand_dims(atol, -1))
    if rtol is not None:
        tol = mx.maximum(tol, (rtol if not isinstance(rtol, mx.array) else mx.expand_dims(rtol, -1)) * smax)
    sinv = mx.where(s > tol, 1.0 / mx.where(s > tol, s, 1.0), 0.0)
    return mx.swapaxes(vt, -1, -2) @ (mx.expand_dims(sinv, -1) * mx.swapaxes(u, -1, -2))


def matrix_exp(a):
    """aten.linalg_matrix_exp: scaling and squaring (each matrix scaled by its own power of two) with a
    degree-18 Taylor polynomial."""
    if a.size == 0:
        return a
    norm = mx.max(mx.sum(mx.abs(a), axis=-2), axis=-1)
    s = mx.maximum(mx.ceil(mx.log2(mx.maximum(norm, 1e-30))) + 1, 0)  # per matrix
    steps = int(mx.max(s).item())
    x = a / mx.expand_dims(mx.power(2.0, s), (-1, -2))
    n = a.shape[-1]
    eye = mx.broadcast_to(mx.eye(n, dtype=a.dtype), a.shape)
    result, term = eye, eye
    for k in range(1, 19):
        term = term @ x / k
        result = result + term
    for k in range(steps):
        result = mx.where(mx.expand_dims(k < s, (-1, -2)), result @ result, result)
    return result


def geqrf(a):
    """aten.geqrf: Householder QR as LAPACK stores it -> (R with the reflectors below, tau)."""
    m, n = a.shape[-2], a.shape[-1]
    k = min(m, n)
    r = mx.array(a)
    taus = []
    for j in range(k):
        x = r[..., j:, j]
        alpha = x[..., 0]
        xnorm = mx.sqrt(mx.sum(x[..., 1:] * x[..., 1:], axis=-1)) if m - j > 1 else mx.zeros_like(alpha)
        norm = mx.sqrt(alpha * alpha + xnorm * xnorm)
        beta = mx.where(alpha >= 0, -norm, norm)
        trivial = xnorm == 0
        tau = mx.where(trivial, 0.0, (beta - alpha) / mx.where(trivial, 1.0, beta))
        scale = mx.where(trivial, 0.0, 1.0 / mx.where(trivial, 1.0, alpha - beta))
        v = x * mx.expand_dims(scale, -1)
        v = mx.concatenate([mx.ones(v.shape[:-1] + (1,), dtype=v.dtype), v[..., 1:]], axis=-1)
        sub = r[..., j:, j:]
        w = mx.sum(mx.expand_dims(v, -1) * sub, axis=-2)  # v^T sub
        sub = sub - mx.expand_dims(tau, (-1, -2)) * (mx.expand_dims(v, -1) * mx.expand_dims(w, -2))
        r[..., j:, j:] = sub
        r[..., j, j] = mx.where(trivial, alpha, beta)
        if m - j > 1:
            r[..., j + 1:, j] = v[..., 1:]
        taus.append(tau)
    tau = mx.stack(taus, axis=-1) if taus else mx.zeros(a.shape[:-2] + (0,), dtype=a.dtype)
    return r, tau


def _householder_q(a, tau):
    """Q = H_1 ... H_k from geqrf's reflectors (m x m)."""
    m = a.shape[-2]
    k = tau.shape[-1]
    q = mx.broadcast_to(mx.eye(m, dtype=a.dtype), a.shape[:-2] + (m, m))
    for j in range(k):
        v = mx.concatenate([mx.zeros(a.shape[:-2] + (j,), dtype=a.dtype), mx.ones(a.shape[:-2] + (1,), dtype=a.dtype),
                            a[..., j + 1:, j]], axis=-1)
        qv = mx.sum(q * mx.expand_dims(v, -2), axis=-1)  # Q v
        q = q - mx.expand_dims(tau[..., j], (-1, -2)) * (mx.expand_dims(qv, -1) * mx.expand_dims(v, -2))
    return q


def householder_product(a, tau):
    """aten.linalg_householder_product: the first n columns of H_1 ... H_k."""
    return _householder_q(a, tau)[..., :, : a.shape[-1]]


def ormqr(a, tau, other, left=True, transpose=False):
    """aten.ormqr: op(Q) @ other (left) or other @ op(Q), Q from geqrf's reflectors."""
    q = _householder_q(a, tau)
    if transpose:
        q = mx.swapaxes(q, -1, -2)
    return q @ other if left else other @ q


def eig(a):
    """aten.linalg_eig -> (complex eigenvalues, complex eigenvectors), LAPACK's normalisation."""
    w, v = mx.linalg.eig(a, stream=CPU)
    return w, v
