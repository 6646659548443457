"""fx2mlx: compile PyTorch models into standalone, readable MLX code, checked layer by layer.

    import fx2mlx
    compiled = fx2mlx.convert(module, (x,))      # torch.export -> IR -> MLX
    y = compiled(x.numpy())                      # mx.array out
    compiled.save("out/")                        # model.py + weights.safetensors
    again = fx2mlx.load("out/")
"""
__version__ = "0.1.0"

from .api import CompiledModel, convert, load  # noqa: E402

__all__ = ["convert", "load", "CompiledModel", "__version__"]
