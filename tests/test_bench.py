"""bench/all.py --quick on tiny shapes: the family benches follow the convention and their results merge."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_all_quick(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import all as bench_all
    finally:
        sys.path.pop(0)
    assert {"llm", "models"} <= set(bench_all.family_benches())
    out = tmp_path / "res"
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "all.py"), "--quick", "--only", "models", "--out", str(out),
                        "--args", "models=--models bert-base,resnet-50 --no-torch-compile --runs 2 --warmup 1"],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads((out / "all.json").read_text())
    (bench,) = res["benches"]
    assert bench["family"] == "models" and bench["unit"] == "ms"
    assert [row["name"] for row in bench["rows"]] == ["bert-base b1", "bert-base b2", "resnet-50 b1", "resnet-50 b2"]
    for row in bench["rows"]:
        assert row["ours_ms"] > 0 and set(row["ref"]) == {"fx2mlx-eager", "torch-eager"} == set(row["ratio"])
        assert row["rel_err"] < 1e-4
    assert "geometric mean vs torch-eager" in r.stdout
    # merging written results again (as after chunked GPU runs)
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "all.py"), "--inputs", str(out / "all.json"),
                        "--out", str(tmp_path / "merged")], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0 and json.loads((tmp_path / "merged" / "all.json").read_text()) == res
