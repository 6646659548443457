"""IR -> IR passes that run before lowering: identity removal, dead-code elimination, and pattern
recognition (snake1d). Each pass is a function Program -> Program; `run_default_passes` runs them."""
from __future__ import annotations

from dataclasses import replace

import networkx as nx

from . import ir
from .experts import fuse_gather_mm
from .fusion import fuse_rms_norm, fuse_rope, fuse_swiglu

# Ops that return their input unchanged in inference (dropout becomes clone in eval).
IDENTITY_OPS = {"aten.clone.default", "aten.alias.default", "aten.contiguous.default",
                "aten.lift_fresh_copy.default", "aten.detach.default"}


def dataflow_graph(program: ir.Program) -> nx.DiGraph:
    """Values as a networkx DiGraph: an edge a -> b when node b uses value a."""
    g = nx.DiGraph()
    for i in program.inputs:
        g.add_node(i.name)
    for n in program.nodes:
        g.add_node(n.name)
        for r in n.refs():
            g.add_edge(r.name, n.name)
    return g


def _substitute(program: ir.Program, mapping: dict[str, str]) -> ir.Program:
    def sub(r: ir.Ref) -> ir.Ref:
        while r.name in mapping:
            r = ir.Ref(mapping[r.name])
        return r

    nodes = tuple(replace(n, args=tuple((k, ir.map_refs(v, sub)) for k, v in n.args)) for n in program.nodes)
    outputs = tuple(ir.map_refs(o, sub) for o in program.outputs)
    return program.replace_nodes(nodes, outputs)


def remove_identities(program: ir.Program) -> ir.Program:
    """Drop clone/alias/... nodes, full slices, same-dtype casts and views/reshapes/expands to the input's
    own shape (their users read the input directly)."""
    mapping = {}
    types = {i.name: i.type for i in program.inputs}
    types.update({n.name: n.type for n in program.nodes})
    for n in program.nodes:
        if n.target in IDENTITY_OPS:
            src = n.arg("self")
            if isinstance(src, ir.Ref) and n.arg("memory_format", None) in (None, "torch.preserve_format", "torch.contiguous_format"):
                mapping[n.name] = src.name
        elif n.target in SAME_SHAPE_OPS and _same_shape(n, types):
            mapping[n.name] = n.arg("self").name
        elif n.target == "aten.slice.Tensor" and _full_slice(n, types):
            mapping[n.name] = n.arg("self").name
        elif n.target == "aten._to_copy.default":
            src = n.arg("self")
            dt = n.arg("dtype", None)
            st = types.get(src.name) if isinstance(src, ir.Ref) else None
            if isinstance(st, ir.TensorType) and (dt is None or dt.name == st.dtype):
                mapping[n.name] = src.name
    if not mapping:
        return program
    p = _substitute(program, mapping)
    return p.replace_nodes(tuple(n for n in p.nodes if n.name not in mapping))


# a view / reshape / expand to the shape its input already has (e.g. HF attention's
# `out.reshape(batch, heads, seq, head_dim)` right after SDPA): no-ops a hand port would not write
SAME_SHAPE_OPS = {"aten.view.default", "aten.reshape.default", "aten._unsafe_view.default", "aten.expand.default"}


def _same_shape(n: ir.Node, types: dict) -> bool:
    src = n.arg("self")
    t = types.get(src.name) if isinstance(src, ir.Ref) else None
    return (isinstance(t, ir.TensorType) and isinstance(n.type, ir.TensorType) and n.type.shape == t.shape
            and n.type.dtype == t.dtype)


def _full_slice(n: ir.Node, types: dict) -> bool:
    """x[start:end:step] that keeps every element: start 0 (or None), step 1, end past the size (None,
    INT64_MAX, or the dimension's own size, symbolic sizes included)."""
    src, dim = n.arg("self"), n.arg("dim")
    t = types.get(src.name) if isinstance(src, ir.Ref) else None
    if not isinstance(t, ir.TensorType) or not isinstance(n.type, ir.TensorType) or n.type.shape != t.shape:
        return False
    start, end, step = n.arg("start"), n.arg("end"), n.arg("step")
    if start not in (None, 0) or step != 1 or isinstance(end, ir.Ref):
        return False
    size = t.shape[dim]
    return end is None or (isinstance(end, int) and (end >= 2**62 or (isinstance(size, int) and end >= size)))


