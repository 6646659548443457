"""`fx2mlx transcribe OUT audio.wav [--language en] [--task transcribe|translate] [--timestamps] [--num-beams N]
[--json]`: audio in, text out through a compiled Whisper (recipe speech-to-text): the file is read with soundfile
and resampled with soxr to the model's rate, the log-mel features are computed in MLX (OUT/program.py), and
audio longer than one window (30 s) is transcribed in sequential windows as HF's long-form generation does."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

import typer


def transcribe_cmd(
    out: Path = typer.Argument(..., help="A folder compiled from a Whisper model (recipe speech-to-text)."),
    audio: Path = typer.Argument(..., help="An audio file (WAV, FLAC, OGG; MP3 where libsndfile reads it)."),
    language: Optional[str] = typer.Option(None, "--language", help="Language code (e.g. en); default: the "
                                           "model's generation config, else detected from the first 30 s."),
    task: Optional[str] = typer.Option(None, "--task", help="transcribe or translate (to English)."),
    timestamps: bool = typer.Option(False, "--timestamps", help="Predict timestamps; print segments with times."),
    num_beams: int = typer.Option(1, "--num-beams", help="Beam search with this many beams (1: greedy)."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="New tokens per 30 s window at most."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object: text, segments, tokens."),
):
    """Transcribe (or translate) an audio file with a compiled Whisper (needs mlx, soundfile, soxr, tokenizers)."""
    from .. import blas
    from ..api import load
    from ..compiler.errors import ArgumentError
    from ..manifest import read_manifest

    blas.use_optimized_blas()
    if read_manifest(out).get("recipe") != "speech-to-text":
        raise ArgumentError(f"{out} is not a speech-to-text model (recipe speech-to-text)")
    if not audio.is_file():
        raise ArgumentError(f"no such audio file: {audio}")
    if task not in (None, "transcribe", "translate"):
        raise ArgumentError(f"--task must be transcribe or translate, got {task!r}")
    if num_beams < 1:
        raise ArgumentError(f"--num-beams must be at least 1, got {num_beams}")
    program = load(out)
    t0 = time.perf_counter()
    try:
        result = program.transcribe(str(audio), language=language, task=task, timestamps=timestamps,
                                    num_beams=num_beams, max_new_tokens=max_tokens)
    except ImportError as e:
        raise ArgumentError(str(e)) from None
    except (ValueError, RuntimeError) as e:  # bad settings, unreadable audio (soundfile raises RuntimeError)
        raise ArgumentError(f"{audio}: {e}") from None
    dt = time.perf_counter() - t0
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
    elif timestamps:
        for s in result["segments"]:
            sys.stdout.write(f"[{s['start']:7.2f} -> {s['end']:7.2f}] {s['text'].strip()}\n")
    else:
        sys.stdout.write(result["text"].strip() + "\n")
    print(f"[{len(result['tokens'])} tokens in {dt:.3f} s]", file=sys.stderr)
