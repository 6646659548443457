"""Recipes: how a source becomes a program of named graphs plus the host driver that connects them.

    graph      one module -> one graph (`model`)                            driver: graphs
    program    several named graphs declared by the user                    driver: graphs
    causal-lm  HF *ForCausalLM dir -> model(input_ids, cache) + generation  driver: causal_lm
    seq2seq    HF encoder-decoder text dir -> encoder, cross_kv, decoder_step  driver: seq2seq
    speech-to-text  HF Whisper dir -> the same three graphs on log-mel features  driver: whisper
    onnx, torchscript  a model file -> one graph (`model`)                 driver: graphs
    stream     fx2mlx.Stream: stages per chunk, state explicit              driver: stream (feed/reset)

Every recipe's graphs go through the one capture -> passes -> lowering -> emission path and the one
output writer (`writer.write_output`); `manifest.json` records the recipe, its graphs and its driver,
and every tool (load, check, generate, C++) reads that instead of guessing. Hugging Face directories
pick their recipe from config.json; `--recipe` overrides.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from ..compiler.errors import SourceError
from ..manifest import graph_folders, read_manifest
from .base import Graph, Options, Recipe, check_quantize
from .causal_lm import CausalLMRecipe
from .graph import GraphRecipe
from .model_file import OnnxRecipe, TorchScriptRecipe
from .program import Program, ProgramRecipe
from .seq2seq import Seq2SeqRecipe
from .speech import SpeechToTextRecipe
from .stream import Stream, StreamRecipe, StreamSource

RECIPES: dict[str, type[Recipe]] = {r.name: r for r in (GraphRecipe, ProgramRecipe, CausalLMRecipe,
                                                          Seq2SeqRecipe, SpeechToTextRecipe, OnnxRecipe,
                                                          TorchScriptRecipe, StreamRecipe)}

__all__ = ["RECIPES", "Graph", "Options", "Program", "Recipe", "Stream", "compile_source", "compile_captured",
           "get_recipe", "graph_folders", "pick_recipe", "read_manifest"]


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise SourceError(f"unknown recipe {name!r}; recipes: {', '.join(RECIPES)}")
    return RECIPES[name]()


def pick_recipe(source, name: str | None = None) -> Recipe:
    """--recipe NAME, else: a program source -> program; an HF directory -> the recipe its config.json
    asks for (causal LMs -> causal-lm); anything else -> graph."""
    from ..compiler.capture import ProgramSource

    if name:
        return get_recipe(name)
    if isinstance(source, (Stream, StreamSource)):
        return StreamRecipe()
    if isinstance(source, (Program, ProgramSource, dict)):
        return ProgramRecipe()
    from ..sources import file_kind

    if file_kind(source):
        return get_recipe(file_kind(source))
    if isinstance(source, (str, Path)) and (Path(source) / "config.json").is_file():
        try:
            config = json.loads((Path(source) / "config.json").read_text())
        except ValueError as e:
            raise SourceError(f"{Path(source) / 'config.json'}: invalid JSON: {e}") from e
        for cls in RECIPES.values():
            if cls.accepts_hf_config(config):
                return cls()
    return GraphRecipe()


def compile_source(source, out_dir: Path, options: Options | None = None, *, recipe: str | None = None,
                   force: bool = False, step: Callable[[str], None] = lambda s: None):
    """Compile SOURCE (a spec string, a loaded Source/ProgramSource, or a Program) into OUT.
    -> (recipe, graphs, manifest)."""
    from ..compiler.capture import ProgramSource, load_source
    from .program import program_source
    from .writer import check_dtype, check_out_dir, write_output

    options = options or Options()
    check_dtype(options.dtype)
    check_out_dir(Path(out_dir), force)  # fail before the (slow) capture
    if options.shapes not in ("auto", "static"):
        raise SourceError(f"shapes must be 'auto' or 'static', got {options.shapes!r}")
    if isinstance(source, (Program, dict)):
        source = program_source(source, "python:program")
    if isinstance(source, Stream):
        source = source.to_source("python:stream")
    r = pick_recipe(source, recipe)
    check_quantize(options.quantize, options.group_size, r.name)  # before the (slow) loading
    if options.shards is not None and r.name != "causal-lm":
        raise SourceError(f"--shards applies to causal LMs (recipe causal-lm) only; this source uses recipe {r.name!r}")
    if isinstance(source, str) and r.name not in ("causal-lm", "seq2seq", "speech-to-text", "onnx", "torchscript"):  # these read the HF folder
        step(f"loading {source}")
        source = load_source(source, options.inputs, allow_pickle=options.allow_pickle)
        if isinstance(source, ProgramSource) and recipe is None:
            r = pick_recipe(source)
    graphs = r.build(source, options, step)
    manifest = write_output(r, getattr(source, "description", source), graphs, Path(out_dir), options,
                            force=force, step=step)
    return r, graphs, manifest


def compile_captured(captured, out_dir: Path, *, dtype: str | None = None, force: bool = False,
                     self_check: bool = True, step: Callable[[str], None] = lambda s: None) -> Path:
    """Compile an already captured module (fx2mlx.compiler.capture.capture) as a one-graph program."""
    from ..compiler.passes import run_default_passes
    from .writer import write_output

    options = Options(dtype=dtype, shapes="static" if not captured.program.dims else "auto", self_check=self_check)
    graph = Graph("model", captured, run_default_passes(captured.program))
    write_output(GraphRecipe(), captured.description, [graph], Path(out_dir), options, force=force, step=step)
    return Path(out_dir)
