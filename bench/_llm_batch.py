"""Batched generation throughput for bench/llm.py --batch N: N prompts of different lengths (left-padded),
greedy, --new tokens each (no early stop), fx2mlx `stream_batch` vs mlx-lm `batch_generate` vs HF eager
`generate` on the padded batch (with its attention mask).

Throughput is generated tokens / wall time: `total` counts all N x new tokens over the whole call
(prefill included), `decode` the tokens after the first step over the time after it (for mlx-lm: its own
`generation_tps` statistic, which counts the same way). Each system warms up once, then all take turns
--runs times; the best run counts.
"""
from __future__ import annotations

import time


def prompts_of(n: int, length: int, vocab: int, seed: int = 1) -> list[list[int]]:
    """n random prompts, lengths spread evenly from length // 2 to length."""
    import torch

    g = torch.Generator().manual_seed(seed)
    lengths = [max(2, length // 2 + (length - length // 2) * i // max(1, n - 1)) for i in range(n)]
    return [torch.randint(5, vocab, (k,), generator=g).tolist() for k in lengths]


def ours(out_dir, prompts, new):
    from fx2mlx.llm import load_llm

    lm = load_llm(out_dir)

    def run():
        t0 = time.perf_counter()
        first, rows = None, [[] for _ in prompts]
        for step in lm.stream_batch(prompts, max_tokens=new, stop_at_eos=False):
            first = first or time.perf_counter()
            for r, t in zip(rows, step):
                r.append(t)
        end = time.perf_counter()
        n = sum(map(len, rows))
        return n / (end - t0), (n - len(prompts)) / (end - first), rows

    return run


def mlx_lm(model_dir, prompts, new, config):
    import mlx.core as mx
    from mlx_lm import batch_generate
    from mlx_lm.utils import load_model

    model, _ = load_model(model_dir, model_config=config)

    class NoEos:  # batch_generate reads the stop tokens from the tokenizer: none, as for the others
        eos_token_ids = []

        @staticmethod
        def decode(ids):
            return ""

    def run():
        t0 = time.perf_counter()
        r = batch_generate(model, NoEos(), prompts, max_tokens=new, return_token_ids=True,
                           sampler=lambda x: mx.argmax(x, axis=-1))
        end = time.perf_counter()
        rows = [list(map(int, t)) for t in r.token_ids]
        return sum(map(len, rows)) / (end - t0), r.stats.generation_tps, rows

    return run


def hf_eager(model_dir, prompts, new, device, dtype):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=getattr(torch, dtype),
                                                 attn_implementation="eager").to(device).eval()
    width = max(map(len, prompts))
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts], device=device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)

    def run():
        t0 = time.perf_counter()
        with torch.no_grad():
            out = model.generate(ids, attention_mask=mask, max_new_tokens=new, min_new_tokens=new, do_sample=False,
                                 pad_token_id=0)
        if device == "cuda":
            torch.cuda.synchronize()
        end = time.perf_counter()
        rows = out[:, width:].tolist()
        return sum(map(len, rows)) / (end - t0), float("nan"), rows

    return run


def run_batch(args, model_dir, out_dir, cfg, config_for_mlx_lm) -> dict:
    """-> {system: (total tok/s, decode tok/s, rows)} (best of args.runs), printed with the ratios."""
    prompts = prompts_of(args.batch, args.prompt, cfg["vocab_size"])
    runners = {"fx2mlx": ours(out_dir, prompts, args.new)}
    try:
        runners["mlx-lm"] = mlx_lm(model_dir, prompts, args.new, config_for_mlx_lm)
    except ImportError as e:  # mlx-lm missing, or too old for batch_generate
        print(f"mlx-lm skipped: {e}")
    if not args.skip_hf:
        runners["hf-eager"] = hf_eager(model_dir, prompts, args.new, args.device, args.dtype)
    for fn in runners.values():
        fn()
    results = {k: [] for k in runners}
    for _ in range(args.runs):
        for k, fn in runners.items():
            results[k].append(fn())
    rows = {k: (max(r[0] for r in rs), max(r[1] for r in rs), rs[-1][2]) for k, rs in results.items()}
    lengths = sorted({len(p) for p in prompts})
    print(f"\nbatch {args.batch}, prompts of {lengths[0]}..{lengths[-1]} tokens, {args.new} new tokens each "
          f"(best of {args.runs})")
    print(f"{'':10s} {'total tok/s':>12s} {'decode tok/s':>13s}")
    for k, (tot, dec, _) in rows.items():
        print(f"{k:10s} {tot:12.1f} {dec:13.1f}")
    me = rows["fx2mlx"]
    for k, v in rows.items():
        if k != "fx2mlx":
            print(f"fx2mlx / {k}: total {me[0] / v[0]:.2f}x, decode {me[1] / v[1]:.2f}x; "
                  f"greedy rows equal: {sum(a == b for a, b in zip(me[2], v[2]))}/{len(prompts)}")
    return rows
