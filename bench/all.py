"""Run every family benchmark, then write one JSON and one plot of fx2mlx's speed against each family's
references, so that one command shows where fx2mlx stands.

    python bench/all.py --quick                                   # CPU smoke run: tiny shapes, every bench
    python bench/all.py --device cuda --dtype bfloat16 --out bench-results
    python bench/all.py --only models --args "models=--models bert-base,vit-base"
    python bench/all.py --inputs a.json b.json --out bench-results    # merge results already written, plot

The convention (what makes `bench/NAME.py` a family bench, found by this script without importing it):
  - it defines a module-level `FAMILY = "name"`;
  - it takes `--json PATH`, `--quick` (tiny shapes, a smoke run), `--device cpu|cuda`, `--dtype D`;
  - with --json it writes {"family", "unit" ("ms" or "tok/s"), "higher_is_better", "device", "dtype",
    "rows": [{"name", "ours_ms" or "ours_tok_s", "ref": {reference: value}, "ratio": {reference: x}}]},
    where each ratio is fx2mlx's speedup over that reference (>1: fx2mlx faster): reference ms / fx2mlx ms,
    or fx2mlx tok/s / reference tok/s. A row with "error" records a failure.
Each bench runs in its own process (--timeout seconds each); a bench that fails is recorded, not fatal.
Output: OUT/all.json ({"benches": [each bench's JSON]}) and OUT/all.png (ratios, log scale; needs
matplotlib, else skipped with a note); a table of ratios and their geometric means is printed.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def family_benches() -> dict[str, Path]:
    """bench/*.py files that follow the convention: {family: path}."""
    found = {}
    for p in sorted(HERE.glob("*.py")):
        if p.name.startswith("_") or p.name == "all.py":
            continue
        m = re.search(r'^FAMILY\s*=\s*["\']([\w.-]+)["\']', p.read_text(), re.M)
        if m:
            found[m.group(1)] = p
    return found


def run_bench(family: str, path: Path, args, extra: list[str], folder: Path) -> dict:
    out = folder / f"{family}.json"
    cmd = [sys.executable, str(path), "--json", str(out), "--device", args.device, "--dtype", args.dtype]
    cmd += ["--quick"] if args.quick else []
    cmd += extra
    print(f"\n=== {family}: {' '.join(shlex.quote(c) for c in cmd)}", flush=True)
    t = time.perf_counter()
    try:
        r = subprocess.run(cmd, timeout=args.timeout)
        rc = r.returncode
    except subprocess.TimeoutExpired:
        rc = "timeout"
    took = time.perf_counter() - t
    if rc == 0 and out.is_file():
        res = json.loads(out.read_text())
        res["seconds"] = took
        return res
    return {"family": family, "error": f"exit {rc} after {took:.0f} s", "rows": []}


def value_key(row: dict) -> str | None:
    return next((k for k in row if k.startswith("ours_")), None)


def summarize(benches: list[dict]) -> list[str]:
    lines = []
    for b in benches:
        head = f"[{b.get('family')}] {b.get('device', '')} {b.get('dtype', '')} ({b.get('unit', '')})"
        if b.get("error"):
            lines.append(f"{head}: FAILED {b['error']}")
            continue
        lines.append(head)
        per_ref: dict[str, list] = {}
        for r in b["rows"]:
            if r.get("error"):
                lines.append(f"  {r['name']:32s} FAILED {r['error']}")
                continue
            k = value_key(r)
            ratios = "  ".join(f"vs {ref} {x:.2f}x" for ref, x in r.get("ratio", {}).items())
            lines.append(f"  {r['name']:32s} {k} {r[k]:10.2f}   {ratios}")
            for ref, x in r.get("ratio", {}).items():
                if x and x > 0 and math.isfinite(x):
                    per_ref.setdefault(ref, []).append(x)
        for ref, xs in per_ref.items():
            lines.append(f"  geometric mean vs {ref}: {math.exp(sum(map(math.log, xs)) / len(xs)):.2f}x "
                         f"over {len(xs)} rows")
    return lines


def plot(benches: list[dict], path: Path) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no plot"
    bars = []  # (label, reference, ratio)
    for b in benches:
        for r in b.get("rows", []):
            for ref, x in (r.get("ratio") or {}).items():
                if x and x > 0 and math.isfinite(x):
                    bars.append((f"{b['family']}: {r['name']}", ref, x))
    if not bars:
        return "nothing to plot"
    refs = sorted({ref for _, ref, _ in bars})
    labels = list(dict.fromkeys(lbl for lbl, _, _ in bars))
    here = {lbl: [ref for ll, ref, _ in bars if ll == lbl] for lbl in labels}  # the references of each row
    fig, ax = plt.subplots(figsize=(9, 0.6 + 0.22 * len(bars)))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for j, ref in enumerate(refs):
        ys, xs = [], []
        for lbl, rr, x in bars:
            if rr == ref:
                n, k = len(here[lbl]), here[lbl].index(ref)
                ys.append(labels.index(lbl) + (k - (n - 1) / 2) * 0.8 / n)
                xs.append(x)
        ax.barh(ys, xs, height=0.8 / max(len(v) for v in here.values()), color=colors[j % len(colors)],
                label=f"vs {ref}")
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", lw=1)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("fx2mlx speedup over the reference (log scale; >1: fx2mlx faster)")
    dev = {(b.get("device"), b.get("dtype")) for b in benches if b.get("device")}
    ax.set_title("fx2mlx vs references: " + ", ".join(f"{d} {t}" for d, t in sorted(dev)), fontsize=9)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"plot: {path}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="pass --quick to every bench (tiny shapes)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--dtype", default="float32")
    p.add_argument("--only", help="comma-separated families (default: every bench found)")
    p.add_argument("--args", action="append", default=[], metavar="FAMILY=ARGS",
                   help='extra arguments for one bench, e.g. "models=--models bert-base --no-torch-compile"')
    p.add_argument("--inputs", nargs="+", type=Path, help="merge these bench JSONs instead of running benches")
    p.add_argument("--out", type=Path, default=Path("bench-results"))
    p.add_argument("--timeout", type=int, default=3600, help="seconds per bench")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.inputs:
        benches = []
        for f in args.inputs:
            d = json.loads(f.read_text())
            benches.extend(d["benches"] if "benches" in d else [d])
    else:
        found = family_benches()
        want = [f.strip() for f in args.only.split(",")] if args.only else list(found)
        unknown = [f for f in want if f not in found]
        if unknown:
            p.error(f"no bench for {unknown}; found: {', '.join(found)}")
        extra = {}
        for a in args.args:
            fam, _, rest = a.partition("=")
            extra[fam] = shlex.split(rest)
        folder = Path(tempfile.mkdtemp(prefix="fx2mlx-bench-all-"))
        benches = [run_bench(f, found[f], args, extra.get(f, []), folder) for f in want]
    (args.out / "all.json").write_text(json.dumps({"benches": benches}, indent=1))
    print("\n" + "\n".join(summarize(benches)))
    print(f"\nresults: {args.out / 'all.json'}; {plot(benches, args.out / 'all.png')}")
    return 0 if all(not b.get("error") for b in benches) else 1


if __name__ == "__main__":
    sys.exit(main())
