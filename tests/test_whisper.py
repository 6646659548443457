"""Whisper (recipe speech-to-text, driver whisper): tokens equal HF `WhisperForConditionalGeneration.generate`.

Tiny random-weight Whisper directories (tests/whisper_models.py: 80 and 128 mel bins, real 30 s windows of
3000 frames, a generation_config.json laid out like openai/whisper-tiny's) saved with save_pretrained and
compiled from the directory. Batches of 2 windows of random features, float32. The random models emit
timestamp tokens even without timestamps (most of their vocabulary is timestamps), so HF's window loop
(seek to the last complete segment) is exercised in every mode, as it is in HF.
"""
from __future__ import annotations

import json

import pytest
import torch
import transformers as T

from whisper_models import build

NEW = 24  # new tokens per window
CASES = {
    "transcribe_en": dict(language="en"),
    "timestamps": dict(language="en", return_timestamps=True),
    "translate": dict(language="de", task="translate"),
    "beam4": dict(language="en", num_beams=4),
}


@pytest.fixture(scope="module")
def whisper80(tmp_path_factory):
    return _compiled(tmp_path_factory, 80)


@pytest.fixture(scope="module")
def whisper128(tmp_path_factory):
    return _compiled(tmp_path_factory, 128)


def _compiled(tmp_path_factory, n_mels):
    from fx2mlx.recipes import compile_source

    T.logging.set_verbosity_error()
    d = tmp_path_factory.mktemp(f"whisper{n_mels}")
    build(d / "hf", n_mels=n_mels)
    compile_source(str(d / "hf"), d / "out")
    return T.WhisperForConditionalGeneration.from_pretrained(str(d / "hf")).eval(), d / "out"


def _features(n_mels, frames=3000, batch=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, n_mels, frames, generator=g) * 0.5


def _check_equal(model, out, feats, **kw):
    import fx2mlx

    with torch.no_grad():
        ref = model.generate(feats, max_new_tokens=NEW, **kw).tolist()
    got = fx2mlx.load(out).generate(feats.numpy(), max_new_tokens=NEW, **kw)
    assert len({t for r in ref for t in r}) >= 8 and all(len(set(r)) >= 3 for r in ref), ref  # not degenerate
    assert got == ref
    return ref


def test_recipe_picked_and_graphs(whisper80):
    from fx2mlx.compiler import ir
    from fx2mlx.recipes import pick_recipe

    model, out = whisper80
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["recipe"] == "speech-to-text" and manifest["driver"] == "whisper"
    assert list(manifest["graphs"]) == ["encoder", "cross_kv", "decoder_step"]
    assert pick_recipe(str(out.parent / "hf")).name == "speech-to-text"
    enc = {i["name"]: i for i in manifest["graphs"]["encoder"]["inputs"]}
    assert enc["input_features"]["shape"][1:] == [80, 3000]  # the model's window, batch dynamic
    w = manifest["seq2seq"]["whisper"]
    assert w["no_timestamps_token_id"] == model.generation_config.no_timestamps_token_id
    assert w["lang_to_id"] == model.generation_config.lang_to_id and w["max_initial_timestamp_index"] == 50
    assert manifest["audio"]["feature_size"] == 80 and manifest["audio"]["origin"] == "preprocessor_config.json"
    step = ir.Program.from_json((out / "decoder_step" / "ir.json").read_text())
    assert not any((i.target or "").startswith("model.encoder.") for i in step.weight_inputs)
    assert sum(i.name.startswith("cross_keys_") for i in step.user_inputs) == 2
    assert "encoder_attention_mask" not in [i.name for i in step.user_inputs]


@pytest.mark.parametrize("case", [c if c == "timestamps" else pytest.param(c, marks=pytest.mark.slow) for c in CASES])
def test_tokens_equal_hf_80(whisper80, case):
    model, out = whisper80
    _check_equal(model, out, _features(80), **CASES[case])


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_tokens_equal_hf_128(whisper128, case):
    model, out = whisper128
    _check_equal(model, out, _features(128), **CASES[case])


@pytest.mark.slow
def test_forced_decoder_ids_and_language_detection(whisper80):
    """No language given: forced_decoder_ids ([1, None], [2, transcribe]) leave the language to detection."""
    import fx2mlx

    model, out = whisper80
    feats = _features(80, seed=3)
    _check_equal(model, out, feats)
    program = fx2mlx.load(out)
    with torch.no_grad():
        ref = model.detect_language(feats).tolist()
    assert program.detect_language(feats.numpy()) == ref


