"""Property tests (hypothesis): broadcasting, type promotion and reductions on random shapes, dtypes
and dims, each example compiled by fx2mlx and compared with PyTorch eager (fx2mlx.conformance.opcheck).

Each example batches several ops into one exported module, so an example costs one export.
"""
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

from fx2mlx.conformance.opcheck import Call, check_calls

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.int32, torch.int64, torch.bool]


def make(shape, dtype, seed, low=-4, high=4):
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return torch.rand(shape, generator=g) > 0.5
    if dtype.is_floating_point:
        return (torch.rand(shape, generator=g) * (high - low) + low).to(dtype)
    return torch.randint(low, high + 1, shape, generator=g).to(dtype)


def assert_all_pass(calls):
    results = check_calls(calls)
    bad = [r for r in results if r.status not in ("pass", "skip")]
    assert not bad, "\n".join(f"{r.name}: {r.status}: {r.reason}" for r in bad)
    assert any(r.status == "pass" for r in results)


BINARY = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div,
    "floor_div": lambda a, b: torch.div(a, b, rounding_mode="floor"),
    "trunc_div": lambda a, b: torch.div(a, b, rounding_mode="trunc"),
    "remainder": torch.remainder, "fmod": torch.fmod, "maximum": torch.maximum, "minimum": torch.minimum,
    "eq": torch.eq, "lt": torch.lt, "ge": torch.ge, "where": lambda a, b: torch.where(a > b, a, b),
}


@SETTINGS
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=0, max_side=3),
       da=st.sampled_from(DTYPES), db=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_broadcasting_and_promotion(shapes, da, db, seed):
    a = make(shapes.input_shapes[0], da, seed)
    b = make(shapes.input_shapes[1], db, seed + 1)
    nonzero_b = torch.where(b == 0, torch.ones_like(b), b) if db != torch.bool else b
    calls = []
    for name, fn in BINARY.items():
        if name in ("sub",) and torch.bool in (da, db):
            continue  # PyTorch refuses bool subtraction
        if name in ("floor_div", "trunc_div", "remainder", "fmod", "div") and db == torch.bool:
            continue
        rhs = nonzero_b if name in ("floor_div", "trunc_div", "remainder", "fmod", "div") else b
        calls.append(Call(f"{name}[{da},{db}]", fn, (a, rhs)))
    assert_all_pass(calls)


@SETTINGS
@given(shape=array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4), dtype=st.sampled_from(DTYPES),
       scalar=st.one_of(st.integers(-5, 5), st.floats(-4, 4, allow_nan=False, width=32), st.booleans()),
       zero_dim=st.booleans(), seed=st.integers(0, 2**16))
def test_scalar_promotion(shape, dtype, scalar, zero_dim, seed):
    """Python scalars and 0-d tensors only promote across categories (bool < int < float)."""
    x = make(shape, dtype, seed)
    s = torch.tensor(scalar) if zero_dim else scalar
    calls = [Call(f"add[{dtype},{scalar!r}]", torch.add, (x, s)), Call("mul", torch.mul, (x, s)),
             Call("gt", torch.gt, (x, s)), Call("maximum", torch.maximum, (x, torch.as_tensor(s)))]
    if not isinstance(scalar, bool) and scalar != 0:
        calls.append(Call("div", torch.div, (x, s)))
    if dtype != torch.bool and not isinstance(scalar, bool):
        calls.append(Call("sub", torch.sub, (x, s)))
    assert_all_pass(calls)


REDUCTIONS = {
    "sum": lambda x, d, k: torch.sum(x, d, keepdim=k), "mean": lambda x, d, k: torch.mean(x, d, keepdim=k),
    "amax": lambda x, d, k: torch.amax(x, d, keepdim=k), "amin": lambda x, d, k: torch.amin(x, d, keepdim=k),
    "prod": lambda x, d, k: torch.prod(x, d[0], keepdim=k), "var": lambda x, d, k: torch.var(x, d, keepdim=k),
    "any": lambda x, d, k: torch.any(x, d[0], keepdim=k), "all": lambda x, d, k: torch.all(x, d[0], keepdim=k),
    "argmax": lambda x, d, k: torch.argmax(x, d[0], keepdim=k), "max": lambda x, d, k: torch.max(x, d[0], keepdim=k),
    "logsumexp": lambda x, d, k: torch.logsumexp(x, d, keepdim=k), "norm": lambda x, d, k: torch.linalg.vector_norm(x, 2, d, k),
    "softmax": lambda x, d, k: torch.softmax(x, d[0]), "cumsum": lambda x, d, k: torch.cumsum(x, d[0]),
}


@SETTINGS
@given(shape=array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4), data=st.data(),
       keepdim=st.booleans(), dtype=st.sampled_from([torch.float32, torch.float16, torch.int64]),
       seed=st.integers(0, 2**16))
def test_reductions(shape, data, keepdim, dtype, seed):
    rank = len(shape)
    dims = data.draw(st.lists(st.integers(-rank, rank - 1), min_size=1, max_size=rank,
                              unique_by=lambda d: d % rank), label="dims")
    x = make(shape, dtype, seed, -2, 2)
    calls = []
    for name, fn in REDUCTIONS.items():
        if dtype == torch.int64 and name in ("mean", "var", "logsumexp", "norm", "softmax"):
            continue  # PyTorch needs a floating input for these
        calls.append(Call(f"{name}[{dims},{keepdim},{dtype}]", fn, (x, tuple(dims), keepdim)))
    assert_all_pass(calls)


@pytest.mark.parametrize("shape", [(0,), (2, 0, 3), (0, 4)])
def test_empty_tensors(shape):
    x = torch.zeros(shape)
    calls = [Call("sum", torch.sum, (x, 0)), Call("mean", torch.mean, (x, -1)), Call("add", torch.add, (x, 1.0)),
             Call("cat", lambda a: torch.cat([a, a], 0), (x,)), Call("amax_keep", lambda a: a.amax(0, True) if a.shape[0] else a, (x,)),
             Call("prod", torch.prod, (x, 0)), Call("any", torch.any, (x, 0)), Call("softmax", torch.softmax, (x, -1))]
    assert_all_pass(calls)
