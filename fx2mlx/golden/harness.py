"""The golden check: PyTorch's values vs the emitted MLX model, per layer and per value, in two modes;
the first divergence named by module path, op, table entry (or override) and the user's source line.

`run_check` takes PyTorch's values (computed now, or loaded from OUT/golden for --offline) and returns
the report (a JSON-able dict, written to OUT/golden/report.json by the caller).
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..compiler import ir
from ..compiler.modtree import Call
from . import mlx_side
from .metrics import Tolerances, compare_arrays, error_record, worst

MODES = ("accumulated", "isolated")
REPORT_VERSION = 2  # 2: norm-wise rule (max_ref, rel_err; ratio = max|Δ| / (atol + rtol·max_ref))


def _source(node: ir.Node | None) -> dict | None:
    if node is None or node.source is None:
        return None
    s = node.source
    return {"file": s.file, "line": s.line, "function": s.function, "code": s.code, "where": str(s)}


def _compare(expected, e_dt, actual, a_dt, tol: Tolerances, want_dt) -> dict:
    if isinstance(actual, str):
        return error_record(actual)
    if isinstance(expected, tuple) or isinstance(actual, tuple):
        if not (isinstance(expected, tuple) and isinstance(actual, tuple)) or len(expected) != len(actual):
            return error_record(f"structure differs: expected {type(expected).__name__} of "
                                f"{len(expected) if isinstance(expected, tuple) else 1}")
        e_dts = e_dt if isinstance(e_dt, tuple) else (None,) * len(expected)
        a_dts = a_dt if isinstance(a_dt, tuple) else (None,) * len(actual)
        w_dts = want_dt if isinstance(want_dt, tuple) else (None,) * len(expected)
        recs = [_compare(e, ed, a, ad, tol, wd) for e, ed, a, ad, wd in zip(expected, e_dts, actual, a_dts, w_dts)
                if isinstance(e, np.ndarray)]
        return worst(recs) if recs else {"passed": True, "reason": None}
    return compare_arrays(expected, actual, tol, expected_dtype=want_dt or e_dt, actual_dtype=a_dt)


class _Checker:
    def __init__(self, c: mlx_side.CompiledOutput, expected: dict, torch_dtypes: dict, tol: Tolerances):
        self.c = c
        self.expected = expected
        self.tdt = torch_dtypes
        self.tol = tol
        self.nodes = c.program.node_map()
        self.index = {n.name: i for i, n in enumerate(c.program.nodes)}

    def want_dtype(self, name: str):
        dt = self.tdt.get(name)
        if isinstance(dt, tuple):
            return tuple(self.c.mlx_dtype(d) for d in dt)
        return self.c.mlx_dtype(dt)

    def compare_value(self, name: str, actual) -> dict:
        if isinstance(actual, str):
            return error_record(actual)
        host, adt = mlx_side.to_host(actual)
        return _compare(self.expected[name], self.tdt.get(name), host, adt, self.tol, self.want_dtype(name))


def run_check(out: Path, expected: dict[str, Any], torch_dtypes: dict[str, Any], tol: Tolerances, *,
              modes: tuple[str, ...] = MODES, values: bool = True, compiled: mlx_side.CompiledOutput | None = None,
              meta: dict | None = None) -> dict:
    t0 = time.perf_counter()
    c = compiled or mlx_side.open_output(out)
    ck = _Checker(c, expected, torch_dtypes, tol)
    program = c.program
    missing = [i.name for i in program.user_inputs if i.name not in expected and i.type is not None]
    if missing:
        from .errors import GoldenError

        raise GoldenError(f"the golden values have no input {', '.join(missing)}")
    fallback: dict[str, Any] = {}  # MLX accumulated values of names PyTorch does not have (pseudo-ops)
    feed = mlx_side.feeder(c, expected, torch_dtypes, fallback)
    inputs = [feed(i.name) for i in program.user_inputs]  # a non-tensor input (KV cache): None, plain forward
    acc_values = None
    needed = {r.name for n in program.nodes for r in n.refs()} | {v for call in c.calls for v in call.inputs}
    node_names = {n.name for n in program.nodes}
    if c.codes is not None and any(v not in expected and v in node_names for v in needed):
        acc_values = mlx_side.run_values_accumulated(c, inputs)
        fallback.update(acc_values)
    calls = c.calls
    depth = {id(c0): _depth(c0) for c0 in calls}
    raw_layers: dict[str, dict] = {}
    raw_values: dict[str, dict] = {}
    model_out: dict[str, Any] = {}
    timings = {}
    for mode in modes:
        t = time.perf_counter()
        if mode == "accumulated":
            raw_layers[mode], model_out[mode] = mlx_side.run_layers_accumulated(c, inputs)
        else:
            raw_layers[mode] = mlx_side.run_layers_isolated(c, feed)
        if values and c.codes is not None:
            run = mlx_side.run_values_accumulated if mode == "accumulated" else mlx_side.run_values_isolated
            if mode == "accumulated" and acc_values is not None:
                raw_values[mode] = acc_values
            else:
                raw_values[mode] = run(c, inputs) if mode == "accumulated" else run(c, feed)
        timings[mode] = round(time.perf_counter() - t, 3)

    # -- layer records ---------------------------------------------------------------------------
    layers = []
    for call in calls:
        if not call.outputs:
            continue
        if not any(o in expected for o in call.outputs):
            continue  # only fx2mlx pseudo-op outputs (e.g. RoPE tables): PyTorch has no value to compare
        order = max(ck.index.get(o, -1) for o in call.outputs)
        node_names = [n.name for n in call.nodes()]
        out_node = ck.nodes.get(call.outputs[-1]) if call.outputs else None
        rec = {"key": call.key, "path": call.path, "type": call.type_name, "qualname": call.type,
               "call": sum(1 for x in calls[: calls.index(call)] if x.path == call.path),
               "leaf": not any(True for _ in call.walk()), "depth": depth[id(call)],
               "order": order, "start": min((ck.index[n] for n in node_names), default=order),
               "inputs": list(call.inputs), "outputs": list(call.outputs),
               "op": out_node.target if out_node else None, "value": out_node.name if out_node else None,
               "origin": c.origin(out_node) if out_node else None, "source": _source(out_node)}
        for mode in modes:
            got = raw_layers[mode].get(call.key)
            if isinstance(got, str) or got is None:
                rec[mode] = error_record(got or "not run")
            else:
                rec[mode] = worst([ck.compare_value(o, g) for o, g in zip(call.outputs, got) if o in expected])
        rec["passed"] = all(rec[m]["passed"] for m in modes)
        layers.append(rec)
    if "accumulated" in modes:
        layers.append(_output_record(ck, model_out["accumulated"], modes))
    layers.sort(key=lambda r: (r["order"], -r["depth"]))
    for i, r in enumerate(layers):
        r["index"] = i

    # -- value records ---------------------------------------------------------------------------
    value_recs = []
    if raw_values:
        for n in program.nodes:
            exp = expected.get(n.name)
            if not isinstance(exp, np.ndarray):
                continue  # tuples are checked through their getitem nodes; Python scalars are not tensors
            rec = {"name": n.name, "op": n.target, "path": n.module_path, "order": ck.index[n.name],
                   "origin": c.origin(n), "source": _source(n)}
            for mode in raw_values:
                rec[mode] = ck.compare_value(n.name, raw_values[mode][n.name])
            rec["passed"] = all(rec[m]["passed"] for m in raw_values)
            value_recs.append(rec)

    first = {m: _first_divergence(m, layers, value_recs, c, ck) for m in modes}
    passed = all(r["passed"] for r in layers) and all(r["passed"] for r in value_recs)
    leaf = [r for r in layers if r.get("leaf") and r["key"] != "<output>"]
    summary = {"layers": len([r for r in layers if r["key"] != "<output>"]), "leaf_layers": len(leaf),
               "values": len(value_recs)}
    for m in modes:
        summary[m] = {
            "failed_layers": sum(1 for r in layers if not r[m]["passed"] and r["key"] != "<output>"),
            "outputs_passed": all(r[m]["passed"] for r in layers if r["key"] == "<output>"),
            "failed_values": sum(1 for r in value_recs if m in r and not r[m]["passed"]),
            "worst_max_abs": max((_finite(r[m]["max_abs"]) for r in layers), default=0.0),
            "worst_rel_err": max((_finite(r[m]["rel_err"]) for r in layers), default=0.0),
            "worst_ratio": max((_finite(r[m]["ratio"]) for r in layers), default=0.0),
            "min_cosine": min((r[m]["cosine"] for r in layers), default=1.0),
        }
    return {
        "version": REPORT_VERSION, "fx2mlx": __version__, "out": str(Path(out).resolve()),
        "source": c.manifest.get("source"), "dtype": c.dtype, **(meta or {}),
        "modes": list(modes), "tolerances": tol.as_dict(), "passed": passed, "summary": summary,
        "first_divergence": first, "layers": layers, "values": value_recs,
        "notes": [f"per-value checks skipped: lowering {out}/ir.json again failed: {c.lower_error}"]
        if c.lower_error else [],
        "timings": {**timings, "total": round(time.perf_counter() - t0, 3)},
    }


def _finite(x) -> float:
    return float(x) if x is not None and math.isfinite(x) else math.inf


def _depth(call: Call) -> int:
    d = 0
    while call.parent is not None:
        d, call = d + 1, call.parent
    return d


def _output_record(ck: _Checker, result, modes) -> dict:
    """The model's return value (accumulated only), as one more 'layer' at the end."""
    prog = ck.c.program
    names = [o.name if isinstance(o, ir.Ref) else None for o in prog.outputs]
    rec = {"key": "<output>", "path": "<output>", "type": mlx_side.root_type(prog).rsplit(".", 1)[-1],
           "qualname": mlx_side.root_type(prog), "call": 0, "leaf": False, "depth": -1,
           "order": len(prog.nodes), "start": 0, "inputs": [], "outputs": [n for n in names if n],
           "op": None, "value": None, "origin": None, "source": None}
    if isinstance(result, str):
        rec["accumulated"] = error_record(result)
    else:
        try:
            flat = mlx_side.flatten_output(prog.out_spec, result)
            recs = [ck.compare_value(n, v) for n, v in zip(names, flat) if n is not None and isinstance(ck.expected.get(n), np.ndarray)]
            rec["accumulated"] = worst(recs) if recs else {"passed": True, "reason": None, "max_abs": 0.0,
                                                           "ratio": 0.0, "cosine": 1.0, "max_ref": None,
                                                           "rel_err": 0.0}
        except Exception as e:  # noqa: BLE001
            rec["accumulated"] = error_record(f"cannot read the model's outputs: {type(e).__name__}: {e}")
    if "isolated" in modes:
        rec["isolated"] = {"passed": True, "reason": "not applicable (the whole model is the accumulated run)",
                           "max_abs": 0.0, "max_ref": None, "rel_err": 0.0, "ratio": 0.0, "cosine": 1.0,
                           "na": True}
    rec["passed"] = all(rec[m]["passed"] for m in modes)
    return rec


