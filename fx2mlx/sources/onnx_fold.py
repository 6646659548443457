"""Fold an ONNX graph's shape arithmetic for the example input sizes.

Exporters write `Shape -> Gather -> Concat -> Reshape` chains; onnx2torch turns them into tensors whose
values decide other tensors' shapes, which torch.export cannot trace. Where the graph has such chains,
fx2mlx fixes the inputs' sizes (the example's), infers every value's shape, replaces each `Shape` of a
fully known shape by a constant and evaluates every node whose inputs are all constant (onnx's reference
evaluator), leaving the rest. The folded graph is exact for those input sizes only, so the compiled model
is static there (recorded in the manifest); a graph without shape arithmetic keeps its dynamic axes.
"""
from __future__ import annotations

import numpy as np
import torch

NONDETERMINISTIC = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
                    "Bernoulli"}


def has_shape_arithmetic(model) -> bool:
    return any(n.op_type in ("Shape", "Size") for n in model.graph.node)


def fold_shapes(model, shapes: dict[str, tuple]):
    """A copy of `model` with its inputs fixed to `shapes` and its constant sub-graphs evaluated."""
    import onnx
    from onnx import helper, numpy_helper, shape_inference
    from onnx.reference import ReferenceEvaluator

    model = onnx.ModelProto.FromString(model.SerializeToString())
    for inp in model.graph.input:
        if inp.name in shapes:
            for d, size in zip(inp.type.tensor_type.shape.dim, shapes[inp.name]):
                d.Clear()
                d.dim_value = int(size)
    inferred = shape_inference.infer_shapes(model, data_prop=True)
    known = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape") and \
                all(d.HasField("dim_value") for d in dims):
            known[vi.name] = [d.dim_value for d in dims]
    consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    kept, opsets = [], {o.domain: o.version for o in model.opset_import}
    for node in model.graph.node:
        ins = [i for i in node.input if i]
        value = None
        if node.op_type == "Shape" and ins[0] in known:
            shape = np.array(known[ins[0]], dtype=np.int64)
            a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
            value = [shape[a.get("start", 0):a.get("end", len(shape))]]
        elif node.op_type == "Size" and ins[0] in known:
            value = [np.array(int(np.prod(known[ins[0]])), dtype=np.int64)]
        elif node.op_type not in NONDETERMINISTIC and node.domain in ("", "ai.onnx") and not any(
                a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute) \
                and all(i in consts for i in ins):
            value = _evaluate(node, consts, opsets, ReferenceEvaluator, helper)
        if value is None:
            kept.append(node)
            continue
        for name, v in zip(node.output, value):
            if name:
                consts[name] = np.asarray(v)
    used = {i for n in kept for i in n.input} | {o.name for o in model.graph.output}
    del model.graph.node[:]
    model.graph.node.extend(kept)
    old = {i.name for i in model.graph.initializer}
    for name in sorted(used & set(consts) - old):
        model.graph.initializer.append(numpy_helper.from_array(consts[name], name))
    live = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(live)
    del model.graph.value_info[:]
    return model


def _evaluate(node, consts, opsets, ReferenceEvaluator, helper):
    from onnx import numpy_helper

    ins = [i for i in node.input if i]
    graph = helper.make_graph([node], "fold", [], [helper.make_empty_tensor_value_info(o) for o in node.output if o],
                              [numpy_helper.from_array(consts[i], i) for i in set(ins)])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()])
    try:
        return ReferenceEvaluator(m).run(None, {})
    except Exception:  # noqa: BLE001 - an op the reference evaluator lacks: leave the node to onnx2torch
        return None


class OnnxStatic(torch.nn.Module):
    """An ONNX shape op whose shape/axes input is a constant of the (folded) graph, as plain Python ints:
    torch.export traces these, while onnx2torch's modules read the values from a tensor at run time."""

    def __init__(self, op: str, values: list[int], axis: int = 0):
        super().__init__()
        self.op, self.values, self.axis = op, [int(v) for v in values], axis

    def forward(self, x):
        if self.op == "Squeeze":
            return x.squeeze(tuple(a % x.dim() for a in self.values))
        if self.op == "Reshape":  # ONNX: 0 copies the input's size (allowzero=0), -1 is inferred
            return x.reshape([x.shape[k] if v == 0 else v for k, v in enumerate(self.values)])
        if self.op == "Expand":
            return x.expand(torch.broadcast_shapes(tuple(x.shape), tuple(self.values)))
        if self.op == "Split":
            return tuple(x.split(self.values, dim=self.axis))
        raise AssertionError(self.op)


def static_converter(op: str, fallback):
    """A converter that makes `OnnxStatic` when input 1 is a constant initializer, else `fallback`."""

    def convert(node, graph):
        from onnx2torch.utils.common import OnnxMapping, OperationConverterResult

        ins = node.input_values
        allowzero = node.attributes.get("allowzero", 0)
        if len(ins) > 1 and ins[1] in graph.initializers and not allowzero:
            values = graph.initializers[ins[1]].to_torch().reshape(-1).tolist()
            return OperationConverterResult(OnnxStatic(op, values, node.attributes.get("axis", 0)),
                                            OnnxMapping(inputs=(ins[0],), outputs=tuple(node.output_values)))
        return fallback(node, graph)

    return convert


def register_static() -> None:
    from onnx2torch.node_converters import registry

    for key, conv in list(registry._CONVERTER_REGISTRY.items()):  # noqa: SLF001 - no public way to override
        if key.domain == "" and key.operation_type in ("Squeeze", "Reshape", "Expand", "Split") and \
                not getattr(conv, "_fx2mlx", False) and not (key.operation_type in ("Squeeze", "Split") and key.version < 13):
            new = static_converter(key.operation_type, conv)
            new._fx2mlx = True
            registry._CONVERTER_REGISTRY[key] = new  # noqa: SLF001
