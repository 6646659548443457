"""Every zoo model compiles and matches PyTorch (float32, max abs error <= 1e-4).

1e-4: float32 matmul/conv accumulation order differs between MLX and PyTorch; on these small models
the observed errors are ~1e-6, so 1e-4 still catches any real lowering bug (those show up at >1e-2).
"""
import pytest

from helpers import compile_and_compare
from zoo import ZOO


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_model_matches_pytorch(name, tmp_path):
    result = ZOO[name]()
    module, args = result[0], result[1]
    kwargs = result[2] if len(result) > 2 else {}
    compile_and_compare(module, args, kwargs, atol=1e-4, out_dir=tmp_path / "out")
