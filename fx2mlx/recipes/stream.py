"""Streaming programs: stages called once per chunk, in order, with their state as explicit graph
inputs and outputs (LSTM/GRU states, ring buffers of frames or embeddings, STFT overlap).

    stream = fx2mlx.Stream(chunk=480)                       # samples per chunk
    stream.add("vad", vad_step, (chunk,), state={"h": h0, "c": c0})
    fx2mlx.convert(stream, out)    # or a factory 'file.py:make' returning the Stream
    s = fx2mlx.load(out); probs = s.feed(chunk); s.reset()

A stage's forward takes (*inputs, *state) and returns (*outputs, *new_state), the new state shaped like
the old; the first stage's input is the chunk, each later stage's inputs are the previous stage's
outputs, and `feed` returns the last stage's outputs. Nothing is hidden in Python: the compiled graphs
are pure functions, the vendored driver (`drivers/stream.py`, OUT/program.py) only carries the state
tensors from one call to the next and resets them to the initial values (OUT/stream_state.safetensors).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..compiler.capture import ProgramSource, Source
from ..compiler.errors import SourceError
from .program import ProgramRecipe, check_name


@dataclass
class StreamSource(ProgramSource):
    chunk: int = 0
    rate: int | None = None
    stages: list = field(default_factory=list)  # [{"name", "state": [names], "outputs": k}]
    initial: dict = field(default_factory=dict)  # {"stage.name": tensor}


@dataclass
class Stream:
    chunk: int
    rate: int | None = None  # samples per second (for `fx2mlx stream OUT audio.wav`)
    stages: dict = field(default_factory=dict)

    def add(self, name: str, module: torch.nn.Module, inputs, state: dict | None = None) -> "Stream":
        check_name(name, self.stages)
        if not isinstance(module, torch.nn.Module):
            raise SourceError(f"stage {name!r}: expected a torch.nn.Module, got {type(module).__name__}")
        inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
        state = dict(state or {})
        for k, v in state.items():
            if not isinstance(v, torch.Tensor) or not k.isidentifier():
                raise SourceError(f"stage {name!r}: state {k!r} must be a tensor under an identifier name")
        self.stages[name] = (module, inputs, state)
        return self

    def to_source(self, description: str) -> StreamSource:
        if not isinstance(self.chunk, int) or self.chunk <= 0:
            raise SourceError(f"Stream(chunk=...) must be a positive number of samples, got {self.chunk!r}")
        if not self.stages:
            raise SourceError("the stream has no stages (Stream.add)")
        graphs, stages, initial = {}, [], {}
        for name, (module, inputs, state) in self.stages.items():
            try:
                with torch.no_grad():
                    out = module.eval()(*inputs, *state.values())
            except Exception as e:  # noqa: BLE001 - the user's module failed on its examples
                raise SourceError(f"stage {name!r} raised {type(e).__name__} on its example inputs and state: "
                                  f"{str(e).splitlines()[0] if str(e) else ''}") from e
            out = tuple(out) if isinstance(out, (tuple, list)) else (out,)
            k = len(out) - len(state)
            if k < 1:
                raise SourceError(f"stage {name!r} returns {len(out)} value(s) for {len(state)} state tensor(s): it "
                                  "must return (*outputs, *new_state)")
            for (s, old), new in zip(state.items(), out[k:]):
                if not isinstance(new, torch.Tensor) or new.shape != old.shape or new.dtype != old.dtype:
                    raise SourceError(f"stage {name!r}: new state {s!r} must have the shape and dtype of the old "
                                      f"({tuple(old.shape)}, {old.dtype}), got "
                                      f"{getattr(new, 'shape', type(new).__name__)}")
            graphs[name] = Source(module, inputs + tuple(state.values()), {}, f"{description}#{name}")
            stages.append({"name": name, "state": list(state), "outputs": k})
            initial.update({f"{name}.{s}": v.detach().clone() for s, v in state.items()})
        return StreamSource(graphs, description, self.chunk, self.rate, stages, initial)


class StreamRecipe(ProgramRecipe):
    name = "stream"
    driver = "stream"
    description = "stages called chunk by chunk with explicit state (fx2mlx.Stream); load(OUT).feed(chunk)"

    def build(self, source, options, step):
        if isinstance(source, Stream):
            source = source.to_source("python:stream")
        if not isinstance(source, StreamSource):
            raise SourceError("recipe 'stream' needs an fx2mlx.Stream (or a factory returning one)")
        self.source = source  # extras() receives only its description
        return super().build(source, options, step)

    def extras(self, source, tmp, graphs, options) -> dict:
        import mlx.core as mx
        import numpy as np

        source = self.source
        mx.save_safetensors(str(tmp / "stream_state.safetensors"),
                            {k: mx.array(np.ascontiguousarray(v.numpy())) for k, v in source.initial.items()})
        return {"stream": {"chunk": source.chunk, "rate": source.rate, "stages": source.stages, "state_file": "stream_state.safetensors"}}
