"""Whisper speed of a compiled model (recipe speech-to-text) vs Hugging Face transformers (eager), on the same
random weights: real-time factor and tokens/s.

    python bench/whisper.py --shape tiny --json out.json            # whisper-tiny shape (random weights), this CPU
    python bench/whisper.py --shape tiny-test --runs 1              # the tests' 64-wide model: a smoke run
    python bench/whisper.py --shape large-v3-turbo --device cuda    # large-v3-turbo shape (128 mel bins, 4 decoder layers)

Each row decodes one 30 s window of log-mel features (random, seeded) with forced English transcription,
no timestamps, greedy or beam 4, batch 1 and 4, --new tokens at most; both systems produce the same tokens
(asserted: fx2mlx's driver equals HF generate), so they do the same work. Each system runs once to warm up,
then --runs times; the best run counts. RTF = time / audio seconds (lower is faster); tokens/s = tokens
generated / time. Front-end time is not included on either side (features are given). --json writes
{"family": "whisper", "rows": [{"name", "ours", "ref": {...}, "ratio": {...}}]} (ratio = ref time / our time:
>1 means fx2mlx is faster). mlx-whisper is not compared yet (its decoding needs its own tokenizer files and
weight layout).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fx2mlx import blas  # noqa: E402

SHAPES = {  # WhisperConfig sizes of the released checkpoints; vocabulary laid out as tests/whisper_models.py
    "tiny-test": dict(d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                      decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128, num_mel_bins=80),
    "tiny": dict(d_model=384, encoder_layers=4, decoder_layers=4, encoder_attention_heads=6, decoder_attention_heads=6,
                 encoder_ffn_dim=1536, decoder_ffn_dim=1536, num_mel_bins=80),
    "large-v3-turbo": dict(d_model=1280, encoder_layers=32, decoder_layers=4, encoder_attention_heads=20,
                           decoder_attention_heads=20, encoder_ffn_dim=5120, decoder_ffn_dim=5120, num_mel_bins=128),
}


def make_model(shape: str, folder: Path) -> Path:
    from whisper_models import build

    hf = folder / "hf"
    build(hf, **SHAPES[shape])
    return hf


def best(fn, runs: int):
    out = fn()  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", default="tiny", choices=sorted(SHAPES))
    p.add_argument("--model", type=Path, help="a local HF Whisper directory instead of a random --shape")
    p.add_argument("--device", default="cpu", help="torch device for transformers (cpu or cuda)")
    p.add_argument("--new", type=int, default=64)
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    p.add_argument("--beams", type=int, nargs="+", default=[1, 4])
    p.add_argument("--skip-hf", action="store_true")
    p.add_argument("--json", type=Path)
    p.add_argument("--work", type=Path, help="folder for the model and compiled output (default: a temp dir)")
    a = p.parse_args(argv)
    blas.use_optimized_blas()
    import mlx.core as mx
    import torch
    import transformers as T

    import fx2mlx
    from fx2mlx.recipes import compile_source
    from fx2mlx.recipes.base import Options

    T.logging.set_verbosity_error()
    tmp = tempfile.TemporaryDirectory(prefix="fx2mlx-bench-whisper-")
    work = a.work or Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    hf = a.model or make_model(a.shape, work)
    t = time.perf_counter()
    compile_source(str(hf), work / "out", Options(self_check=False), force=True)
    print(f"compiled in {time.perf_counter() - t:.1f} s; mlx device {mx.default_device()}", file=sys.stderr)
    ours = fx2mlx.load(work / "out")
    model = None if a.skip_hf else T.WhisperForConditionalGeneration.from_pretrained(str(hf)).eval().to(a.device)
    w = ours.w
    frames = w["input_stride"] * w["max_source_positions"]
    seconds = frames * ours.audio["hop_length"] / ours.audio["sampling_rate"]
    g = torch.Generator().manual_seed(1)
    feats_all = torch.randn(max(a.batches), w["num_mel_bins"], frames, generator=g) * 0.5
    gen = dict(language="en", max_new_tokens=a.new)
    rows = []
    for nb in a.beams:
        for b in a.batches:
            feats = feats_all[:b]
            name = f"{a.shape if a.model is None else a.model.name}/{'greedy' if nb == 1 else f'beam{nb}'}-b{b}"
            t_ours, toks = best(lambda: ours.generate(feats.numpy(), num_beams=nb, **gen), a.runs)
            n_tok = sum(len([x for x in r if x != ours.settings()["pad_token_id"]]) for r in toks)
            ref = {}
            if model is not None:
                x = feats.to(a.device)

                def hf_run():
                    with torch.no_grad():
                        out = model.generate(x, num_beams=nb, **gen)
                    if a.device.startswith("cuda"):
                        torch.cuda.synchronize()
                    return out.tolist()
                ref["hf_eager"], hf_toks = best(hf_run, a.runs)
                if hf_toks != toks:
                    print(f"{name}: tokens differ from HF's (the comparison is not like for like)", file=sys.stderr)
            row = {"name": name, "ours": {"rtf": t_ours / (b * seconds), "tokens_s": n_tok / t_ours, "s": t_ours},
                   "ref": {k: {"rtf": v / (b * seconds), "tokens_s": n_tok / v, "s": v} for k, v in ref.items()},
                   "ratio": {k: v / t_ours for k, v in ref.items()}, "tokens": n_tok}
            rows.append(row)
            refs = "  ".join(f"{k} RTF {v / (b * seconds):.4f} ({v / t_ours:.2f}x)" for k, v in ref.items())
            print(f"{name:>28}: ours RTF {row['ours']['rtf']:.4f} {row['ours']['tokens_s']:8.1f} tok/s "
                  f"({n_tok} tokens)  {refs}", flush=True)
    result = {"family": "whisper", "device": a.device, "mlx_device": str(mx.default_device()), "new": a.new,
              "audio_s": seconds, "rows": rows}
    if a.json:
        a.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
