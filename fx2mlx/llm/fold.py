"""Capture two layers, emit N: the IR of a model with N identical blocks in a ModuleList, built from
the capture of the same model with 2 blocks.

torch.export traces every layer (an 8B Llama's 32 layers: ~30 s here); the blocks of a decoder are the
same graph with other weights, so the capture of a 2-layer copy of the config is extended: block 1 is
checked to be block 0 up to names (same ops, same constants, weights at the same relative paths, its
input being block 0's output), then cloned N - 2 times with its weights renamed and chained. Models whose
blocks differ (per-layer types, windows) are captured whole instead.
"""
from __future__ import annotations

import re
from dataclasses import replace

from ..compiler import ir


class NotFoldable(Exception):
    pass


def _block(program: ir.Program, path: str) -> tuple[int, int]:
    """[start, end) of the contiguous nodes run under module `path`."""
    idx = [i for i, n in enumerate(program.nodes) if any(f.path == path or f.path.startswith(path + ".") for f in n.stack)]
    if not idx or idx != list(range(idx[0], idx[-1] + 1)):
        raise NotFoldable(f"the nodes of {path} are not one contiguous run")
    return idx[0], idx[-1] + 1


def _rename_path(s: str, old: str, new: str) -> str:
    if s == old or s.startswith(old + "."):
        return new + s[len(old):]
    return s


def _frame(f: ir.ModuleFrame, old: str, new: str) -> ir.ModuleFrame:
    key = f.key.replace(old, new) if old in f.key else f.key
    return ir.ModuleFrame(key, _rename_path(f.path, old, new), f.type)


def fold_layers(program: ir.Program, prefix: str, n_layers: int) -> ir.Program:
    """Extend a capture with blocks `prefix.0` and `prefix.1` to blocks 0 .. n_layers - 1."""
    if n_layers <= 2:
        return program
    p0, p1 = f"{prefix}.0", f"{prefix}.1"
    s0, e0 = _block(program, p0)
    s1, e1 = _block(program, p1)
    b0, b1 = program.nodes[s0:e0], program.nodes[s1:e1]
    inputs = {i.name: i for i in program.inputs}
    if len(b0) != len(b1):
        raise NotFoldable("blocks 0 and 1 have different op counts")
    pos0 = {n.name: k for k, n in enumerate(b0)}
    pos1 = {n.name: k for k, n in enumerate(b1)}
    out0 = b0[-1].name  # the block's output (the residual stream it hands on)

    def same(a, b) -> bool:  # a: arg in block 0, b: the arg at the same place in block 1
        if isinstance(a, tuple) and isinstance(b, tuple):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
        if isinstance(a, ir.Ref) and isinstance(b, ir.Ref):
            if a.name in pos0:
                return b.name in pos1 and pos0[a.name] == pos1[b.name]
            if b.name in pos0:  # block 1 reads block 0: only its output, where block 0 read the stream
                return b.name == out0 and a.name not in pos0
            ia, ib = inputs.get(a.name), inputs.get(b.name)
            if ia is not None and ia.kind != "user":
                return ib is not None and ib.kind == ia.kind and ib.type == ia.type and \
                    _rename_path(ia.target, p0, p1) == ib.target
            return a == b
        return a == b

    for x, y in zip(b0, b1):
        if x.target != y.target or x.type != y.type or [k for k, _ in x.args] != [k for k, _ in y.args] or \
                not all(same(va, vb) for (_, va), (_, vb) in zip(x.args, y.args)) or \
                [_frame(f, p0, p1) for f in x.stack] != list(y.stack):
            raise NotFoldable(f"blocks 0 and 1 differ at {y.name} ({y.target})")
    new_nodes, new_inputs = list(program.nodes[:e1]), list(program.inputs)
    weight_of = {i.name: i for i in program.inputs if i.kind != "user"}
    prev = {n.name: n.name for n in b1}  # block-1 value -> its copy in the previous block
    last_out = b1[-1].name
    taken = {n.name for n in program.nodes} | {i.name for i in program.inputs}
    counter = [len(program.nodes)]
    for j in range(2, n_layers):
        pj = f"{prefix}.{j}"
        names = {}
        for n in b1:  # `<op>_<k>`: the emitter names locals by the op, so every copy reads the same
            base = re.sub(r"_\d+$", "", n.name)
            while f"{base}_{counter[0]}" in taken:
                counter[0] += 1
            names[n.name] = f"{base}_{counter[0]}"
            taken.add(names[n.name])
        wmap = {}

        def sub(r: ir.Ref) -> ir.Ref:
            if r.name in names:
                return ir.Ref(names[r.name])
            if r.name == out0:
                return ir.Ref(prev[b1[-1].name])
            w = weight_of.get(r.name)
            if w is not None and (w.target == p1 or w.target.startswith(p1 + ".")):
                if r.name not in wmap:
                    wi = replace(w, name=f"{w.name}_L{j}", target=_rename_path(w.target, p1, pj))
                    new_inputs.append(wi)
                    wmap[r.name] = wi.name
                return ir.Ref(wmap[r.name])
            return r

        for n in b1:
            new_nodes.append(replace(n, name=names[n.name], args=tuple((k, ir.map_refs(v, sub)) for k, v in n.args),
                                     stack=tuple(_frame(f, p1, pj) for f in n.stack)))
        prev = names
        last_out = names[b1[-1].name]

    def tail(r: ir.Ref) -> ir.Ref:
        return ir.Ref(last_out) if r.name == b1[-1].name else r

    for n in program.nodes[e1:]:
        new_nodes.append(replace(n, args=tuple((k, ir.map_refs(v, tail)) for k, v in n.args)))
    outputs = tuple(ir.map_refs(o, tail) for o in program.outputs)
    modules = list(program.modules)
    extra = [m for m in program.modules if m.path == p1 or m.path.startswith(p1 + ".")]
    at = max(i for i, m in enumerate(modules) if m in extra) + 1
    for j in range(n_layers - 1, 1, -1):
        for m in reversed(extra):
            modules.insert(at, ir.ModuleInfo(_rename_path(m.path, p1, f"{prefix}.{j}"), m.type))
    return replace(program, inputs=tuple(new_inputs), nodes=tuple(new_nodes), outputs=outputs, modules=tuple(modules))
