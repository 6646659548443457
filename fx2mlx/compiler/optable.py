"""Op-mapping tables: `fx2mlx/op_mappings/*.yaml`, one file per op family.

Each entry names one exact ATen overload and its schema string, checked against torch's at load time so
that a torch upgrade that changes a signature fails loudly. Entries are parsed into frozen, lossless
dataclasses; unknown keys, malformed templates and duplicates fail with `file:line`.

    - op: aten.add.Tensor
      schema: "add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor"
      py: "{{ self_ }} + {{ other }}{% if alpha != 1 %} * {{ alpha }}{% endif %}"
      cpp: "mx::add({{ self_ }}, {{ other }})"

Templates are Jinja expressions over the schema's argument names (`self` is written `self_`, since Jinja
reserves `self`). Tensor arguments render as the value's name and carry `.shape`, `.dtype`, `.rank`;
constants are plain Python values (lists, numbers, None, dtypes) and render as code. `out` describes the
op's result (`out.shape`, `out.dtype`, `out.rank`).

`tolerance: {atol, rtol}` (float32-calibrated; default DEFAULT_TOL) widens, never tightens, the dtype
tolerance with which the op checks (`fx2mlx.conformance.compare.op_tolerance`) compare a call whose
graph contains the op with PyTorch. The golden harness uses its own per-dtype tolerances.
"""
from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

import jinja2
import jinja2.meta
import yaml

from .errors import TableError
from .forms import TEMPLATE_NAMES as TEMPLATE_GLOBALS

TABLE_DIR = Path(__file__).resolve().parent.parent / "op_mappings"
_KEYS = {"op", "schema", "py", "cpp", "tolerance", "weights", "requires", "notes", "promote", "opmath", "runtime"}
DEFAULT_TOL = (1e-5, 1e-5)  # (atol, rtol), float32 elementwise work


@dataclass(frozen=True)
class Location:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class OpEntry:
    op: str  # "aten.add.Tensor"
    schema: str | None  # "add.Tensor(Tensor self, ...) -> Tensor" (None for Python operator pseudo-ops)
    py: str
    cpp: str | None
    arg_names: tuple[str, ...]
    tolerance: tuple[float, float] = DEFAULT_TOL
    weights: tuple[tuple[str, str], ...] = ()  # (argument name, layout transform name)
    requires: tuple[tuple[str, str], ...] = ()  # (Jinja condition, message when it does not hold)
    promote: tuple[str, ...] = ()  # tensor arguments cast to a common dtype first (torch's promotion)
    runtime: tuple[str, ...] = ()  # fx2mlx.runtime modules the form calls (vendored into the output)
    notes: str = ""
    # tensor arguments computed in float32 when they are float16/bfloat16, the result rounded once, as
    # PyTorch's CPU kernels do through their "opmath" type (matters for compound formulas: floor(a / b),
    # fmod, running sums)
    opmath: tuple[str, ...] = ()
    loc: Location = Location("?", 0)

    @property
    def family(self) -> str:
        return Path(self.loc.file).stem


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader, node, deep=False):
    mapping = loader.construct_mapping(node, deep=deep)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _env() -> jinja2.Environment:
    return jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _schema_arg_names(schema: str) -> tuple[str, ...]:
    inner = schema[schema.index("(") + 1: schema.rindex(") ->")]
    names = []
    depth = 0
    cur = ""
    for ch in inner:  # split on top-level commas
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            names.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        names.append(cur)
    out = []
    for part in names:
        part = part.strip()
        if part == "*" or not part:
            continue
        decl = part.split("=")[0].strip()
        out.append(decl.split()[-1])
    return tuple(out)


def _torch_schema(op: str) -> str | None:
    try:
        import torch
    except ImportError:  # regen without torch: the schema was checked when the output was compiled
        return None
    ns, name, overload = op.split(".")
    try:
        packet = getattr(getattr(torch.ops, ns), name)
        ov = getattr(packet, overload)
    except AttributeError:
        return "<missing>"
    return str(ov._schema).split("::", 1)[1]


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s.strip())


def _clean(d):
    return {k: v for k, v in d.items() if k != "__line__"} if isinstance(d, dict) else d


