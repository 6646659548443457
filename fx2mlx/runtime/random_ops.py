"""Random ops on MLX's generator (same distributions as PyTorch's, different numbers)."""
import mlx.core as mx


def dropout(x, p, train):
    """aten.native_dropout -> (out, mask). Outside training (or p == 0) the input passes through."""
    if train is False or p == 0:
        return x, mx.ones(x.shape, dtype=mx.bool_)
    if p >= 1:
        return mx.zeros_like(x), mx.zeros(x.shape, dtype=mx.bool_)
    mask = mx.random.bernoulli(1.0 - p, x.shape)
    return x * mask * (1.0 / (1.0 - p)), mask


def random_like(x, kind, a=0.0, b=1.0):
    """Samples shaped like x: uniform(a, b), normal(a, b), exponential(a), cauchy(a, b), log_normal(a, b),
    geometric(a), bernoulli(a)."""
    shape, dt = x.shape, x.dtype if mx.issubdtype(x.dtype, mx.inexact) else mx.float32
    if kind == "uniform":
        out = mx.random.uniform(a, b, shape, dtype=dt)
    elif kind == "normal":
        out = mx.random.normal(shape, dtype=dt) * b + a
    elif kind == "exponential":
        out = -mx.log1p(-mx.random.uniform(0, 1, shape)) / a
    elif kind == "cauchy":
        out = a + b * mx.tan(3.141592653589793 * (mx.random.uniform(0, 1, shape) - 0.5))
    elif kind == "log_normal":
        out = mx.exp(mx.random.normal(shape) * b + a)
    elif kind == "geometric":
        out = mx.ceil(mx.log1p(-mx.random.uniform(0, 1, shape)) / mx.log1p(mx.array(-a)))
    else:  # bernoulli
        out = mx.random.bernoulli(a, shape)
    return out.astype(x.dtype)


def randint(low, high, shape, dtype):
    """Integers uniform in [low, high)."""
    return mx.random.randint(low, high, shape).astype(dtype)


def multinomial(probs, num_samples, replacement=False):
    """torch.multinomial: indices sampled from each row of probs (Gumbel top-k without replacement)."""
    logits = mx.log(probs)
    if replacement:
        return mx.random.categorical(logits, num_samples=num_samples).astype(mx.int64)
    g = logits - mx.log(-mx.log(mx.random.uniform(shape=logits.shape)))
    return mx.argsort(-g, axis=-1)[..., :num_samples].astype(mx.int64)
