"""Rebuild the module tree from the flat IR: which nodes ran inside which module call, what each call
takes and returns, which parameters it owns. Calls of the same module type whose code is the same
share one class (decided by the emitter). Also the emitter's tree (`ModNode`, `ClassDef`) and the
naming of attributes and local values."""
from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field

from . import ir


@dataclass(eq=False)
class Call:
    """One call of one module: the nodes it ran (and nested calls), in execution order."""

    key: str
    path: str
    type: str
    parent: "Call | None" = None
    items: list = field(default_factory=list)  # ir.Node | Call
    inputs: list[str] = field(default_factory=list)  # value names coming from outside
    outputs: list[str] = field(default_factory=list)  # value names used outside
    # dynamic sizes read from a tensor input instead of passed in: value -> (tensor input, axis)
    derived: dict[str, tuple[str, int]] = field(default_factory=dict)

    @property
    def type_name(self) -> str:
        return self.type.rsplit(".", 1)[-1]

    def walk(self):
        for it in self.items:
            if isinstance(it, Call):
                yield it
                yield from it.walk()

    def nodes(self):
        for it in self.items:
            if isinstance(it, Call):
                yield from it.nodes()
            else:
                yield it


@dataclass
class ModNode:
    """One module of the emitted tree: its parameters and calls, then (once built) its body and class."""

    path: str
    type: str
    children: dict = field(default_factory=dict)  # name -> ModNode
    params: dict = field(default_factory=dict)  # name -> (shape, dtype)
    calls: list = field(default_factory=list)  # Call
    body: tuple | None = None  # (args, lines, returns) of the forward
    cls: "ClassDef | None" = None
    ctor: dict = field(default_factory=dict)  # constructor kwargs for this instance
    is_list: bool = False

    @property
    def type_name(self) -> str:
        return re.sub(r"\W", "_", self.type.rsplit(".", 1)[-1])


@dataclass
class ClassDef:
    """One class of the emitted module, shared by the instances whose code is the same."""

    name: str
    torch_type: str
    body: tuple | None
    ctor_params: list = field(default_factory=list)
    init_lines: list = field(default_factory=list)
    instances: list = field(default_factory=list)
    builtin: bool = False  # an mlx.nn layer (nn.Linear, ...): not emitted, constructed positionally
    suffix: str = ""  # fixed constructor arguments of a builtin (", bias=False")


def owns(path: str, target: str) -> bool:
    return path == "" or target.startswith(path + ".")


def build_calls(program: ir.Program, root_type: str) -> Call:
    """The module-call tree. A module called several times with different code (e.g. other shapes baked
    into its ops) cannot be one class `__call__`: its calls are inlined into their callers."""
    flatten: set[str] = set()
    while True:
        root = _build(program, root_type, flatten)
        sigs: dict[str, set] = {}
        for c in root.walk():
            sigs.setdefault(c.path, set()).add(_signature(c, program))
        differ = {p for p, s in sigs.items() if len(s) > 1}
        if not differ:
            return root
        flatten |= differ


def _signature(c: Call, program: ir.Program) -> tuple:
    """The structure of one call, independent of value names: ops, constants, local dataflow."""
    local: dict = {v: i for i, v in enumerate(c.inputs)}
    local.update({v: ("size", local[t], axis) for v, (t, axis) in c.derived.items()})
    weights = {i.name: i.target for i in program.weight_inputs}

    def canon(v):
        if isinstance(v, ir.Ref):
            if v.name in local:
                return ("v", local[v.name])
            return ("w", weights.get(v.name, v.name)[len(c.path) + 1:])
        if isinstance(v, tuple):
            return tuple(canon(x) for x in v)
        return v

    items = []
    for it in c.items:
        if isinstance(it, Call):
            items.append(("call", it.path[len(c.path) + 1:], tuple(canon(ir.Ref(v)) for v in it.inputs)))
            for o in it.outputs:
                local[o] = len(local)
        else:
            items.append((it.target, tuple((k, canon(v)) for k, v in it.args)))
            local[it.name] = len(local)
    return tuple(items) + (tuple(canon(ir.Ref(o)) for o in c.outputs),)


def _build(program: ir.Program, root_type: str, flatten: set[str]) -> Call:
    root = Call("", "", root_type)
    stack = [root]
    closed: set[str] = set()
    broken: set[int] = set()
    for n in program.nodes:
        frames = [f for f in n.stack if f.path not in flatten]
        k = 0
        while k < len(frames) and k + 1 < len(stack) and stack[k + 1].key == frames[k].key:
            k += 1
        while len(stack) > k + 1:
            closed.add(stack.pop().key)
        for f in frames[k:]:
            c = Call(f.key, f.path, f.type, stack[-1])
            if f.key in closed:  # the same call resumed after another one: keep its nodes in the parent
                broken.add(id(c))
                for other in root.walk():
                    if other.key == f.key:
                        broken.add(id(other))
            stack[-1].items.append(c)
            stack.append(c)
        stack[-1].items.append(n)
    _inline(root, broken)
    _compute_interfaces(root, program)
    return root


