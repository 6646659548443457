"""User-declared programs: several named graphs compiled together, each checked on its own.

    prog = fx2mlx.Program()
    prog.add("encoder", encoder, (features,))
    prog.add("head", head, (hidden,))
    compiled = fx2mlx.convert(prog)           # or a factory returning prog / {name: (module, args[, kwargs])}
    hidden = compiled.encoder(features); logits = compiled.head(hidden)

Each graph gets its own folder OUT/<name>/ (model.py, weights, ir.json, example inputs); the vendored
driver OUT/program.py loads them all (`load(OUT).encoder(...)`). The host code that connects the graphs
stays the user's: the program records the graphs, not their order.
"""
from __future__ import annotations

import keyword
from dataclasses import dataclass, field

import torch

from ..compiler.capture import ProgramSource, Source, load_source
from ..compiler.errors import SourceError
from ..compiler.passes import run_default_passes
from .base import Graph, Options, Recipe
from .graph import capture_source, options_from_manifest


@dataclass
class Program:
    """Named graphs: {name: (module, args, kwargs)}."""

    graphs: dict = field(default_factory=dict)

    def add(self, name: str, module: torch.nn.Module, args, kwargs: dict | None = None) -> "Program":
        check_name(name, self.graphs)
        if not isinstance(module, torch.nn.Module):
            raise SourceError(f"graph {name!r}: expected a torch.nn.Module, got {type(module).__name__}")
        self.graphs[name] = (module, tuple(args) if isinstance(args, (tuple, list)) else (args,), dict(kwargs or {}))
        return self


def check_name(name: str, taken) -> None:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
        raise SourceError(f"graph name {name!r} must be a Python identifier not starting with '_' "
                          "(it names a folder and an attribute)")
    if name in taken:
        raise SourceError(f"graph {name!r} is declared twice")
    if name in ("graphs", "manifest", "out_dir", "load"):
        raise SourceError(f"graph name {name!r} is reserved")


def program_source(prog, description: str) -> ProgramSource:
    graphs = prog.graphs if isinstance(prog, Program) else prog
    out = {}
    for name, (module, args, kwargs) in graphs.items():
        check_name(name, out)
        out[name] = Source(module, tuple(args), dict(kwargs or {}), f"{description}#{name}")
    return ProgramSource(out, description)


class ProgramRecipe(Recipe):
    name = "program"
    driver = "graphs"
    description = "several named graphs declared by the user (dict or fx2mlx.Program), one folder each"

    def build(self, source, options: Options, step) -> list[Graph]:
        if options.quantize:
            raise SourceError("--quantize applies to causal LMs (recipe causal-lm) only")
        if options.dynamic:
            raise SourceError("--dynamic names inputs of one graph; a program's graphs are dynamic where they allow")
        src = load_source(source, options.inputs) if isinstance(source, str) else source
        if not isinstance(src, ProgramSource):
            raise SourceError(f"recipe 'program' needs several named graphs, and {source!r} is one module")
        graphs = []
        for name, s in src.graphs.items():
            check_name(name, [g.name for g in graphs])
            step(f"torch.export {name}")
            captured = capture_source(s, options)
            graphs.append(Graph(name, captured, run_default_passes(captured.program), dir=name))
        return graphs

    def reference(self, manifest, graph, source, inputs, captured=None):
        if captured is None or inputs is not None or source is not None:
            src = load_source(source)
            if not isinstance(src, ProgramSource) or graph not in src.graphs:
                raise SourceError(f"{source!r} does not declare a graph named {graph!r}")
            s = src.graphs[graph]
            if inputs:
                from ..compiler.capture import _override_inputs

                s = Source(s.module, *_override_inputs(s.args, s.kwargs, inputs), s.description)
            captured = capture_source(s, options_from_manifest(manifest, graph))
        return captured, run_default_passes(captured.program), None
