"""Python API for generation from a compiled LLM folder.

    from fx2mlx.llm import load_llm
    lm = load_llm("out/")
    for token in lm.stream([1, 2, 3], max_tokens=32):   # token ids, as they come
        ...
    text = lm.generate("Hello", max_tokens=32)           # with a tokenizer in the folder
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence


class GenerationModel:
    """A compiled decoder LLM (model.py with a KV cache) plus its tokenizer, if the folder has one."""

    def __init__(self, out_dir: str | Path):
        from ..api import load_module
        from ..compiler.errors import SourceError
        from ..manifest import read_manifest

        self.out_dir = Path(out_dir)
        self.manifest = read_manifest(self.out_dir)
        if self.manifest["recipe"] != "causal-lm":
            raise SourceError(f"{self.out_dir} was compiled by recipe {self.manifest['recipe']!r}, not as a causal "
                              "language model (recipe causal-lm: a Hugging Face *ForCausalLM directory)")
        self.info = self.manifest.get("llm") or {}
        gdir = self.out_dir / self.manifest["graphs"][self.manifest["entry"]]["dir"]
        self.module = load_module(gdir / "model.py")
        self.model = self.module.load(gdir)
        self.tokenizer = None
        if (self.out_dir / "tokenizer.json").is_file():
            from tokenizers import Tokenizer

            self.tokenizer = Tokenizer.from_file(str(self.out_dir / "tokenizer.json"))
        self.eos_ids = tuple(i for i in self.info.get("eos_token_id") or () if i is not None)

    def make_cache(self) -> list:
        return []  # the model fills it with one KVCache per attention site on the first call

    def encode(self, text: str) -> list[int]:
        if self.tokenizer is None:
            raise ValueError(f"{self.out_dir} has no tokenizer.json: pass token ids instead of text")
        return self.tokenizer.encode(text).ids

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids)) if self.tokenizer is not None else " ".join(map(str, ids))

    def stream(self, prompt: Sequence[int], *, max_tokens: int = 64, temp: float = 0.0, top_p: float = 1.0,
               seed: int | None = None, stop_at_eos: bool = True, cache: list | None = None) -> Iterator[int]:
        """Yield new token ids one by one (greedy at temp 0)."""
        import mlx.core as mx

        from ..runtime.generate import generate_tokens
        from ..runtime.sampling import sample_token

        if seed is not None:
            mx.random.seed(seed)
        cache = self.make_cache() if cache is None else cache
        model = self.model

        def step(ids):
            return model(ids, cache=cache)

        def sampler(logits):
            return sample_token(logits, temp, top_p)

        yield from generate_tokens(step, mx.array(list(prompt), dtype=mx.int32), max_tokens, sampler,
                                   self.eos_ids if stop_at_eos else ())

    def generate(self, prompt: str | Sequence[int], **kwargs) -> str | list[int]:
        """All new tokens at once: text for a text prompt, ids for ids."""
        ids = self.encode(prompt) if isinstance(prompt, str) else list(prompt)
        out = list(self.stream(ids, **kwargs))
        return self.decode(out) if isinstance(prompt, str) else out


def load_llm(out_dir: str | Path) -> GenerationModel:
    return GenerationModel(out_dir)


def generate(out_dir: str | Path, prompt: str | Sequence[int], **kwargs):
    return load_llm(out_dir).generate(prompt, **kwargs)
