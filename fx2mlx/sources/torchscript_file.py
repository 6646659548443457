"""TorchScript archives (`torch.jit.save` files: .pt, .pth, .jit) as sources.

A TorchScript archive is a zip of TorchScript *code* (archive/code/*.py), constants and pickled data.
`torch.jit.load` compiles that code and runs its `__setstate__` methods, and fx2mlx then runs `forward`
(conversion, golden check): the file's author chooses what runs. TorchScript cannot import Python
modules, but its ops can read and write files, and PyTorch treats loading untrusted archives as unsafe
(CVE-2025-32434 reached code execution through `torch.load(weights_only=True)` by way of a TorchScript
archive; torch >= 2.6 refuses them there). So fx2mlx loads an archive only with `--trust-torchscript`
(`trust_torchscript=True`). A plain `torch.save` pickle of a module is refused: unpickling it imports and
runs arbitrary Python; build the module in a factory and load its state_dict instead.

Conversion: `torch._export.converter.TS2EPConverter` (TorchScript graph -> ExportedProgram), then the
usual capture of `ep.module()`. Scripted code with data-dependent control flow (prim::If/prim::Loop
over tensor values, as in scripted nn.LSTM/nn.MultiheadAttention) is refused with the node that
blocks it; traced archives (torch.jit.trace) have no control flow and convert.
"""
from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import torch

from ..compiler.errors import SourceError


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def archive_kind(path: Path) -> str:
    """'torchscript', 'pickle' (a torch.save zip without code) or 'other'."""
    if not zipfile.is_zipfile(path):
        return "other"
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    if any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names):
        return "torchscript"
    return "pickle" if any(n.endswith("data.pkl") for n in names) else "other"


def load_scripted(path: Path, trust: bool):
    kind = archive_kind(path)
    if kind == "pickle":
        raise SourceError(f"{path} is a torch.save pickle, not a TorchScript archive: loading it would run "
                          "arbitrary Python (torch.load(weights_only=False)). Give fx2mlx a factory "
                          "'file.py:function' that builds the module and loads its state_dict instead")
    if kind != "torchscript":
        raise SourceError(f"{path} is not a TorchScript archive (expected a torch.jit.save zip with code/ and "
                          "constants.pkl)")
    if not trust:
        raise SourceError(f"{path} is a TorchScript archive: loading it compiles and runs the TorchScript code it "
                          "contains (its __setstate__ at load, forward at conversion). Pass --trust-torchscript "
                          "if you trust the file's author")
    try:
        return torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as e:  # noqa: BLE001 - corrupt archives, unknown ops
        raise SourceError(f"torch.jit.load({path}) failed: {type(e).__name__}: {_first(e)}") from None


def forward_inputs(scripted) -> list[str]:
    """Names of forward's tensor arguments (after self)."""
    try:
        args = scripted.forward.schema.arguments[1:]
    except Exception:  # noqa: BLE001
        raise SourceError("the TorchScript module has no scripted forward method") from None
    return [a.name for a in args]


def load_torchscript(path: Path, shapes: dict[str, tuple], trust: bool):
    """-> (module, args, names, info). Example inputs: float32 randn of --input-shape NAME=AxB... per
    forward argument (TorchScript records no shapes), or `--inputs FILE`."""
    scripted = load_scripted(path, trust)
    names = forward_inputs(scripted)
    missing = [n for n in names if n not in shapes]
    unknown = sorted(set(shapes) - set(names))
    if unknown:
        raise SourceError(f"--input-shape names no forward argument: {', '.join(unknown)} (forward takes "
                          f"{', '.join(names)})")
    if missing:
        raise SourceError(f"TorchScript archives record no input shapes: give --input-shape NAME=AxBxC for "
                          f"{', '.join(missing)} (or --inputs FILE.safetensors)")
    gen = torch.Generator().manual_seed(0)
    args = tuple(torch.randn(shapes[n], generator=gen) for n in names)
    return scripted, args, names


def to_module(scripted, args: tuple):
    """TorchScript -> ExportedProgram (torch's converter) -> its nn.Module for the usual capture."""
    try:
        from torch._export.converter import TS2EPConverter
    except ImportError:
        raise SourceError(f"this torch ({torch.__version__}) has no TorchScript -> ExportedProgram converter "
                          "(torch._export.converter.TS2EPConverter)") from None
    try:
        ep = TS2EPConverter(scripted, tuple(args)).convert()
    except Exception as e:  # noqa: BLE001 - the converter's failures name the TorchScript node
        msg = _first(e)
        raise SourceError(f"torch's TorchScript converter (TS2EPConverter) cannot convert this archive: {msg}"
                          + (" (scripted control flow; a torch.jit.trace archive or the PyTorch source converts)"
                             if "prim::If" in msg or "prim::Loop" in msg else "")) from None
    return ExportedModule(ep.module())


class ExportedModule(torch.nn.Module):
    """ep.module() refuses .train()/.eval() (which capture calls): hold it, and keep the mode here."""

    def __init__(self, gm):
        super().__init__()
        self.gm = gm

    def train(self, mode: bool = True):
        self.training = mode
        return self

    def forward(self, *args):
        return self.gm(*args)


def _first(e: BaseException) -> str:
    s = str(e).strip()
    return s.splitlines()[0] if s else type(e).__name__
