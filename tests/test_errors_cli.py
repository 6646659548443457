"""Bad input to every command and to the emitted model: one clear message, a documented exit code
(docs/errors.md), no traceback, and nothing written or changed."""
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from fx2mlx.cli import main
from fx2mlx.compiler.errors import ArgumentError, CaptureError, InternalError, SourceError

ZOO = Path(__file__).parent / "zoo.py"
MLP = f"{ZOO}:mlp"


def run_cli(capfd, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    out, err = capfd.readouterr()
    assert "Traceback" not in err, err
    return code, Text(err + out)


class Text(str):
    """Terminal output; `in` ignores where the console wrapped lines."""

    def __contains__(self, part):
        return "".join(part.split()) in "".join(self.split())


def snapshot(folder: Path) -> dict:
    """Every file under folder (and its siblings' staging folders) with its content hash."""
    return {str(p.relative_to(folder.parent)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.parent.rglob("*")) if p.is_file()}


def assert_no_output(out: Path):
    assert not out.exists(), f"{out} was created"
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


@pytest.fixture(scope="module")
def mlp_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("mlp") / "out"
    assert main(["compile", MLP, "-o", str(out)]) == 0
    return out


@pytest.fixture
def mlp_copy(mlp_out, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(mlp_out, dst)
    return dst


def _llama_dir(root: Path, **kw) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                      num_key_value_heads=1, max_position_embeddings=64, **kw)
    d = root / "llama"
    LlamaForCausalLM(cfg).eval().save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    root = tmp_path_factory.mktemp("llama")
    d = _llama_dir(root, tie_word_embeddings=True)
    out = root / "out"
    assert main(["compile", str(d), "-o", str(out)]) == 0
    return d, out


def _bert_dir(tmp_path) -> Path:
    from transformers import BertConfig, BertModel

    d = tmp_path / "bert"
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    BertModel(cfg).save_pretrained(d)
    return d


def _edit_weights(d: Path, edit) -> None:
    from safetensors.torch import load_file, save_file

    w = {k: v.clone() for k, v in load_file(d / "model.safetensors").items()}
    edit(w)
    save_file(w, d / "model.safetensors", metadata={"format": "pt"})


# ---- compile ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, code, message", [
    (["--quantize", "4"], SourceError.exit_code, "--quantize applies to causal LMs and encoder-decoder models"),
    (["--dtype", "int8"], 1, "--dtype must be one of float32, float16, bfloat16, got 'int8'"),
    (["--static", "--dynamic", "input:0"], 1, "--static freezes every dimension"),
    (["--inputs", "no/such/inputs.safetensors"], SourceError.exit_code, "inputs file not found"),
    (["--target", "java"], 1, "--target"),
    (["--recipe", "nope"], SourceError.exit_code, "unknown recipe 'nope'"),
    (["--dynamic", "input:7"], None, "input"),
])
def test_compile_bad_options(tmp_path, capfd, args, code, message):
    out = tmp_path / "out"
    got, text = run_cli(capfd, "compile", MLP, "-o", out, *args)
    assert got != 0 and (code is None or got == code), text
    assert message in text, text
    assert_no_output(out)


def test_compile_out_is_a_file(tmp_path, capfd):
    out = tmp_path / "out"
    out.write_text("mine")
    code, text = run_cli(capfd, "compile", MLP, "-o", out)
    assert code == 7 and "exists and is not a directory" in text
    assert out.read_text() == "mine"


@pytest.mark.parametrize("bits, group, message", [
    ("3", "64", "--quantize takes 4 or 8 bits (the widths fx2mlx tests), got 3"),
    ("2", "64", "--quantize takes 4 or 8 bits"),
    ("4", "48", "--group-size takes 32, 64, 128, got 48"),
])
def test_quantize_refused(llama, tmp_path, capfd, bits, group, message):
    out = tmp_path / "q"
    code, text = run_cli(capfd, "compile", llama[0], "-o", out, "--quantize", bits, "--group-size", group)
    assert code == SourceError.exit_code and message in text, text
    assert_no_output(out)


