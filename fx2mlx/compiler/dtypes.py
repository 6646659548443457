"""Dtype names and PyTorch's type promotion, in pure Python (no torch needed after capture)."""
from __future__ import annotations

# torch dtype short name -> MLX dtype attribute
MX = {
    "bool": "bool_", "uint8": "uint8", "int8": "int8", "int16": "int16", "int32": "int32", "int64": "int64",
    "uint16": "uint16", "uint32": "uint32", "uint64": "uint64",
    "float16": "float16", "bfloat16": "bfloat16", "float32": "float32", "float64": "float64",
    "complex64": "complex64",
}
CPP = {k: ("bool_" if k == "bool" else k) for k in MX}

_ORDER = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64",
          "complex64"]


def category(dt: str) -> int:
    if dt == "bool":
        return 0
    if dt.startswith(("int", "uint")):
        return 1
    if dt.startswith(("float", "bfloat")):
        return 2
    return 3


def is_float(dt: str) -> bool:
    return category(dt) == 2


def promote_types(a: str, b: str) -> str:
    """torch.promote_types for the dtypes MLX has."""
    if a == b:
        return a
    ca, cb = category(a), category(b)
    if ca != cb:
        return a if ca > cb else b
    if {a, b} == {"float16", "bfloat16"}:
        return "float32"
    if {a, b} == {"uint8", "int8"}:
        return "int16"
    return a if _ORDER.index(a) > _ORDER.index(b) else b


def result_type(dim_dtypes: list[str], zero_dim_dtypes: list[str], scalars: list) -> str:
    """torch.result_type: dimensioned tensors win, unless a zero-dim tensor or a Python scalar is of a
    higher category (bool < int < float < complex); scalars then take the default dtype of their kind."""
    res = None
    for group in (dim_dtypes, zero_dim_dtypes):
        if not group:
            continue
        g = group[0]
        for d in group[1:]:
            g = promote_types(g, d)
        if res is None or category(g) > category(res):
            res = g
    for s in scalars:
        sd = "bool" if isinstance(s, bool) else "int64" if isinstance(s, int) else "float32"
        if res is None or category(sd) > category(res):
            res = sd
    return res or "float32"


def missing_reason(dt: str) -> str:
    """Why torch dtype `dt` has no MLX dtype (for error messages)."""
    if dt.startswith("complex"):
        return f"MLX's only complex dtype is complex64 ({dt} does not exist in MLX)"
    if dt.startswith(("float8", "float4")):
        return f"MLX has no {dt} (no 8-bit or 4-bit float dtypes; MLX quantizes with mx.quantize instead)"
    if dt.startswith(("qint", "quint")):
        return f"PyTorch's quantized dtype {dt} has no MLX counterpart"
    return f"MLX has no {dt} dtype (its dtypes: {', '.join(MX)})"
