"""Mixture of experts: per-row expert matmuls -> gathered matmuls (mx.gather_mm, as mlx-lm's SwitchLinear).

How transformers (5.x) runs a mixture-of-experts block: a router (linear, softmax, top-k, optional
renormalisation) gives each token k expert indices and weights; the experts module (decorated with
`use_experts_implementation`, weights stacked as `gate_up_proj` (E, 2I, H) and `down_proj` (E, H, I))
dispatches through `config._experts_implementation`:
- "eager": a Python loop over the experts that were hit (`nonzero`, `torch.where`, `index_add_`): the
  trip count and every row count depend on the data, so torch.export cannot capture it;
- "grouped_mm" (the default): rows sorted by expert, `histc`/`cumsum` offsets and an opaque grouped
  matmul (`transformers::grouped_mm_fallback` under export, `aten._grouped_mm` in bfloat16);
- "batched_mm": every (token, expert) pair gathers its expert's weight, `W[ids]`, and one batched
  matmul: the same result, no data-dependent shape.
`hf.traceable_experts` selects "batched_mm" while torch.export runs, and `fuse_gather_mm` below turns its
gather + bmm into one gathered matmul that never materialises the gathered weights:

    squeeze(bmm(index(W, [ids]), unsqueeze(x, -1)), -1)  ->  fx2mlx.gather_linear(x, W, ids)   W (E, out, in)
    squeeze(bmm(unsqueeze(x, 1), index(W, [ids])), 1)   ->  fx2mlx.gather_matmul(x, W, ids)   W (E, in, out)

A grouped_mm graph (captured elsewhere) is lowered too (`overrides.grouped_mm`). The router stays as
captured (softmax, topk, sum, div: HF's own arithmetic). `llm.quantize` turns gather_linear over a
parameter into fx2mlx.gather_qlinear (mx.gather_qmm). Nothing here knows a model family.
"""
from __future__ import annotations

from dataclasses import replace

from . import ir
from .fusion import _Graph

_SQUEEZE = ("aten.squeeze.dim", "aten.squeeze.dims")
_INTS = ("int64", "int32", "int16", "int8", "uint8")


def _dim(n: ir.Node, rank: int):
    d = n.arg("dim")
    if isinstance(d, (tuple, list)):
        if len(d) != 1:
            return None
        d = d[0]
    return d % rank if isinstance(d, int) else None


def _same(a, b) -> bool:
    return not (isinstance(a, int) and isinstance(b, int)) or a == b


def _gathered(g: _Graph, v):
    """(W, ids) for v = index(W, [ids]) with W rank 3 and ids rank-1 integers."""
    n = g.node(v, "aten.index.Tensor")
    if n is None or len(n.arg("indices") or ()) != 1:
        return None
    w, ids = n.arg("self"), n.arg("indices")[0]
    wt, it = g.type(w), g.type(ids)
    if not (isinstance(wt, ir.TensorType) and wt.rank == 3 and isinstance(it, ir.TensorType) and it.rank == 1
            and it.dtype in _INTS):
        return None
    return w, ids


def _row(g: _Graph, v, dim: int):
    """x for v = unsqueeze(x, dim) with x rank 2."""
    n = g.node(v, "aten.unsqueeze.default")
    xt = n and g.type(n.arg("self"))
    if n is None or not isinstance(xt, ir.TensorType) or xt.rank != 2 or n.arg("dim") % 3 != dim:
        return None
    return n.arg("self")


def fuse_gather_mm(program: ir.Program) -> ir.Program:
    g = _Graph(program)
    replaced: dict[str, ir.Node] = {}
    for n in program.nodes:
        if n.target not in _SQUEEZE:
            continue
        mm = g.node(n.arg("self"), "aten.bmm.default")
        if mm is None:
            continue
        d = _dim(n, 3)
        if d == 2:  # W[ids] @ x[..., None]: weights (E, out, in)
            gw, x = _gathered(g, mm.arg("self")), _row(g, mm.arg("mat2"), 2)
            target, inner = "fx2mlx.gather_linear.default", -1
        elif d == 1:  # x[:, None, :] @ W[ids]: weights (E, in, out)
            gw, x = _gathered(g, mm.arg("mat2")), _row(g, mm.arg("self"), 1)
            target, inner = "fx2mlx.gather_matmul.default", 1
        else:
            continue
        if gw is None or x is None:
            continue
        w, ids = gw
        xt, wt, it = g.type(x), g.type(w), g.type(ids)
        if xt.dtype != wt.dtype or not _same(xt.shape[1], wt.shape[inner]) or not _same(xt.shape[0], it.shape[0]):
            continue
        replaced[n.name] = replace(n, target=target, args=(("x", x), ("weight", w), ("indices", ids)))
    if not replaced:
        return program
    return program.replace_nodes(tuple(replaced.get(n.name, n) for n in program.nodes))  # the rest: dead code
