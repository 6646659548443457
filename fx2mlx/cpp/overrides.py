"""C++ forms of the hand-written overrides (`fx2mlx/compiler/overrides.py`).

Each renders `templates/cpp/overrides/<name>.cpp.j2` with the node's arguments (bound by schema name, as
in the op-table templates; values render as C++ through `forms.cpp_code`), so editing a template and
running `fx2mlx regen-cpp OUT` changes the generated program. Imported by the C++ emitter.
"""
from __future__ import annotations

import functools
from pathlib import Path

import jinja2

from ..compiler import ir
from ..compiler.forms import HELPERS, cpp_code
from ..compiler.overrides import OVERRIDES, cpp_form

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "cpp"
_search: list[str] = [str(TEMPLATES)]  # set by the emitter: a user template folder first, then the package's


def set_search_path(dirs: list[str]) -> None:
    _search[:] = dirs


@functools.lru_cache(maxsize=None)
def _env(dirs: tuple[str, ...]) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(list(dirs)), undefined=jinja2.StrictUndefined,
                             finalize=cpp_code, trim_blocks=True, lstrip_blocks=True, auto_reload=True)
    env.globals.update(HELPERS)
    return env


def render(name: str, node: ir.Node, args: dict) -> str:
    return _env(tuple(_search)).get_template(f"overrides/{name}.cpp.j2").render(node=node, **args).strip()


def _register(target: str, name: str) -> None:
    if target in OVERRIDES and OVERRIDES[target].cpp is None:
        cpp_form(target)(lambda node, args: render(name, node, args))


_register("aten.lstm.input", "lstm")
_register("aten.gru.input", "gru")
_register("fx2mlx.snake1d.default", "snake1d")
try:  # quantized linears of compiled LLMs (registered by fx2mlx.llm.quantize)
    from ..llm import quantize as _quantize  # noqa: F401
except ImportError:  # pragma: no cover - the LLM part is not installed
    pass
_register("fx2mlx.qlinear.default", "qlinear")
# transformer pseudo-ops (compiler/fusion.py: RMSNorm, RoPE; compiler/kvcache.py: KV cache)
for _name in ("rms_norm", "swiglu", "rope_freqs", "rope", "kv_attention", "cache_entry", "cache_offset",
              "arange_offset"):
    _register(f"fx2mlx.{_name}.default", _name)
