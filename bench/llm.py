"""Prefill and decode tokens/s of a compiled LLM vs Hugging Face transformers (eager) vs mlx-lm, on the
same weights, in one run; prints the ratios.

    python bench/llm.py                                  # small Llama shape, float32, this CPU
    python bench/llm.py --shape llama-3.2-1b --dtype bfloat16 --device cuda    # the GPU figure
    python bench/llm.py --model HF_DIR                   # an existing local checkpoint
    python bench/llm.py --batch 8                        # batched throughput vs mlx-lm batch_generate

Greedy decoding, batch 1, a random prompt of --prompt tokens, --new tokens. Prefill tok/s is
prompt / time to the first token; decode tok/s counts the tokens after the first over the time after
it. Each system runs once to warm up, then all take turns --runs times; the best run counts.
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

FAMILY = "llm"  # bench/all.py convention: FAMILY, --json/--quick/--device/--dtype (see bench/all.py)

SHAPES = {
    "tiny": None,  # fx2mlx.llm.testing.TINY
    "small": dict(vocab_size=32000, hidden_size=768, intermediate_size=2048, num_hidden_layers=8,
                  num_attention_heads=12, num_key_value_heads=4, max_position_embeddings=4096),
    "llama-3.2-1b": "LLAMA_3_2_1B",
}


def make_model(shape: str, dtype: str, folder: Path) -> Path:
    import torch

    from fx2mlx.llm import testing

    extra = SHAPES[shape]
    if isinstance(extra, str):
        extra = getattr(testing, extra)
    cfg = testing.config("llama", **(extra or {}))
    return testing.save_model(cfg, folder, dtype=getattr(torch, dtype))


def timed(tokens_iter, prompt_len: int) -> tuple[float, float, list]:
    t0 = time.perf_counter()
    out, first = [], None
    for tok in tokens_iter:
        if first is None:
            first = time.perf_counter()
        out.append(tok)
    end = time.perf_counter()
    prefill = prompt_len / (first - t0)
    decode = (len(out) - 1) / (end - first) if len(out) > 1 else float("nan")
    return prefill, decode, out


def interleaved(runners: dict, runs: int) -> dict:
    """Warm each up, then run them in turn `runs` times (a busy machine slows all alike); best of runs."""
    for fn in runners.values():
        fn()  # warm-up (kernels, g++ builds, allocator)
    results = {k: [] for k in runners}
    for _ in range(runs):
        for k, fn in runners.items():
            results[k].append(fn())
    return {k: (max(r[0] for r in rs), max(r[1] for r in rs), rs[-1][2], rs) for k, rs in results.items()}


def paired(a: list, b: list, i: int) -> float:
    """Median over rounds of a/b (rounds ran back to back: robust on a busy machine)."""
    r = sorted(x[i] / y[i] for x, y in zip(a, b))
    return r[len(r) // 2] if len(r) % 2 else (r[len(r) // 2 - 1] + r[len(r) // 2]) / 2


def bench_ours(out_dir: Path, prompt: list, new: int):
    from fx2mlx.llm import load_llm

    lm = load_llm(out_dir)
    return lambda: timed(lm.stream(prompt, max_tokens=new, stop_at_eos=False), len(prompt))


def bench_mlx_lm(model_dir: Path, prompt: list, new: int):
    import mlx.core as mx
    from mlx_lm.generate import generate_step
    from mlx_lm.utils import load_model

    model, _ = load_model(model_dir, model_config=mlx_lm_config(model_dir))

    def run():
        it = generate_step(mx.array(prompt), model, max_tokens=new, sampler=lambda x: mx.argmax(x, axis=-1))
        return timed((int(t) for t, _ in it), len(prompt))

    return run


def mlx_lm_config(model_dir: Path) -> dict:
    """transformers 5 writes RoPE settings under `rope_parameters`; mlx-lm (0.32) reads `rope_theta` and
    `rope_scaling`: hand them over, or mlx-lm runs plain RoPE with theta 10000 on these weights."""
    rp = json.loads((model_dir / "config.json").read_text()).get("rope_parameters") or {}
    out = {"rope_theta": rp["rope_theta"]} if "rope_theta" in rp else {}
    if rp.get("rope_type", "default") != "default":
        out["rope_scaling"] = {k: v for k, v in rp.items() if k != "rope_theta"}
    return out


def bench_hf(model_dir: Path, prompt: list, new: int, device: str, dtype: str):
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.generation.streamers import BaseStreamer

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=getattr(torch, dtype),
                                                 attn_implementation="eager").to(device).eval()
    ids = torch.tensor([prompt], device=device)

    class Stamps(BaseStreamer):
        def __init__(self):
            self.times, self.tokens = [], []

        def put(self, value):
            if device == "cuda":
                torch.cuda.synchronize()
            self.times.append(time.perf_counter())
            self.tokens.append(value)

        def end(self):
            pass

    def run():
        s = Stamps()
        t0 = time.perf_counter()
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=new, min_new_tokens=new, do_sample=False, streamer=s,
                                 pad_token_id=0)
        if device == "cuda":
            torch.cuda.synchronize()
        end = time.perf_counter()
        first = s.times[1]  # times[0]: the prompt itself
        return len(prompt) / (first - t0), (new - 1) / (end - first), out[0, len(prompt):].tolist()

    return run


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, help="a local Hugging Face causal-LM directory (else a random one)")
    p.add_argument("--shape", default="small", choices=sorted(SHAPES))
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--device", default="cpu", help="torch device for transformers (cpu or cuda)")
    p.add_argument("--prompt", type=int, default=32)
    p.add_argument("--new", type=int, default=128)
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--skip-hf", action="store_true")
    p.add_argument("--batch", type=int, default=1, help="N > 1: N prompts of different lengths in one batch "
                   "(throughput; bench/_llm_batch.py) instead of the batch-1 latency run")
    p.add_argument("--quick", action="store_true", help="tiny shape, short prompt and generation (a smoke run)")
    p.add_argument("--meta", choices=["auto", "yes", "no"], default="auto",
                   help="capture with parameters on the meta device (auto: checkpoints over 2 GiB)")
    p.add_argument("--json", type=Path, help="also write the numbers here")
    p.add_argument("--work", type=Path, help="folder for the model and the compiled output (default: a temp dir)")
    args = p.parse_args(argv)
    if args.quick:
        args.shape, args.prompt, args.new, args.runs = "tiny", 8, 16, 1

    print(f"BLAS: {blas.use_optimized_blas() or 'the mlx wheel reference BLAS'}")
    import mlx.core as mx
    import torch

    from fx2mlx.recipes.causal_lm import compile_llm

    torch.set_num_threads(torch.get_num_threads())
    work = args.work or Path(tempfile.mkdtemp(prefix="fx2mlx-bench-"))
    model_dir = args.model or make_model(args.shape, args.dtype, work / "hf")
    t = time.perf_counter()
    meta = {"auto": None, "yes": True, "no": False}[args.meta]
    _, times = compile_llm(model_dir, work / "out", dtype=args.dtype, force=True, meta=meta)
    print(f"compiled in {time.perf_counter() - t:.1f} s ({', '.join(f'{k} {v:.1f}' for k, v in times.items())}); "
          f"mlx device {mx.default_device()}")
    cfg = json.loads((model_dir / "config.json").read_text())
    g = torch.Generator().manual_seed(1)
    prompt = torch.randint(5, cfg["vocab_size"], (args.prompt,), generator=g).tolist()
    if args.batch > 1:
        return batch_main(args, model_dir, work / "out", cfg)

    runners = {"fx2mlx": bench_ours(work / "out", prompt, args.new)}
    try:
        runners["mlx-lm"] = bench_mlx_lm(model_dir, prompt, args.new)
    except ImportError as e:  # mlx-lm is not installed (e.g. on a GPU machine without its wheel)
        print(f"mlx-lm skipped: {e}")
    if not args.skip_hf:
        runners["hf-eager"] = bench_hf(model_dir, prompt, args.new, args.device, args.dtype)
    rows = interleaved(runners, args.runs)
    what = f"{args.model.name} (" + str(cfg.get("num_hidden_layers")) + " layers)" if args.model else args.shape
    print(f"\n{what} {args.dtype}, batch 1, prompt {args.prompt}, {args.new} new tokens (best of {args.runs})")
    print(f"{'':10s} {'prefill tok/s':>14s} {'decode tok/s':>13s}")
    for k, (pf, dc, _, _) in rows.items():
        print(f"{k:10s} {pf:14.1f} {dc:13.1f}")
    ours = rows["fx2mlx"]
    for k in rows:
        if k != "fx2mlx":
            print(f"fx2mlx / {k}: prefill {ours[0] / rows[k][0]:.2f}x, decode {ours[1] / rows[k][1]:.2f}x (best runs); "
                  f"median of paired rounds: prefill {paired(ours[3], rows[k][3], 0):.2f}x, "
                  f"decode {paired(ours[3], rows[k][3], 1):.2f}x")
    # (mlx-lm's sampler sees log-probabilities: in bfloat16 their rounding breaks near-ties differently)
    print("greedy tokens equal to " + "; ".join(f"{k}: {ours[2] == rows[k][2]}" for k in rows if k != "fx2mlx"))
    if args.json:  # bench/all.py's format: a row per phase, tok/s, ratios = fx2mlx / reference
        args.json.write_text(json.dumps({
            "family": FAMILY, "unit": "tok/s", "higher_is_better": True, "device": args.device, "dtype": args.dtype,
            "mlx_device": str(mx.default_device()), "quick": args.quick, "shape": what,
            "rows": [{"name": f"{what} {phase}", "ours_tok_s": ours[i],
                      "ref": {k: v[i] for k, v in rows.items() if k != "fx2mlx"},
                      "ratio": {k: ours[i] / v[i] for k, v in rows.items() if k != "fx2mlx"},
                      "rounds": {k: [r[i] for r in v[3]] for k, v in rows.items()}}
                     for i, phase in enumerate(("prefill", "decode"))]}, indent=1))
    return 0


def batch_main(args, model_dir: Path, out_dir: Path, cfg: dict) -> int:
    import mlx.core as mx

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _llm_batch import run_batch

    rows = run_batch(args, model_dir, out_dir, cfg, mlx_lm_config(model_dir))
    what = args.model.name if args.model else args.shape
    if args.json:
        ours = rows["fx2mlx"]
        args.json.write_text(json.dumps({
            "family": FAMILY, "unit": "tok/s", "higher_is_better": True, "device": args.device, "dtype": args.dtype,
            "mlx_device": str(mx.default_device()), "quick": args.quick, "shape": what, "batch": args.batch,
            "rows": [{"name": f"{what} batch {args.batch} {phase}", "ours_tok_s": ours[i],
                      "ref": {k: v[i] for k, v in rows.items() if k != "fx2mlx"},
                      "ratio": {k: ours[i] / v[i] for k, v in rows.items() if k != "fx2mlx"}}
                     for i, phase in enumerate(("total", "decode"))]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
