"""Differential tests of the core ATen opset: every case in fx2mlx.conformance.opcases (exported, compiled, run and
compared with PyTorch), and coverage: every core overload fx2mlx lowers has a passing case.

The cases are checked together (one export per batch of calls, see fx2mlx.conformance.opcheck) by a module-scoped
fixture; each case is then its own test item.
"""
import json

import pytest

from fx2mlx.conformance import coverage, opcases
from fx2mlx.conformance.opcheck import check_calls, check_ir

CALLS = {c.name: c for c in opcases.all_cases()}
IRS = {c.name: c for c in opcases.ir_cases()}


@pytest.fixture(scope="module")
def results():
    out = {r.name: r for r in check_calls(list(CALLS.values()))}
    for c in IRS.values():
        out[c.name] = check_ir(c.name, c.overload, c.args, c.kwargs, compare=c.compare)
    return out


@pytest.mark.parametrize("name", sorted(CALLS) + sorted(IRS))
def test_case(results, name):
    r = results[name]
    assert r.status == "pass", f"{r.status}: {r.reason} (graph ops: {list(r.ops)})"


def test_every_lowered_core_overload_has_a_passing_case(results):
    tested = opcases.tested_map(list(results.values()))
    rows = coverage.status(tested)
    untested = [r["op"] for r in rows if r["status"] != "missing" and not r["tested"]]
    assert not untested, f"core overloads lowered but not covered by a passing case: {untested}"


def test_tested_json_is_current(results):
    """fx2mlx/op_mappings/tested.json (read by `fx2mlx ops`) agrees with the cases: regenerate it with
    `python -m fx2mlx.conformance.opcases --record` when this fails."""
    recorded = coverage.load_tested()
    now = opcases.tested_map(list(results.values()))
    stale = [op for op, v in now.items() if v["pass"] and not recorded.get(op, {}).get("pass")]
    assert not stale, f"tested.json misses passing overloads {stale}; run python -m fx2mlx.conformance.opcases --record"


def test_ops_command_json(capsys):
    from fx2mlx.cli import main

    assert main(["ops", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    s = doc["summary"]
    assert s["target"] == len(coverage.core_overloads()) == 185
    assert s["mapped"] + s["override"] + s["missing"] == s["target"]
    assert s["mapped"] + s["override"] >= 180
    assert s["tested"] >= 180
    assert {r["op"] for r in doc["ops"]} == set(coverage.core_overloads())
