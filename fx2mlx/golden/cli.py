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


def check_output(out, captured=None, *, source: str | None = None, inputs: str | Path | None = None,
                 offline: bool = False, mode: str = "both", atol: float | None = None, rtol: float | None = None,
                 cosine: float | None = None, values: bool = True, plot: bool = True, show_all: bool = False,
                 console=None, quiet: bool = False) -> dict:
    """Check the compiled output OUT against PyTorch; return the report (a dict) or raise GoldenMismatch."""
    from .harness import failure_message, run_check
    from .mlx_side import open_output
    from .store import ir_digest, load_golden, save_golden

    out = Path(out)
    if not (out / "manifest.json").is_file():
        raise GoldenError(f"{out} is not a compiled fx2mlx output (no manifest.json)")
    if mode not in MODE_CHOICES:
        raise GoldenError(f"--mode must be one of {', '.join(MODE_CHOICES)}, got {mode!r}")
    manifest = json.loads((out / "manifest.json").read_text())
    tol = default_tolerances(manifest.get("dtype"), atol=atol, rtol=rtol, cosine=cosine)
    golden_dir = out / "golden"
    t0 = time.perf_counter()
    if offline:
        if captured is not None or source or inputs:
            raise GoldenError("--offline checks against the stored golden tensors: it takes no --source or --inputs")
        expected, dtypes, gmeta = load_golden(golden_dir)
        if gmeta.get("ir_sha256") != ir_digest(out):
            raise GoldenError(f"the golden tensors in {golden_dir} were recorded for another compile of {out} "
                              "(ir.json changed since): run `fx2mlx check OUT` online once more")
        compiled = open_output(out, lowering=gmeta.get("lowering"))
        values = values and gmeta.get("all_values", True)
        meta = {"offline": True, "inputs": gmeta.get("inputs", "stored"), "torch_seconds": 0.0}
    else:
        expected, dtypes, input_desc = _torch_side(out, manifest, captured, source, inputs)
        meta = {"offline": False, "inputs": input_desc, "torch_seconds": round(time.perf_counter() - t0, 3)}
        compiled = open_output(out)
        stored = expected if values else {k: v for k, v in expected.items() if k in _layer_values(compiled)}
        save_golden(golden_dir, stored, dtypes, {"source": manifest.get("source"), "inputs": input_desc,
                                                 "ir_sha256": ir_digest(out), "all_values": values,
                                                 "lowering": compiled.lowering_record()})
    report = run_check(out, expected, dtypes, tol, modes=MODE_CHOICES[mode], values=values, meta=meta,
                       compiled=compiled)
    message = None if report["passed"] else failure_message(report)
    _write(report, golden_dir, plot, message)
    if not quiet:
        import sys

        from rich.console import Console

        from .render import print_table

        print_table(report, console or Console(width=None if sys.stdout.isatty() else 200), show_all)
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


def _torch_side(out: Path, manifest: dict, captured, source, inputs):
    from ..compiler import ir
    from ..compiler.passes import run_default_passes
    from .torch_side import golden_values, recapture, recapture_llm, source_spec

    program = ir.Program.from_json((out / "ir.json").read_text())
    llm = manifest.get("llm")
    if inputs is None and captured is None and (out / "inputs.safetensors").is_file():
        inputs = out / "inputs.safetensors"  # the example inputs the model was compiled with
    user_inputs = None
    if llm:
        # compiled by the decoder-LLM recipe: capture the way it does (same node names), then compare
        # against its pipeline (KV cache + fusion) rather than the default passes
        from ..llm.recipe import llm_program

        if captured is None or inputs is not None or source is not None:
            captured, user_inputs = recapture_llm(source_spec(manifest.get("source", ""), source),
                                                  str(inputs) if inputs else None)
        q = llm.get("quantization") or {}
        fresh_program = llm_program(captured, quantize=q.get("bits"), group_size=q.get("group_size", 64))
    else:
        if captured is None or inputs is not None or source is not None:
            captured = recapture(source_spec(manifest.get("source", ""), source), str(inputs) if inputs else None)
        fresh_program = run_default_passes(captured.program)
    fresh = {n.name: n.target for n in fresh_program.nodes}
    changed = [n.name for n in program.nodes if n.name in fresh and fresh[n.name] != n.target]
    if changed:
        raise GoldenError(f"the PyTorch model no longer matches {out}/ir.json ({len(changed)} value(s) now come "
                          f"from different ops, e.g. {changed[0]}); recompile it")
    expected, dtypes = golden_values(captured, program, user_inputs)
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
        check_output(out, source=source, inputs=inputs, offline=offline, mode=mode, atol=atol, rtol=rtol,
                     cosine=cosine, values=not no_values, show_all=show_all)
