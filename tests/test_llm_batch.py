"""Batched generation from a compiled decoder LLM: prompts of different lengths in one left-padded batch.

Tiny random-weight Llama (GQA) and Qwen2 (q/k/v biases, tied embeddings) saved with save_pretrained. The
reference is HF `generate` run on each prompt ALONE (float32, greedy): our batch must give every row the
same tokens, including a row that stops early on its end-of-sequence token. To make that happen for real,
eos_token_id is set (in config.json, before compiling) to a token the model emits for one prompt.
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from fx2mlx.llm import load_llm
from fx2mlx.llm.testing import config, save_model, save_tokenizer
from fx2mlx.recipes.causal_lm import compile_llm

PROMPTS = [[5, 17, 99, 3, 42, 7], [9, 8], [11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21]]
EARLY = 1  # the row that finishes early on EOS
MAX = 20
FAMILIES = ("llama", "qwen2")


def _hf(folder):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(folder)).eval()


def _hf_alone(model, prompt, eos, max_new=MAX):
    """HF greedy generate on one prompt (no padding): the new tokens, up to and including EOS."""
    model.generation_config.eos_token_id = eos
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=max_new, do_sample=False, pad_token_id=0)
    return out[0, len(prompt):].tolist()


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """family -> (HF dir, compiled dir, eos id, HF tokens per prompt alone, the early row's EOS step)."""
    out = {}
    for fam in FAMILIES:
        d = tmp_path_factory.mktemp(fam)
        src = save_model(config(fam, initializer_range=0.1), d / "hf")
        hf = _hf(src)
        free = [_hf_alone(hf, p, None) for p in PROMPTS]
        # EOS := a token the early row emits for the first time at step >= 2, which the last row never emits
        stop = next(i for i, t in enumerate(free[EARLY]) if i >= 2 and t not in free[EARLY][:i] and t not in free[-1])
        eos = free[EARLY][stop]
        for name in ("config.json", "generation_config.json"):
            p = src / name
            if p.is_file():
                cfg = json.loads(p.read_text())
                cfg["eos_token_id"] = eos
                p.write_text(json.dumps(cfg))
        if fam == "qwen2":
            save_tokenizer(src)  # text prompts through the CLI
        compile_llm(src, d / "out")
        refs = [_hf_alone(hf, p, eos) for p in PROMPTS]
        out[fam] = (src, d / "out", eos, refs, stop)
    return out


@pytest.mark.parametrize("family", FAMILIES)
def test_batch_greedy_equals_hf_alone_per_row(compiled, family):
    src, out, eos, refs, stop = compiled[family]
    lm = load_llm(out)
    assert lm.eos_ids == (eos,)
    assert len(refs[EARLY]) == stop + 1 < MAX and refs[EARLY][-1] == eos  # HF stops that row early
    assert len(refs[-1]) == MAX  # and runs the last to max_new_tokens
    assert all(len(set(r)) > 2 for r in refs if len(r) == MAX), "the random model should not repeat one token"
    got = lm.generate(PROMPTS, max_tokens=MAX)
    assert got == refs
    steps = list(lm.stream_batch(PROMPTS, max_tokens=MAX))
    assert [s[EARLY] for s in steps[stop + 1:]] == [None] * (len(steps) - stop - 1)  # finished: no tokens
    assert len(steps) == max(map(len, refs))


@pytest.mark.parametrize("family", FAMILIES)
def test_padded_batch_logits_equal_each_prompt_alone(compiled, family):
    """Prefill and two decode steps of the padded batch: each row's logits equal HF's on that prompt
    alone (positions from the attention mask, padding keys masked). atol 1e-4: float32 through two
    layers with logits of magnitude ~1 (the cached-decode tests use the same bound)."""
    import mlx.core as mx

    from fx2mlx.runtime.generate import left_pad

    src, out, *_ = compiled[family]
    lm = load_llm(out)
    hf = _hf(src)
    ids, pads = left_pad(PROMPTS)
    assert pads == [5, 9, 0]
    cache = lm.make_cache(pads)
    extra = [[7, 200], [8, 3], [1, 1]]  # the tokens fed to row b at the two decode steps
    logits = [np.array(lm.model(ids, cache=cache)["logits"])[:, -1]]
    for t in range(2):
        step = mx.array([[row[t]] for row in extra], dtype=mx.int32)
        logits.append(np.array(lm.model(step, cache=cache)["logits"])[:, -1])
    for b, p in enumerate(PROMPTS):
        full = p + extra[b]
        with torch.no_grad():
            ref = hf(torch.tensor([full])).logits[0].numpy()
        assert np.abs(ref).max() > 0.1
        for t in range(3):
            np.testing.assert_allclose(logits[t][b], ref[len(p) - 1 + t], atol=1e-4)


def test_sampling_is_seeded_per_row(compiled):
    """Row b draws from its own key stream (seed + b): the same seed gives the same tokens; a row's tokens do
    not depend on the other prompts of the batch (checked: A with B, A with C, A alone as a batch of one, A
    through stream()); row 1 equals that prompt alone with seed + 1; other seeds give other tokens.
    (Exact equality holds because each row's logits are the same up to float rounding and the draws use
    the same Gumbel noise; a flip would need two candidates within ~1e-6 after perturbation.)"""
    _, out, *_ = compiled["llama"]
    lm = load_llm(out)
    a, b, c = PROMPTS[0], PROMPTS[2], [60, 61, 62, 63]
    kw = dict(max_tokens=12, temp=1.0, stop_at_eos=False)
    ab = lm.generate([a, b], seed=3, **kw)
    assert ab == lm.generate([a, b], seed=3, **kw)
    assert lm.generate([a, c], seed=3, **kw)[0] == ab[0] == lm.generate([a], seed=3, **kw)[0]
    assert list(lm.stream(a, seed=3, **kw)) == ab[0]
    assert lm.generate([b], seed=4, **kw)[0] == ab[1]
    assert lm.generate([a, b], seed=[3, 4], **kw) == ab
    assert lm.generate([a, b], seed=5, **kw) != ab
    assert len(set(ab[0])) > 3  # really sampled from a spread distribution
    greedy = lm.generate([a], max_tokens=12, stop_at_eos=False)[0]
    assert ab[0] != greedy


def test_cli_batch_and_vendored_driver(compiled, capsys):
    import importlib.util

    from fx2mlx.cli import main

    _, out, _, refs, _ = compiled["qwen2"]
    args = ["generate", str(out), "--max-tokens", str(MAX), "--json"]
    for p in PROMPTS:
        args += ["--prompt-ids", ",".join(map(str, p))]
    capsys.readouterr()
    assert main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert json.loads(lines[-1]) == {"tokens": refs}
    assert lines[EARLY] == f"[{EARLY}] " + load_llm(out).decode(refs[EARLY])  # text: OUT has a tokenizer
    spec = importlib.util.spec_from_file_location("qwen_program", out / "program.py")  # OUT/program.py alone
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    prog = mod.load(out)
    assert prog.generate(PROMPTS, max_tokens=MAX) == refs
    assert prog.generate(PROMPTS[0], max_tokens=MAX) == refs[0]
    texts = ["Hello world", "The quick brown fox jumps over the lazy dog."]
    assert main(["generate", str(out), "--prompt", texts[0], "--prompt", texts[1], "--max-tokens", "8", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    lm = load_llm(out)
    alone = [lm.generate(lm.encode(t), max_tokens=8) for t in texts]
    assert json.loads(lines[-1]) == {"tokens": alone}
    assert lines[:2] == [f"[{i}] {lm.decode(a)}" for i, a in enumerate(alone)]
    assert lm.generate(texts, max_tokens=8) == [lm.decode(a) for a in alone]


def test_batch_errors(compiled, tmp_path, capfd):
    from fx2mlx.cli import main

    _, out, *_ = compiled["llama"]
    lm = load_llm(out)
    with pytest.raises(ValueError, match="the prompt is empty"):
        lm.generate([[1, 2], []])
    with pytest.raises(ValueError, match="seed: one per prompt"):
        lm.generate([[1, 2], [3]], temp=1.0, seed=[1])
    with pytest.raises(ValueError, match="got a batch of 2 prompts"):
        list(lm.stream([[1, 2], [3, 4]]))
    old = tmp_path / "old"
    shutil.copytree(out, old)
    man = json.loads((old / "manifest.json").read_text())
    man["graphs"][man["entry"]]["inputs"][0]["shape"][0] = 1  # as compiled before batching
    man["llm"]["padded_batches"] = False
    (old / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ValueError, match="compiled with the batch fixed at 1"):
        load_llm(old).generate([[1, 2], [3, 4]])
    man["graphs"][man["entry"]]["inputs"][0]["shape"][0] = "batch"
    (old / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ValueError, match="prompts of different lengths"):
        load_llm(old).generate([[1, 2], [3]])
    assert load_llm(old).generate([[1, 2], [3, 4]], max_tokens=3, stop_at_eos=False) == \
        lm.generate([[1, 2], [3, 4]], max_tokens=3, stop_at_eos=False)  # equal lengths need no padding
    capfd.readouterr()
    assert main(["generate", str(out), "--prompt-ids", "1,2", "--prompt", "hi"]) != 0
    assert "pass exactly one of --prompt TEXT or --prompt-ids" in capfd.readouterr().err


@pytest.mark.slow
def test_sliding_window_batch_equals_hf_alone(tmp_path):
    """Mistral with a window of 16 over prompts of 3 and 11 tokens + 30 new: the padded rows' windows
    (buffer positions, padding masked) give HF's tokens for each prompt alone."""
    src = save_model(config("mistral", initializer_range=0.1), tmp_path / "hf")
    compile_llm(src, tmp_path / "out")
    prompts = [[4, 9, 33], PROMPTS[2]]
    hf = _hf(src)
    refs = [_hf_alone(hf, p, None, 30) for p in prompts]
    assert load_llm(tmp_path / "out").generate(prompts, max_tokens=30, stop_at_eos=False) == refs


@pytest.mark.slow
def test_quantized_batch_equals_quantized_alone(tmp_path):
    """--quantize 4 with a batch: the quantized linears take any batch; each row gives the tokens of the
    same quantized model run on that prompt alone (HF has no such model to compare with)."""
    src = save_model(config("llama", initializer_range=0.1), tmp_path / "hf")
    compile_llm(src, tmp_path / "q", quantize=4, group_size=32)
    lm = load_llm(tmp_path / "q")
    assert "mx.quantized_matmul(" in (tmp_path / "q" / "model.py").read_text()
    alone = [list(lm.stream(p, max_tokens=MAX, stop_at_eos=False)) for p in PROMPTS]
    assert all(len(set(a)) > 2 for a in alone)
    assert lm.generate(PROMPTS, max_tokens=MAX, stop_at_eos=False) == alone