def _first_divergence(mode: str, layers: list[dict], values: list[dict], c, ck: _Checker) -> dict | None:
    """The first failing layer in execution order (a layer completes at its last output; a nested layer
    before its parent), unless a value outside every module call fails earlier. The op named is the first
    value inside that layer that fails when fed PyTorch's inputs (isolated), else the first that fails in
    this mode, else the op producing the layer's output."""
    bad_layers = [r for r in layers if not r[mode]["passed"]]
    in_call = {n.name for call in c.calls for n in call.nodes()}
    bad_root_values = [v for v in values if mode in v and not v[mode]["passed"] and v["name"] not in in_call]
    layer = bad_layers[0] if bad_layers else None
    value = bad_root_values[0] if bad_root_values else None
    if layer is None and value is None:
        return None
    if layer is not None and (value is None or layer["order"] <= value["order"]):
        culprit = None
        if layer["key"] != "<output>":
            call = next(x for x in c.calls if x.key == layer["key"])
            names = {n.name for n in call.nodes()}
        else:
            names = {n.name for n in c.program.nodes}
        for m in ("isolated", mode):
            culprit = next((v for v in values if v["name"] in names and m in v and not v[m]["passed"]), None)
            if culprit is not None:
                break
        node = ck.nodes.get(culprit["name"] if culprit else (layer["value"] or ""))
        metrics = layer[mode]
        kind, path, typ = "layer", layer["path"], layer["type"]
    else:
        node = ck.nodes[value["name"]]
        metrics = value[mode]
        kind, path, typ = "value", value["path"] or "<root>", None
        culprit = value
    return {"mode": mode, "kind": kind, "path": path, "type": typ,
            "key": layer["key"] if kind == "layer" else None,
            "index": layer["index"] if kind == "layer" else None,
            "value": node.name if node else None, "op": node.target if node else None,
            "origin": c.origin(node) if node else None, "source": _source(node),
            "op_metrics": _brief(culprit[("isolated" if "isolated" in culprit else mode)]) if culprit else None,
            "max_abs": metrics.get("max_abs"), "max_ref": metrics.get("max_ref"), "rel_err": metrics.get("rel_err"),
            "ratio": metrics.get("ratio"),
            "cosine": metrics.get("cosine"), "reason": metrics.get("reason")}


