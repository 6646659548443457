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
