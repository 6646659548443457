"""Pattern passes: RMSNorm and rotate-half RoPE become mx.fast kernels in any compile; causal attention
becomes cache-aware attention only when asked (add_kv_cache), and refuses masks that are not causal."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fx2mlx.compiler.capture import capture
from fx2mlx.compiler.fusion import fuse_rms_norm
from fx2mlx.compiler.kvcache import add_kv_cache
from fx2mlx.compiler.passes import run_default_passes
from helpers import compile_and_compare


class _RMS(nn.Module):
    def __init__(self, weighted=True, power=2):
        super().__init__()
        self.weight = nn.Parameter(torch.rand(16) + 0.5) if weighted else None
        self.power = power

    def forward(self, x):
        y = x * torch.rsqrt(x.pow(self.power).mean(-1, keepdim=True) + 1e-5)
        return self.weight * y if self.weight is not None else y


def _targets(module, *args, **kwargs):
    program = run_default_passes(capture(module.eval(), args, kwargs).program)
    return [n.target for n in program.nodes]


@pytest.mark.parametrize("weighted", (True, False))
def test_rms_norm_fused_and_exact(weighted, tmp_path):
    torch.manual_seed(0)
    m, x = _RMS(weighted), torch.randn(2, 5, 16)
    assert _targets(m, x) == ["fx2mlx.rms_norm.default"]
    compiled, _ = compile_and_compare(m, (x,), atol=1e-5, out_dir=tmp_path / "o")
    assert "mx.fast.rms_norm(" in (tmp_path / "o" / "model.py").read_text()


def test_rms_norm_lookalike_is_left_alone():
    assert "fx2mlx.rms_norm.default" not in _targets(_RMS(power=3), torch.randn(2, 5, 16))


def test_llama_without_cache_fuses_norm_and_rope(tmp_path):
    """A plain compile (no KV cache) of a HF Llama: RMSNorm/RoPE fused, logits equal PyTorch's."""
    from fx2mlx.llm.testing import config
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(config("llama")).eval()
    ids = torch.randint(5, 250, (1, 7))
    compile_and_compare(model, (), {"input_ids": ids, "use_cache": False}, atol=1e-4, out_dir=tmp_path / "o")
    code = (tmp_path / "o" / "model.py").read_text()
    assert "mx.fast.rms_norm(" in code and "mx.fast.rope(" in code and "offset=0" in code
    assert "mx.cos(" not in code


class _Attn(nn.Module):
    def __init__(self, causal):
        super().__init__()
        self.qkv = nn.Linear(16, 48)
        self.causal = causal

    def forward(self, input_ids):
        x = torch.nn.functional.one_hot(input_ids, 16).float()
        q, k, v = self.qkv(x).view(1, -1, 3, 2, 8).permute(2, 0, 3, 1, 4)
        n = input_ids.shape[1]
        mask = torch.ones(n, n, dtype=torch.bool).tril() if self.causal == "mask" else \
            torch.ones(n, n, dtype=torch.bool).triu()
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def _dyn_capture(m):
    ids = torch.randint(0, 16, (1, 6))
    return capture(m.eval(), (ids,), {}, dynamic_shapes=({1: torch.export.Dim("seq", min=2, max=64)},))


def test_kv_cache_pass_checks_the_mask_by_evaluating_it():
    program = add_kv_cache(_dyn_capture(_Attn("mask")).program)
    assert [n.target for n in program.nodes].count("fx2mlx.kv_attention.default") == 1
    assert program.inputs[-1].name == "cache" and program.inputs[-1].type is None
    with pytest.raises(ValueError, match="not causal"):
        add_kv_cache(_dyn_capture(_Attn("anti")).program)


def test_fuse_rms_norm_is_idempotent():
    p = run_default_passes(capture(_RMS().eval(), (torch.randn(1, 3, 16),), {}).program)
    assert fuse_rms_norm(p) == p


def test_rope_in_matmul_form_is_fused(tmp_path, monkeypatch):
    """transformers 5.17 computes RoPE frequencies as inv_freq[None, :, None] @ positions[:, None, :]."""
    import mlx.core as mx
    import numpy as np
    import transformers.models.llama.modeling_llama as L

    from fx2mlx.llm import load_llm
    from fx2mlx.recipes.causal_lm import compile_llm
    from fx2mlx.llm.testing import config, save_model

    def forward(self, x, position_ids):
        inv = self.inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
        freqs = (inv @ position_ids[:, None, :].float()).transpose(1, 2)
        emb = torch.cat((freqs, freqs), dim=-1)
        return (emb.cos() * self.attention_scaling).to(x.dtype), (emb.sin() * self.attention_scaling).to(x.dtype)

    monkeypatch.setattr(L.LlamaRotaryEmbedding, "forward", forward)
    save_model(config("llama", initializer_range=0.1), tmp_path / "hf")
    compile_llm(tmp_path / "hf", tmp_path / "out")
    code = (tmp_path / "out" / "model.py").read_text()
    assert code.count("mx.fast.rope(") == 2 and "mx.cos(" not in code
    ids = list(range(3, 23))
    with torch.no_grad():
        ref = L.LlamaForCausalLM.from_pretrained(str(tmp_path / "hf")).eval()(torch.tensor([ids])).logits.numpy()
    cache = []
    model = load_llm(tmp_path / "out").model
    out = np.concatenate([np.array(model(mx.array([ids[:12]]), cache=cache)["logits"])] +
                         [np.array(model(mx.array([[t]]), cache=cache)["logits"]) for t in ids[12:]], axis=1)
    np.testing.assert_allclose(out, ref, atol=1e-4)
