"""Tensor parallelism over processes (fx2mlx.llm.shard): a tiny Qwen2 (GQA 4 query / 2 KV heads, q/k/v
biases) compiled with --shards 2 runs as 2 processes over MLX's ring backend on loopback (mlx.launch) and
gives the single-process greedy tokens exactly; options it cannot honour are refused before the capture."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fx2mlx.compiler.errors import SourceError
from fx2mlx.llm import load_llm
from fx2mlx.llm.testing import config, save_model
from fx2mlx.recipes.causal_lm import compile_llm

PROMPT = [5, 17, 99, 3, 42, 7, 120, 64]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    d = tmp_path_factory.mktemp("tp")
    save_model(config("qwen2", initializer_range=0.2), d / "hf")
    compile_llm(d / "hf", d / "out", shards=2)
    return d / "hf", d / "out"


def test_rank_graph_splits_heads_and_mlp_with_two_all_sums_per_layer(compiled):
    _, out = compiled
    info = json.loads((out / "manifest.json").read_text())["llm"]["shards"]
    assert info["n"] == 2 and info["dir"] == "tp2" and info["all_sums"] == 4  # attention + MLP, 2 layers
    split = info["split"]
    for proj in ("q_proj", "k_proj", "v_proj"):  # all-to-sharded: output rows, biases too ([axis, blocks])
        assert split[f"model.layers.0.self_attn.{proj}.weight"] == [0, 1]
        assert split[f"model.layers.0.self_attn.{proj}.bias"] == [0, 1]
    assert split["model.layers.1.self_attn.o_proj.weight"] == [1, 1]  # sharded-to-all: input columns
    assert split["model.layers.1.mlp.down_proj.weight"] == [1, 1]
    assert split["model.layers.1.mlp.gate_proj.weight"] == [0, 1] and split["model.layers.1.mlp.up_proj.weight"] == [0, 1]
    assert not any("embed" in k or "norm" in k or "lm_head" in k for k in split)  # replicated
    code = (out / "tp2" / "model.py").read_text()
    assert code.count("mx.distributed.all_sum(") == 2  # one class per module type: attention, MLP
    assert "nn.Linear(64, 32)" in code and "nn.Linear(64, 16)" in code  # 2 of 4 query heads, 1 of 2 KV heads


def test_two_processes_give_the_single_process_tokens(compiled):
    _, out = compiled
    want = list(load_llm(out).stream(PROMPT, max_tokens=16, stop_at_eos=False))
    assert len(set(want)) > 5
    r = subprocess.run([sys.executable, "-m", "fx2mlx", "generate", str(out), "--prompt-ids",
                        ",".join(map(str, PROMPT)), "--max-tokens", "16", "--ignore-eos", "--shards", "2", "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])["tokens"]
    assert got == want
    assert "on 2 processes" in r.stderr


def test_rank_weights_are_slices_that_sum_back(compiled):
    import mlx.core as mx
    import numpy as np

    from fx2mlx.llm.shard import rank_weights

    _, out = compiled
    info = json.loads((out / "manifest.json").read_text())["llm"]["shards"]
    full = mx.load(str(out / "weights.safetensors"))
    fused = dict(info["split"], **{"model.layers.0.mlp.gate_proj.weight": [0, 2]})  # as if [gate; up] were fused
    r0, r1 = (rank_weights(out, dict(info, split=fused, divide=["model.norm.weight"]), r, 2) for r in (0, 1))
    name = "model.layers.0.self_attn.o_proj.weight"
    np.testing.assert_array_equal(np.concatenate([r0[name], r1[name]], axis=1), np.array(full[name]))
    name = "model.layers.0.self_attn.q_proj.bias"
    np.testing.assert_array_equal(np.concatenate([r0[name], r1[name]], axis=0), np.array(full[name]))
    np.testing.assert_array_equal(np.array(r0["model.norm.weight"]) * 2, np.array(full["model.norm.weight"]))
    g, q = np.array(full["model.layers.0.mlp.gate_proj.weight"]), 128 // 4  # 2 blocks of 64 rows: 32 per rank each
    np.testing.assert_array_equal(np.array(r1["model.layers.0.mlp.gate_proj.weight"]),
                                  np.concatenate([g[q:2 * q], g[64 + q:64 + 2 * q]]))


def test_unsupported_shardings_are_refused(tmp_path):
    save_model(config("qwen2"), tmp_path / "dense")
    with pytest.raises(SourceError, match="does not split into 3"):
        compile_llm(tmp_path / "dense", tmp_path / "o1", shards=3)
    with pytest.raises(SourceError, match="--quantize"):
        compile_llm(tmp_path / "dense", tmp_path / "o2", shards=2, quantize=8)
    with pytest.raises(SourceError, match="processes >= 2"):
        compile_llm(tmp_path / "dense", tmp_path / "o3", shards=1)
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o3").exists()


@pytest.mark.slow
def test_mixture_of_experts_splits_every_expert(tmp_path):
    """Mixtral: each rank keeps every expert at half width: the stacked gate_up_proj is split per half
    (gate and up, 2 blocks), down_proj by input columns; one all_sum after the experts, routers whole."""
    from fx2mlx.llm.shard import launch

    save_model(config("mixtral", initializer_range=0.2), tmp_path / "hf")
    compile_llm(tmp_path / "hf", tmp_path / "out", shards=2)
    info = json.loads((tmp_path / "out" / "manifest.json").read_text())["llm"]["shards"]
    assert info["split"]["model.layers.0.mlp.experts.gate_up_proj"] == [1, 2]
    assert info["split"]["model.layers.0.mlp.experts.down_proj"] == [2, 1]
    assert "model.layers.0.mlp.gate.weight" not in info["split"] and info["all_sums"] == 4
    want = list(load_llm(tmp_path / "out").stream(PROMPT, max_tokens=16, stop_at_eos=False))
    assert len(set(want)) > 5
    assert launch(tmp_path / "out", 2, PROMPT, max_tokens=16, ignore_eos=True) == want
