"""Fused activations: elementwise chains compiled into one kernel (mx.compile), as mlx-lm does."""
import mlx.core as mx
import mlx.nn as nn


def swiglu_eager(gate, x):
    """silu(gate) * x: the gated MLP of Llama-style blocks."""
    return nn.silu(gate) * x


swiglu = mx.compile(swiglu_eager, shapeless=True)
