"""The golden harness for the C++ program: every IR value the program computes, against PyTorch's.

The program's `--dump FILE` writes every intermediate value under its IR name; PyTorch's values come from
`fx2mlx.golden.torch_values` (rebuilding the model from the source recorded in OUT/manifest.json, or
`source`), and `fx2mlx.golden.compare` walks them in execution order and names the first divergence.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from ..compiler import ir


def cpp_values(out: Path, *, inputs: str | Path | None = None, build_first: bool = True) -> dict:
    """Run OUT's C++ program once with --dump: IR value name -> numpy array (outputs as output_<i>)."""
    import mlx.core as mx
    import numpy as np

    from .build import build, run

    out = Path(out)
    exe = out / "cpp" / "build" / "model"
    if build_first or not exe.exists():
        exe = build(out)
    with tempfile.TemporaryDirectory(prefix="fx2mlx-cpp-") as tmp:
        args = ["--dump", f"{tmp}/values.safetensors", "--out", f"{tmp}/outputs.safetensors", "--quiet"]
        if inputs is not None:
            args += ["--inputs", str(inputs)]
        run(exe, *args)
        values = mx.load(f"{tmp}/values.safetensors")
        return {k: np.array(v.astype(mx.float32) if v.dtype == mx.bfloat16 else v) for k, v in values.items()}


def check_cpp(out: Path, captured=None, *, source: str | None = None, inputs: str | Path | None = None,
              atol: float | None = None, rtol: float | None = None, cosine: float | None = None,
              build_first: bool = True, quiet: bool = False, console=None) -> dict:
    """Compare every value of OUT's C++ program with PyTorch's; return the report or raise GoldenMismatch."""
    from ..compiler.errors import SourceError
    from ..golden import GoldenMismatch, compare, default_tolerances, torch_values
    from ..golden.torch_side import source_spec
    from ..manifest import graph_folders, read_ir, read_manifest

    graphs = graph_folders(out)
    if len(graphs) > 1:
        raise SourceError(f"{out} is a program of {len(graphs)} graphs: check one graph folder at a time "
                          f"({', '.join(str(g) for _, g, _ in graphs)})")
    name, out, manifest = graphs[0]
    program = read_ir(out)
    if captured is None or source is not None or inputs is not None:
        from ..recipes import get_recipe

        feed = inputs if inputs is not None else (out / "inputs.safetensors" if (out / "inputs.safetensors").is_file()
                                                  else None)
        root = out if (out / "manifest.json").is_file() else out.parent
        captured, _, _ = get_recipe(manifest["recipe"]).reference(
            read_manifest(root), name, source_spec(manifest.get("source", ""), source), str(feed) if feed else None)
    expected = torch_values(captured)
    actual = cpp_values(out, inputs=inputs, build_first=build_first)
    tol = default_tolerances(manifest.get("dtype"), atol=atol, rtol=rtol, cosine=cosine)
    report = compare(expected, actual, program, tol)
    report["outputs"] = _outputs(expected, actual, program, tol)
    report["passed"] = report["passed"] and all(r["passed"] for r in report["outputs"])
    if not quiet:
        _print(report, console)
    if not report["passed"]:
        bad = report["first_divergence"] or next(r for r in report["outputs"] if not r["passed"])
        raise GoldenMismatch(f"the C++ program diverges from PyTorch first at {bad['name']} "
                             f"({bad.get('op', 'output')}, module {bad.get('path') or '<root>'}): "
                             f"max abs error {bad.get('max_abs')}", report)
    return report


def _outputs(expected: dict, actual: dict, program: ir.Program, tol) -> list[dict]:
    from ..golden import compare_arrays

    recs = []
    for k, o in enumerate(program.outputs):
        if isinstance(o, ir.Ref) and o.name in expected and f"output_{k}" in actual:
            rec = {"name": f"output_{k}", "value": o.name}
            rec.update(compare_arrays(expected[o.name], actual[f"output_{k}"], tol))
            recs.append(rec)
    return recs


def _print(report: dict, console=None) -> None:
    from rich.console import Console

    console = console or Console()
    vals = report["values"]
    worst = max((r.get("max_abs") or 0.0 for r in vals), default=0.0)
    console.print(f"C++ vs PyTorch: {len(vals)} values compared, {sum(not r['passed'] for r in vals)} out of "
                  f"tolerance, max abs error {worst:.3g}; outputs: "
                  + ", ".join(f"{r['name']} {r.get('max_abs', float('nan')):.3g}" for r in report["outputs"]))
    if report["first_divergence"]:
        r = report["first_divergence"]
        console.print(f"[red]first divergence[/red]: {r['name']} ({r['op']}) in {r['path'] or '<root>'} "
                      f"at {r['source']}: max abs {r.get('max_abs')}")
    if report["missing"]:
        console.print(f"{len(report['missing'])} PyTorch value(s) not in the C++ dump (fused or removed by passes)")
