"""Snake activation (Ziyin et al. 2020; as used in DAC, BigVGAN, Vocos):

    snake(x) = x + 1 / (alpha + eps) * sin(alpha * x) ** 2

x is channels-first (B, C, T); alpha broadcasts against it, typically (1, C, 1).
Evaluated in PyTorch's order: reciprocal of (alpha + eps) first, then the product with sin^2.
"""

import mlx.core as mx


def snake1d(x, alpha, eps=0.0):
    """x + 1 / (alpha + eps) * sin(alpha * x) ** 2, unfused (the default)."""
    return x + mx.reciprocal(alpha + eps) * mx.square(mx.sin(alpha * x))


@mx.compile
def snake1d_compiled(x, alpha, eps=0.0):
    """Same as :func:`snake1d`, fused by ``mx.compile``.

    On the Linux CPU backend this is only 0-10% faster (sin dominates and is not fused), and each new
    shape/broadcast pattern may cost a ~0.9 s g++ build on first use (cached under $TMPDIR/mlx).
    On GPU backends fusing the five elementwise kernels into one saves memory traffic.
    """
    return x + mx.reciprocal(alpha + eps) * mx.square(mx.sin(alpha * x))
