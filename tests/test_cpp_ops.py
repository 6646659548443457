"""The C++ forms of the op tables, op by op: every differential case of `fx2mlx.conformance.opcases` whose ops all have
a `cpp:` form is emitted into one C++ program (`fx2mlx.conformance.cppcheck`), built, run, and compared with PyTorch
with the same tolerances as the Python forms. Every core overload the C++ target claims to emit must be
exercised by a passing case."""
from __future__ import annotations

import shutil

import pytest

pytestmark = [pytest.mark.cpp, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("c++") is None,
                                 reason="building the C++ program needs cmake and a C++ compiler")]


def test_cpp_forms_match_pytorch(tmp_path):
    import torch

    from fx2mlx.conformance import coverage, opcases
    from fx2mlx.conformance.cppcheck import check_calls_cpp, summary

    torch.set_num_threads(1)
    results = check_calls_cpp(opcases.all_cases(), workdir=tmp_path, log=print)
    print(summary(results))
    failing = [f"{r.name}: {r.reason}" for r in results if r.status not in ("pass", "no-cpp")]
    assert not failing, f"{len(failing)} cases fail in C++:\n" + "\n".join(failing[:40])
    passed_ops = {op for r in results if r.status == "pass" for op in r.ops}
    claimed = {r["op"] for r in coverage.status() if r["cpp"] and r["tested"]}
    untested = sorted(claimed - passed_ops - _only_in_ir_cases())
    assert not untested, f"core overloads with a C++ form but no passing C++ case: {untested}"


def _only_in_ir_cases() -> set[str]:
    """Overloads whose cases are IR-level (`opcases.ir_cases`: ops torch.export does not emit from eager
    code, such as sym_size), which this check does not run."""
    from fx2mlx.conformance import opcases

    return {c.overload for c in opcases.ir_cases()}