def parse_entry(raw: dict, file: str, check_schema: bool = True) -> OpEntry:
    line = raw.pop("__line__", 0)
    loc = Location(file, line)
    unknown = set(raw) - _KEYS
    if unknown:
        raise TableError(f"{loc}: unknown key(s) {sorted(unknown)} in entry {raw.get('op')!r}")
    op = raw.get("op")
    if not isinstance(op, str) or op.count(".") != 2:
        raise TableError(f"{loc}: 'op' must be 'namespace.name.overload', got {op!r}")
    schema = raw.get("schema")
    is_aten = op.startswith(("aten.", "prims.", "quantized_decomposed."))
    if is_aten:
        if not isinstance(schema, str):
            raise TableError(f"{loc}: {op}: 'schema' (the ATen schema string) is required")
        if check_schema:
            real = _torch_schema(op)
            if real == "<missing>":
                raise TableError(f"{loc}: {op} does not exist in this torch")
            if real is not None and _norm(real) != _norm(schema):
                raise TableError(f"{loc}: {op}: schema mismatch with torch:\n  table: {schema}\n  torch: {real}")
        arg_names = _schema_arg_names(schema)
    else:
        arg_names = ("a", "b", "c", "d")
    py = raw.get("py")
    if not isinstance(py, str):
        raise TableError(f"{loc}: {op}: 'py' (the MLX Python form) is required")
    allowed = {("self_" if a == "self" else a) for a in arg_names} | TEMPLATE_GLOBALS
    for key in ("py", "cpp"):
        text = raw.get(key)
        if text is None:
            continue
        try:
            ast = _env().parse(text)
        except jinja2.TemplateSyntaxError as e:
            raise TableError(f"{loc}: {op}: bad {key} template: {e}") from e
        bad = jinja2.meta.find_undeclared_variables(ast) - allowed
        if bad:
            raise TableError(f"{loc}: {op}: {key} template uses {sorted(bad)}, not arguments of the schema "
                             f"(arguments: {', '.join(arg_names)}; write `self` as `self_`)")
    tol = _clean(raw.get("tolerance") or {})
    if not isinstance(tol, dict) or set(tol) - {"atol", "rtol"}:
        raise TableError(f"{loc}: {op}: tolerance must be {{atol: .., rtol: ..}}")
    weights = _clean(raw.get("weights") or {})
    for a in weights:
        if a not in arg_names:
            raise TableError(f"{loc}: {op}: weights names {a!r}, not an argument of the schema")
    requires = raw.get("requires") or []
    req = []
    for r in requires:
        if not isinstance(r, dict) or set(r) - {"if", "else", "__line__"}:
            raise TableError(f"{loc}: {op}: each requires item is {{if: <condition>, else: <message>}}")
        req.append((str(r["if"]), str(r.get("else", "not supported"))))
    promote = tuple(raw.get("promote") or ())
    for a in promote:
        if a not in arg_names:
            raise TableError(f"{loc}: {op}: promote names {a!r}, not an argument of the schema")
    opmath = tuple(raw.get("opmath") or ())
    for a in opmath:
        if a not in arg_names:
            raise TableError(f"{loc}: {op}: opmath names {a!r}, not an argument of the schema")
    runtime = tuple(raw.get("runtime") or ())
    for r in runtime:
        if not (TABLE_DIR.parent / "runtime" / f"{r}.py").is_file():
            raise TableError(f"{loc}: {op}: runtime module {r!r} does not exist in fx2mlx/runtime/")
    return OpEntry(op, schema, py, raw.get("cpp"), arg_names,
                   (float(tol.get("atol", DEFAULT_TOL[0])), float(tol.get("rtol", DEFAULT_TOL[1]))),
                   tuple((k, str(v)) for k, v in weights.items()), tuple(req), promote, runtime,
                   str(raw.get("notes", "") or ""), opmath=opmath, loc=loc)


def load_file(path: Path, check_schema: bool = True) -> list[OpEntry]:
    rel = os.path.relpath(path, TABLE_DIR.parent.parent) if str(path).startswith(str(TABLE_DIR.parent.parent)) else str(path)
    try:
        doc = yaml.load(path.read_text(), Loader=_LineLoader)
    except yaml.YAMLError as e:
        raise TableError(f"{rel}: invalid YAML: {e}") from e
    if not isinstance(doc, dict) or "ops" not in doc or not isinstance(doc["ops"], list):
        raise TableError(f"{rel}:1: a table file is a mapping with a list under 'ops'")
    return [parse_entry(dict(e), rel, check_schema) for e in doc["ops"]]


def load_tables(directory: Path = TABLE_DIR, check_schema: bool = True) -> dict[str, OpEntry]:
    table: dict[str, OpEntry] = {}
    for path in sorted(directory.glob("*.yaml")):
        for entry in load_file(path, check_schema):
            if entry.op in table:
                raise TableError(f"{entry.loc}: duplicate entry for {entry.op} (first at {table[entry.op].loc})")
            table[entry.op] = entry
    return table


@functools.lru_cache(maxsize=None)
def default_tables() -> dict[str, OpEntry]:
    return load_tables()
