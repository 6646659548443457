"""The compiler pipeline: captured model -> passes -> lowering -> emission -> output folder.

Output is staged in a temporary folder next to OUT and renamed into place only when complete, so a
failed compile never leaves a half-written OUT.
"""
from __future__ import annotations

import contextlib
import json
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from . import ir
from .capture import Captured
from .emit_py import PyEmitter
from .errors import OutputError
from .lowering import Lowered, lower
from .passes import run_default_passes
from .weights import from_numpy, mlx_weights, save, to_numpy

DTYPES = ("float32", "float16", "bfloat16")


def check_out_dir(out_dir: Path, force: bool) -> None:
    if out_dir.exists():
        if not out_dir.is_dir():
            raise OutputError(f"output path {out_dir} exists and is not a directory")
        if any(out_dir.iterdir()) and not force:
            raise OutputError(f"output directory {out_dir} is not empty; pass --force to replace it")


@contextlib.contextmanager
def staged_output(out_dir: Path, force: bool):
    out_dir = Path(out_dir)
    check_out_dir(out_dir, force)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{tmp.name[-8:]}")
        out_dir.rename(old)
    tmp.rename(out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def prepare(captured: Captured, dtype: str | None = None) -> Lowered:
    if dtype is not None and dtype not in DTYPES:
        raise OutputError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    program = run_default_passes(captured.program)
    return lower(program, dtype=None if dtype == "float32" else dtype)


def compile_captured(captured: Captured, out_dir: Path, *, dtype: str | None = None, force: bool = False,
                     step: Callable[[str], None] = lambda s: None) -> Path:
    step("lowering")
    lowered = prepare(captured, dtype)
    dt = None if dtype == "float32" else dtype
    step("emitting model.py")
    code = PyEmitter(lowered, dtype=dt, source=captured.description).render()
    step("converting weights")
    arrays = mlx_weights(lowered, captured.weights, dt)
    step("writing output")
    with staged_output(Path(out_dir), force) as tmp:
        (tmp / "model.py").write_text(code)
        save(tmp / "weights.safetensors", arrays)
        (tmp / "ir.json").write_text(lowered.program.to_json())
        _save_inputs(tmp / "inputs.safetensors", captured)
        (tmp / "manifest.json").write_text(json.dumps(manifest(captured, lowered, dtype), indent=1))
    return Path(out_dir)


def _save_inputs(path: Path, captured: Captured) -> None:
    import mlx.core as mx
    import numpy as np

    arrays = {f"input_{i}": from_numpy(to_numpy(t)) for i, t in enumerate(captured.example_inputs)}
    if arrays:
        mx.save_safetensors(str(path), arrays)


def manifest(captured: Captured, lowered: Lowered, dtype: str | None) -> dict:
    import mlx.core as mx
    import torch

    from .. import __version__

    origins: dict[str, str] = {}
    for ln in lowered.nodes.values():
        origins.setdefault(ln.node.target, ln.origin)
    return {
        "fx2mlx": __version__,
        "source": captured.description,
        "dtype": dtype or "float32",
        "torch": torch.__version__,
        "mlx": mx.__version__,
        "python": platform.python_version(),
        "inputs": [{"name": i.name, "shape": list(i.type.shape), "dtype": i.type.dtype}
                   for i in lowered.program.user_inputs if i.type is not None],
        "runtime": lowered.runtime_modules,
        "ops": dict(sorted(origins.items())),
    }
