"""Golden tensors on disk: `OUT/golden/golden.safetensors` (PyTorch's values, keyed by IR value name;
elements of tuple values as `name[i]`) and `OUT/golden/index.json` (kind, dtype and shape of every
value, Python scalars inline). Written by every online check; read by `fx2mlx check OUT --offline`,
which needs neither torch nor the model's source."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .errors import GoldenError

INDEX = "index.json"
TENSORS = "golden.safetensors"
VERSION = 1


def ir_digest(out: Path) -> str:
    import hashlib

    return hashlib.sha256((Path(out) / "ir.json").read_bytes()).hexdigest()


def save_golden(folder: Path, values: dict[str, Any], dtypes: dict[str, Any], meta: dict) -> None:
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, np.ndarray] = {}
    index: dict[str, Any] = {}

    def enc(key: str, v: Any, dt: Any) -> Any:
        if isinstance(v, np.ndarray):
            tensors[key] = np.array(v, copy=True, order="C")  # (ascontiguousarray makes 0-d arrays 1-d)
            return {"kind": "tensor", "key": key, "dtype": dt or _np_name(v), "shape": list(v.shape)}
        if isinstance(v, tuple):
            dts = dt if isinstance(dt, tuple) else (None,) * len(v)
            return {"kind": "tuple", "items": [enc(f"{key}[{i}]", x, d) for i, (x, d) in enumerate(zip(v, dts))]}
        return {"kind": "scalar", "value": v}

    for name, v in values.items():
        index[name] = enc(name, v, dtypes.get(name))
    save_file(tensors, str(folder / TENSORS))
    (folder / INDEX).write_text(json.dumps({"version": VERSION, **meta, "values": index}, indent=1))


def load_golden(folder: Path) -> tuple[dict[str, Any], dict[str, Any], dict]:
    """-> (values, dtypes, meta) as `save_golden` took them."""
    from safetensors.numpy import load_file

    if not (folder / INDEX).is_file() or not (folder / TENSORS).is_file():
        raise GoldenError(f"no golden tensors in {folder}: run `fx2mlx check OUT` once where PyTorch and the "
                          "model's source are available (it stores them), then --offline works anywhere")
    doc = json.loads((folder / INDEX).read_text())
    if doc.get("version") != VERSION:
        raise GoldenError(f"{folder / INDEX}: golden format version {doc.get('version')}, expected {VERSION}")
    tensors = load_file(str(folder / TENSORS))
    values: dict[str, Any] = {}
    dtypes: dict[str, Any] = {}

    def dec(e: dict) -> tuple[Any, Any]:
        if e["kind"] == "tensor":
            return tensors[e["key"]], e["dtype"]
        if e["kind"] == "tuple":
            items = [dec(x) for x in e["items"]]
            return tuple(i[0] for i in items), tuple(i[1] for i in items)
        return e["value"], None

    for name, e in doc["values"].items():
        values[name], dtypes[name] = dec(e)
    meta = {k: v for k, v in doc.items() if k not in ("values", "version")}
    return values, dtypes, meta


def _np_name(a: np.ndarray) -> str:
    return "bool" if a.dtype == np.bool_ else str(a.dtype)