def test_bad_example_input_keeps_torch_logs_out(tmp_path, capfd):
    import mlx.core as mx

    bad = tmp_path / "in.safetensors"
    mx.save_safetensors(str(bad), {"input_0": mx.zeros((2, 17))})
    out = tmp_path / "out"
    code, text = run_cli(capfd, "compile", MLP, "-o", out, "--inputs", bad)
    assert code == CaptureError.exit_code and "a and b must have same reduction dim" in text
    assert "fake_tensor.py" not in text and "Traceback" not in text, text  # torch's own error log stays out
    assert_no_output(out)
    code, text = run_cli(capfd, "compile", MLP, "-o", out, "--inputs", bad, "--verbose")
    assert code == CaptureError.exit_code


@pytest.mark.parametrize("edit, message", [
    (lambda w: w.pop("encoder.layer.0.attention.self.query.weight"),
     "missing from the checkpoint: encoder.layer.0.attention.self.query.weight"),
    (lambda w: w.__setitem__("extra.weight", torch.zeros(3)), "in the checkpoint but not in the model: extra.weight"),
    (lambda w: w.__setitem__("pooler.dense.bias", torch.zeros(5)),
     "with another shape: pooler.dense.bias (5,) vs the model's (16,)"),
])
def test_hf_weights_must_match(tmp_path, capfd, edit, message):
    d = _bert_dir(tmp_path)
    _edit_weights(d, edit)
    out = tmp_path / "out"
    code, text = run_cli(capfd, "compile", d, "-o", out)
    assert code == SourceError.exit_code and message in text and "would initialise missing weights at random" in text, text
    assert_no_output(out)


def test_causal_lm_weights_must_match_tied_allowed(tmp_path, capfd, llama):
    d = _llama_dir(tmp_path, tie_word_embeddings=False)
    _edit_weights(d, lambda w: w.pop("lm_head.weight"))
    out = tmp_path / "out"
    code, text = run_cli(capfd, "compile", d, "-o", out)
    assert code == SourceError.exit_code and "missing from the checkpoint: lm_head.weight" in text, text
    assert_no_output(out)
    assert (llama[1] / "manifest.json").is_file()  # tie_word_embeddings=True: lm_head absent, compiled fine


def test_pickle_refused_then_allowed(tmp_path, capfd):
    d = _bert_dir(tmp_path)
    from safetensors.torch import load_file

    torch.save(load_file(d / "model.safetensors"), d / "pytorch_model.bin")
    (d / "model.safetensors").unlink()
    out = tmp_path / "out"
    code, text = run_cli(capfd, "compile", d, "-o", out)
    assert code == SourceError.exit_code and "pickled weights are not loaded" in text and "--allow-pickle" in text
    assert "safetensors" in text
    assert_no_output(out)
    code, text = run_cli(capfd, "compile", d, "-o", out, "--allow-pickle")
    assert code == 0, text


def test_pickle_with_code_refused_even_when_allowed(tmp_path, capfd):
    d = _bert_dir(tmp_path)
    (d / "model.safetensors").unlink()

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, d / "pytorch_model.bin")
    out = tmp_path / "out"
    code, text = run_cli(capfd, "compile", d, "-o", out, "--allow-pickle")
    assert code == SourceError.exit_code and "pwned" not in text, text
    assert_no_output(out)


def test_bad_config_json(tmp_path, capfd):
    d = _bert_dir(tmp_path)
    (d / "config.json").write_text("{not json")
    code, text = run_cli(capfd, "compile", d, "-o", tmp_path / "out")
    assert code == SourceError.exit_code and "config.json: invalid JSON" in text
    assert_no_output(tmp_path / "out")


