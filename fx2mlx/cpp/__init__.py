"""C++ emission: the lowered IR rendered as an MLX C++ program (`OUT/cpp/`).

    fx2mlx compile SOURCE -o OUT --target python,cpp   # OUT/cpp/: model.h, model.cpp, main.cpp, CMakeLists.txt
    fx2mlx build OUT [--bench N]                        # cmake configure + build -> OUT/cpp/build/model
    fx2mlx regen-cpp OUT [--templates DIR] [--build]    # re-render from OUT/ir.json (no torch needed)
    fx2mlx check-cpp OUT                                # golden harness: every IR value vs PyTorch
    OUT/cpp/build/model [--inputs F] [--out F] [--dump F] [--bench N] [--no-compile]
    OUT/cpp/build/generate --prompt-ids 1,2,3           # decoder LLMs: greedy generation with the KV cache

- `emit.py` renders the program from the same `Lowered` the Python emitter uses, through the `cpp` forms of
  the op tables and the override templates (`templates/cpp/overrides/*.cpp.j2`, registered in
  `overrides.py`); the C++ runtime (`runtime_cpp/fx2mlx_runtime.h`) mirrors `fx2mlx/runtime/*.py`.
- `build.py` configures and builds with CMake (`find_package(MLX CONFIG)`, C++20) and links an optimised
  BLAS ahead of MLX on Linux when one is present; `check.py` runs the program with `--dump` and compares
  every value with PyTorch's through `fx2mlx.golden`; `cli.py` registers the commands.
Nothing here imports torch except `check.py` (for PyTorch's side).
"""
