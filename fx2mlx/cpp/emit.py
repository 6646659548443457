"""Emission of the MLX C++ program (`OUT/cpp/`) from the lowered IR.

Logic lives here; formatting lives in `templates/cpp/*.j2`. The graph is one flat `forward()` in
`model.cpp`: one statement per IR node, in execution order, named after the IR value (so a per-layer
dump is keyed exactly like the IR), with a comment where the module call changes. Every expression
comes from `Lowered.render(..., lang="cpp")`: the `cpp` form of the node's table entry, or its
override's C++ template. Tuple-valued ops (lstm, split, max.dim, ...) are `fx::Tuple`
(`std::vector<mx::array>`) and `operator.getitem` indexes it; SymInts are plain `int`s.

`regen(out_dir)` re-renders from `OUT/ir.json` without torch.
"""
from __future__ import annotations

import os
import re
from collections import defaultdict
from pathlib import Path

import jinja2

from ..compiler import dtypes, ir
from ..compiler.errors import LoweringError
from ..compiler.lowering import Lowered, lower
from . import overrides as _overrides  # noqa: F401  (registers the overrides' C++ forms)

PACKAGE = Path(__file__).resolve().parent.parent
TEMPLATES = PACKAGE / "templates" / "cpp"
RUNTIME_DIR = PACKAGE / "runtime_cpp"

CPP_KEYWORDS = set("""alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t
char32_t class compl concept const consteval constexpr constinit const_cast continue co_await co_return co_yield
decltype default delete do double dynamic_cast else enum explicit export extern false float for friend goto if
inline int long mutable namespace new noexcept not not_eq nullptr operator or or_eq private protected public
register reinterpret_cast requires return short signed sizeof static static_assert static_cast struct switch
template this thread_local throw true try typedef typeid typename union unsigned using virtual void volatile
wchar_t while xor xor_eq""".split())
CACHE = "cache"  # the KV-cache user input of compiled decoders (compiler/kvcache.py)
RESERVED = CPP_KEYWORDS | {"W", "inputs", "dump", "mx", "fx", "std", "model", "forward", "main", "Values",
                           "INFINITY", "NAN", "assert", "errno", CACHE}


def search_path(templates: str | Path | None = None) -> list[str]:
    """Template folders, first match wins: `templates` (or $FX2MLX_CPP_TEMPLATES), then the package's. A
    user folder holds only the templates it changes (e.g. `overrides/lstm.cpp.j2` or `main.cpp.j2`)."""
    user = templates or os.environ.get("FX2MLX_CPP_TEMPLATES")
    return ([str(Path(user).resolve())] if user else []) + [str(TEMPLATES)]


def template_env(templates: str | Path | None = None) -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(search_path(templates)), trim_blocks=True,
                              lstrip_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined,
                              auto_reload=True)


def _cpp_dtype(dt: str) -> str:
    from ..compiler import dtypes

    return dtypes.CPP[dt]


