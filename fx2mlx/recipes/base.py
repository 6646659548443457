"""What a recipe is: a source turned into named graphs, each with its passes, plus the host driver.

A recipe's `build` captures every graph of the program (one `Graph` each), each already through the
recipe's passes; the one output writer (`writer.write_output`) lowers, emits, converts weights, writes
the manifest and checks the output by running it. `reference` rebuilds one graph the same way on the
PyTorch side, for the golden harness, so that node names match the compiled `ir.json`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from ..compiler import ir
from ..compiler.capture import Captured


@dataclass
class Options:
    """What the user asked for; a recipe refuses options it cannot honour (never ignores them)."""

    dtype: str | None = None  # float32 (None), float16, bfloat16
    shapes: str = "auto"  # "auto": dynamic where the model allows it; "static": example sizes
    dynamic: list[str] | None = None  # NAME:DIM[=LABEL] axes that must be dynamic
    inputs: str | None = None  # safetensors file of example inputs
    quantize: int | None = None
    group_size: int = 64
    meta: bool | None = None  # causal LMs: capture on the meta device
    weights: bool = True  # causal LMs: False emits the code only
    shards: int | None = None  # causal LMs: also emit a tensor-parallel rank graph for this many processes
    self_check: bool = True
    allow_pickle: bool = False  # HF directories without safetensors: torch.load(weights_only=True) of pickles
    input_shapes: dict | None = None  # ONNX/TorchScript files: {input name: example shape}
    trust_torchscript: bool = False  # TorchScript archives: loading runs the archive's code


QUANT_BITS = (4, 8)  # bit widths fx2mlx tests (MLX's affine quantization also has 2, 3, 5 and 6)
QUANT_GROUP_SIZES = (32, 64, 128)  # what mx.quantize accepts


def check_quantize(bits, group_size: int, recipe: str) -> None:
    """--quantize/--group-size: refused (never ignored) where they do not apply or are not supported."""
    from ..compiler.errors import SourceError

    if bits is None:
        return
    if recipe not in ("causal-lm", "seq2seq", "speech-to-text"):
        raise SourceError(f"--quantize applies to causal LMs and encoder-decoder models (recipes causal-lm, seq2seq, "
                          f"speech-to-text) "
                          f"only; this source uses recipe {recipe!r}")
    if bits not in QUANT_BITS:
        raise SourceError(f"--quantize takes {' or '.join(map(str, QUANT_BITS))} bits (the widths fx2mlx tests), "
                          f"got {bits}")
    if group_size not in QUANT_GROUP_SIZES:
        raise SourceError(f"--group-size takes {', '.join(map(str, QUANT_GROUP_SIZES))}, got {group_size}")


@dataclass
class Graph:
    """One graph of a program, captured and through its recipe's passes (not yet lowered)."""

    name: str
    captured: Captured
    program: ir.Program
    dir: str = "."  # its folder inside OUT
    write_weights: Callable[[Any, Path, str | None], None] | None = None  # (lowered, file, dtype); default: captured
    save_inputs: bool = True  # write inputs.safetensors (the example inputs)
    info: dict = field(default_factory=dict)  # extra manifest entries of this graph
    skip_self_check: str | None = None  # why the output is not run once at compile time


class Recipe:
    """Base class: subclasses set `name`, `driver`, and implement `build`."""

    name: ClassVar[str] = ""
    driver: ClassVar[str] = "graphs"  # fx2mlx/drivers/<driver>.py, vendored as OUT/program.py
    description: ClassVar[str] = ""

    def build(self, source, options: Options, step: Callable[[str], None]) -> list[Graph]:
        raise NotImplementedError

    def extras(self, source, tmp: Path, graphs: list[Graph], options: Options) -> dict:
        """Files beside the graphs (tokenizers, configs) and manifest entries of the whole program."""
        return {}

    def reference(self, manifest: dict, graph: str, source: str, inputs: str | None,
                  captured: Captured | None = None) -> tuple[Captured, ir.Program, list | None]:
        """The PyTorch side of one compiled graph, captured as `build` did: (captured, program after the
        recipe's passes, user inputs to run it on or None for the captured example)."""
        raise NotImplementedError

    @classmethod
    def accepts_hf_config(cls, config: dict) -> bool:
        return False
