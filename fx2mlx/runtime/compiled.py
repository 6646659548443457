"""The forward under mx.compile (what `load(compile=True)` returns)."""
import mlx.core as mx


class CompiledForward:
    """`model` with its forward under `mx.compile`; everything else (parameters(), update(), submodules) is
    the model's, and `.model` is the nn.Module itself.

    - Sizes are read from the inputs while tracing, so this is not `shapeless`: MLX traces again for each
      new set of input shapes and dtypes and keeps one compiled graph per set.
    - The parameters are inputs of the compiled function (`inputs=model.state`), not constants baked into
      the graph: `model.update(...)`, `load_weights` and casts after loading are seen by the next call.
    - A graph that evaluates an array while tracing (a data-dependent size: `.item()`, `.tolist()`, numpy)
      cannot be compiled: MLX raises, and the model runs uncompiled from then on. Graphs that draw random
      numbers are never wrapped (compile would freeze the random keys): `load` decides that (COMPILE)."""

    def __init__(self, model):
        self.model = model
        self.compiled = mx.compile(lambda *args, **kwargs: model(*args, **kwargs), inputs=model.state)

    def __call__(self, *args, **kwargs):
        if self.compiled is not None:
            try:
                return self.compiled(*args, **kwargs)
            except ValueError as e:
                if "transformations like compile" not in str(e):
                    raise
                self.compiled = None  # the graph evaluates arrays (data-dependent sizes): uncompiled
        return self.model(*args, **kwargs)

    def __getattr__(self, name):
        if name in ("model", "compiled"):
            raise AttributeError(name)
        return getattr(self.model, name)

    def __repr__(self):
        return f"CompiledForward({type(self.model).__name__})"
