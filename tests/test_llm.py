"""Decoder LLMs compiled with a KV cache: greedy tokens equal HF generate, cached decode equals the full
forward, the CLI streams tokens, quantized linears stay close to float.

Tiny random-weight Llama (GQA), Qwen2 (q/k/v biases, tied embeddings) and Mistral (sliding window 16,
shorter than the 70 positions generated) saved with save_pretrained: the real loading path.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fx2mlx.llm import load_llm
from fx2mlx.recipes.causal_lm import compile_llm
from fx2mlx.llm.testing import config, save_model, save_tokenizer

PROMPT = [5, 17, 99, 3, 42, 7]
FAMILIES = ("llama", "qwen2", "mistral")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """family -> (HF dir, compiled dir), compiled once per test module."""
    out = {}
    for fam in FAMILIES:
        d = tmp_path_factory.mktemp(fam)
        save_model(config(fam, initializer_range=0.1), d / "hf")
        compile_llm(d / "hf", d / "out")
        out[fam] = (d / "hf", d / "out")
    return out


def _hf(folder):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(folder)).eval()


@pytest.mark.parametrize("family", FAMILIES)
def test_greedy_tokens_equal_hf_generate(compiled, family):
    src, out = compiled[family]
    ours = list(load_llm(out).stream(PROMPT, max_tokens=64, stop_at_eos=False))
    hf = _hf(src)
    hf.generation_config.eos_token_id = None  # 64 tokens either way (min_new_tokens would mask EOS instead)
    with torch.no_grad():
        ref = hf.generate(torch.tensor([PROMPT]), max_new_tokens=64, do_sample=False, pad_token_id=0)
    ref = ref[0, len(PROMPT):].tolist()
    assert len(set(ref)) > 3, "the random model should not repeat one token"
    assert ours == ref


def test_generated_code_uses_fast_kernels_and_a_cache(compiled):
    code = (compiled["llama"][1] / "model.py").read_text()
    assert "def __call__(self, input_ids, cache=None):" in code
    assert code.count("mx.fast.rms_norm(") == 1 and code.count("mx.fast.rope(") == 2  # one shared class
    assert "kv_attention(" in code and "class KVCache" in code
    assert "mx.cos(" not in code and "mx.rsqrt(" not in code and "broadcast_to" not in code  # no repeat_kv
    assert "LlamaDecoderLayer() for _ in range(2)" in code
    assert "window=16" in (compiled["mistral"][1] / "model.py").read_text()
    qwen = (compiled["qwen2"][1] / "model.py").read_text()
    assert "TIED = {'lm_head.weight': 'model.embed_tokens.weight'}" in qwen or "'model.embed_tokens.weight': 'lm_head.weight'" in qwen


@pytest.mark.parametrize("family", ("llama", "mistral"))
def test_cached_decode_equals_full_forward(compiled, family):
    import mlx.core as mx

    src, out = compiled[family]
    model = load_llm(out).model
    ids = mx.array([list(range(3, 43))])  # 40 positions: past Mistral's window of 16
    full = np.array(model(ids)["logits"])
    cache = []
    parts = [np.array(model(ids[:, :13], cache=cache)["logits"])]
    parts += [np.array(model(ids[:, i:i + 1], cache=cache)["logits"]) for i in range(13, 40)]
    assert cache[0].offset == 40 and len(cache) == 2
    np.testing.assert_allclose(np.concatenate(parts, axis=1), full, atol=1e-4)
    with torch.no_grad():
        ref = _hf(src)(torch.tensor(np.array(ids).astype("int64"))).logits.numpy()
    np.testing.assert_allclose(full, ref, atol=1e-4)


def test_kv_cache_grows_in_steps_without_copying_everything():
    import mlx.core as mx

    from fx2mlx.runtime.kv_cache import KVCache

    c = KVCache()
    k = mx.ones((1, 2, 3, 4))
    keys, _ = c.update_and_fetch(k, k)
    buf = c.keys
    assert keys.shape == (1, 2, 3, 4) and buf.shape[2] == KVCache.step
    for _ in range(10):
        keys, _ = c.update_and_fetch(k[:, :, :1], k[:, :, :1])
    assert c.keys is buf and keys.shape[2] == 13  # written in place, same buffer
    c.update_and_fetch(mx.ones((1, 2, 300, 4)), mx.ones((1, 2, 300, 4)))
    assert c.offset == 313 and c.keys.shape[2] == 13 + 2 * KVCache.step  # grown by whole steps


def test_cli_compile_and_generate(compiled, tmp_path, capsys):
    from fx2mlx.cli import main

    save_model(config("llama", initializer_range=0.1), tmp_path / "hf")
    save_tokenizer(tmp_path / "hf")
    assert main(["compile", str(tmp_path / "hf"), "-o", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "tokenizer.json").is_file()
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["llm"]["cache_sites"] == 2
    capsys.readouterr()
    assert main(["generate", str(tmp_path / "out"), "--prompt", "Hello world", "--max-tokens", "8",
                 "--temp", "0.8", "--top-p", "0.9", "--seed", "1"]) == 0
    assert capsys.readouterr().out.strip()  # text
    out = str(compiled["llama"][1])  # no tokenizer: ids
    assert main(["generate", out, "--prompt-ids", ",".join(map(str, PROMPT)), "--max-tokens", "8", "--ignore-eos"]) == 0
    ids = [int(x) for x in capsys.readouterr().out.strip().split(",")]
    assert ids == list(load_llm(out).stream(PROMPT, max_tokens=8, stop_at_eos=False))
    assert main(["generate", out, "--prompt-ids", "x,y"]) != 0


def test_sampling_top_p_keeps_the_nucleus():
    import mlx.core as mx

    from fx2mlx.runtime.sampling import sample_token, top_p_filter

    logits = mx.log(mx.array([[0.5, 0.3, 0.15, 0.05]]))
    kept = np.isfinite(np.array(top_p_filter(logits, 0.7)))
    assert kept.tolist() == [[True, True, False, False]]
    assert sample_token(logits).tolist() == [0]
    mx.random.seed(0)
    draws = {int(sample_token(logits, temp=1.0, top_p=0.7)[0]) for _ in range(50)}
    assert draws == {0, 1}


@pytest.mark.parametrize("bits", (8, 4))
def test_quantized_linears(compiled, tmp_path, bits):
    import mlx.core as mx

    from fx2mlx.llm.quality import compare_models

    src, out = compiled["llama"]
    compile_llm(src, tmp_path / "q", quantize=bits, group_size=32)
    code = (tmp_path / "q" / "model.py").read_text()
    assert code.count("mx.quantized_matmul(") >= 1 and f"bits={bits}" in code
    weights = mx.load(str(tmp_path / "q" / "weights.safetensors"))
    assert weights["model.layers.0.self_attn.q_proj.weight"].dtype == mx.uint32
    assert "model.layers.0.self_attn.q_proj.scales" in weights
    report = compare_models(out, tmp_path / "q", prompts=[PROMPT, [9, 8, 7, 6, 5, 4, 3, 2]])
    assert report["kl"] < (0.01 if bits == 8 else 0.2)
    assert report["agreement"] >= (0.9 if bits == 8 else 0.5)
