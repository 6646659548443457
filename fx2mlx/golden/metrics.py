"""Tolerances and the comparison of one expected (PyTorch) value with one actual (MLX) value.

Pure numpy: no torch, no mlx. A floating-point value passes when
  * shapes are equal and the MLX dtype is the expected one (PyTorch's, with float32 mapped to the
    compile dtype),
  * NaN and ±Inf sit at the same positions on both sides,
  * over the finite elements, the largest error is small RELATIVE TO THE VALUE'S OWN MAGNITUDE:
        max|actual - expected| <= atol + rtol * max|expected|
    i.e. the norm-wise (max-norm) relative error max|Δ| / max|expected| is at most rtol, with atol an
    absolute floor that only decides for values that are (near) zero, max|expected| << atol / rtol.
    Rounding error scales with the magnitude of the whole tensor (a conv output whose elements reach 1e3
    has float32 round-off ~1e-4 on every element, small ones included), so an element-wise
    atol + rtol·|expected_i| flags round-off on large activations and misses real errors on small ones;
    the norm-wise bound does neither.
  * and, for values that carry signal (RMS of the expected value above atol), the cosine similarity of
    the two tensors is at least `cosine`. Scale-free too, it catches a value that is wrong as a whole
    even where a few large elements dominate max|expected|.
Integer and bool values must match exactly.

Metrics of a record: max_abs = max|Δ|, max_ref = max|expected|, rel_err = max_abs / max_ref (the norm-wise
relative error; inf when max_ref is 0 and max_abs is not), ratio = max_abs / (atol + rtol·max_ref) (the
pass criterion: <= 1 passes), cosine.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Tolerances:
    """atol: absolute floor for near-zero values; rtol: bound on max|Δ| / max|expected| (norm-wise relative
    error); cosine: minimum cosine similarity of values with signal. Pass: max|Δ| <= atol + rtol·max|expected|."""
    atol: float
    rtol: float
    cosine: float

    def as_dict(self) -> dict:
        return asdict(self)


# Defaults per compute dtype. `rtol` bounds the norm-wise relative error max|Δ| / max|expected| of every
# layer output and graph value; `atol` is the absolute floor, deciding only for values whose max|expected|
# is below ~atol/rtol (near zero). Measured on correct compiles (MiniLM with its real weights, the zoo, the
# small llama/qwen2 of tests/test_llm_golden.py, both modes, every layer and value):
# float32 (machine epsilon 1.2e-7): a dot product of K <= 4096 terms summed in another order (MLX vs
#   PyTorch, BLAS vs BLAS) differs by ~sqrt(K)*eps ~ 1e-5 of its result's magnitude; measured worst 3.6e-6
#   (MiniLM, accumulated), 1.3e-6 (llama/qwen2), <= 6e-7 (zoo). rtol = 1e-4 leaves a 30x margin, while a
#   wrong lowering or weight shows up at 1e-3..1e-2 or more. atol = 1e-6 (~8 eps) is the round-off left
#   where O(1) operands cancel to (near) zero (measured on values with max|expected| <= 1e-2: max|Δ| <= 3e-9);
#   it keeps the rule relative down to max|expected| ~ 1e-2 (atol/rtol), so a 1e-2 relative error of a
#   layer whose values are ~1e-3 (an error ~1e-5, 10x atol) is caught.
# float16 (eps 9.8e-4) and bfloat16 (eps 7.8e-3), against PyTorch's float32 values: every op rounds its
#   result to eps/2 of its magnitude, compounding over layers: rtol ~10 eps (1e-2) and ~6 eps (5e-2);
#   measured worst 2.5e-3 and 2.4e-2. atol = rtol: the same ~10 eps of an O(1) operand that cancels.
# The cosine bound (1 - cos ~ relative L2 error² / 2) allows an L2 relative error of ~1.4e-2 (float32),
#   ~4.5e-2 (float16), ~0.14 (bfloat16): a whole-tensor check that matters where a few large elements set
#   max|expected|; elsewhere the norm-wise bound is the stricter one.
DEFAULT_TOLERANCES = {
    "float32": Tolerances(atol=1e-6, rtol=1e-4, cosine=0.9999),
    "float16": Tolerances(atol=1e-2, rtol=1e-2, cosine=0.999),
    "bfloat16": Tolerances(atol=5e-2, rtol=5e-2, cosine=0.99),
}


def default_tolerances(dtype: str | None = "float32", *, atol: float | None = None, rtol: float | None = None,
                       cosine: float | None = None) -> Tolerances:
    base = DEFAULT_TOLERANCES.get(dtype or "float32", DEFAULT_TOLERANCES["float32"])
    return Tolerances(base.atol if atol is None else float(atol), base.rtol if rtol is None else float(rtol),
                      base.cosine if cosine is None else float(cosine))


def _kind(dt: str) -> str:
    if dt == "bool":
        return "bool"
    if dt.startswith(("int", "uint")):
        return "int"
    return "float"


def dtype_ok(expected: str, actual: str) -> bool:
    return expected == actual or (expected == "float64" and actual == "float32")


def compare_arrays(expected, actual, tol: Tolerances, *, expected_dtype: str | None = None,
                   actual_dtype: str | None = None) -> dict:
    """Metrics of one value. `expected`/`actual` are numpy arrays (or Python scalars); the dtypes are
    the names of each side's own dtype (numpy cannot hold bfloat16, so they are passed along)."""
    e = np.asarray(expected)
    a = np.asarray(actual)
    edt = expected_dtype or _np_dtype(e)
    adt = actual_dtype or _np_dtype(a)
    rec: dict = {"passed": True, "reason": None, "shape": list(a.shape), "expected_shape": list(e.shape),
                 "dtype": adt, "expected_dtype": edt, "max_abs": 0.0, "max_ref": 0.0, "rel_err": 0.0, "ratio": 0.0,
                 "cosine": 1.0, "nan": [0, 0], "inf": [0, 0]}
    if e.shape != a.shape:
        return _fail(rec, f"shape {tuple(a.shape)} != expected {tuple(e.shape)}", nan_metrics=True)
    reasons = []
    if not dtype_ok(edt, adt):
        reasons.append(f"dtype {adt} != expected {edt}")
    if e.size == 0:
        return _fail(rec, "; ".join(reasons)) if reasons else rec
    if np.iscomplexobj(e) or np.iscomplexobj(a):  # complex: real and imaginary parts both compared
        e, a = (np.stack([np.real(v), np.imag(v)], -1) for v in (e, a))
    if _kind(edt) != "float" and _kind(adt) != "float":
        diff = (e.astype(np.int64) != a.astype(np.int64)) if _kind(edt) == "int" else (e.astype(bool) != a.astype(bool))
        n = int(diff.sum())
        rec["max_abs"] = float(np.abs(e.astype(np.float64) - a.astype(np.float64)).max())
        rec["ratio"] = rec["rel_err"] = math.inf if n else 0.0
        rec["mismatched"] = n
        if n:
            reasons.append(f"{n} of {e.size} elements differ")
        return _fail(rec, "; ".join(reasons)) if reasons else rec
    e64 = e.astype(np.float64)
    a64 = a.astype(np.float64)
    en, an = np.isnan(e64), np.isnan(a64)
    ei, ai = np.isinf(e64), np.isinf(a64)
    rec["nan"] = [int(en.sum()), int(an.sum())]
    rec["inf"] = [int(ei.sum()), int(ai.sum())]
    mask_bad = int((en != an).sum() + (ei != ai).sum() + (ei & ai & (np.sign(e64) != np.sign(a64))).sum())
    if mask_bad:
        rec["mask_mismatch"] = mask_bad
        reasons.append(f"NaN/Inf at different positions ({mask_bad} elements; "
                       f"NaN {rec['nan'][1]} vs expected {rec['nan'][0]}, Inf {rec['inf'][1]} vs {rec['inf'][0]})")
    fin = np.isfinite(e64) & np.isfinite(a64)
    ef, af = e64[fin], a64[fin]
    if ef.size:
        d = np.abs(af - ef)
        max_abs, max_ref = float(d.max()), float(np.abs(ef).max())
        bound = tol.atol + tol.rtol * max_ref
        rec["max_abs"], rec["max_ref"] = max_abs, max_ref
        rec["rel_err"] = _div(max_abs, max_ref)
        rec["ratio"] = _div(max_abs, bound)
        # (sums, not np.dot/np.linalg.norm: BLAS threads contend with MLX's and are 100x slower here)
        ne, na = math.sqrt(float(np.sum(ef * ef))), math.sqrt(float(np.sum(af * af)))
        if ne == 0.0 and na == 0.0:
            cos = 1.0
        elif ne == 0.0 or na == 0.0:
            cos = 0.0
        else:
            cos = float(np.clip(float(np.sum(ef * af)) / (ne * na), -1.0, 1.0))
        rec["cosine"] = cos
        rms = ne / math.sqrt(ef.size)
        if rec["ratio"] > 1.0:
            reasons.append(f"max abs error {max_abs:.3g} > atol {tol.atol:g} + rtol {tol.rtol:g}·max|expected| "
                           f"({max_ref:.3g}) = {bound:.3g}: {rec['rel_err']:.3g} of the value's magnitude "
                           f"({rec['ratio']:.3g}x the tolerance)")
        if rms > tol.atol and cos < tol.cosine:
            reasons.append(f"cosine similarity {cos:.6f} < {tol.cosine}")
    return _fail(rec, "; ".join(reasons)) if reasons else rec


