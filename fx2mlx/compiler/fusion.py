"""Pattern passes for transformer blocks: RMSNorm and rotate-half RoPE become `mx.fast` kernels, SiLU
gates a fused SwiGLU kernel. Run by default (`passes.DEFAULT_PASSES`); the pseudo-ops they produce are
lowered by `overrides.py`; `kvcache.py` (cache-aware attention for generation) builds on the graph helpers.

- `fuse_rms_norm`: w * (x * rsqrt(mean(x^2, -1, keepdim) + eps)) -> fx2mlx.rms_norm(x, w, eps)
- `fuse_swiglu`: silu(gate) * x -> fx2mlx.swiglu (a compiled, fused elementwise kernel)
- `fuse_rope`: x * cos + rotate_half(x) * sin, with cos/sin = a * cos/sin(cat(f, f)), f = positions x
  inv_freq and positions = arange(offset, offset + n) -> fx2mlx.rope(x, freqs, offset, scale)

Nothing here knows a model family: the patterns are those of the ATen graph.
"""
from __future__ import annotations

from dataclasses import replace

from . import ir

MAX_INT = 2**63 - 1


# --------------------------------------------------------------------------------------------------
# Graph helpers
# --------------------------------------------------------------------------------------------------
class _Graph:
    def __init__(self, program: ir.Program):
        self.program = program
        self.nodes = program.node_map()
        self.inputs = {i.name: i for i in program.inputs}
        self.users: dict[str, int] = {}
        for n in program.nodes:
            for r in n.refs():
                self.users[r.name] = self.users.get(r.name, 0) + 1
        for o in program.outputs:
            for r in ir.iter_refs(o):
                self.users[r.name] = self.users.get(r.name, 0) + 1

    def node(self, v, *targets):
        n = self.nodes.get(v.name) if isinstance(v, ir.Ref) else None
        if n is not None and targets and n.target not in targets:
            return None
        return n

    def type(self, v):
        if not isinstance(v, ir.Ref):
            return None
        if v.name in self.inputs:
            return self.inputs[v.name].type
        n = self.nodes.get(v.name)
        return n.type if n else None

    def single_use(self, names) -> bool:
        return all(self.users.get(n, 0) == 1 for n in names)


