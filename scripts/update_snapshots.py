"""Regenerate the emitted-code snapshots in tests/snapshots/ (review the diff, then commit).

    .venv/bin/python scripts/update_snapshots.py
"""
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

SNAPSHOTS = ("mlp", "conv1d_stack", "bilstm_bf")


def render(name: str) -> str:
    import fx2mlx
    from zoo import ZOO

    module, args, *rest = ZOO[name]()
    with tempfile.TemporaryDirectory() as tmp:
        c = fx2mlx.convert(module, args, rest[0] if rest else None, out_dir=Path(tmp) / "out")
        return (c.out_dir / "model.py").read_text()


def main() -> None:
    for name in SNAPSHOTS:
        path = ROOT / "tests" / "snapshots" / f"{name}.model.py"
        path.write_text(render(name))
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
