"""Emitted programs run their forward under mx.compile by default (model.py's `load(compile=True)`,
`fx2mlx.load(OUT, compile=...)`): compiled and uncompiled outputs agree, at several input shapes (one
trace per shape); graphs that draw random numbers stay uncompiled (decided at emission), graphs that
evaluate arrays for data-dependent sizes fall back when their first trace fails (runtime/compiled.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import fx2mlx
from zoo import bert_tiny, cnn


def _leaves(v):
    if isinstance(v, dict):
        return [x for k in sorted(v) for x in _leaves(v[k])]
    if isinstance(v, (list, tuple)):
        return [x for i in v for x in _leaves(i)]
    return [v]


def _agree(a, b, atol=1e-5):
    import mlx.core as mx

    la, lb = _leaves(a), _leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        assert isinstance(x, mx.array) and x.shape == y.shape and x.dtype == y.dtype
        assert np.abs(np.array(x.astype(mx.float32)) - np.array(y.astype(mx.float32))).max() <= atol


def test_bert_compiled_matches_uncompiled_at_two_shapes():
    module, args, kwargs = bert_tiny()
    compiled = fx2mlx.convert(module, args, kwargs)
    assert type(compiled.model).__name__ == "CompiledForward" and compiled.module.COMPILE is True
    eager = fx2mlx.load(compiled.out_dir, compile=False)
    assert type(eager.model).__name__ == "BertModel"
    rng = np.random.default_rng(0)
    for batch, seq in [(2, 8), (3, 13), (2, 8)]:
        ids = rng.integers(0, 128, (batch, seq)).astype(np.int64)
        mask = np.ones((batch, seq), np.int64)
        mask[0, seq - 3:] = 0
        types = np.zeros((batch, seq), np.int64)
        got = compiled(ids, mask, types)
        _agree(got, eager(ids, mask, types))
        with torch.no_grad():
            ref = module(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), token_type_ids=torch.tensor(types))
        assert np.abs(np.array(got["last_hidden_state"]) - ref.last_hidden_state.numpy()).max() < 1e-4
    # parameters are inputs of the compiled graph, not constants: an update is seen by the next call
    import mlx.core as mx

    inner = compiled.model.model
    inner.pooler.dense.update({"bias": inner.pooler.dense.bias + 1.0})
    eager.model.pooler.dense.update({"bias": eager.model.pooler.dense.bias + 1.0})
    _agree(compiled(ids, mask, types), eager(ids, mask, types))
    # load(dtype=...) casts before compiling
    half = compiled.module.load(compiled.dir, dtype=mx.bfloat16)
    out = half(mx.array(ids), mx.array(mask), mx.array(types))
    assert out["last_hidden_state"].dtype == mx.bfloat16


def test_cnn_compiled_matches_uncompiled_at_two_shapes():
    module, (x,) = cnn()
    compiled = fx2mlx.convert(module, (x,))
    eager = fx2mlx.load(compiled.out_dir, compile=False)
    assert type(compiled.model).__name__ == "CompiledForward"
    for shape in [(2, 3, 16, 16), (5, 3, 16, 16), (2, 3, 16, 16)]:
        xi = torch.randn(*shape)
        got = compiled(xi)
        _agree(got, eager(xi))
        with torch.no_grad():
            assert np.abs(np.array(got) - module(xi).numpy()).max() < 1e-4


class Noisy(torch.nn.Module):
    def forward(self, x):
        return x + torch.rand_like(x)


def test_random_graph_stays_uncompiled():
    """mx.compile would freeze the random keys (every call the same numbers): decided at emission."""
    import mlx.core as mx

    compiled = fx2mlx.convert(Noisy(), (torch.zeros(3, 4),))
    assert compiled.module.COMPILE is False and "CompiledForward" not in (compiled.dir / "model.py").read_text()
    assert type(compiled.model).__name__ == "Noisy"
    a, b = compiled(np.zeros((3, 4), np.float32)), compiled(np.zeros((3, 4), np.float32))
    assert not mx.array_equal(a, b)
    assert compiled(np.zeros((5, 2), np.float32)).shape == (5, 2)


class Positives(torch.nn.Module):
    def forward(self, x):
        return x[x > 0] * 2


def test_data_dependent_graph_falls_back():
    """x[x > 0] evaluates an array to learn its size: mx.compile raises while tracing, and the model runs
    uncompiled from then on, with the right result."""
    compiled = fx2mlx.convert(Positives(), (torch.tensor([1.0, -2.0, 3.0, 0.5]),))
    x = np.array([-1.0, 2.0, -3.0, 4.0, 5.0], np.float32)
    got = compiled(x)
    assert np.array(got).tolist() == [4.0, 8.0, 10.0]
    assert compiled.model.compiled is None  # fell back, once for all
    assert np.array(compiled(x[:2])).tolist() == [4.0]


def test_golden_harness_runs_uncompiled(tmp_path):
    from fx2mlx.golden.mlx_side import open_output

    module, (x,) = cnn()
    compiled = fx2mlx.convert(module, (x,), out_dir=tmp_path / "out")
    opened = open_output(compiled.dir)
    assert type(opened.model).__name__ != "CompiledForward"


@pytest.mark.parametrize("flag", [True, False])
def test_program_driver_compile_flag(tmp_path, flag):
    """The vendored driver (OUT/program.py) passes compile= to every graph."""
    import importlib.util

    module, (x,) = cnn()
    fx2mlx.convert(module, (x,), out_dir=tmp_path / "out")
    spec = importlib.util.spec_from_file_location(f"prog_{flag}", tmp_path / "out" / "program.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    prog = mod.load(tmp_path / "out", compile=flag)
    assert (type(prog.graphs["model"]).__name__ == "CompiledForward") is flag
