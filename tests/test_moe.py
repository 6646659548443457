"""Mixture of experts: transformers' expert dispatch compiled to gathered matmuls (fx2mlx.compiler.experts).

Tiny random-weight Mixtral (4 experts, top-2, renormalised), Qwen2-MoE (4 experts top-2, not
renormalised, plus a sigmoid-gated shared expert) and Qwen3-MoE (8 experts top-2, q/k norms), built
from transformers configs and saved with save_pretrained, compiled by the causal-LM recipe. The
reference is HF's own model as a user runs it (its default "grouped_mm" experts path), float32.

Tolerances: logits within 1e-4 absolute of HF on values of magnitude ~3 (float32 round-off of two
layers measures ~2e-6 here; a wrong expert for one token moves its logits by ~1e-1), and greedy tokens
exactly equal for 16 new tokens.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fx2mlx.llm import load_llm
from fx2mlx.llm.testing import config, save_model
from fx2mlx.recipes.causal_lm import compile_llm

FAMILIES = ("mixtral", "qwen2_moe", "qwen3_moe")
PROMPT = [5, 17, 99, 3, 42, 7, 120, 64]
NEW = 16


class _Compiled(dict):
    """family -> (HF dir, compiled dir), each compiled on first use (a compile takes ~10 s here)."""

    def __init__(self, factory):
        super().__init__()
        self.factory = factory

    def __missing__(self, fam):
        d = self.factory.mktemp(fam)
        # initializer_range 0.2: routing and greedy tokens vary (at 0.1 tiny Mixtral repeats one token)
        save_model(config(fam, initializer_range=0.2), d / "hf")
        compile_llm(d / "hf", d / "out")
        self[fam] = (d / "hf", d / "out")
        return self[fam]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    return _Compiled(tmp_path_factory)


def _hf(folder):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(folder)).eval()


@pytest.mark.parametrize("family", [pytest.param(f, marks=() if f == "mixtral" else pytest.mark.slow)
                                    for f in FAMILIES])  # the fast run compiles one family
def test_logits_and_greedy_tokens_equal_hf(compiled, family):
    import mlx.core as mx

    src, out = compiled[family]
    hf = _hf(src)
    assert hf.config._experts_implementation == "grouped_mm"  # the reference runs HF's default dispatch
    routed = []
    hook = hf.model.layers[0].mlp.gate.register_forward_hook(lambda m, i, o: routed.append(o[-1]))
    with torch.no_grad():
        ref = hf(torch.tensor([PROMPT])).logits.numpy()
    hook.remove()
    assert len(torch.unique(routed[0])) >= 3, "the prompt should reach several experts"
    ours = np.array(load_llm(out).model(mx.array([PROMPT]))["logits"])
    assert np.abs(ref).max() > 1.0
    np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=0)
    long = [(7 * i + 3) % 256 for i in range(40)]  # 80 (token, expert) rows: the sorted prefill path
    with torch.no_grad():
        ref = hf(torch.tensor([long])).logits.numpy()
    np.testing.assert_allclose(np.array(load_llm(out).model(mx.array([long]))["logits"]), ref, atol=1e-4, rtol=0)

    hf.generation_config.eos_token_id = None
    with torch.no_grad():
        want = hf.generate(torch.tensor([PROMPT]), max_new_tokens=NEW, do_sample=False, pad_token_id=0)
    want = want[0, len(PROMPT):].tolist()
    assert len(set(want)) > 5, "the random model should not repeat one token"
    assert list(load_llm(out).stream(PROMPT, max_tokens=NEW, stop_at_eos=False)) == want


def test_emitted_code_is_gathered_and_static(compiled):
    import mlx.core as mx

    src, out = compiled["mixtral"]
    code = (out / "model.py").read_text()
    assert code.count("gather_linear(") >= 3  # the definition + gate_up and down of the one Experts class
    assert "def gather_linear(x, weight, indices):" in code and "mx.gather_mm(" in code
    modules = code[code.index("\nclass Mixtral"):]  # the model's classes (vendored runtime helpers above)
    for data_dependent in ("nonzero", "argwhere", "index_add", "histc", "tolist", ".item()", "sort(", "where("):
        assert data_dependent not in modules, data_dependent
    assert code.count("class MixtralExperts(") == 1 and "MixtralExperts_1" not in code  # one class per type
    w = mx.load(str(out / "weights.safetensors"))
    assert w["model.layers.1.mlp.experts.gate_up_proj"].shape == (4, 2 * 128, 64)  # (E, 2 * inter, hidden)
    assert w["model.layers.1.mlp.experts.down_proj"].shape == (4, 64, 128)
    assert not any(".experts.0." in k for k in w)
    manifest = json.loads((out / "manifest.json").read_text())
    ops = json.dumps(manifest)
    assert "fx2mlx.gather_linear.default" in ops


def test_one_decoder_layer_class(compiled):
    code = (compiled["mixtral"][1] / "model.py").read_text()
    assert "MixtralDecoderLayer() for _ in range(2)" in code


def test_capture_leaves_the_models_experts_implementation(compiled):
    from fx2mlx.compiler.hf import traceable_experts

    hf = _hf(compiled["mixtral"][0])
    with traceable_experts(hf):
        assert hf.config._experts_implementation == "batched_mm"
    assert hf.config._experts_implementation == "grouped_mm"


class _Gathered(torch.nn.Module):
    """transformers' batched_mm experts, both weight layouts: (E, out, in) and transposed (E, in, out)."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = torch.nn.Parameter(torch.randn(5, 12, 8, generator=g))  # (E, out, in)
        self.wt = torch.nn.Parameter(torch.randn(5, 8, 6, generator=g))  # (E, in, out)

    def forward(self, x, ids):
        a = torch.bmm(self.w[ids], x.unsqueeze(-1)).squeeze(-1)
        b = torch.bmm(x.unsqueeze(1), self.wt[ids]).squeeze(1)
        return a, b


