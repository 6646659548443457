"""Token sampling for generation: greedy, temperature and nucleus (top-p)."""
import mlx.core as mx


def top_p_filter(logits, top_p):
    """Keep the smallest set of tokens whose probability adds up to top_p; the rest get -inf."""
    probs = mx.softmax(logits, axis=-1, precise=True)
    order = mx.argsort(-probs, axis=-1)
    sorted_probs = mx.take_along_axis(probs, order, axis=-1)
    before = mx.cumsum(sorted_probs, axis=-1) - sorted_probs  # mass of the tokens ranked above
    keep_sorted = before < top_p
    keep = mx.put_along_axis(mx.zeros_like(keep_sorted), order, keep_sorted, axis=-1)
    return mx.where(keep, logits, -float("inf"))


def sample_token(logits, temp=0.0, top_p=1.0):
    """logits (B, V) -> token ids (B,): argmax at temp 0, else a draw at temperature temp."""
    if temp == 0:
        return mx.argmax(logits, axis=-1)
    logits = logits.astype(mx.float32)
    if top_p < 1.0:
        logits = top_p_filter(logits, top_p)
    return mx.random.categorical(logits * (1.0 / temp), axis=-1)
