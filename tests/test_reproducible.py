"""Outputs are reproducible and compiles are safe to run side by side or to kill (#16)."""
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fx2mlx.cli import main

ZOO = Path(__file__).parent / "zoo.py"
ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "build" not in p.relative_to(folder).parts}


def test_same_source_same_bytes(tmp_path):
    """model.py, ir.json, weights, manifest and the C++ sources are byte-identical across compiles."""
    for name in ("a", "b"):
        assert main(["compile", f"{ZOO}:cnn", "-o", str(tmp_path / name), "--target", "python,cpp"]) == 0
    a, b = digest(tmp_path / "a"), digest(tmp_path / "b")
    assert {"model.py", "ir.json", "weights.safetensors", "manifest.json", "cpp/model.cpp"} <= set(a)
    assert a == b, [k for k in a if a[k] != b.get(k)]


def _compile_proc(src: str, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fx2mlx.cli", "compile", src, "-o", str(out)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_compiles_side_by_side(tmp_path):
    procs = [_compile_proc(f"{ZOO}:{name}", tmp_path / name) for name in ("mlp", "cnn")]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cnn", "mlp"]
    assert main(["compile", f"{ZOO}:mlp", "-o", str(tmp_path / "again")]) == 0
    assert digest(tmp_path / "mlp") == digest(tmp_path / "again")


@pytest.mark.parametrize("after", [0.5, 2.0, 4.0])
def test_killed_compile_leaves_nothing_in_the_way(tmp_path, after):
    """SIGKILL at some moment: no OUT (or a complete one), and the next compile removes the stale staging folder."""
    out = tmp_path / "out"
    p = _compile_proc(f"{ZOO}:cnn", out)
    time.sleep(after)
    p.send_signal(signal.SIGKILL)
    p.wait()
    if out.exists():  # it had finished: then it is complete
        assert (out / "manifest.json").is_file() and (out / "model.py").is_file()
        return
    for stale in tmp_path.glob(".out.*.partial"):  # an old staging folder, as a killed compile leaves it
        os.utime(stale, (time.time() - 3600, time.time() - 3600))
    assert main(["compile", f"{ZOO}:cnn", "-o", str(out)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_running_compiles_staging_folder_is_left_alone(tmp_path):
    from fx2mlx.recipes.writer import OWNER, remove_stale_partials

    live = tmp_path / ".out.abcd1234.partial"
    live.mkdir()
    (live / OWNER).write_text(str(os.getppid()))  # a live process
    dead = tmp_path / ".out.dead1234.partial"
    dead.mkdir()
    (dead / OWNER).write_text("999999999")
    assert remove_stale_partials(tmp_path / "out") == [dead]
    assert live.is_dir() and not dead.exists()
