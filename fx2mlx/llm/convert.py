"""Weights of a compiled LLM, converted tensor by tensor (in row chunks) from the checkpoint's shards.

Each weight input of the program is looked up by its state_dict names (tied aliases included) in the
checkpoint; tensors the checkpoint does not hold (derived buffers such as RoPE frequencies) come from
the captured module. Layout transforms apply per tensor; casts and quantization per chunk of rows.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..compiler import dtypes, layouts
from ..compiler.errors import SourceError
from ..compiler.lowering import Lowered
from .safetensors_io import Checkpoint, Writer


def convert_weights(lowered: Lowered, folder: Path, captured: dict, out: Path, dtype: str | None = None,
                    float_inputs: set[str] = frozenset(), module=None) -> None:
    """module: the captured HF model (parameters may be on meta), for transformers' checkpoint conversions
    (llm.hf_keys: e.g. per-expert checkpoint tensors -> stacked experts)."""
    import mlx.core as mx

    old_limit = mx.set_cache_limit(0)  # freed chunks go back to the system, not to MLX's buffer cache
    try:
        _convert(lowered, folder, captured, out, dtype, float_inputs, module)
    finally:
        mx.set_cache_limit(old_limit)


def _convert(lowered: Lowered, folder: Path, captured: dict, out: Path, dtype: str | None, float_inputs,
             module=None) -> None:
    import mlx.core as mx

    from .hf_keys import Sources

    ckpt = Checkpoint(folder)
    sources = None
    names = lowered.program.weight_names()
    quant = _quantized(lowered.program)
    writer = Writer(out)
    try:
        for inp in lowered.program.weight_inputs:
            if inp.name in quant.extra:
                continue  # scales/biases: written with their weight
            src = next((n for n in names.get(inp.name, [inp.target]) if n in ckpt), None)
            t = captured.get(inp.target)
            if src is None and (t is None or t.is_meta):
                sources = sources if sources is not None else Sources(module, list(ckpt.where))
                built = next((n for n in names.get(inp.name, [inp.target]) if n in sources), None)
                if built is None:
                    raise SourceError(f"weight {inp.target} is neither in the checkpoint {folder} nor computable")
                t = _Built(sources.build(built, ckpt.read))
            src_dtype = ckpt.info(src)[0] if src else str(t.dtype).replace("torch.", "")
            keep = inp.name in float_inputs or not dtypes.is_float(src_dtype)
            target_dt = src_dtype if keep else (dtype or "float32")
            if inp.name in float_inputs:
                target_dt = "float32"
            if src is None:
                from ..compiler.weights import to_numpy

                chunks = [t.array if isinstance(t, _Built) else to_numpy(t)]
            elif inp.name in lowered.weight_layouts:
                chunks = [ckpt.read(src)]
            else:
                chunks = ckpt.chunks(src)
            if inp.name in lowered.weight_layouts:
                role, args = lowered.weight_layouts[inp.name]
                chunks = [layouts.apply(role, c, args) for c in chunks]
            mxdt = getattr(mx, dtypes.MX[target_dt])
            if inp.name in quant.weights:
                scales_in, biases_in, bits, gs = quant.weights[inp.name]
                _write_quantized(writer, inp.target, chunks, mxdt, bits, gs,
                                 quant.target[scales_in], quant.target[biases_in])
                continue
            if src is not None and target_dt == src_dtype and inp.name not in lowered.weight_layouts:
                writer.begin(inp.target, target_dt, ckpt.info(src)[1])  # as stored: copy the bytes
                for raw in ckpt.raw_chunks(src):
                    writer.write(raw)
                writer.end()
                continue
            for k, c in enumerate(chunks):
                if k == 0:  # a layout-transformed tensor comes whole; others in rows of the stored shape
                    shape = c.shape if inp.name in lowered.weight_layouts or src is None else ckpt.info(src)[1]
                    writer.begin(inp.target, target_dt, shape)
                writer.write(mx.array(np.ascontiguousarray(c)).astype(mxdt))
            writer.end()
    finally:
        writer.close()


def _write_quantized(writer: Writer, target: str, chunks, mxdt, bits: int, gs: int, scales_t: str, biases_t: str):
    import mlx.core as mx

    scales, biases = [], []
    rows = 0
    for c in chunks:
        wq, s, b = mx.quantize(mx.array(np.ascontiguousarray(c)).astype(mxdt), group_size=gs, bits=bits)
        if writer.current is None:
            writer.begin(target, "uint32", (0,))
        writer.write(wq)
        rows += c.shape[0]
        rest = tuple(wq.shape[1:])  # rows of (out, in): (in * bits / 32,); experts (E, out, in): (out, in * bits / 32)
        scales.append(np.array(s.astype(mx.float32)))
        biases.append(np.array(b.astype(mx.float32)))
    name, _, _, start = writer.current
    writer.current = (name, "uint32", (rows, *rest), start)
    writer.end()
    sdt = str(mxdt).replace("mlx.core.", "")
    for t, parts in ((scales_t, scales), (biases_t, biases)):
        writer.add(t, mx.array(np.concatenate(parts)).astype(mxdt) if sdt != "float32" else np.concatenate(parts))


class _Built:
    """A weight assembled from checkpoint tensors (llm.hf_keys), standing in for a captured tensor."""

    is_meta = False

    def __init__(self, array: np.ndarray):
        self.array = array
        self.dtype = "torch." + str(array.dtype)


class _Quant:
    def __init__(self):
        self.weights: dict[str, tuple] = {}  # weight input -> (scales input, biases input, bits, group size)
        self.extra: set[str] = set()
        self.target: dict[str, str] = {}


def _quantized(program) -> _Quant:
    q = _Quant()
    q.target = {i.name: i.target for i in program.weight_inputs}
    for n in program.nodes:
        if n.target in ("fx2mlx.qlinear.default", "fx2mlx.gather_qlinear.default"):
            w, s, b = n.arg("weight").name, n.arg("scales").name, n.arg("biases").name
            q.weights[w] = (s, b, n.arg("bits"), n.arg("group_size"))
            q.extra.update((s, b))
    return q
