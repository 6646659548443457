"""Model files as sources: ONNX (`onnx_file`, through onnx2torch) and TorchScript archives
(`torchscript_file`, through torch's TS2EPConverter). Each becomes an nn.Module plus example inputs that
the usual capture path compiles; `original_outputs` runs the file itself (onnxruntime, or the scripted
module) for `fx2mlx check`."""
from __future__ import annotations

from pathlib import Path

from ..compiler.errors import SourceError

SUFFIXES = {".onnx": "onnx", ".pt": "torchscript", ".pth": "torchscript", ".jit": "torchscript",
            ".ts": "torchscript", ".torchscript": "torchscript"}


def file_kind(spec) -> str | None:
    """'onnx' or 'torchscript' for a model file SOURCE (by suffix), else None."""
    if not isinstance(spec, (str, Path)) or ":" in str(spec) and not Path(spec).exists():
        return None
    return SUFFIXES.get(Path(spec).suffix.lower())


def parse_shapes(specs: list[str] | None) -> dict[str, tuple]:
    """--input-shape NAME=2x8x100 (repeatable) -> {NAME: (2, 8, 100)}."""
    out = {}
    for s in specs or []:
        name, eq, dims = s.partition("=")
        try:
            shape = tuple(int(d) for d in dims.lower().split("x")) if eq and dims else None
        except ValueError:
            shape = None
        if not name or shape is None or any(d < 0 for d in shape):
            raise SourceError(f"--input-shape {s!r}: expected NAME=AxBxC, e.g. x=1x3x224")
        out[name] = shape
    return out


def load_file(spec: str, shapes: dict[str, tuple], *, trust_torchscript: bool = False,
              expect_sha256: str | None = None):
    """-> (module, args, info); info goes into the manifest (kind, path, sha256, inputs, ...)."""
    path = Path(spec)
    kind = file_kind(spec)
    if not path.is_file():
        raise SourceError(f"model file not found: {spec}")
    from .torchscript_file import sha256

    digest = sha256(path)
    if expect_sha256 and digest != expect_sha256:
        raise SourceError(f"{path} changed since it was compiled (sha256 differs); recompile")
    if kind == "onnx":
        from .onnx_file import load_onnx

        module, args, info = load_onnx(path, shapes)
    else:
        from .torchscript_file import load_torchscript, to_module

        scripted, args, names = load_torchscript(path, shapes, trust_torchscript)
        module = to_module(scripted, args)
        info = {"inputs": names, "trusted": True}
    return module, args, {"kind": kind, "path": str(path.resolve()), "sha256": digest, **info}


def original_outputs(info: dict, arrays: list) -> list:
    """The source file itself run on numpy inputs: onnxruntime for ONNX, the scripted module for TorchScript."""
    import numpy as np

    path = Path(info["path"])
    if info["kind"] == "onnx":
        from .onnx_file import onnxruntime_outputs

        return onnxruntime_outputs(path, info["inputs"], arrays)
    import torch

    from .torchscript_file import load_scripted

    with torch.no_grad():
        out = load_scripted(path, trust=bool(info.get("trusted")))(*[torch.from_numpy(np.asarray(a)) for a in arrays])
    out = out if isinstance(out, (tuple, list)) else [out]
    return [o.numpy() for o in out]
