"""What op-table templates see: values that render as code, and a few helpers for PyTorch semantics
that one Jinja expression cannot say well (slicing, padding widths, expand sizes).

Helpers return `Code` (rendered as is); every other value is rendered by `py_code`.
"""
from __future__ import annotations

import math
from typing import Any

from . import dtypes, ir

INT64_MAX = 2**63 - 1


class Code(str):
    """A string that is already code."""


class V:
    """A tensor or SymInt argument inside a template: renders as code; carries PyTorch's type."""

    __slots__ = ("code", "type", "name")

    def __init__(self, code: str, type_: ir.ValueType, name: str):
        self.code, self.type, self.name = code, type_, name

    def __str__(self) -> str:
        return self.code

    @property
    def is_tensor(self) -> bool:
        return isinstance(self.type, ir.TensorType)

    @property
    def shape(self):
        return self.type.shape if self.is_tensor else ()

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def dtype(self) -> str:
        if self.is_tensor:
            return self.type.dtype
        return {"int": "int64", "float": "float32", "bool": "bool"}.get(getattr(self.type, "kind", ""), "float32")

    @property
    def is_float(self) -> bool:
        return dtypes.is_float(self.dtype)

    @property
    def is_integral(self) -> bool:
        """bool or an integer dtype (MLX's matmul takes neither)."""
        return dtypes.category(self.dtype) <= 1


class Out:
    def __init__(self, t: ir.ValueType):
        self.type = t

    @property
    def shape(self):
        return self.type.shape if isinstance(self.type, ir.TensorType) else ()

    @property
    def rank(self):
        return len(self.shape)

    @property
    def dtype(self):
        return self.type.dtype if isinstance(self.type, ir.TensorType) else None


def py_code(v: Any) -> str:
    """Render a template value as Python code."""
    if isinstance(v, Code):
        return str(v)
    if isinstance(v, V):
        return v.code
    if isinstance(v, ir.DType):
        return f"mx.{dtypes.MX[v.name]}"
    if isinstance(v, bool) or v is None:
        return repr(v)
    if isinstance(v, float):
        if math.isinf(v):
            return "math.inf" if v > 0 else "-math.inf"
        if math.isnan(v):
            return "math.nan"
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(py_code(x) for x in v) + "]"
    if isinstance(v, str):
        return repr(v)
    return str(v)


def cpp_code(v: Any) -> str:
    """Render a template value as C++ code."""
    if isinstance(v, Code):
        return str(v)
    if isinstance(v, V):
        return v.code
    if isinstance(v, ir.DType):
        return f"mx::{dtypes.CPP[v.name]}"
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "std::nullopt"
    if isinstance(v, float):
        if math.isinf(v):
            return "INFINITY" if v > 0 else "-INFINITY"
        if math.isnan(v):
            return "NAN"
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "{" + ", ".join(cpp_code(x) for x in v) + "}"
    if isinstance(v, str):
        return '"' + v + '"'
    return str(v)


# -- helpers available in templates -----------------------------------------------------------------
def mx_dtype(d) -> Code:
    name = d.name if isinstance(d, ir.DType) else d.dtype if isinstance(d, (V, Out)) else str(d)
    return Code(f"mx.{dtypes.MX[name]}")


def cpp_dtype(d) -> Code:
    name = d.name if isinstance(d, ir.DType) else d.dtype if isinstance(d, (V, Out)) else str(d)
    return Code(f"mx::{dtypes.CPP[name]}")


def axes(dims) -> Code:
    """A dim list as an MLX `axis=` value; None or [] means all axes (PyTorch reductions)."""
    if dims is None or (isinstance(dims, (list, tuple)) and len(dims) == 0):
        return Code("None")
    if isinstance(dims, (list, tuple)):
        return Code("[" + ", ".join(py_code(d) for d in dims) + "]")
    return Code(py_code(dims))


def pos(d: int, rank: int) -> int:
    """A non-negative dim."""
    return d + rank if isinstance(d, int) and d < 0 else d


def tuple_of(v, n: int) -> list:
    if isinstance(v, (list, tuple)):
        return list(v) * n if len(v) == 1 else list(v)
    return [v] * n


def _bound(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, int) and (v >= INT64_MAX or v <= -INT64_MAX):
        return None
    return py_code(v)


def slice_index(x: V, dim: int, start=None, end=None, step=1) -> Code:
    """`x[:, a:b:c]` for aten.slice.Tensor."""
    d = pos(dim, x.rank)
    s, e = _bound(start), _bound(end)
    if s == "0":
        s = None
    part = f"{s or ''}:{e or ''}" + (f":{py_code(step)}" if step not in (1, None) else "")
    return Code(f"{x.code}[{', '.join([':'] * d + [part])}]")


