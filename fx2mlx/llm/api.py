"""Python API for generation from a compiled LLM folder.

    from fx2mlx.llm import load_llm
    lm = load_llm("out/")
    for token in lm.stream([1, 2, 3], max_tokens=32):   # token ids, as they come
        ...
    text = lm.generate("Hello", max_tokens=32)           # with a tokenizer in the folder
    rows = lm.generate([[1, 2, 3], [4, 5]], max_tokens=32)   # a batch: one list of new ids per prompt

A batch of prompts of different lengths runs left-padded in one forward per step; each row's tokens
equal those of its prompt run alone (greedy), and each row stops at its own end-of-sequence token.
Sampling with a seed draws row b from its own key stream (seed + b, or seed=[s0, s1, ...]), so a row's
tokens do not depend on the other prompts of the batch.
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

    def make_cache(self, left_padding: Sequence[int] | None = None) -> list:
        """An empty cache (the model fills it with one KVCache per attention site on the first call);
        with left_padding (pad positions per row, some > 0), a cache that masks those positions."""
        if left_padding is None or not any(left_padding):
            return []
        return [self.module.KVCache(list(left_padding))]

    def check_batch(self, prompts) -> list[list[int]]:
        """A batch of prompts (lists of token ids), checked; ArgumentError where the compiled model cannot
        take it."""
        from ..compiler.errors import ArgumentError

        if not isinstance(prompts, (list, tuple)) or not prompts:
            raise ArgumentError("a batch is a non-empty list of prompts (lists of token ids)")
        rows = [self.check_prompt(p) for p in prompts]
        shape = self.manifest["graphs"][self.manifest["entry"]]["inputs"][0]["shape"]
        if len(rows) > 1 and shape[0] == 1:
            raise ArgumentError(f"{self.out_dir} was compiled with the batch fixed at 1 (an older fx2mlx): "
                                "recompile it to generate for several prompts at once")
        if len({len(r) for r in rows}) > 1 and not self.info.get("padded_batches", False):
            raise ArgumentError(f"{self.out_dir}: this model's positions are not all taken by fused RoPE, so "
                                "prompts of different lengths (left padding) are not supported; pass prompts "
                                "of one length, or one prompt at a time")
        return rows

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
            raise ArgumentError(f"one prompt expected, got a batch of {len(prompt)} prompts (lists of token ids): "
                                "pass the batch to generate([...]) or stream_batch([...])")
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
        from ..runtime.sampling import keyed_sampler, sample_token

        prompt = self.check_prompt(prompt)
        self.check_sampling(max_tokens, temp, top_p)
        cache = self.make_cache() if cache is None else cache
        model = self.model

        def step(ids):
            return model(ids, cache=cache)

        if seed is not None and temp > 0:
            sampler = keyed_sampler([seed], temp, top_p)  # the draws of row 0 of a batch with this seed
        else:
            def sampler(logits):
                return sample_token(logits, temp, top_p)

        yield from generate_tokens(step, mx.array(list(prompt), dtype=mx.int32), max_tokens, sampler,
                                   self.eos_ids if stop_at_eos else ())

    def stream_batch(self, prompts: Sequence[Sequence[int]], *, max_tokens: int = 64, temp: float = 0.0,
                     top_p: float = 1.0, seed: int | Sequence[int] | None = None,
                     stop_at_eos: bool = True) -> Iterator[list[int | None]]:
        """Yield, per step, one new token id per prompt (None once that prompt has finished). Prompts of
        different lengths are left-padded; seed: row b draws from seed + b (or seed[b])."""
        import mlx.core as mx

        from ..compiler.errors import ArgumentError
        from ..runtime.generate import generate_batch, left_pad
        from ..runtime.sampling import keyed_sampler, sample_token

        rows = self.check_batch(prompts)
        self.check_sampling(max_tokens, temp, top_p)
        ids, pads = left_pad(rows)
        cache = self.make_cache(pads)
        model = self.model

        def step(x):
            return model(x, cache=cache)

        if seed is not None and temp > 0:
            seeds = [seed + b for b in range(len(rows))] if isinstance(seed, int) else list(seed)
            if len(seeds) != len(rows):
                raise ArgumentError(f"seed: one per prompt ({len(rows)}), got {len(seeds)}")
            sampler = keyed_sampler(seeds, temp, top_p)
        else:
            def sampler(logits):
                return sample_token(logits, temp, top_p)

        yield from generate_batch(step, ids, max_tokens, sampler, self.eos_ids if stop_at_eos else ())

    def generate_batch(self, prompts: Sequence[Sequence[int]], **kwargs) -> list[list[int]]:
        """The new token ids of each prompt (up to and including its end-of-sequence token)."""
        out: list[list[int]] = [[] for _ in prompts]
        for tokens in self.stream_batch(prompts, **kwargs):
            for row, t in zip(out, tokens):
                if t is not None:
                    row.append(t)
        return out

    def generate(self, prompt, **kwargs):
        """All new tokens at once: text for a text prompt, ids for ids; for a list of prompts (texts, or
        lists of ids), a list with one result per prompt, generated as one batch."""
        if isinstance(prompt, (list, tuple)) and prompt and all(isinstance(p, str) for p in prompt):
            return [self.decode(r) for r in self.generate_batch([self.encode(p) for p in prompt], **kwargs)]
        if isinstance(prompt, (list, tuple)) and prompt and all(isinstance(p, (list, tuple)) or hasattr(p, "tolist")
                                                                 for p in prompt):
            return self.generate_batch(prompt, **kwargs)
        ids = self.encode(prompt) if isinstance(prompt, str) else self.check_prompt(prompt)
        out = list(self.stream(ids, **kwargs))
        return self.decode(out) if isinstance(prompt, str) else out


def load_llm(out_dir: str | Path) -> GenerationModel:
    return GenerationModel(out_dir)


def generate(out_dir: str | Path, prompt: str | Sequence[int], **kwargs):
    return load_llm(out_dir).generate(prompt, **kwargs)
