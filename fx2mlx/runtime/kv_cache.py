"""KV cache and cache-aware attention for compiled decoder models (mlx-lm's preallocated cache).

A model compiled with a cache takes `cache=None | list`: None runs the plain causal forward; a list
(empty at first) is filled with one `KVCache` per attention site on the first call and holds the keys
and values of every token seen so far. Keys/values are written into a buffer that grows in steps of
256 positions, so a decode step neither recomputes nor copies the whole cache.

Batches of prompts of different lengths are left-padded: a cache made with `left_padding` (one count
per row) masks each row's padding keys out of attention and starts each row's positions at its first
real token (HF's position ids from the attention mask), so a row gives the tokens of its prompt alone.
The first cache entry carries the padding; entries created later copy it.
"""
import mlx.core as mx


class KVCache:
    """Keys and values of shape (B, heads, positions, head_dim), preallocated in steps."""

    step = 256

    def __init__(self, left_padding=None):
        self.keys = None
        self.values = None
        self.offset = 0
        # (B,) int32 pad positions at the start of each row, or None (no padding)
        self.left_padding = None if left_padding is None else mx.array(left_padding, dtype=mx.int32)

    def update_and_fetch(self, keys, values):
        """Append keys/values (B, H, n, D); return every cached key and value so far."""
        prev = self.offset
        n = keys.shape[2]
        if self.keys is None or prev + n > self.keys.shape[2]:
            b, h, _, dk = keys.shape
            steps = (self.step + n - 1) // self.step
            new_k = mx.zeros((b, h, steps * self.step, dk), keys.dtype)
            new_v = mx.zeros((b, h, steps * self.step, values.shape[3]), values.dtype)
            if self.keys is not None:
                if prev % self.step != 0:
                    self.keys = self.keys[..., :prev, :]
                    self.values = self.values[..., :prev, :]
                self.keys = mx.concatenate([self.keys, new_k], axis=2)
                self.values = mx.concatenate([self.values, new_v], axis=2)
            else:
                self.keys, self.values = new_k, new_v
        self.offset += n
        self.keys[..., prev:self.offset, :] = keys
        self.values[..., prev:self.offset, :] = values
        return self.keys[..., :self.offset, :], self.values[..., :self.offset, :]

    def trim(self, n):
        """Forget the last n positions (e.g. to re-run a prompt suffix)."""
        n = min(self.offset, n)
        self.offset -= n
        return n


def cache_entry(cache, index):
    """The cache of attention site `index` (created on first use), or None without a cache."""
    if cache is None:
        return None
    while len(cache) <= index:
        cache.append(KVCache(cache[0].left_padding if cache else None))
    return cache[index]


def cache_offset(cache):
    """The position of the first new token: how many positions the cache already holds (0 without a
    cache); with left padding, one position per row (B,), the count less that row's padding."""
    if not cache:
        return 0
    if cache[0].left_padding is not None:
        return cache[0].offset - cache[0].left_padding
    return cache[0].offset


def sliding_window_mask(n, total, window):
    """Boolean (n, total) mask: query i (at position total - n + i) sees keys in (pos - window, pos]."""
    q = mx.arange(total - n, total)[:, None]
    k = mx.arange(total)[None]
    return (k <= q) & (k > q - window)


def padded_mask(n, total, window, left_padding):
    """Boolean (B, 1, n, total) mask for left-padded rows: causal (and within the window), never a
    padding key; a padding query sees itself only (its output is never used, but stays finite)."""
    q = mx.arange(total - n, total)[:, None]
    k = mx.arange(total)[None]
    mask = k <= q
    if window is not None:
        mask = mask & (k > q - window)
    real = k[None] >= left_padding[:, None, None]
    return (mask[None] & (real | (k == q)[None]))[:, None]


def kv_attention(q, k, v, cache, scale, window=None):
    """Causal self-attention with a KV cache: q (B, Hq, n, D); k, v (B, Hkv, n, D) for the n new
    positions (grouped-query attention when Hkv < Hq). `window` limits each query to the last
    `window` keys (sliding-window attention)."""
    if cache is not None:
        k, v = cache.update_and_fetch(k, v)
    n, total = q.shape[2], k.shape[2]
    if cache is not None and cache.left_padding is not None:
        mask = padded_mask(n, total, window, cache.left_padding)
        if window is not None and n == 1 and total > window:
            k, v, mask = k[..., -window:, :], v[..., -window:, :], mask[..., -window:]
        return mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=mask)
    mask = None
    if window is not None and total > window:
        if n == 1:
            k, v = k[..., -window:, :], v[..., -window:, :]
        else:
            mask = sliding_window_mask(n, total, window)
    elif n > 1:
        mask = "causal"
    return mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=mask)
