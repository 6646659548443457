"""Op tables: schema checks, malformed and duplicate entries fail at load with file:line; overrides
cannot be registered twice; a wrong lowering is caught at compile time by the lazy shape check."""
import textwrap

import pytest
import torch

from fx2mlx.compiler import optable
from fx2mlx.compiler.errors import LoweringError, TableError
from fx2mlx.compiler.overrides import OVERRIDES, override


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_all_tables_load_and_match_torch_schemas():
    table = optable.load_tables()
    assert len(table) > 100
    for entry in table.values():
        if entry.op.startswith("aten."):
            ns, name, ov = entry.op.split(".")
            real = str(getattr(getattr(torch.ops.aten, name), ov)._schema).split("::", 1)[1]
            assert " ".join(real.split()) == " ".join(entry.schema.split()), entry.loc


@pytest.mark.parametrize("body, message", [
    ("""\
     ops:
       - op: aten.add.Tensor
         schema: "add.Tensor(Tensor self, Tensor other, *, Scalar beta=1) -> Tensor"
         py: "{{ self_ }} + {{ other }}"
     """, "schema mismatch with torch"),
    ("""\
     ops:
       - op: aten.add.Tensor
         schema: "add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor"
         py: "{{ self_ }} + {{ othr }}"
     """, "uses ['othr'], not arguments of the schema"),
    ("""\
     ops:
       - op: aten.add.Tensor
         schema: "add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor"
         py: "{{ self_ }} + {{ other }}"
         colour: red
     """, "unknown key(s) ['colour']"),
    ("""\
     ops:
       - op: aten.no_such_op.default
         schema: "no_such_op(Tensor self) -> Tensor"
         py: "{{ self_ }}"
     """, "does not exist in this torch"),
    ("""\
     ops:
       - op: aten.neg.default
         schema: "neg(Tensor self) -> Tensor"
         py: "{{ self_ "
     """, "bad py template"),
    ("""\
     ops:
       - op: aten.neg.default
         schema: "neg(Tensor self) -> Tensor"
         py: "-{{ self_ }}"
         opmath: [x]
     """, "opmath names 'x'"),
])
def test_malformed_entry_fails_with_location(tmp_path, body, message):
    p = write(tmp_path, "fam.yaml", body)
    with pytest.raises(TableError) as e:
        optable.load_file(p)
    assert message in str(e.value)
    assert "fam.yaml:2" in str(e.value) or "fam.yaml:" in str(e.value)


def test_duplicate_entry_fails_with_both_locations(tmp_path):
    entry = """\
    ops:
      - op: aten.neg.default
        schema: "neg(Tensor self) -> Tensor"
        py: "-{{ self_ }}"
    """
    write(tmp_path, "a.yaml", entry)
    write(tmp_path, "b.yaml", entry)
    with pytest.raises(TableError) as e:
        optable.load_tables(tmp_path)
    assert "duplicate entry for aten.neg.default" in str(e.value)
    assert "b.yaml:2" in str(e.value) and "a.yaml:2" in str(e.value)


def test_override_registered_twice_raises():
    assert "aten.lstm.input" in OVERRIDES
    with pytest.raises(TableError, match="registered twice"):
        @override("aten.lstm.input")
        def lstm_again(node, args):
            return ""


def test_wrong_lowering_is_caught_at_compile_time(monkeypatch):
    """A table form that computes the wrong shape fails naming the entry, not at run time."""
    from dataclasses import replace

    import fx2mlx
    from fx2mlx.compiler import lowering

    tables = dict(optable.default_tables())
    tables["aten.sum.dim_IntList"] = replace(tables["aten.sum.dim_IntList"], py="mx.sum({{ self_ }})")
    monkeypatch.setattr(lowering, "default_tables", lambda: tables)

    class M(torch.nn.Module):
        def forward(self, x):
            return x.sum(-1)

    with pytest.raises(LoweringError) as e:
        fx2mlx.convert(M(), (torch.randn(2, 3),))
    assert "aten.sum.dim_IntList" in str(e.value) and "reduction.yaml" in str(e.value)
    assert "shape ()" in str(e.value) and "PyTorch's is (2,)" in str(e.value)


def test_entry_tolerance_widens_the_op_checks():
    """An entry's `tolerance` widens (never tightens) the dtype tolerance of the op checks of calls
    whose graph contains the op; exact dtypes stay exact."""
    from fx2mlx.conformance.compare import TOLERANCES, op_tolerance

    svd = optable.default_tables()["aten._linalg_svd.default"].tolerance
    assert svd == (1e-4, 1e-4)
    assert op_tolerance(["aten._linalg_svd.default", "aten.add.Tensor"], "float32") == (1e-4, 1e-4)
    assert op_tolerance(["aten.add.Tensor"], "float32") == TOLERANCES["float32"]
    assert op_tolerance(["aten._linalg_svd.default"], "bfloat16") == TOLERANCES["bfloat16"]
    assert op_tolerance(["fx2mlx.rope.default"], "float32") == (1e-5, 1e-4)  # overrides count too
    assert op_tolerance(["aten.add.Tensor"], "int64") is None
