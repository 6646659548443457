"""fx2mlx.runtime.rnn against torch.nn.LSTM / nn.GRU with random weights.

Tolerance 1e-5 (float32): both sides compute the same recurrences in float32 (eps 1.2e-7); results
differ only by summation order in the matmuls and bias adds. Gates pass through sigmoid/tanh, so the
per-step rounding (~1e-7) stays bounded over a few steps and layers; 1e-5 leaves ~30x headroom over the
measured worst case (~3e-7) while still catching any wrong gate order, bias or direction (errors ~1e-1).
"""

import ast
import itertools
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
import torch

from fx2mlx.runtime.rnn import gru, lstm

ATOL = 1e-5
INPUT_SIZE, HIDDEN, BATCH, STEPS = 5, 7, 3, 6
CONFIGS = list(itertools.product([1, 2], [False, True], [False, True], [False, True], [False, True]))
CONFIG_IDS = [f"L{n}-bi{int(b)}-bf{int(f)}-h0{int(i)}-bias{int(s)}" for n, b, f, i, s in CONFIGS]


@pytest.fixture(autouse=True, scope="module")
def _torch_single_thread():
    """With mlx.core imported, torch's 2-thread CPU LSTM/GRU intermittently takes ~0.45 s per call
    (measured here on a 2-core machine; 0.6 ms without mlx or with 1 thread). Run the reference single-threaded."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _mx(t):
    return mx.array(t.detach().numpy())


def _check(got, ref):
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        assert tuple(g.shape) == tuple(r.shape)
        np.testing.assert_allclose(np.array(g), r.detach().numpy(), rtol=0, atol=ATOL)


def _inputs(num_layers, bidirectional, batch_first):
    x = torch.randn(BATCH, STEPS, INPUT_SIZE) if batch_first else torch.randn(STEPS, BATCH, INPUT_SIZE)
    h0 = torch.randn(num_layers * (2 if bidirectional else 1), BATCH, HIDDEN)
    return x, h0, torch.randn_like(h0)


@pytest.mark.parametrize("num_layers,bidirectional,batch_first,with_state,bias", CONFIGS, ids=CONFIG_IDS)
def test_lstm_matches_torch(num_layers, bidirectional, batch_first, with_state, bias):
    torch.manual_seed(0)
    m = torch.nn.LSTM(INPUT_SIZE, HIDDEN, num_layers, bias=bias, batch_first=batch_first, bidirectional=bidirectional)
    x, h0, c0 = _inputs(num_layers, bidirectional, batch_first)
    with torch.no_grad():
        out, (h_n, c_n) = m(x, (h0, c0)) if with_state else m(x)
    hx = [_mx(h0), _mx(c0)] if with_state else []
    got = lstm(_mx(x), hx, [_mx(w) for w in m._flat_weights], bias, num_layers, bidirectional, batch_first)
    _check(got, (out, h_n, c_n))


@pytest.mark.parametrize("num_layers,bidirectional,batch_first,with_state,bias", CONFIGS, ids=CONFIG_IDS)
def test_gru_matches_torch(num_layers, bidirectional, batch_first, with_state, bias):
    torch.manual_seed(0)
    m = torch.nn.GRU(INPUT_SIZE, HIDDEN, num_layers, bias=bias, batch_first=batch_first, bidirectional=bidirectional)
    x, h0, _ = _inputs(num_layers, bidirectional, batch_first)
    with torch.no_grad():
        out, h_n = m(x, h0) if with_state else m(x)
    hx = _mx(h0) if with_state else None
    got = gru(_mx(x), hx, [_mx(w) for w in m._flat_weights], bias, num_layers, bidirectional, batch_first)
    _check(got, (out, h_n))


def test_matches_aten_ops_directly():
    torch.manual_seed(1)
    x, h0, c0 = _inputs(2, True, False)
    m = torch.nn.LSTM(INPUT_SIZE, HIDDEN, 2, bidirectional=True)
    ref = torch.ops.aten.lstm.input(x, [h0, c0], m._flat_weights, True, 2, 0.0, False, True, False)
    _check(lstm(_mx(x), [_mx(h0), _mx(c0)], [_mx(w) for w in m._flat_weights], True, 2, True, False), ref)
    g = torch.nn.GRU(INPUT_SIZE, HIDDEN, 2, bidirectional=True)
    ref = torch.ops.aten.gru.input(x, h0, g._flat_weights, True, 2, 0.0, False, True, False)
    _check(gru(_mx(x), _mx(h0), [_mx(w) for w in g._flat_weights], True, 2, True, False), ref)


def _unbatched_inputs():
    torch.manual_seed(2)
    return torch.randn(STEPS, INPUT_SIZE), torch.randn(4, HIDDEN), torch.randn(4, HIDDEN)


@pytest.mark.parametrize("with_state", [False, True])
def test_lstm_unbatched_input(with_state):
    x, h0, c0 = _unbatched_inputs()
    m = torch.nn.LSTM(INPUT_SIZE, HIDDEN, 2, bidirectional=True)
    with torch.no_grad():
        out, (h_n, c_n) = m(x, (h0, c0)) if with_state else m(x)
    hx = [_mx(h0), _mx(c0)] if with_state else []
    _check(lstm(_mx(x), hx, [_mx(w) for w in m._flat_weights], True, 2, True, False), (out, h_n, c_n))


@pytest.mark.parametrize("with_state", [False, True])
def test_gru_unbatched_input(with_state):
    x, h0, _ = _unbatched_inputs()
    m = torch.nn.GRU(INPUT_SIZE, HIDDEN, 2, bidirectional=True)
    with torch.no_grad():
        out, h_n = m(x, h0) if with_state else m(x)
    hx = _mx(h0) if with_state else None
    _check(gru(_mx(x), hx, [_mx(w) for w in m._flat_weights], True, 2, True, False), (out, h_n))


def test_longer_sequence_stays_within_tolerance():
    torch.manual_seed(3)
    x = torch.randn(2, 200, INPUT_SIZE)
    m = torch.nn.LSTM(INPUT_SIZE, 16, 2, batch_first=True, bidirectional=True)
    with torch.no_grad():
        out, (h_n, c_n) = m(x)
    _check(lstm(_mx(x), [], [_mx(w) for w in m._flat_weights], True, 2, True, True), (out, h_n, c_n))


@pytest.mark.parametrize("bias", [False, True])
def test_lstm_projections_raise(bias):
    m = torch.nn.LSTM(INPUT_SIZE, HIDDEN, proj_size=3, bias=bias)
    x = mx.zeros((STEPS, BATCH, INPUT_SIZE))
    with pytest.raises(NotImplementedError, match="proj"):
        lstm(x, [], [_mx(w) for w in m._flat_weights], bias, 1, False, False)


def test_runtime_file_is_vendorable():
    """Only the allowed imports, and module level holds just a docstring, imports and defs."""
    path = Path(__file__).resolve().parents[1] / "fx2mlx" / "runtime" / "rnn.py"
    assert len(path.read_text().splitlines()) < 250
    allowed = {"import math", "import mlx.core as mx", "import mlx.nn as nn"}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            assert ast.unparse(node) in allowed
        else:
            is_docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            assert is_docstring or isinstance(node, (ast.FunctionDef, ast.ClassDef)), ast.unparse(node)
