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
from .forms import py_code


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


_c = py_code  # an argument value -> its Python code


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


# --------------------------------------------------------------------------------------------------
# Transformer pseudo-ops, produced by fusion.py (RMSNorm, SwiGLU, RoPE) and kvcache.py (KV cache)
# --------------------------------------------------------------------------------------------------
@override("fx2mlx.rms_norm.default", tolerance=(1e-5, 1e-5))
def rms_norm(node: ir.Node, a: dict) -> str:
    return f"mx.fast.rms_norm({_c(a['x'])}, {_c(a['weight'])}, {_c(a['eps'])})"


@override("fx2mlx.swiglu.default", runtime=("activations",))
def swiglu(node: ir.Node, a: dict) -> str:
    return f"swiglu({_c(a['gate'])}, {_c(a['x'])})"


@override("fx2mlx.rope_freqs.default")
def rope_freqs(node: ir.Node, a: dict) -> str:
    return f"1.0 / {_c(a['inv_freq'])}"


@override("fx2mlx.rope.default", tolerance=(1e-5, 1e-4))
def rope(node: ir.Node, a: dict) -> str:
    x = a["x"]
    code = (f"mx.fast.rope({_c(x)}, {x.shape[-1]}, traditional=False, base=None, scale=1.0, "
            f"offset={_c(a['offset'])}, freqs={_c(a['freqs'])})")
    return code if a["scale"] == 1.0 else f"{code} * {_c(a['scale'])}"


@override("fx2mlx.kv_attention.default", runtime=("kv_cache",), tolerance=(1e-5, 1e-4))
def kv_attention(node: ir.Node, a: dict) -> str:
    win = f", window={a['window']}" if a["window"] is not None else ""
    return (f"kv_attention({_c(a['query'])}, {_c(a['key'])}, {_c(a['value'])}, {_c(a['cache'])}, "
            f"scale={_c(a['scale'])}{win})")


@override("fx2mlx.cache_entry.default", runtime=("kv_cache",))
def cache_entry(node: ir.Node, a: dict) -> str:
    return f"cache_entry({_c(a['cache'])}, {a['index']})"


@override("fx2mlx.cache_offset.default", runtime=("kv_cache",))
def cache_offset(node: ir.Node, a: dict) -> str:
    return f"cache_offset({_c(a['cache'])})"


@override("fx2mlx.arange_offset.default")
def arange_offset(node: ir.Node, a: dict) -> str:
    dt = f", dtype={_c(a['dtype'])}" if a.get("dtype") is not None else ""
    return f"mx.arange({_c(a['offset'])}, {_c(a['offset'])} + {_c(a['end'])}{dt})"


# --------------------------------------------------------------------------------------------------
# Mixture of experts (experts.py): gathered matmuls, and transformers' grouped matmul
# --------------------------------------------------------------------------------------------------
@override("fx2mlx.gather_linear.default", runtime=("experts",), tolerance=(1e-5, 1e-4))
def gather_linear(node: ir.Node, a: dict) -> str:
    return f"gather_linear({_c(a['x'])}, {_c(a['weight'])}, {_c(a['indices'])})"


@override("fx2mlx.gather_matmul.default", runtime=("experts",), tolerance=(1e-5, 1e-4))
def gather_matmul(node: ir.Node, a: dict) -> str:
    return f"gather_matmul({_c(a['x'])}, {_c(a['weight'])}, {_c(a['indices'])})"


@override("fx2mlx.gather_qlinear.default", runtime=("experts",), tolerance=(1e-2, 1e-2))
def gather_qlinear(node: ir.Node, a: dict) -> str:
    return (f"gather_qlinear({_c(a['x'])}, {_c(a['weight'])}, {_c(a['scales'])}, {_c(a['biases'])}, "
            f"{_c(a['indices'])}, group_size={a['group_size']}, bits={a['bits']})")


@override("transformers.grouped_mm_fallback.default", runtime=("experts",), tolerance=(1e-5, 1e-4))
def grouped_mm(node: ir.Node, a: dict) -> str:
    """transformers' grouped matmul (rows sorted by expert, cumulative row counts `offs`)."""
    return f"grouped_matmul({_c(a['input'])}, {_c(a['weight'])}, {_c(a['offs'])})"


# --------------------------------------------------------------------------------------------------
# Tensor parallelism (fx2mlx/llm/shard.py): the partial sums of a split linear, summed over the ranks
# --------------------------------------------------------------------------------------------------
@override("fx2mlx.all_sum.default")
def all_sum(node: ir.Node, a: dict) -> str:
    return f"mx.distributed.all_sum({_c(a['x'])})"
