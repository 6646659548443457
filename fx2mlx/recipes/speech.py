"""The speech-to-text recipe: a Hugging Face Whisper directory (`WhisperForConditionalGeneration`, config.json
`model_type: whisper`) -> the seq2seq recipe's three graphs on log-mel features + the Whisper driver.

    encoder       (input_features (B, mel bins, 2 x max_source_positions)) -> hidden   batch dynamic; the
                                                                                    frames are the model's window
    cross_kv      (encoder_hidden_states) -> ([K per layer], [V per layer])         once per 30 s window
    decoder_step  (decoder_input_ids (B, 1), self K..., self V..., cross K..., cross V...)
                  -> (logits (B, V), [self K], [self V])                            past length dynamic

The graphs are built as in `seq2seq.py` (HF's forward around HF's own caches, captured). What is Whisper's:
the generation rules (`drivers/whisper.py`: forced language / task / <|notimestamps|>, timestamp rules,
suppress tokens, long-form windows) read from generation_config.json, recorded in manifest["whisper"];
the log-mel front end's settings (preprocessor_config.json, or WhisperFeatureExtractor's defaults for the
model's mel bins), recorded in manifest["audio"] and computed in MLX at run time (`runtime/audio.py`,
vendored into OUT/program.py); the tokenizer (tokenizer.json) copied for text output.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from ..compiler.errors import SourceError
from .seq2seq import FILES, Seq2SeqRecipe, generation_info, speech_sources

NEED_DYNAMIC = {"encoder": [("input_features", 0)], "cross_kv": [("encoder_hidden_states", 0)],
                "decoder_step": [("decoder_input_ids", 0), ("self_keys_0", 2)]}
# generation_config.json keys the Whisper driver reads (the rest of the config is not recorded)
WHISPER_KEYS = ("lang_to_id", "task_to_id", "no_timestamps_token_id", "is_multilingual", "forced_decoder_ids",
                "max_initial_timestamp_index", "prev_sot_token_id", "return_timestamps", "language", "task",
                "condition_on_prev_tokens", "compression_ratio_threshold", "logprob_threshold", "no_speech_threshold",
                "temperature", "max_length", "max_new_tokens")
AUDIO_KEYS = ("feature_size", "sampling_rate", "hop_length", "n_fft", "chunk_length", "padding_value", "dither",
              "do_normalize")


def is_whisper_config(config: dict) -> bool:
    archs = config.get("architectures") or []
    return config.get("model_type") == "whisper" and (not archs or "WhisperForConditionalGeneration" in archs)


def audio_settings(folder: Path, num_mel_bins: int) -> dict:
    """The feature extractor's settings: preprocessor_config.json, else WhisperFeatureExtractor's defaults for
    the model's number of mel bins (recorded as such)."""
    from transformers import WhisperFeatureExtractor

    path = folder / "preprocessor_config.json"
    if path.is_file():
        fe, origin = WhisperFeatureExtractor.from_pretrained(str(folder)), "preprocessor_config.json"
    else:
        fe, origin = WhisperFeatureExtractor(feature_size=num_mel_bins), "defaults"
    d = fe.to_dict()
    out = {k: d.get(k) for k in AUDIO_KEYS}
    out["origin"] = origin
    if out["feature_size"] != num_mel_bins:
        raise SourceError(f"{path}: feature_size {out['feature_size']} differs from the model's num_mel_bins "
                          f"{num_mel_bins}")
    if out["do_normalize"]:
        raise SourceError(f"{path}: do_normalize=True (zero-mean unit-variance audio) is not implemented")
    return out


class SpeechToTextRecipe(Seq2SeqRecipe):
    name = "speech-to-text"
    driver = "whisper"
    description = ("Hugging Face Whisper -> encoder (log-mel), cross_kv, decoder_step (KV cache) + Whisper's "
                   "generation rules, log-mel front end and transcription")
    need_dynamic = NEED_DYNAMIC

    @classmethod
    def accepts_hf_config(cls, config: dict) -> bool:
        return is_whisper_config(config)

    @staticmethod
    def sources(model) -> dict:
        return speech_sources(model)

    def build(self, source, options, step):
        graphs = super().build(source, options, step)
        n_mels = graphs[0].info["seq2seq"]["whisper"]["num_mel_bins"]
        graphs[0].info["audio"] = audio_settings(Path(source), n_mels)  # before the (slow) writing: errors first
        return graphs

    @staticmethod
    def generation_info(model, graphs) -> dict:
        info = generation_info(model, graphs)
        d = model.generation_config.to_dict()
        w = {k: d.get(k) for k in WHISPER_KEYS}
        if w["no_timestamps_token_id"] is None:
            raise SourceError("generation_config.json has no no_timestamps_token_id: Whisper's generation rules "
                              "(timestamps, <|notimestamps|>) cannot be applied; save the model's generation config")
        enc = model.get_encoder()
        cfg = model.config
        w.update(input_stride=int(enc.conv1.stride[0] * enc.conv2.stride[0]),
                 max_source_positions=int(cfg.max_source_positions), max_target_positions=int(cfg.max_target_positions),
                 num_mel_bins=int(cfg.num_mel_bins))
        info["whisper"] = w
        return info

    def extras(self, source, tmp: Path, graphs, options) -> dict:
        folder = Path(source)
        for name in FILES + ("preprocessor_config.json",):
            if (folder / name).is_file():
                shutil.copy2(folder / name, tmp / name)
        return {"seq2seq": graphs[0].info.pop("seq2seq"), "audio": graphs[0].info.pop("audio"),
                "source": f"hf:{folder.resolve()}", "tokenizer": tokenizer_info(folder, tmp)}


def tokenizer_info(folder: Path, tmp: Path) -> dict:
    """tokenizer.json into OUT (run time decodes with `tokenizers`), and the id where special tokens begin
    (<|endoftext|>: text tokens are the ids below it)."""
    try:
        import transformers

        tok = transformers.AutoTokenizer.from_pretrained(str(folder))
    except Exception as e:  # noqa: BLE001 - no tokenizer: token ids still work
        return {"error": f"no tokenizer could be loaded from {folder}: {type(e).__name__}: {str(e)[:200]}"}
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None:
        return {"error": f"{type(tok).__name__} has no tokenizer.json (fast tokenizer)"}
    backend.save(str(tmp / "tokenizer.json"))
    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    return {"class": type(tok).__name__, "eot": int(eot) if eot is not None else None}