def _div(num: float, den: float) -> float:
    """num / den, with 0/0 = 0 and x/0 = inf."""
    if den > 0.0:
        return num / den
    return 0.0 if num == 0.0 else math.inf


def _fail(rec: dict, reason: str, nan_metrics: bool = False) -> dict:
    rec["passed"] = False
    rec["reason"] = reason
    if nan_metrics:
        rec["ratio"] = math.inf
        rec["rel_err"] = math.inf
        rec["max_abs"] = math.inf
        rec["cosine"] = 0.0
    return rec


def error_record(message: str) -> dict:
    """The record of a value the MLX side could not compute (an exception)."""
    return {"passed": False, "reason": f"error: {message}", "error": message, "shape": None, "expected_shape": None,
            "dtype": None, "expected_dtype": None, "max_abs": math.inf, "max_ref": None, "rel_err": math.inf,
            "ratio": math.inf,
            "cosine": 0.0, "nan": [0, 0], "inf": [0, 0]}


def worst(records: list[dict]) -> dict:
    """Several outputs of one layer -> one record: the worst of each metric; failing reasons joined."""
    if len(records) == 1:
        return records[0]
    out = dict(max(records, key=lambda r: (not r["passed"], _num(r["ratio"]))))
    out["max_abs"] = max(_num(r["max_abs"]) for r in records)
    out["max_ref"] = max((r["max_ref"] for r in records if r.get("max_ref") is not None), default=None)
    out["rel_err"] = max(_num(r["rel_err"]) for r in records)
    out["ratio"] = max(_num(r["ratio"]) for r in records)
    out["cosine"] = min(r["cosine"] for r in records)
    out["passed"] = all(r["passed"] for r in records)
    bad = [f"output {i}: {r['reason']}" for i, r in enumerate(records) if not r["passed"]]
    out["reason"] = "; ".join(bad) or None
    return out


def _num(x) -> float:
    return math.inf if x is None else float(x)


def _np_dtype(a: np.ndarray) -> str:
    return "bool" if a.dtype == np.bool_ else str(a.dtype)
