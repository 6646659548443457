"""fx2mlx: compile PyTorch models into standalone, readable MLX code, checked layer by layer.

    import fx2mlx
    compiled = fx2mlx.convert(module, (x,))      # torch.export -> IR -> MLX
    y = compiled(x.numpy())                      # mx.array out
    compiled.save("out/")                        # model.py + weights.safetensors
    again = fx2mlx.load("out/")
"""
__version__ = "0.1.0"

from . import blas as _blas  # noqa: E402

_blas.use_optimized_blas()  # before mlx.core is imported (Linux: MLX's wheel links a reference BLAS)

from .api import CompiledModel, convert, load  # noqa: E402

__all__ = ["convert", "load", "CompiledModel", "__version__"]
