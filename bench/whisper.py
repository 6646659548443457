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
>1 means fx2mlx is faster).

mlx-whisper (`pip install mlx-whisper`; only its model code is used, so its numba/tiktoken extras may be
absent) is compared on the same backend at the model level: the same HF weights renamed to its layout, one
window, encoder + N greedy decoder steps with its KV cache (argmax, no stopping), against fx2mlx's graphs in the
same loop (encoder, cross_kv, N decoder_step calls); rows "engine-b1". Its first tokens are checked to equal ours.
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


def import_mlx_whisper():
    """mlx_whisper.whisper without running the package's __init__ (which imports its transcription stack)."""
    import importlib
    import importlib.util
    import types

    spec = importlib.util.find_spec("mlx_whisper")
    if spec is None:
        raise ImportError("mlx-whisper is not installed")
    if "mlx_whisper" not in sys.modules:
        pkg = types.ModuleType("mlx_whisper")
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["mlx_whisper"] = pkg
    return importlib.import_module("mlx_whisper.whisper")


HF_TO_OPENAI = (("model.encoder.layer_norm.", "encoder.ln_post."), ("model.decoder.layer_norm.", "decoder.ln."),
                ("model.decoder.embed_tokens.", "decoder.token_embedding."), ("model.", ""), (".layers.", ".blocks."),
                (".self_attn_layer_norm.", ".attn_ln."), (".encoder_attn_layer_norm.", ".cross_attn_ln."),
                (".final_layer_norm.", ".mlp_ln."), (".self_attn.", ".attn."), (".encoder_attn.", ".cross_attn."),
                (".q_proj.", ".query."), (".k_proj.", ".key."), (".v_proj.", ".value."), (".out_proj.", ".out."),
                (".fc1.", ".mlp1."), (".fc2.", ".mlp2."))


def mlx_whisper_model(hf_model):
    """An mlx_whisper.whisper.Whisper (float32) holding the HF model's weights."""
    import mlx.core as mx
    from mlx.utils import tree_unflatten

    mw = import_mlx_whisper()
    c = hf_model.config
    dims = mw.ModelDimensions(n_mels=c.num_mel_bins, n_audio_ctx=c.max_source_positions, n_audio_state=c.d_model,
                              n_audio_head=c.encoder_attention_heads, n_audio_layer=c.encoder_layers,
                              n_vocab=c.vocab_size, n_text_ctx=c.max_target_positions, n_text_state=c.d_model,
                              n_text_head=c.decoder_attention_heads, n_text_layer=c.decoder_layers)
    model = mw.Whisper(dims, dtype=mx.float32)
    weights = []
    for k, v in hf_model.state_dict().items():
        if k.startswith("proj_out.") or k == "model.encoder.embed_positions.weight":
            continue  # tied to the token embedding; sinusoids (mlx-whisper computes its own)
        for a, b in HF_TO_OPENAI:
            k = k.replace(a, b)
        k = k.replace("decoder.embed_positions.weight", "decoder.positional_embedding")
        a = v.detach().float().numpy()
        if k.endswith("conv1.weight") or k.endswith("conv2.weight"):
            a = a.transpose(0, 2, 1)
        weights.append((k, mx.array(a)))
    model.update(tree_unflatten(weights))
    return model


def engine_loops(ours, mw_model, feats, prompt, n):
    """(our loop, mlx-whisper's loop): encoder + n greedy decoder steps each, -> the tokens."""
    import mlx.core as mx

    def run_ours():
        ck, cv = ours.encode_features(mx.array(feats))
        keys, values = ours.empty_cache(1)
        state = {"keys": keys, "values": values, "ck": ck, "cv": cv, "mask": None}
        ours.prefill([prompt], state)
        tok, out = prompt[-1], []
        for _ in range(n):
            tok = mx.argmax(ours.step([tok], state), axis=-1).item()
            out.append(tok)
        return out

    def run_theirs():
        audio = mw_model.encoder(mx.array(feats).transpose(0, 2, 1))
        logits, cache, _ = mw_model.decoder(mx.array([prompt]), audio, None)
        out = []
        for _ in range(n):
            tok = mx.argmax(logits[:, -1], axis=-1).item()
            out.append(tok)
            logits, cache, _ = mw_model.decoder(mx.array([[tok]]), audio, cache)
        return out
    return run_ours, run_theirs


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
    p.add_argument("--skip-mlx-whisper", action="store_true")
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
    mw_why = "skipped"
    if not a.skip_mlx_whisper and model is not None:
        try:
            mw_model = mlx_whisper_model(model.cpu())
            mw_why = "used"
        except Exception as e:  # noqa: BLE001 - optional reference
            mw_model, mw_why = None, f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
            print(f"mlx-whisper not used: {mw_why}", file=sys.stderr)
        if mw_model is not None:
            prompt = ours.init_tokens(ours.whisper_settings(language="en"))
            run_ours, run_theirs = engine_loops(ours, mw_model, feats_all[:1].numpy(), prompt, a.new)
            t_o, tok_o = best(run_ours, a.runs)
            t_t, tok_t = best(run_theirs, a.runs)
            same = sum(x == y for x, y in zip(tok_o, tok_t))
            name = f"{a.shape if a.model is None else a.model.name}/engine-b1"
            rows.append({"name": name, "ours": {"rtf": t_o / seconds, "tokens_s": a.new / t_o, "s": t_o},
                         "ref": {"mlx_whisper": {"rtf": t_t / seconds, "tokens_s": a.new / t_t, "s": t_t}},
                         "ratio": {"mlx_whisper": t_t / t_o}, "tokens": a.new, "same_tokens": same})
            print(f"{name:>28}: ours RTF {t_o / seconds:.4f} {a.new / t_o:8.1f} tok/s  mlx_whisper RTF "
                  f"{t_t / seconds:.4f} ({t_t / t_o:.2f}x); {same}/{a.new} tokens equal", flush=True)
    result = {"family": "whisper", "mlx_whisper": mw_why, "device": a.device, "mlx_device": str(mx.default_device()), "new": a.new,
              "audio_s": seconds, "rows": rows}
    if a.json:
        a.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
