"""`fx2mlx stream OUT audio.wav`: feed a WAV file to a compiled stream (recipe `stream`) chunk by chunk
and print each chunk's scores, then the chunks whose score reaches --threshold (detections).

Audio: PCM WAV, mono, 16-bit (fed as float32 in int16 units, as openWakeWord does) or 32-bit float;
the file's sample rate must be the stream's. A last partial chunk is zero-padded."""
from __future__ import annotations

import wave
from pathlib import Path

from .compiler.errors import SourceError


def read_wav(path: Path):
    import numpy as np

    try:
        with wave.open(str(path), "rb") as w:
            rate, channels, width, n = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
            data = w.readframes(n)
    except (wave.Error, EOFError, OSError) as e:
        raise SourceError(f"{path} is not a readable PCM WAV file ({e})") from None
    if channels != 1:
        raise SourceError(f"{path} has {channels} channels; the stream takes mono audio")
    if width != 2:
        raise SourceError(f"{path} has {8 * width}-bit samples; use 16-bit PCM")
    return rate, np.frombuffer(data, dtype="<i2").astype(np.float32)


def stream_file(out: Path, audio: Path, threshold: float, print_line=print) -> list[tuple[float, list[float]]]:
    import numpy as np

    from .api import load
    from .manifest import read_manifest

    manifest = read_manifest(out)
    if manifest.get("recipe") != "stream":
        raise SourceError(f"{out} is not a compiled stream (recipe {manifest.get('recipe')!r}); compile an "
                          "fx2mlx.Stream")
    info = manifest["stream"]
    rate, x = read_wav(audio)
    if info.get("rate") and rate != info["rate"]:
        raise SourceError(f"{audio} is sampled at {rate} Hz, the stream at {info['rate']} Hz: resample it first")
    chunk = info["chunk"]
    pad = (-len(x)) % chunk
    x = np.concatenate([x, np.zeros(pad, np.float32)])
    s = load(out)
    rows = []
    for k in range(0, len(x), chunk):
        out_k = s.feed(x[None, k:k + chunk])
        outs = out_k if isinstance(out_k, tuple) else (out_k,)
        scores = [float(np.asarray(o).reshape(-1)[0]) for o in outs]
        t = k / rate
        rows.append((t, scores))
        print_line(f"{t:8.3f}s  " + "  ".join(f"{v:.4f}" for v in scores))
    hits = [(t, i, v) for t, sc in rows for i, v in enumerate(sc) if v >= threshold]
    print_line(f"detections (score >= {threshold:g}): {len(hits)}")
    for t, i, v in hits:
        print_line(f"  {t:8.3f}s  output {i}  {v:.4f}")
    return rows


def register(app) -> None:
    import typer

    @app.command("stream")
    def stream_cmd(
        out: Path = typer.Argument(..., help="A compiled stream (fx2mlx.Stream, e.g. a wake-word detector)."),
        audio: Path = typer.Argument(..., help="A mono 16-bit PCM WAV file at the stream's sample rate."),
        threshold: float = typer.Option(0.5, "--threshold", help="A chunk's score at or above it is a detection."),
    ):
        """Feed AUDIO to OUT chunk by chunk; print every chunk's scores and the detections."""
        if not audio.is_file():
            raise SourceError(f"audio file not found: {audio}")
        stream_file(out, audio, threshold, print_line=lambda s: typer.echo(s))

