"""Errors fx2mlx reports to users. Each names the cause and where (file, line, module path).

Exit codes (docs/errors.md): 1 generic (bad arguments, a missing tool), 2 source (or a command-line usage
error), 3 capture, 4 table, 5 unsupported ops, 6 lowering, 7 output, 8 self-check, 9 internal error,
10 golden mismatch, 11 golden error, 130 interrupted."""
from __future__ import annotations


class Fx2MlxError(Exception):
    """Base class: the CLI prints the message (no traceback) and exits non-zero."""

    exit_code = 1


class ArgumentError(Fx2MlxError, ValueError):
    """A bad argument to a command or an API call (a prompt, a sampling option, a flag value)."""

    exit_code = 1


class SourceError(Fx2MlxError):
    """The SOURCE spec, factory, model directory or weights cannot be used."""

    exit_code = 2


class CaptureError(Fx2MlxError):
    """torch.export could not capture the model."""

    exit_code = 3


class TableError(Fx2MlxError):
    """A malformed op-mapping table entry (reported with file:line)."""

    exit_code = 4


class UnsupportedOpsError(Fx2MlxError):
    """The graph has ops with no lowering; the message lists all of them at once."""

    exit_code = 5

    def __init__(self, message: str, ops: list[dict]):
        super().__init__(message)
        self.ops = ops


class LoweringError(Fx2MlxError):
    """A lowering produced code whose shape disagrees with PyTorch's, or failed to build."""

    exit_code = 6


class OutputError(Fx2MlxError):
    """The output directory cannot be written (e.g. exists and is not empty without --force)."""

    exit_code = 7


class InternalError(Fx2MlxError):
    """Not an error of the input: an unexpected exception inside fx2mlx (the CLI writes the trace to a file)."""

    exit_code = 9


class SelfCheckError(Fx2MlxError):
    """The emitted model.py could not be loaded or run on the example inputs (an fx2mlx bug)."""

    exit_code = 8
