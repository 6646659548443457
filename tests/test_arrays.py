"""numpy -> MLX conversion used wherever fx2mlx feeds values to MLX (inputs, weights, harnesses)."""
import subprocess
import sys

import numpy as np
import pytest

from fx2mlx.compiler.weights import from_numpy


@pytest.mark.parametrize("shape,dtype", [((0,), np.float32), ((0, 5), np.float16), ((3, 0, 2), np.int64),
                                         ((0,), np.bool_), ((), np.float32), ((2, 3), np.int32)])
def test_from_numpy_keeps_shape_dtype_values(shape, dtype):
    a = (np.arange(int(np.prod(shape))) % 3).reshape(shape).astype(dtype)
    m = from_numpy(a)
    assert tuple(m.shape) == shape
    assert np.array(m).dtype == a.dtype
    np.testing.assert_array_equal(np.array(m), a)


def test_from_numpy_copies_non_contiguous():
    a = np.arange(12, dtype=np.float32).reshape(3, 4).T
    np.testing.assert_array_equal(np.array(from_numpy(a)), a)


def test_empty_reductions_finish():
    """MLX 0.32.4's CPU reduction can spin forever on a zero-size array imported from numpy (it did in
    about half of 3000-iteration runs of this loop with `mx.array`); `from_numpy` must not. Run in a
    subprocess with a time limit so that a regression fails instead of hanging the suite."""
    code = """
import numpy as np, mlx.core as mx
from fx2mlx.compiler.weights import from_numpy
for i in range(1500):
    for shape, axis in (((0,), 0), ((0, 5), 0), ((0, 5), None)):
        x = from_numpy(np.zeros(shape, np.float32))
        mx.eval(mx.sum(x, axis=axis), mx.var(x, axis=axis, ddof=1), mx.mean(x, axis=axis))
print("done")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "done" in r.stdout, r.stderr[-2000:]


def test_to_numpy_resolves_lazy_conjugates():
    import torch

    from fx2mlx.compiler.weights import to_numpy

    z = torch.tensor([1 + 2j, -3j], dtype=torch.complex64).conj()  # a view with the conjugate bit set
    np.testing.assert_array_equal(to_numpy(z), np.array([1 - 2j, 3j], np.complex64))