@pytest.mark.slow
def test_long_form_equals_hf(whisper80):
    """70 s of features (7000 frames, batch 1): HF's sequential windows with timestamps."""
    import fx2mlx

    model, out = whisper80
    feats = _features(80, frames=7000, batch=1, seed=2)
    with torch.no_grad():
        ref = model.generate(feats, max_new_tokens=NEW, language="en", return_timestamps=True, return_segments=True)
    program = fx2mlx.load(out)
    got, segments = program.generate(feats.numpy(), max_new_tokens=NEW, language="en", return_timestamps=True,
                                     return_segments=True)
    assert got == ref["sequences"].tolist()
    want = [(round(float(g["start"]), 6), round(float(g["end"]), 6), g["tokens"].tolist()) for g in ref["segments"][0]]
    assert [(round(g["start"], 6), round(g["end"], 6), g["tokens"]) for g in segments[0]] == want
    assert max(g[0] for g in want) > 60.0  # the last window was decoded
    with pytest.raises(ValueError, match="long form"):  # as HF: generation_config.json has return_timestamps false
        program.generate(feats.numpy(), max_new_tokens=NEW, language="en")


def test_unsupported_settings_are_refused(whisper80):
    import fx2mlx

    program = fx2mlx.load(whisper80[1])
    feats = _features(80, batch=1).numpy()
    with pytest.raises(ValueError, match="sampling"):
        program.generate(feats, temperature=0.8)
    with pytest.raises(ValueError, match="not implemented"):
        program.generate(feats, logprob_threshold=-1.0)
    with pytest.raises(ValueError, match="languages"):
        program.generate(feats, language="xx")
    with pytest.raises(ValueError, match="mel bins"):
        program.generate(_features(128, batch=1).numpy())


@pytest.mark.slow
def test_check_passes_per_graph(whisper80):
    from fx2mlx.golden.cli import check_output

    reports = check_output(whisper80[1], plot=False, quiet=True)
    assert set(reports) == {"encoder", "cross_kv", "decoder_step"}
    assert all(r["passed"] for r in reports.values())


def _wav(tmp_path):
    """espeak-ng speech where installed, else the synthetic voiced signal of test_whisper_audio (16 kHz)."""
    import soundfile

    from test_whisper_audio import espeak, voiced

    path = espeak(tmp_path)
    if path is None:
        path = tmp_path / "voiced.wav"
        soundfile.write(str(path), voiced(), 16000)
    return path


def _hf_transcribe(model, hf_dir, path, **kw):
    """HF's own path: soundfile + soxr to 16 kHz, WhisperProcessor, generate, batch_decode."""
    import soundfile
    import soxr

    proc = T.WhisperProcessor.from_pretrained(str(hf_dir))
    x, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    x = soxr.resample(x.mean(axis=1), rate, 16000)
    feats = proc(x, sampling_rate=16000, return_tensors="pt").input_features
    with torch.no_grad():
        ids = model.generate(feats, **kw)
    return ids[0].tolist(), proc.batch_decode(ids, skip_special_tokens=True)[0]


@pytest.mark.slow
def test_transcribe_wav_and_mp3_equal_hf(whisper80, tmp_path, capsys):
    """`fx2mlx transcribe` on a WAV and an MP3 prints HF's text; load(OUT).transcribe gives HF's tokens."""
    pytest.importorskip("soundfile")
    pytest.importorskip("soxr")
    import soundfile

    import fx2mlx
    from fx2mlx.cli import main

    model, out = whisper80
    wav = _wav(tmp_path)
    paths = [wav]
    if "MP3" in soundfile.available_formats():
        data, rate = soundfile.read(str(wav))
        soundfile.write(str(tmp_path / "speech.mp3"), data, rate, format="MP3")
        paths.append(tmp_path / "speech.mp3")
    program = fx2mlx.load(out)
    for path in paths:
        ids, text = _hf_transcribe(model, out.parent / "hf", path, language="en", max_new_tokens=12)
        got = program.transcribe(str(path), language="en", max_new_tokens=12)
        assert got["tokens"] == ids and got["text"] == text and len(ids) >= 12
        capsys.readouterr()
        assert main(["transcribe", str(out), str(path), "--language", "en", "--max-tokens", "12"]) == 0
        assert capsys.readouterr().out == text.strip() + "\n"
    # timestamps: segments with times, as HF's
    ids, _ = _hf_transcribe(model, out.parent / "hf", wav, language="en", max_new_tokens=12, return_timestamps=True)
    capsys.readouterr()
    assert main(["transcribe", str(out), str(wav), "--language", "en", "--max-tokens", "12", "--timestamps",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["tokens"] == ids and result["segments"] and all("start" in s for s in result["segments"])
    assert main(["transcribe", str(out), str(tmp_path / "missing.wav")]) != 0
    assert main(["generate", str(out), "--prompt-ids", "1,2"]) != 0  # points at transcribe
    assert main(["transcribe", str(out), str(wav), "--task", "summarize"]) != 0
