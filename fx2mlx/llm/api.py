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
        from ..api import load_graph
        from ..compiler.errors import SourceError
        from ..manifest import read_manifest

        self.out_dir = Path(out_dir)
        self.manifest = read_manifest(self.out_dir)
        if self.manifest["recipe"] != "causal-lm":
            raise SourceError(f"{self.out_dir} was compiled by recipe {self.manifest['recipe']!r}, not as a causal "
                              "language model (recipe causal-lm: a Hugging Face *ForCausalLM directory)")
        self.info = self.manifest.get("llm") or {}
        gdir = self.out_dir / self.manifest["graphs"][self.manifest["entry"]]["dir"]
        self.module, self.model = load_graph(gdir)
        self.tokenizer = None
        if (self.out_dir / "tokenizer.json").is_file():
            from tokenizers import Tokenizer

            self.tokenizer = Tokenizer.from_file(str(self.out_dir / "tokenizer.json"))
        self.eos_ids = tuple(i for i in self.info.get("eos_token_id") or () if i is not None)

    def make_cache(self) -> list:
        return []  # the model fills it with one KVCache per attention site on the first call

    def encode(self, text: str) -> list[int]:
        from ..compiler.errors import ArgumentError

        if self.tokenizer is None:
            raise ArgumentError(f"{self.out_dir} has no tokenizer.json: pass token ids instead of text")
        return self.tokenizer.encode(text).ids

    def check_prompt(self, prompt) -> list[int]:
        """One prompt as a list of token ids in the vocabulary; anything else is an ArgumentError (a ValueError)."""
        from ..compiler.errors import ArgumentError

        if hasattr(prompt, "tolist") and not isinstance(prompt, (list, tuple)):
            prompt = prompt.tolist()
        if isinstance(prompt, (str, bytes)) or not isinstance(prompt, (list, tuple)):
            raise ArgumentError(f"a prompt is a list of token ids (or text, for generate), got {type(prompt).__name__}")
        if any(isinstance(t, (list, tuple)) for t in prompt):
            raise ArgumentError(f"one prompt at a time: got a batch of {len(prompt)} prompts (lists of token ids); batched "
                                "generation is not supported: call generate once per prompt")
        if not prompt:
            raise ArgumentError("the prompt is empty: pass at least one token id")
        bad = [t for t in prompt if isinstance(t, bool) or not isinstance(t, int)]
        if bad:
            raise ArgumentError(f"token ids are integers, got {bad[0]!r} ({type(bad[0]).__name__})")
        vocab = self.info.get("vocab_size")
        out = [t for t in prompt if t < 0 or (vocab is not None and t >= vocab)]
        if out:
            raise ArgumentError(f"token id {out[0]} is outside the vocabulary (0..{vocab - 1 if vocab else '…'})")
        return list(prompt)

    @staticmethod
    def check_sampling(max_tokens, temp, top_p) -> None:
        from ..compiler.errors import ArgumentError

        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
            raise ArgumentError(f"max_tokens must be an integer >= 0, got {max_tokens!r}")
        if not temp >= 0:
            raise ArgumentError(f"temp must be >= 0 (0: greedy), got {temp!r}")
        if not 0 < top_p <= 1:
            raise ArgumentError(f"top_p must be in (0, 1], got {top_p!r}")

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids)) if self.tokenizer is not None else " ".join(map(str, ids))

    def stream(self, prompt: Sequence[int], *, max_tokens: int = 64, temp: float = 0.0, top_p: float = 1.0,
               seed: int | None = None, stop_at_eos: bool = True, cache: list | None = None) -> Iterator[int]:
        """Yield new token ids one by one (greedy at temp 0)."""
        import mlx.core as mx

        from ..runtime.generate import generate_tokens
        from ..runtime.sampling import sample_token

        prompt = self.check_prompt(prompt)
        self.check_sampling(max_tokens, temp, top_p)
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
        ids = self.encode(prompt) if isinstance(prompt, str) else self.check_prompt(prompt)
        out = list(self.stream(ids, **kwargs))
        return self.decode(out) if isinstance(prompt, str) else out


def load_llm(out_dir: str | Path) -> GenerationModel:
    return GenerationModel(out_dir)


def generate(out_dir: str | Path, prompt: str | Sequence[int], **kwargs):
    return load_llm(out_dir).generate(prompt, **kwargs)
