"""Quantized linears: aten.linear over a parameter -> fx2mlx.qlinear (mx.quantized_matmul).

The weight becomes packed uint32 (out, in * bits / 32) with `scales` and `biases` (out, in / group)
next to it, named as mlx-lm names them (`q_proj.scales`, `q_proj.biases`). Weights shared with
another op (e.g. an embedding tied to the output head) and linears whose input size the group size
does not divide stay in floating point.
"""
from __future__ import annotations

from dataclasses import replace

from ..compiler import ir
from ..compiler.overrides import _c, override


def quantize_linears(program: ir.Program, bits: int, group_size: int = 64) -> ir.Program:
    inputs = {i.name: i for i in program.inputs}
    uses: dict[str, int] = {}
    for n in program.nodes:
        for r in n.refs():
            uses[r.name] = uses.get(r.name, 0) + 1
    aliases = set(program.aliases.values())
    new_inputs = list(program.inputs)
    nodes = []
    for n in program.nodes:
        w = n.arg("weight", None) if n.target == "aten.linear.default" else None
        wi = inputs.get(w.name) if isinstance(w, ir.Ref) else None
        ok = (wi is not None and wi.kind == "parameter" and uses.get(wi.name) == 1 and wi.target not in aliases
              and wi.type.rank == 2 and isinstance(wi.type.shape[1], int) and wi.type.shape[1] % group_size == 0
              and (wi.type.shape[1] * bits) % 32 == 0)
        if not ok:
            nodes.append(n)
            continue
        out_f, in_f = wi.type.shape
        prefix = wi.target.rsplit(".", 1)[0]
        packed = ir.Input(wi.name, wi.kind, ir.TensorType((out_f, in_f * bits // 32), "uint32"), wi.target)
        st = ir.TensorType((out_f, in_f // group_size), wi.type.dtype)
        scales = ir.Input(wi.name + "_scales", "parameter", st, prefix + ".scales")
        biases = ir.Input(wi.name + "_biases", "parameter", st, prefix + ".biases")
        k = new_inputs.index(wi)
        new_inputs[k:k + 1] = [packed, scales, biases]
        nodes.append(replace(n, target="fx2mlx.qlinear.default",
                             args=(("input", n.arg("input")), ("weight", w), ("scales", ir.Ref(scales.name)),
                                   ("biases", ir.Ref(biases.name)), ("bias", n.arg("bias")),
                                   ("group_size", group_size), ("bits", bits))))
    return replace(program, inputs=tuple(new_inputs), nodes=tuple(nodes))


@override("fx2mlx.qlinear.default", tolerance=(1e-2, 1e-2))
def qlinear(node: ir.Node, a: dict) -> str:
    code = (f"mx.quantized_matmul({_c(a['input'])}, {_c(a['weight'])}, {_c(a['scales'])}, {_c(a['biases'])}, "
            f"transpose=True, group_size={a['group_size']}, bits={a['bits']})")
    return code + (f" + {_c(a['bias'])}" if a["bias"] is not None else "")
