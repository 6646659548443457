"""Hugging Face model directories (config.json + safetensors) as a SOURCE.

The class comes from `architectures` in config.json; weights are read from safetensors only (never a
pickle). Example inputs follow the model's main input: token ids for text models, pixel values for
vision models, log-mel features for speech encoders; `--inputs file.safetensors` overrides them.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .errors import SourceError

SEQ_LEN = 8
BATCH = 2


def load_hf_dir(path: Path):
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise SourceError(f"{path} is not a Hugging Face model directory: config.json is missing")
    try:
        cfg = json.loads(cfg_file.read_text())
    except ValueError as e:
        raise SourceError(f"{cfg_file}: invalid JSON: {e}") from e
    shards = sorted(path.glob("*.safetensors"))
    if not shards:
        pickles = [p.name for p in path.glob("*.bin")] + [p.name for p in path.glob("*.pt")]
        hint = f" (found {', '.join(pickles)}: pickled weights are not loaded, since loading them can run code; " \
               "convert them to safetensors)" if pickles else ""
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
        model = cls.from_pretrained(str(path), use_safetensors=True)
    except Exception as e:
        raise SourceError(f"{path}: transformers could not load the model ({cls.__name__}): "
                          f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
    model.eval()
    args, kwargs = example_inputs(model)
    return model, args, kwargs


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
