"""Quantized linears: aten.linear over a parameter -> fx2mlx.qlinear (mx.quantized_matmul), and stacked
expert weights of a gathered matmul (fx2mlx.gather_linear, compiler/experts.py) -> fx2mlx.gather_qlinear
(mx.gather_qmm).

The weight becomes packed uint32 (out, in * bits / 32) — (E, out, in * bits / 32) for experts — with
`scales` and `biases` (out, in / group) next to it, named as mlx-lm names them (`q_proj.scales`,
`q_proj.biases`); a weight whose name does not end in `.weight` (transformers' stacked experts,
`experts.gate_up_proj`) gets `experts.gate_up_proj_scales` / `_biases`. Weights shared with another op
(e.g. an embedding tied to the output head) and weights whose input size the group size does not
divide stay in floating point. A mixture-of-experts router (a linear whose output reaches `topk` through
elementwise ops: softmax, sigmoid, casts) gets at least 8 bits, as mlx-lm quantizes routers: a 4-bit
router changes which experts run.
"""
from __future__ import annotations

from dataclasses import replace

from ..compiler import ir
from ..compiler.overrides import _c, override

# op -> (rank of its weight, the quantized op)
QUANTIZABLE = {"aten.linear.default": (2, "fx2mlx.qlinear.default"),
               "fx2mlx.gather_linear.default": (3, "fx2mlx.gather_qlinear.default")}


def quantize_linears(program: ir.Program, bits: int, group_size: int = 64) -> ir.Program:
    inputs = {i.name: i for i in program.inputs}
    uses: dict[str, int] = {}
    for n in program.nodes:
        for r in n.refs():
            uses[r.name] = uses.get(r.name, 0) + 1
    aliases = set(program.aliases.values())
    routers = _routers(program)
    new_inputs = list(program.inputs)
    nodes = []
    for n in program.nodes:
        rank, qop = QUANTIZABLE.get(n.target, (None, None))
        w = n.arg("weight", None) if rank else None
        wi = inputs.get(w.name) if isinstance(w, ir.Ref) else None
        ok = (wi is not None and wi.kind == "parameter" and uses.get(wi.name) == 1 and wi.target not in aliases
              and wi.type.rank == rank and all(isinstance(d, int) for d in wi.type.shape)
              and wi.type.shape[-1] % group_size == 0 and (wi.type.shape[-1] * bits) % 32 == 0)
        if not ok:
            nodes.append(n)
            continue
        *lead, in_f = wi.type.shape
        nb = max(bits, 8) if n.name in routers else bits
        packed = ir.Input(wi.name, wi.kind, ir.TensorType((*lead, in_f * nb // 32), "uint32"), wi.target)
        st = ir.TensorType((*lead, in_f // group_size), wi.type.dtype)
        base = wi.target[:-len(".weight")] + "." if wi.target.endswith(".weight") else wi.target + "_"
        scales = ir.Input(wi.name + "_scales", "parameter", st, base + "scales")
        biases = ir.Input(wi.name + "_biases", "parameter", st, base + "biases")
        k = new_inputs.index(wi)
        new_inputs[k:k + 1] = [packed, scales, biases]
        q = (("weight", w), ("scales", ir.Ref(scales.name)), ("biases", ir.Ref(biases.name)))
        if n.target == "aten.linear.default":
            args = (("input", n.arg("input")),) + q + (("bias", n.arg("bias")),)
        else:
            args = (("x", n.arg("x")),) + q + (("indices", n.arg("indices")),)
        nb = max(bits, 8) if n.name in routers else bits
        nodes.append(replace(n, target=qop, args=args + (("group_size", group_size), ("bits", nb))))
    return replace(program, inputs=tuple(new_inputs), nodes=tuple(nodes))


_ELEMENTWISE = ("aten._softmax.default", "aten.softmax.int", "aten.sigmoid.default", "aten._to_copy.default",
                "aten.add.Tensor", "aten.mul.Tensor", "aten.div.Tensor")


def _routers(program: ir.Program) -> set[str]:
    """Linears whose output reaches a topk through at most 4 elementwise ops."""
    nodes = program.node_map()
    found = set()
    for n in program.nodes:
        if n.target != "aten.topk.default":
            continue
        frontier = [n.arg("self")]
        for _ in range(5):
            nxt = []
            for v in frontier:
                m = nodes.get(v.name) if isinstance(v, ir.Ref) else None
                if m is None:
                    continue
                if m.target == "aten.linear.default":
                    found.add(m.name)
                elif m.target in _ELEMENTWISE:
                    nxt += [r for r in (m.arg("self", None), m.arg("other", None)) if isinstance(r, ir.Ref)]
            frontier = nxt
    return found


@override("fx2mlx.qlinear.default", tolerance=(1e-2, 1e-2))
def qlinear(node: ir.Node, a: dict) -> str:
    code = (f"mx.quantized_matmul({_c(a['input'])}, {_c(a['weight'])}, {_c(a['scales'])}, {_c(a['biases'])}, "
            f"transpose=True, group_size={a['group_size']}, bits={a['bits']})")
    return code + (f" + {_c(a['bias'])}" if a["bias"] is not None else "")