def test_gathered_matmul_pattern_both_layouts(tmp_path):
    import fx2mlx

    x = torch.randn(7, 8)
    ids = torch.tensor([4, 0, 0, 2, 1, 4, 3])
    model = _Gathered().eval()
    compiled = fx2mlx.convert(model, (x, ids), out_dir=tmp_path / "out")
    code = (tmp_path / "out" / "model.py").read_text()
    assert "gather_linear(" in code and "gather_matmul(" in code and "bmm" not in code
    x2, ids2 = torch.randn(3, 8), torch.tensor([1, 1, 3])  # another row count: no size was frozen
    for xx, ii in ((x, ids), (x2, ids2)):
        with torch.no_grad():
            want = model(xx, ii)
        got = compiled(xx.numpy(), ii.numpy())
        for w, g in zip(want, got):
            assert w.abs().max() > 1.0
            np.testing.assert_allclose(np.array(g), w.numpy(), atol=1e-5, rtol=1e-5)


class _Grouped(torch.nn.Module):
    """transformers' grouped_mm dispatch: rows sorted by expert, offsets from histc + cumsum, then the
    `transformers::grouped_mm_fallback` custom op (what torch.export records for float32 experts)."""

    def __init__(self, experts: int = 4):
        super().__init__()
        self.experts = experts
        self.w = torch.nn.Parameter(torch.randn(experts, 8, 6, generator=torch.Generator().manual_seed(1)))

    def forward(self, x, ids):
        import transformers.integrations.moe  # noqa: F401  registers the custom op

        sorted_ids, perm = torch.sort(ids)
        counts = torch.histc(sorted_ids.float(), bins=self.experts, min=0, max=self.experts - 1)
        offs = torch.cumsum(counts, dim=0, dtype=torch.int32)
        y = torch.ops.transformers.grouped_mm_fallback(x[perm], self.w, offs)
        return y[torch.argsort(perm)]


