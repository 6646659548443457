"""ONNX files and TorchScript archives as sources: compiled, then compared with the file itself
(onnxruntime / the TorchScript module), plus the errors of bad files. The models are small random-weight
PyTorch models exported here (torch.onnx legacy exporter, opset 17; torch.jit.trace)."""
import importlib.util

import numpy as np
import pytest
import torch
import torch.nn as nn

from fx2mlx.cli import main

if importlib.util.find_spec("onnx2torch") is None:  # imported by fx2mlx (it stands in for torchvision)
    pytest.skip("ONNX sources need onnx2torch (the Makefile installs it --no-deps)", allow_module_level=True)
ort = pytest.importorskip("onnxruntime")

# float32 end to end: different kernels (MLX vs onnxruntime / torch), errors seen ~1e-7 on O(1) outputs.
TOL = 1e-4


class Attention(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads, self.qkv, self.out = heads, nn.Linear(d, 3 * d), nn.Linear(d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = torch.softmax(q @ k.transpose(-1, -2) / (d // self.heads) ** 0.5, dim=-1) @ v
        return self.out(a.transpose(1, 2).reshape(b, t, d))


class ConvLstmAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(8, 16, 3, padding=1)
        self.lstm = nn.LSTM(16, 16, batch_first=True)
        self.attn = Attention(16, 2)
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        h = torch.relu(self.conv(x)).transpose(1, 2)
        h, _ = self.lstm(h)
        return self.head(self.attn(h) + h)


class ConvNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.norm, self.fc = nn.Conv1d(4, 8, 5, padding=2), nn.LayerNorm(8), nn.Linear(8, 3)

    def forward(self, x):
        return torch.tanh(self.fc(self.norm(torch.nn.functional.gelu(self.conv(x)).transpose(1, 2))))


class Branch(nn.Module):
    def forward(self, x):
        if bool(x.sum() > 0):
            return x * 2.0
        return torch.tanh(x).cumsum(0)


def run_cli(capfd, *args):
    code = main([str(a) for a in args])
    out, err = capfd.readouterr()
    assert "Traceback" not in err, err
    return code, " ".join((err + out).split())


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    torch.onnx.export(ConvLstmAttention().eval(), (torch.randn(2, 8, 20),), str(path), dynamo=False,
                      opset_version=17, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch", 2: "time"}})
    return path


@pytest.mark.slow
def test_onnx_conv_lstm_attention_matches_onnxruntime(onnx_file, tmp_path, capfd):
    import fx2mlx
    from fx2mlx.golden.cli import check_output

    out = tmp_path / "out"
    code, text = run_cli(capfd, "compile", onnx_file, "-o", out, "--input-shape", "x=3x8x12")
    assert code == 0, text
    manifest = fx2mlx.recipes.read_manifest(out)
    assert manifest["recipe"] == "onnx" and manifest["source_file"]["kind"] == "onnx"
    assert manifest["source_file"]["shapes_folded"] == {"x": [3, 8, 12]}  # Shape->Reshape chains: folded
    x = np.random.default_rng(1).standard_normal((3, 8, 12)).astype(np.float32)
    ref = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got = np.asarray(fx2mlx.load(out)(x))
    assert np.abs(ref).max() > 0.1
    assert got.shape == ref.shape and np.abs(got - ref).max() <= TOL
    report = check_output(out, quiet=True, plot=False)  # layer by layer + end to end against onnxruntime
    assert report["original"]["against"] == "onnxruntime" and report["original"]["max_abs_error"] <= TOL


@pytest.mark.slow
def test_torchscript_trace_matches_scripted_module(tmp_path, capfd):
    import fx2mlx

    torch.manual_seed(1)
    path = tmp_path / "model.pt"
    torch.jit.trace(ConvNorm().eval(), torch.randn(2, 4, 30)).save(str(path))
    out = tmp_path / "out"
    code, text = run_cli(capfd, "compile", path, "-o", out, "--trust-torchscript", "--input-shape", "x=2x4x30",
                         "--check")
    assert code == 0, text
    assert "end to end against the TorchScript module" in text
    assert fx2mlx.recipes.read_manifest(out)["source_file"]["kind"] == "torchscript"
    x = torch.randn(2, 4, 30)
    ref = torch.jit.load(str(path))(x).detach().numpy()
    got = np.asarray(fx2mlx.load(out)(x.numpy()))
    assert np.abs(ref).max() > 0.1 and np.abs(got - ref).max() <= TOL


def test_onnx_unsupported_ops_listed_at_once(tmp_path, capfd):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 3])
    nodes = [helper.make_node("Hardmax", ["x"], ["h"], name="hm"), helper.make_node("Det", ["h"], ["d"], name="det"),
             helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["r", "h"], ["y"])]
    d_out = helper.make_tensor_value_info("d", TensorProto.FLOAT, [2])
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y, d_out]),
                              opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "bad_ops.onnx"
    onnx.save(model, str(path))
    code, text = run_cli(capfd, "compile", path, "-o", tmp_path / "out")
    assert code != 0
    assert "Hardmax" in text and "Det" in text and "2 kind(s)" in text and "Relu" not in text


def test_bad_files_give_clear_errors(tmp_path, capfd):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf at all \x00\x01")
    code, text = run_cli(capfd, "compile", junk, "-o", tmp_path / "o1")
    assert code != 0 and "not a readable ONNX model" in text or "not a valid ONNX model" in text or "no nodes" in text

    torch.manual_seed(0)
    traced = tmp_path / "m.jit"
    torch.jit.trace(ConvNorm().eval(), torch.randn(1, 4, 10)).save(str(traced))
    code, text = run_cli(capfd, "compile", traced, "-o", tmp_path / "o2", "--input-shape", "x=1x4x10")
    assert code != 0 and "--trust-torchscript" in text  # loading runs the archive's code: opt-in only
    code, text = run_cli(capfd, "compile", traced, "-o", tmp_path / "o3", "--trust-torchscript")
    assert code != 0 and "--input-shape" in text and "x" in text
    code, text = run_cli(capfd, "compile", traced, "-o", tmp_path / "o4", "--trust-torchscript", "--input-shape",
                         "y=1x4x10")
    assert code != 0 and "names no forward argument" in text

    pickled = tmp_path / "pickled.pt"
    torch.save(ConvNorm(), str(pickled))
    code, text = run_cli(capfd, "compile", pickled, "-o", tmp_path / "o5", "--trust-torchscript")
    assert code != 0 and "torch.save pickle" in text and "factory" in text

    scripted = tmp_path / "branch.pt"
    torch.jit.script(Branch()).save(str(scripted))
    code, text = run_cli(capfd, "compile", scripted, "-o", tmp_path / "o6", "--trust-torchscript", "--input-shape",
                         "x=2x3")
    assert code != 0 and "control-flow" in text, text  # TS2EPConverter turns prim::If into torch.cond
    for o in ("o1", "o2", "o3", "o4", "o5", "o6"):
        assert not (tmp_path / o).exists()
