"""fx2mlx.runtime.snake against the PyTorch formula x + (alpha + eps).reciprocal() * sin(alpha * x) ** 2.

Tolerance: float32 sin differs between MLX and PyTorch by about an ulp; with |x| <= ~4 and
1 / alpha <= 2 the outputs agree to ~5e-7, so atol 1e-5 (rtol 1e-6) leaves margin without hiding errors.
"""

import ast
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
import torch

from fx2mlx.runtime.snake import snake1d, snake1d_compiled


def _torch_snake(x, alpha, eps):
    return x + (alpha + eps).reciprocal() * torch.sin(alpha * x).pow(2)


def _case(shape, alpha_shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g)
    alpha = torch.rand(alpha_shape, generator=g) * 1.5 + 0.5
    return x, alpha


@pytest.mark.parametrize("eps", [0.0, 1e-9])
@pytest.mark.parametrize("shape,alpha_shape", [((2, 4, 16), (1, 4, 1)), ((1, 8, 33), (8, 1)), ((3, 5, 7), (1, 5, 1))])
def test_snake1d_matches_torch(shape, alpha_shape, eps):
    x, alpha = _case(shape, alpha_shape)
    got = snake1d(mx.array(x.numpy()), mx.array(alpha.numpy()), eps)
    assert tuple(got.shape) == shape
    np.testing.assert_allclose(np.array(got), _torch_snake(x, alpha, eps).numpy(), rtol=1e-6, atol=1e-5)


def test_snake1d_compiled_matches_torch():
    x, alpha = _case((2, 4, 16), (1, 4, 1), seed=1)
    got = snake1d_compiled(mx.array(x.numpy()), mx.array(alpha.numpy()), 1e-9)
    np.testing.assert_allclose(np.array(got), _torch_snake(x, alpha, 1e-9).numpy(), rtol=1e-6, atol=1e-5)


def test_snake1d_small_alpha_is_finite():
    """With eps = 0 and tiny alpha, the term tends to alpha * x^2 rather than blowing up."""
    x = torch.linspace(-3, 3, 12).reshape(1, 1, 12)
    alpha = torch.full((1, 1, 1), 1e-4)
    got = np.array(snake1d(mx.array(x.numpy()), mx.array(alpha.numpy())))
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, _torch_snake(x, alpha, 0.0).numpy(), rtol=1e-6, atol=1e-5)


def test_runtime_file_is_vendorable():
    """Only the allowed imports, and module level holds just a docstring, imports and defs."""
    path = Path(__file__).resolve().parents[1] / "fx2mlx" / "runtime" / "snake.py"
    assert len(path.read_text().splitlines()) < 250
    allowed = {"import math", "import mlx.core as mx", "import mlx.nn as nn"}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            assert ast.unparse(node) in allowed
        else:
            is_docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            assert is_docstring or isinstance(node, (ast.FunctionDef, ast.ClassDef)), ast.unparse(node)
