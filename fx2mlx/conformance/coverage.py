"""Op coverage against PyTorch's core ATen opset: `fx2mlx ops [--json] [--missing]`.

The target is the inference part of the core opset of the installed torch: every overload tagged
`torch.Tag.core`, minus the `*_backward` ops and `resize_`. Each overload is
  mapped     a YAML table entry lowers it (fx2mlx/op_mappings/<family>.yaml)
  override   a hand-written lowering does (fx2mlx/compiler/overrides.py)
  missing    neither (the reason, where MLX cannot express it, is in MISSING_WHY)
and `tested` when a differential test whose exported graph contains the overload passed: the core op
cases (fx2mlx/conformance/opcases.py, `tests/ops/test_core_ops.py`) or the OpInfo sweep
(`python -m fx2mlx.conformance.opinfo`), as recorded in fx2mlx/op_mappings/tested.json
(`python -m fx2mlx.conformance.opcases --record` rewrites it).
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

TESTED_JSON = Path(__file__).resolve().parent.parent / "op_mappings" / "tested.json"

# Family of the core overloads that have no table entry (mapped ones take their table file's name).
_FAMILY_HINTS = (
    ("scatter", ("scatter", "index_put", "masked_scatter", "nonzero")),
    ("sort", ("sort", "topk")),
    ("random", ("rand", "randn", "randperm", "dropout", "bernoulli")),
    ("fft", ("_fft_",)),
    ("resample", ("upsample", "grid_sampler", "col2im", "im2col")),
    ("python", ("sym_", "_local_scalar_dense")),
    ("nn", ("conv", "pool", "norm", "embedding", "cdist", "pdist", "pad")),
    ("reduction", ("sum", "mean", "var", "max", "min", "prod", "any", "all", "arg", "cum", "softmax")),
    ("creation", ("empty", "full", "zeros", "ones", "arange", "scalar_tensor", "fill", "copy")),
    ("shape", ("view", "permute", "expand", "squeeze", "slice", "select", "cat", "split", "diagonal",
               "as_strided", "flip", "repeat", "roll")),
)

# Core overloads fx2mlx does not lower, and why (shown by `fx2mlx ops --missing`).
MISSING_WHY: dict[str, str] = {}


@functools.lru_cache(maxsize=None)
def core_overloads() -> tuple[str, ...]:
    """The target: `torch.Tag.core` overloads of the installed torch minus *_backward and resize_."""
    import torch

    seen = set()
    for s in torch._C._jit_get_all_schemas():
        if not s.name.startswith("aten::"):
            continue
        name, ov = s.name[len("aten::"):], s.overload_name or "default"
        try:
            op = getattr(getattr(torch.ops.aten, name), ov)
        except (AttributeError, RuntimeError):
            continue
        if torch.Tag.core in op.tags and "_backward" not in name and name != "resize_":
            seen.add(f"aten.{name}.{ov}")
    return tuple(sorted(seen))


def all_core_overloads() -> int:
    """How many overloads torch tags core (before removing backward ops and resize_)."""
    import torch

    n = 0
    for s in torch._C._jit_get_all_schemas():
        if s.name.startswith("aten::"):
            try:
                op = getattr(getattr(torch.ops.aten, s.name[6:]), s.overload_name or "default")
            except (AttributeError, RuntimeError):
                continue
            n += torch.Tag.core in op.tags
    return n


def _family(op: str) -> str:
    name = op.split(".")[1]
    for fam, keys in _FAMILY_HINTS:
        if any(k in name for k in keys):
            return fam
    return "elementwise"


def load_tested(path: Path = TESTED_JSON) -> dict:
    if not path.exists():
        return {}
    return json.loads(path.read_text()).get("overloads", {})


def status(tested: dict | None = None) -> list[dict]:
    """One row per core overload: op, family, status, where, tested, tested_by."""
    from ..compiler.optable import default_tables
    from ..compiler.overrides import OVERRIDES

    tables = default_tables()
    tested = load_tested() if tested is None else tested
    rows = []
    for op in core_overloads():
        if op in OVERRIDES:
            st, where, fam = "override", OVERRIDES[op].where, "override"
            if op in tables:
                fam = tables[op].family
        elif op in tables:
            st, where, fam = "mapped", str(tables[op].loc), tables[op].family
        else:
            st, where, fam = "missing", MISSING_WHY.get(op, ""), _family(op)
        t = tested.get(op, {})
        rows.append({"op": op, "family": fam, "status": st, "where": where,
                     "tested": bool(t.get("pass")), "tested_by": t.get("by", [])[:5], "cpp": _has_cpp(op)})
    return rows


def _has_cpp(op: str) -> bool:
    """Whether the C++ target can emit the overload (a `cpp:` form, or an override with a C++ template)."""
    from ..compiler.optable import default_tables
    from ..compiler.overrides import OVERRIDES

    if op in OVERRIDES:
        return OVERRIDES[op].cpp is not None
    entry = default_tables().get(op)
    return bool(entry is not None and entry.cpp)


def cpp_entries() -> tuple[int, int]:
    """(table entries with a `cpp:` form, all table entries)."""
    from ..compiler.optable import default_tables

    tables = default_tables()
    return sum(bool(e.cpp) for e in tables.values()), len(tables)


def summary(rows: list[dict]) -> dict:
    out = {"target": len(rows), "core_tagged": all_core_overloads()}
    for st in ("mapped", "override", "missing"):
        out[st] = sum(r["status"] == st for r in rows)
    out["lowered"] = out["mapped"] + out["override"]
    out["beyond_core"] = _beyond_core()
    out["tested"] = sum(r["tested"] for r in rows if r["status"] != "missing")
    out["cpp"] = sum(r["cpp"] for r in rows)
    out["cpp_entries"], out["entries"] = cpp_entries()
    fams: dict[str, dict] = {}
    for r in rows:
        f = fams.setdefault(r["family"], {"mapped": 0, "override": 0, "missing": 0, "tested": 0, "cpp": 0})
        f[r["status"]] += 1
        f["tested"] += r["tested"] and r["status"] != "missing"
        f["cpp"] += r["cpp"]
    out["families"] = dict(sorted(fams.items()))
    return out


def _beyond_core() -> int:
    """Overloads lowered besides the core target (composites kept from decomposition, non-core ops)."""
    from ..compiler.optable import default_tables
    from ..compiler.overrides import OVERRIDES

    core = set(core_overloads())
    return len({k for k in list(default_tables()) + list(OVERRIDES) if k.startswith("aten.") and k not in core})


def register(app) -> None:
    import typer

    @app.command("ops")
    def ops_cmd(
        json_out: bool = typer.Option(False, "--json", help="Print the table as JSON."),
        missing: bool = typer.Option(False, "--missing", help="Only the overloads fx2mlx does not lower."),
        untested: bool = typer.Option(False, "--untested", help="Only lowered overloads without a passing test."),
        no_cpp: bool = typer.Option(False, "--no-cpp", help="Only lowered overloads the C++ target cannot emit."),
    ):
        """Coverage of PyTorch's core ATen opset (inference part): mapped / override / missing, per family."""
        rows = status()
        shown = [r for r in rows if (not missing or r["status"] == "missing")
                 and (not untested or (r["status"] != "missing" and not r["tested"]))
                 and (not no_cpp or (r["status"] != "missing" and not r["cpp"]))]
        if json_out:
            import sys

            sys.stdout.write(json.dumps({"summary": summary(rows), "ops": shown}, indent=1) + "\n")
            return
        print_table(rows, shown)