def test_grouped_mm_custom_op_is_lowered(tmp_path):
    import fx2mlx

    model = _Grouped().eval()
    x, ids = torch.randn(9, 8), torch.tensor([3, 0, 3, 1, 1, 0, 3, 3, 0])  # expert 2 gets no row
    compiled = fx2mlx.convert(model, (x, ids), out_dir=tmp_path / "out")
    assert "grouped_matmul(" in (tmp_path / "out" / "model.py").read_text()
    x2, ids2 = torch.randn(4, 8), torch.tensor([2, 2, 1, 2])
    for xx, ii in ((x, ids), (x2, ids2)):
        with torch.no_grad():
            want = model(xx, ii).numpy()
        assert np.abs(want).max() > 1.0
        np.testing.assert_allclose(np.array(compiled(xx.numpy(), ii.numpy())), want, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("bits", (8, 4))
def test_quantized_experts(compiled, tmp_path, bits):
    """Greedy agreement and mean KL(float || quantized) over fx2mlx.llm.quality's 8 prompts x 32 teacher-forced
    positions, group size 32. Measured on this Qwen3-MoE (weights at initializer_range 0.2, so logits are
    peaked and a near tie in the router flips experts): 8 bits agreement 0.913, KL 0.020; 4 bits 0.428,
    KL 0.30 (tiny Mixtral at initializer_range 0.1: 0.977 / 1.4e-3 and 0.65 / 0.041). The bounds sit
    below the measurements; a wrong packing or a wrong scale layout gives agreement near chance (1/256)."""
    import mlx.core as mx

    from fx2mlx.llm.quality import compare_models

    src, out = compiled["qwen3_moe"]
    compile_llm(src, tmp_path / "q", quantize=bits, group_size=32)
    code = (tmp_path / "q" / "model.py").read_text()
    assert "mx.gather_qmm(" in code and f"bits={bits}" in code
    assert "bits=8)" in code  # the router keeps 8 bits at least
    w = mx.load(str(tmp_path / "q" / "weights.safetensors"))
    packed = w["model.layers.0.mlp.experts.gate_up_proj"]
    assert packed.dtype == mx.uint32 and packed.shape == (8, 128, 64 * bits // 32)
    assert w["model.layers.0.mlp.experts.gate_up_proj_scales"].shape == (8, 128, 2)
    report = compare_models(out, tmp_path / "q")
    assert report["kl"] < (0.05 if bits == 8 else 0.6)
    assert report["agreement"] >= (0.85 if bits == 8 else 0.3)


@pytest.mark.slow
def test_golden_check_per_layer(compiled):
    from fx2mlx.golden import check_output

    report = check_output(compiled["qwen2_moe"][1], quiet=True, plot=False)
    assert report["passed"]
    for m in report["modes"]:
        assert report["summary"][m]["failed_values"] == 0
    ops = {v["op"] for v in report["values"]}
    assert "fx2mlx.gather_linear.default" in ops  # the gathered matmuls are compared with PyTorch's values
    checked = {r["path"] for r in report["layers"]}
    assert {"model.layers.0.mlp.experts", "model.layers.0.mlp.gate", "model.layers.0.mlp.shared_expert"} <= checked


@pytest.mark.slow
def test_meta_device_compile_builds_stacked_experts_from_the_checkpoint(compiled, tmp_path):
    """A large checkpoint is captured on the meta device and its weights streamed from the files: the
    stacked experts (and Mixtral's block_sparse_moe -> mlp renaming) come from transformers' own
    checkpoint conversion (llm.hf_keys), equal to what transformers loads."""
    import mlx.core as mx

    src, out = compiled["mixtral"]
    from safetensors import safe_open

    with safe_open(str(src / "model.safetensors"), "np") as f:
        assert "model.layers.0.block_sparse_moe.experts.3.w2.weight" in f.keys()  # the released layout
    compile_llm(src, tmp_path / "meta", meta=True)
    a, b = mx.load(str(tmp_path / "meta" / "weights.safetensors")), mx.load(str(out / "weights.safetensors"))
    assert sorted(a) == sorted(b)
    for k in b:
        assert mx.array_equal(a[k], b[k]).item(), k


def test_gathered_matmuls_in_half_precision():
    """MLX 0.32's CPU gather_mm is float32-only: bfloat16/float16 experts compute in float32 there."""
    import mlx.core as mx

    from fx2mlx.runtime.experts import gather_linear

    mx.random.seed(0)
    w, x, ids = mx.random.normal((4, 12, 8)), mx.random.normal((5, 8)), mx.array([3, 0, 0, 2, 1])
    want = gather_linear(x, w, ids)
    for dt in (mx.bfloat16, mx.float16):
        got = gather_linear(x.astype(dt), w.astype(dt), ids)
        assert got.dtype == dt
        assert mx.abs(got.astype(mx.float32) - want).max().item() <= 2e-2 * mx.abs(want).max().item()


@pytest.mark.parametrize("rows", (5, 200))  # below and above the sorted (prefill) path's 64 rows
def test_gathered_matmul_equals_per_row_products(rows):
    import mlx.core as mx

    from fx2mlx.runtime.experts import gather_linear, gather_qlinear

    rng = np.random.default_rng(rows)
    w = rng.standard_normal((6, 12, 64)).astype(np.float32)
    x = rng.standard_normal((rows, 64)).astype(np.float32)
    ids = rng.integers(0, 6, rows)
    want = np.einsum("si,soi->so", x, w[ids])
    got = np.array(gather_linear(mx.array(x), mx.array(w), mx.array(ids)))
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-5)
    wq, s, b = mx.quantize(mx.array(w), group_size=32, bits=8)
    deq = np.array(mx.dequantize(wq, s, b, group_size=32, bits=8))
    got = np.array(gather_qlinear(mx.array(x), wq, s, b, mx.array(ids), group_size=32, bits=8))
    np.testing.assert_allclose(got, np.einsum("si,soi->so", x, deq[ids]), atol=1e-4, rtol=1e-5)


@pytest.mark.slow
def test_other_expert_layouts_gpt_oss(tmp_path):
    """GPT-OSS stores experts transposed (E, in, out) with biases and its own gate: captured through the
    same batched_mm dispatch it becomes gather_matmul. Its attention (sinks) has no KV-cache form yet, so
    the plain forward is compiled (recipe graph) and checked per layer against PyTorch."""
    import transformers

    from fx2mlx.golden import check_output
    from fx2mlx.recipes import Options, compile_source

    cfg = transformers.GptOssConfig(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                    num_attention_heads=4, num_key_value_heads=2, head_dim=16, num_local_experts=4,
                                    num_experts_per_tok=2, sliding_window=8, initializer_range=0.2,
                                    layer_types=["sliding_attention", "full_attention"])
    cfg.architectures = ["GptOssForCausalLM"]
    torch.manual_seed(0)
    transformers.GptOssForCausalLM(cfg).save_pretrained(str(tmp_path / "hf"))
    compile_source(str(tmp_path / "hf"), tmp_path / "out", Options(), recipe="graph")
    code = (tmp_path / "out" / "model.py").read_text()
    assert code.count("gather_matmul(") >= 3 and "bmm" not in code
    report = check_output(tmp_path / "out", quiet=True, plot=False)
    assert report["passed"] and report["summary"]["accumulated"]["failed_values"] == 0
