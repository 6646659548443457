"""The generation loop, for decoder-only and encoder-decoder models alike.

`generate_tokens` drives any `step(ids) -> logits` function that holds its own KV cache: for a
decoder-only model `step = lambda ids: model(ids, cache=cache)["logits"]`; for an encoder-decoder
model the step closes over the encoder output as well. Like mlx-lm, the next step is scheduled
(`mx.async_eval`) before the current token is handed out, so the host and the device overlap.
"""
import mlx.core as mx


def _last_logits(out):
    if isinstance(out, dict):
        out = out["logits"]
    elif isinstance(out, (tuple, list)):
        out = out[0]
    return out[:, -1, :]


_STREAMS = {}


def generation_stream():
    """One generation stream per device, made once: a new stream per call would start cold each time
    (the CUDA backend keeps its per-stream graph caches)."""
    device = mx.default_device()
    key = str(device)
    if key not in _STREAMS:
        _STREAMS[key] = mx.new_stream(device)
    return _STREAMS[key]


def generate_tokens(step, prompt, max_tokens, sampler, eos_ids=(), prefill_step=2048):
    """Yield up to max_tokens token ids (Python ints) after `prompt` (1-D mx.array of ids).

    step(ids (1, n)) -> logits (1, n, V) (or a dict/tuple holding them) and advances its cache.
    sampler(logits (1, V)) -> ids (1,). Stops after a token in eos_ids (which is yielded).
    """
    if max_tokens <= 0:
        return
    stream = generation_stream()
    prompt = prompt.reshape(-1)
    with mx.stream(stream):
        while prompt.shape[0] > prefill_step:  # long prompts: fill the cache in chunks
            step(prompt[None, :prefill_step])
            mx.eval(prompt)
            prompt = prompt[prefill_step:]
        y = sampler(_last_logits(step(prompt[None])))
    mx.async_eval(y)
    n = 0
    while True:
        if n + 1 < max_tokens:
            with mx.stream(stream):
                next_y = sampler(_last_logits(step(y[None])))
            mx.async_eval(next_y)
        token = y.item()
        yield token
        n += 1
        if n >= max_tokens or token in eos_ids:
            break
        y = next_y


def left_pad(prompts, pad_id=0):
    """Lists of token ids of different lengths -> ((B, L) int32 ids padded on the left, [pads per row])."""
    width = max(len(p) for p in prompts)
    pads = [width - len(p) for p in prompts]
    rows = [[pad_id] * k + list(p) for k, p in zip(pads, prompts)]
    return mx.array(rows, dtype=mx.int32), pads


def generate_batch(step, ids, max_tokens, sampler, eos_ids=(), prefill_step=2048):
    """Yield, per step, a list of one token id per row (None for a row that has finished) after the
    prompts `ids` (B, L) (left-padded; `step` holds a cache that knows the padding).

    step(ids (B, n)) -> logits (B, n, V); sampler(logits (B, V)) -> ids (B,). A row finishes after a
    token in eos_ids (which is yielded); it is still fed to the model (its output ignored) until every
    row has finished or max_tokens steps are done.
    """
    if max_tokens <= 0:
        return
    stream = generation_stream()
    with mx.stream(stream):
        while ids.shape[1] > prefill_step:
            mx.eval(_last_logits(step(ids[:, :prefill_step])))
            ids = ids[:, prefill_step:]
        y = sampler(_last_logits(step(ids)))
    mx.async_eval(y)
    done = [False] * ids.shape[0]
    n = 0
    while True:
        if n + 1 < max_tokens:
            with mx.stream(stream):
                next_y = sampler(_last_logits(step(y[:, None])))
            mx.async_eval(next_y)
        tokens = y.tolist()
        yield [None if d else t for d, t in zip(done, tokens)]
        done = [d or t in eos_ids for d, t in zip(done, tokens)]
        n += 1
        if n >= max_tokens or all(done):
            break
        y = next_y