class CppEmitter:
    def __init__(self, lowered: Lowered, *, source: str = "", dtype: str | None = None, program: str = "model",
                 compile_default: bool = True, templates: str | Path | None = None, llm: dict | None = None):
        self.lowered = lowered
        self.program = lowered.program
        self.source = source
        self.dtype = None if dtype == "float32" else dtype
        self.name = program
        self.compile_default = compile_default
        self.templates = templates
        self.llm = llm or {}  # manifest["llm"] of a compiled decoder (eos ids for the generation program)

    # -- the graph ------------------------------------------------------------------------------------
    def graph(self) -> dict:
        prog = self.program
        names: dict[str, str] = {}
        used: set[str] = set(RESERVED)

        def fresh(base: str) -> str:
            base = re.sub(r"\W", "_", base) or "v"
            if base[0].isdigit() or base.startswith("_"):
                base = "v" + ("" if base.startswith("_") else "_") + base
            name, k = base, 1
            while name in used:
                name, k = f"{base}_{k}", k + 1
            used.add(name)
            return name

        def namer(v: str) -> str:
            return names[v]

        referenced = {r.name for n in prog.nodes for r in n.refs()}
        referenced |= {r.name for o in prog.outputs for r in ir.iter_refs(o)}
        prologue = []
        idx = 0
        for i in prog.user_inputs:
            if i.type is None:  # the KV cache of a compiled decoder (compiler/kvcache.add_kv_cache): a parameter
                if i.name != CACHE:
                    raise LoweringError(f"user input {i.name!r} is not a tensor: the C++ emitter only knows the KV "
                                        f"cache ({CACHE!r})")
                names[i.name] = CACHE
                continue
            names[i.name] = fresh(i.name)
            if self.dtype and dtypes.is_float(i.type.dtype) and i.type.dtype != self.dtype:
                # a float16/bfloat16 model computes in that dtype: float inputs are cast (as in model.py)
                prologue.append(f"const mx::array {names[i.name]} = mx::astype(inputs[{idx}], "
                                f"mx::{dtypes.CPP[self.dtype]});")
            else:
                prologue.append(f"const mx::array& {names[i.name]} = inputs[{idx}];")
            idx += 1
        for i in prog.weight_inputs:
            if i.name in referenced:
                names[i.name] = fresh(i.name)
                prologue.append(f'const mx::array& {names[i.name]} = W.at("{i.target}");')

        body: list[str] = []
        dumped: list[tuple[str, str]] = []
        missing: dict[str, list[str]] = defaultdict(list)
        block = None
        for run in _module_runs(prog.nodes):
            first = run[0]
            where = (first.module_path or "<root>") + (f" ({first.stack[-1].type_name})" if first.stack else "")
            top = _block(first.module_path)
            if top != block:
                body.append("")
                block = top
            lines = []
            for n in run:
                try:
                    expr = self.lowered.render(n.name, namer, lang="cpp")
                except LoweringError as e:
                    missing[n.target].append(str(e))
                    names[n.name] = fresh(n.name)
                    continue
                names[n.name] = fresh(n.name)
                lines.append(f"auto {names[n.name]} = {expr};")
                if isinstance(n.type, ir.TensorType):
                    dumped.append((n.name, names[n.name]))
            if len(lines) == 1:  # a one-statement module call (Linear, LayerNorm, ...): a trailing comment
                body.append(f"{lines[0]}  // {where}")
            else:
                body += [f"// {where}"] + lines
        if missing:
            lines = [f"{len(missing)} op(s) have no C++ form yet (add a `cpp:` line to the table entry, or a "
                     "C++ template for the override):"]
            for target, errs in sorted(missing.items()):
                lines.append(f"  {target}  ×{len(errs)}: {errs[0]}")
            raise LoweringError("\n".join(lines))

        returns, outputs = [], []
        for k, o in enumerate(prog.outputs):
            if isinstance(o, ir.Ref) and isinstance(self.lowered.types.get(o.name), ir.TensorType):
                returns.append(names[o.name])
                outputs.append(f"output_{k}")
        return {"prologue": prologue, "body": body, "dumped": dumped, "returns": returns, "outputs": outputs}

    @property
    def draws_random(self) -> bool:
        """Whether the graph draws random numbers: mx::compile would fix the random keys when it traces the
        graph (every run the same numbers), so such a program runs uncompiled."""
        return any(ln.entry is not None and ln.entry.family == "random" for ln in self.lowered.nodes.values())

    # -- specs ----------------------------------------------------------------------------------------
    def input_specs(self) -> list[dict]:
        return [{"name": i.name, "shape": [d if isinstance(d, int) else -1 for d in i.type.shape],
                 "dtype": _cpp_dtype(i.type.dtype)} for i in self.program.user_inputs if i.type is not None]

    @property
    def has_cache(self) -> bool:
        """A causal LM (its recipe passed its generation info): the graph takes a KV cache."""
        return bool(self.llm)

    def weight_specs(self) -> list[dict]:
        from ..compiler.weights import weight_shapes

        return [{"name": name, "shape": list(shape), "dtype": _cpp_dtype(dt)}
                for name, (shape, dt) in weight_shapes(self.lowered, self.dtype).items()]

    # -- files ----------------------------------------------------------------------------------------
    def render(self) -> dict[str, str]:
        env = template_env(self.templates)
        _overrides.set_search_path(search_path(self.templates))
        try:
            g = self.graph()
        finally:
            _overrides.set_search_path(search_path(None))
        root_type = dict((m.path, m.type) for m in self.program.modules).get("", "model")
        common = {"source": self.source, "program": self.name, "has_cache": self.has_cache}
        extra_programs = []
        files = {}
        if self.has_cache:  # a decoder LLM: the greedy-generation program too
            eos = [i for i in (self.llm.get("eos_token_id") or []) if i is not None]
            files["generate.cpp"] = env.get_template("generate.cpp.j2").render(**common, eos=eos)
            extra_programs.append({"name": "generate", "source": "generate.cpp"})
        files.update({
            "model.h": env.get_template("model.h.j2").render(
                **common, root_type=root_type, inputs=self.input_specs(), weights=self.weight_specs(),
                outputs=g["outputs"]),
            "model.cpp": env.get_template("model.cpp.j2").render(**common, **g),
            "main.cpp": env.get_template("main.cpp.j2").render(**common, compile=self.compile_default and not self.draws_random),
            "CMakeLists.txt": env.get_template("CMakeLists.txt.j2").render(**common, extra_programs=extra_programs),
        })
        files.update({h.name: h.read_text() for h in sorted(RUNTIME_DIR.glob("*.h"))})
        return files


