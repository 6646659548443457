"""The golden pass rule is relative to each value's own magnitude: max|Δ| <= atol + rtol·max|PyTorch|.

* A CNN whose pre-BatchNorm convolutions reach |x| ~ 1e4 (raw 0..255 pixels, scaled-up weights, real
  BatchNorm running statistics that bring the activations back to O(1)) passes: float32 round-off of
  ~1e-3 there is ~2e-7 of the layer's magnitude. The old element-wise rule (|Δ| <= 1e-4 + 1e-4·|PyTorch|
  per element) flagged those convolutions (round-off on their near-zero elements); the test recomputes it
  on the recorded values to show it.
* A 1e-2 relative perturbation of one layer is still named as the first divergence, both where the
  layer's values are large (~1e3) and where they are small (~1e-3: an absolute error of ~1e-5, which the
  old atol of 1e-4 let through).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from fx2mlx.golden import DEFAULT_TOLERANCES, GoldenMismatch, Tolerances, check_output, compare_arrays, default_tolerances

OLD_ATOL = OLD_RTOL = 1e-4  # the float32 defaults of the old element-wise rule


def _old_rule_fails(expected: np.ndarray, actual: np.ndarray) -> bool:
    """The old pass rule (numpy allclose, element-wise): does any element exceed atol + rtol·|expected|?"""
    e, a = expected.astype(np.float64), actual.astype(np.float64)
    return bool(np.any(np.abs(a - e) > OLD_ATOL + OLD_RTOL * np.abs(e)))


def _report(out: Path) -> dict:
    return json.loads((out / "golden" / "report.json").read_text())


def _perturb_copy(out: Path, dst: Path, key: str, rel: float) -> Path:
    """OUT with weight `key` perturbed by `rel` times its RMS (Gaussian noise), golden/ not copied."""
    import mlx.core as mx

    dst.mkdir(parents=True)
    for f in out.iterdir():
        if f.is_file() and f.name != "weights.safetensors":
            shutil.copy2(f, dst / f.name)
    w = dict(mx.load(str(out / "weights.safetensors")))
    assert key in w, sorted(w)
    rms = mx.sqrt(mx.mean(w[key] * w[key]))
    w[key] = w[key] + rel * rms * mx.random.normal(w[key].shape, key=mx.random.key(1))
    mx.save_safetensors(str(dst / "weights.safetensors"), w)
    return dst


def _mlx_accumulated_values(out: Path, captured) -> tuple[dict, dict]:
    """(PyTorch's values, the emitted model's values run on its own outputs), by IR value name."""
    import mlx.core as mx

    from fx2mlx.golden import mlx_side
    from fx2mlx.golden.torch_side import golden_values

    c = mlx_side.open_output(out)
    expected, dtypes = golden_values(captured, c.program)
    feed = mlx_side.feeder(c, expected, dtypes)
    actual = mlx_side.run_values_accumulated(c, [feed(i.name) for i in c.program.user_inputs])
    return expected, {k: np.array(v) for k, v in actual.items() if isinstance(v, mx.array)}


# --------------------------------------------------------------------------------------------------
# a CNN with large pre-BatchNorm activations
# --------------------------------------------------------------------------------------------------
class BigActivationCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def big_activation_cnn():
    """Raw pixels (0..255, not normalised) and conv weights scaled up: conv1 and conv2 outputs reach
    |x| ~ 1e4; BatchNorm's running statistics are those of the data (as in a trained model), so they
    normalise them and the logits are O(1)."""
    torch.manual_seed(0)
    m = BigActivationCNN()
    with torch.no_grad():
        m.conv1.weight.mul_(30.0)
        m.conv2.weight.mul_(1e4)
        for bn in (m.bn1, m.bn2):
            bn.momentum = None  # cumulative average: the running stats are the data's
        m.train()
        for _ in range(4):
            m(torch.rand(8, 3, 16, 16) * 255)
        m.fc.weight.mul_(3.0)
    m.eval()
    x = torch.rand(2, 3, 32, 32) * 255
    return m, (x,)


@pytest.fixture(scope="module")
def big_cnn(tmp_path_factory):
    from fx2mlx.compiler.capture import capture
    from fx2mlx.recipes import compile_captured

    module, args = big_activation_cnn()
    captured = capture(module, args, {})
    out = tmp_path_factory.mktemp("bigcnn") / "out"
    compile_captured(captured, out)
    report = check_output(out, captured, quiet=True, plot=True)
    return module, args, captured, out, report


def test_large_activation_cnn_passes_but_failed_the_old_rule(big_cnn):
    module, args, captured, out, report = big_cnn
    assert report["passed"], report["first_divergence"]
    assert report["tolerances"] == DEFAULT_TOLERANCES["float32"].as_dict()
    layers = {r["path"]: r for r in report["layers"]}
    # the scenario: large pre-BatchNorm activations, normalised by BatchNorm, logits O(1) and close
    for conv in ("conv1", "conv2"):
        assert layers[conv]["accumulated"]["max_ref"] >= 5e3
    assert layers["bn2"]["accumulated"]["max_ref"] < 50
    out_rec = layers["<output>"]["accumulated"]
    with torch.no_grad():
        logits = module(*args).numpy()
    assert 0.3 < np.abs(logits).max() < 100  # not near zero
    assert out_rec["max_ref"] == pytest.approx(float(np.abs(logits).max()), rel=1e-6)
    assert out_rec["rel_err"] < 1e-6
    # the round-off on the big convolutions is large in absolute terms, tiny relative to the layer
    for conv in ("conv1", "conv2"):
        for mode in ("accumulated", "isolated"):
            rec = layers[conv][mode]
            assert rec["max_abs"] > 1e-4 and rec["rel_err"] < 1e-6 and rec["ratio"] < 0.1, (conv, mode, rec)
    # the old element-wise rule, on the same recorded values, flags the pre-BatchNorm convolutions
    expected, actual = _mlx_accumulated_values(out, captured)
    old_flagged = [r["path"] for r in report["layers"]
                   if r["value"] in actual and _old_rule_fails(expected[r["value"]], actual[r["value"]])]
    assert "conv2" in old_flagged and old_flagged[0] in ("conv1", "conv2"), old_flagged
    assert "fc" not in old_flagged  # while the logits match closely
    # report.html and errors.png state the new rule
    html = (out / "golden" / "report.html").read_text()
    assert "max|PyTorch|" in html and "per element" not in html
    assert (out / "golden" / "errors.png").read_bytes()[:4] == b"\x89PNG"


def test_large_activation_cnn_perturbed_conv_is_first_divergence(big_cnn, tmp_path):
    _, _, captured, out, _ = big_cnn
    bad = _perturb_copy(out, tmp_path / "bad", "conv2.weight", rel=1e-2)
    with pytest.raises(GoldenMismatch) as info:
        check_output(bad, captured, quiet=True, plot=False)
    report = _report(bad)
    layers = {r["path"]: r for r in report["layers"]}
    for mode in ("accumulated", "isolated"):
        fd = report["first_divergence"][mode]
        assert fd["path"] == "conv2" and fd["type"] == "Conv2d", (mode, fd)
        assert 1e-3 < fd["rel_err"] < 1e-1
        assert layers["conv1"][mode]["passed"] and layers["bn1"][mode]["passed"]
    assert "max|PyTorch|" in str(info.value)


# --------------------------------------------------------------------------------------------------
# a layer with small values (~1e-3): a 1e-2 relative error is caught
# --------------------------------------------------------------------------------------------------
class SmallLayerMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 64)
        self.small = nn.Linear(64, 64)
        self.fc2 = nn.Linear(64, 8)

    def forward(self, x):
        h = torch.tanh(self.fc1(x))
        h = torch.relu(self.small(h))
        return self.fc2(h)


def small_layer_mlp():
    torch.manual_seed(0)
    m = SmallLayerMLP()
    with torch.no_grad():
        m.small.weight.mul_(2.5e-3)
        m.small.bias.mul_(1e-3)
        m.fc2.weight.mul_(1e3)
    m.eval()
    return m, (torch.randn(4, 16),)


@pytest.fixture(scope="module")
def small_mlp(tmp_path_factory):
    from fx2mlx.compiler.capture import capture
    from fx2mlx.recipes import compile_captured

    module, args = small_layer_mlp()
    captured = capture(module, args, {})
    out = tmp_path_factory.mktemp("smallmlp") / "out"
    compile_captured(captured, out)
    return captured, out


def test_small_layer_relative_perturbation_is_first_divergence(small_mlp, tmp_path):
    captured, out = small_mlp
    good = check_output(out, captured, quiet=True, plot=False)
    assert good["passed"]
    glayers = {r["path"]: r for r in good["layers"]}
    assert 3e-4 < glayers["small"]["accumulated"]["max_ref"] < 3e-3  # the layer's values are ~1e-3
    assert 0.3 < glayers["<output>"]["accumulated"]["max_ref"] < 100  # the output is not near zero

    bad = _perturb_copy(out, tmp_path / "bad", "small.weight", rel=1e-2)
    with pytest.raises(GoldenMismatch):
        check_output(bad, captured, quiet=True, plot=False)
    report = _report(bad)
    layers = {r["path"]: r for r in report["layers"]}
    for mode in ("accumulated", "isolated"):
        fd = report["first_divergence"][mode]
        assert fd["path"] == "small" and fd["type"] == "Linear", (mode, fd)
        rec = layers["small"][mode]
        assert 2e-3 < rec["rel_err"] < 5e-2 and rec["max_abs"] < 1e-4  # ~1e-2 relative, ~1e-5 absolute
        assert rec["cosine"] > 0.9999  # the cosine bound alone would not catch it
        assert layers["fc1"][mode]["passed"]
    # the old element-wise rule (atol 1e-4 absolute) lets this corruption through
    expected, actual = _mlx_accumulated_values(bad, captured)
    assert not _old_rule_fails(expected[layers["small"]["value"]], actual[layers["small"]["value"]])


def test_cli_overrides_change_the_bound(small_mlp, tmp_path):
    """--rtol / --atol keep their meaning: a loose atol (the floor) hides the small-layer error again
    (isolated mode: accumulated, fc2 (weights x1e3) turns it into a 1e-2 error of an O(1) value), and the
    report's tolerances and ratio follow the override."""
    from fx2mlx.cli import main

    captured, out = small_mlp
    bad = _perturb_copy(out, tmp_path / "bad", "small.weight", rel=1e-2)
    check_output(bad, captured, quiet=True, plot=False, atol=1e-4, rtol=1e-4, mode="isolated")  # 1e-5 < atol
    report = _report(bad)
    assert report["passed"] and report["tolerances"]["atol"] == 1e-4
    small = next(r for r in report["layers"] if r["path"] == "small")["isolated"]
    assert small["ratio"] == pytest.approx(small["max_abs"] / (1e-4 + 1e-4 * small["max_ref"]))
    # from the command line, offline against the stored golden tensors: the defaults catch it
    assert main(["check", str(bad), "--offline"]) == 10
    assert main(["check", str(bad), "--offline", "--rtol", "5e-2", "--atol", "1e-4"]) == 0
    assert _report(bad)["tolerances"] == {"atol": 1e-4, "rtol": 5e-2, "cosine": 0.9999}


