"""Python API and the standalone output: convert / save / load, numpy inputs, structured outputs, and
the emitted model.py running where torch cannot be imported."""
import ast
import json
import subprocess
import sys

import numpy as np
import torch
from torch import nn

import fx2mlx
from helpers import max_abs_diff
from zoo import ZOO


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(6, 5)
        self.a = nn.Linear(5, 2)
        self.b = nn.Linear(5, 3)

    def forward(self, x, scale):
        h = torch.tanh(self.body(x)) * scale
        return {"a": self.a(h), "rest": (self.b(h), h.sum(-1))}


def test_convert_call_save_load_structure(tmp_path):
    torch.manual_seed(0)
    m = TwoHeads().eval()
    x, s = torch.randn(4, 6), torch.rand(4, 1)
    ref = m(x, s)
    c = fx2mlx.convert(m, (x, s))
    assert c.input_names == ["x", "scale"]
    out = c(x.numpy(), s.numpy())  # numpy in, mx.array out, same structure as PyTorch
    assert set(out) == {"a", "rest"} and isinstance(out["rest"], tuple) and len(out["rest"]) == 2
    assert max_abs_diff(ref["a"], out["a"]) < 1e-5
    assert max_abs_diff(ref["rest"][1], out["rest"][1]) < 1e-5
    out_kw = c(x=x, scale=s)  # torch tensors and keyword arguments work too
    assert max_abs_diff(ref["rest"][0], out_kw["rest"][0]) < 1e-5
    saved = c.save(tmp_path / "saved")
    again = fx2mlx.load(saved)
    assert max_abs_diff(ref["a"], again(x.numpy(), s.numpy())["a"]) < 1e-5


def test_float16_and_bfloat16_outputs(tmp_path):
    m, (x,) = ZOO["mlp"]()
    ref = m(x)
    for dtype, tol in (("float16", 5e-3), ("bfloat16", 5e-2)):  # ~3 and ~2 significant digits
        c = fx2mlx.convert(m, (x,), dtype=dtype, out_dir=tmp_path / dtype)
        y = c(x.numpy())
        assert str(y.dtype).endswith(dtype)
        assert max_abs_diff(ref, y.astype(__import__("mlx.core").core.float32)) < tol


def test_manifest_and_ir_json(tmp_path):
    m, (x,) = ZOO["mlp"]()
    c = fx2mlx.convert(m, (x,), out_dir=tmp_path / "out")
    man = json.loads((c.out_dir / "manifest.json").read_text())
    assert man["recipe"] == "graph" and man["entry"] == "model" and man["graphs"]["model"]["dir"] == "."
    g = man["graphs"]["model"]
    # the batch axis follows the inputs; the feature axis is fixed by the first Linear
    assert g["inputs"] == [{"name": "input", "shape": ["batch", 16], "dtype": "float32", "example_shape": [2, 16]}]
    assert g["static_dims"] == [{"input": "input", "axis": 1, "size": 16, "reason": g["static_dims"][0]["reason"]}]
    assert "fixes it to 16" in g["static_dims"][0]["reason"]
    assert g["self_check"] == "passed"
    assert "aten.linear.default" in g["ops"] and man["torch"].startswith("2.13")
    from fx2mlx.compiler.ir import Program

    p = Program.from_json((c.out_dir / "ir.json").read_text())
    assert Program.from_json(p.to_json()) == p
    assert [n.target for n in p.nodes].count("aten.linear.default") == 3


_NO_TORCH = r"""
import sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
import importlib.util, numpy as np, mlx.core as mx
spec = importlib.util.spec_from_file_location("m", sys.argv[1] + "/model.py")
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
model = mod.load(sys.argv[1])
x = mx.load(sys.argv[1] + "/inputs.safetensors")["input_0"]
np.save(sys.argv[2], np.array(model(x)))
"""


def test_emitted_model_runs_without_torch(tmp_path):
    for name in ("mlp", "bilstm_bf", "conv1d_stack"):
        m, (x,) = ZOO[name]()
        c = fx2mlx.convert(m, (x,), out_dir=tmp_path / name)
        tree = ast.parse((c.out_dir / "model.py").read_text())
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert imported <= {"mlx", "math", "json", "pathlib"}, imported
        res = tmp_path / f"{name}.npy"
        subprocess.run([sys.executable, "-c", _NO_TORCH, str(c.out_dir), str(res)], check=True)
        with torch.no_grad():
            assert max_abs_diff(m(x), np.load(res)) < 1e-4


class Whiten(nn.Module):
    """linalg ops whose decomposition threads an effect token through a singular-matrix check."""

    def forward(self, a, b):
        g = a @ a.transpose(-1, -2) + torch.eye(a.shape[-1])
        return torch.linalg.solve(g, b), torch.linalg.inv(g), torch.linalg.cholesky(g)


def test_effect_token_checks_are_dropped(tmp_path):
    torch.manual_seed(0)
    a, b = torch.randn(2, 4, 4), torch.randn(2, 4, 3)
    ref = Whiten()(a, b)
    out = fx2mlx.convert(Whiten(), (a, b))(a.numpy(), b.numpy())
    for r, o in zip(ref, out):
        assert max_abs_diff(r, o) < 1e-4  # float32 LAPACK on well-conditioned 4x4 systems


def test_golden_runs_graphs_with_effect_tokens(tmp_path):
    """The golden harness runs the exported graph itself: the effect-token input of linalg's checks gets
    a token, and every value is compared."""
    from fx2mlx.golden import assert_matches

    torch.manual_seed(0)
    report = assert_matches(Whiten(), (torch.randn(2, 4, 4), torch.randn(2, 4, 3)), out_dir=tmp_path / "w")
    assert report
