"""Translation throughput of a compiled seq2seq model (recipe seq2seq) vs Hugging Face transformers (eager)
and CTranslate2 (if installed: its TransformersConverter on the same directory), on the same random weights.

    python bench/translate.py --shape tiny                       # quick, this CPU
    python bench/translate.py --shape opus-mt --json out.json    # Marian OPUS-MT shape (random weights)
    python bench/translate.py --shape nllb-600m --device cuda    # NLLB-200-distilled-600M shape, HF on the GPU

Random source ids (length --src-len), every system forced to generate exactly --new tokens
(min = max new tokens) so that all do the same work; greedy and beam 4, batch 1 and 8. Each system runs
once to warm up, then --runs times; the best run counts. sentences/s = batch / time, tokens/s = batch x
new / time. --json writes {"family": "translate", "unit": "sentences/s", "rows": [{"name", "ours_sentences_s", "ours_tok_s",
"ref": {...}, "ratio": {...}}]}
(ratio = ours / ref in sentences/s: >1 means fx2mlx is faster).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fx2mlx import blas  # noqa: E402

COMMON = dict(max_position_embeddings=512, scale_embedding=True)
FAMILY = "translate"  # bench/all.py convention: FAMILY, --json/--quick/--device/--dtype (see bench/all.py)

SHAPES = {
    "tiny": ("marian", dict(vocab_size=1000, d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                            decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128)),
    "opus-mt": ("marian", dict(vocab_size=58101, d_model=512, encoder_layers=6, decoder_layers=6,
                               encoder_attention_heads=8, decoder_attention_heads=8, encoder_ffn_dim=2048,
                               decoder_ffn_dim=2048)),
    "nllb-600m": ("m2m100", dict(vocab_size=256206, d_model=1024, encoder_layers=12, decoder_layers=12,
                                 encoder_attention_heads=16, decoder_attention_heads=16, encoder_ffn_dim=4096,
                                 decoder_ffn_dim=4096)),
}


def make_model(shape: str, folder: Path) -> Path:
    """A random-weight model of the shape saved with save_pretrained (and, for Marian, a tokenizer whose
    vocabulary covers every id, so that CTranslate2's converter can read it)."""
    import torch
    import transformers as T

    kind, dims = SHAPES[shape]
    torch.manual_seed(0)
    hf = folder / "hf"
    if kind == "marian":
        v = dims["vocab_size"]
        cfg = T.MarianConfig(activation_function="swish", pad_token_id=v - 1, eos_token_id=0, decoder_start_token_id=v - 1,
                             architectures=["MarianMTModel"], **COMMON, **dims)
        model = T.MarianMTModel(cfg)
        model.generation_config.bad_words_ids = [[v - 1]]
    else:
        cfg = T.M2M100Config(pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2,
                             architectures=["M2M100ForConditionalGeneration"], **COMMON, **dims)
        model = T.M2M100ForConditionalGeneration(cfg)
        model.generation_config.forced_bos_token_id = 5
    model.eval().save_pretrained(hf)
    if kind == "marian":
        _marian_tokenizer(hf, dims["vocab_size"])
    return hf


def _marian_tokenizer(hf: Path, v: int) -> None:
    try:
        import io

        import sentencepiece as spm
        import transformers as T
    except ImportError:
        return
    f = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(["hello world", "a b c d e f g"] * 10), model_writer=f,
                                   vocab_size=20, hard_vocab_limit=False, minloglevel=2)
    for n in ("source.spm", "target.spm"):
        (hf / n).write_bytes(f.getvalue())
    vocab = {"</s>": 0, "<unk>": 1, **{f"\u2581t{i}": i for i in range(2, v - 1)}, "<pad>": v - 1}
    (hf / "vocab.json").write_text(json.dumps(vocab))
    T.MarianTokenizer(str(hf / "source.spm"), str(hf / "target.spm"), str(hf / "vocab.json")).save_pretrained(str(hf))


