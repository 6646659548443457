"""The seq2seq recipe: a Hugging Face encoder-decoder text model (M2M100/NLLB, Marian, T5/MADLAD, BART…)
-> three graphs + a generation driver (greedy and beam search with HF's semantics, `drivers/seq2seq.py`).

    encoder       (input_ids, attention_mask) -> last_hidden_state            batch, source length dynamic
    cross_kv      (encoder_hidden_states) -> ([K per layer], [V per layer])   the cross-attention projections,
                                                                              once per sentence
    decoder_step  (decoder_input_ids (B, 1), encoder_attention_mask,
                   self K..., self V..., cross K..., cross V...)
                  -> (logits (B, V), [self K per layer], [self V per layer])  past length dynamic (0 at the start)

Nothing is rewritten by hand: each graph is HF's own forward, captured with torch.export, around HF's own
cache classes. `decoder_step` calls the whole `*ForConditionalGeneration` forward (so lm_head,
final_logits_bias, T5's scaling of tied embeddings… are the model's) with `encoder_outputs` given and an
`EncoderDecoderCache` built from the input tensors: the self-attention cache holds the past keys/values
(HF appends the new ones and computes positions, T5's relative position bias and the causal mask from the
cache length), and the cross-attention cache is marked filled, so HF skips the cross K/V projections there.
`cross_kv` runs the decoder once on an empty cache and returns what HF put into the cross-attention cache;
dead-code elimination leaves only the K/V projections of the encoder output. Each graph keeps only the
weights its nodes use.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

from ..compiler import ir
from ..compiler.errors import SourceError
from ..compiler.hf import check_loading_info
from .base import Graph, Options, Recipe, check_quantize

GRAPHS = ("encoder", "cross_kv", "decoder_step")
SPEECH_INPUTS = ("input_features", "input_values")
GEN_KEYS = ("decoder_start_token_id", "bos_token_id", "eos_token_id", "pad_token_id", "forced_bos_token_id",
            "forced_eos_token_id", "max_length", "max_new_tokens", "min_length", "min_new_tokens", "num_beams",
            "length_penalty", "early_stopping", "no_repeat_ngram_size", "repetition_penalty", "bad_words_ids",
            "suppress_tokens", "begin_suppress_tokens", "num_return_sequences", "do_sample",
            "encoder_repetition_penalty", "encoder_no_repeat_ngram_size", "sequence_bias")
FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "sentencepiece.bpe.model",
         "spiece.model", "source.spm", "target.spm", "vocab.json", "generation_config.json", "config.json")
EXAMPLE_LEN, EXAMPLE_PAST = 7, 3


def _model_class(config: dict):
    import transformers

    for a in config.get("architectures") or []:
        cls = getattr(transformers, a, None)
        if cls is not None:
            return cls
    return None


def is_seq2seq_config(config: dict) -> bool:
    """An encoder-decoder *text* generator: is_encoder_decoder, an architecture with an LM head
    (`*ForConditionalGeneration`, or one of transformers' seq2seq LM classes such as MarianMTModel) whose
    main input is input_ids (speech models such as Whisper take input_features: another recipe)."""
    if not config.get("is_encoder_decoder"):
        return False
    archs = config.get("architectures") or []
    try:
        from transformers.models.auto.modeling_auto import MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES as names
        seq2seq = set(names.values())
    except ImportError:
        seq2seq = set()
    if not any(a.endswith("ForConditionalGeneration") or a in seq2seq for a in archs):
        return False
    cls = _model_class(config)
    return cls is not None and getattr(cls, "main_input_name", "input_ids") == "input_ids"


def load_model(folder: Path):
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    config = json.loads((folder / "config.json").read_text())
    cls = _model_class(config) or transformers.AutoModelForSeq2SeqLM
    if not any(folder.glob("*.safetensors")):
        raise SourceError(f"{folder}: no *.safetensors weights (pickled checkpoints are not loaded: convert them)")
    try:
        model, info = cls.from_pretrained(str(folder), use_safetensors=True, dtype=torch.float32,
                                          output_loading_info=True, ignore_mismatched_sizes=True)
    except Exception as e:
        raise SourceError(f"{folder}: transformers could not load the model: {type(e).__name__}: {e}") from e
    check_loading_info(folder, model, info)  # missing / unexpected / mis-shaped weights are errors
    return model.eval()


# ------------------------------------------------------------------------------------------------
# The three graphs, as modules around the HF model (captured as they are; nothing re-implemented)
# ------------------------------------------------------------------------------------------------
def _torch_modules():
    import torch
    from transformers.cache_utils import DynamicCache, DynamicLayer, EncoderDecoderCache

    def filled(keys, values):
        cache = DynamicCache()
        layers = []
        for k, v in zip(keys, values):
            layer = DynamicLayer()
            layer.keys, layer.values, layer.is_initialized = k, v, True
            layer.device, layer.dtype = k.device, k.dtype
            layers.append(layer)
        cache.layers = layers
        return cache

    class Encoder(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.encoder = model.get_encoder()

        def forward(self, input_ids, attention_mask):
            return self.encoder(input_ids=input_ids, attention_mask=attention_mask, return_dict=True).last_hidden_state

    class SpeechEncoder(torch.nn.Module):
        """A speech encoder (Whisper): log-mel features in, no attention mask (every window is full length)."""

        def __init__(self, model):
            super().__init__()
            self.encoder = model.get_encoder()

        def forward(self, input_features):
            return self.encoder(input_features=input_features, return_dict=True).last_hidden_state

    class CrossKV(torch.nn.Module):
        def __init__(self, model, start: int):
            super().__init__()
            self.model, self.start = model, start

        def forward(self, encoder_hidden_states):
            ids = torch.full((encoder_hidden_states.shape[0], 1), self.start, dtype=torch.long,
                             device=encoder_hidden_states.device)
            cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
            self.model(encoder_outputs=(encoder_hidden_states,), decoder_input_ids=ids, cache=cache, use_cache=True)
            layers = cache.cross_attention_cache.layers
            return [x.keys for x in layers], [x.values for x in layers]

    class DecoderStep(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, decoder_input_ids, encoder_attention_mask, self_keys, self_values, cross_keys, cross_values):
            b, s = encoder_attention_mask.shape
            cache = EncoderDecoderCache(filled(self_keys, self_values), filled(cross_keys, cross_values))
            # only its shape is read: the cross-attention keys/values come from the cache
            hidden = torch.zeros(b, s, 1, dtype=cross_keys[0].dtype, device=cross_keys[0].device)
            out = self.model(encoder_outputs=(hidden,), attention_mask=encoder_attention_mask,
                             decoder_input_ids=decoder_input_ids, cache=cache, use_cache=True)
            layers = cache.self_attention_cache.layers
            return out.logits[:, -1, :], [x.keys for x in layers], [x.values for x in layers]

    class SpeechDecoderStep(torch.nn.Module):
        """DecoderStep without an encoder mask: the encoder length is read from the cross keys."""

        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, decoder_input_ids, self_keys, self_values, cross_keys, cross_values):
            b, s = cross_keys[0].shape[0], cross_keys[0].shape[2]
            cache = EncoderDecoderCache(filled(self_keys, self_values), filled(cross_keys, cross_values))
            hidden = torch.zeros(b, s, 1, dtype=cross_keys[0].dtype, device=cross_keys[0].device)
            out = self.model(encoder_outputs=(hidden,), decoder_input_ids=decoder_input_ids, cache=cache,
                             use_cache=True)
            layers = cache.self_attention_cache.layers
            return out.logits[:, -1, :], [x.keys for x in layers], [x.values for x in layers]

    return {"Encoder": Encoder, "SpeechEncoder": SpeechEncoder, "CrossKV": CrossKV, "DecoderStep": DecoderStep,
            "SpeechDecoderStep": SpeechDecoderStep}


def decoder_start(model) -> int:
    g = model.generation_config
    start = g.decoder_start_token_id if g.decoder_start_token_id is not None else g.bos_token_id
    if start is None:
        raise SourceError("the model has no decoder_start_token_id (nor bos_token_id) in its generation config")
    return int(start[0] if isinstance(start, list) else start)


def sources(model) -> dict:
    """{graph: (module, args, labels)} with deterministic example inputs (batch 2, a padded second row)."""
    import torch

    m = _torch_modules()
    Encoder, CrossKV, DecoderStep = m["Encoder"], m["CrossKV"], m["DecoderStep"]
    cfg = model.config
    vocab = int(getattr(cfg, "vocab_size", 100) or 100)
    pad = getattr(cfg, "pad_token_id", None)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(min(5, vocab - 1), vocab, (2, EXAMPLE_LEN), generator=g)
    mask = torch.ones_like(ids)
    mask[1, EXAMPLE_LEN - 2:] = 0
    if pad is not None:
        ids[1, EXAMPLE_LEN - 2:] = pad
    start = decoder_start(model)
    encoder, cross_kv, step = Encoder(model).eval(), CrossKV(model, start).eval(), DecoderStep(model).eval()
    with torch.no_grad():
        hidden = encoder(ids, mask)
        ck, cv = cross_kv(hidden)
    past_k = [torch.randn(k.shape[0], k.shape[1], EXAMPLE_PAST, k.shape[3], generator=g) for k in ck]
    past_v = [torch.randn(v.shape[0], v.shape[1], EXAMPLE_PAST, v.shape[3], generator=g) for v in cv]
    dec = torch.randint(min(5, vocab - 1), vocab, (2, 1), generator=g)
    src = {("input_ids", 0): "batch", ("input_ids", 1): "src_len", ("attention_mask", 1): "src_len"}
    return {
        "encoder": (encoder, (ids, mask), src),
        "cross_kv": (cross_kv, (hidden,), {("encoder_hidden_states", 1): "src_len"}),
        "decoder_step": (step, (dec, mask, past_k, past_v, ck, cv),
                         {("encoder_attention_mask", 1): "src_len", ("self_keys_0", 2): "past"}),
    }


def speech_sources(model) -> dict:
    """sources() of a speech encoder-decoder (main input input_features, (B, mel bins, frames)): the encoder
    takes the features at the model's window length (Whisper: 2 x max_source_positions frames), batch 2."""
    import torch

    m = _torch_modules()
    cfg = model.config
    vocab = int(cfg.vocab_size)
    frames = int(cfg.max_source_positions) * 2
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(2, int(cfg.num_mel_bins), frames, generator=g)
    encoder, cross_kv = m["SpeechEncoder"](model).eval(), m["CrossKV"](model, decoder_start(model)).eval()
    step = m["SpeechDecoderStep"](model).eval()
    with torch.no_grad():
        hidden = encoder(feats)
        ck, cv = cross_kv(hidden)
    past_k = [torch.randn(k.shape[0], k.shape[1], EXAMPLE_PAST, k.shape[3], generator=g) for k in ck]
    past_v = [torch.randn(v.shape[0], v.shape[1], EXAMPLE_PAST, v.shape[3], generator=g) for v in cv]
    dec = torch.randint(0, vocab, (2, 1), generator=g)
    return {
        "encoder": (encoder, (feats,), {("input_features", 0): "batch"}),
        "cross_kv": (cross_kv, (hidden,), {("encoder_hidden_states", 0): "batch"}),
        "decoder_step": (step, (dec, past_k, past_v, ck, cv), {("decoder_input_ids", 0): "batch",
                                                               ("self_keys_0", 2): "past"}),
    }


def drop_unused_weights(program: ir.Program) -> ir.Program:
    """Weights no node reads are not inputs of this graph (each graph holds the whole HF model)."""
    used = {r.name for n in program.nodes for r in n.refs()}
    used |= {r.name for o in program.outputs for r in ir.iter_refs(o)}
    used |= {r.name for _, v in program.mutations for r in ir.iter_refs(v)}
    inputs = tuple(i for i in program.inputs if i.kind == "user" or i.name in used)
    kept = {i.target for i in inputs if i.kind != "user"}
    return replace(program, inputs=inputs, tied=tuple((a, c) for a, c in program.tied if c in kept))


def seq2seq_program(program: ir.Program, quantize: int | None = None, group_size: int = 64) -> ir.Program:
    from ..compiler.passes import eliminate_dead_code, run_default_passes

    program = drop_unused_weights(run_default_passes(eliminate_dead_code(program)))
    if quantize:
        from ..llm.quantize import quantize_linears

        program = quantize_linears(program, quantize, group_size)
    return program


def quantized_weights(captured_weights: dict):
    """write_weights of a graph whose linears were quantized (llm.quantize): the float weights of the
    captured module, each quantized linear's weight as mx.quantize packs it, with its scales and biases."""
    def write(lowered, path, dtype):
        import mlx.core as mx

        from ..compiler import dtypes, layouts
        from ..compiler.weights import from_numpy, save, to_numpy
        from ..llm.convert import _quantized

        q = _quantized(lowered.program)
        out = {}
        for i in lowered.program.weight_inputs:
            if i.name in q.extra:
                continue
            t = captured_weights[i.target]
            src_dtype = str(t.dtype).replace("torch.", "")
            a = to_numpy(t)
            if i.name in lowered.weight_layouts:
                role, args = lowered.weight_layouts[i.name]
                a = layouts.apply(role, a, args)
            arr = from_numpy(a)
            target = dtype if (dtype and dtypes.is_float(src_dtype)) else src_dtype
            arr = arr.astype(getattr(mx, dtypes.MX[target]))
            if i.name in q.weights:
                s_in, b_in, bits, gs = q.weights[i.name]
                arr, out[q.target[s_in]], out[q.target[b_in]] = mx.quantize(arr, group_size=gs, bits=bits)
            out[i.target] = arr
        save(path, out)
    return write


def capture_graph(name: str, module, args, labels, description: str):
    from ..compiler.capture import capture

    return capture(module, args, {}, description=f"{description}#{name}", shapes="auto", labels=labels)


NEED_DYNAMIC = {"encoder": [("input_ids", 0), ("input_ids", 1)],
                "cross_kv": [("encoder_hidden_states", 0), ("encoder_hidden_states", 1)],
                "decoder_step": [("decoder_input_ids", 0), ("encoder_attention_mask", 1), ("self_keys_0", 2)]}


def check_dynamic(name: str, captured, need_dynamic: dict | None = None) -> None:
    """The axes the driver varies must have stayed dynamic (batch everywhere, source and past lengths)."""
    from ..compiler.errors import CaptureError

    need = (need_dynamic or NEED_DYNAMIC)[name]
    dyn = {tuple(a) for d in captured.program.dims for a in d.axes}
    missing = [f"{i}[{a}]" for i, a in need if (i, a) not in dyn]
    if missing:
        why = "; ".join(s.reason for s in captured.program.static_dims if f"{s.input}[{s.axis}]" in missing)
        raise CaptureError(f"graph {name!r}: torch.export kept {', '.join(missing)} static ({why}); "
                           "generation needs them dynamic")


def generation_settings(model) -> dict:
    """HF's resolved generation config (generation_config.json over config.json defaults), the keys the
    driver implements or refuses."""
    d = model.generation_config.to_dict()
    out = {k: d.get(k) for k in GEN_KEYS}
    if out["decoder_start_token_id"] is None:
        out["decoder_start_token_id"] = decoder_start(model)
    return out


class Seq2SeqRecipe(Recipe):
    name = "seq2seq"
    driver = "seq2seq"
    description = ("Hugging Face encoder-decoder text model -> encoder, cross_kv, decoder_step (KV cache) "
                   "+ greedy / beam-search generate")

    need_dynamic = NEED_DYNAMIC

    @classmethod
    def accepts_hf_config(cls, config: dict) -> bool:
        return is_seq2seq_config(config)

    @staticmethod
    def sources(model) -> dict:
        return sources(model)

    @staticmethod
    def generation_info(model, graphs) -> dict:
        return generation_info(model, graphs)

    def build(self, source, options: Options, step) -> list[Graph]:
        if not isinstance(source, (str, Path)) or not (Path(source) / "config.json").is_file():
            raise SourceError(f"recipe {self.name!r} takes a Hugging Face model directory, got {source!r}")
        if options.inputs or options.dynamic or options.shapes == "static":
            raise SourceError(f"recipe {self.name!r} makes its own example inputs with dynamic batch and lengths: "
                              "--inputs, --dynamic and --static do not apply (use --recipe graph "
                              "for a plain forward)")
        check_quantize(options.quantize, options.group_size, self.name)
        folder = Path(source)
        step("loading the model")
        model = load_model(folder)
        description = f"hf:{folder.resolve()}"
        graphs = []
        srcs = self.sources(model)
        for name in GRAPHS:
            module, args, labels = srcs[name]
            step(f"torch.export {name}")
            captured = capture_graph(name, module, args, labels, description)
            check_dynamic(name, captured, self.need_dynamic)
            program = seq2seq_program(captured.program, options.quantize, options.group_size)
            write = quantized_weights(captured.weights) if options.quantize else None
            graphs.append(Graph(name, captured, program, dir=name, write_weights=write))
        info = self.generation_info(model, graphs)
        if options.quantize:
            info["quantization"] = {"bits": options.quantize, "group_size": options.group_size}
        graphs[0].info["seq2seq"] = info
        return graphs

    def extras(self, source, tmp: Path, graphs, options) -> dict:
        folder = Path(source)
        for name in FILES:
            if (folder / name).is_file():
                shutil.copy2(folder / name, tmp / name)
        from .translation import translation_info

        translation = translation_info(folder, tmp)
        # the source as `fx2mlx check` rebuilds it (write_output records a program's source as given)
        return {"seq2seq": graphs[0].info.pop("seq2seq"), "source": f"hf:{folder.resolve()}",
                "translation": translation}

    def reference(self, manifest, graph, source, inputs, captured=None):
        user_inputs = None
        if captured is None or inputs is not None or source is not None:
            model = load_model(Path(source))
            module, args, labels = self.sources(model)[graph]
            captured = capture_graph(graph, module, args, labels, f"hf:{Path(source).resolve()}")
            if inputs:
                from safetensors.torch import load_file

                tensors = load_file(str(inputs))
                user_inputs = [tensors[f"input_{i}"] for i in range(len(tensors))]
        q = (manifest.get("seq2seq") or {}).get("quantization") or {}
        return captured, seq2seq_program(captured.program, q.get("bits"), q.get("group_size", 64)), user_inputs


def generation_info(model, graphs: list[Graph]) -> dict:
    step = next(g for g in graphs if g.name == "decoder_step").program
    heads = {}
    for i in step.user_inputs:
        if isinstance(i.type, ir.TensorType) and i.name.startswith(("self_keys_", "self_values_")):
            heads[i.name] = [i.type.shape[1], i.type.shape[3]]
    layers = sum(n.startswith("self_keys_") for n in heads)
    return {"layers": layers, "self_kv": [[heads[f"self_keys_{k}"], heads[f"self_values_{k}"]] for k in range(layers)],
            "vocab_size": int(model.config.vocab_size), "generation": generation_settings(model)}
