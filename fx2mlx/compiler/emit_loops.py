"""Loops over a ModuleList in the emitted forward bodies. A run of calls of every member of a list whose
members share one class, each fed the previous member's output, is emitted as

    for layer in self.layers:
        hidden_states = layer(hidden_states, mask)

instead of one line per member. A value computed just before each call from the member's index (a KV
cache's `cache_entry(cache, k)`) becomes an argument written with the loop index
(`for i, layer in enumerate(self.layers)`)."""
from __future__ import annotations

import re
from dataclasses import dataclass

from . import ir
from .lowering import Lowered
from .modtree import Call, ModNode, result_name


@dataclass
class Loop:
    """One loop: the items `start:end` of a call's body, replaced."""

    list: str  # the list's module path
    calls: list[Call]  # the members' calls, in member order
    start: int  # the first item replaced (the per-member value before the first call, if any)
    end: int  # one past the last call
    chain: int  # the argument that carries the previous member's output
    slot: int | None  # the argument computed from the member's index, if any
    template: str | None  # that argument's code: `{i}` for the index, values as `\0name\0`
    reuse: bool  # the value fed to the first member is not read elsewhere: its name can carry the loop


class LoopFinder:
    """Finds the loops in the bodies of one program's calls."""

    def __init__(self, lowered: Lowered, lists: dict[str, ModNode], users: dict[str, list[ir.Node]],
                 weight_names: dict):
        self.lowered = lowered
        self.lists = lists  # path -> the ModuleList's node (its members' classes are read when finding)
        self.users = users
        self.weight_names = weight_names
        program = lowered.program
        self.root_outputs = ({r.name for o in program.outputs for r in ir.iter_refs(o)}
                             | {v.name for _, v in program.mutations if isinstance(v, ir.Ref)})

    def find(self, call: Call, is_root: bool) -> dict[int, Loop]:
        """The loops of `call`'s body, by the index of the item where each starts."""
        items = call.items
        at: dict[str, list] = {}  # list path -> [(item index, member index)]
        for i, it in enumerate(items):
            if isinstance(it, Call):
                parent, _, last = it.path.rpartition(".")
                if parent in self.lists and last.isdigit() and parent.startswith(call.path):
                    at.setdefault(parent, []).append((i, int(last)))
        pos = {}  # value -> index of the item that defines or contains it
        for i, it in enumerate(items):
            for n in (it.nodes() if isinstance(it, Call) else [it]):
                pos[n.name] = i
        outputs = set(call.outputs) | (self.root_outputs if is_root else set())
        out = {}
        for lst, hits in at.items():
            loop = self._match(call, lst, hits, pos, outputs)
            if loop:
                out[loop.start] = loop
        return out

    def _match(self, call: Call, lst: str, hits: list, pos: dict, outputs: set) -> Loop | None:
        """The loop over list `lst` whose members are called at `hits`, if the calls make one."""
        items = call.items
        members = self.lists[lst].children
        n = len(members)
        if n < 2 or [k for _, k in hits] != list(range(n)):
            return None
        if len({id(m.cls) for m in members.values()}) != 1 or any(m.cls is None for m in members.values()):
            return None
        idxs = [i for i, _ in hits]
        calls = [items[i] for i in idxs]
        gap = idxs[1] - idxs[0] - 1
        if gap > 1 or idxs[0] - gap < 0 or any(b - a - 1 != gap for a, b in zip(idxs, idxs[1:])):
            return None
        pre = [items[i - 1] if gap else None for i in idxs]
        if any(p is not None and (isinstance(p, Call) or isinstance(p.type, ir.TupleType)) for p in pre):
            return None
        if any(len(c.outputs) != 1 or len(c.inputs) != len(calls[0].inputs) for c in calls):
            return None
        # the per-member value (a node before each call, e.g. `cache_entry(cache, k)`), with k as `i`
        template, slot = None, None
        if gap:
            exprs = [self.lowered.render(p.name, lambda v: "\0" + v + "\0") for p in pre]
            if len(re.findall(r"\b0\b", exprs[0])) != 1:
                return None
            template = re.sub(r"\b0\b", "{i}", exprs[0])
            if any(template.replace("{i}", str(k)) != e for k, e in enumerate(exprs)):
                return None
            for p, c in zip(pre, calls):
                if p.name not in c.inputs or p.name in outputs or any(u not in set(c.nodes()) for u in self.users.get(p.name, [])):
                    return None
                j = c.inputs.index(p.name)
                if slot is None:
                    slot = j
                elif slot != j:
                    return None
        chain = None
        for k in range(1, n):
            prev, c = calls[k - 1], calls[k]
            for j, (a, b) in enumerate(zip(calls[0].inputs, c.inputs)):
                if j == slot:
                    continue
                if b == prev.outputs[0]:
                    if chain not in (None, j):
                        return None
                    chain = j
                elif a != b:
                    return None
            o = prev.outputs[0]
            if o in outputs or any(u not in set(c.nodes()) for u in self.users.get(o, [])):
                return None
        if chain is None:
            return None
        v0 = calls[0].inputs[chain]
        reuse = (v0 not in outputs and v0 not in self.weight_names
                 and all(pos.get(u.name, -1) <= idxs[0] for u in self.users.get(v0, [])))
        return Loop(list=lst, calls=calls, start=idxs[0] - gap, end=idxs[-1] + 1, chain=chain, slot=slot,
                    template=template, reuse=reuse)


def emit_loop(loop: Loop, seq: str, names: dict, namer, fresh) -> list[str]:
    """The lines of `loop` over the list `seq` (its code, `self.layers`); `names` gets the loop's result."""
    lines = []
    calls = loop.calls
    v0 = calls[0].inputs[loop.chain]
    if loop.reuse and v0 in names:
        h = names[v0]
    else:
        h = fresh(result_name(loop.list.rsplit(".", 1)[-1]))
        lines.append(f"{h} = {namer(v0)}")
    attr = loop.list.rsplit(".", 1)[-1].lstrip("_")
    item = fresh(attr[:-1] if len(attr) > 1 and attr.endswith("s") else attr if attr.isidentifier() else "layer")
    i = fresh("i") if loop.slot is not None else None
    args = []
    for j, v in enumerate(calls[0].inputs):
        if j == loop.chain:
            args.append(h)
        elif j == loop.slot:
            args.append(re.sub("\0(.*?)\0", lambda m: namer(m.group(1)), loop.template).replace("{i}", i))
        else:
            args.append(namer(v))
    lines.append(f"for {i}, {item} in enumerate({seq}):" if loop.slot is not None else f"for {item} in {seq}:")
    lines.append(f"    {h} = {item}({', '.join(args)})")
    names[calls[-1].outputs[0]] = h
    return lines
