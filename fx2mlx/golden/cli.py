"""`fx2mlx check OUT` (and `fx2mlx compile ... --check`): the golden harness from the command line.

check_output() is the one entry point: it gets PyTorch's values (by running the captured model, by
rebuilding it from the source recorded in OUT/manifest.json or --source, or from OUT/golden with
--offline), runs the MLX side, writes OUT/golden/{report.json, errors.png, report.html} (and the golden
tensors when online), prints the table and raises GoldenMismatch (exit code 10) when a layer or value
is out of tolerance (max|MLX - PyTorch| > atol + rtol·max|PyTorch|, or cosine below the bound: see
fx2mlx.golden.metrics), naming the first divergence.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Optional

from ..compiler.errors import SourceError
from .errors import GoldenError, GoldenMismatch
from .metrics import default_tolerances

MODE_CHOICES = {"both": ("accumulated", "isolated"), "accumulated": ("accumulated",), "isolated": ("isolated",)}


def check_output(out, captured=None, *, graph: str | None = None, source: str | None = None,
                 inputs: str | Path | None = None, offline: bool = False, mode: str = "both",
                 atol: float | None = None, rtol: float | None = None, cosine: float | None = None,
                 values: bool = True, plot: bool = True, show_all: bool = False, console=None,
                 quiet: bool = False) -> dict:
    """Check the compiled output OUT against PyTorch, every graph of its program on its own (or only
    `graph`); return the report (one graph) or {graph: report}, or raise GoldenMismatch.
    `captured`: the Captured of a one-graph output, or {graph: Captured}, as the compile made them."""
    from ..manifest import read_manifest

    out = Path(out)
    try:
        manifest = read_manifest(out)
    except SourceError as e:
        raise GoldenError(str(e)) from None
    if mode not in MODE_CHOICES:
        raise GoldenError(f"--mode must be one of {', '.join(MODE_CHOICES)}, got {mode!r}")
    names = list(manifest["graphs"])
    if graph is not None and graph not in names:
        raise GoldenError(f"{out} has no graph {graph!r} (graphs: {', '.join(names)})")
    todo = [graph] if graph else names
    if inputs is not None and len(todo) > 1:
        raise GoldenError("--inputs feeds one graph: name it with --graph")
    reports, failures = {}, []
    for name in todo:
        cap = captured.get(name) if isinstance(captured, dict) else captured
        try:
            reports[name] = _check_graph(out, manifest, name, cap, source=source, inputs=inputs, offline=offline,
                                         mode=mode, atol=atol, rtol=rtol, cosine=cosine, values=values, plot=plot,
                                         show_all=show_all, console=console, quiet=quiet,
                                         title=name if len(names) > 1 else None)
        except GoldenMismatch as e:
            if len(todo) == 1:
                raise
            failures.append((name, e))
    if failures:
        msg = "\n".join(f"graph {n}: {e}" for n, e in failures)
        raise GoldenMismatch(msg, failures[0][1].report)
    if manifest.get("source_file") and not offline:
        reports[todo[0]]["original"] = _check_original(out, manifest, inputs, atol, console, quiet)
    return reports[todo[0]] if len(todo) == 1 else reports


def _check_original(out: Path, manifest: dict, inputs, atol, console, quiet) -> dict:
    """ONNX / TorchScript sources: the compiled outputs against the file itself (onnxruntime, the scripted
    module) on the graph's inputs; float32 default bound 1e-4 (a different kernel order than the layer
    checks' reference, accumulated over the whole graph)."""
    import numpy as np

    from ..api import load
    from ..sources import original_outputs

    info = manifest["source_file"]
    from safetensors.numpy import load_file

    gdir = out / manifest["graphs"]["model"]["dir"]
    arrays = load_file(str(inputs or gdir / "inputs.safetensors"))
    xs = [arrays[n] if n in arrays else arrays[f"input_{k}"] for k, n in enumerate(info["inputs"])]
    ref = original_outputs(info, xs)
    got = load(out)(*xs)
    got = [np.asarray(g) for g in (got if isinstance(got, (tuple, list)) else [got])]
    if len(got) != len(ref):
        raise GoldenMismatch(f"the compiled model has {len(got)} outputs, the {info['kind']} file {len(ref)}", {})
    err = max(float(np.abs(g.astype(np.float64) - r).max()) if g.size else 0.0 for g, r in zip(got, ref))
    bound = atol if atol is not None else 1e-4
    what = "onnxruntime" if info["kind"] == "onnx" else "the TorchScript module"
    result = {"against": what, "max_abs_error": err, "bound": bound, "passed": err <= bound}
    if not quiet:
        from rich.console import Console

        (console or Console()).print(f"end to end against {what}: max |error| {err:.3g} (bound {bound:g})")
    if err > bound:
        raise GoldenMismatch(f"the compiled outputs differ from {what} by {err:.3g} > {bound:g}", result)
    return result


