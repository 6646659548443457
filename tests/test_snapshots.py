"""The emitted model.py of a few small models, held as reviewed snapshots.

A change to templates, tables or passes that alters generated code shows up here as a diff; if it is
intended, run `.venv/bin/python scripts/update_snapshots.py` and commit the new snapshots.
"""
import difflib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from update_snapshots import SNAPSHOTS, render  # noqa: E402


@pytest.mark.parametrize("name", SNAPSHOTS)
def test_emitted_code_matches_snapshot(name):
    expected = (ROOT / "tests" / "snapshots" / f"{name}.model.py").read_text()
    got = render(name)
    if got != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), got.splitlines(True), "snapshot", "emitted"))
        pytest.fail(f"emitted model.py for {name} changed (run scripts/update_snapshots.py if intended):\n{diff}")
