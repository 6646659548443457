"""The golden harness: every layer of an emitted MLX model checked against PyTorch, first divergence named.

    fx2mlx check OUT                      # rebuild PyTorch from OUT's recorded source, compare, report
    fx2mlx check OUT --offline            # against OUT/golden/*.safetensors, without torch
    fx2mlx.golden.assert_matches(module, (x,), rtol=1e-4)   # in a test suite

Importing this package does not import torch (the offline check runs without it).
"""
from __future__ import annotations

from .errors import GoldenError, GoldenMismatch
from .metrics import DEFAULT_TOLERANCES, Tolerances, compare_arrays, default_tolerances

__all__ = ["assert_matches", "check_output", "compare", "torch_values", "Tolerances", "DEFAULT_TOLERANCES",
           "default_tolerances", "GoldenMismatch", "GoldenError", "compare_arrays"]


def check_output(out, captured=None, **kwargs) -> dict:
    """See fx2mlx.golden.cli.check_output."""
    from .cli import check_output as _check

    return _check(out, captured, **kwargs)


def torch_values(captured) -> dict:
    """IR value name -> PyTorch's value (numpy) for the user inputs and every tensor node of a
    `fx2mlx.compiler.capture.Captured` (needs torch)."""
    from .torch_side import torch_values as _tv

    return _tv(captured)


def compare(expected: dict, actual: dict, program, tolerances: Tolerances | None = None) -> dict:
    """Compare two name -> numpy value maps (e.g. torch_values() and a C++ per-value dump keyed by IR value
    names) over the nodes of `program` (an ir.Program), in execution order. Returns
    {"passed", "tolerances", "values": [per-value records], "first_divergence": record or None,
    "missing": [names in `expected` without an actual value]}. Each record has name, op, path (module),
    source and the metrics of fx2mlx.golden.metrics.compare_arrays."""
    from .metrics import compare_arrays as _cmp

    tol = tolerances or default_tolerances("float32")
    recs, missing = [], []
    for i, n in enumerate(program.nodes):
        if n.name not in expected:
            continue
        if n.name not in actual:
            missing.append(n.name)
            continue
        rec = {"name": n.name, "op": n.target, "path": n.module_path, "order": i,
               "source": str(n.source) if n.source else None}
        rec.update(_cmp(expected[n.name], actual[n.name], tol))
        recs.append(rec)
    first = next((r for r in recs if not r["passed"]), None)
    return {"passed": first is None, "tolerances": tol.as_dict(), "values": recs, "first_divergence": first,
            "missing": missing}


def assert_matches(module, args, kwargs: dict | None = None, *, atol: float | None = None,
                   rtol: float | None = None, cosine: float | None = None, dtype: str | None = None,
                   mode: str = "both", out_dir=None, quiet: bool = True) -> dict:
    """Compile `module` with fx2mlx, run PyTorch and the emitted MLX on `args`/`kwargs`, and fail (with
    GoldenMismatch, an AssertionError) naming the first diverging layer if any layer is out of tolerance.
    Returns the report on success. A value passes when max|MLX - PyTorch| <= atol + rtol·max|PyTorch| (the
    error relative to the value's own magnitude; atol is the floor for values near zero) and its cosine
    similarity is >= cosine; defaults by dtype (float32: rtol 1e-4, atol 1e-6, cosine 0.9999)."""
    __tracebackhide__ = True  # pytest: show the caller's line
    import tempfile
    from pathlib import Path

    from ..compiler.capture import capture
    from ..recipes import compile_captured
    from .cli import check_output as _check

    if not isinstance(args, (tuple, list)):
        args = (args,)
    captured = capture(module, tuple(args), dict(kwargs or {}),
                       description=f"python:{type(module).__module__}.{type(module).__qualname__}")
    with tempfile.TemporaryDirectory(prefix="fx2mlx-golden-") as tmp:
        out = Path(out_dir) if out_dir is not None else Path(tmp) / "out"
        compile_captured(captured, out, dtype=dtype, force=True)
        return _check(out, captured, mode=mode, atol=atol, rtol=rtol, cosine=cosine, quiet=quiet, plot=out_dir is not None)