def _check_graph(out: Path, manifest: dict, name: str, captured, *, source, inputs, offline, mode, atol, rtol,
                 cosine, values, plot, show_all, console, quiet, title) -> dict:
    from .harness import failure_message, run_check
    from .mlx_side import open_output
    from .store import ir_digest, load_golden, save_golden

    entry = manifest["graphs"][name]
    gdir = out / entry["dir"]
    info = {**entry, "dtype": manifest.get("dtype"), "source": manifest.get("source"), "recipe": manifest["recipe"]}
    tol = default_tolerances(manifest.get("dtype"), atol=atol, rtol=rtol, cosine=cosine)
    golden_dir = gdir / "golden"
    t0 = time.perf_counter()
    if offline:
        if captured is not None or source or inputs:
            raise GoldenError("--offline checks against the stored golden tensors: it takes no --source or --inputs")
        expected, dtypes, gmeta = load_golden(golden_dir)
        if gmeta.get("ir_sha256") != ir_digest(gdir):
            raise GoldenError(f"the golden tensors in {golden_dir} were recorded for another compile of {out} "
                              "(ir.json changed since): run `fx2mlx check OUT` online once more")
        compiled = open_output(gdir, lowering=gmeta.get("lowering"), info=info)
        values = values and gmeta.get("all_values", True)
        meta = {"offline": True, "inputs": gmeta.get("inputs", "stored"), "torch_seconds": 0.0}
    else:
        expected, dtypes, input_desc = _torch_side(gdir, manifest, name, captured, source, inputs)
        meta = {"offline": False, "inputs": input_desc, "torch_seconds": round(time.perf_counter() - t0, 3)}
        compiled = open_output(gdir, info=info)
        stored = expected if values else {k: v for k, v in expected.items() if k in _layer_values(compiled)}
        save_golden(golden_dir, stored, dtypes, {"source": manifest.get("source"), "inputs": input_desc,
                                                 "ir_sha256": ir_digest(gdir), "all_values": values,
                                                 "lowering": compiled.lowering_record()})
    if title:
        meta["graph"] = title
    report = run_check(gdir, expected, dtypes, tol, modes=MODE_CHOICES[mode], values=values, meta=meta,
                       compiled=compiled)
    message = None if report["passed"] else failure_message(report)
    _write(report, golden_dir, plot, message)
    if not quiet:
        import sys

        from rich.console import Console

        from .render import print_table

        con = console or Console(width=None if sys.stdout.isatty() else 200)
        if title:
            con.print(f"[bold]graph {title}[/bold] ({entry['dir']}/)")
        print_table(report, con, show_all)
    if message:
        raise GoldenMismatch(message + f"\nreport: {golden_dir / 'report.html'}", report)
    return report


def _layer_values(compiled) -> set[str]:
    """What the layer checks read: user inputs, every call's inputs and outputs, the model's outputs."""
    from ..compiler import ir

    names = {i.name for i in compiled.program.user_inputs}
    for call in compiled.calls:
        names.update(call.inputs)
        names.update(call.outputs)
    names.update(r.name for o in compiled.program.outputs for r in ir.iter_refs(o))
    return names


