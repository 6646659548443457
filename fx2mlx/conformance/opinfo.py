"""Conformance sweep on PyTorch's OpInfo database (`op_db`): every entry, every sample.

    python -m fx2mlx.conformance.opinfo                       # float32, all ops, 2 workers -> opinfo_results.json
    python -m fx2mlx.conformance.opinfo --dtypes all          # + the other dtypes each op supports (MLX has)
    python -m fx2mlx.conformance.opinfo --ops add,sin --show  # a few ops, failures printed

Each sample becomes a call `op(sample.input, *sample.args, **sample.kwargs)`; all samples of one op
(and dtype) are exported together (see `fx2mlx.conformance.opcheck`). Per sample: pass, fail (ran, wrong result
or raised), unsupported (fx2mlx refused to lower it), export (torch.export could not capture it:
not counted), skip (PyTorch eager raised or returned no tensor). A failing sample of an op listed in
`XFAIL` (with the reason) counts as xfail. The score is pass / (pass + fail + unsupported + xfail),
i.e. over the samples torch.export captures.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "tests" / "ops" / "opinfo_float32.json"
# dtypes of the sweep besides float32 (MLX has these; float64/complex128 are CPU-only or absent)
OTHER_DTYPES = ("float16", "bfloat16", "int32", "int64", "bool")

# op name (OpInfo name[.variant]) -> why its failing samples are expected to fail. Keep this list
# honest: every entry is a real limitation of MLX or a PyTorch behaviour fx2mlx does not reproduce.
_RANDOM = "samples random numbers: MLX's generator is not PyTorch's (same distribution, different values)"
_SIGNS = "singular vectors / eigenvectors are unique only up to sign (and order for eig): MLX's LAPACK call picks others"
XFAIL: dict[str, str] = {
    **{k: _RANDOM for k in (
        "bernoulli", "cauchy", "exponential", "geometric", "log_normal", "normal", "normal.in_place",
        "normal.number_mean", "uniform", "rand_like", "randn", "randn_like", "randint", "randint_like", "multinomial",
        "nn.functional.dropout", "nn.functional.dropout2d", "nn.functional.dropout3d", "nn.functional.alpha_dropout",
        "nn.functional.feature_alpha_dropout.with_train", "nn.functional.rrelu",
        "nn.functional.multi_head_attention_forward")},
    "nn.functional.fractional_max_pool2d": _RANDOM + " (the samples without explicit _random_samples)",
    "nn.functional.fractional_max_pool3d": _RANDOM + " (the samples without explicit _random_samples)",
    "svd_lowrank": _RANDOM + "; " + _SIGNS, "pca_lowrank": _RANDOM + "; " + _SIGNS,
    "linalg.svd": _SIGNS, "svd": _SIGNS, "linalg.eigh": _SIGNS, "linalg.eig": _SIGNS, "linalg.eigvals": _SIGNS,
    "nn.functional.linear_cross_entropy.chunked": "torch_nn._linear_cross_entropy_batch_chunked is an opaque custom op",
    "nn.functional.linear_cross_entropy.chunked_none": "torch_nn._linear_cross_entropy_* is an opaque custom op",
    "cdouble": "complex128 does not exist in MLX", "chalf": "complex32 does not exist in MLX",
    "sparse.mm.reduce": "sparse tensors do not exist in MLX", "sparse.sampled_addmm": "sparse tensors do not exist in MLX",
    "to_sparse": "sparse tensors do not exist in MLX",
    "torch._scaled_mm": "float8 scaled matmul (_scaled_mm) is not lowered", "torch._scaled_mm_v2": "float8 scaled matmul is not lowered",
    "resize_as_": "resize changes storage in place; functional graphs cannot express it",
    "hash_tensor": "hash_tensor's hash function is not reproduced",
    "linalg.ldl_factor_ex": "LDL (Bunch-Kaufman) factorisation is not available in MLX",
    "linalg.ldl_factor": "LDL (Bunch-Kaufman) factorisation is not available in MLX",
    "linalg.ldl_solve": "LDL (Bunch-Kaufman) factorisation is not available in MLX",
    "nn.functional.scaled_dot_product_attention": "the dropout_p > 0 samples drop random attention weights (fx2mlx "
                                                  "rejects attention dropout: it only belongs in training)",
    "unique_consecutive": "with a negative dim, PyTorch's meta function does not wrap it (a (5,) input with dim=-1 "
                          "gets values of shape (u, 5)): the exported graph's types are wrong, fx2mlx refuses them",
}

# (op name, dtype) -> reason, for failures of one dtype only (the other dtypes of the op must pass)
_TIES = ("with ties, PyTorch's CPU kernel returns the index of whichever equal element its in-place quickselect "
         "(median-of-three pivot, a partition that swaps equal elements) leaves at position k, an artefact of the swap "
         "order; fx2mlx takes the index from a sort (the values always match)")
_CONV_BIAS = ("MLX's convolution has no fused bias: the float16/bfloat16 convolution is rounded before the bias is added, "
              "so where the bias cancels the convolution the error is relative to |conv| (<= 1 ulp of it), not to the result")
_LN_HALF = ("mx.fast.layer_norm rounds the normalised value to the half type before the affine: where weight * y + bias "
            "cancels, the error is relative to |weight * y| (<= 1 ulp of it), not to the result")
_EXPM_HALF = ("PyTorch's half-precision matrix exponential overflows to NaN/inf where the float32 computation (which "
              "fx2mlx runs, then rounds) is finite")
_SORT_TIES = ("equal values (frequent in half precision, integers and bool) come out of PyTorch's unstable sort in an "
              "order that depends on its algorithm; fx2mlx's sort is stable: the values match, the indices of ties differ")
_MODE_TIES = ("which occurrence of the mode PyTorch indexes depends on its sort for long inputs; fx2mlx returns the last "
              "occurrence (PyTorch's choice for short inputs); the values match")
_INT_CONV = "MLX's convolution takes floating-point inputs only: fx2mlx refuses integer convolution (a `requires` of the entry)"
XFAIL_DTYPE: dict[tuple[str, str], str] = {
    **{(op, d): _SORT_TIES for d in ("float16", "bfloat16", "bool") for op in ("sort", "argsort")},
    **{("topk", d): _SORT_TIES for d in ("bfloat16", "int32", "int64")},
    **{("mode", d): _MODE_TIES for d in ("float16", "bfloat16", "int32", "int64", "bool")},
    **{(op, "int64"): _INT_CONV for op in (
        "nn.functional.conv1d", "nn.functional.conv2d", "nn.functional.conv3d", "nn.functional.conv_transpose1d",
        "nn.functional.conv_transpose2d", "nn.functional.conv_transpose3d")},
    **{("kthvalue", d): _TIES for d in ("int32", "int64")},
    **{(op, d): _CONV_BIAS for d in ("float16", "bfloat16") for op in (
        "nn.functional.conv1d", "nn.functional.conv2d", "nn.functional.conv3d", "nn.functional.conv_transpose1d",
        "nn.functional.conv_transpose2d", "nn.functional.conv_transpose3d")},
    **{(op, "bfloat16"): _LN_HALF for op in ("nn.functional.layer_norm", "native_layer_norm")},
    **{("matrix_exp", d): _EXPM_HALF for d in ("float16", "bfloat16")},
}




def xfail_reason(key: str, dtype: str) -> str:
    return XFAIL.get(key) or XFAIL_DTYPE.get((key, dtype), "")


# reasons that explain wrong values only: a sample of such an op that fx2mlx refuses to lower is not
# excused by them (it stays "unsupported")
_VALUES_ONLY = {_RANDOM, _RANDOM + " (the samples without explicit _random_samples)", _SIGNS, _RANDOM + "; " + _SIGNS}

# op name -> (atol, rtol) for float32 where a different algorithm gives larger (but correct) error
TOLERANCE: dict[str, tuple[float, float]] = {}

# Ill-conditioned results, compared with a tolerance relative to the largest |value| (PyTorch's own
# float32 error is of that size too).
NORMWISE = {"matrix_exp", "linalg.matrix_power", "linalg.matrix_exp"}
# Ops whose values are undefined (uninitialised memory): only shape and dtype are compared.
SHAPE_ONLY = {"empty", "empty_like", "empty_permuted", "empty_strided", "new_empty", "new_empty_strided"}


def op_key(op) -> str:
    return op.name + ("." + op.variant_test_name if op.variant_test_name else "")


def _load_db():
    import warnings

    warnings.filterwarnings("ignore")
    from torch.testing._internal.common_methods_invocations import op_db

    return op_db


def _samples(op, dtype):
    import torch

    try:
        return list(op.sample_inputs("cpu", getattr(torch, dtype), requires_grad=False))
    except Exception:  # noqa: BLE001 - a sample generator that fails on CPU
        return []


def supported_dtypes(op) -> list[str]:
    import torch

    have = {str(d).replace("torch.", "") for d in op.supported_dtypes("cpu")}
    return [d for d in ("float32",) + OTHER_DTYPES if d in have and hasattr(torch, d)]


def run_op(op, dtype: str, max_samples: int | None = None) -> dict:
    """All samples of one OpInfo entry at one dtype -> a result record."""
    import torch

    from .opcheck import Call, check_calls

    key = op_key(op)
    torch.manual_seed(0)  # sample generators draw from the global generator: same samples every run
    samples = list(enumerate(_samples(op, dtype)))
    if max_samples and len(samples) > max_samples:  # an even spread (first, last, between): not just the simplest
        n = len(samples)
        pick = sorted({round(i * (n - 1) / (max_samples - 1)) for i in range(max_samples)}) if max_samples > 1 else [0]
        samples = [samples[i] for i in pick]
    tol = TOLERANCE.get(key) if dtype == "float32" else None
    how = "shape" if key in SHAPE_ONLY else "normwise" if key in NORMWISE else "values"
    calls = [Call(f"{key}[{i}]", op, (s.input,) + tuple(s.args), dict(s.kwargs), tol=tol, compare=how)
             for i, s in samples]
    t0 = time.time()
    torch.manual_seed(0)
    results = check_calls(calls)
    counts = collections.Counter()
    failures = []
    aten = collections.Counter()
    for (i, _), r in zip(samples, results):
        status = r.status
        why = xfail_reason(key, dtype)
        if why and (status == "fail" or (status == "unsupported" and why not in _VALUES_ONLY)):
            status = "xfail"
        counts[status] += 1
        if status == "pass":
            aten.update(o for o in r.ops if o.startswith("aten."))
        elif status in ("fail", "unsupported", "xfail"):
            failures.append({"sample": i, "status": status, "result": r.status, "reason": r.reason, "ops": list(r.ops)})
    return {"op": key, "dtype": dtype, "samples": len(samples), "counts": dict(counts),
            "failures": failures, "aten_passing": dict(aten),
            "xfail_reason": xfail_reason(key, dtype), "seconds": round(time.time() - t0, 2)}


# --------------------------------------------------------------------------------------------------
# Workers: one process per shard of ops, so that a crash (MLX abort) loses one op, not the sweep
# --------------------------------------------------------------------------------------------------
def _worker(keys: list[str], dtypes: list[str], max_samples, out_path: str) -> None:
    import torch

    torch.set_num_threads(1)
    db = {op_key(o): o for o in _load_db()}
    with open(out_path, "a") as f:
        for k in keys:
            op = db[k]
            ds = supported_dtypes(op) if dtypes == ["all"] else [d for d in dtypes if d in supported_dtypes(op) or d == "float32"]
            for d in ds:
                f.write(json.dumps({"start": k, "dtype": d}) + "\n")
                f.flush()
                try:
                    rec = run_op(op, d, max_samples)
                except Exception as e:  # noqa: BLE001
                    rec = {"op": k, "dtype": d, "samples": 0, "counts": {"error": 1},
                           "failures": [{"sample": -1, "status": "error", "reason": f"{type(e).__name__}: {e}"[:300]}],
                           "aten_passing": {}, "xfail_reason": xfail_reason(k, d), "seconds": 0}
                f.write(json.dumps(rec) + "\n")
                f.flush()


def sweep(keys: list[str], dtypes: list[str], jobs: int = 2, max_samples: int | None = None,
          progress=None, op_timeout: float = 900) -> list[dict]:
    """Run the ops in `keys` in `jobs` worker processes; returns one record per (op, dtype)."""
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="fx2mlx-opinfo-"))
    # sort by expected cost so shards are balanced: big sample generators first
    todo = list(keys)
    shards = [todo[i::jobs] for i in range(jobs)]
    records: dict[tuple, dict] = {}
    procs = []
    for j, shard in enumerate(shards):
        if not shard:
            continue
        procs.append(_spawn(shard, dtypes, max_samples, tmp / f"w{j}.jsonl", j))
    seen: dict = {}
    import itertools

    ids = itertools.count(1000)
    while procs:
        time.sleep(0.5)
        still = []
        for p, shard, path, j in procs:
            recs, started = _read(path)
            for r in recs:
                records[(r["op"], r["dtype"])] = r
            if progress:
                progress(len({k for k, _ in records}), len(keys))
            rc = p.poll()
            if rc is None and started is not None and started != seen.get(j, (None, 0))[0]:
                seen[j] = (started, time.time())
            if rc is None and started is not None and time.time() - seen[j][1] > op_timeout:
                p.kill()  # a hung op (e.g. an MLX kernel that never finishes): record it, go on
                p.wait()
                rc = "timeout"
            if rc is None:
                still.append((p, shard, path, j))
                continue
            finished = {r["op"] for r in recs}
            if rc != 0 and started is not None:  # crashed inside `started`: record it, go on
                k, d = started
                why = f"no result within {op_timeout} s (killed)" if rc == "timeout" else f"worker process died (exit code {rc})"
                if (k, d) not in records:
                    records[(k, d)] = {"op": k, "dtype": d, "samples": 0, "counts": {"crash": 1},
                                       "failures": [{"sample": -1, "status": "crash", "reason": why}],
                                       "aten_passing": {}, "xfail_reason": xfail_reason(k, d), "seconds": 0}
                finished.add(k)
                rest = [x for x in shard if x not in finished and x != k]
                if rest:
                    j2 = next(ids)
                    still.append(_spawn(rest, dtypes, max_samples, tmp / f"w{j2}-{len(rest)}.jsonl", j2))
        procs = still
    return [records[k] for k in sorted(records)]


def _spawn(shard, dtypes, max_samples, path: Path, j):
    import subprocess

    cmd = [sys.executable, "-m", "fx2mlx.conformance.opinfo", "--worker", "--ops", ",".join(shard),
           "--dtypes", ",".join(dtypes), "--out", str(path)]
    if max_samples:
        cmd += ["--max-samples", str(max_samples)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    err = open(str(path) + ".stderr", "w")
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
    return (p, shard, path, j)


def _read(path: Path):
    if not path.exists():
        return [], None
    recs, started = [], None
    for line in path.read_text().splitlines():
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if "start" in d:
            started = (d["start"], d["dtype"])
        else:
            recs.append(d)
            started = None
    return recs, started


# --------------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------------
STATUSES = ("pass", "fail", "unsupported", "xfail", "export", "skip", "crash", "error")


def summarize(records: list[dict], dtype: str = "float32") -> dict:
    tot = collections.Counter()
    for r in records:
        if r["dtype"] == dtype:
            tot.update(r["counts"])
    captured = sum(tot[s] for s in ("pass", "fail", "unsupported", "xfail", "crash", "error"))
    return {"dtype": dtype, "ops": sum(1 for r in records if r["dtype"] == dtype),
            "samples": sum(tot.values()), "captured": captured, **{s: tot[s] for s in STATUSES},
            "pass_rate": round(tot["pass"] / captured, 4) if captured else None}


def write_json(records: list[dict], path: Path, meta: dict) -> None:
    import mlx.core as mx
    import torch

    dts = sorted({r["dtype"] for r in records})
    doc = {"meta": {"torch": torch.__version__, "mlx": mx.__version__, **meta},
           "summary": {d: summarize(records, d) for d in dts},
           "xfail": XFAIL, "xfail_dtype": {f"{k}@{d}": v for (k, d), v in XFAIL_DTYPE.items()},
           "ops": records}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")


def print_summary(records: list[dict], show: bool = False, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=200)
    for d in sorted({r["dtype"] for r in records}):
        s = summarize(records, d)
        console.print(f"[bold]{d}[/bold]: {s['ops']} ops, {s['samples']} samples, {s['captured']} captured by "
                      f"torch.export — pass {s['pass']}, fail {s['fail']}, unsupported {s['unsupported']}, "
                      f"xfail {s['xfail']}, crash {s['crash'] + s['error']}; export failed {s['export']}, "
                      f"skipped {s['skip']}; pass rate {100 * (s['pass_rate'] or 0):.1f}% of captured")
    bad = [r for r in records if any(r["counts"].get(k) for k in ("fail", "unsupported", "crash", "error", "xfail"))]
    if not bad:
        return
    t = Table(title="ops with failing samples", show_lines=False)
    for c in ("op", "dtype", "pass", "fail", "unsup", "xfail", "export", "first reason"):
        t.add_column(c)
    for r in sorted(bad, key=lambda r: -sum(r["counts"].get(k, 0) for k in ("fail", "unsupported")))[: None if show else 60]:
        c = r["counts"]
        reason = r["xfail_reason"] or (r["failures"][0]["reason"] if r["failures"] else "")
        t.add_row(r["op"], r["dtype"], str(c.get("pass", 0)), str(c.get("fail", 0) + c.get("crash", 0) + c.get("error", 0)),
                  str(c.get("unsupported", 0)), str(c.get("xfail", 0)), str(c.get("export", 0)), reason[:110])
    console.print(t)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fx2mlx.conformance.opinfo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--ops", help="comma-separated OpInfo names (name or name.variant); default all")
    ap.add_argument("--dtypes", default="float32", help="comma-separated, or 'all' (float32 + %s)" % ", ".join(OTHER_DTYPES))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--max-samples", type=int, default=None)
    ap.add_argument("--op-timeout", type=float, default=900, help="seconds one op (all its samples) may take "
                                                                  "before its worker is killed and the op recorded as a crash")
    ap.add_argument("--out", default=None, help=f"JSON results (default {DEFAULT_OUT.relative_to(Path.cwd()) if str(DEFAULT_OUT).startswith(str(Path.cwd())) else DEFAULT_OUT})")
    ap.add_argument("--update", metavar="JSON", help="re-run the given ops and replace their records in an existing "
                                                     "results file (the summary is recomputed)")
    ap.add_argument("--show", action="store_true", help="list every failing op")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    dtypes = ["all"] if a.dtypes == "all" else a.dtypes.split(",")
    if a.worker:
        _worker(a.ops.split(","), dtypes, a.max_samples, a.out)
        return 0
    db = _load_db()
    keys = [op_key(o) for o in db]
    if a.ops:
        want = a.ops.split(",")
        keys = [k for k in keys if k in want]
        missing = set(want) - set(keys)
        if missing:
            print(f"unknown OpInfo names: {sorted(missing)}", file=sys.stderr)
            return 2
    t0 = time.time()
    from rich.console import Console

    console = Console(stderr=True)
    last = [0.0]

    def progress(n, total):
        if time.time() - last[0] > 15:
            last[0] = time.time()
            console.print(f"  {n}/{total} ops, {time.time() - t0:.0f} s", highlight=False)

    records = sweep(keys, dtypes, a.jobs, a.max_samples, progress, op_timeout=a.op_timeout)
    out = Path(a.out) if a.out else (DEFAULT_OUT if not a.ops and dtypes == ["float32"] else None)
    meta = {"dtypes": dtypes, "ops": len(keys), "seconds": round(time.time() - t0, 1), "jobs": a.jobs,
            "max_samples": a.max_samples, "command": "python -m fx2mlx.conformance.opinfo " + " ".join(argv or sys.argv[1:])}
    if a.update:
        out = Path(a.update)
        doc = json.loads(out.read_text())
        merged = {(r["op"], r["dtype"]): r for r in doc["ops"]}
        merged.update({(r["op"], r["dtype"]): r for r in records})
        meta = {**{k: v for k, v in doc["meta"].items() if k not in ("torch", "mlx")},
                "updates": doc["meta"].get("updates", []) + [meta["command"]]}
        records = [merged[k] for k in sorted(merged)]
    if out:
        write_json(records, out, meta)
    print_summary(records, a.show)
    console.print(f"{len(keys)} ops in {time.time() - t0:.0f} s" + (f"; results in {out}" if out else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
