"""Differential checks of the C++ forms of op-table entries: PyTorch eager vs. the C++ program fx2mlx emits.

The C++ twin of `fx2mlx.conformance.opcheck`: the same `Call`s (e.g. every case of
`fx2mlx.conformance.opcases`) are wrapped in one module and captured once; each call's slice of the graph
is lowered and rendered to C++ on its own (a call whose ops lack a `cpp:` form is reported as `no-cpp`,
naming them), and all the others are emitted as ONE C++ program, built once with CMake and run once. Its
outputs are judged as `opcheck` judges the Python ones (same tolerances, `compare.op_tolerance`). A
statement that does not compile fails its call (found from the compiler's model.cpp line) and the others
are built again; a program that aborts is narrowed down by halving.

    python -m fx2mlx.conformance.cppcheck [-k NAME] [--keep DIR]   # all opcases cases (or those matching NAME)

Result statuses: pass, fail, no-cpp (an op has no C++ form), unsupported / export / skip as in opcheck.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from .opcheck import (Call, Result, _Batch, _export, _first_line, _judge, _ops_of, _subprogram, forget_references,
                      references)


def check_calls_cpp(calls: list[Call], *, workdir: str | Path | None = None, jobs: int | None = None,
                    log=None) -> list[Result]:
    """Check the C++ forms of many calls with one export and (when it builds) one C++ build."""
    say = log or (lambda *_: None)
    results, refs, live = references(calls)
    root = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="fx2mlx-cppcheck-"))
    try:
        groups = _capture(calls, live, refs, results)
        say(f"captured {len(live)} calls in {len(groups)} graph(s)")
        for g, (idxs, outs, program, weights, tensors, ops_of) in enumerate(groups):
            ready = _render_each(calls, idxs, outs, program, ops_of, results)
            _build_and_run(calls, ready, outs, program, weights, tensors, refs, results, ops_of, root / f"g{g}",
                           jobs, say)
    finally:
        forget_references(calls)
        if not workdir:
            shutil.rmtree(root, ignore_errors=True)
    return [results[i] for i in range(len(calls))]


def _capture(calls, idxs, refs, results) -> list:
    """Export the calls together (halving on failure): [(idxs, outputs per call, program, weights, tensors, ops)]."""
    from fx2mlx.compiler.capture import to_ir
    from fx2mlx.compiler.passes import run_default_passes

    if not idxs:
        return []
    batch = _Batch([calls[i] for i in idxs])
    n_out = [len(refs[i]) for i in idxs]
    try:
        ep = _export(batch, tuple(batch.inputs))
        raw, weights = to_ir(ep, batch, "fx2mlx.conformance.cppcheck")
        if len(raw.outputs) != sum(n_out) or len(raw.user_inputs) != len(batch.inputs):
            raise ValueError("the graph's inputs or outputs do not match the calls' tensors")
    except Exception as e:  # noqa: BLE001
        if len(idxs) > 1:
            half = len(idxs) // 2
            return _capture(calls, idxs[:half], refs, results) + _capture(calls, idxs[half:], refs, results)
        results[idxs[0]] = Result(calls[idxs[0]].name, "export", _first_line(e))
        return []
    program = run_default_passes(raw)
    outs, ops_of, pos = {}, {}, 0
    for i, n in zip(idxs, n_out):
        outs[i] = list(program.outputs[pos:pos + n])
        ops_of[i] = _ops_of(_subprogram(program, outs[i]))
        pos += n
    tensors = {inp.name: t for inp, t in zip(raw.user_inputs, batch.inputs)}
    return [(idxs, outs, program, weights, tensors, ops_of)]


def _render_each(calls, idxs, outs, program, ops_of, results) -> list[int]:
    """The calls whose graph lowers and renders to C++; the others get their result here."""
    from fx2mlx.compiler.errors import LoweringError
    from fx2mlx.compiler.lowering import lower
    from fx2mlx.cpp.emit import CppEmitter

    ready = []
    for i in idxs:
        try:
            lowered = lower(_subprogram(program, outs[i]))
        except Exception as e:  # noqa: BLE001
            results[i] = Result(calls[i].name, "unsupported", _first_line(e), ops_of[i])
            continue
        try:
            CppEmitter(lowered, source="fx2mlx.conformance.cppcheck").render()
        except LoweringError as e:
            missing = sorted({ln.node.target for ln in lowered.nodes.values() if _no_cpp(ln)})
            results[i] = Result(calls[i].name, "no-cpp", "no C++ form: " + (", ".join(missing) or _first_line(e)),
                                ops_of[i])
            continue
        ready.append(i)
    return ready


def _no_cpp(ln) -> bool:
    return ln.override.cpp is None if ln.override is not None else not ln.entry.cpp


def _build_and_run(calls, idxs, outs, program, weights, tensors, refs, results, ops_of, folder: Path, jobs, say):
    """Emit the calls as one program, build it and run it; statements that do not compile fail their calls
    (found from the compiler's `model.cpp:LINE` errors) and the rest is built again."""
    import mlx.core as mx

    from fx2mlx.compiler.lowering import lower
    from fx2mlx.compiler.weights import mlx_weights
    from fx2mlx.cpp.build import BuildError, build, run
    from fx2mlx.cpp.emit import CppEmitter, write_cpp
    from .opcheck import to_mx

    while idxs:
        flat = [o for i in idxs for o in outs[i]]
        sub = _subprogram(program, flat)
        lowered = lower(sub)
        folder.mkdir(parents=True, exist_ok=True)
        write_cpp(folder, lowered, source="fx2mlx.conformance.cppcheck")
        mx.save_safetensors(str(folder / "weights.safetensors"), mlx_weights(lowered, weights))
        mx.save_safetensors(str(folder / "inputs.safetensors"),
                            {f"input_{k}": to_mx(tensors[inp.name]) for k, inp in enumerate(sub.user_inputs)})
        t0 = time.time()
        try:
            exe = build(folder, jobs=jobs)
        except BuildError as e:
            cpp_names = {c: v for v, c in CppEmitter(lowered, source="fx2mlx.conformance.cppcheck").graph()["dumped"]}
            bad = _failing_statements(str(e), folder / "cpp" / "model.cpp", cpp_names)
            culprits = [i for i in idxs if bad.keys() & {n.name for n in _subprogram(program, outs[i]).nodes}]
            if not culprits:  # a runtime header (or something else) does not compile: every call fails
                for i in idxs:
                    results[i] = Result(calls[i].name, "fail", "C++ build failed: " + _first_error(str(e)), ops_of[i])
                return
            for i in culprits:
                why = next(bad[n.name] for n in _subprogram(program, outs[i]).nodes if n.name in bad)
                results[i] = Result(calls[i].name, "fail", "C++ does not compile: " + why, ops_of[i])
            say(f"{len(culprits)} call(s) do not compile; building the other {len(idxs) - len(culprits)}")
            idxs = [i for i in idxs if i not in culprits]
            continue
        say(f"built {len(idxs)} calls in {time.time() - t0:.0f} s ({folder})")
        try:
            run(exe, "--weights", str(folder / "weights.safetensors"), "--inputs", str(folder / "inputs.safetensors"),
                "--out", str(folder / "outputs.safetensors"), "--quiet", timeout=600)
        except Exception as e:  # noqa: BLE001 - the program aborted: narrow it down by halving
            if len(idxs) == 1:
                results[idxs[0]] = Result(calls[idxs[0]].name, "fail", "C++ program failed: " + _first_error(str(e)),
                                          ops_of[idxs[0]])
                return
            half = len(idxs) // 2
            say(f"the program failed with {len(idxs)} calls: halving")
            for part, tag in ((idxs[:half], "a"), (idxs[half:], "b")):
                _build_and_run(calls, part, outs, program, weights, tensors, refs, results, ops_of,
                               folder.with_name(folder.name + tag), jobs, say)
            return
        got = mx.load(str(folder / "outputs.safetensors"))
        pos = 0
        for i in idxs:
            keys = [f"output_{k}" for k in range(pos, pos + len(outs[i]))]
            pos += len(outs[i])
            if not all(k in got for k in keys):
                results[i] = Result(calls[i].name, "fail", "the C++ program does not return every output", ops_of[i])
                continue
            results[i] = _judge(calls[i], refs[i], [got[k] for k in keys], ops_of[i])
        return


def _failing_statements(log: str, model_cpp: Path, cpp_names: dict[str, str]) -> dict[str, str]:
    """IR value name -> first compiler error, for the `auto NAME = ...;` statements of model.cpp that fail."""
    import re

    lines = model_cpp.read_text().splitlines()
    bad: dict[str, str] = {}
    for m in re.finditer(r"model\.cpp:(\d+):\d+: error: (.*)", log):
        k = int(m.group(1)) - 1
        st = re.match(r"\s*auto (\w+) =", lines[k]) if 0 <= k < len(lines) else None
        if st:
            bad.setdefault(cpp_names.get(st.group(1), st.group(1)), m.group(2).strip()[:300])
    return bad


def _first_error(log: str) -> str:
    for line in log.splitlines():
        if "error" in line.lower() and "Error 1" not in line:
            return line.strip()[:400]
    return log.strip().splitlines()[-1][:400] if log.strip() else "unknown error"


def summary(results: list[Result]) -> str:
    import collections

    counts = collections.Counter(r.status for r in results)
    missing = collections.Counter(op for r in results if r.status == "no-cpp"
                                  for op in r.reason.removeprefix("no C++ form: ").split(", "))
    text = f"{len(results)} cases: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    if missing:
        text += "\nops without a C++ form (cases): " + ", ".join(f"{op} ({n})" for op, n in missing.most_common())
    return text


def main(argv=None) -> int:
    import argparse

    import torch

    from . import opcases

    ap = argparse.ArgumentParser(prog="python -m fx2mlx.conformance.cppcheck",
                                 description="Check the C++ forms of the op tables on the fx2mlx.conformance.opcases calls.")
    ap.add_argument("-k", default=None, help="only cases whose name contains this")
    ap.add_argument("--keep", default=None, help="build in this folder and keep it")
    ap.add_argument("--jobs", type=int, default=None, help="parallel compile jobs")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.time()
    calls = [c for c in opcases.all_cases() if not a.k or a.k in c.name]
    results = check_calls_cpp(calls, workdir=a.keep, jobs=a.jobs, log=lambda s: print(s, flush=True))
    for r in results:
        if r.status not in ("pass", "no-cpp"):
            print(f"{r.status:12} {r.name}: {r.reason}  {list(r.ops)}")
    print(summary(results))
    print(f"{time.time() - t0:.0f} s")
    return 1 if any(r.status == "fail" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
