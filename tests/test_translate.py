"""Encoder-decoder translation models (recipe seq2seq): greedy and beam-search tokens equal HF `generate`.

Tiny random-weight M2M100 (NLLB's architecture, forced BOS = target language), Marian (swish, bad word =
pad, forced EOS) and T5 v1.1 gated-GELU (MADLAD's; relative position bias) saved with save_pretrained: the
real loading path. Batches of 3 padded sentences of different lengths, 40 new tokens, float32.
"""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
import torch
import transformers as T

ROWS = [[5, 6, 7, 8, 9, 10, 2], [11, 12, 13, 2], [20, 21, 22, 23, 24, 2]]
FAMILIES = ("m2m100", "marian", "t5")
try:
    import sentencepiece  # noqa: F401 - the tiny tokenizers are trained with it (a dev dependency)

    HAVE_SPM = True
except ImportError:
    HAVE_SPM = False
needs_spm = pytest.mark.skipif(not HAVE_SPM, reason="sentencepiece is not installed")
SENTS = ["hello world", "the cat sat on the mat", "a quick brown fox jumps over the lazy dog",
         "good morning to you", "where is the train station", "I love pizza and pasta", "the weather is nice today",
         "translation models are fun", "we test small tokenizers", "one two three four five six seven"]


def build(kind: str):
    common = dict(vocab_size=128, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                  decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=128,
                  tie_word_embeddings=False)
    if kind == "m2m100":
        cfg = T.M2M100Config(scale_embedding=True, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                             decoder_start_token_id=2, architectures=["M2M100ForConditionalGeneration"], **common)
        model, gen = T.M2M100ForConditionalGeneration(cfg), dict(forced_bos_token_id=5)
    elif kind == "marian":
        cfg = T.MarianConfig(activation_function="swish", pad_token_id=127, eos_token_id=0,
                             decoder_start_token_id=127, architectures=["MarianMTModel"], **common)
        model, gen = T.MarianMTModel(cfg), dict(bad_words_ids=[[127]], forced_eos_token_id=0)
    else:
        cfg = T.T5Config(vocab_size=128, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4,
                         feed_forward_proj="gated-gelu", tie_word_embeddings=False, relative_attention_num_buckets=8,
                         relative_attention_max_distance=16, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
                         architectures=["T5ForConditionalGeneration"])
        model, gen = T.T5ForConditionalGeneration(cfg), {}
    g = torch.Generator().manual_seed(0)
    scale = 3.0 if kind == "t5" else 1.0  # random weights scaled so that logits are not flat
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0, scale / p.shape[-1] ** 0.5, generator=g)
    for k, v in gen.items():
        setattr(model.generation_config, k, v)
    return model.eval()


def _spm(kind, n=60):
    import sentencepiece as spm

    f = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(SENTS * 5), model_writer=f, vocab_size=n, model_type=kind,
                                   hard_vocab_limit=False, character_coverage=1.0, minloglevel=2)
    proto = f.getvalue()
    sp = spm.SentencePieceProcessor(model_proto=proto)
    pieces = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())
              if not (sp.is_unknown(i) or sp.is_control(i))]
    return proto, pieces


def save_tokenizer(kind: str, d: Path):
    """A tiny tokenizer of the family's own HF class, saved into the model directory d."""
    import transformers as T

    tmp = d / "_tok"
    tmp.mkdir(parents=True, exist_ok=True)
    if kind == "m2m100":
        proto, pieces = _spm("bpe")
        (tmp / "sentencepiece.bpe.model").write_bytes(proto)
        vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
        vocab.update({p: 4 + i for i, (p, _) in enumerate(pieces)})
        (tmp / "vocab.json").write_text(json.dumps(vocab))
        tok = T.M2M100Tokenizer(str(tmp / "vocab.json"), str(tmp / "sentencepiece.bpe.model"), language_codes="wmt21",
                                src_lang="en", tgt_lang="de")
    elif kind == "marian":
        proto, pieces = _spm("unigram")
        for n in ("source.spm", "target.spm"):
            (tmp / n).write_bytes(proto)
        vocab = {"</s>": 0, "<unk>": 1}
        vocab.update({p: 2 + i for i, (p, _) in enumerate(pieces)})
        vocab.update({f"\u2581x{i}": i for i in range(len(vocab), 127)})  # a Marian vocab covers every id
        vocab["<pad>"] = 127
        (tmp / "vocab.json").write_text(json.dumps(vocab))
        tok = T.MarianTokenizer(str(tmp / "source.spm"), str(tmp / "target.spm"), str(tmp / "vocab.json"))
    else:
        _, pieces = _spm("unigram")
        vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + pieces + [("<2de>", -5.0), ("<2fr>", -5.0)]
        tok = T.T5Tokenizer(vocab=vocab, extra_ids=0)
    tok.save_pretrained(str(d))
    shutil.rmtree(tmp)
    return tok


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """family -> (HF model, compiled dir), compiled once per module."""
    from fx2mlx.recipes import compile_source

    out = {}
    for kind in FAMILIES:
        d = tmp_path_factory.mktemp(kind)
        model = build(kind)
        model.save_pretrained(d / "hf")
        if HAVE_SPM:
            save_tokenizer(kind, d / "hf")
        compile_source(str(d / "hf"), d / "out")
        out[kind] = (T.AutoModelForSeq2SeqLM.from_pretrained(str(d / "hf")).eval(), d / "out")
    return out


