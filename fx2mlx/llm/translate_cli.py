"""`fx2mlx translate OUT --text "…" [--src LANG --tgt LANG] [--num-beams 4] [--max-tokens N] [--file in.txt]`:
text in, text out through a compiled encoder-decoder model (recipe seq2seq) and the tokenizer copied into OUT
at compile time (`fx2mlx.recipes.translation`). One translation per line, in input order."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import List, Optional

import typer


def translate_cmd(
    out: Path = typer.Argument(..., help="A folder compiled from an encoder-decoder model (recipe seq2seq)."),
    text: Optional[List[str]] = typer.Option(None, "--text", help="Text to translate (repeatable)."),
    file: Optional[Path] = typer.Option(None, "--file", help="A file of texts, one per line ('-': stdin)."),
    src: Optional[str] = typer.Option(None, "--src", help="Source language code (NLLB/M2M100: e.g. eng_Latn, en)."),
    tgt: Optional[str] = typer.Option(None, "--tgt", help="Target language code (NLLB/M2M100; MADLAD/T5: <2xx>)."),
    num_beams: Optional[int] = typer.Option(None, "--num-beams", help="Beam search with this many beams "
                                            "(default: the model's generation config)."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="New tokens per text at most "
                                             "(default: the model's generation config)."),
    batch_size: int = typer.Option(8, "--batch-size", help="Texts translated together."),
):
    """Translate texts with a compiled seq2seq model (needs only mlx and tokenizers/sentencepiece)."""
    from .. import blas
    from ..api import load
    from ..compiler.errors import ArgumentError
    from ..manifest import read_manifest

    blas.use_optimized_blas()
    texts = list(text or [])
    if file is not None:
        lines = sys.stdin.read() if str(file) == "-" else _read(file)
        texts += [x for x in lines.splitlines() if x.strip()]
    if not texts:
        raise ArgumentError("pass --text TEXT (repeatable) or --file FILE")
    if batch_size < 1:
        raise ArgumentError(f"--batch-size must be at least 1, got {batch_size}")
    if read_manifest(out).get("recipe") != "seq2seq":
        raise ArgumentError(f"{out} is not an encoder-decoder model (recipe seq2seq): use fx2mlx generate")
    program = load(out)
    kwargs = {"num_beams": num_beams, "max_new_tokens": max_tokens}
    t0 = time.perf_counter()
    n = 0
    for i in range(0, len(texts), batch_size):
        try:
            outs = program.translate(texts[i:i + batch_size], src=src, tgt=tgt, **kwargs)
        except ValueError as e:
            raise ArgumentError(str(e)) from None
        for o in outs:
            sys.stdout.write(o + "\n")
        sys.stdout.flush()
        n += len(outs)
    dt = time.perf_counter() - t0
    print(f"[{n} translations in {dt:.3f} s, {n / dt:.2f} sentences/s]", file=sys.stderr)


def _read(path: Path) -> str:
    from ..compiler.errors import ArgumentError

    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise ArgumentError(f"cannot read {path}: {e.strerror}") from None
