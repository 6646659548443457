"""Integer arithmetic that MLX's kernels do not take: matrix products of integer (and bool) arrays."""
import mlx.core as mx


def int_matmul(a, b):
    """`a @ b` with matmul's rank rules for integer (and bool) arrays, which MLX's matmul refuses.
    Exact: products and sums in integer arithmetic, wrapping on overflow as PyTorch's integer matmul
    does (MLX sums 8/16-bit integers in 32 bits; the cast back keeps the same low bits). The
    (..., M, k, N) products are formed a slice of K at a time, so memory stays bounded."""
    dtype = a.dtype
    vec_a, vec_b = a.ndim == 1, b.ndim == 1
    if vec_a:
        a = mx.expand_dims(a, 0)
    if vec_b:
        b = mx.expand_dims(b, 1)
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    batch = 1
    for d in mx.broadcast_shapes(a.shape[:-2], b.shape[:-2]):
        batch *= d
    step = max(1, (1 << 24) // max(1, batch * m * n))
    out = None
    for s in range(0, max(k, 1), step):
        part = mx.sum(mx.expand_dims(a[..., s:s + step], -1) * mx.expand_dims(b[..., s:s + step, :], -3), axis=-2)
        out = part if out is None else out + part
    out = out.astype(dtype)
    if vec_a:
        out = mx.squeeze(out, -2)
    if vec_b:
        out = mx.squeeze(out, -1)
    return out


def int_power(base, exponent):
    """Integer ** integer as PyTorch computes it: a negative exponent gives 0, except for a base of 1
    (1) and -1 (+-1 by the exponent's parity); MLX gives 0 for those too."""
    base, exponent = mx.array(base), mx.array(exponent)
    neg = mx.where(base == 1, 1, mx.where(base == -1, 1 - 2 * (exponent % 2), 0))
    return mx.where(exponent < 0, neg, mx.power(base, mx.maximum(exponent, 0))).astype(
        mx.power(base, exponent).dtype)


def _trunc_rem(a, b):
    """C's `a % b` (the sign of the dividend); MLX's `%` takes the divisor's sign. b must be nonzero."""
    r = mx.remainder(a, b)
    return mx.where((r != 0) & ((r < 0) != (a < 0)), r - b, r)


def _trunc_div(a, b):
    """C's `a / b` on integers (rounds toward zero); MLX's `//` rounds down. b must be nonzero."""
    return (a - _trunc_rem(a, b)) // b


def _euclid_steps(dtype) -> int:
    # Euclid's algorithm on n-bit integers needs fewer steps than the index of the first Fibonacci
    # number above 2**n, about 1.44 n
    return int(1.45 * 8 * dtype.size) + 2


def gcd(a, b):
    """torch.gcd: Euclid's algorithm on |a|, |b| with C's remainder, run a fixed number of steps (enough
    for the dtype's range) so that the graph stays lazy. Bit-exact with PyTorch's CPU kernel, including
    its wrap-around for the most negative value."""
    a, b = mx.abs(mx.array(a)), mx.abs(mx.array(b))
    a, b = mx.broadcast_arrays(a, b)
    for _ in range(_euclid_steps(a.dtype)):
        nz = a != 0
        a, b = mx.where(nz, _trunc_rem(b, mx.where(nz, a, 1)), 0), mx.where(nz, a, b)
    return b


def lcm(a, b):
    """torch.lcm: |a / gcd(a, b) * b|, 0 where the gcd is 0. As in PyTorch's kernel, 8/16-bit integers are
    multiplied in 32 bits (C's integer promotion) and the result wraps when cast back."""
    a, b = mx.array(a), mx.array(b)
    g = gcd(a, b)
    wide = mx.int32 if g.dtype.size < 4 else g.dtype
    a, b, w = a.astype(wide), b.astype(wide), g.astype(wide)
    nz = w != 0
    return mx.where(nz, mx.abs(_trunc_div(a, mx.where(nz, w, 1)) * b), 0).astype(g.dtype)