def _batch(model):
    pad = model.config.pad_token_id
    n = max(map(len, ROWS))
    ids = torch.tensor([r + [pad] * (n - len(r)) for r in ROWS])
    mask = torch.tensor([[1] * len(r) + [0] * (n - len(r)) for r in ROWS])
    return ids, mask


def test_recipe_is_picked_for_translation_configs(compiled):
    from fx2mlx.recipes import pick_recipe
    from fx2mlx.recipes.seq2seq import is_seq2seq_config

    for kind in FAMILIES:
        manifest = json.loads((compiled[kind][1] / "manifest.json").read_text())
        assert manifest["recipe"] == "seq2seq" and list(manifest["graphs"]) == ["encoder", "cross_kv", "decoder_step"]
        assert pick_recipe(str(compiled[kind][1].parent / "hf")).name == "seq2seq"
    whisper = {"is_encoder_decoder": True, "architectures": ["WhisperForConditionalGeneration"]}
    assert not is_seq2seq_config(whisper)
    assert is_seq2seq_config({"is_encoder_decoder": True, "architectures": ["BartForConditionalGeneration"]})
    assert not is_seq2seq_config({"architectures": ["LlamaForCausalLM"]})


@pytest.mark.parametrize("num_beams", [1, 4])
@pytest.mark.parametrize("kind", FAMILIES)
def test_tokens_equal_hf_generate(compiled, kind, num_beams):
    import fx2mlx

    model, out = compiled[kind]
    ids, mask = _batch(model)
    with torch.no_grad():
        ref = model.generate(input_ids=ids, attention_mask=mask, num_beams=num_beams, max_new_tokens=40,
                             do_sample=False).tolist()
        logits = model(input_ids=ids, attention_mask=mask, decoder_input_ids=ids[:, :3]).logits
    assert logits.std() > 0.5  # not flat
    assert all(len(set(r)) >= 4 for r in ref), ref  # not degenerate (one token repeated)
    program = fx2mlx.load(out)
    got = program.generate(ROWS, max_new_tokens=40, num_beams=num_beams)
    assert got == ref
    # the same from a padded array with its mask
    got = program.generate(ids.numpy(), attention_mask=mask.numpy(), max_new_tokens=40, num_beams=num_beams)
    assert got == ref


def test_generation_config_options_equal_hf(compiled):
    """no_repeat_ngram_size, repetition_penalty, min_length, length_penalty, early_stopping, several eos."""
    import fx2mlx

    model, out = compiled["marian"]
    ids, mask = _batch(model)
    program = fx2mlx.load(out)
    for kw in (dict(num_beams=3, no_repeat_ngram_size=2, length_penalty=0.6, early_stopping=True),
               dict(num_beams=1, repetition_penalty=1.3, min_length=12),
               dict(num_beams=4, eos_token_id=[0, 42], early_stopping="never", num_return_sequences=2)):
        with torch.no_grad():
            ref = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=25, do_sample=False, **kw).tolist()
        assert program.generate(ROWS, max_new_tokens=25, **kw) == ref, kw


def test_decoder_step_has_no_encoder_work(compiled):
    """The IR of decoder_step: no encoder weights, and no linear/matmul reads the encoder output or the
    cross-attention keys/values except the attention itself (the cross K/V projections are in cross_kv)."""
    from fx2mlx.compiler import ir

    for kind in FAMILIES:
        out = compiled[kind][1]
        step = ir.Program.from_json((out / "decoder_step" / "ir.json").read_text())
        cross = ir.Program.from_json((out / "cross_kv" / "ir.json").read_text())
        names = [i.name for i in step.user_inputs]
        assert not any("encoder_hidden" in n for n in names)
        assert not any(".encoder." in (i.target or "") or (i.target or "").startswith("encoder.")
                       for i in step.weight_inputs)
        cross_inputs = {n for n in names if n.startswith("cross_")}
        assert len(cross_inputs) == 4  # K and V of 2 layers
        linear = {"aten.linear.default", "aten.mm.default", "aten.addmm.default", "aten.matmul.default"}
        dg = {n.name: n for n in step.nodes}

        def reaches_cross(ref, seen=None):
            seen = seen if seen is not None else set()
            if ref.name in cross_inputs:
                return True
            n = dg.get(ref.name)
            if n is None or ref.name in seen or n.target in ("aten.scaled_dot_product_attention.default",):
                return False
            seen.add(ref.name)
            return any(reaches_cross(r, seen) for r in n.refs())

        for n in step.nodes:
            if n.target in linear:  # projections: none may read the encoder side
                assert not any(reaches_cross(r) for r in n.refs()), (kind, n.name)
        # every cross K/V projection weight is in cross_kv, none in decoder_step
        ck_weights = {i.target for i in cross.weight_inputs}
        assert len(ck_weights) >= 4 and not ck_weights & {i.target for i in step.weight_inputs}
        assert sum(n.target in linear for n in cross.nodes) == 4


