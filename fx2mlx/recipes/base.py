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
    self_check: bool = True


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