def localize_view_sizes(program: ir.Program) -> ir.Program:
    """A view/reshape (or expand) size computed in another module (e.g. `tokens * top_k`, computed once by the first
    layer and reused by the next) becomes -1 when it is the only size that is not a literal: the emitted
    module then reads it from its own input instead of taking another module's arithmetic as an argument
    (which would also split one module type into two classes)."""
    nodes = program.node_map()
    types = {i.name: i.type for i in program.inputs}
    types.update({n.name: n.type for n in program.nodes})
    out = []
    changed = False
    for n in program.nodes:
        if n.target == "aten.expand.default":
            n, kept = _localize_expand_sizes(n, nodes, types)
            changed |= kept
            out.append(n)
            continue
        size = n.arg("size", None) if n.target in SAME_SHAPE_OPS else None
        refs = [k for k, v in enumerate(size or ()) if not isinstance(v, int)]
        if size and len(refs) == 1 and -1 not in size and isinstance(size[refs[0]], ir.Ref):
            src = nodes.get(size[refs[0]].name)
            if src is not None and src.module_path != n.module_path or _shape_arithmetic(src, n):
                new = tuple(-1 if k == refs[0] else v for k, v in enumerate(size))
                n = replace(n, args=tuple((k, new if k == "size" else v) for k, v in n.args))
                changed = True
        out.append(n)
    return program.replace_nodes(tuple(out)) if changed else program


def _localize_expand_sizes(n: ir.Node, nodes: dict, types: dict) -> tuple[ir.Node, bool]:
    """expand's sizes computed by size arithmetic (`tokens * top_k`, possibly in another module) become -1
    where that axis is not broadcast (the input already has the output's size there): expand's -1 keeps the
    input's own size, so the module does not take another module's arithmetic as an argument."""
    size, src = n.arg("size", None), n.arg("self")
    t = types.get(src.name) if isinstance(src, ir.Ref) else None
    if not size or not isinstance(t, ir.TensorType) or not isinstance(n.type, ir.TensorType):
        return n, False
    off = len(size) - len(t.shape)
    new = list(size)
    for k, v in enumerate(size):
        if not isinstance(v, ir.Ref) or k < off or t.shape[k - off] != n.type.shape[k]:
            continue
        other = nodes.get(v.name)  # size arithmetic only: a plain size (sym_size) is read in the module itself
        if other is not None and other.target.startswith(("operator.", "_operator.")):
            new[k] = -1
    if new == list(size):
        return n, False
    return replace(n, args=tuple((k, tuple(new) if k == "size" else v) for k, v in n.args)), True


def _shape_arithmetic(src: ir.Node | None, user: ir.Node) -> bool:
    """src is Python arithmetic on sizes in the view's own module (`tokens * top_k`)."""
    return src is not None and src.target.startswith(("operator.", "_operator.")) and src.module_path == user.module_path


_NEUTRAL = {"aten.mul.Tensor": 1, "aten.mul.Scalar": 1, "aten.div.Tensor": 1, "aten.div.Scalar": 1,
            "aten.add.Tensor": 0, "aten.add.Scalar": 0, "aten.sub.Tensor": 0, "aten.sub.Scalar": 0}


def simplify_arithmetic(program: ir.Program) -> ir.Program:
    """x * 1, x / 1, x + 0, x - 0 -> x, when the result has x's shape and dtype (no promotion)."""
    types = {i.name: i.type for i in program.inputs}
    types.update({n.name: n.type for n in program.nodes})
    mapping = {}
    for n in program.nodes:
        neutral = _NEUTRAL.get(n.target)
        if neutral is None:
            continue
        x, other = n.arg("self"), n.arg("other")
        if isinstance(other, bool) or not isinstance(other, (int, float)) or other != neutral:
            continue
        if not isinstance(x, ir.Ref) or types.get(x.name) != n.type:
            continue
        mapping[n.name] = x.name
    if not mapping:
        return program
    p = _substitute(program, mapping)
    return p.replace_nodes(tuple(n for n in p.nodes if n.name not in mapping))