def test_cli_generate_json(compiled, capsys):
    import fx2mlx
    from fx2mlx.cli import main

    out = str(compiled["m2m100"][1])
    capsys.readouterr()
    assert main(["generate", out, "--prompt-ids", "5,6,7,8,2", "--num-beams", "4", "--max-tokens", "12",
                 "--json"]) == 0
    tokens = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["tokens"]
    program = fx2mlx.load(out)
    row = program.generate([[5, 6, 7, 8, 2]], num_beams=4, max_new_tokens=12)[0]
    assert tokens == program.new_tokens(row) and tokens[0] == 5  # forced BOS (the target language)


def test_check_passes_per_graph(compiled):
    from fx2mlx.golden.cli import check_output

    reports = check_output(compiled["t5"][1], plot=False, quiet=True)
    assert set(reports) == {"encoder", "cross_kv", "decoder_step"}
    assert all(r["passed"] for r in reports.values())


# ------------------------------------------------------------------------------------------------
# Text in, text out: `translate` and `fx2mlx translate` with each family's own tokenizer
# ------------------------------------------------------------------------------------------------
TEXTS = ["hello world", "the cat sat on the mat today", "zebra pizza, good morning!"]
LANGS = {"m2m100": ("en", "de"), "marian": (None, None), "t5": (None, "de")}


def _hf_translate(kind, model, hf_dir, texts, **kw):
    """HF's own path: tokenizer(texts) -> generate -> batch_decode(skip_special_tokens=True)."""
    tok = T.AutoTokenizer.from_pretrained(str(hf_dir))
    src, tgt = LANGS[kind]
    gen = {}
    if kind == "m2m100":
        tok.src_lang = src
        gen["forced_bos_token_id"] = tok.get_lang_id(tgt)
    if kind == "t5":
        texts = [f"<2{tgt}> {t}" for t in texts]
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**enc, do_sample=False, **gen, **kw)
    ids = [[t for t, m in zip(r, mk) if m] for r, mk in zip(enc.input_ids.tolist(), enc.attention_mask.tolist())]
    return ids, tok.batch_decode(out, skip_special_tokens=True)


