"""The causal-LM recipe: a Hugging Face `*ForCausalLM` directory -> model.py with a KV cache + generation.

    capture (dynamic sequence length, use_cache=False; parameters on the meta device for large models)
    -> add_kv_cache (causal attention -> cache-aware attention, positions from the cache offset)
    -> default passes (RMSNorm / RoPE -> mx.fast) -> [quantize linears] -> lower -> emit
    -> weights streamed tensor by tensor from the checkpoint's safetensors shards

Nothing here is specific to one model family: Llama, Qwen2 and Mistral take the same path.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from ..compiler import ir
from ..compiler.errors import SourceError
from ..compiler.hf import check_loading_info
from .base import Graph, Options, Recipe, check_quantize

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                   "vocab.json", "merges.txt", "generation_config.json", "chat_template.jinja")
META_ABOVE_BYTES = 2 << 30  # checkpoints larger than this are captured with parameters on the meta device
LABELS = {("input_ids", 0): "batch", ("input_ids", 1): "seq"}  # names of the dynamic axes in the emitted code
MAX_BATCH = 4096
EXAMPLE_BATCH = 2  # torch.export specialises a size-1 dim: an example batch of 1 would freeze the batch at 1


def is_causal_lm_config(config: dict) -> bool:
    return any(a.endswith("ForCausalLM") for a in config.get("architectures") or [])


def _model_class(config):
    import transformers

    for a in config.architectures or []:
        cls = getattr(transformers, a, None)
        if cls is not None:
            return cls
    return transformers.AutoModelForCausalLM


def build_meta_model(config):
    """The model with parameters on the meta device (no memory, no init) and real buffers (RoPE)."""
    import torch

    cls = _model_class(config)
    with torch.device("meta"):
        model = cls._from_config(config) if hasattr(cls, "_from_config") else cls.from_config(config)
    model = model.float()  # captured in float32 whatever the checkpoint holds (see load_model)
    for mod in model.modules():
        metas = [k for k, b in mod._buffers.items() if b is not None and b.is_meta]
        for k in metas:
            mod._buffers[k] = torch.empty_like(mod._buffers[k], device="cpu")
        if metas:
            model._init_weights(mod)  # HF recomputes derived buffers (e.g. rotary inv_freq) here
    return model.eval()


def load_model(folder: Path, meta: bool | None = None, weights: bool = True):
    """(the model with its weights, False), or (its config, True) where it is to be built on meta."""
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    config = transformers.AutoConfig.from_pretrained(str(folder))
    if not weights:
        return config, True
    size = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
    if not size:
        raise SourceError(f"{folder}: no *.safetensors weights (compile_llm(..., weights=False) emits the code only)")
    if meta is None:
        meta = size > META_ABOVE_BYTES
    if meta:
        return config, True  # the model is built on the meta device at capture (2 layers when they fold)
    try:
        # float32 whatever the checkpoint's dtype: a bfloat16 graph carries casts around every norm that
        # would hide the RMSNorm pattern; --dtype decides the compiled model's dtype.
        model, info = _model_class(config).from_pretrained(str(folder), use_safetensors=True, dtype=torch.float32,
                                                           output_loading_info=True, ignore_mismatched_sizes=True)
    except Exception as e:
        raise SourceError(f"{folder}: transformers could not load the model: {type(e).__name__}: {e}") from e
    check_loading_info(folder, model, info)
    return model.eval(), False


def capture_llm(model, description: str, example_len: int = 8):
    """torch.export with a dynamic sequence length, use_cache=False."""
    import torch

    from ..compiler.capture import capture

    cfg = model.config
    vocab = getattr(cfg, "vocab_size", 100) or 100
    ids = torch.randint(min(5, vocab - 1), vocab, (EXAMPLE_BATCH, example_len), generator=torch.Generator().manual_seed(0))
    max_len = max(example_len + 1, int(getattr(cfg, "max_position_embeddings", 4096) or 4096))
    from ..compiler.errors import CaptureError

    kwargs = {"input_ids": ids, "use_cache": False}
    try:
        seq = torch.export.Dim("seq", min=2, max=max_len)
        batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
        return capture(model, (), kwargs, dynamic_shapes={"input_ids": {0: batch, 1: seq}, "use_cache": None},
                       description=description, labels=LABELS)
    except CaptureError as e:  # a model's own guards narrow the range (seen: transformers 5.17): let torch pick it
        if "Constraints violated" not in str(e) or not hasattr(torch.export.Dim, "DYNAMIC"):
            raise
    dyn = torch.export.Dim.DYNAMIC
    captured = capture(model, (), kwargs, dynamic_shapes={"input_ids": {0: dyn, 1: dyn}, "use_cache": None},
                       description=description, labels=LABELS)
    tok = next(i for i in captured.program.user_inputs if i.name == "input_ids")
    if not isinstance(tok.type.shape[1], str):
        raise CaptureError("torch.export specialised the sequence length; the model cannot take a KV cache")
    return captured


def capture_folded(config, description: str):
    """Capture a 2-layer copy of the config (on the meta device) and fold it out to every layer
    (fx2mlx.llm.fold); None where the layers are not all alike."""
    import copy

    from ..llm.fold import NotFoldable, fold_layers

    n = int(getattr(config, "num_hidden_layers", 0) or 0)
    types = getattr(config, "layer_types", None) or []
    if n <= 2 or len(set(types)) > 1 or getattr(config, "use_sliding_window", False):
        return None
    small = copy.deepcopy(config)
    small.num_hidden_layers = 2
    if types:
        small.layer_types = types[:2]
    captured = capture_llm(build_meta_model(small), description)
    lists = [m.path for m in captured.program.modules if m.type.endswith("ModuleList")
             and {f"{m.path}.0", f"{m.path}.1"} <= {x.path for x in captured.program.modules}
             and f"{m.path}.2" not in {x.path for x in captured.program.modules}]
    if len(lists) != 1:
        return None
    try:
        program = fold_layers(captured.program, lists[0], n)
    except NotFoldable:
        return None
    return replace(captured, program=program)


def llm_program(captured, *, quantize: int | None = None, group_size: int = 64) -> ir.Program:
    from ..compiler.kvcache import add_kv_cache
    from ..compiler.passes import run_default_passes
    from ..llm.quantize import quantize_linears

    program = run_default_passes(add_kv_cache(captured.program))
    if quantize:
        program = quantize_linears(program, quantize, group_size)
    return program


class CausalLMRecipe(Recipe):
    name = "causal-lm"
    driver = "causal_lm"
    description = "Hugging Face *ForCausalLM directory -> model(input_ids, cache) with a KV cache, + generate"

    @classmethod
    def accepts_hf_config(cls, config: dict) -> bool:
        return is_causal_lm_config(config)

    def build(self, source, options: Options, step) -> list[Graph]:
        if not isinstance(source, (str, Path)) or not (Path(source) / "config.json").is_file():
            raise SourceError(f"recipe 'causal-lm' takes a Hugging Face model directory, got {source!r}")
        if options.inputs or options.dynamic:
            raise SourceError("recipe 'causal-lm' makes its own example (token ids, dynamic sequence length): "
                              "--inputs and --dynamic do not apply (use --recipe graph for a plain forward)")
        if options.shapes == "static":
            raise SourceError("recipe 'causal-lm' needs a dynamic sequence length: --static does not apply "
                              "(use --recipe graph for a forward at fixed sizes)")
        check_quantize(options.quantize, options.group_size, self.name)
        folder = Path(source)
        if options.shards is not None:
            import transformers

            from ..llm.shard import check_shards

            check_shards(options.shards, transformers.AutoConfig.from_pretrained(str(folder)), options.quantize)
        weights = options.weights
        if weights and not any(folder.glob("*.safetensors")):
            weights = False  # a config-only folder: the code alone (parameters on the meta device)
            step("no *.safetensors: emitting the code only")
        step("loading the model")
        model, on_meta = load_model(folder, options.meta, weights)
        config = model if on_meta else model.config
        step("torch.export")
        description = f"hf:{folder.resolve()}"
        captured = capture_folded(config, description) if on_meta else None
        if captured is None:
            captured = capture_llm(build_meta_model(config) if on_meta else model, description)
        program = llm_program(captured, quantize=options.quantize, group_size=options.group_size)

        def write_weights(lowered, path, dtype):
            from ..llm.convert import convert_weights

            if weights:
                convert_weights(lowered, folder, captured.weights, path, dtype, float_inputs=_rope_inputs(program),
                                module=captured.module)

        info = {"llm": generation_info(config, program, options.quantize, options.group_size)}
        self._config = config
        skip = None if not on_meta else "weights on the meta device at capture (large checkpoint or --meta)"
        if not weights:
            skip = "no weights (code only)"
        return [Graph("model", captured, program, write_weights=write_weights, save_inputs=not on_meta,
                      info=info, skip_self_check=skip)]

    def extras(self, source, tmp: Path, graphs, options) -> dict:
        folder = Path(source)
        for name in TOKENIZER_FILES:
            if (folder / name).is_file():
                shutil.copy2(folder / name, tmp / name)
        llm = dict(graphs[0].info["llm"])
        if options.shards:
            from ..llm.shard import write_sharded

            llm["shards"] = write_sharded(graphs[0].captured, self._config, options.shards, tmp / f"tp{options.shards}",
                                          options.dtype, graphs[0].captured.description)
        return {"llm": llm}

    def reference(self, manifest, graph, source, inputs, captured=None):
        from ..golden.torch_side import recapture_llm

        user_inputs = None
        if captured is None or inputs is not None or source is not None:
            captured, user_inputs = recapture_llm(source, inputs)
        q = (manifest.get("llm") or {}).get("quantization") or {}
        return captured, llm_program(captured, quantize=q.get("bits"), group_size=q.get("group_size", 64)), user_inputs


def compile_llm(source: str | Path, out_dir: Path, *, dtype: str | None = None, force: bool = False,
                quantize: int | None = None, group_size: int = 64, meta: bool | None = None,
                weights: bool = True, shards: int | None = None, step: Callable[[str], None] = lambda s: None):
    """Compile a causal-LM directory into out_dir; returns (captured, timings in seconds by phase).

    meta: capture with parameters on the meta device (default: when the checkpoint is over 2 GiB);
    weights=False: model.py, ir.json and manifest.json only (the folder needs only config.json);
    shards=N: also OUT/tpN/model.py, one rank of a tensor-parallel run over N processes (fx2mlx.llm.shard)."""
    from .writer import check_dtype, check_out_dir, write_output

    check_dtype(dtype)
    check_out_dir(Path(out_dir), force)
    check_quantize(quantize, group_size, "causal-lm")
    options = Options(dtype=dtype, quantize=quantize, group_size=group_size, meta=meta, weights=weights, shards=shards)
    recipe = CausalLMRecipe()
    t = time.perf_counter()
    graphs = recipe.build(str(source), options, step)
    times = {"capture": time.perf_counter() - t}
    t = time.perf_counter()
    write_output(recipe, str(source), graphs, Path(out_dir), options, force=force, step=step)
    times["write"] = time.perf_counter() - t
    return graphs[0].captured, times


def _rope_inputs(program: ir.Program) -> set[str]:
    """RoPE frequencies stay float32 in a float16/bfloat16 model (positions need the precision)."""
    return {r.name for n in program.nodes if n.target == "fx2mlx.rope_freqs.default" for r in n.refs()}


def generation_info(config, program: ir.Program, quantize, group_size) -> dict:
    eos = getattr(config, "eos_token_id", None)
    gen = {"kind": "decoder", "cache_sites": sum(n.target == "fx2mlx.cache_entry.default" for n in program.nodes),
           "eos_token_id": eos if isinstance(eos, list) else ([eos] if eos is not None else []),
           "bos_token_id": getattr(config, "bos_token_id", None),
           "vocab_size": getattr(config, "vocab_size", None),
           # left-padded batches need every position to come from the cache offset through fused RoPE
           # (per-row offsets); an arange of positions left in the graph takes one offset for all rows
           "padded_batches": not any(n.target == "fx2mlx.arange_offset.default" for n in program.nodes)}
    if quantize:
        gen["quantization"] = {"bits": quantize, "group_size": group_size}
    return gen