# --------------------------------------------------------------------------------------------------
# the rule on arrays
# --------------------------------------------------------------------------------------------------
def test_normwise_rule():
    tol = default_tolerances("float32")
    assert (tol.atol, tol.rtol) == (1e-6, 1e-4)
    rng = np.random.default_rng(0)
    big = rng.standard_normal(1000) * 500  # |ref| up to ~1.6e3
    big[::50] *= 1e-4  # and some elements near 0
    noisy = big + rng.standard_normal(1000) * 2e-4  # float32-level round-off of the whole tensor
    r = compare_arrays(big, noisy, tol)
    assert r["passed"] and r["rel_err"] < 1e-6 and r["max_ref"] == pytest.approx(np.abs(big).max())
    assert _old_rule_fails(big, noisy)  # element-wise, the small elements would fail
    assert not compare_arrays(big, big * (1 + 1e-2 * rng.standard_normal(1000)), tol)["passed"]
    small = rng.standard_normal(1000) * 1e-3
    r = compare_arrays(small, small * (1 + 1e-2 * rng.standard_normal(1000)), tol)
    assert not r["passed"] and r["ratio"] > 1 and "max|expected|" in r["reason"]
    assert compare_arrays(small, small + 1e-9, tol)["passed"]
    # max|ref| == 0: atol decides
    zero = np.zeros(10, dtype=np.float32)
    r = compare_arrays(zero, zero + 5e-7, tol)
    assert r["passed"] and r["rel_err"] == float("inf") and r["ratio"] == pytest.approx(0.5)
    assert not compare_arrays(zero, zero + 5e-6, tol)["passed"]
    assert compare_arrays(zero, zero.copy(), tol)["rel_err"] == 0.0
    # the bound is atol + rtol·max|ref|
    t = Tolerances(atol=1e-3, rtol=1e-2, cosine=0.0)
    ref = np.array([100.0, 0.0, -1.0])
    assert compare_arrays(ref, ref + np.array([0.0, 1.0, 0.0]), t)["passed"]  # 1.0 <= 1e-3 + 1e-2·100
    assert not compare_arrays(ref, ref + np.array([0.0, 1.01, 0.0]), t)["passed"]
