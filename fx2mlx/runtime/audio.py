"""Whisper's log-mel front end in MLX (vendored into OUT/program.py by the speech-to-text recipe).

`log_mel(samples, n_mels)` equals transformers' `WhisperFeatureExtractor` (its torch path): the audio is
zero-padded (or cut) to `pad_to` samples (30 s at 16 kHz by default), framed by a centred STFT (n_fft 400,
hop 160, periodic Hann window, reflect padding), the power spectrum of all frames but the last goes through
Slaney-style mel filters (0-8 kHz, Slaney mel scale and area normalisation, computed here from the settings,
as librosa / transformers' `mel_filter_bank` do), then log10 of max(., 1e-10), clamped at (max - 8), and
(x + 4) / 4. `load_audio(path, rate)` reads WAV/FLAC/OGG (and MP3 where the libsndfile has it) with
`soundfile`, averages channels, and resamples with `soxr` (imported when called: only transcription from
files needs them).
"""
import math

import mlx.core as mx


def _hz_to_mel(f):
    """The Slaney mel scale: linear below 1 kHz, logarithmic above."""
    if f < 1000.0:
        return 3.0 * f / 200.0
    return 15.0 + math.log(f / 1000.0) * 27.0 / math.log(6.4)


def _mel_to_hz(m):
    if m < 15.0:
        return 200.0 * m / 3.0
    return 1000.0 * math.exp(math.log(6.4) * (m - 15.0) / 27.0)


def mel_filters(n_mels, n_fft=400, sampling_rate=16000, f_min=0.0, f_max=8000.0):
    """(n_fft // 2 + 1, n_mels) Slaney-normalised triangular filters, computed in float64, returned float32."""
    n_freqs = n_fft // 2 + 1
    lo, hi = _hz_to_mel(f_min), _hz_to_mel(f_max)
    points = [_mel_to_hz(lo + (hi - lo) * i / (n_mels + 1)) for i in range(n_mels + 2)]
    fft_freqs = [(sampling_rate // 2) * i / (n_freqs - 1) for i in range(n_freqs)]
    rows = []
    for f in fft_freqs:
        row = []
        for m in range(n_mels):
            down = (f - points[m]) / (points[m + 1] - points[m])
            up = (points[m + 2] - f) / (points[m + 2] - points[m + 1])
            row.append(max(0.0, min(down, up)) * 2.0 / (points[m + 2] - points[m]))
        rows.append(row)
    return mx.array(rows, dtype=mx.float32)


def hann_window(n):
    """The periodic Hann window (torch.hann_window)."""
    return mx.array([0.5 - 0.5 * math.cos(2.0 * math.pi * i / n) for i in range(n)], dtype=mx.float32)


def log_mel(samples, n_mels, n_fft=400, hop=160, pad_to=480000, sampling_rate=16000, filters=None):
    """Mono float samples (N,) at `sampling_rate` -> log-mel features (n_mels, pad_to // hop)."""
    x = samples.astype(mx.float32)
    n = x.shape[0]
    if n < pad_to:
        x = mx.concatenate([x, mx.zeros((pad_to - n,), dtype=mx.float32)])
    elif n > pad_to:
        x = x[:pad_to]
    half = n_fft // 2
    left = x[1:half + 1][::-1]  # reflect padding (the edge sample not repeated), as torch.stft(center=True)
    right = x[-half - 1:-1][::-1]
    x = mx.concatenate([left, x, right])
    frames = 1 + (x.shape[0] - n_fft) // hop
    idx = mx.arange(frames)[:, None] * hop + mx.arange(n_fft)[None, :]
    spec = mx.fft.rfft(x[idx] * hann_window(n_fft)[None, :], axis=-1)  # (frames, n_fft // 2 + 1)
    power = mx.square(mx.abs(spec[:-1]))
    fb = filters if filters is not None else mel_filters(n_mels, n_fft, sampling_rate)
    mel = power @ fb  # (frames - 1, n_mels)
    logs = mx.log10(mx.maximum(mel, 1e-10))
    logs = mx.maximum(logs, mx.max(logs) - 8.0)
    return ((logs + 4.0) / 4.0).T


def load_audio(path, sampling_rate=16000):
    """A mono float32 mx.array of the file's audio at `sampling_rate` (soundfile + soxr)."""
    try:
        import soundfile
    except ImportError as e:
        raise ImportError("reading audio files needs soundfile: pip install soundfile soxr") from e
    data, rate = soundfile.read(path, dtype="float32", always_2d=True)
    data = data.mean(axis=1)
    if rate != sampling_rate:
        try:
            import soxr
        except ImportError as e:
            raise ImportError(f"{path} is at {rate} Hz: resampling to {sampling_rate} Hz needs soxr "
                              "(pip install soxr)") from e
        data = soxr.resample(data, rate, sampling_rate).astype("float32")
    return mx.array(data)


def ctc_greedy(logits, blank=0):
    """Greedy CTC decoding of (frames, vocab) logits (or (B, frames, vocab)): the best token per frame, repeats
    collapsed, blanks removed -> a list of token ids (a list of lists for a batch)."""
    best = mx.argmax(logits, axis=-1).tolist()
    rows = best if logits.ndim == 3 else [best]
    out = []
    for row in rows:
        ids, prev = [], None
        for t in row:
            if t != prev and t != blank:
                ids.append(t)
            prev = t
        out.append(ids)
    return out if logits.ndim == 3 else out[0]
