# runtime: generate sampling
"""A compiled causal LM: `lm = load(OUT)`; `lm.generate([1, 2, 3], max_tokens=32)` -> new token ids.
The graph is `model(input_ids, cache)`; its KV cache is a list the model fills on the first call."""
import importlib.util
import json
import sys
from pathlib import Path


class CausalLM:
    def __init__(self, folder):
        self.folder = Path(folder)
        self.manifest = json.loads((self.folder / "manifest.json").read_text())
        g = self.manifest["graphs"][self.manifest["entry"]]
        gdir = self.folder / g["dir"]
        key = f"fx2mlx_out_lm_{abs(hash(str(gdir.resolve())))}"
        spec = importlib.util.spec_from_file_location(key, gdir / "model.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[key] = mod
        spec.loader.exec_module(mod)
        self.model = mod.load(gdir)
        info = self.manifest.get("llm") or {}
        self.eos_ids = tuple(i for i in info.get("eos_token_id") or () if i is not None)

    def stream(self, prompt, max_tokens=64, temp=0.0, top_p=1.0, stop_at_eos=True):
        cache = []
        model = self.model

        def step(ids):
            return model(ids, cache=cache)

        def sampler(logits):
            return sample_token(logits, temp, top_p)

        yield from generate_tokens(step, mx.array(list(prompt), dtype=mx.int32), max_tokens, sampler,
                                   self.eos_ids if stop_at_eos else ())

    def generate(self, prompt, **kwargs):
        return list(self.stream(prompt, **kwargs))


def load(path=None):
    return CausalLM(Path(path) if path is not None else Path(__file__).resolve().parent)
