"""Weight loading for generated models: safetensors keyed by the PyTorch state_dict names."""
import mlx.core as mx


def load_weights(model, file, *, dtype=None, tied=None, renamed=None):
    """Load `file` into `model` in place and return it. Keys are PyTorch state_dict names; `renamed` maps
    a name part to the attribute the model uses for it (MLX skips attributes starting with `_`); `tied`
    maps a tied weight's name to the stored name it shares. Missing, unexpected or mis-shaped weights
    raise ValueError; with `dtype`, floating-point weights are cast to it."""
    tied = tied or {}
    renamed = renamed or {}

    def attr(name):
        return ".".join(renamed.get(part, part) for part in name.split("."))

    weights = mx.load(str(file))
    expected = {}
    stack = [("", model.parameters())]
    while stack:
        prefix, tree = stack.pop()
        items = tree.items() if isinstance(tree, dict) else enumerate(tree)
        for key, value in items:
            name = f"{prefix}{key}"
            if isinstance(value, mx.array):
                expected[name] = value
            else:
                stack.append((name + ".", value))
    stored = {attr(k): k for k in weights}
    want = {k for k in expected if k not in {attr(a) for a in tied}}
    missing = sorted(stored.get(k, k) for k in want - set(stored))
    extra = sorted(stored[k] for k in set(stored) - want)
    if missing or extra:
        raise ValueError(f"{file}: weights do not match the model: missing {missing[:5]}"
                         f"{' …' if len(missing) > 5 else ''}, unexpected {extra[:5]}{' …' if len(extra) > 5 else ''}")
    values = {}
    for key, name in stored.items():
        value = weights[name]
        if value.shape != expected[key].shape:
            raise ValueError(f"{file}: {name} has shape {tuple(value.shape)}, the model expects "
                             f"{tuple(expected[key].shape)}")
        if dtype is not None and mx.issubdtype(value.dtype, mx.floating):
            value = value.astype(dtype)
        values[key] = value
    for alias, name in tied.items():
        values[attr(alias)] = values[attr(name)]
    for key, value in values.items():
        *parents, leaf = key.split(".")
        node = model
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(leaf)] = value
        else:
            node[leaf] = value
    mx.eval(model.parameters())
    return model
