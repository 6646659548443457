"""Forward-argument names of module calls, for readable emitted code.

torch.export does not say which `forward` parameter each input of a module call binds to. At capture,
`record_signatures` runs the module once eagerly with forward pre-hooks and records, per module call,
the tensor arguments by parameter name (shape, dtype, and which earlier module call returned that
tensor, or which user input it is). `input_names` matches those to the inputs of the IR's module calls
(`modtree.Call.inputs`) by that provenance, then by unique shape and dtype; an input it cannot place
keeps its default name. Names only: nothing here changes what the emitted code computes.
"""
from __future__ import annotations

import inspect
from dataclasses import replace

from . import ir


def record_signatures(program: ir.Program, module, args: tuple, kwargs: dict | None = None) -> ir.Program:
    """`program` with `ModuleInfo.signature` filled from one eager run of `module` (unchanged when the
    module is on the meta device or the run fails). Buffers are restored after the run."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return program
    if module is None or not program.modules:
        return program
    try:
        if any(t.is_meta for t in list(module.parameters()) + list(module.buffers())):
            return program
        calls = _record(module, tuple(args), dict(kwargs or {}), program)
    except Exception:  # noqa: BLE001 - names are a nicety: never fail a compile for them
        return program
    mods = tuple(replace(m, signature=tuple(calls.get(m.path, ()))) if m.path else m for m in program.modules)
    return replace(program, modules=mods)


def _record(module, args: tuple, kwargs: dict, program: ir.Program) -> dict:
    import torch

    flat, _ = torch.utils._pytree.tree_flatten((args, kwargs))
    tensors = [t for t in flat if isinstance(t, torch.Tensor)]
    source: dict[int, tuple] = {id(t): ("input", i.name) for t, i in zip(tensors, program.user_inputs)}
    keep = list(tensors)  # ids stay unique while the run holds every tensor it saw
    calls: dict[str, list] = {}
    handles = []

    def pre(path):
        def hook(mod, a, kw):
            try:
                bound = inspect.signature(mod.forward).bind(*a, **kw)
            except TypeError:
                calls.setdefault(path, []).append(())
                return
            rec = []
            for name, value in bound.arguments.items():
                if isinstance(value, torch.Tensor):
                    keep.append(value)
                    rec.append((name, tuple(int(d) for d in value.shape), str(value.dtype).replace("torch.", ""),
                                source.get(id(value), ())))
            calls.setdefault(path, []).append(tuple(rec))
        return hook

    def post(path):
        def hook(mod, a, kw, out):
            idx = len(calls.get(path, [])) - 1
            leaves, _ = torch.utils._pytree.tree_flatten(out)
            for t in leaves:
                if isinstance(t, torch.Tensor) and id(t) not in source:
                    keep.append(t)
                    source[id(t)] = ("call", path, idx)
        return hook

    for path, m in module.named_modules():
        if path:
            handles.append(m.register_forward_pre_hook(pre(path), with_kwargs=True))
            handles.append(m.register_forward_hook(post(path), with_kwargs=True))
    saved = {n: b.detach().clone() for n, b in module.named_buffers()}
    try:
        with torch.no_grad():
            module(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()
        with torch.no_grad():
            for n, b in module.named_buffers():
                if n in saved:
                    b.copy_(saved[n])
    return calls


# --------------------------------------------------------------------------------------------------
# matching (used by the emitter; no torch)
# --------------------------------------------------------------------------------------------------
def call_index(key: str) -> int:
    """torch's nn_module_stack key of a module's n-th call ends in "@n" (none for the first)."""
    head, sep, tail = key.rpartition("@")
    return int(tail) if sep and tail.isdigit() else 0


def input_names(program: ir.Program, calls: list) -> dict[int, list]:
    """id(Call) -> a name (or None) per input of the call, where the recorded signature places it."""
    sigs = {m.path: m.signature for m in program.modules if getattr(m, "signature", ())}
    if not sigs:
        return {}
    types = {i.name: i.type for i in program.inputs}
    types.update({n.name: n.type for n in program.nodes})
    nodes = program.node_map()
    users = {i.name for i in program.user_inputs}
    sizes = _symbol_sizes(program)
    out = {}
    for c in calls:
        recs = sigs.get(c.path)
        idx = call_index(c.key)
        if not recs or idx >= len(recs):
            continue
        out[id(c)] = _match(c, recs[idx], types, nodes, users, sizes)
    return out


def _symbol_sizes(program: ir.Program) -> dict:
    sizes = {}
    ex = dict(program.example_shapes)
    for i in program.user_inputs:
        if isinstance(i.type, ir.TensorType) and i.name in ex:
            for d, n in zip(i.type.shape, ex[i.name]):
                if isinstance(d, str):
                    sizes[d] = n
    return sizes


def _fits(t, shape, dtype, sizes) -> bool:
    if not isinstance(t, ir.TensorType) or t.dtype != dtype or len(t.shape) != len(shape):
        return False
    return all(d == n if isinstance(d, int) else sizes.get(d, n) == n for d, n in zip(t.shape, shape))


def _source(v: str, nodes: dict, users: set) -> tuple:
    if v in users:
        return ("input", v)
    n = nodes.get(v)
    if n is None or not n.stack:
        return ()
    f = n.stack[-1]
    return ("call", f.path, call_index(f.key))


def _match(c, rec, types, nodes, users, sizes) -> list:
    names: list = [None] * len(c.inputs)
    free = list(range(len(rec)))
    tensors = [j for j, v in enumerate(c.inputs) if isinstance(types.get(v), ir.TensorType)]
    # 1. the tensor came from the same module call (or is the same user input) and fits
    for j in tensors:
        src = _source(c.inputs[j], nodes, users)
        if not src:
            continue
        cand = [k for k in free if tuple(rec[k][3]) == src and _fits(types[c.inputs[j]], rec[k][1], rec[k][2], sizes)]
        if len(cand) == 1 or (cand and all(rec[k][3] == rec[cand[0]][3] for k in cand)
                              and sum(_source(c.inputs[i], nodes, users) == src for i in tensors) == 1):
            names[j] = rec[cand[0]][0]
            free.remove(cand[0])
    # 2. the only remaining input and the only remaining argument of that shape and dtype
    for j in tensors:
        if names[j] is not None:
            continue
        t = types[c.inputs[j]]
        cand = [k for k in free if _fits(t, rec[k][1], rec[k][2], sizes)]
        rivals = [i for i in tensors if names[i] is None and cand and _fits(types[c.inputs[i]], rec[cand[0]][1],
                                                                             rec[cand[0]][2], sizes)]
        if len(cand) == 1 and rivals == [j]:
            names[j] = rec[cand[0]][0]
            free.remove(cand[0])
    return names
