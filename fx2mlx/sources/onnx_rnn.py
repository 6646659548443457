"""ONNX LSTM and GRU nodes as torch.nn.LSTM / nn.GRU, registered with onnx2torch (which has neither).

ONNX packs the gates of W, R, B as (i, o, f, c) for LSTM and (z, r, h) for GRU; torch as (i, f, g, o) and
(r, z, n). The converters reorder them once; options torch has no equivalent for (peepholes, clip,
non-default activations, input_forget, sequence_lens, GRU linear_before_reset=0, weights computed at run
time) are refused by `unsupported_reason`, which fx2mlx calls on every node before converting so that all
problems of a file are listed at once.
"""
from __future__ import annotations

import torch
from torch import nn

LSTM_ORDER = (0, 2, 3, 1)  # torch (i, f, g, o) from ONNX (i, o, f, c)
GRU_ORDER = (1, 0, 2)  # torch (r, z, n) from ONNX (z, r, h)
DEFAULT_ACTIVATIONS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}


def unsupported_reason(node, graph) -> str | None:
    """Why this LSTM/GRU node cannot become an nn.LSTM/nn.GRU (None: it can)."""
    a = node.attributes
    ins = list(node.input_values) + [""] * 8
    kind = node.operation_type
    if any(n and n not in graph.initializers for n in ins[1:4]):
        return "weights W, R, B computed at run time (only constant initializers are supported)"
    if ins[4]:
        return "sequence_lens input (variable lengths per batch row)"
    if kind == "LSTM" and ins[7]:
        return "peephole weights P"
    if a.get("clip") is not None:
        return "clip attribute"
    acts = a.get("activations")
    if acts is not None and [str(x).lower() for x in acts] != [x.lower() for x in DEFAULT_ACTIVATIONS[kind]] * (
            2 if a.get("direction", "forward") == "bidirectional" else 1):
        return f"activations {list(acts)}"
    if a.get("input_forget", 0):
        return "input_forget=1"
    if kind == "GRU" and not a.get("linear_before_reset", 0):
        return "linear_before_reset=0 (torch's GRU applies the reset gate after the recurrent linear)"
    if bool(ins[5]) != bool(ins[6]) and kind == "LSTM":
        return "only one of initial_h and initial_c"
    return None


def _init(graph, name, shape):
    return graph.initializers[name].to_torch() if name else torch.zeros(shape)


class OnnxRNN(nn.Module):
    """An ONNX LSTM/GRU node: nn.LSTM/nn.GRU plus the ONNX layouts of inputs and outputs.
    Y is (seq, num_directions, batch, hidden) for layout 0, (batch, seq, num_directions, hidden) for 1."""

    def __init__(self, rnn: nn.Module, layout: int, reverse: bool, num_outputs: int):
        super().__init__()
        self.rnn, self.layout, self.reverse, self.num_outputs = rnn, layout, reverse, num_outputs

    def forward(self, x, h0=None, c0=None):
        if self.layout == 1:  # (batch, seq, in) -> (seq, batch, in); states (batch, dirs, H) -> (dirs, batch, H)
            x = x.transpose(0, 1)
            h0 = h0.transpose(0, 1) if h0 is not None else None
            c0 = c0.transpose(0, 1) if c0 is not None else None
        if self.reverse:
            x = x.flip(0)
        lstm = isinstance(self.rnn, nn.LSTM)
        state = (h0, c0) if lstm and h0 is not None else h0
        y, st = self.rnn(x, state) if state is not None else self.rnn(x)
        h, c = st if lstm else (st, None)
        if self.reverse:
            y = y.flip(0)
        dirs = 2 if self.rnn.bidirectional else 1
        y = y.reshape(y.shape[0], y.shape[1], dirs, self.rnn.hidden_size).transpose(1, 2)  # (seq, dirs, batch, H)
        if self.layout == 1:
            y, h = y.permute(2, 0, 1, 3), h.transpose(0, 1)
            c = c.transpose(0, 1) if c is not None else None
        return (y, h, c)[:self.num_outputs] if lstm else (y, h)[:self.num_outputs]


def convert_rnn(node, graph):
    from onnx2torch.utils.common import OnnxMapping, OperationConverterResult

    reason = unsupported_reason(node, graph)
    if reason:
        raise NotImplementedError(f"{node.operation_type} with {reason}")
    a, kind = node.attributes, node.operation_type
    ins = list(node.input_values) + [""] * 8
    W, R = graph.initializers[ins[1]].to_torch(), graph.initializers[ins[2]].to_torch()
    dirs, gates_h, in_size = W.shape
    hidden = a.get("hidden_size", R.shape[-1])
    ngates = 4 if kind == "LSTM" else 3
    B = _init(graph, ins[3], (dirs, 2 * ngates * hidden))
    direction = a.get("direction", "forward")
    order = LSTM_ORDER if kind == "LSTM" else GRU_ORDER
    cls = nn.LSTM if kind == "LSTM" else nn.GRU
    rnn = cls(in_size, hidden, bidirectional=direction == "bidirectional")

    def gates(t):  # (ngates*H, ...) ONNX order -> torch order
        return torch.cat([t[g * hidden:(g + 1) * hidden] for g in order])

    with torch.no_grad():
        for d in range(dirs):
            sfx = "_l0" + ("_reverse" if d == 1 else "")
            getattr(rnn, "weight_ih" + sfx).copy_(gates(W[d]))
            getattr(rnn, "weight_hh" + sfx).copy_(gates(R[d]))
            getattr(rnn, "bias_ih" + sfx).copy_(gates(B[d, :ngates * hidden]))
            getattr(rnn, "bias_hh" + sfx).copy_(gates(B[d, ngates * hidden:]))
    outs = tuple(node.output_values)
    module = OnnxRNN(rnn, a.get("layout", 0), direction == "reverse", len(outs))
    inputs = [ins[0]] + ([ins[5]] if ins[5] else []) + ([ins[6]] if kind == "LSTM" and ins[6] else [])
    return OperationConverterResult(torch_module=module, onnx_mapping=OnnxMapping(inputs=tuple(inputs), outputs=outs))


# ONNX op versions that only added element types (float8, int4, ...) to an earlier version onnx2torch
# converts: the earlier converter serves them (onnx2torch 1.5 stops at opset 18; torch.onnx writes 20).
TYPE_ONLY_VERSIONS = {"Constant": (13, (19, 21)), "Shape": (15, (19, 21)), "Cast": (13, (19, 21)),
                      "Reshape": (14, (19, 21)), "ConstantOfShape": (9, (20, 21)), "Identity": (16, (19, 21)),
                      "Squeeze": (13, (21,)), "Unsqueeze": (13, (21,)), "Transpose": (13, (21,)),
                      "Flatten": (13, (21,))}


def register() -> None:
    """Add the converters to onnx2torch's registry (once)."""
    from onnx2torch.node_converters.registry import add_converter, get_converter

    for kind, versions in (("LSTM", (1, 7, 14, 22)), ("GRU", (1, 3, 7, 14, 22))):
        for v in versions:
            try:
                add_converter(operation_type=kind, version=v)(convert_rnn)
            except ValueError:  # already registered (by us earlier, or by a newer onnx2torch: keep theirs)
                pass
    for kind, (known, newer) in TYPE_ONLY_VERSIONS.items():
        try:
            conv = get_converter(operation_type=kind, version=known)
        except NotImplementedError:
            continue
        for v in newer:
            try:
                add_converter(operation_type=kind, version=v)(conv)
            except ValueError:
                pass