def _inline(call: Call, broken: set[int]) -> None:
    items = []
    for it in call.items:
        if isinstance(it, Call):
            _inline(it, broken)
            if id(it) in broken:
                for sub in it.items:
                    if isinstance(sub, Call):
                        sub.parent = call
                    items.append(sub)
                continue
        items.append(it)
    call.items = items


def _compute_interfaces(root: Call, program: ir.Program) -> None:
    chain: dict[str, list[Call]] = {}  # value -> enclosing calls, outermost first (root excluded)

    def visit(c: Call, path: list[Call]):
        for it in c.items:
            if isinstance(it, Call):
                visit(it, path + [it])
            else:
                chain[it.name] = path

    visit(root, [])
    weights = program.weight_names()
    seen_in: dict[int, set] = {}
    seen_out: dict[int, set] = {}

    def add(lst_owner: Call, attr: str, name: str, seen: dict):
        s = seen.setdefault(id(lst_owner), set())
        if name not in s:
            s.add(name)
            getattr(lst_owner, attr).append(name)

    def use(value: str, user_chain: list[Call]):
        def_chain = chain.get(value, [])
        k = 0
        while k < len(def_chain) and k < len(user_chain) and def_chain[k] is user_chain[k]:
            k += 1
        for c in def_chain[k:]:
            add(c, "outputs", value, seen_out)
        for c in user_chain[k:]:
            if value in weights and any(owns(c.path, t) for t in weights[value]):
                continue
            add(c, "inputs", value, seen_in)

    for n in program.nodes:
        for r in n.refs():
            use(r.name, chain[n.name])
    for o in program.outputs:
        for r in ir.iter_refs(o):
            use(r.name, [])
    # outputs in definition order
    order = {n.name: i for i, n in enumerate(program.nodes)}
    for c in root.walk():
        c.outputs.sort(key=lambda v: order.get(v, -1))
    _derive_sizes(root, program)


def size_symbol(node: ir.Node, types: dict) -> str | None:
    """The symbol (e.g. "s53") a `sym_size.int` node reads, or None."""
    if node.target != "aten.sym_size.int" or not isinstance(node.arg("self"), ir.Ref):
        return None
    t = types.get(node.arg("self").name)
    dim = node.arg("dim")
    if not isinstance(t, ir.TensorType) or not isinstance(dim, int) or not -t.rank <= dim < t.rank:
        return None
    sym = t.shape[dim]
    return sym if isinstance(sym, str) and sym.isidentifier() else None


def value_types(program: ir.Program) -> dict:
    types = {i.name: i.type for i in program.inputs}
    types.update({n.name: n.type for n in program.nodes})
    return types


def _derive_sizes(root: Call, program: ir.Program) -> None:
    """A dynamic size (a `sym_size.int` value) that a call gets from outside is read from one of its
    tensor inputs that has that size (`seq = hidden_states.shape[1]`) instead of being passed in."""
    types = value_types(program)
    nodes = program.node_map()
    for c in root.walk():
        for v in list(c.inputs):
            n = nodes.get(v)
            sym = size_symbol(n, types) if n is not None else None
            if sym is None:
                continue
            for t in c.inputs:
                tt = types.get(t)
                if t not in c.derived and isinstance(tt, ir.TensorType) and sym in tt.shape:
                    c.derived[v] = (t, tt.shape.index(sym))
                    c.inputs.remove(v)
                    break


# -- attribute paths as code ---------------------------------------------------------------------
_NN_MODULE_ATTRS: set[str] | None = None


def _reserved() -> set[str]:
    global _NN_MODULE_ATTRS
    if _NN_MODULE_ATTRS is None:
        import mlx.nn as nn

        _NN_MODULE_ATTRS = set(dir(nn.Module))
    return _NN_MODULE_ATTRS


def attr_code(base: str, rel: str, list_paths: set[str], prefix: str = "", renamed: dict | None = None) -> str:
    """`self` + relative dotted path -> code (`self.layer[0].attention.self.query.weight`); `renamed`:
    name part -> the attribute used for it."""
    code = base
    cur = prefix
    for part in rel.split(".") if rel else []:
        attr = (renamed or {}).get(part, part)
        if cur in list_paths and part.isdigit():
            code += f"[{part}]"
        elif attr.isidentifier() and not keyword.iskeyword(attr) and attr not in _reserved():
            code += f".{attr}"
        else:
            code += f"[{attr!r}]"
        cur = f"{cur}.{part}" if cur else part
    return code


def base_name(value: str) -> str:
    """`linear_12` -> `linear` (local names are renumbered per class)."""
    return re.sub(r"_\d+$", "", value) or "v"


def result_name(rel: str) -> str:
    """The local name of a module call's result: `attention_out = self.attention(...)`."""
    parts = [p for p in rel.split(".") if not p.isdigit()] or ["layer"]
    attr = parts[-1].lstrip("_") or "module"
    if attr in ("out", "output") or attr.endswith(("_out", "_output")):
        return attr
    return f"{attr}_out"
