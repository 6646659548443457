"""The plain recipe: one module, one graph (`model`), the default passes; no host driver beyond loading."""
from __future__ import annotations

from ..compiler.capture import Captured, capture, load_source, parse_dynamic
from ..compiler.passes import run_default_passes
from .base import Graph, Options, Recipe

# readable names for the axes of the inputs Hugging Face models take (others: batch / NAME_dimK)
HF_AXES = {"input_ids": ("batch", "seq"), "attention_mask": ("batch", "seq"), "token_type_ids": ("batch", "seq"),
           "position_ids": ("batch", "seq"), "decoder_input_ids": ("batch", "target_seq"),
           "decoder_attention_mask": ("batch", "target_seq"), "pixel_values": ("batch", "channels", "height", "width"),
           "input_features": ("batch", "mel_bins", "frames"), "input_values": ("batch", "samples")}


def hf_labels(kwargs: dict) -> dict:
    return {(k, a): lab for k in kwargs for a, lab in enumerate(HF_AXES.get(k, ()))}


def capture_source(src, options: Options) -> Captured:
    """torch.export of a loaded Source with the shapes the options ask for."""
    dynamic = parse_dynamic(options.dynamic, src.module, src.args, src.kwargs)
    return capture(src.module, src.args, src.kwargs, description=src.description, dynamic_shapes=dynamic,
                   shapes=options.shapes, labels=hf_labels(src.kwargs) if src.description.startswith("hf:") else None)


class GraphRecipe(Recipe):
    name = "graph"
    driver = "graphs"
    description = "one module -> one graph (model.py), dynamic sizes where the model allows them"

    def build(self, source, options: Options, step) -> list[Graph]:
        if options.quantize:
            raise _refuse("--quantize applies to causal LMs (recipe causal-lm) only")
        src = source if not isinstance(source, str) else load_source(source, options.inputs)
        step("torch.export")
        captured = capture_source(src, options)
        return [Graph("model", captured, run_default_passes(captured.program))]

    def reference(self, manifest, graph, source, inputs, captured=None):
        if captured is None or inputs is not None or source is not None:
            src = load_source(source, inputs)
            captured = capture_source(src, options_from_manifest(manifest, graph))
        return captured, run_default_passes(captured.program), None


def options_from_manifest(manifest: dict, graph: str) -> Options:
    """The shape options a graph was compiled with: its dynamic axes again (so node names match)."""
    g = manifest["graphs"][graph]
    dyn = [f"{name}:{axis}" for d in g.get("dims", []) for name, axis in d["axes"]]
    return Options(shapes="static", dynamic=dyn or None)


def _refuse(msg: str):
    from ..compiler.errors import SourceError

    return SourceError(msg)
