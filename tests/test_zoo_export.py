"""Every zoo model exports (non-strict) and, after the fx2mlx decomposition table, still
matches its eager output."""

import pytest
import torch

try:
    from tests.zoo import ZOO
except ImportError:  # tests/ itself on sys.path (pytest rootdir-less import mode)
    from zoo import ZOO

aten = torch.ops.aten

# Composite ops fx2mlx keeps instead of decomposing.
KEEP_COMPOSITE = (
    "linear.default",
    "scaled_dot_product_attention.default",
    "layer_norm.default",
    "group_norm.default",
    "gelu.default",
    "silu.default",
    "lstm.input",
    "gru.input",
    "stft.default",
    "istft.default",
    "upsample_nearest2d.vec",
    "upsample_bilinear2d.vec",
)


def _keep_ops():
    ops = []
    for qual in KEEP_COMPOSITE:
        name, overload = qual.split(".")
        packet = getattr(aten, name, None)
        op = getattr(packet, overload, None) if packet is not None else None
        if op is not None:
            ops.append(op)
    return ops


def capture(module, args, kwargs=None):
    ep = torch.export.export(module, tuple(args), kwargs or {}, strict=False)
    table = torch.export.default_decompositions()
    for op in _keep_ops():
        table.pop(op, None)
    return ep.run_decompositions(table)


def _unpack(entry):
    module, args = entry[0], entry[1]
    kwargs = entry[2] if len(entry) > 2 else {}
    return module, tuple(args), dict(kwargs)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_export_matches_eager(name):
    module, args, kwargs = _unpack(ZOO[name]())
    assert not module.training, f"{name}: factory must return an eval-mode module"
    with torch.no_grad():
        expected = module(*args, **kwargs)
    ep = capture(module, args, kwargs)
    targets = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    if name.startswith("bilstm") or name == "oww_bilstm":
        assert "aten.lstm.input" in targets, f"{name}: lstm was decomposed"
    with torch.no_grad():
        got = ep.module()(*args, **kwargs)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
