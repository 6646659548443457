"""Pattern passes for transformer blocks: RMSNorm and rotate-half RoPE become `mx.fast` kernels, and
(for generation) causal self-attention becomes cache-aware attention.

- `fuse_rms_norm`: w * (x * rsqrt(mean(x^2, -1, keepdim) + eps)) -> fx2mlx.rms_norm(x, w, eps)
- `fuse_swiglu`: silu(gate) * x -> fx2mlx.swiglu (a compiled, fused elementwise kernel)
- `fuse_rope`: x * cos + rotate_half(x) * sin, with cos/sin = a * cos/sin(cat(f, f)), f = positions x
  inv_freq and positions = arange(offset, offset + n) -> fx2mlx.rope(x, freqs, offset, scale)
- `add_kv_cache` (run by the LLM recipe, not by default: it changes the model's signature): every
  scaled_dot_product_attention whose mask is causal (checked by evaluating the mask subgraph) becomes
  fx2mlx.kv_attention(q, k, v, cache[i]) on the un-repeated (grouped-query) keys and values; the
  sequence positions (arange over the input length) start at the cache offset. The program gains a
  user input `cache` (a list of KV caches, or None).

Nothing here knows a model family: the patterns are those of the ATen graph.
"""
from __future__ import annotations

import math
from dataclasses import replace

from . import ir
from .overrides import _c, override

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


@override("fx2mlx.rms_norm.default", tolerance=(1e-5, 1e-5))
def rms_norm(node: ir.Node, a: dict) -> str:
    return f"mx.fast.rms_norm({_c(a['x'])}, {_c(a['weight'])}, {_c(a['eps'])})"


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


@override("fx2mlx.swiglu.default", runtime=("activations",))
def swiglu(node: ir.Node, a: dict) -> str:
    return f"swiglu({_c(a['gate'])}, {_c(a['x'])})"


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


@override("fx2mlx.rope_freqs.default")
def rope_freqs(node: ir.Node, a: dict) -> str:
    return f"1.0 / {_c(a['inv_freq'])}"


@override("fx2mlx.rope.default", tolerance=(1e-5, 1e-4))
def rope(node: ir.Node, a: dict) -> str:
    x = a["x"]
    code = (f"mx.fast.rope({_c(x)}, {x.shape[-1]}, traditional=False, base=None, scale=1.0, "
            f"offset={_c(a['offset'])}, freqs={_c(a['freqs'])})")
    return code if a["scale"] == 1.0 else f"{code} * {_c(a['scale'])}"


# --------------------------------------------------------------------------------------------------
# KV cache
# --------------------------------------------------------------------------------------------------
CACHE_INPUT = "cache"


def _strip_repeat_kv(g: _Graph, v):
    """k for v = reshape(expand(k[:, :, None], (B, Hkv, rep, n, D)), (B, Hkv * rep, n, D)) (repeat_kv)."""
    r = g.node(v, "aten._unsafe_view.default", "aten.view.default", "aten.reshape.default")
    e = r and g.node(_skip_slices(g, r.arg("self")), "aten.expand.default")
    u = e and g.node(_skip_slices(g, e.arg("self")), "aten.unsqueeze.default")
    if u is None or u.arg("dim") != 2:
        return v
    base = _skip_slices(g, u.arg("self"))
    t = g.type(base)
    return base if isinstance(t, ir.TensorType) and t.rank == 4 else v


def _seq_length_symbol(program: ir.Program):
    """sym_size nodes of the token input's sequence dim (the graph's dynamic length)."""
    user = [i for i in program.user_inputs if isinstance(i.type, ir.TensorType) and i.type.rank == 2
            and i.type.dtype.startswith("int") and isinstance(i.type.shape[1], str)]
    if not user:
        return None, set()
    tok = user[0]
    syms = {n.name for n in program.nodes if n.target == "aten.sym_size.int"
            and n.arg("self") == ir.Ref(tok.name) and n.arg("dim") in (1, -1)}
    return tok, syms


def _mask_kind(program: ir.Program, mask: ir.Ref, dg):
    """None (causal) or the sliding window, by evaluating the mask subgraph on all-ones inputs."""
    import mlx.core as mx
    import networkx as nx
    import numpy as np

    from .lowering import lower, runtime_namespace

    anc = nx.ancestors(dg, mask.name) | {mask.name}
    inputs = {i.name: i for i in program.inputs if i.name in anc}
    if any(i.kind != "user" or not isinstance(i.type, ir.TensorType) or i.type.dtype.startswith("float")
           for i in inputs.values()):
        raise ValueError("the attention mask depends on more than token ids (not a plain causal mask)")
    nodes = tuple(n for n in program.nodes if n.name in anc)
    sub = replace(program.replace_nodes(nodes, (mask,)), inputs=tuple(inputs.values()))
    lowered = lower(sub, check=False)
    ns = runtime_namespace(lowered.runtime_modules)
    consts = sorted({v for n in nodes for _, v in n.args if isinstance(v, int) and not isinstance(v, bool) and 2 < v < 1 << 14})

    def evaluate(length):
        env = {name: mx.ones((1, length), dtype=mx.int32) for name in inputs}
        for n in nodes:
            env[n.name] = eval(lowered.render(n.name, lambda v: f"_v[{v!r}]"), ns, {"_v": env})
        m = np.array(env[mask.name]).reshape(length, length)
        return m if m.dtype == np.bool_ else m == 0

    for length in [6] + [c + 2 for c in consts]:
        got = evaluate(length)
        causal = np.tril(np.ones((length, length), dtype=bool))
        if np.array_equal(got, causal):
            continue
        for w in consts:
            if np.array_equal(got, causal & ~np.tril(causal, -w)):
                return w
        raise ValueError(f"the attention mask is not causal (checked at length {length})")
    return None