def best(fn, runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", default="opus-mt", choices=sorted(SHAPES))
    p.add_argument("--model", type=Path, help="a local HF seq2seq directory instead of a random --shape")
    p.add_argument("--device", default="cpu", help="torch device for transformers (cpu or cuda); CTranslate2 too")
    p.add_argument("--src-len", type=int, default=24)
    p.add_argument("--new", type=int, default=32)
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    p.add_argument("--beams", type=int, nargs="+", default=[1, 4])
    p.add_argument("--quantize", type=int, choices=[4, 8], help="also compile and time this many bits")
    p.add_argument("--skip-hf", action="store_true")
    p.add_argument("--skip-ct2", action="store_true")
    p.add_argument("--json", type=Path)
    p.add_argument("--quick", action="store_true", help="the tiny shape, 8 new tokens, 1 run (a smoke run)")
    p.add_argument("--dtype", default="float32", choices=["float32"],
                   help="only float32 for now (the seq2seq recipe compiles in the model's dtype)")
    p.add_argument("--work", type=Path, help="folder for the model and compiled output (default: a temp dir)")
    a = p.parse_args(argv)
    if a.quick:
        a.shape, a.new, a.runs, a.src_len = "tiny", 8, 1, 12
    blas.use_optimized_blas()
    import mlx.core as mx
    import torch
    import transformers as T

    import fx2mlx
    from fx2mlx.recipes import compile_source
    from fx2mlx.recipes.base import Options

    tmp = tempfile.TemporaryDirectory(prefix="fx2mlx-bench-mt-")
    work = a.work or Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    hf = a.model or make_model(a.shape, work)
    t = time.perf_counter()
    compile_source(str(hf), work / "out", Options(self_check=False), force=True)
    print(f"compiled in {time.perf_counter() - t:.1f} s; mlx device {mx.default_device()}", file=sys.stderr)
    ours = {"float": fx2mlx.load(work / "out")}
    if a.quantize:
        compile_source(str(hf), work / f"q{a.quantize}", Options(quantize=a.quantize, self_check=False), force=True)
        ours[f"q{a.quantize}"] = fx2mlx.load(work / f"q{a.quantize}")
    model = None if a.skip_hf else T.AutoModelForSeq2SeqLM.from_pretrained(str(hf)).eval().to(a.device)
    ct2, ct2_why = None, "skipped"
    if not a.skip_ct2:
        try:
            import ctranslate2

            ct2_dir = work / "ct2"
            if not ct2_dir.exists():
                ctranslate2.converters.TransformersConverter(str(hf)).convert(str(ct2_dir), force=True)
            ct2 = ctranslate2.Translator(str(ct2_dir), device=a.device, compute_type="float32",
                                         intra_threads=torch.get_num_threads())
            ct2_vocab = json.loads((ct2_dir / "shared_vocabulary.json").read_text()) \
                if (ct2_dir / "shared_vocabulary.json").exists() else None
            if ct2_vocab is None:
                ct2_vocab = [x.rstrip("\n") for x in open(ct2_dir / "shared_vocabulary.txt", encoding="utf-8")]
        except Exception as e:  # noqa: BLE001 - optional reference
            ct2, ct2_why = None, f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
            print(f"CTranslate2 not used: {ct2_why}", file=sys.stderr)
    cfg = json.loads((hf / "config.json").read_text())
    vocab, eos = cfg["vocab_size"], cfg.get("eos_token_id", 2)
    g = torch.Generator().manual_seed(1)
    rows_all = [torch.randint(10, min(vocab, 30000) - 10, (a.src_len - 1,), generator=g).tolist() + [eos]
                for _ in range(max(a.batches))]
    gen = dict(max_new_tokens=a.new, min_new_tokens=a.new)
    out_rows = []
    for nb in a.beams:
        for b in a.batches:
            rows = rows_all[:b]
            name = f"{'greedy' if nb == 1 else f'beam{nb}'}-b{b}"
            res = {}
            for k, prog in ours.items():
                res[k] = best(lambda: prog.generate(rows, num_beams=nb, **gen), a.runs)
            ref = {}
            if model is not None:
                ids = torch.tensor(rows, device=a.device)

                def hf_run():
                    with torch.no_grad():
                        model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), num_beams=nb,
                                       do_sample=False, **gen)
                    if a.device.startswith("cuda"):
                        torch.cuda.synchronize()
                ref["hf_eager"] = best(hf_run, a.runs)
            if ct2 is not None:
                toks = [[ct2_vocab[i] for i in r] for r in rows]
                ref["ctranslate2"] = best(lambda: ct2.translate_batch(toks, beam_size=nb, max_decoding_length=a.new,
                                                                      min_decoding_length=a.new), a.runs)
            sps = {k: b / v for k, v in res.items()}
            row = {"name": f"{a.shape if a.model is None else a.model.name}/{name}",
                   "ours_sentences_s": sps["float"], "ours_tok_s": sps["float"] * a.new,
                   **{f"ours_{k}_sentences_s": v for k, v in sps.items() if k != "float"},
                   "ref": {k: {"sentences_s": b / v, "tokens_s": b * a.new / v} for k, v in ref.items()},
                   "ratio": {k: sps["float"] / (b / v) for k, v in ref.items()}}
            for k, v in sps.items():
                if k != "float":
                    row["ratio"].update({f"{k}_vs_{r}": v / (b / t) for r, t in ref.items()})
            out_rows.append(row)
            refs = "  ".join(f"{k} {b / v:7.2f} sent/s ({sps['float'] * v / b:.2f}x)" for k, v in ref.items())
            qs = "  ".join(f"{k} {v:7.2f}" for k, v in sps.items() if k != "float")
            print(f"{row['name']:>24}: ours {sps['float']:7.2f} sent/s {sps['float'] * a.new:8.1f} tok/s  {qs}  {refs}",
                  flush=True)
    result = {"family": FAMILY, "unit": "sentences/s", "higher_is_better": True, "dtype": a.dtype, "device": a.device, "mlx_device": str(mx.default_device()), "new": a.new,
              "src_len": a.src_len, "ctranslate2": "used" if ct2 is not None else ct2_why, "rows": out_rows}
    if a.json:
        a.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