@needs_spm
@pytest.mark.parametrize("num_beams", [1, 4])
@pytest.mark.parametrize("kind", FAMILIES)
def test_translate_text_equals_hf(compiled, kind, num_beams):
    """The ids fed to the model equal HF's tokenizer's, and the texts equal HF generate + decode."""
    import fx2mlx

    model, out = compiled[kind]
    src, tgt = LANGS[kind]
    program = fx2mlx.load(out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert "error" not in manifest["translation"], manifest["translation"]
    ref_ids, ref_text = _hf_translate(kind, model, out.parent / "hf", TEXTS, num_beams=num_beams, max_new_tokens=20)
    ids, gen = program.prepare(TEXTS, src=src, tgt=tgt)
    assert ids == ref_ids
    got = program.translate(TEXTS, src=src, tgt=tgt, num_beams=num_beams, max_new_tokens=20)
    assert got == ref_text
    assert all(isinstance(t, str) for t in got) and sum(map(bool, got)) >= 2, got  # text, not all empty


@needs_spm
def test_translate_languages_are_checked(compiled):
    import fx2mlx

    m2m = fx2mlx.load(compiled["m2m100"][1])
    with pytest.raises(ValueError, match="target language"):
        m2m.translate(["hello"], src="en", tgt="xx")
    en = m2m.text_tokenizer().info["languages"]["en"]
    assert m2m.prepare("hello", src="de", tgt="en")[1] == {"forced_bos_token_id": en}
    with pytest.raises(ValueError, match="fixed language pair"):
        fx2mlx.load(compiled["marian"][1]).translate(["hello"], tgt="de")
    with pytest.raises(ValueError, match="target language"):
        fx2mlx.load(compiled["t5"][1]).translate(["hello"], tgt="xx")


@needs_spm
def test_cli_translate(compiled, capsys, tmp_path):
    """`fx2mlx translate` prints one line per text for each family, equal to translate() (and so to HF)."""
    import fx2mlx
    from fx2mlx.cli import main

    for kind in FAMILIES:
        out = compiled[kind][1]
        src, tgt = LANGS[kind]
        langs = (["--src", src] if src else []) + (["--tgt", tgt] if tgt else [])
        f = tmp_path / "in.txt"
        f.write_text("\n".join(TEXTS[1:]) + "\n")
        capsys.readouterr()
        assert main(["translate", str(out), "--text", TEXTS[0], "--file", str(f), "--num-beams", "2",
                     "--max-tokens", "12", *langs]) == 0
        lines = capsys.readouterr().out.splitlines()
        want = fx2mlx.load(out).translate(TEXTS, src=src, tgt=tgt, num_beams=2, max_new_tokens=12)
        assert lines == want and len(lines) == 3, kind
    assert main(["translate", str(compiled["t5"][1]), "--text", "hi", "--tgt", "xx"]) == 1


@needs_spm
def test_nllb_template_from_the_tokenizer(tmp_path):
    """NLLB (no model needed): source language token first, eos last, forced BOS = target language, all read
    from NllbTokenizer; ids equal HF's for two source languages, the default source language kept."""
    from fx2mlx.drivers.seq2seq import TextTokenizer
    from fx2mlx.recipes.translation import translation_info

    _, pieces = _spm("bpe")
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    vocab.update({p: 4 + i for i, (p, _) in enumerate(pieces)})
    T.NllbTokenizer(vocab=vocab, merges=[], src_lang="eng_Latn", tgt_lang="fra_Latn",
                    extra_special_tokens=["eng_Latn", "fra_Latn", "deu_Latn"]).save_pretrained(str(tmp_path / "hf"))
    (tmp_path / "out").mkdir()
    info = translation_info(tmp_path / "hf", tmp_path / "out")
    assert info["tokenizer"] == "tokenizers" and info["src_lang"] == "eng_Latn" and info["prefix"] == ["src"]
    text = TextTokenizer(tmp_path / "out", info)
    tok = T.AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    for src, tgt in (("eng_Latn", "fra_Latn"), ("deu_Latn", "eng_Latn")):
        tok.src_lang = src
        ids, gen = text.prepare(TEXTS, src, tgt)
        assert ids == tok(TEXTS)["input_ids"] and gen == {"forced_bos_token_id": tok.convert_tokens_to_ids(tgt)}
    assert text.decode(ids[0]) == tok.decode(ids[0], skip_special_tokens=True)


@pytest.mark.parametrize("kind", FAMILIES)
def test_quantized_8bit_close_to_float(compiled, kind, tmp_path):
    """--quantize 8 (group 32: the tiny models' width) rewrites every linear of the three graphs to a
    quantized matmul (a weight tied to an embedding stays float). Tokens are not all equal to float's on these random-weight models: their top-2 logit
    margins (~0.3) are near-ties next to 8-bit's logit error (~0.02, 0.7-0.9% relative), and one flipped
    token changes the rest of a greedy sequence. Measured on 16 sentences x 32 tokens (translate_quality):
    M2M100 token agreement 0.91, BLEU 97.8 vs float; Marian 0.98, 97.4. T5 (weights x3, so its unscaled
    attention saturates: encoder error 30% at 8 bits, 6% with unscaled weights) is only checked to run."""
    import fx2mlx
    from fx2mlx.compiler import ir
    from fx2mlx.llm.translate_quality import compare
    from fx2mlx.recipes import compile_source
    from fx2mlx.recipes.base import Options

    model, out = compiled[kind]
    q8 = tmp_path / "q8"
    compile_source(str(out.parent / "hf"), q8, Options(quantize=8, group_size=32))
    manifest = json.loads((q8 / "manifest.json").read_text())
    assert manifest["seq2seq"]["quantization"] == {"bits": 8, "group_size": 32}
    for g in ("encoder", "cross_kv", "decoder_step"):
        p = ir.Program.from_json((q8 / g / "ir.json").read_text())
        tied = {i.name for i in p.weight_inputs if i.target in set(p.aliases.values())}  # T5: lm_head = embedding
        assert not any(n.target == "aten.linear.default" and n.arg("weight").name not in tied for n in p.nodes), g
        assert any(n.target == "fx2mlx.qlinear.default" for n in p.nodes), g
    src, tgt = LANGS[kind]
    r = compare(out, q8, src=src, tgt=tgt, num_beams=1, new=32)
    assert r["on"] == "text" and r["tokens"] > 300
    if kind != "t5":
        assert r["token_agreement"] >= 0.85 and r["exact"] >= 0.25, r
        assert r["bleu"] is None or r["bleu"] >= 90, r
    assert len(fx2mlx.load(q8).translate(TEXTS, src=src, tgt=tgt, max_new_tokens=8)) == 3
