"""Readability of the emitted model.py (names from forward signatures, loops, mlx.nn layers, the
weight loader) and modules with `_`-prefixed attributes (which MLX's `parameters()` would skip)."""
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

SNAP = ROOT / "tests" / "snapshots"


def _class(code: str, name: str) -> str:
    m = re.search(rf"^class {name}\(nn\.Module\):\n(.*?)(?=^\S)", code, re.S | re.M)
    assert m, f"no class {name}"
    return m.group(0)


def test_minilm_reads_like_mlx_lm():
    code = (SNAP / "minilm.model.py").read_text()
    layer = _class(code, "BertLayer")
    assert "def __call__(self, hidden_states, " in layer
    assert not re.search(r"\bx_\d\b", layer)
    assert "attention_out = self.attention(hidden_states, " in layer
    assert "for layer in self.layer:\n            hidden_states = layer(hidden_states, " in _class(code, "BertEncoder")
    assert "self.dense = nn.Linear(384, 1536)" in code and "nn.LayerNorm(384, eps=1e-12)" in code
    assert "nn.Embedding(30522, 384)" in code
    assert "class Linear" not in code and "class LayerNorm" not in code and "class Embedding" not in code
    assert "def load_weights(" in code and code.count("def load(") == 1 and "_assign" not in code
    assert "def __call__(self, hidden_states, input_tensor):" in _class(code, "BertSelfOutput")


def test_tiny_llama_reads_like_mlx_lm():
    code = (SNAP / "tiny_llama.model.py").read_text()
    assert "/tmp" not in code.splitlines()[0]
    model = _class(code, "LlamaModel")
    assert "hidden_states = self.embed_tokens(input_ids)" in model
    assert re.search(r"for i, layer in enumerate\(self\.layers\):\n\s+hidden_states = layer\(hidden_states, .*"
                     r"cache_entry\(cache, i\)\)", model)
    attn = _class(code, "LlamaAttention")
    # read locally, not passed down from the root; the batch is dynamic too (batched generation)
    assert "batch, seq = hidden_states.shape[0], hidden_states.shape[1]" in attn
    assert "sym_size" not in code and "nn.Linear(64, 32, bias=False)" in code


class Block(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self._conv = torch.nn.Linear(c, c)
        self._bn0 = torch.nn.LayerNorm(c)
        self._scale = torch.nn.Parameter(torch.randn(c))

    def forward(self, inputs):
        return self._bn0(self._conv(inputs)) * self._scale + inputs


class Underscored(torch.nn.Module):
    """EfficientNet-style `_blocks`, `_bn0` attributes."""

    def __init__(self, c=8):
        super().__init__()
        self._stem = torch.nn.Linear(4, c, bias=False)
        self._blocks = torch.nn.ModuleList([Block(c) for _ in range(3)])
        self.register_buffer("_offset", torch.randn(c))

    def forward(self, x):
        h = self._stem(x)
        for b in self._blocks:
            h = b(h)
        return h + self._offset


def test_underscore_attributes_load_and_match(tmp_path):
    import fx2mlx

    torch.manual_seed(0)
    module = Underscored().eval()
    x = torch.randn(2, 5, 4)
    fx2mlx.convert(module, (x,), out_dir=tmp_path / "out")
    code = (tmp_path / "out" / "model.py").read_text()
    assert "self.blocks = [Block() for _ in range(3)]" in code and "self._" not in code
    assert "for block in self.blocks:" in code
    from safetensors import safe_open

    with safe_open(str(tmp_path / "out" / "weights.safetensors"), "np") as f:
        assert "_blocks.0._bn0.weight" in set(f.keys())  # stored under the state_dict names
    got = np.array(fx2mlx.load(tmp_path / "out")(x))  # load_weights maps the names
    with torch.no_grad():
        want = module(x).numpy()
    assert np.abs(got - want).max() <= 1e-5


def test_load_reports_mismatched_weights(tmp_path):
    import mlx.core as mx

    import fx2mlx
    from fx2mlx.api import load_module

    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU()).eval()
    fx2mlx.convert(module, (torch.randn(2, 3),), out_dir=tmp_path / "out")
    lib = load_module(tmp_path / "out" / "model.py")
    w = dict(mx.load(str(tmp_path / "out" / "weights.safetensors")))
    mx.eval(list(w.values()))  # read now: the file is rewritten below
    for change, msg in ((lambda d: d.pop("0.bias"), "missing"), (lambda d: d.update(extra=mx.zeros(1)), "unexpected"),
                        (lambda d: d.update({"0.weight": mx.zeros((4, 4))}), "shape")):
        d = dict(w)
        change(d)
        mx.save_safetensors(str(tmp_path / "out" / "weights.safetensors"), d)
        with pytest.raises(ValueError, match=msg):
            lib.load(tmp_path / "out")


def test_underscore_attributes_are_checked_layer_by_layer():
    """The golden harness finds renamed `_x` modules under their PyTorch paths (every layer compared)."""
    from fx2mlx.golden import assert_matches

    torch.manual_seed(0)
    report = assert_matches(Underscored().eval(), (torch.randn(2, 5, 4),))
    paths = {layer["path"] for layer in report["layers"]}
    assert {"_blocks.0", "_blocks.2._bn0"} <= paths, sorted(paths)
    assert all("no module" not in str(layer) for layer in report["layers"])