def test_internal_error_is_one_line_and_a_file(tmp_path, capfd, monkeypatch):
    import fx2mlx.recipes as recipes

    def boom(*a, **k):
        raise RuntimeError("unexpected thing\nsecond line")

    monkeypatch.setattr(recipes, "compile_source", boom)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    code, text = run_cli(capfd, "compile", MLP, "-o", tmp_path / "out")
    assert code == InternalError.exit_code
    assert "internal error: RuntimeError: unexpected thing" in text and "second line" not in text
    crash = list(tmp_path.glob("fx2mlx-crash-*.txt"))
    assert len(crash) == 1 and str(crash[0]) in text
    trace = crash[0].read_text()
    assert trace.startswith(f"fx2mlx compile {MLP}") and "Traceback" in trace and "second line" in trace


# ---- check / ir / regen-cpp / build / check-cpp on a damaged or wrong OUT --------------------------------------

def _corrupt_ir(d):
    (d / "ir.json").write_text("{bad")


def _corrupt_manifest(d):
    (d / "manifest.json").write_text("[1,")


def _old_manifest(d):
    m = json.loads((d / "manifest.json").read_text())
    m["manifest_version"] = 1
    (d / "manifest.json").write_text(json.dumps(m))


def _no_manifest(d):
    (d / "manifest.json").unlink()


def _no_ir(d):
    (d / "ir.json").unlink()


DAMAGE = {"corrupt ir.json": (_corrupt_ir, "ir.json cannot be read"),
          "corrupt manifest": (_corrupt_manifest, "manifest.json: invalid JSON"),
          "old manifest": (_old_manifest, "was written by another fx2mlx version"),
          "no manifest": (_no_manifest, "is not a compiled fx2mlx output (no manifest.json)"),
          "no ir.json": (_no_ir, "has no ir.json")}


GOLDEN_ERROR = 11  # `check` reports an output it cannot check as a golden error


@pytest.mark.parametrize("command", ["check", "ir", "regen-cpp"])
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_output(mlp_copy, capfd, command, damage):
    fn, message = DAMAGE[damage]
    fn(mlp_copy)
    before = snapshot(mlp_copy)
    code, text = run_cli(capfd, command, mlp_copy)
    if command == "ir" and damage == "no manifest":
        message = "nor a Hugging Face model directory"
    assert code == (GOLDEN_ERROR if command == "check" else SourceError.exit_code) and message in text, text
    assert snapshot(mlp_copy) == before


@pytest.mark.parametrize("command", ["check", "ir", "regen-cpp", "build", "check-cpp", "generate"])
def test_output_does_not_exist(tmp_path, capfd, command):
    extra = ["--prompt-ids", "1"] if command == "generate" else []
    code, text = run_cli(capfd, command, tmp_path / "nowhere", *extra)
    message = "the path does not exist" if command == "ir" else "is not a compiled fx2mlx output"
    assert code == (GOLDEN_ERROR if command == "check" else SourceError.exit_code) and message in text, text
    assert not (tmp_path / "nowhere").exists()


def test_build_without_cpp(mlp_copy, capfd):
    before = snapshot(mlp_copy)
    code, text = run_cli(capfd, "build", mlp_copy)
    assert code != 0 and "--target cpp" in text, text
    assert snapshot(mlp_copy) == before


def test_check_unknown_graph(mlp_copy, capfd):
    code, text = run_cli(capfd, "check", mlp_copy, "--graph", "nope")
    assert code != 0 and "nope" in text, text


def test_usage_error(capfd):
    code, text = run_cli(capfd, "ops", "--no-such-flag")
    assert code == 2 and "No such option" in text


# ---- generate --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, code, message", [
    ([], 1, "pass exactly one of --prompt TEXT or --prompt-ids"),
    (["--prompt-ids", "a,b"], 1, "--prompt-ids must be comma-separated integers"),
    (["--prompt", "hello"], 1, "has no tokenizer.json: pass --prompt-ids"),
    (["--prompt-ids", "1,999"], ArgumentError.exit_code, "token id 999 is outside the vocabulary (0..63)"),
    (["--prompt-ids", "1", "--top-p", "0"], ArgumentError.exit_code, "top_p must be in (0, 1]"),
    (["--prompt-ids", "1", "--temp", "-1"], ArgumentError.exit_code, "temp must be >= 0"),
    (["--prompt-ids", "1", "--max-tokens", "-2"], ArgumentError.exit_code, "max_tokens must be an integer >= 0"),
])
def test_generate_bad_arguments(llama, capfd, args, code, message):
    got, text = run_cli(capfd, "generate", llama[1], *args)
    assert got == code and message in text, text


