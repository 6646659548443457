"""fx2mlx's own intermediate representation.

Everything after capture works on these frozen dataclasses; nothing past `capture.py` touches
`torch.fx.Node`. The IR is flat (one graph in execution order, as torch.export produced it) and every
node remembers the module call it came from, so the emitter can rebuild the module tree.

Arguments are bound by the ATen schema's argument names (`node.arg("weight")`), never by position.
A program round-trips through JSON (`Program.to_json()` / `Program.from_json()`), which is how
`ir.json` in a compiled output is written and how C++ can be re-rendered without torch.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterator, Union

IR_VERSION = 2


@dataclass(frozen=True)
class Ref:
    """A reference to a value: a graph input or the output of a node."""

    name: str


@dataclass(frozen=True)
class DType:
    """A torch dtype used as an argument (e.g. `dtype=torch.float16`), by its short name."""

    name: str


@dataclass(frozen=True)
class TensorType:
    """Shape and dtype of a tensor value. Symbolic dimensions are strings (e.g. "s0")."""

    shape: tuple[Union[int, str], ...]
    dtype: str

    @property
    def rank(self) -> int:
        return len(self.shape)

    def is_static_shape(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)



@dataclass(frozen=True)
class ScalarType:
    """A Python scalar value (SymInt from shape arithmetic, or a constant)."""

    kind: str  # "int" | "float" | "bool"


@dataclass(frozen=True)
class TupleType:
    """Several values returned by one op (e.g. lstm, max.dim)."""

    items: tuple[Union[TensorType, ScalarType, None], ...]


ValueType = Union[TensorType, ScalarType, TupleType, None]
# An argument: a Ref, a Python constant, a DType, or a (nested) tuple of those.
Arg = Any


@dataclass(frozen=True)
class ModuleFrame:
    """One level of the module-call stack a node was traced under."""

    key: str  # unique per call (torch's nn_module_stack key; "@1" suffixes mark repeated calls)
    path: str  # module path (state_dict prefix), "" for the root
    type: str  # qualified class name, e.g. "torch.nn.modules.linear.Linear"

    @property
    def type_name(self) -> str:
        return self.type.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class SourceLoc:
    """The user-facing source line an op came from (innermost frame outside torch itself)."""

    file: str
    line: int
    function: str = ""
    code: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" + (f" in {self.function}" if self.function else "")


@dataclass(frozen=True)
class Node:
    name: str
    target: str  # "aten.add.Tensor", "operator.getitem", "fx2mlx.snake1d", ...
    args: tuple[tuple[str, Arg], ...]  # (schema argument name, value), all arguments, defaults filled
    type: ValueType
    stack: tuple[ModuleFrame, ...] = ()
    source: SourceLoc | None = None

    def arg(self, name: str, default: Any = ...) -> Arg:
        for k, v in self.args:
            if k == name:
                return v
        if default is ...:
            raise KeyError(f"{self.target} has no argument {name!r}")
        return default

    @property
    def kwargs(self) -> dict[str, Arg]:
        return dict(self.args)

    @property
    def module_path(self) -> str:
        return self.stack[-1].path if self.stack else ""

    def refs(self) -> Iterator[Ref]:
        yield from iter_refs([v for _, v in self.args])


@dataclass(frozen=True)
class Input:
    name: str
    kind: str  # "user" | "parameter" | "buffer" | "constant"
    type: ValueType
    target: str | None = None  # state_dict key (or constant name) for non-user inputs


@dataclass(frozen=True)
class ModuleInfo:
    path: str
    type: str
    # per call of the module (execution order): its tensor forward arguments, each
    # (parameter name, shape, dtype, source); source: ("input", user input) | ("call", path, index) | ()
    signature: tuple = ()


@dataclass(frozen=True)
class Dim:
    """A dynamic dimension: one symbol of torch.export, the user-input axes that carry it, its range."""

    symbol: str  # as it appears in TensorType shapes, e.g. "s53"
    label: str  # readable name, e.g. "batch", "seq", "x_dim2"
    axes: tuple[tuple[str, int], ...]  # (user input name, axis) that have this size
    min: int = 0
    max: int | None = None  # None: unbounded


@dataclass(frozen=True)
class StaticDim:
    """A user-input axis kept at its example size, and why."""

    input: str
    axis: int
    size: int
    reason: str


@dataclass(frozen=True)
class Program:
    inputs: tuple[Input, ...]
    nodes: tuple[Node, ...]
    outputs: tuple[Arg, ...]  # flat user outputs
    in_spec: Any  # JSON pytree spec of the user inputs (see capture.spec_to_json)
    out_spec: Any  # JSON pytree spec of the outputs
    modules: tuple[ModuleInfo, ...] = ()  # every submodule of the source model, in named_modules order
    meta: tuple[tuple[str, str], ...] = ()  # source, versions (informational only)
    tied: tuple[tuple[str, str], ...] = ()  # tied weights: alias state_dict name -> the captured name
    mutations: tuple[tuple[str, Arg], ...] = ()  # buffer state_dict name -> its new value (buffer updates)
    example_shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()  # user input -> the example's shape
    dims: tuple[Dim, ...] = ()  # dynamic dimensions of the user inputs
    static_dims: tuple[StaticDim, ...] = ()  # user-input axes kept static although asked dynamic

    # -- helpers -------------------------------------------------------------------------------
    @property
    def user_inputs(self) -> list[Input]:
        return [i for i in self.inputs if i.kind == "user"]

    @property
    def weight_inputs(self) -> list[Input]:
        return [i for i in self.inputs if i.kind != "user"]

    @property
    def aliases(self) -> dict[str, str]:
        """Tied weights: alias state_dict name -> the captured (stored) name."""
        return dict(self.tied)

    def example_shape(self, name: str) -> tuple[int, ...] | None:
        return dict(self.example_shapes).get(name)

    def dim_labels(self) -> dict[str, str]:
        """symbol -> readable label, for every dynamic dimension."""
        return {d.symbol: d.label for d in self.dims}

    def weight_names(self) -> dict[str, list[str]]:
        """Weight input name -> every state_dict name it has (stored name first, then aliases)."""
        al = self.aliases
        out = {}
        for i in self.weight_inputs:
            out[i.name] = [i.target] + sorted(a for a, c in al.items() if c == i.target)
        return out

    def node_map(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}

    def replace_nodes(self, nodes: tuple[Node, ...], outputs: tuple[Arg, ...] | None = None) -> "Program":
        from dataclasses import replace

        return replace(self, nodes=tuple(nodes), outputs=self.outputs if outputs is None else tuple(outputs))

    # -- JSON ----------------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps({"ir_version": IR_VERSION, **_enc(self)}, indent=1)

    @staticmethod
    def from_json(text: str) -> "Program":
        data = json.loads(text)
        version = data.pop("ir_version", 1) if isinstance(data, dict) else None
        if version != IR_VERSION:
            raise ValueError(f"IR version {version} is not this fx2mlx's ({IR_VERSION}): re-run `fx2mlx compile`")
        return _dec(data)


def iter_refs(value: Arg) -> Iterator[Ref]:
    if isinstance(value, Ref):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from iter_refs(v)


def map_refs(value: Arg, fn) -> Arg:
    if isinstance(value, Ref):
        return fn(value)
    if isinstance(value, (tuple, list)):
        return tuple(map_refs(v, fn) for v in value)
    return value


# -- JSON encoding: dataclasses become {"_": ClassName, ...fields}; tuples become lists ----------
_CLASSES = {c.__name__: c for c in (Ref, DType, TensorType, ScalarType, TupleType, ModuleFrame,
                                    SourceLoc, Node, Input, ModuleInfo, Dim, StaticDim, Program)}


def _enc(v: Any) -> Any:
    if type(v).__name__ in _CLASSES and hasattr(v, "__dataclass_fields__"):
        d = {"_": type(v).__name__}
        for k in v.__dataclass_fields__:
            raw = isinstance(v, Program) and k in ("in_spec", "out_spec")  # specs are plain JSON
            d[k] = getattr(v, k) if raw else _enc(getattr(v, k))
        return d
    if isinstance(v, (tuple, list)):
        return [_enc(x) for x in v]
    if isinstance(v, dict):
        return {"_dict": [[k, _enc(x)] for k, x in v.items()]}
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        return {"_float": repr(v)}
    if isinstance(v, complex):
        return {"_complex": [_enc(v.real), _enc(v.imag)]}
    return v


def _dec(v: Any) -> Any:
    if isinstance(v, dict):
        if "_float" in v:
            return float(v["_float"])
        if "_complex" in v:
            re_, im = (_dec(x) for x in v["_complex"])
            return complex(re_, im)
        if "_dict" in v:
            return {k: _dec(x) for k, x in v["_dict"]}
        cls = _CLASSES[v["_"]]
        kwargs = {k: _dec(x) for k, x in v.items()
                  if k != "_" and not (cls is Program and k in ("in_spec", "out_spec"))}
        if cls is Node:
            kwargs["args"] = tuple((k, x) for k, x in kwargs["args"])
        if cls is Dim:
            kwargs["axes"] = tuple(tuple(a) for a in kwargs["axes"])
        if cls is Program:
            for k in ("meta", "tied", "mutations", "example_shapes"):
                if k in kwargs:
                    kwargs[k] = tuple(tuple(m) for m in kwargs[k])
        if cls is Program:
            kwargs["in_spec"] = v["in_spec"]  # specs stay plain JSON
            kwargs["out_spec"] = v["out_spec"]
        return cls(**kwargs)
    if isinstance(v, list):
        return tuple(_dec(x) for x in v)
    return v
