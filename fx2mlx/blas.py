"""An optimised BLAS for MLX's CPU backend on Linux, loaded before `mlx.core` is imported.

The Linux mlx-cpu wheel links a reference BLAS (a 1024^2 float32 matmul: ~370 ms; OpenBLAS: ~15 ms).
MLX resolves `cblas_sgemm` & co. through the global symbol scope, so a BLAS loaded first with
RTLD_GLOBAL wins. Candidates, in order: $FX2MLX_BLAS (a path; "0" turns this off), then the system's
OpenBLAS (Debian/Ubuntu: `apt-get install libopenblas0-pthread`, built for every x86 level). The
`cmeel-openblas` wheel (0.3.31) is not a candidate: its kernels need AVX-512 and die with SIGILL on
AVX2-only CPUs (seen here), which no check before the first call can catch. This changes nothing in
the generated model.py, which stays standalone (run it with LD_PRELOAD=<blas> for the same speed).
"""
from __future__ import annotations

import ctypes
import os
import sys

_loaded: str | None = None
_tried = False

SYSTEM_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3",
    "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib64/libopenblas.so.0",
)


def _candidates() -> list[str]:
    env = os.environ.get("FX2MLX_BLAS")
    if env:
        return [] if env == "0" else [env]
    out = [p for p in SYSTEM_CANDIDATES if os.path.exists(p)]
    return out


def use_optimized_blas() -> str | None:
    """Load the first optimised BLAS that loads; returns its path (None where none is found, on
    macOS, or when mlx.core was already imported and would no longer pick it up)."""
    global _loaded, _tried
    if _tried:
        return _loaded
    _tried = True
    if not sys.platform.startswith("linux") or "mlx.core" in sys.modules:
        return None
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            lib.cblas_sgemm  # noqa: B018 - the symbol MLX needs
        except (OSError, AttributeError):
            continue
        _loaded = path
        return path
    return None


def loaded() -> str | None:
    return _loaded
