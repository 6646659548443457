"""Errors of the golden harness. `GoldenMismatch` is also an AssertionError, so a failed
`assert_matches` reads as a test failure in pytest while the CLI still exits with its own code."""
from __future__ import annotations

from ..compiler.errors import Fx2MlxError


class GoldenMismatch(Fx2MlxError, AssertionError):
    """Some layer (or value) of the emitted MLX model is out of tolerance against PyTorch."""

    exit_code = 10

    def __init__(self, message: str, report: dict | None = None):
        super().__init__(message)
        self.report = report


class GoldenError(Fx2MlxError):
    """The check cannot run: no golden tensors for --offline, the source no longer matches OUT, ..."""

    exit_code = 11
