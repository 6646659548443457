"""mlx.nn layers in the emitted module: a PyTorch `Linear`, `Embedding` or `LayerNorm` whose parameters
and generated forward are exactly those of the mlx.nn layer is emitted as that layer (`nn.Linear(512,
2048, bias=False)`, constructed positionally as mlx-lm writes it) instead of a class of its own."""
from __future__ import annotations

import re

from .modtree import ClassDef, ModNode


def builtin_layer(m: ModNode) -> tuple[str, dict, str] | None:
    """(mlx.nn class, constructor sizes, fixed arguments) where the module is exactly that layer: the
    same parameters (names, layout) and the same forward as generated for it."""
    if m.children or m.body is None or len(m.body[0]) != 1 or m.body[1]:
        return None
    (a,), ret = m.body[0], m.body[2]
    p = {k: v[0] for k, v in m.params.items()}
    kind = m.type.rsplit(".", 1)[-1] if m.type.startswith("torch.nn.modules.") else None
    w = p.get("weight")
    if kind == "Linear" and w is not None and len(w) == 2:
        if set(p) == {"weight", "bias"} and p["bias"] == (w[0],) and ret == f"mx.addmm(self.bias, {a}, self.weight.T)":
            return "nn.Linear", {"input_dims": w[1], "output_dims": w[0]}, ""
        if set(p) == {"weight"} and ret == f"{a} @ self.weight.T":
            return "nn.Linear", {"input_dims": w[1], "output_dims": w[0]}, ", bias=False"
    if kind == "Embedding" and set(p) == {"weight"} and len(w) == 2 and ret == f"self.weight[{a}]":
        return "nn.Embedding", {"num_embeddings": w[0], "dims": w[1]}, ""
    if kind == "LayerNorm" and w is not None and len(w) == 1:
        mt = re.fullmatch(rf"mx\.fast\.layer_norm\({re.escape(a)}, self\.weight, (self\.bias|None), ([0-9.e+-]+)\)", ret)
        if mt and float(mt.group(2)) > 0:
            bias = mt.group(1) == "self.bias"
            if set(p) == ({"weight", "bias"} if bias else {"weight"}) and (not bias or p["bias"] == w):
                return "nn.LayerNorm", {"dims": w[0]}, f", eps={mt.group(2)}" + ("" if bias else ", bias=False")
    return None


def ctor_code(cls: ClassDef, args: list[tuple[str, str]]) -> str:
    """A constructor call: keyword arguments for emitted classes, positional ones for mlx.nn layers."""
    if cls.builtin:  # mlx.nn layers take their sizes positionally, as mlx-lm writes them
        return f"{cls.name}({', '.join(code for _, code in args)}{cls.suffix})"
    return f"{cls.name}({', '.join(f'{k}={code}' for k, code in args)})"