def select_index(x: V, dim: int, index) -> Code:
    d = pos(dim, x.rank)
    return Code(f"{x.code}[{', '.join([':'] * d + [py_code(index)])}]")


def advanced_index(x: V, indices: list) -> Code:
    """`x[i0, :, i2]` for aten.index.Tensor (None entries are full slices)."""
    parts = [":" if i is None else py_code(i) for i in indices]
    while parts and parts[-1] == ":":
        parts.pop()
    return Code(f"{x.code}[{', '.join(parts)}]" if parts else x.code)


def pad_width(pad: list, rank: int) -> Code:
    """PyTorch's pad list (last dim first, (before, after) pairs) -> MLX pad_width for all axes."""
    pairs = [(0, 0)] * rank
    for i in range(len(pad) // 2):
        pairs[rank - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return Code("[" + ", ".join(f"({py_code(a)}, {py_code(b)})" for a, b in pairs) + "]")


def expand_shape(x: V, size: list) -> Code:
    """aten.expand sizes with -1 replaced by the input's size."""
    off = len(size) - x.rank
    out = []
    for i, s in enumerate(size):
        if isinstance(s, int) and s == -1:
            d = x.shape[i - off]
            out.append(str(d) if isinstance(d, int) else f"{x.code}.shape[{i - off}]")
        else:
            out.append(py_code(s))
    return Code("[" + ", ".join(out) + "]")


def split_points(sizes: list) -> Code:
    """split_with_sizes -> the cut indices MLX's split takes."""
    pts, acc = [], 0
    for s in sizes[:-1]:
        acc = f"{acc} + {py_code(s)}" if not isinstance(s, int) or not isinstance(acc, int) else acc + s
        pts.append(acc)
    return Code("[" + ", ".join(str(p) for p in pts) + "]")


def squeeze_dims(x: V, dims) -> Code:
    """PyTorch squeezes only dims of size 1; MLX raises for others."""
    if dims is None:
        ds = [i for i, d in enumerate(x.shape) if d == 1]
    else:
        ds = [pos(d, x.rank) for d in (dims if isinstance(dims, (list, tuple)) else [dims])
              if x.rank > 0 and x.shape[pos(d, x.rank)] == 1]
    return Code(py_code(ds))


def sym(v) -> Code:
    """A SymInt/Scalar argument as Python code."""
    return Code(py_code(v))


def red_axes(x, dims) -> Code:
    """`axis=` of a reduction over dims of x; a 0-d tensor (where PyTorch accepts dim 0 or -1) reduces
    over its (no) axes, i.e. None."""
    if isinstance(x, (V, Out)) and x.rank == 0:
        return Code("None")
    return axes(dims)


def cat_inputs(tensors) -> Code:
    """aten.cat's inputs minus PyTorch's legacy empty (0,) tensors, which cat skips whatever the dim."""
    keep = [t for t in tensors if not (isinstance(t, V) and t.shape == (0,))] if \
        any(isinstance(t, V) and t.rank > 1 for t in tensors) else list(tensors)
    return Code("[" + ", ".join(py_code(t) for t in (keep or tensors)) + "]")


def is_empty(x) -> bool:
    """True when a tensor has a static zero-size dimension (no elements)."""
    return isinstance(x, (V, Out)) and any(isinstance(d, int) and d == 0 for d in x.shape)


def full_out(out: Out, value) -> Code:
    """`mx.full` of the op's own result shape and dtype: the result of reducing no elements. (MLX 0.32's
    CPU reductions over zero elements sometimes never finish, so forms emit the identity instead.)"""
    shape = "(" + "".join(f"{py_code(d)}, " for d in out.shape) + ")"
    if isinstance(value, str):  # "nan", "inf", "-inf"
        value = float(value)
    return Code(f"mx.full({shape}, {py_code(value)}, dtype={mx_dtype(out)})")


def is_int(v) -> bool:
    """A Python int (not bool) or a SymInt value: arange/linspace with such arguments are exact."""
    if isinstance(v, V):
        return not v.is_tensor and getattr(v.type, "kind", "") == "int"
    return isinstance(v, int) and not isinstance(v, bool)


HELPERS = {
    "mx_dtype": mx_dtype, "cpp_dtype": cpp_dtype, "axes": axes, "pos": pos, "tuple_of": tuple_of,
    "slice_index": slice_index, "select_index": select_index, "advanced_index": advanced_index,
    "pad_width": pad_width, "expand_shape": expand_shape, "split_points": split_points,
    "squeeze_dims": squeeze_dims, "sym": sym, "is_empty": is_empty, "full_out": full_out,
    "red_axes": red_axes, "cat_inputs": cat_inputs, "is_int": is_int,
}
TEMPLATE_NAMES = set(HELPERS) | {"out"}
