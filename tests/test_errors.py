"""Bad input: each case gets a clear message naming the cause and where, a non-zero exit, and no
output written."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fx2mlx.cli import main
from fx2mlx.compiler.errors import CaptureError, SourceError, UnsupportedOpsError

DATA = Path(__file__).parent / "data"
BAD = f"{DATA / 'bad_models.py'}"


def _line_of(marker: str) -> int:
    for i, line in enumerate((DATA / "bad_models.py").read_text().splitlines(), 1):
        if marker in line:
            return i
    raise AssertionError(marker)


def run_cli(capsys, *args) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().err


def assert_nothing_written(out: Path):
    assert not out.exists(), f"{out} was created"
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    assert not leftovers, f"partial output left behind: {leftovers}"


def test_unsupported_ops_reported_together(tmp_path, capsys):
    out = tmp_path / "out"
    code, err = run_cli(capsys, "compile", f"{BAD}:unsupported", "-o", str(out))
    assert code == UnsupportedOpsError.exit_code
    text = " ".join(err.split())
    assert "2 unsupported op(s)" in text
    assert "fx2mlx_test.mystery.default ×2" in text and "fx2mlx_test.enigma.default ×1" in text
    assert f"bad_models.py:{_line_of('MYSTERY-LINE')}" in text
    assert f"bad_models.py:{_line_of('ENIGMA-LINE')}" in text
    assert "blocks.0 (Block)" in text and "blocks.1 (Block)" in text
    assert_nothing_written(out)



def test_export_failure_points_at_user_line(tmp_path, capsys):
    out = tmp_path / "out"
    code, err = run_cli(capsys, "compile", f"{BAD}:data_dependent", "-o", str(out))
    assert code == CaptureError.exit_code
    text = " ".join(err.split())
    assert "torch.export could not capture DataDependent" in text
    assert f"bad_models.py:{_line_of('DATA-DEPENDENT-LINE')}" in text
    assert_nothing_written(out)


@pytest.mark.parametrize("spec, message", [
    ("missing_file.py:make", "factory file not found"),
    ("json:no_such_function", "has no function 'no_such_function'"),
    ("no_such_package_xyz.mod:make", "cannot import module 'no_such_package_xyz.mod'"),
    (f"{BAD}:not_a_tuple", "must return (module, args), (module, args, kwargs), or a program"),
    (f"{BAD}:raises", "factory exploded"),
    ("does/not/exist", "the path does not exist"),
])
def test_bad_source_spec(tmp_path, capsys, spec, message):
    out = tmp_path / "out"
    code, err = run_cli(capsys, "compile", spec, "-o", str(out))
    assert code == SourceError.exit_code
    assert message in " ".join(err.split())
    assert_nothing_written(out)


def _hf_dir(tmp_path) -> Path:
    from transformers import BertConfig, BertModel

    d = tmp_path / "bert"
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    BertModel(cfg).save_pretrained(d)
    return d


def test_missing_weights(tmp_path, capsys):
    d = _hf_dir(tmp_path)
    (d / "model.safetensors").unlink()
    torch.save({}, d / "pytorch_model.bin")
    out = tmp_path / "out"
    code, err = run_cli(capsys, "compile", str(d), "-o", str(out))
    assert code == SourceError.exit_code
    text = " ".join(err.split())
    assert "no *.safetensors weights" in text and "pytorch_model.bin" in text and "pickled weights are not loaded" in text
    assert_nothing_written(out)


def test_corrupt_weights(tmp_path, capsys):
    d = _hf_dir(tmp_path)
    (d / "model.safetensors").write_bytes(b"\x00\x01garbage" * 10)
    out = tmp_path / "out"
    code, err = run_cli(capsys, "compile", str(d), "-o", str(out))
    assert code == SourceError.exit_code
    assert "corrupt or unreadable safetensors file" in " ".join(err.split())
    assert_nothing_written(out)


def test_missing_config(tmp_path, capsys):
    d = tmp_path / "empty_model"
    d.mkdir()
    code, err = run_cli(capsys, "compile", str(d), "-o", str(tmp_path / "out"))
    assert code == SourceError.exit_code
    assert "config.json is missing" in " ".join(err.split())


def test_non_empty_output_refused_then_forced(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    src = f"{Path(__file__).parent / 'zoo.py'}:mlp"
    code, err = run_cli(capsys, "compile", src, "-o", str(out))
    assert code != 0 and "is not empty; pass --force" in " ".join(err.split())
    assert (out / "keep.txt").read_text() == "user data" and sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    code, _ = run_cli(capsys, "compile", src, "-o", str(out), "--force")
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["inputs.safetensors", "ir.json", "manifest.json", "model.py", "program.py",
                                                      "weights.safetensors"]


def test_cli_entry_point_exit_code(tmp_path):
    """The installed console script exits non-zero with a message and no traceback."""
    exe = Path(sys.executable).parent / "fx2mlx"
    r = subprocess.run([str(exe), "compile", "does/not/exist", "-o", str(tmp_path / "o")], capture_output=True, text=True)
    assert r.returncode == SourceError.exit_code
    assert "error:" in r.stderr and "Traceback" not in r.stderr


class _ComplexHalf(torch.nn.Module):
    def forward(self, x, y):
        z = torch.complex(x, y)  # complex32: MLX has no such dtype
        return torch.view_as_real(z * 2)


def test_dtype_mlx_lacks_is_named(tmp_path):
    """A value of a dtype MLX does not have (complex32, float8, ...) is refused with the dtype, why, and where."""
    import fx2mlx
    from fx2mlx.compiler.errors import LoweringError

    x = torch.randn(3, dtype=torch.float16)
    with pytest.raises(LoweringError) as info:
        fx2mlx.convert(_ComplexHalf(), (x, x), out_dir=tmp_path / "out")
    msg = str(info.value)
    assert msg.startswith("dtype complex32 cannot be lowered: MLX's only complex dtype is complex64")
    assert "aten.complex.default" in msg and "test_errors.py" in msg and "torch.complex(x, y)" in msg
    assert_nothing_written(tmp_path / "out")


class _BigRandint(torch.nn.Module):
    def forward(self, x):
        return x + torch.randint(0, 2**40, x.shape)


def test_randint_beyond_int32_refused(tmp_path):
    """MLX's randint draws int32 values: larger bounds are refused (naming the op and the line), not
    silently turned into zeros."""
    import fx2mlx

    with pytest.raises(UnsupportedOpsError) as info:
        fx2mlx.convert(_BigRandint(), (torch.zeros(4, dtype=torch.int64),), out_dir=tmp_path / "out")
    msg = str(info.value)
    assert "aten.randint.low" in msg and "int32" in msg and "test_errors.py:" in msg
    assert_nothing_written(tmp_path / "out")
