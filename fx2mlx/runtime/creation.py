"""Range factories as PyTorch's CPU kernels compute them (aten/src/ATen/native/RangeFactories.cpp,
cpu/RangeFactoriesKernel.cpp), so integer results agree exactly and half-precision results do not
saturate:
- arange / range: the length from the arguments as given (double; int64 results: the truncated
  integers), values start + step * i in the accumulate type (int64 for integer results, float32 for
  half types, double for float32), cast once.
- linspace: start/end converted to the result dtype first, then step = (end - start) / (steps - 1) and
  values start + step * i (first half) or end - step * (steps - 1 - i) (second half): for integer results
  in double, each value rounded once (the kernel is compiled with floating-point contraction: a fused
  multiply-add) and truncated; for floating results in the result dtype, every operation rounded to it
  (as c10::Half / BFloat16 arithmetic is).
- logspace: pow(base, linspace-like exponents) in double from start/end in the result dtype (end - start
  taken in the result dtype; no contraction in this kernel), then cast; one step: base ** start as given.
Work PyTorch does in double runs in float64 on the CPU stream (MLX GPUs have no float64)."""
import math

import mlx.core as mx


def _scalar_to(v, dtype):
    """A number or 0-d array (an aten Scalar, e.g. a tensor's .item()) converted to dtype, 0-d:
    Scalar.to<T>() truncates toward zero for integer T and rounds (through float32) for floating T."""
    if isinstance(v, mx.array):
        return v.astype(dtype)
    if mx.issubdtype(dtype, mx.complexfloating):
        return mx.array(complex(v), dtype=dtype)
    if not mx.issubdtype(dtype, mx.floating):
        return mx.array(int(v), dtype=dtype)
    return mx.array(float(v), dtype=mx.float32).astype(dtype)


def _from_float64(v, dtype):
    """double -> dtype as C++ converts: truncation for integers, through float32 for half types."""
    if mx.issubdtype(dtype, mx.floating):
        return v.astype(mx.float32).astype(dtype)
    return v.astype(dtype)


def _fma(a, b, c):
    """a * b + c rounded once (float64; Dekker's exact product and Knuth's exact sum)."""
    p = a * b
    ta, tb = a * 134217729.0, b * 134217729.0
    ah, bh = ta - (ta - a), tb - (tb - b)
    al, bl = a - ah, b - bh
    ep = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    s = c + p
    z = s - c
    es = (c - (s - z)) + (p - z)
    return s + (es + ep)


def _halves(steps):
    """(first-half mask, k): value i is start + step * k in the first half (i < steps // 2) and
    end - step * k in the second, with k = i or steps - 1 - i."""
    i = mx.arange(steps)
    lo = i < steps // 2
    return lo, mx.where(lo, i, steps - 1 - i)


def _linspace_inexact(s, e, steps, dtype):
    """linspace in the (floating or complex) result dtype: every operation rounded to it."""
    step = (e - s) / mx.array(steps - 1, dtype=dtype)
    lo, k = _halves(steps)
    k = k.astype(dtype)
    return mx.where(lo, s + step * k, e - step * k)


def torch_linspace(start, end, steps, dtype):
    """torch.linspace (start/end numbers or 0-d arrays) as PyTorch's CPU kernel computes it."""
    if steps <= 1:
        return mx.full((steps,), _scalar_to(start, dtype), dtype=dtype)
    s, e = _scalar_to(start, dtype), _scalar_to(end, dtype)
    if dtype == mx.float32:  # float arithmetic, start + step * i fused: exact product in double, one rounding
        step = (e - s) / mx.array(steps - 1, dtype=dtype)
        with mx.stream(mx.cpu):
            lo, k = _halves(steps)
            k = k.astype(mx.float32).astype(mx.float64)
            step = step.astype(mx.float64)
            v = mx.where(lo, s.astype(mx.float64), e.astype(mx.float64)) + mx.where(lo, step, -step) * k
            return v.astype(mx.float32)
    if mx.issubdtype(dtype, mx.inexact):
        return _linspace_inexact(s, e, steps, dtype)
    with mx.stream(mx.cpu):
        s, e = s.astype(mx.float64), e.astype(mx.float64)
        step = (e - s) / (steps - 1)
        lo, k = _halves(steps)
        v = _fma(mx.where(lo, step, -step), k.astype(mx.float64), mx.where(lo, s, e))
        return v.astype(dtype)