def _block(path: str) -> str:
    """Where a blank line goes: `encoder.layer.3.attention` -> `encoder.layer.3`; `embeddings.x` -> `embeddings`."""
    parts = path.split(".")
    for i, p in enumerate(parts):
        if p.isdigit():
            return ".".join(parts[:i + 1])
    return parts[0]


def _module_runs(nodes) -> list[list[ir.Node]]:
    """Consecutive nodes of the same module call."""
    runs: list[list[ir.Node]] = []
    key = object()
    for n in nodes:
        k = n.stack[-1].key if n.stack else ""
        if runs and k == key:
            runs[-1].append(n)
        else:
            runs.append([n])
            key = k
    return runs


def write_cpp(out_dir: Path, lowered: Lowered, *, source: str = "", dtype: str | None = None,
              templates: str | Path | None = None, llm: dict | None = None) -> Path:
    """Write OUT/cpp/ (a file is rewritten only when its text changed, so rebuilds stay incremental)."""
    files = CppEmitter(lowered, source=source, dtype=dtype, templates=templates, llm=llm).render()
    cpp = Path(out_dir) / "cpp"
    cpp.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        p = cpp / name
        if not p.is_file() or p.read_text() != text:
            p.write_text(text)
    return cpp


def load_output(graph_dir: Path, info: dict) -> Lowered:
    """Re-lower a graph's ir.json as `fx2mlx compile` did (needs mlx, not torch)."""
    graph_dir = Path(graph_dir)
    from ..manifest import read_ir

    program = read_ir(graph_dir)
    dtype = info.get("dtype", "float32")
    return lower(program, dtype=None if dtype == "float32" else dtype)


def regen(out_dir: Path, *, templates: str | Path | None = None) -> list[Path]:
    """Re-render <graph>/cpp/ for every graph of OUT (or the one graph folder given) from its ir.json and
    the current templates and op tables. The recipe decides what else is emitted (causal LMs: generate.cpp)."""
    from ..manifest import graph_folders

    dirs = []
    for name, gdir, info in graph_folders(out_dir):
        lowered = load_output(gdir, info)
        dirs.append(write_cpp(gdir, lowered, source=info.get("source", str(gdir)), dtype=info.get("dtype"),
                              templates=templates, llm=info.get("llm") if info.get("recipe") == "causal-lm" else None))
    return dirs
