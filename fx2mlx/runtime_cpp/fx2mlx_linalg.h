// fx2mlx C++ runtime: linear algebra and complex numbers (fx2mlx/runtime/linalg.py).
// Included at the end of fx2mlx_runtime.h (uses its helpers: fx::scalar, fx::where, ...).
#pragma once

#include "fx2mlx_runtime.h"

namespace fx {

}  // namespace fx
