"""Hand-written lowerings, consulted before the YAML tables.

An override is for what one table line cannot say: ops whose MLX code is a real runtime module
(multi-layer bidirectional LSTM, GRU) and pseudo-ops produced by pattern passes (`fx2mlx.snake1d`).
Their MLX code lives in `fx2mlx/runtime/` as tested modules and is vendored into the output.
Registering the same target twice raises.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

from . import ir
from .errors import TableError


@dataclass(frozen=True)
class Override:
    name: str
    target: str
    py: Callable[[ir.Node, dict], str]
    cpp: Callable[[ir.Node, dict], str] | None
    runtime: tuple[str, ...]  # fx2mlx.runtime modules vendored into the output
    where: str  # file:line of the definition
    when: Callable[[ir.Node], bool] | None = None
    tolerance: tuple[float, float] = (1e-5, 1e-5)

    def matches(self, node: ir.Node) -> bool:
        return self.when is None or self.when(node)


OVERRIDES: dict[str, Override] = {}


def override(target: str, *, runtime: tuple[str, ...] = (), when=None, tolerance=(1e-5, 1e-5)):
    """Register `fn(node, args) -> python code` as the lowering of `target`. `args` maps schema
    argument names (self as self_) to rendered values (tensors render as their code)."""

    def deco(fn):
        if target in OVERRIDES:
            raise TableError(f"override for {target} registered twice ({OVERRIDES[target].where} and "
                             f"{_where(fn)})")
        OVERRIDES[target] = Override(fn.__name__, target, fn, None, tuple(runtime), _where(fn), when, tolerance)
        return fn

    return deco


def cpp_form(target: str):
    """Attach the C++ form of an already registered override."""

    def deco(fn):
        from dataclasses import replace

        ov = OVERRIDES[target]
        if ov.cpp is not None:
            raise TableError(f"C++ form of override {target} registered twice")
        OVERRIDES[target] = replace(ov, cpp=fn)
        return fn

    return deco


def _where(fn) -> str:
    try:
        file = inspect.getsourcefile(fn) or "?"
        line = inspect.getsourcelines(fn)[1]
    except (OSError, TypeError):
        return "?"
    return f"{file.split('fx2mlx/')[-1] if 'fx2mlx/' in file else file}:{line}"


def _c(v) -> str:
    from .lowering import py_code

    return py_code(v)


# --------------------------------------------------------------------------------------------------
# Recurrent layers: the whole aten op maps onto a runtime function with the same arguments.
# --------------------------------------------------------------------------------------------------
@override("aten.lstm.input", runtime=("rnn",), tolerance=(1e-5, 1e-5))
def lstm(node: ir.Node, a: dict) -> str:
    return (f"lstm({_c(a['input'])}, {_c(a['hx'])}, {_c(a['params'])}, has_biases={_c(a['has_biases'])}, "
            f"num_layers={_c(a['num_layers'])}, bidirectional={_c(a['bidirectional'])}, "
            f"batch_first={_c(a['batch_first'])})")


@override("aten.gru.input", runtime=("rnn",), tolerance=(1e-5, 1e-5))
def gru(node: ir.Node, a: dict) -> str:
    return (f"gru({_c(a['input'])}, {_c(a['hx'])}, {_c(a['params'])}, has_biases={_c(a['has_biases'])}, "
            f"num_layers={_c(a['num_layers'])}, bidirectional={_c(a['bidirectional'])}, "
            f"batch_first={_c(a['batch_first'])})")


# --------------------------------------------------------------------------------------------------
# Pattern-produced pseudo-ops (see passes.py)
# --------------------------------------------------------------------------------------------------
@override("fx2mlx.snake1d.default", runtime=("snake",))
def snake1d(node: ir.Node, a: dict) -> str:
    return f"snake1d({_c(a['x'])}, {_c(a['alpha'])}, eps={_c(a['eps'])})"


from . import fusion  # noqa: E402,F401  (RMSNorm/RoPE/KV-cache pseudo-ops register themselves)
