"""A model with ops fx2mlx cannot lower fails with one report listing every such op, its count and
the source lines that call it (not one error per op)."""
import pytest
import torch

import fx2mlx
from fx2mlx.compiler.errors import UnsupportedOpsError


class Unsupported(torch.nn.Module):
    def forward(self, x):
        a = torch.special.airy_ai(x)
        b = torch.special.airy_ai(x * 2)
        c = torch.special.spherical_bessel_j0(x)
        return a + b + c + torch.sin(x)


def test_one_aggregated_report(tmp_path):
    with pytest.raises(UnsupportedOpsError) as info:
        fx2mlx.convert(Unsupported(), (torch.randn(3),), out_dir=tmp_path / "out")
    e = info.value
    by_op = {o["op"]: o for o in e.ops}
    assert set(by_op) == {"aten.special_airy_ai.default", "aten.special_spherical_bessel_j0.default"}
    assert by_op["aten.special_airy_ai.default"]["count"] == 2
    assert by_op["aten.special_spherical_bessel_j0.default"]["count"] == 1
    msg = str(e)
    assert "2 unsupported op(s) (3 node(s))" in msg
    assert "test_unsupported_report.py" in msg and "torch.special.airy_ai(x * 2)" in msg
    assert "fx2mlx ops --missing" in msg