def _scalar(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _operands(n: ir.Node):
    return n.arg("self"), n.arg("other")


def _commuted(n: ir.Node):
    a, b = _operands(n)
    return ((a, b), (b, a))


def _rewrite(program: ir.Program, replaced: dict[str, ir.Node], removed: set[str]) -> ir.Program:
    if not replaced:
        return program
    return program.replace_nodes(tuple(replaced.get(n.name, n) for n in program.nodes if n.name not in removed))


# --------------------------------------------------------------------------------------------------
# RMSNorm
# --------------------------------------------------------------------------------------------------
def _rms_core(g: _Graph, v):
    """x, eps, inner node names for v = x * rsqrt(mean(x^2, -1, keepdim) + eps)."""
    m = g.node(v, "aten.mul.Tensor")
    if m is None:
        return None
    for x, r in _commuted(m):
        rs = g.node(r, "aten.rsqrt.default")
        add = rs and g.node(rs.arg("self"), "aten.add.Tensor", "aten.add.Scalar")
        if add is None or _scalar(add.arg("other")) is None or add.arg("alpha") != 1:
            continue
        mean = g.node(add.arg("self"), "aten.mean.dim")
        xt = g.type(x)
        if mean is None or not isinstance(xt, ir.TensorType) or not mean.arg("keepdim"):
            continue
        if tuple(mean.arg("dim") or ()) not in ((-1,), (xt.rank - 1,)):
            continue
        sq = g.node(mean.arg("self"))
        if sq is None or not ((sq.target == "aten.pow.Tensor_Scalar" and sq.arg("self") == x and sq.arg("exponent") == 2)
                              or (sq.target == "aten.mul.Tensor" and sq.arg("self") == x and sq.arg("other") == x)):
            continue
        return x, float(add.arg("other")), [rs.name, add.name, mean.name, sq.name]
    return None


def fuse_rms_norm(program: ir.Program) -> ir.Program:
    g = _Graph(program)
    replaced: dict[str, ir.Node] = {}
    removed: set[str] = set()
    for n in program.nodes:
        if n.target != "aten.mul.Tensor" or n.name in removed or n.name in replaced:
            continue
        for w, y in _commuted(n):  # weighted: w * (x * rsqrt(...))
            core = _rms_core(g, y)
            wt = g.type(w)
            if core is None or not isinstance(wt, ir.TensorType) or wt.rank != 1:
                continue
            x, eps, inner = core
            xt = g.type(x)
            if wt.shape[0] != xt.shape[-1] or not g.single_use(inner + [y.name]) or wt.dtype != xt.dtype:
                continue
            replaced[n.name] = replace(n, target="fx2mlx.rms_norm.default", args=(("x", x), ("weight", w), ("eps", eps)))
            removed.update(inner + [y.name])
            break
    for n in program.nodes:  # unweighted: x * rsqrt(...)
        if n.target != "aten.mul.Tensor" or n.name in removed or n.name in replaced:
            continue
        core = _rms_core(g, ir.Ref(n.name))
        if core is not None and g.single_use(core[2]) and not (set(core[2]) & removed):
            x, eps, inner = core
            replaced[n.name] = replace(n, target="fx2mlx.rms_norm.default", args=(("x", x), ("weight", None), ("eps", eps)))
            removed.update(inner)
    return _rewrite(program, replaced, removed)


# --------------------------------------------------------------------------------------------------
# SwiGLU: silu(gate) * x, one compiled (fused) elementwise kernel as in mlx-lm
# --------------------------------------------------------------------------------------------------
def fuse_swiglu(program: ir.Program) -> ir.Program:
    g = _Graph(program)
    replaced: dict[str, ir.Node] = {}
    removed: set[str] = set()
    for n in program.nodes:
        if n.target != "aten.mul.Tensor":
            continue
        for a, b in _commuted(n):
            s = g.node(a, "aten.silu.default")
            ta, tb = g.type(s.arg("self")) if s else None, g.type(b)
            if s is None or s.name in removed or not g.single_use([s.name]) or ta != tb:
                continue
            replaced[n.name] = replace(n, target="fx2mlx.swiglu.default", args=(("gate", s.arg("self")), ("x", b)))
            removed.add(s.name)
            break
    return _rewrite(program, replaced, removed)


# --------------------------------------------------------------------------------------------------
# RoPE (rotate-half form)
# --------------------------------------------------------------------------------------------------
def _full_slice(g: _Graph, n: ir.Node | None) -> bool:
    """x[:, :] along one dim (older torch.export keeps these for `x[:, None]` indexing)."""
    if n is None or n.target != "aten.slice.Tensor" or n.arg("step") != 1 or n.arg("start") not in (0, None):
        return False
    t = g.type(n.arg("self"))
    end = n.arg("end")
    return end in (None, MAX_INT) or (isinstance(t, ir.TensorType) and t.shape[n.arg("dim")] == end)


def _skip_slices(g: _Graph, v):
    while _full_slice(g, g.node(v)):
        v = g.node(v).arg("self")
    return v


def _strip(g: _Graph, v, targets=("aten._to_copy.default", "aten.unsqueeze.default", "aten.expand.default")):
    """Follow unsqueeze/expand/dtype casts/full slices up to the source value."""
    while True:
        v = _skip_slices(g, v)
        n = g.node(v, *targets)
        if n is None:
            return v
        v = n.arg("self")


def _positions(g: _Graph, v):
    """The offset (0, or a Ref) if v is arange(offset, offset + n) up to unsqueeze/expand/cast/+0."""
    v = _strip(g, v)
    n = g.node(v, "aten.add.Tensor", "aten.add.Scalar")
    if n is not None and n.arg("other") == 0:
        v = n.arg("self")
    n = g.node(v)
    if n is None:
        return None
    if n.target == "aten.arange.default":
        return 0
    if n.target in ("aten.arange.start", "aten.arange.start_step") and n.arg("start") == 0 \
            and n.arg("step", 1) == 1:
        return 0
    if n.target == "fx2mlx.arange_offset.default":
        return n.arg("offset")
    return None


def _trig(g: _Graph, v, fn):
    """(E, scale) for v = unsqueeze(scale * fn(E), 1) (scale optional)."""
    u = g.node(v, "aten.unsqueeze.default")
    if u is None or u.arg("dim") != 1:
        return None
    v = _strip(g, u.arg("self"), ("aten._to_copy.default",))
    scale = 1.0
    m = g.node(v, "aten.mul.Tensor", "aten.mul.Scalar")
    if m is not None and _scalar(m.arg("other")) is not None:
        scale, v = float(m.arg("other")), m.arg("self")
    t = g.node(_strip(g, v, ("aten._to_copy.default",)), fn)
    return (t.arg("self"), scale) if t is not None else None


def _rope_freqs(g: _Graph, e):
    """(inv_freq Ref, offset) for e = cat([f, f], -1), f = positions (B, n, 1) * inv_freq (h,)."""
    cat = g.node(e, "aten.cat.default")
    if cat is None or len(cat.arg("tensors")) != 2 or cat.arg("tensors")[0] != cat.arg("tensors")[1] \
            or cat.arg("dim") not in (-1, 2):
        return None
    f = g.node(cat.arg("tensors")[0], "aten.mul.Tensor", "aten.transpose.int")
    if f is not None and f.target == "aten.transpose.int":  # (inv_freq[None, :, None] @ pos[:, None, :]).T
        mm = g.node(f.arg("self"), "aten.matmul.default", "aten.bmm.default")
        if mm is None or sorted((f.arg("dim0") % 3, f.arg("dim1") % 3)) != [1, 2]:
            return None
        inv, p = _strip(g, mm.arg("self")), mm.arg("mat2" if mm.target == "aten.bmm.default" else "other")
        it = g.type(inv)
        if not (isinstance(inv, ir.Ref) and inv.name in g.inputs and isinstance(it, ir.TensorType) and it.rank == 1):
            return None
        off = _positions(g, p)
        return (inv, off) if off is not None else None
    if f is None:
        return None
    for p, inv in _commuted(f):
        it = g.type(inv)
        if not (isinstance(inv, ir.Ref) and inv.name in g.inputs and isinstance(it, ir.TensorType) and it.rank == 1):
            continue
        off = _positions(g, p)
        if off is not None:
            return inv, off
    return None


def _rotate_half(g: _Graph, v):
    """(x, inner names) for v = cat([-x[..., h:], x[..., :h]], -1)."""
    cat = g.node(v, "aten.cat.default")
    if cat is None or len(cat.arg("tensors")) != 2:
        return None
    neg = g.node(cat.arg("tensors")[0], "aten.neg.default")
    lo = g.node(cat.arg("tensors")[1], "aten.slice.Tensor")
    hi = neg and g.node(neg.arg("self"), "aten.slice.Tensor")
    if hi is None or lo is None or hi.arg("self") != lo.arg("self"):
        return None
    x = lo.arg("self")
    xt = g.type(x)
    if not isinstance(xt, ir.TensorType) or not isinstance(xt.shape[-1], int):
        return None
    d = xt.shape[-1]
    if cat.arg("dim") not in (-1, xt.rank - 1) or any(s.arg("dim") not in (-1, xt.rank - 1) or s.arg("step") != 1 for s in (hi, lo)):
        return None
    if lo.arg("start") not in (0, None) or lo.arg("end") != d // 2 or hi.arg("start") != d // 2 \
            or hi.arg("end") not in (None, d, MAX_INT) or d % 2:
        return None
    return x, [cat.name, neg.name, lo.name, hi.name]


def fuse_rope(program: ir.Program) -> ir.Program:
    g = _Graph(program)
    replaced: dict[str, ir.Node] = {}
    removed: set[str] = set()
    freq_nodes: dict[str, ir.Node] = {}  # inv_freq input -> the node computing 1 / inv_freq
    for n in program.nodes:
        if n.target != "aten.add.Tensor" or n.arg("alpha") != 1:
            continue
        for a_v, b_v in _commuted(n):
            a, b = g.node(a_v, "aten.mul.Tensor"), g.node(b_v, "aten.mul.Tensor")
            if a is None or b is None:
                continue
            match = None
            for x, c in _commuted(a):
                for r, s in _commuted(b):
                    rh = _rotate_half(g, r)
                    cos, sin = _trig(g, c, "aten.cos.default"), _trig(g, s, "aten.sin.default")
                    if rh and rh[0] == x and cos and sin and cos == sin:
                        match = (x, rh[1], cos)
            if match is None:
                continue
            x, inner, (e, scale) = match
            fr = _rope_freqs(g, e)
            xt = g.type(x)
            if fr is None or not g.single_use(inner + [a.name, b.name]) or xt.rank < 3:
                continue
            inv, offset = fr
            if g.type(inv).shape[0] * 2 != xt.shape[-1]:
                continue
            if inv.name not in freq_nodes:
                src = g.inputs[inv.name]
                first = next(m for m in program.nodes if inv in set(m.refs()))
                freq_nodes[inv.name] = ir.Node(f"rope_freqs_{len(freq_nodes)}" if freq_nodes else "rope_freqs",
                                               "fx2mlx.rope_freqs.default", (("inv_freq", inv),), src.type,
                                               first.stack, first.source)
            fnode = freq_nodes[inv.name]
            replaced[n.name] = replace(n, target="fx2mlx.rope.default",
                                       args=(("x", x), ("freqs", ir.Ref(fnode.name)), ("offset", offset), ("scale", scale)))
            removed.update(inner + [a.name, b.name])
            break
    if not replaced:
        return program
    firsts = {f.name: next(m.name for m in program.nodes if ir.Ref(inv) in set(m.refs()))
              for inv, f in freq_nodes.items()}
    program = _rewrite(program, replaced, removed)
    nodes = []
    for m in program.nodes:  # 1 / inv_freq where inv_freq was first used (the rotary module), once
        nodes.extend(f for f in freq_nodes.values() if firsts[f.name] == m.name)
        nodes.append(m)
    return program.replace_nodes(tuple(nodes))
