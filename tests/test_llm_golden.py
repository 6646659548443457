"""`fx2mlx check OUT` on decoder LLMs compiled by the KV-cache recipe (fx2mlx.recipes.causal_lm): the torch side
re-captures the way the recipe does, pseudo-op values (KV attention, cache entries/offsets, RoPE tables)
are not required of PyTorch, the MLX side runs the plain forward (cache=None); a corrupted weight is
named as the first divergence."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fx2mlx.golden import GoldenMismatch, check_output
from fx2mlx.recipes.causal_lm import compile_llm
from fx2mlx.llm.testing import config, save_model


@pytest.fixture(scope="module", params=["llama", "qwen2"])  # GQA; q/k/v biases + tied embeddings
def compiled(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(f"golden_{request.param}")
    save_model(config(request.param, initializer_range=0.1), d / "hf")
    compile_llm(d / "hf", d / "out")
    return request.param, d / "out"


def _module_types(out):
    ir = json.loads((out / "ir.json").read_text())
    return {m["path"]: m["type"] for m in ir["modules"]}


def test_check_passes_both_modes(compiled):
    fam, out = compiled
    assert json.loads((out / "manifest.json").read_text())["llm"]["kind"] == "decoder"
    report = check_output(out, quiet=True, plot=False)
    assert report["passed"] and report["modes"] == ["accumulated", "isolated"]
    for m in report["modes"]:
        assert report["summary"][m]["failed_layers"] == 0 and report["summary"][m]["failed_values"] == 0
    assert report["summary"]["values"] > 0
    checked = {r["path"] for r in report["layers"]}
    types = _module_types(out)
    linears = {p for p, t in types.items() if t.endswith(".Linear")}
    norms = {p for p, t in types.items() if t.endswith("RMSNorm")}
    assert linears and norms
    assert linears | norms <= checked, sorted((linears | norms) - checked)
    assert {f"model.layers.{i}.self_attn.q_proj" for i in range(2)} <= linears
    # the fused RMSNorm kept the PyTorch node's name: compared per value too
    assert any(v["op"] == "fx2mlx.rms_norm.default" for v in report["values"])


def test_corrupt_weight_is_named(compiled):
    import mlx.core as mx

    fam, out = compiled
    if fam != "llama":
        pytest.skip("one family is enough")
    w = dict(mx.load(str(out / "weights.safetensors")))
    key = "model.layers.1.self_attn.q_proj.weight"
    rng = np.random.default_rng(0)
    w[key] = w[key] + mx.array(rng.standard_normal(w[key].shape).astype(np.float32))
    mx.save_safetensors(str(out / "weights.safetensors"), w)
    with pytest.raises(GoldenMismatch) as ei:
        check_output(out, quiet=True, plot=False)
    report = ei.value.report
    msg = str(ei.value)
    first = next(line for line in msg.splitlines() if line.startswith("first divergence"))
    assert "model.layers.1.self_attn.q_proj " in first + " ", msg
    for m in report["modes"]:
        assert report["first_divergence"][m]["path"] == "model.layers.1.self_attn.q_proj"
