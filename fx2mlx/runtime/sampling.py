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


def row_keys(seeds):
    """One PRNG key per row (B, 2): row b's draws depend on seeds[b] and its own logits only, so a row
    samples the same tokens whatever else is in the batch."""
    return mx.stack([mx.random.key(int(s)) for s in seeds])


def sample_rows(logits, keys, temp=0.0, top_p=1.0):
    """logits (B, V), keys (B, 2) -> (token ids (B,), the keys for the next step): a draw per row
    from that row's key (argmax at temp 0, keys unchanged)."""
    if temp == 0:
        return mx.argmax(logits, axis=-1), keys
    logits = logits.astype(mx.float32)
    if top_p < 1.0:
        logits = top_p_filter(logits, top_p)
    split = mx.vmap(mx.random.split)(keys)  # (B, 2, 2): the next key, the key of this draw
    draw = mx.vmap(lambda k, row: mx.random.categorical(row, key=k))(split[:, 1], logits * (1.0 / temp))
    return draw.astype(mx.int32), split[:, 0]


def keyed_sampler(seeds, temp=0.0, top_p=1.0):
    """sampler(logits (B, V)) -> ids (B,) drawing row b from its own key stream, seeded by seeds[b]."""
    state = [row_keys(seeds)]

    def sampler(logits):
        tokens, state[0] = sample_rows(logits, state[0], temp, top_p)
        return tokens

    return sampler
