"""C++ emission: the lowered IR rendered as an MLX C++ program (`OUT/cpp/`).

`emit.py` renders the program from the same `Lowered` the Python emitter uses, through the `cpp` forms
of the op tables and the override templates (`templates/cpp/overrides/*.cpp.j2`); `build.py` configures
and builds it with CMake and runs it; `cli.py` adds `fx2mlx regen-cpp` and `fx2mlx build`.
Nothing here imports torch: `regen-cpp` works from `OUT/ir.json` alone.
"""