def eliminate_dead_code(program: ir.Program) -> ir.Program:
    """Remove nodes whose values reach no output (nor a buffer mutation)."""
    g = dataflow_graph(program)
    live = set()
    roots = [r.name for o in program.outputs for r in ir.iter_refs(o)]
    roots += [name for _, name in _mutation_refs(program)]
    for r in roots:
        live.add(r)
        live |= nx.ancestors(g, r)
    return program.replace_nodes(tuple(n for n in program.nodes if n.name in live))


def _mutation_refs(program: ir.Program):
    return [(t, v.name) for t, v in program.mutations if isinstance(v, ir.Ref)]


# --------------------------------------------------------------------------------------------------
# snake1d: x + 1/(alpha [+ eps]) * sin(alpha * x) ** 2  ->  fx2mlx.snake1d.default(x, alpha, eps)
# --------------------------------------------------------------------------------------------------
def _scalar_of(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def recognize_snake(program: ir.Program) -> ir.Program:
    nodes = program.node_map()
    users: dict[str, int] = {}
    for n in program.nodes:
        for r in n.refs():
            users[r.name] = users.get(r.name, 0) + 1

    def node(v):
        return nodes.get(v.name) if isinstance(v, ir.Ref) else None

    def reciprocal_of(v):
        """alpha (and eps) from reciprocal(alpha [+ eps]) or 1 / (alpha [+ eps])."""
        n = node(v)
        if n is None:
            return None
        if n.target == "aten.reciprocal.default":
            inner = n.arg("self")
        elif n.target in ("aten.div.Tensor", "aten.div.Scalar") and _scalar_of(n.arg("self")) == 1:
            inner = n.arg("other")
        else:
            return None
        m = node(inner)
        if m is not None and m.target in ("aten.add.Tensor", "aten.add.Scalar") and _scalar_of(m.arg("other")) is not None \
                and m.arg("alpha") == 1:
            return m.arg("self"), float(m.arg("other")), [n.name, m.name]
        return inner, 0.0, [n.name]

    replaced: dict[str, ir.Node] = {}
    removed: set[str] = set()
    for n in program.nodes:
        if n.target != "aten.add.Tensor" or n.arg("alpha") != 1:
            continue
        x, prod = n.arg("self"), node(n.arg("other"))
        if prod is None or prod.target != "aten.mul.Tensor":
            continue
        for recip_v, pow_v in ((prod.arg("self"), prod.arg("other")), (prod.arg("other"), prod.arg("self"))):
            r = reciprocal_of(recip_v)
            p = node(pow_v)
            if r is None or p is None:
                continue
            alpha, eps, r_nodes = r
            if p.target == "aten.pow.Tensor_Scalar" and p.arg("exponent") == 2:
                s = node(p.arg("self"))
            elif p.target == "aten.mul.Tensor" and p.arg("self") == p.arg("other"):
                s = node(p.arg("self"))
            else:
                continue
            if s is None or s.target != "aten.sin.default":
                continue
            ax = node(s.arg("self"))
            if ax is None or ax.target != "aten.mul.Tensor" or {ax.arg("self"), ax.arg("other")} != {alpha, x}:
                continue
            inner = [prod.name, p.name, s.name, ax.name] + r_nodes
            if any(users.get(k, 0) != 1 for k in inner):
                continue
            replaced[n.name] = replace(n, target="fx2mlx.snake1d.default",
                                       args=(("x", x), ("alpha", alpha), ("eps", eps)))
            removed.update(inner)
            break
    if not replaced:
        return program
    return program.replace_nodes(tuple(replaced.get(n.name, n) for n in program.nodes if n.name not in removed))


DEFAULT_PASSES = (remove_identities, simplify_arithmetic, recognize_snake, fuse_rms_norm, fuse_rope, fuse_swiglu,
                  fuse_gather_mm, localize_view_sizes, eliminate_dead_code)


def run_default_passes(program: ir.Program) -> ir.Program:
    for p in DEFAULT_PASSES:
        program = p(program)
    return program