def _brief(m: dict) -> dict:
    return {k: m.get(k) for k in ("max_abs", "max_ref", "rel_err", "ratio", "cosine", "reason")}


# --------------------------------------------------------------------------------------------------
# the message
# --------------------------------------------------------------------------------------------------
def failure_message(report: dict) -> str:
    tol = report["tolerances"]
    s = report["summary"]
    counts = "; ".join(f"{m}: {s[m]['failed_layers']} of {s['layers']} layers"
                       + (f", {s[m]['failed_values']} of {s['values']} values" if s["values"] else "")
                       + ("" if s[m].get("outputs_passed", True) else ", model outputs")
                       for m in report["modes"])
    lines = [f"golden check failed ({counts}) out of tolerance "
             f"(max|Δ| <= atol {tol['atol']:g} + rtol {tol['rtol']:g}·max|PyTorch| per value, cosine >= {tol['cosine']})"]
    for m in report["modes"]:
        fd = report["first_divergence"].get(m)
        if fd is None:
            continue
        what = f"layer {fd['path']} ({fd['type']})" if fd["kind"] == "layer" else f"value at {fd['path']}"
        lines.append(f"first divergence [{m}]: {what}")
        lines.append(f"    {fd['reason']}")
        if fd["op"]:
            lines.append(f"    op {fd['op']} (value {fd['value']})" + (f" from {fd['origin']}" if fd["origin"] else ""))
        src = fd.get("source")
        if src:
            lines.append(f"    at {src['where']}" + (f": {src['code']}" if src.get("code") else ""))
    return "\n".join(lines)
