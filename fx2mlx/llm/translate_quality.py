"""How close a quantized seq2seq compile is to the float one, on a fixed set of sentences: greedy (and beam)
outputs of both, exact-sequence rate, token agreement (position by position over the float output) and
BLEU of the quantized translations against the float ones (sacrebleu; skipped if it is not installed).

    python -m fx2mlx.llm.translate_quality FLOAT_OUT QUANT_OUT [--src en --tgt de] [--num-beams 1 4] [--new 32]

Folders compiled with a tokenizer are compared on SENTENCES (text); others on ROWS (token ids, BLEU on
the ids as words).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.", "Where is the train station?", "I would like a cup of coffee.",
    "The weather is nice today, but it will rain tomorrow.", "Machine translation has improved a lot.",
    "Please close the door when you leave.", "She has lived in this city for ten years.",
    "How much does this book cost?", "We are going to the museum on Sunday.", "He forgot his keys at home again.",
    "The meeting starts at nine o'clock.", "Can you help me find my phone?", "They built a new bridge over the river.",
    "Children are playing in the park.", "This restaurant serves excellent food.", "Thank you very much for your help.",
]
ROWS = [[5, 6, 7, 8, 9, 10, 2], [11, 12, 13, 2], [20, 21, 22, 23, 24, 2], [30, 31, 5, 7, 2], [40, 41, 42, 43, 44, 45, 2],
        [9, 8, 7, 6, 5, 2], [50, 51, 52, 2], [13, 17, 19, 23, 29, 31, 37, 2]]


def compare(float_out, quant_out, *, src=None, tgt=None, num_beams=1, new=32) -> dict:
    import fx2mlx

    ref, q = fx2mlx.load(float_out), fx2mlx.load(quant_out)
    text = "error" not in (ref.manifest.get("translation") or {"error": 1})
    if text:
        rows, gen = ref.prepare(SENTENCES, src, tgt)
    else:
        rows, gen = ROWS, {}
    kw = dict(num_beams=num_beams, max_new_tokens=new, **gen)
    a = [ref.new_tokens(r) for r in ref.generate(rows, **kw)]
    b = [q.new_tokens(r) for r in q.generate(rows, **kw)]
    same = sum(x == y for x, y in zip(a, b))
    agree = sum(sum(i < len(y) and t == y[i] for i, t in enumerate(x)) for x, y in zip(a, b))
    total = sum(len(x) for x in a)
    out = {"num_beams": num_beams, "sentences": len(rows), "exact": same / len(rows),
           "token_agreement": agree / max(total, 1), "tokens": total, "on": "text" if text else "ids"}
    try:
        import sacrebleu
    except ImportError:
        out["bleu"] = None
        return out
    if text:
        tk = ref.text_tokenizer()
        hyp, refs = [tk.decode(y) for y in b], [tk.decode(x) for x in a]
    else:
        hyp, refs = [" ".join(map(str, y)) for y in b], [" ".join(map(str, x)) for x in a]
    out["bleu"] = round(sacrebleu.corpus_bleu(hyp, [refs]).score, 2)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("float_out", type=Path)
    p.add_argument("quant_out", type=Path)
    p.add_argument("--src")
    p.add_argument("--tgt")
    p.add_argument("--num-beams", type=int, nargs="+", default=[1, 4])
    p.add_argument("--new", type=int, default=32)
    a = p.parse_args(argv)
    for nb in a.num_beams:
        print(json.dumps(compare(a.float_out, a.quant_out, src=a.src, tgt=a.tgt, num_beams=nb, new=a.new)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