def add_kv_cache(program: ir.Program) -> ir.Program:
    """Causal self-attention -> fx2mlx.kv_attention with a cache; positions start at the cache offset."""
    from .passes import eliminate_dead_code, remove_identities

    program = remove_identities(program)
    g = _Graph(program)
    tok, syms = _seq_length_symbol(program)
    if tok is None:
        raise ValueError("no token-id input with a dynamic sequence length (export with torch.export.Dim)")
    sites = []
    kinds: dict = {}  # mask value -> its kind (layers share one mask: evaluated once)
    dg = None
    for n in program.nodes:
        if n.target != "aten.scaled_dot_product_attention.default":
            continue
        mask, causal = n.arg("attn_mask"), n.arg("is_causal")
        if mask is None and not causal:
            continue  # not causal: left as it is
        if mask is not None and mask not in kinds:
            from .passes import dataflow_graph

            dg = dg or dataflow_graph(program)
            kinds[mask] = _mask_kind(program, mask, dg)
        window = kinds[mask] if mask is not None else None
        q = n.arg("query")
        k, v = _strip_repeat_kv(g, n.arg("key")), _strip_repeat_kv(g, n.arg("value"))
        scale = n.arg("scale")
        if scale is None:
            scale = 1.0 / math.sqrt(g.type(q).shape[-1])
        sites.append((n, q, k, v, scale, window))
    if not sites:
        raise ValueError("no causal scaled_dot_product_attention found")
    cache = ir.Input(CACHE_INPUT, "user", None)
    off_name = "cache_offset"
    stacks = [s[0].stack for s in sites]
    k = 0
    while all(len(s) > k and s[k] == stacks[0][k] for s in stacks):
        k += 1
    prefix = stacks[0][:k]
    nodes = list(program.nodes)
    replaced = {}
    renamed = {}  # new ops get new value names (the golden harness matches values by name and op)
    taken = {x.name for x in program.inputs} | set(g.nodes)
    for i, (n, q, kk, vv, scale, window) in enumerate(sites):
        entry = f"cache_{i}"
        renamed[n.name] = _fresh(f"kv_attention_{i}" if i else "kv_attention", taken)
        replaced[n.name] = replace(n, name=renamed[n.name], target="fx2mlx.kv_attention.default",
                                   args=(("query", q), ("key", kk), ("value", vv), ("cache", ir.Ref(entry)),
                                         ("scale", float(scale)), ("window", window)))
    # positions: arange(n) over the sequence length -> arange(offset, offset + n)
    uses_offset = False
    for idx, n in enumerate(nodes):
        if n.target == "aten.arange.default" and isinstance(n.arg("end"), ir.Ref) and n.arg("end").name in syms:
            renamed[n.name] = _fresh("positions", taken)
            nodes[idx] = replace(n, name=renamed[n.name], target="fx2mlx.arange_offset.default",
                                 args=(("end", n.arg("end")), ("offset", ir.Ref(off_name)), ("dtype", n.arg("dtype"))))
            uses_offset = True
    nodes = [replaced.get(n.name, n) for n in nodes]
    sub = lambda r: ir.Ref(renamed.get(r.name, r.name))  # noqa: E731
    nodes = [replace(n, args=tuple((a, ir.map_refs(v, sub)) for a, v in n.args)) for n in nodes]
    program = program.replace_nodes(program.nodes, tuple(ir.map_refs(o, sub) for o in program.outputs))
    # cache entries: computed where the attention sites' modules diverge, before the first of them
    for i, (n, *_rest) in enumerate(sites):
        scope = n.stack[:len(prefix) + 1]
        idx = next(j for j, m in enumerate(nodes) if m.stack[:len(scope)] == scope or m.name == n.name)
        nodes.insert(idx, ir.Node(f"cache_{i}", "fx2mlx.cache_entry.default",
                                  (("cache", ir.Ref(CACHE_INPUT)), ("index", i)), None, prefix, n.source))
    if uses_offset:
        idx = next(j for j, m in enumerate(nodes) if m.target == "fx2mlx.arange_offset.default")
        nodes.insert(idx, ir.Node(off_name, "fx2mlx.cache_offset.default", (("cache", ir.Ref(CACHE_INPUT)),),
                                  ir.ScalarType("int"), nodes[idx].stack, nodes[idx].source))
    program = replace(program, inputs=program.inputs + (cache,), nodes=tuple(nodes))
    return eliminate_dead_code(program)


def _fresh(base: str, taken: set) -> str:
    name, k = base, 1
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


@override("fx2mlx.kv_attention.default", runtime=("kv_cache",), tolerance=(1e-5, 1e-4))
def kv_attention(node: ir.Node, a: dict) -> str:
    win = f", window={a['window']}" if a["window"] is not None else ""
    return (f"kv_attention({_c(a['query'])}, {_c(a['key'])}, {_c(a['value'])}, {_c(a['cache'])}, "
            f"scale={_c(a['scale'])}{win})")


@override("fx2mlx.cache_entry.default", runtime=("kv_cache",))
def cache_entry(node: ir.Node, a: dict) -> str:
    return f"cache_entry({_c(a['cache'])}, {a['index']})"


@override("fx2mlx.cache_offset.default", runtime=("kv_cache",))
def cache_offset(node: ir.Node, a: dict) -> str:
    return f"cache_offset({_c(a['cache'])})"


@override("fx2mlx.arange_offset.default")
def arange_offset(node: ir.Node, a: dict) -> str:
    dt = f", dtype={_c(a['dtype'])}" if a.get("dtype") is not None else ""
    return f"mx.arange({_c(a['offset'])}, {_c(a['offset'])} + {_c(a['end'])}{dt})"