def print_table(rows: list[dict], shown: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 120))
    s = summary(rows)
    t = Table(title="core ATen opset by family", show_lines=False)
    for c in ("family", "mapped", "override", "missing", "tested", "C++"):
        t.add_column(c, justify="right" if c != "family" else "left")
    for fam, f in s["families"].items():
        t.add_row(fam, str(f["mapped"]), str(f["override"]), str(f["missing"]) if not f["missing"] else f"[red]{f['missing']}",
                  str(f["tested"]), str(f["cpp"]))
    t.add_row("[bold]total", f"[bold]{s['mapped']}", f"[bold]{s['override']}", f"[bold]{s['missing']}", f"[bold]{s['tested']}",
              f"[bold]{s['cpp']}")
    console.print(t)
    if len(shown) != len(rows):
        d = Table(show_lines=False)
        for c in ("op", "family", "status", "tested", "C++", "where / why"):
            d.add_column(c)
        for r in shown:
            d.add_row(r["op"], r["family"], r["status"], "yes" if r["tested"] else "no", "yes" if r["cpp"] else "no",
                      r["where"])
        console.print(d)
    console.print(f"{s['lowered']} of {s['target']} overloads lowered ({s['mapped']} by tables, {s['override']} by "
                  f"overrides), {s['tested']} with a passing differential test; target = the {s['core_tagged']} "
                  f"overloads torch {_torch_version()} tags core, minus *_backward and resize_. "
                  f"Beyond the core opset: {s['beyond_core']} more ATen overloads lowered. C++ target: {s['cpp']} of "
                  f"the {s['lowered']} lowered core overloads, {s['cpp_entries']} of {s['entries']} table entries have a "
                  f"C++ form (`python -m fx2mlx.conformance.cppcheck` checks them).")


def _torch_version() -> str:
    import torch

    return torch.__version__