def _torch_side(gdir: Path, manifest: dict, graph: str, captured, source, inputs):
    """PyTorch's values of one graph, rebuilt by the recipe that compiled it (same capture, same passes,
    so node names match OUT's ir.json)."""
    from ..manifest import read_ir
    from ..recipes import get_recipe
    from .torch_side import golden_values, source_spec

    try:
        program = read_ir(gdir)
    except SourceError as e:
        raise GoldenError(str(e)) from None
    if inputs is None and captured is None and (gdir / "inputs.safetensors").is_file():
        inputs = gdir / "inputs.safetensors"  # the example inputs the graph was compiled with
    recipe = get_recipe(manifest["recipe"])
    spec = None
    if captured is None or inputs is not None or source is not None:
        spec = source_spec(manifest.get("source", ""), source)
    captured, fresh_program, user_inputs = recipe.reference(manifest, graph, spec, str(inputs) if inputs else None,
                                                            captured)
    fresh = {n.name: n.target for n in fresh_program.nodes}
    changed = [n.name for n in program.nodes if n.name in fresh and fresh[n.name] != n.target]
    if changed:
        raise GoldenError(f"the PyTorch model no longer matches {gdir}/ir.json ({len(changed)} value(s) now come "
                          f"from different ops, e.g. {changed[0]}); recompile it")
    expected, dtypes = golden_values(captured, program, user_inputs)
    llm = manifest["recipe"] == "causal-lm"
    desc = str(inputs) if inputs and (user_inputs is not None or not llm) else "example inputs"
    return expected, dtypes, desc


def _strict_json(v):
    """Standard JSON has no Infinity/NaN: non-finite numbers (e.g. the error of a value that is NaN on one
    side) are written as the strings "inf", "-inf" and "nan"."""
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, dict):
        return {k: _strict_json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_strict_json(x) for x in v]
    return v


def _write(report: dict, folder: Path, plot: bool, message: str | None) -> None:
    from .render import html
    from .render import plot as plot_png

    folder.mkdir(parents=True, exist_ok=True)
    png = folder / "errors.png"
    report["files"] = {"report": "report.json", "html": "report.html"}
    if plot:
        try:
            report["plot"] = {"file": "errors.png", "points_per_mode": plot_png(report, png)}
            report["files"]["plot"] = "errors.png"
        except ImportError:
            report["plot"] = None
            png = None
    else:
        png = None
    (folder / "report.json").write_text(json.dumps(_strict_json(report), indent=1, allow_nan=False))
    html(report, folder / "report.html", png, message)


def register(app) -> None:
    import typer

    @app.command("check")
    def check_cmd(
        out: Path = typer.Argument(..., help="A compiled output directory (from `fx2mlx compile`)."),
        source: Optional[str] = typer.Option(None, "--source", help="The PyTorch model, when OUT's recorded source "
                                             "cannot be rebuilt (an in-process module): a factory or HF directory."),
        inputs: Optional[Path] = typer.Option(None, "--inputs", help="safetensors file of inputs (input_0.. or names); "
                                              "default: the example inputs."),
        offline: bool = typer.Option(False, "--offline", help="Check against OUT/golden (no torch needed)."),
        graph: Optional[str] = typer.Option(None, "--graph", help="Check this graph of a program only "
                                            "(default: every graph, each on its own)."),
        mode: str = typer.Option("both", "--mode", help="accumulated, isolated or both."),
        atol: Optional[float] = typer.Option(None, "--atol", help="Absolute floor for values near zero: a layer or "
                                             "value passes when max|MLX - PyTorch| <= atol + rtol * max|PyTorch| "
                                             "(default by dtype: 1e-6 float32, 1e-2 float16, 5e-2 bfloat16)."),
        rtol: Optional[float] = typer.Option(None, "--rtol", help="Bound on the error relative to the value's own "
                                             "magnitude, max|MLX - PyTorch| / max|PyTorch| (norm-wise, not per "
                                             "element; default by dtype: 1e-4 float32, 1e-2 float16, 5e-2 bfloat16)."),
        cosine: Optional[float] = typer.Option(None, "--cosine", help="Minimum cosine similarity per layer and value "
                                               "(default by dtype: 0.9999 float32, 0.999 float16, 0.99 bfloat16)."),
        no_values: bool = typer.Option(False, "--no-values", help="Check module outputs only, not every graph value."),
        show_all: bool = typer.Option(False, "--all", help="Print every layer in the table."),
    ):
        """Run PyTorch and the emitted MLX on the same inputs and compare every layer; exit 10 naming the
        first diverging layer when one is out of tolerance. Writes OUT/golden/report.{json,html}, errors.png."""
        if inputs is not None and not inputs.is_file():
            raise SourceError(f"inputs file not found: {inputs}")
        check_output(out, graph=graph, source=source, inputs=inputs, offline=offline, mode=mode, atol=atol, rtol=rtol,
                     cosine=cosine, values=not no_values, show_all=show_all)
