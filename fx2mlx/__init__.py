"""fx2mlx: compile PyTorch models into standalone, readable MLX code, checked layer by layer.

    import fx2mlx
    compiled = fx2mlx.convert(module, (x,))      # torch.export -> IR -> MLX
    y = compiled(x.numpy())                      # mx.array out
    compiled.save("out/")                        # model.py + weights.safetensors
    again = fx2mlx.load("out/")

    prog = fx2mlx.Program().add("encoder", enc, (x,)).add("head", head, (h,))
    compiled = fx2mlx.convert(prog)              # one folder per graph; compiled.encoder(x), compiled.head(h)
"""
__version__ = "0.1.0"

from . import blas as _blas  # noqa: E402

_blas.use_optimized_blas()  # before mlx.core is imported (Linux: MLX's wheel links a reference BLAS)

from .api import CompiledModel, CompiledProgram, convert, load  # noqa: E402

__all__ = ["convert", "load", "CompiledModel", "CompiledProgram", "Program", "Stream", "__version__"]


def __getattr__(name: str):
    if name == "Program":  # a user-declared program of named graphs (imports torch: only when asked for)
        from .recipes.program import Program

        return Program
    if name == "Stream":  # a streaming program: stages per chunk with explicit state
        from .recipes.stream import Stream

        return Stream
    raise AttributeError(f"module 'fx2mlx' has no attribute {name!r}")
