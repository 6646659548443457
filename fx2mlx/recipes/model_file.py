"""ONNX files and TorchScript archives: one graph (`model`) compiled from the module fx2mlx.sources makes
of the file. The manifest records `source_file` (kind, path, sha256, input names, folded shapes); the
golden check compares layer by layer against that module and, end to end, the compiled outputs against
the file itself (onnxruntime, or the scripted module)."""
from __future__ import annotations

from ..compiler.capture import Source, _override_inputs
from ..compiler.errors import SourceError
from ..compiler.passes import run_default_passes
from .base import Graph, Options, Recipe
from .graph import capture_source, options_from_manifest


class ModelFileRecipe(Recipe):
    driver = "graphs"

    def load(self, spec: str, options: Options, expect: dict | None = None) -> tuple[Source, dict]:
        from ..sources import file_kind, load_file

        if file_kind(spec) != self.name:
            raise SourceError(f"recipe {self.name!r} needs a {self.name} file, got {spec!r}")
        shapes = dict(options.input_shapes or {})
        trust = options.trust_torchscript
        if options.inputs and not expect:  # sizes of a --inputs file, where --input-shape does not give them
            from safetensors import safe_open

            with safe_open(options.inputs, "numpy") as f:
                shapes = {**{k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}, **shapes}
        if expect:  # a recheck: the sizes and trust of the compile, for the same file
            shapes = {n: tuple(s) for n, s in (expect.get("shapes") or {}).items()}
            trust = bool(expect.get("trusted"))
        module, args, info = load_file(spec, shapes, trust_torchscript=trust,
                                       expect_sha256=expect.get("sha256") if expect else None)
        kwargs = {}
        if options.inputs:
            folded = info.get("shapes_folded")
            args, kwargs = _override_inputs(args, {}, options.inputs)
            if kwargs:
                args = tuple(kwargs.pop(n, a) for n, a in zip(info["inputs"], args))
            if folded and [list(a.shape) for a in args] != list(folded.values()):
                raise SourceError("this ONNX graph computes shapes from its inputs and is folded for fixed sizes: "
                                  "give the sizes with --input-shape NAME=AxB... rather than a different --inputs file")
        info["shapes"] = {n: list(a.shape) for n, a in zip(info["inputs"], args)}
        return Source(module, tuple(args), kwargs, f"{self.name}:{info['path']}"), info

    def build(self, source, options: Options, step) -> list[Graph]:
        if options.quantize:
            raise SourceError("--quantize applies to causal LMs and encoder-decoder models only")
        step(f"loading {source}")
        src, info = self.load(str(source), options)
        if info.get("shapes_folded"):
            if options.dynamic:
                raise SourceError(f"--dynamic: this ONNX graph computes shapes from its inputs and is compiled for "
                                  f"fixed sizes ({info['shapes_folded']}); use --input-shape to choose them")
            options = Options(**{**options.__dict__, "shapes": "static"})
        step("torch.export")
        captured = capture_source(src, options)
        return [Graph("model", captured, run_default_passes(captured.program), info={"source_file": info})]

    def extras(self, source, tmp, graphs, options) -> dict:
        return {"source_file": graphs[0].info["source_file"]}

    def reference(self, manifest, graph, source, inputs, captured=None):
        if captured is None or inputs is not None or source is not None:
            info = manifest.get("source_file") or {}
            spec = source or info.get("path")
            src, _ = self.load(spec, Options(inputs=inputs), expect=info if spec == info.get("path") else None)
            captured = capture_source(src, options_from_manifest(manifest, graph))
        return captured, run_default_passes(captured.program), None


class OnnxRecipe(ModelFileRecipe):
    name = "onnx"
    description = "an ONNX file (onnx2torch, then the graph recipe); checked against onnxruntime"


class TorchScriptRecipe(ModelFileRecipe):
    name = "torchscript"
    description = "a TorchScript archive (torch.jit.load + TS2EPConverter, with --trust-torchscript)"
