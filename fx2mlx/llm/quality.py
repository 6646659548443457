"""How close a quantized compile is to the float one: mean KL(float || quantized) of the next-token
distributions and top-1 (greedy-token) agreement, teacher-forced along the float model's greedy
continuation of each prompt.

    python -m fx2mlx.llm.quality FLOAT_OUT QUANT_OUT [--new 32]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

# A fixed prompt set (token ids below 256, so any vocabulary takes them).
PROMPTS = [[1, 15, 42, 7, 99, 3], [2, 200, 31, 31, 8], [5, 17, 99, 3, 42, 7, 120, 64], [250, 4, 4, 18, 77, 91, 13],
           [9, 8, 7, 6, 5, 4, 3, 2], [100, 101, 102, 103], [11, 22, 33, 44, 55, 66], [3, 141, 59, 26, 53, 58, 97]]


def compare_models(float_out, quant_out, prompts=PROMPTS, new: int = 32) -> dict:
    import mlx.core as mx

    from .api import load_llm

    ref, q = load_llm(float_out), load_llm(quant_out)
    kls, agree = [], []
    for p in prompts:
        seq = p + list(ref.stream(p, max_tokens=new, stop_at_eos=False))
        ids = mx.array([seq])
        a = ref.model(ids)["logits"][0, len(p) - 1:].astype(mx.float32)
        b = q.model(ids)["logits"][0, len(p) - 1:].astype(mx.float32)
        la = a - mx.logsumexp(a, axis=-1, keepdims=True)
        lb = b - mx.logsumexp(b, axis=-1, keepdims=True)
        kls.append(np.array(mx.sum(mx.exp(la) * (la - lb), axis=-1)))
        agree.append(np.array(mx.argmax(a, axis=-1) == mx.argmax(b, axis=-1)))
    kl, ag = np.concatenate(kls), np.concatenate(agree)
    return {"kl": float(kl.mean()), "kl_max": float(kl.max()), "agreement": float(ag.mean()),
            "positions": int(ag.size), "prompts": len(prompts)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("float_out", type=Path)
    p.add_argument("quant_out", type=Path)
    p.add_argument("--new", type=int, default=32)
    a = p.parse_args(argv)
    print(json.dumps(compare_models(a.float_out, a.quant_out, new=a.new), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
