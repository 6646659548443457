# runtime: program_files generate sampling
"""A compiled causal LM: `lm = load(OUT)`; `lm.generate([1, 2, 3], max_tokens=32)` -> new token ids;
`lm.generate([[1, 2, 3], [4, 5]])` -> one list of new ids per prompt, generated as one left-padded batch
(each row stops at its own end-of-sequence token). The graph is `model(input_ids, cache)`; its KV cache
is a list the model fills on the first call (its first entry carries the batch's left padding)."""
import json
from pathlib import Path


class CausalLM:
    def __init__(self, folder):
        self.folder = Path(folder)
        self.manifest = json.loads((self.folder / "manifest.json").read_text())
        g = self.manifest["graphs"][self.manifest["entry"]]
        gdir = self.folder / g["dir"]
        self.module = import_model(gdir / "model.py", "lm")
        self.model = self.module.load(gdir)
        info = self.manifest.get("llm") or {}
        self.padded_batches = bool(info.get("padded_batches"))
        self.eos_ids = tuple(i for i in info.get("eos_token_id") or () if i is not None)

    def _sampler(self, rows, temp, top_p, seed):
        if seed is not None and temp > 0:  # row b draws from its own key stream: seed + b
            return keyed_sampler([seed + b for b in range(rows)], temp, top_p)
        return lambda logits: sample_token(logits, temp, top_p)

    def stream(self, prompt, max_tokens=64, temp=0.0, top_p=1.0, seed=None, stop_at_eos=True):
        cache = []
        model = self.model

        def step(ids):
            return model(ids, cache=cache)

        yield from generate_tokens(step, mx.array(list(prompt), dtype=mx.int32), max_tokens,
                                   self._sampler(1, temp, top_p, seed), self.eos_ids if stop_at_eos else ())

    def stream_batch(self, prompts, max_tokens=64, temp=0.0, top_p=1.0, seed=None, stop_at_eos=True):
        """Per step, one new token id per prompt (None once that prompt has finished)."""
        prompts = [list(p) for p in prompts]
        if len({len(p) for p in prompts}) > 1 and not self.padded_batches:
            raise ValueError("this model's positions are not all taken by fused RoPE: prompts of different "
                             "lengths (left padding) are not supported; pass prompts of one length")
        ids, pads = left_pad(prompts)
        cache = [self.module.KVCache(pads)] if any(pads) else []
        model = self.model

        def step(x):
            return model(x, cache=cache)

        yield from generate_batch(step, ids, max_tokens, self._sampler(len(prompts), temp, top_p, seed),
                                  self.eos_ids if stop_at_eos else ())

    def generate(self, prompt, **kwargs):
        if prompt and all(isinstance(p, (list, tuple)) for p in prompt):  # a batch of prompts
            out = [[] for _ in prompt]
            for tokens in self.stream_batch(prompt, **kwargs):
                for row, t in zip(out, tokens):
                    if t is not None:
                        row.append(t)
            return out
        return list(self.stream(prompt, **kwargs))


def load(path=None):
    return CausalLM(Path(path) if path is not None else Path(__file__).resolve().parent)
