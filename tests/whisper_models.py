"""Tiny random-weight Whisper directories with a realistic generation_config.json (laid out like
openai/whisper-tiny's: special tokens after the text vocabulary, 1501 timestamp tokens last), a byte-level
BPE WhisperTokenizer and a WhisperFeatureExtractor, saved with save_pretrained (the real loading path)."""
from __future__ import annotations

from pathlib import Path

LANGS = ("en", "de", "fr", "es")


def _bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def layout(langs=LANGS) -> dict:
    """Token ids: 256 byte tokens, then <|endoftext|>, <|startoftranscript|>, languages, tasks…, timestamps."""
    eot = 256
    ids = {"<|endoftext|>": eot, "<|startoftranscript|>": eot + 1}
    for i, code in enumerate(langs):
        ids[f"<|{code}|>"] = eot + 2 + i
    nxt = eot + 2 + len(langs)
    for i, t in enumerate(("<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>",
                           "<|notimestamps|>")):
        ids[t] = nxt + i
    begin = ids["<|notimestamps|>"] + 1
    for i in range(1501):
        ids[f"<|{i * 0.02:.2f}|>"] = begin + i
    return ids


def build(d: Path, n_mels: int = 80, positions: int = 1500, seed: int = 0, tokenizer: bool = True, **dims):
    """Save a tiny Whisper into d (dims: other WhisperConfig sizes, e.g. d_model); -> the HF model (eval, float32)."""
    import torch
    import transformers as T

    ids = layout()
    eot, sot = ids["<|endoftext|>"], ids["<|startoftranscript|>"]
    sizes = dict(num_mel_bins=n_mels, d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                 decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128)
    sizes.update(dims)
    n_mels = sizes["num_mel_bins"]
    cfg = T.WhisperConfig(vocab_size=len(ids) + 256, **sizes, max_source_positions=positions, max_target_positions=448,
                          pad_token_id=eot, bos_token_id=eot, eos_token_id=eot, decoder_start_token_id=sot,
                          architectures=["WhisperForConditionalGeneration"])
    torch.manual_seed(seed)
    model = T.WhisperForConditionalGeneration(cfg).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # random weights scaled so that decoding depends on the audio and is not one token repeated
        for n, p in model.named_parameters():
            if p.dim() >= 2 and "embed_positions" not in n:
                p.normal_(0, 1.0 / p.shape[-1] ** 0.5, generator=g)
                if n.startswith("model.decoder.") and ("fc1" in n or "fc2" in n or "encoder_attn" in n):
                    p.mul_(3.0)
    gc = model.generation_config
    gc.decoder_start_token_id, gc.eos_token_id, gc.pad_token_id, gc.bos_token_id = sot, eot, eot, eot
    gc.lang_to_id = {f"<|{c}|>": ids[f"<|{c}|>"] for c in LANGS}
    gc.task_to_id = {"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]}
    gc.no_timestamps_token_id = ids["<|notimestamps|>"]
    gc.prev_sot_token_id = ids["<|startofprev|>"]
    gc.is_multilingual = True
    gc.max_initial_timestamp_index = 50
    gc.max_length = 448
    # whisper-tiny suppresses punctuation-like tokens, <|startoflm|>, <|startofprev|>... (byte ids here)
    gc.suppress_tokens = [1, 2, 7, 8, 9, 10, 14, 25, 26, 27, 28, 29, 31, 58, 59, 60, 61, 62, 63, 90, 91, 92, 93,
                          ids["<|startoflm|>"], ids["<|startofprev|>"]]
    gc.begin_suppress_tokens = [220, eot]
    gc.forced_decoder_ids = [[1, None], [2, ids["<|transcribe|>"]]]
    gc.return_timestamps = False
    gc._from_model_config = False  # a checkpoint's own generation config (HF drops Whisper's keys otherwise)
    model.save_pretrained(str(d))
    T.WhisperFeatureExtractor(feature_size=n_mels).save_pretrained(str(d))
    if tokenizer:
        tokenizer_for(ids).save_pretrained(str(d))
    return model


def tokenizer_for(ids: dict):
    import transformers as T

    b2u = _bytes_to_unicode()
    vocab = {b2u[b]: b for b in range(256)}
    vocab.update(ids)
    tok = T.WhisperTokenizer(vocab=vocab, merges=[])
    tok.add_special_tokens({"additional_special_tokens": [t for t in ids if not t[2:3].isdigit()]})
    return tok
