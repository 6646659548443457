"""Hand-written MLX runtime pieces vendored verbatim (minus imports) into generated model.py files.

Each module imports only ``math``, ``mlx.core as mx`` and ``mlx.nn as nn`` and defines only functions.
"""
