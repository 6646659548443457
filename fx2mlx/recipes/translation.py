"""Text in, text out for a compiled seq2seq model: what `translate` needs, read at compile time from the
model's own Hugging Face tokenizer (transformers) and written into OUT, so that run time needs only
`tokenizers` (tokenizer.json) or `sentencepiece` (the slow-only M2M100 / Marian tokenizers) and mlx.

manifest["translation"] = {
  "tokenizer": "tokenizers" | "sentencepiece",   # tokenizer.json in OUT, or *.spm/*.model + vocab.json
  "class": HF tokenizer class name,
  "spm": {"source": file, "target": file, "vocab": file} (sentencepiece only),
  "prefix": [...], "suffix": [...]   # ids around the source text; "src" marks the source-language token
  "languages": {code: id},           # language tokens (M2M100 / NLLB / mBART-50 style), forced as BOS
  "target_prefix": "<2{}> " | ">>{}<< " | None,  # MADLAD/T5 or multilingual Marian: a tag before the text
  "target_codes": [...],             # the codes such a tag takes (from the vocabulary)
  "src_lang", "tgt_lang": the tokenizer's defaults,
  "special_ids", "special_tokens", "unk_id", "clean_up_tokenization_spaces",
}
Nothing is keyed by model name: the template around the text is found by encoding a probe with and
without special tokens (and with two source languages, to find the language slot).
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

PROBE = "hello world"
TAGS = ((re.compile(r"^<2([A-Za-z_\-]+)>$"), "<2{}> "), (re.compile(r"^>>([A-Za-z_\-]+)<<$"), ">>{}<< "))


def _find(sub: list, seq: list) -> int:
    for i in range(len(seq) - len(sub) + 1):
        if seq[i:i + len(sub)] == sub:
            return i
    return -1


def _template(tok, lang=None, lang_id=None):
    if lang is not None:
        tok.src_lang = lang
    plain = tok(PROBE, add_special_tokens=False)["input_ids"]
    full = tok(PROBE)["input_ids"]
    i = _find(plain, full)
    if i < 0 or not plain:
        return None
    mark = (lambda t: "src" if t == lang_id else t) if lang_id is not None else (lambda t: t)
    return [mark(t) for t in full[:i]], [mark(t) for t in full[i + len(plain):]]


def _languages(tok) -> dict:
    """{code: token id} of the source/target language tokens, where the tokenizer has them."""
    if isinstance(getattr(tok, "lang_code_to_id", None), dict) and tok.lang_code_to_id:
        return {str(k): int(v) for k, v in tok.lang_code_to_id.items()}
    if not hasattr(tok, "src_lang"):
        return {}
    core = {str(getattr(tok, a, None)) for a in ("bos_token", "eos_token", "pad_token", "unk_token", "sep_token",
                                                  "cls_token", "mask_token")}
    out = {}
    for t in tok.all_special_tokens:
        if t in core:
            continue
        try:
            tok.src_lang = t
        except Exception:  # noqa: BLE001 - not a language code
            continue
        out[t] = int(tok.convert_tokens_to_ids(t))
    return out


def translation_info(folder: Path, tmp: Path) -> dict:
    """The tokenizer of `folder` made self-contained in `tmp`; {"error": why} where there is none."""
    try:
        import transformers

        tok = transformers.AutoTokenizer.from_pretrained(str(folder))
    except Exception as e:  # noqa: BLE001 - no tokenizer: generate from ids still works
        return {"error": f"no tokenizer could be loaded from {folder}: {type(e).__name__}: {str(e)[:200]}"}
    info = {"class": type(tok).__name__, "special_ids": sorted(int(i) for i in tok.all_special_ids),
            "special_tokens": sorted(tok.all_special_tokens), "unk_id": tok.unk_token_id,
            "unk_token": str(tok.unk_token) if tok.unk_token is not None else None}
    backend = getattr(tok, "backend_tokenizer", None)
    clean = bool(getattr(tok, "clean_up_tokenization_spaces", False))
    if backend is not None and type(backend.model).__name__ == "BPE" and not getattr(
            tok, "clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output", False):
        clean = False  # transformers skips it for BPE (tokenization_utils_tokenizers._decode)
    info["clean_up_tokenization_spaces"] = clean
    if backend is not None:
        backend.save(str(tmp / "tokenizer.json"))
        info["tokenizer"] = "tokenizers"
    else:
        files = {}
        for key, names in (("source", ("source.spm", "sentencepiece.bpe.model", "spiece.model")),
                           ("target", ("target.spm", "sentencepiece.bpe.model", "spiece.model")),
                           ("vocab", ("vocab.json",))):
            name = next((n for n in names if (folder / n).is_file()), None)
            if name is None:
                return {"error": f"{type(tok).__name__} has no tokenizer.json and {folder} lacks its {key} file"}
            shutil.copy2(folder / name, tmp / name)
            files[key] = name
        if (folder / "target_vocab.json").is_file() or getattr(tok, "separate_vocabs", False):
            return {"error": f"{type(tok).__name__} with separate source/target vocabularies is not supported"}
        info.update(tokenizer="sentencepiece", spm=files, languages_in_vocab=_lang_tokens(tok))
    src_default = getattr(tok, "src_lang", None)
    langs = _languages(tok)  # (sets tok.src_lang while probing)
    if langs:
        a, b = sorted(langs)[:2] if len(langs) > 1 else (next(iter(langs)), None)
        t1 = _template(tok, a, langs[a])
        t2 = _template(tok, b, langs[b]) if b else t1
        if src_default is not None:
            tok.src_lang = src_default
        if t1 is None or t1 != t2 or "src" not in t1[0] + t1[1]:
            langs = {}  # language tokens that are not put around the source: not a language-token model
    template = t1 if langs else _template(tok)
    if template is None:
        return {"error": f"{type(tok).__name__}: the special tokens around a text could not be determined"}
    info["prefix"], info["suffix"] = template
    info["languages"] = langs
    info["src_lang"] = src_default if langs else None
    info["tgt_lang"] = getattr(tok, "tgt_lang", None) if langs else None
    info["target_prefix"], info["target_codes"] = None, []
    if not langs:
        vocab = tok.get_vocab()
        for pattern, fmt in TAGS:
            codes = sorted(m.group(1) for t in vocab if (m := pattern.match(t)))
            if codes:
                info["target_prefix"], info["target_codes"] = fmt, codes
                break
    return info


def _lang_tokens(tok) -> dict:
    """Tokens outside vocab.json that the slow tokenizer maps to ids (M2M100's language tokens)."""
    return {str(k): int(v) for k, v in (getattr(tok, "lang_token_to_id", None) or {}).items()}