def test_generate_on_a_non_lm(mlp_out, capfd):
    code, text = run_cli(capfd, "generate", mlp_out, "--prompt-ids", "1,2")
    assert code == SourceError.exit_code and "not as a causal language model" in text


def test_load_llm_refuses_non_lm(mlp_out):
    from fx2mlx.llm import load_llm

    with pytest.raises(SourceError, match="not as a causal language model"):
        load_llm(mlp_out)


@pytest.mark.parametrize("prompt, message", [
    ([[1, 2, 3], []], "the prompt is empty"),  # a batch: each prompt checked
    ([], "the prompt is empty"),
    ([1, 2.5], "token ids are integers, got 2.5"),
    ([-1], "token id -1 is outside the vocabulary"),
])
def test_generate_api_bad_prompt(llama, prompt, message):
    from fx2mlx.llm import load_llm

    lm = load_llm(llama[1])
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        lm.generate(prompt, max_tokens=2)


# ---- the emitted model checks its inputs -----------------------------------------------------------------------

class _Pos(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.pos = torch.nn.Parameter(torch.randn(16, 4))

    def forward(self, x, ids):
        return x + self.pos[: x.shape[1]], ids + x[:, :1, 0].long()  # x and ids share the batch size


@pytest.fixture(scope="module")
def pos_model(tmp_path_factory):
    import fx2mlx

    out = tmp_path_factory.mktemp("pos") / "out"
    fx2mlx.convert(_Pos(), (torch.randn(2, 8, 4), torch.zeros(2, 3, dtype=torch.long)), out_dir=out)
    return fx2mlx.load(out).model, (out / "model.py").read_text()


@pytest.mark.parametrize("shapes, message", [
    (((2, 8), (2, 3)), "x: expected shape (batch, x_dim1, 4)"),  # rank
    (((2, 8, 5), (2, 3)), "got (2, 8, 5) (needs axis 2 = 4)"),  # static size
    (((3, 8, 4), (2, 3)), "ids: expected shape (batch, ids_dim1), got (2, 3) (needs batch = 3 as in x)"),  # shared dim
    (((2, 8, 4), (2, 3), "float"), "ids: expected dtype int64 (int), got float32 (float)"),  # dtype
    (((2, 8, 4), "list"), "ids: expected an array of shape (batch, ids_dim1) and dtype int64, got list"),
])
def test_emitted_model_checks_inputs(pos_model, shapes, message):
    import mlx.core as mx

    model, _ = pos_model
    x = mx.zeros(shapes[0])
    ids = [1, 2] if shapes[1] == "list" else mx.zeros(shapes[1], dtype=mx.float32 if len(shapes) > 2 else mx.int32)
    with pytest.raises(ValueError) as info:
        model(x, ids)
    assert message in str(info.value)
    model(mx.zeros((2, 5, 4)), mx.zeros((2, 7), dtype=mx.int32))  # other sizes within range are fine


def test_emitted_model_checks_dynamic_range(pos_model):
    import mlx.core as mx

    model, code = pos_model
    if "'x_dim1': (1, 16)" not in code:
        pytest.skip("emit_py does not pass `dims` to model.py.j2 yet (see docs/errors.md)")
    with pytest.raises(ValueError) as info:
        model(mx.zeros((2, 17, 4)), mx.zeros((2, 3), dtype=mx.int32))
    assert "x: expected shape (batch, x_dim1, 4) with x_dim1 <= 16 and a static axis 2 = 4, got (2, 17, 4)" \
        in str(info.value)


def test_load_with_missing_weights(mlp_copy):
    import fx2mlx

    (mlp_copy / "weights.safetensors").unlink()
    with pytest.raises(SourceError, match="weights.safetensors"):
        fx2mlx.load(mlp_copy)
