"""A model with ops fx2mlx cannot lower fails with one report listing every such op, its count and
the source lines that call it (not one error per op)."""
import pytest
import torch

import fx2mlx
from fx2mlx.compiler.errors import UnsupportedOpsError


class Unsupported(torch.nn.Module):
    def forward(self, x):
        ld, piv, _ = torch.linalg.ldl_factor_ex(torch.eye(3) * 4 + x[:, None] * x)
        a = torch.linalg.ldl_solve(ld, piv, x[:, None])[:, 0]
        b = torch.linalg.ldl_solve(ld, piv, x[:, None] * 2)[:, 0]
        return a + b + torch.sin(x)


def test_one_aggregated_report(tmp_path):
    with pytest.raises(UnsupportedOpsError) as info:
        fx2mlx.convert(Unsupported(), (torch.randn(3),), out_dir=tmp_path / "out")
    e = info.value
    by_op = {o["op"]: o for o in e.ops}
    assert set(by_op) == {"aten.linalg_ldl_solve.default", "aten.linalg_ldl_factor_ex.default"}
    assert by_op["aten.linalg_ldl_solve.default"]["count"] == 2
    assert by_op["aten.linalg_ldl_factor_ex.default"]["count"] == 1
    msg = str(e)
    assert "2 unsupported op(s) (3 node(s))" in msg
    assert "test_unsupported_report.py" in msg and "torch.linalg.ldl_solve(ld, piv, x[:, None] * 2)" in msg
    assert "fx2mlx ops --missing" in msg
