"""Hugging Face model directories (config.json + safetensors) as a SOURCE.

The class comes from `architectures` in config.json; weights are read from safetensors (a pickled
checkpoint only with allow_pickle / `--allow-pickle`, through torch.load(weights_only=True)). Missing,
unexpected or mis-shaped weights are errors naming the keys (transformers' loading report). Example inputs follow the model's main input: token ids for text models, pixel values for
vision models, log-mel features for speech encoders; `--inputs file.safetensors` overrides them.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch

from .errors import SourceError

SEQ_LEN = 8
BATCH = 2


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


def load_hf_dir(path: Path, allow_pickle: bool = False):
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise SourceError(f"{path} is not a Hugging Face model directory: config.json is missing")
    try:
        cfg = json.loads(cfg_file.read_text())
    except ValueError as e:
        raise SourceError(f"{cfg_file}: invalid JSON: {e}") from e
    shards = sorted(path.glob("*.safetensors"))
    pickles = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
    use_pickle = not shards and pickles and allow_pickle
    if not shards and not use_pickle:
        hint = f" (found {', '.join(pickles)}: pickled weights are not loaded, since loading them can run code; " \
               "convert them to safetensors, or pass --allow-pickle to load them with torch.load(weights_only=True))" \
            if pickles else ""
        raise SourceError(f"{path}: no *.safetensors weights{hint}")
    _check_safetensors(shards)
    try:
        import transformers
    except ImportError as e:
        raise SourceError("loading a Hugging Face directory needs `transformers` (pip install transformers)") from e
    archs = cfg.get("architectures") or []
    cls = None
    for a in archs:
        cls = getattr(transformers, a, None)
        if cls is not None:
            break
    if cls is None:
        cls = transformers.AutoModel
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        with _weights_only_torch_load():
            model, info = cls.from_pretrained(str(path), use_safetensors=not use_pickle, output_loading_info=True,
                                              ignore_mismatched_sizes=True)  # reported below, then refused
    except Exception as e:
        raise SourceError(f"{path}: transformers could not load the model ({cls.__name__}): "
                          f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
    check_loading_info(path, model, info)
    model.eval()
    args, kwargs = example_inputs(model)
    return model, args, kwargs


def check_loading_info(folder, model, info: dict) -> None:
    """transformers' loading report (from_pretrained(..., output_loading_info=True)) -> an error naming
    every missing, unexpected or mis-shaped weight. A missing key tied to a present one is fine."""
    ties = getattr(model, "all_tied_weights_keys", None)  # transformers 5: the ties in force, {tied: source}
    if ties is None and getattr(getattr(model, "config", None), "tie_word_embeddings", False):
        ties = getattr(model, "_tied_weights_keys", None) or {}  # older: what the class ties when the config asks
        ties = ties if isinstance(ties, dict) else {k: None for k in ties}
    reported = set(info.get("missing_keys") or ())
    tied = {k for k, src in (ties or {}).items() if src is None or src not in reported}
    missing = sorted(k for k in info.get("missing_keys") or () if k not in tied)
    unexpected = sorted(info.get("unexpected_keys") or ())
    mismatched = [m for m in info.get("mismatched_keys") or ()]
    if not (missing or unexpected or mismatched):
        return
    parts = []

    def keys(ks):
        return ", ".join(ks[:8]) + (f" … ({len(ks)} in all)" if len(ks) > 8 else "")

    if missing:
        parts.append(f"missing from the checkpoint: {keys(missing)}")
    if unexpected:
        parts.append(f"in the checkpoint but not in the model: {keys(unexpected)}")
    if mismatched:
        parts.append("with another shape: " + keys([f"{m[0]} {tuple(m[1])} vs the model's {tuple(m[2])}"
                                                    if isinstance(m, (tuple, list)) and len(m) == 3 else str(m)
                                                    for m in mismatched]))
    raise SourceError(f"{folder}: the weights do not match {type(model).__name__} ({'; '.join(parts)}); "
                      "transformers would initialise missing weights at random, so fx2mlx refuses them. "
                      "Check that the checkpoint belongs to this config.json.")


class _weights_only_torch_load:
    """Within it, torch.load refuses to unpickle anything but tensors (weights_only=True), whatever the caller asks."""

    def __enter__(self):
        import functools

        self.orig = torch.load

        @functools.wraps(self.orig)
        def load(*args, **kwargs):
            kwargs["weights_only"] = True
            return self.orig(*args, **kwargs)

        torch.load = load

    def __exit__(self, *exc):
        torch.load = self.orig


def _check_safetensors(files) -> None:
    from safetensors import safe_open

    for f in files:
        try:
            with safe_open(str(f), "pt") as h:
                h.keys()
        except Exception as e:
            raise SourceError(f"{f}: corrupt or unreadable safetensors file: {e}") from e


def example_inputs(model) -> tuple[tuple, dict]:
    """Example inputs that do not make torch.export specialise batch or length: batch 2, lengths above 1,
    and a padded second row where the model takes an attention mask."""
    cfg = model.config
    name = getattr(model, "main_input_name", "input_ids")
    g = torch.Generator().manual_seed(0)
    kwargs: dict = {}
    if name == "input_ids":
        vocab = getattr(cfg, "vocab_size", 100) or 100
        ids = torch.randint(low=min(5, vocab - 1), high=vocab, size=(BATCH, SEQ_LEN), generator=g)
        mask = torch.ones_like(ids)
        mask[1, SEQ_LEN - 2:] = 0  # the second sentence is shorter (padding)
        kwargs["input_ids"] = ids
        kwargs["attention_mask"] = mask
        if getattr(cfg, "is_encoder_decoder", False):
            kwargs["decoder_input_ids"] = ids[:, :4]
    elif name == "pixel_values":
        size = getattr(cfg, "image_size", 224)
        size = size if isinstance(size, int) else size[0]
        kwargs["pixel_values"] = torch.randn(BATCH, getattr(cfg, "num_channels", 3), size, size, generator=g)
    elif name == "input_features":
        frames = 2 * getattr(cfg, "max_source_positions", 1500)
        kwargs["input_features"] = torch.randn(BATCH, getattr(cfg, "num_mel_bins", 80), frames, generator=g)
        if getattr(cfg, "is_encoder_decoder", False):
            start = getattr(cfg, "decoder_start_token_id", 1) or 1
            kwargs["decoder_input_ids"] = torch.tensor([[start, start + 1, start + 2]] * BATCH)
    elif name == "input_values":  # raw audio (wav2vec2, HuBERT, …): one second at 16 kHz
        kwargs["input_values"] = torch.randn(BATCH, 16000, generator=g)
    else:
        raise SourceError(f"no default example inputs for main input {name!r}; pass --inputs file.safetensors")
    if hasattr(cfg, "use_cache"):
        kwargs["use_cache"] = False
    return (), kwargs


@contextlib.contextmanager
def traceable_experts(module):
    """Within it, transformers' mixture-of-experts modules dispatch through HF's own "batched_mm" experts
    implementation (each (token, expert) pair gathers its expert's weights; one batched matmul): the
    same result as "eager" and "grouped_mm", without their data-dependent shapes, and the pattern that
    `experts.fuse_gather_mm` turns into gathered matmuls. Modules outside transformers' experts interface
    (no `_is_expert_parallel` set by `use_experts_implementation`) are left alone."""
    configs = {}
    for m in module.modules():
        cfg = getattr(m, "config", None)
        if hasattr(m, "_is_expert_parallel") and not m._is_expert_parallel \
                and hasattr(cfg, "_experts_implementation_internal"):
            configs[id(cfg)] = cfg
    saved = {k: c._experts_implementation_internal for k, c in configs.items()}
    try:
        for c in configs.values():
            c._experts_implementation_internal = "batched_mm"
        yield
    finally:
        for k, c in configs.items():
            c._experts_implementation_internal = saved[k]
