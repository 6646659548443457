"""`add_kv_cache` (run by the LLM recipe, not by default: it changes the model's signature): every
scaled_dot_product_attention whose mask is causal (checked by evaluating the mask subgraph in MLX) becomes
fx2mlx.kv_attention(q, k, v, cache[i]) on the un-repeated (grouped-query) keys and values; the sequence
positions (arange over the input length) start at the cache offset. The program gains a user input
`cache` (a list of KV caches, or None). The pseudo-ops are lowered by `overrides.py`.

Nothing here knows a model family: the patterns are those of the ATen graph.
"""
from __future__ import annotations

import math
from dataclasses import replace

from . import ir
from .fusion import _Graph, _skip_slices
from .interp import Interpreter
from .lowering import lower
from .passes import dataflow_graph, eliminate_dead_code, remove_identities

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

    anc = nx.ancestors(dg, mask.name) | {mask.name}
    inputs = {i.name: i for i in program.inputs if i.name in anc}
    if any(i.kind != "user" or not isinstance(i.type, ir.TensorType) or i.type.dtype.startswith("float")
           for i in inputs.values()):
        raise ValueError("the attention mask depends on more than token ids (not a plain causal mask)")
    nodes = tuple(n for n in program.nodes if n.name in anc)
    sub = replace(program.replace_nodes(nodes, (mask,)), inputs=tuple(inputs.values()))
    interp = Interpreter.of(lower(sub, check=False))
    consts = sorted({v for n in nodes for _, v in n.args if isinstance(v, int) and not isinstance(v, bool) and 2 < v < 1 << 14})

    def evaluate(length):
        env = interp.run({name: mx.ones((1, length), dtype=mx.int32) for name in inputs})
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

