"""Python API: `fx2mlx.convert(module, args, kwargs)` and `fx2mlx.load(dir)`."""
from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any


class CompiledModel:
    """A compiled output folder, loaded: call it with mx.arrays or numpy arrays (inputs in the order
    of the example inputs, or by name); it returns what the PyTorch forward returned, tensors as mx.array."""

    def __init__(self, out_dir: Path, *, _tmp: tempfile.TemporaryDirectory | None = None):
        self.out_dir = Path(out_dir)
        self._tmp = _tmp  # keeps a temporary output alive as long as this object
        self.manifest = json.loads((self.out_dir / "manifest.json").read_text())
        self.module = load_module(self.out_dir / "model.py")
        self.model = self.module.load(self.out_dir)

    @property
    def input_names(self) -> list[str]:
        return [i["name"] for i in self.manifest["inputs"]]

    def __call__(self, *args, **kwargs) -> Any:
        import mlx.core as mx

        from .compiler.weights import from_numpy

        conv = lambda a: a if isinstance(a, mx.array) else from_numpy(_np(a))  # noqa: E731
        return self.model(*[conv(a) for a in args], **{k: conv(v) for k, v in kwargs.items()})

    def save(self, out_dir: str | Path, *, force: bool = False) -> Path:
        from .compiler.pipeline import staged_output

        with staged_output(Path(out_dir), force) as tmp:
            for p in self.out_dir.iterdir():
                if p.is_dir():
                    shutil.copytree(p, tmp / p.name)
                else:
                    shutil.copy2(p, tmp / p.name)
        return Path(out_dir)

    def __repr__(self) -> str:
        return f"CompiledModel({self.out_dir}, inputs={self.input_names})"


def _np(a):
    import numpy as np

    if hasattr(a, "detach"):  # a torch tensor
        from .compiler.weights import to_numpy

        return to_numpy(a)
    return np.asarray(a)


def load_module(path: Path):
    """Import a generated model.py by path, under a unique module name."""
    name = f"fx2mlx_generated_{abs(hash(str(Path(path).resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def convert(module, args, kwargs: dict | None = None, *, out_dir: str | Path | None = None,
            dtype: str | None = None, dynamic_shapes=None, force: bool = False) -> CompiledModel:
    """Compile an in-process torch.nn.Module. Without out_dir the output lives in a temporary folder
    (use `.save(dir)` to keep it)."""
    from .compiler.capture import capture
    from .compiler.pipeline import compile_captured

    if not isinstance(args, (tuple, list)):
        args = (args,)
    captured = capture(module, tuple(args), dict(kwargs or {}), dynamic_shapes=dynamic_shapes,
                       description=f"python:{type(module).__module__}.{type(module).__qualname__}")
    tmp = None
    if out_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="fx2mlx-")
        out_dir = Path(tmp.name) / "out"
    compile_captured(captured, Path(out_dir), dtype=dtype, force=force)
    return CompiledModel(Path(out_dir), _tmp=tmp)


def load(out_dir: str | Path) -> CompiledModel:
    """Load a compiled output folder (needs only mlx)."""
    return CompiledModel(Path(out_dir))
