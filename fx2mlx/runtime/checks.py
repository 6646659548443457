"""Input checks of generated models: what a graph was compiled for (INPUTS, DIMS), checked at each call."""


def check_inputs(inputs, dims, *args):
    """Check the call's tensor inputs against what the model was compiled for (INPUTS, DIMS): rank,
    kind of dtype, the static sizes, the dynamic sizes' ranges and the sizes that inputs share.
    Python int checks only: nothing is evaluated. Raises ValueError naming the input."""
    kinds = {"b": "bool", "u": "int", "i": "int", "f": "float", "c": "complex"}
    seen = {}
    for spec, x in zip(inputs, args):
        name, want = spec["name"], spec["shape"]
        shape, dtype = getattr(x, "shape", None), getattr(x, "dtype", None)
        if shape is None or dtype is None:
            raise ValueError(f"{name}: expected an array of shape {_shape_text(want)} and dtype {spec['dtype']}, "
                             f"got {type(x).__name__}")
        shape = tuple(int(n) for n in shape)
        got_dt = str(dtype).rsplit(".", 1)[-1]
        want_kind = kinds.get(_dtype_kind(spec["dtype"]))
        got_kind = kinds.get(_dtype_kind(got_dt))
        if want_kind != got_kind:
            raise ValueError(f"{name}: expected dtype {spec['dtype']} ({want_kind}), got {got_dt} ({got_kind})")
        problem = None
        if len(shape) != len(want):
            problem = f"rank {len(want)}"
        else:
            for axis, (w, n) in enumerate(zip(want, shape)):
                if isinstance(w, int):
                    if n != w:
                        problem = f"axis {axis} = {w}"
                        break
                    continue
                lo, hi = dims.get(w, (None, None))
                if hi is not None and n > hi or lo is not None and lo > 2 and n < lo:
                    problem = f"{w} in [{lo}, {hi}]" if lo is not None and lo > 2 else f"{w} <= {hi}"
                    break
                if w in seen and seen[w][1] != n:
                    problem = f"{w} = {seen[w][1]} as in {seen[w][0]}"
                    break
                seen.setdefault(w, (name, n))
        if problem is not None:
            raise ValueError(f"{name}: expected shape {_shape_text(want, dims)}, got {shape} (needs {problem})")


def _dtype_kind(dt):
    return "b" if dt == "bool" else "c" if dt.startswith("complex") else "u" if dt.startswith("uint") else \
        "i" if dt.startswith("int") else "f"


def _shape_text(want, dims=None):
    text = "(" + ", ".join(str(w) for w in want) + ("," if len(want) == 1 else "") + ")"
    rules = []
    for axis, w in enumerate(want):
        if isinstance(w, int):
            rules.append(f"a static axis {axis} = {w}")
        elif dims and w in dims and f"{w} " not in " ".join(rules):
            lo, hi = dims[w]
            if lo is not None and lo > 2 and hi is not None:
                rules.append(f"{lo} <= {w} <= {hi}")
            elif lo is not None and lo > 2:
                rules.append(f"{w} >= {lo}")
            elif hi is not None:
                rules.append(f"{w} <= {hi}")
    return text + (" with " + " and ".join(rules) if rules else "")
