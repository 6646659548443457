"""Whisper's log-mel front end in MLX (fx2mlx/runtime/audio.py, vendored into OUT/program.py) against
transformers' WhisperFeatureExtractor, and audio loading (soundfile + soxr).

Tolerance 1e-4 absolute on features in [-1.5, 1.5] (the issue's bound) for inputs up to one 30 s window:
both sides compute float32 FFTs (MLX's and PyTorch's, rounding differently), the filters are float64-derived;
measured 1.4e-6 to 8.6e-6 (noise) and below 1e-5 (speech). Long-form inputs (70 s, features of the whole
length) are held to 2e-4: the worst element of 128 x 7000 is a low-power bin (a near-zero of the noise
spectrum, feature -0.897, i.e. power ~1e-3 of the frame's), where the log amplifies float32 FFT rounding;
measured 8.2e-6 (80 bins) and 1.07e-4 (128 bins).
"""
from __future__ import annotations

import math
import shutil
import subprocess

import numpy as np
import pytest
import transformers as T

soundfile = pytest.importorskip("soundfile")
soxr = pytest.importorskip("soxr")

TOL = 1e-4


def _hf(x, n_mels, long=False):
    fe = T.WhisperFeatureExtractor(feature_size=n_mels)
    kw = dict(truncation=False, padding="longest") if long else {}
    return fe(x, sampling_rate=16000, return_tensors="np", **kw).input_features[0]


def _mlx(x, n_mels, long=False):
    import mlx.core as mx

    from fx2mlx.runtime.audio import log_mel

    return np.array(log_mel(mx.array(x), n_mels, pad_to=max(len(x), 480000) if long else 480000))


def voiced(seconds=4.0, rate=16000, seed=0):
    """A synthetic voiced signal: a glottal-like pulse train (gliding 110-180 Hz) through two resonances,
    with pauses and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 110 + 70 * (0.5 + 0.5 * np.sin(2 * math.pi * 0.7 * t))
    phase = 2 * math.pi * np.cumsum(f0) / rate
    src = sum(np.sin(k * phase) / k for k in range(1, 30))
    env = (np.sin(2 * math.pi * 1.3 * t) > -0.3).astype(float)
    formants = 1.0 + 0.8 * np.sin(2 * math.pi * 700 * t) + 0.5 * np.sin(2 * math.pi * 1200 * t)
    return (0.2 * src * env * formants / 10 + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


def espeak(tmp_path, text="Hello world. The quick brown fox jumps over the lazy dog.", rate=16000):
    """espeak-ng's WAV (22050 Hz), resampled to 16 kHz with soxr; None if espeak-ng is not installed."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    path = tmp_path / "speech.wav"
    subprocess.run([exe, "-w", str(path), text], check=True, capture_output=True)
    return path


@pytest.mark.parametrize("n_mels", [80, 128])
def test_noise_matches_feature_extractor(n_mels):
    rng = np.random.default_rng(n_mels)
    for n, long in ((16000 * 7, False), (480000, False), (16000 * 70, True)):
        x = (0.1 * rng.standard_normal(n)).astype(np.float32)
        ref, got = _hf(x, n_mels, long), _mlx(x, n_mels, long)
        assert ref.shape == got.shape == (n_mels, max(n, 480000) // 160)
        assert ref.std() > 0.05  # not a constant spectrogram
        assert np.abs(ref - got).max() <= (2 * TOL if long else TOL)


@pytest.mark.parametrize("n_mels", [80, 128])
def test_speech_matches_feature_extractor(n_mels, tmp_path):
    """espeak-ng speech (when installed) and a synthetic voiced signal."""
    from fx2mlx.runtime.audio import load_audio

    signals = [voiced()]
    path = espeak(tmp_path)
    if path is not None:
        data, rate = soundfile.read(str(path), dtype="float32")
        assert rate == 22050 and 2.0 < len(data) / rate < 8.0 and np.sqrt(np.mean(data ** 2)) > 0.01  # speech
        speech = np.array(load_audio(str(path), 16000))
        assert abs(len(speech) - len(data) * 16000 / 22050) <= 1
        signals.append(speech)
    for x in signals:
        ref, got = _hf(x, n_mels), _mlx(x, n_mels)
        assert ref.max() - ref.min() > 1.0  # dynamic range of a real spectrogram
        assert np.abs(ref - got).max() <= TOL


def test_mel_filters_equal_transformers():
    from fx2mlx.runtime.audio import mel_filters

    for n_mels in (80, 128):
        ref = T.WhisperFeatureExtractor(feature_size=n_mels).mel_filters
        assert np.abs(np.array(mel_filters(n_mels)) - ref).max() < 1e-8


def test_load_audio_resamples_and_reads_mp3(tmp_path):
    from fx2mlx.runtime.audio import load_audio

    rate = 22050
    t = np.arange(rate) / rate
    stereo = np.stack([np.sin(2 * math.pi * 440 * t), 0.5 * np.sin(2 * math.pi * 440 * t)], axis=1).astype(np.float32)
    soundfile.write(str(tmp_path / "a.wav"), stereo, rate, subtype="FLOAT")
    got = np.array(load_audio(str(tmp_path / "a.wav"), 16000))
    want = soxr.resample(stereo.mean(axis=1), rate, 16000)
    assert got.shape == (16000,) and np.abs(got - want).max() < 1e-6
    if "MP3" in soundfile.available_formats():
        soundfile.write(str(tmp_path / "a.mp3"), stereo, rate, format="MP3")
        mp3 = np.array(load_audio(str(tmp_path / "a.mp3"), 16000))
        assert abs(len(mp3) - 16000) < 1600 and np.sqrt(np.mean(mp3 ** 2)) > 0.3  # lossy, but the tone is there
