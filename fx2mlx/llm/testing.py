"""Small random-weight decoder LLMs of real architectures, saved as Hugging Face directories (the path
a user's local checkpoint takes): for tests, the bench and the sharded-conversion check."""
from __future__ import annotations

from pathlib import Path

TINY = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=256)

# Llama-3.2-1B's shape (random weights): what bench/llm.py measures on the GPU.
LLAMA_3_2_1B = dict(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                    num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=131072,
                    rope_theta=500000.0, tie_word_embeddings=True, head_dim=64,
                    rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                                  "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})
# Llama-3-8B's shape: the meta-device compile check.
LLAMA_3_8B = dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                  num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=8192,
                  rope_theta=500000.0, tie_word_embeddings=False)


def config(family: str, **overrides):
    import transformers

    kw = dict(TINY)
    if family == "llama":
        kw.update(tie_word_embeddings=False)
        cls = transformers.LlamaConfig
    elif family == "qwen2":  # q/k/v biases, tied embeddings
        kw.update(tie_word_embeddings=True)
        cls = transformers.Qwen2Config
    elif family == "mistral":  # sliding-window attention, here smaller than a test's sequence
        kw.update(sliding_window=16, tie_word_embeddings=False)
        cls = transformers.MistralConfig
    elif family == "mixtral":  # mixture of experts: 4 experts, top-2, renormalised router weights
        kw.update(num_local_experts=4, num_experts_per_tok=2, tie_word_embeddings=False)
        cls = transformers.MixtralConfig
    elif family == "qwen2_moe":  # 4 experts top-2 (weights not renormalised) + a sigmoid-gated shared expert
        kw.update(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=64, shared_expert_intermediate_size=128,
                  decoder_sparse_step=1, tie_word_embeddings=False)
        cls = transformers.Qwen2MoeConfig
    elif family == "qwen3_moe":  # 8 experts top-2, renormalised, q/k norms
        kw.update(num_experts=8, num_experts_per_tok=2, moe_intermediate_size=64, decoder_sparse_step=1,
                  norm_topk_prob=True, tie_word_embeddings=False)
        cls = transformers.Qwen3MoeConfig
    else:
        raise ValueError(f"unknown family {family!r}")
    kw.update(overrides)
    return cls(**kw)


def save_model(cfg, folder: Path, *, seed: int = 0, dtype=None, max_shard_size=None, min_shard_bytes=None) -> Path:
    """A random-weight model of this config saved with save_pretrained; with min_shard_bytes, as
    safetensors shards of at least that size each (+ model.safetensors.index.json), the last one
    taking the remainder."""
    import torch
    import transformers

    torch.manual_seed(seed)
    cfg.architectures = [cfg.architectures[0] if cfg.architectures else _arch(cfg)]
    model = getattr(transformers, cfg.architectures[0])(cfg).eval()
    if dtype is not None:
        model = model.to(dtype)
    if min_shard_bytes:
        return _save_shards(model, Path(folder), min_shard_bytes)
    kw = {"max_shard_size": max_shard_size} if max_shard_size else {}
    model.save_pretrained(str(folder), safe_serialization=True, **kw)
    return Path(folder)


def _save_shards(model, folder: Path, min_bytes: int) -> Path:
    import json

    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(str(folder))
    state = {k: v.contiguous() for k, v in model.state_dict().items()
             if not (model.config.tie_word_embeddings and k == "lm_head.weight")}
    groups, cur, size = [], {}, 0
    for k, v in state.items():
        cur[k] = v
        size += v.numel() * v.element_size()
        if size >= min_bytes:
            groups.append(cur)
            cur, size = {}, 0
    if cur:
        if groups:
            groups[-1].update(cur)
        else:
            groups.append(cur)
    weight_map = {}
    for i, g in enumerate(groups):
        name = f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors"
        save_file(g, str(folder / name), metadata={"format": "pt"})
        weight_map.update({k: name for k in g})
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return folder


def _arch(cfg) -> str:
    return {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "mistral": "MistralForCausalLM",
            "mixtral": "MixtralForCausalLM", "qwen2_moe": "Qwen2MoeForCausalLM",
            "qwen3_moe": "Qwen3MoeForCausalLM"}[cfg.model_type]


def save_tokenizer(folder: Path, vocab_size: int = 256) -> None:
    """A byte-level BPE tokenizer trained on a few sentences, within vocab_size (tokenizer.json)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    text = ["The quick brown fox jumps over the lazy dog.", "Hello world, this is a tiny tokenizer.",
            "MLX runs compiled PyTorch models."] * 4
    tok.train_from_iterator(text, trainer)
    tok.save(str(Path(folder) / "tokenizer.json"))


def _status_kb(field: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def sharded_conversion_check(src: Path, out: Path) -> dict:
    """Compile a sharded checkpoint (parameters on meta) and measure the weight conversion's peak RSS
    growth over the RSS it started from, against the largest shard (Linux: VmHWM reset via clear_refs)."""
    import time

    from ..recipes import causal_lm as recipe
    from .convert import convert_weights

    shards = sorted(Path(src).glob("*.safetensors"))
    largest = max(p.stat().st_size for p in shards)
    measured = {}

    def measured_convert(*args, **kwargs):
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak resident set size (VmHWM) to the current one
        base = _status_kb("VmRSS") * 1024
        t = time.perf_counter()
        convert_weights(*args, **kwargs)
        measured.update(seconds=time.perf_counter() - t, baseline=base, peak=_status_kb("VmHWM") * 1024)

    from . import convert as conv_mod  # compile_llm imports convert_weights from there at each call

    saved = conv_mod.convert_weights
    conv_mod.convert_weights = measured_convert
    try:
        recipe.compile_llm(src, out, meta=True, force=True)
    finally:
        conv_mod.convert_weights = saved
    growth = measured["peak"] - measured["baseline"]
    return {"shards": len(shards), "largest_shard": largest, "total": sum(p.stat().st_size for p in shards),
            "rss_growth": growth, "ratio": growth / largest, "seconds": measured["seconds"]}