def torch_logspace(start, end, steps, base, dtype):
    """torch.logspace as PyTorch's CPU kernel computes it (complex results: in the complex dtype)."""
    if mx.issubdtype(dtype, mx.complexfloating):
        if steps <= 1:
            x = _scalar_to(start, dtype)
            return mx.full((steps,), mx.power(mx.array(base, dtype=dtype), x), dtype=dtype)
        x = _linspace_inexact(_scalar_to(start, dtype), _scalar_to(end, dtype), steps, dtype)
        return mx.power(mx.array(base, dtype=dtype), x)
    with mx.stream(mx.cpu):
        if steps <= 1:
            x = start.astype(mx.float64) if isinstance(start, mx.array) else mx.array(float(start), dtype=mx.float64)
            v = mx.power(mx.array(float(base), dtype=mx.float64), x)
            return mx.full((steps,), _from_float64(v, dtype), dtype=dtype)
        s, e = _scalar_to(start, dtype), _scalar_to(end, dtype)
        step = (e - s).astype(mx.float64) / (steps - 1)
        s, e = s.astype(mx.float64), e.astype(mx.float64)
        lo, k = _halves(steps)
        k = k.astype(mx.float64)
        x = mx.where(lo, s + step * k, e - step * k)
        return _from_float64(mx.power(mx.array(float(base), dtype=mx.float64), x), dtype)


def _round_f32(x):
    """A Python float rounded to the nearest float32 (ties to even; normal range)."""
    if x == 0 or not math.isfinite(x):
        return x
    m, ex = math.frexp(x)
    return math.ldexp(round(m * 16777216.0), ex - 24)


def _arange_values(start, step, n, dtype):
    """start + step * i for i < n in PyTorch's accumulate type, cast once: int64 for integer dtypes,
    float32 for half types, double (float64 on the CPU stream) for float32."""
    if not mx.issubdtype(dtype, mx.floating):
        return (mx.arange(n, dtype=mx.int64) * int(step) + int(start)).astype(dtype)
    if dtype == mx.float32:
        with mx.stream(mx.cpu):
            i = mx.arange(n, dtype=mx.int64).astype(mx.float64)
            v = mx.array(float(start), dtype=mx.float64) + mx.array(float(step), dtype=mx.float64) * i
            return v.astype(mx.float32)
    i = mx.arange(n, dtype=mx.int32).astype(mx.float32)
    v = mx.array(float(start), dtype=mx.float32) + mx.array(float(step), dtype=mx.float32) * i
    return v.astype(dtype)


def torch_arange(start, end, step, dtype):
    """torch.arange as PyTorch's CPU kernel computes it. The length: ceil((end - start) / step) in double
    on the arguments as given; for int64 results, on the truncated integers (exact integer arithmetic)."""
    if dtype == mx.int64:
        s, e, st = int(start), int(end), int(step)
        num = e - s + st - ((st > 0) - (st < 0))
        n = abs(num) // abs(st) * (1 if (num < 0) == (st < 0) else -1)
    else:
        n = math.ceil((float(end) - float(start)) / float(step))
    return _arange_values(start, step, max(n, 0), dtype)


def torch_range(start, end, step, dtype):
    """torch.range (end included) as PyTorch's CPU kernel computes it: the length
    trunc((end - start) / step + 1) in the accumulate type (integer division for integer dtypes)."""
    if not mx.issubdtype(dtype, mx.floating):
        s, e, st = int(start), int(end), int(step)
        n = abs(e - s) // abs(st) * (1 if (e - s < 0) == (st < 0) else -1) + 1
    elif dtype == mx.float32:
        n = int((float(end) - float(start)) / float(step) + 1)
    else:  # half types: float32 arithmetic
        s, e, st = _round_f32(float(start)), _round_f32(float(end)), _round_f32(float(step))
        n = int(_round_f32(_round_f32(_round_f32(e - s) / st) + 1))
    return _arange_values(start, step, max(n, 0), dtype)


def tri_indices(row, col, offset, dtype, upper):
    """torch.tril_indices / triu_indices: (2, N) row-major coordinates of the lower (upper) triangle."""
    r = mx.arange(row).reshape(-1, 1)
    c = mx.arange(col).reshape(1, -1)
    mask = (c - r >= offset) if upper else (c - r <= offset)
    if upper:
        n = sum(max(0, col - max(0, i + offset)) for i in range(row))
    else:
        n = sum(max(0, min(col, i + offset + 1)) for i in range(row))
    flat = mx.arange(row * col)
    keys = mx.where(mask.reshape(-1), flat, row * col)
    idx = mx.sort(keys)[:n]
    return mx.stack([idx // col, idx % col]).astype(dtype)
