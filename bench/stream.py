"""Per-chunk latency and real-time factor of compiled streams (fx2mlx.Stream) against PyTorch eager
running the same stage modules chunk by chunk with the same explicit state.

    python bench/stream.py --quick                 # CPU smoke run (20 chunks)
    python bench/stream.py --chunks 500 --json out.json
    python bench/stream.py --device cuda           # PyTorch on the GPU; MLX on its default device

Streams: `wakeword` (fx2mlx.twins.openwakeword: mel front end, speech embedding, dnn + rnn heads;
80 ms chunks) and `lstm-vad` (conv front end + LSTM + sigmoid, 30 ms chunks). Each system is warmed up on
5 chunks, then fed --chunks chunks one at a time (batch 1, what a live stream does); the median per-chunk
time counts. On CPU torch runs one thread (with mlx.core loaded its 2-thread kernels were seen to stall). RTF = per-chunk time / chunk duration (<1: faster than real time). --json rows follow
bench/all.py's convention (ratio = torch ms / fx2mlx ms, >1: fx2mlx faster).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fx2mlx import blas  # noqa: E402

FAMILY = "stream"


def lstm_vad():
    import torch
    import torch.nn as nn

    class LstmVad(nn.Module):
        def __init__(self):
            super().__init__()
            self.front, self.proj = nn.Conv1d(1, 64, 160, stride=160), nn.Linear(64, 64)
            self.lstm, self.head = nn.LSTM(64, 64, batch_first=True), nn.Linear(64, 1)

        def forward(self, audio, h, c):
            f = torch.relu(self.front(audio.unsqueeze(1))).transpose(1, 2)
            y, (h, c) = self.lstm(torch.tanh(self.proj(f)), (h, c))
            return torch.sigmoid(self.head(y)).squeeze(-1), h, c

    import fx2mlx

    torch.manual_seed(0)
    z = torch.zeros(1, 1, 64)
    return fx2mlx.Stream(chunk=480, rate=16000).add("vad", LstmVad().eval(), (torch.randn(1, 480),),
                                                     state={"h": z, "c": z.clone()})


def wakeword():
    from fx2mlx.twins.openwakeword import make_stream

    return make_stream()


def torch_feed(stream, device):
    """A per-chunk function running the stages in PyTorch with explicit state (the reference)."""
    import torch

    stages = [(m.to(device), [s.to(device) for s in st.values()]) for m, _, st in stream.stages.values()]

    @torch.no_grad()
    def feed(chunk):
        values = (chunk,)
        for k, (m, state) in enumerate(stages):
            out = m(*values, *state)
            n = len(out) - len(state)
            values, stages[k] = out[:n], (m, list(out[n:]))
        if device == "cuda":
            torch.cuda.synchronize()
        return values
    return feed


def timed(fn, chunks) -> float:
    for c in chunks[:5]:
        fn(c)
    times = []
    for c in chunks:
        t = time.perf_counter()
        fn(c)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", type=Path)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--dtype", default="float32", choices=["float32"])
    ap.add_argument("--chunks", type=int, default=200)
    args = ap.parse_args()
    blas.use_optimized_blas()
    import mlx.core as mx
    import numpy as np
    import torch

    import fx2mlx

    if args.device == "cpu":  # with mlx.core loaded, torch's multi-thread CPU kernels can stall (tests/conftest.py)
        torch.set_num_threads(1)
    n = 20 if args.quick else args.chunks
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in (("wakeword", wakeword), ("lstm-vad", lstm_vad)):
            stream = make()
            chunk, rate = stream.chunk, stream.rate
            compiled = fx2mlx.convert(stream, out_dir=Path(tmp) / name)
            audio = np.random.default_rng(0).standard_normal((n, 1, chunk)).astype(np.float32) * 3000
            ours = timed(compiled.feed, [mx.array(a) for a in audio])
            ref = timed(torch_feed(stream, args.device), [torch.from_numpy(a).to(args.device) for a in audio])
            dur = chunk / rate * 1e3
            rows.append({"name": f"{name} ({dur:.0f} ms chunks)", "ours_ms": ours, "ref": {"torch-eager": ref},
                         "ratio": {"torch-eager": ref / ours}, "rtf": {"fx2mlx": ours / dur, "torch-eager": ref / dur}})
            print(f"{name:9s} chunk {dur:4.0f} ms  fx2mlx {ours:8.3f} ms (RTF {ours / dur:.4f})  torch {ref:8.3f} ms "
                  f"(RTF {ref / dur:.4f})  ratio {ref / ours:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"family": FAMILY, "unit": "ms", "higher_is_better": False,
                                         "device": args.device, "dtype": args.dtype,
                                         "mlx_device": str(mx.default_device()), "quick": args.quick, "rows": rows},
                                        indent=1))


if __name__ == "__main__":
    main()
