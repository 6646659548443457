"""The lowering interpreter: evaluates lowered nodes on MLX arrays, in this process.

A node's lowering is its Python form over `_v[name]` values (`Lowered.render(name, VAR)`); the
interpreter compiles each form once and evaluates it in the runtime namespace (`mx`, `nn`, `math` and
the `fx2mlx.runtime` modules the forms call) against an environment of values. Its users: the lowering
type check (`lowering.typecheck`, lazily, at the example shapes), the KV-cache pass's causal-mask check
(`kvcache`) and the golden harness's per-value runs (`golden.mlx_side`, also offline from stored forms).
Imports neither torch nor the op tables.
"""
from __future__ import annotations

import importlib
import math
from pathlib import Path
from typing import Any, Iterable, Mapping, MutableMapping


def var(name: str) -> str:
    """The code of value `name` in a form the interpreter evaluates."""
    return f"_v[{name!r}]"


def runtime_namespace(modules: Iterable[str] | None = None) -> dict:
    """Globals for evaluating forms: mx, nn, math and the named fx2mlx.runtime modules (all if None)."""
    import mlx.core as mx
    import mlx.nn as nn

    ns: dict = {}
    for m in (modules if modules is not None else _all_runtime_modules()):
        mod = importlib.import_module(f"fx2mlx.runtime.{m}")
        ns.update({k: v for k, v in vars(mod).items() if not k.startswith("__")})
    ns.update({"mx": mx, "nn": nn, "math": math})
    return ns


def _all_runtime_modules() -> list[str]:
    d = Path(__file__).resolve().parent.parent / "runtime"
    return sorted(p.stem for p in d.glob("*.py") if p.stem != "__init__")


class Interpreter:
    """Evaluates nodes from their Python forms: `forms` maps node name -> code over `var(name)`, in program
    order; `runtime` names the runtime modules the forms call."""

    def __init__(self, forms: Mapping[str, str], runtime: Iterable[str] | None = None):
        self.forms = dict(forms)
        self.namespace = runtime_namespace(runtime)
        self._compiled: dict[str, Any] = {}

    @classmethod
    def of(cls, lowered) -> Interpreter:
        """The interpreter of a `lowering.Lowered` program (forms rendered as they are now, casts included)."""
        forms = {n.name: lowered.render(n.name, var) for n in lowered.program.nodes}
        return cls(forms, lowered.runtime_modules)

    def node(self, name: str, env: Mapping[str, Any]) -> Any:
        """The value of node `name`, its operands taken from `env` (value name -> MLX array or scalar)."""
        code = self._compiled.get(name)
        if code is None:
            code = self._compiled[name] = compile(self.forms[name], f"<fx2mlx {name}>", "eval")
        return eval(code, self.namespace, {"_v": env})  # noqa: S307 - our own lowering

    def run(self, env: MutableMapping[str, Any], names: Iterable[str] | None = None) -> MutableMapping[str, Any]:
        """Evaluate `names` (default: every node, in program order) in turn, each result stored in `env`."""
        for name in (self.forms if names is None else names):
            env[name] = self.node(name, env)
        return env
