"""Configure, build and run the generated C++ program (`OUT/cpp/` -> `OUT/cpp/build/model`).

CMake finds MLX through `find_package(MLX CONFIG)` with the prefix `python -m mlx --cmake-dir` prints.
On Linux an optimised BLAS is linked ahead of MLX when one is present: `FX2MLX_BLAS` (a path, or
"none"/"0"), else the system OpenBLAS (Debian/Ubuntu: `apt-get install libopenblas0-pthread`). The
`cmeel-openblas` wheel is not a candidate: its kernels need AVX-512 (SIGILL on AVX2-only CPUs; see
fx2mlx/blas.py).
"""
from __future__ import annotations

import functools
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from ..compiler.errors import Fx2MlxError

SYSTEM_BLAS = ("/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3",
               "/usr/lib/aarch64-linux-gnu/openblas-pthread/libblas.so.3",
               "/usr/lib64/libopenblas.so.0", "/usr/lib/libopenblas.so.0")


class BuildError(Fx2MlxError):
    """cmake or the compiler failed (the message carries the tail of their output)."""


@functools.lru_cache(maxsize=None)
def mlx_cmake_dir() -> str:
    """The MLX package folder CMake's find_package(MLX CONFIG) needs (`python -m mlx --cmake-dir`)."""
    r = subprocess.run([sys.executable, "-m", "mlx", "--cmake-dir"], capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout.strip():
        raise BuildError(f"`{sys.executable} -m mlx --cmake-dir` failed: {r.stderr.strip()[-500:]}")
    return r.stdout.strip()


def find_blas() -> str | None:
    """An optimised BLAS to link ahead of MLX (Linux only), or None."""
    if platform.system() != "Linux":
        return None
    env = os.environ.get("FX2MLX_BLAS")
    if env:
        return None if env.lower() in ("none", "off", "0") else env
    for p in SYSTEM_BLAS:
        if os.path.exists(p):
            return p
    return None


def _tools() -> None:
    missing = [t for t in ("cmake", "c++") if shutil.which(t) is None and not (t == "c++" and shutil.which("g++"))]
    if missing:
        raise BuildError(f"building the C++ program needs {' and '.join(missing)} on PATH")


def _run(cmd: list[str], what: str) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        out = (r.stdout + r.stderr).strip()
        raise BuildError(f"{what} failed ({' '.join(cmd)}):\n{out[-6000:]}")
    return r.stdout


def build(out_dir: Path, *, jobs: int | None = None, blas: str | None = "auto", build_type: str = "Release",
          opt: str | None = None) -> Path:
    """Configure (every time; cheap once cached) and build OUT/cpp; returns the program's path."""
    cpp = Path(out_dir) / "cpp"
    if not (cpp / "CMakeLists.txt").is_file():
        raise BuildError(f"{cpp} has no CMakeLists.txt: run `fx2mlx compile ... --target cpp` or "
                         f"`fx2mlx regen-cpp {out_dir}` first")
    _tools()
    build_dir = cpp / "build"
    lib = find_blas() if blas == "auto" else (None if blas in (None, "none", "off", "OFF") else blas)
    cmd = ["cmake", "-S", str(cpp), "-B", str(build_dir), f"-DCMAKE_PREFIX_PATH={mlx_cmake_dir()}",
           f"-DCMAKE_BUILD_TYPE={build_type}", f"-DFX2MLX_BLAS={lib or 'OFF'}"]
    if opt:
        cmd.append(f"-DFX2MLX_OPT={opt}")
    _run(cmd, "cmake configure")
    _run(["cmake", "--build", str(build_dir), "-j", str(jobs or os.cpu_count() or 2)], "cmake build")
    return build_dir / "model"


def run(exe: Path, *args: str, check: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise BuildError(f"{exe} failed (exit {r.returncode}):\n{(r.stdout + r.stderr).strip()[-4000:]}")
    return r
