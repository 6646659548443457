"""The one output writer: every recipe's graphs -> lowered -> model.py + weights -> OUT, checked.

Output is staged in a temporary folder next to OUT; each graph's `model.py` is loaded with its weights
and run once on its example inputs there (a failure is a compile error), and only then is the folder
renamed into place, so a failed compile never leaves a half-written or unloadable OUT.

    OUT/manifest.json        recipe, graphs (folder, inputs, dims, static dims, ops), driver, versions
    OUT/program.py           the host driver (vendored, imports only mlx): load(OUT) -> the program
    OUT/<graph dir>/model.py, weights.safetensors, ir.json, inputs.safetensors   (dir "." for one graph)
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

from ..compiler import ir
from ..compiler.emit_py import PyEmitter
from ..compiler.errors import ArgumentError, OutputError, SelfCheckError
from ..compiler.lowering import Lowered, lower
from ..compiler.weights import from_numpy, mlx_weights, save, to_numpy
from ..manifest import MANIFEST_VERSION
from .base import Graph, Options, Recipe

DTYPES = ("float32", "float16", "bfloat16")
DRIVERS = Path(__file__).resolve().parent.parent / "drivers"
RUNTIME = Path(__file__).resolve().parent.parent / "runtime"


def check_out_dir(out_dir: Path, force: bool) -> None:
    out_dir = Path(out_dir)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise OutputError(f"output path {out_dir} exists and is not a directory")
        if any(out_dir.iterdir()) and not force:
            raise OutputError(f"output directory {out_dir} is not empty; pass --force to replace it")


def check_dtype(dtype: str | None) -> str | None:
    """-> the compute dtype for emission (None for float32)."""
    if dtype is not None and dtype not in DTYPES:
        raise ArgumentError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return None if dtype in (None, "float32") else dtype


OWNER = "fx2mlx-writer.pid"  # in a staging folder: the pid of the compile that writes it


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(out_dir: Path) -> list[Path]:
    """Staging folders of OUT (`.OUT.XXXX.partial`, `.OUT.old-XXXX`) left by a compile that was killed:
    removed when the process that made them is gone (a running compile's folders are left alone)."""
    removed = []
    for p in sorted(out_dir.parent.glob(f".{glob.escape(out_dir.name)}.*")):
        if not p.is_dir() or not (p.name.endswith(".partial") or ".old-" in p.name):
            continue
        try:
            pid = int((p / OWNER).read_text())
        except (OSError, ValueError):
            pid = None  # no owner file: killed before writing it, or an .old folder being removed
        if pid is not None and _alive(pid) and pid != os.getpid():
            continue
        if pid is None and time.time() - p.stat().st_mtime < 60:
            continue  # possibly a compile that has just created it
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


@contextlib.contextmanager
def staged_output(out_dir: Path, force: bool):
    out_dir = Path(out_dir)
    check_out_dir(out_dir, force)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(out_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    (tmp / OWNER).write_text(str(os.getpid()))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    (tmp / OWNER).unlink()
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{tmp.name[-8:]}")
        out_dir.rename(old)
    tmp.rename(out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_output(recipe: Recipe, source, graphs: list[Graph], out_dir: Path, options: Options, *,
                 force: bool = False, step: Callable[[str], None] = lambda s: None) -> dict:
    """Lower, emit and write every graph of a program into OUT; returns the manifest."""
    dt = check_dtype(options.dtype)
    names = [g.name for g in graphs]
    if len(set(names)) != len(names) or not graphs:
        raise OutputError(f"a program needs graphs with distinct names, got {names}")
    with staged_output(Path(out_dir), force) as tmp:
        entries = {}
        for g in graphs:
            step(f"lowering {g.name}" if len(graphs) > 1 else "lowering")
            lowered = lower(g.program, dtype=dt)
            step(f"emitting {g.dir}/model.py" if len(graphs) > 1 else "emitting model.py")
            code = PyEmitter(lowered, dtype=dt, source=g.captured.description).render()
            folder = tmp / g.dir
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "model.py").write_text(code)
            (folder / "ir.json").write_text(lowered.program.to_json())
            step("converting weights")
            if g.write_weights is not None:
                g.write_weights(lowered, folder / "weights.safetensors", dt)
            else:
                save(folder / "weights.safetensors", mlx_weights(lowered, g.captured.weights, dt))
            if g.save_inputs:
                save_inputs(folder / "inputs.safetensors", g.captured)
            entries[g.name] = graph_entry(g, lowered)
        manifest = {
            "fx2mlx": _version(), "manifest_version": MANIFEST_VERSION, "recipe": recipe.name,
            "driver": recipe.driver, "source": graphs[0].captured.description if len(graphs) == 1 else str(source),
            "dtype": options.dtype or "float32", "shapes": options.shapes, **_versions(),
            "entry": graphs[0].name, "graphs": entries,
        }
        manifest.update(recipe.extras(source, tmp, graphs, options))
        write_driver(tmp, recipe.driver)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        if options.self_check:
            for g in graphs:
                step(f"running {g.name} once" if len(graphs) > 1 else "running model.py once")
                entries[g.name]["self_check"] = self_check(tmp, g, manifest)
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def graph_entry(g: Graph, lowered: Lowered) -> dict:
    origins: dict[str, str] = {}
    for ln in lowered.nodes.values():
        origins.setdefault(ln.node.target, ln.origin)
    p = lowered.program
    labels = p.dim_labels()
    return {
        "dir": g.dir,
        "inputs": [{"name": i.name, "shape": [labels.get(d, d) if isinstance(d, str) else d for d in i.type.shape],
                    "dtype": i.type.dtype, "example_shape": list(p.example_shape(i.name) or ())}
                   for i in p.user_inputs if isinstance(i.type, ir.TensorType)],
        "state": [i.name for i in p.user_inputs if i.type is None],  # non-tensor inputs (e.g. a KV cache)
        "dims": [{"label": d.label, "symbol": d.symbol, "axes": [list(a) for a in d.axes], "min": d.min,
                  "max": d.max} for d in p.dims],
        "static_dims": [{"input": s.input, "axis": s.axis, "size": s.size, "reason": s.reason} for s in p.static_dims],
        "runtime": lowered.runtime_modules,
        "ops": dict(sorted(origins.items())),
        **g.info,
    }


def save_inputs(path: Path, captured) -> None:
    import mlx.core as mx

    arrays = {f"input_{i}": from_numpy(to_numpy(t)) for i, t in enumerate(captured.example_inputs)}
    if arrays:
        mx.save_safetensors(str(path), arrays)


def write_driver(tmp: Path, driver: str | None) -> None:
    """OUT/program.py: the driver, after the runtime modules its header names (`# runtime: a b`) and the
    driver it builds on (`# extends: seq2seq`: that driver's text first, so its classes are defined)."""
    if not driver:
        return
    parts = [f"# @generated by fx2mlx (driver {driver}) — do not edit; re-run `fx2mlx compile` instead."]
    parts += _driver_parts(driver)
    (tmp / "program.py").write_text("\n\n".join(parts))


def _driver_parts(driver: str) -> list[str]:
    text = (DRIVERS / f"{driver}.py").read_text()
    parts = []
    while text.startswith(("# runtime:", "# extends:")):
        first, _, text = text.partition("\n")
        key, _, names = first.partition(":")
        for name in names.split():
            if key == "# runtime":
                parts.append(f"# ---- vendored from fx2mlx.runtime.{name} ----\n" + (RUNTIME / f"{name}.py").read_text())
            else:
                parts += _driver_parts(name)
    parts.append(f"# ---- fx2mlx.drivers.{driver} ----\n" + text)
    return parts


def self_check(folder: Path, g: Graph, manifest: dict) -> str:
    """Load the staged graph with its weights and run it once on the example inputs."""
    if g.skip_self_check:
        return "skipped: " + g.skip_self_check
    import mlx.core as mx

    from ..api import load_module, unload_module

    gdir = folder / g.dir
    path = gdir / "model.py"
    mod = None
    try:
        mod = load_module(path)
        model = mod.load(gdir)
        ins = mx.load(str(gdir / "inputs.safetensors")) if (gdir / "inputs.safetensors").is_file() else {}
        args = [ins[f"input_{i}"] for i in range(len(ins))]
        out = model(*args)
        flat = [v for v in _leaves(out) if isinstance(v, mx.array)]
        mx.eval(flat)
        _check_output_shapes(g.program, out)
    except SelfCheckError:
        raise
    except Exception as e:  # noqa: BLE001 - anything the emitted code raises is a compile error
        import traceback

        frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == str(path)]
        where = f" (model.py line {frames[-1].lineno}: {frames[-1].line})" if frames else ""
        raise SelfCheckError(f"the emitted {g.dir}/model.py of graph {g.name!r} does not run on its example inputs"
                             f"{where}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}\n"
                             "  This is a bug in fx2mlx; please report it with the source model.") from e
    finally:
        if mod is not None:
            unload_module(mod)
    return "passed"


def _leaves(v):
    if isinstance(v, dict):
        for x in v.values():
            yield from _leaves(x)
    elif isinstance(v, (list, tuple)):
        for x in v:
            yield from _leaves(x)
    else:
        yield v


def _check_output_shapes(program: ir.Program, out) -> None:
    """The outputs have PyTorch's example shapes (symbolic dims resolved from the example inputs)."""
    import mlx.core as mx

    sizes = {}
    for i in program.user_inputs:
        if isinstance(i.type, ir.TensorType):
            for d, n in zip(i.type.shape, program.example_shape(i.name) or ()):
                if isinstance(d, str):
                    sizes[d] = n
    types = {n.name: n.type for n in program.nodes}
    types.update({i.name: i.type for i in program.inputs})
    got = [v for v in _leaves(out) if isinstance(v, mx.array)]
    want = [types.get(o.name) for o in program.outputs if isinstance(o, ir.Ref)]
    want = [t for t in want if isinstance(t, ir.TensorType)]
    if len(got) != len(want):
        return  # outputs that are not plain tensors (e.g. a cache object): nothing to compare
    for k, (a, t) in enumerate(zip(got, want)):
        shape = tuple(sizes.get(d, None) if isinstance(d, str) else d for d in t.shape)
        if len(shape) != a.ndim or any(s is not None and s != x for s, x in zip(shape, a.shape)):
            raise SelfCheckError(f"output {k} of the emitted model has shape {tuple(a.shape)}, PyTorch's is {shape}")


def _version() -> str:
    from .. import __version__

    return __version__


def _versions() -> dict:
    import mlx.core as mx
    import torch

    return {"torch": torch.__version__, "mlx": mx.__version__, "python": platform.python_version()}
