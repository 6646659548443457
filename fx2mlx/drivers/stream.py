# runtime: program_files
"""A compiled streaming program: `s = load(OUT)`; `s.feed(chunk)` runs every stage once on one chunk
(the samples of `chunk` along the last axis) and returns the last stage's outputs; `s.reset()` puts every
state tensor back to its initial value. State lives in `s.state` ({stage: [arrays]}), as explicit inputs
and outputs of the compiled graphs: a stage is called as graph(*inputs, *state) -> (*outputs, *state)."""
import json
from pathlib import Path

import mlx.core as mx


class Stream:
    def __init__(self, folder, compile=True):
        self.folder = Path(folder)
        self.manifest = json.loads((self.folder / "manifest.json").read_text())
        info = self.manifest["stream"]
        self.chunk, self.stages = info["chunk"], info["stages"]
        self.graphs = {}
        for name, g in self.manifest["graphs"].items():
            gdir = self.folder / g["dir"]
            self.graphs[name] = import_model(gdir / "model.py", name).load(gdir, compile=compile)
        self.initial = mx.load(str(self.folder / info["state_file"]))
        self.reset()

    def reset(self):
        """Every state tensor back to its initial value (a new stream)."""
        self.state = {st["name"]: [self.initial[f"{st['name']}.{s}"] for s in st["state"]] for st in self.stages}

    def feed(self, chunk):
        """One chunk (..., chunk samples) -> the last stage's outputs (one array, or a tuple)."""
        x = chunk if isinstance(chunk, mx.array) else mx.array(chunk)
        if x.shape[-1] != self.chunk:
            raise ValueError(f"feed takes chunks of {self.chunk} samples (last axis), got shape {tuple(x.shape)}")
        values = (x,)
        for st in self.stages:
            out = self.graphs[st["name"]](*values, *self.state[st["name"]])
            out = tuple(out) if isinstance(out, (tuple, list)) else (out,)
            k = st["outputs"]
            values, self.state[st["name"]] = out[:k], list(out[k:])
        mx.eval(*values, *[a for s in self.state.values() for a in s])
        return values[0] if len(values) == 1 else values

    def __getattr__(self, name):
        graphs = self.__dict__.get("graphs", {})
        if name in graphs:
            return graphs[name]
        raise AttributeError(f"the stream has no stage {name!r} (stages: {', '.join(graphs)})")


def load(path=None, compile=True):
    return Stream(Path(path) if path is not None else Path(__file__).resolve().parent, compile)
