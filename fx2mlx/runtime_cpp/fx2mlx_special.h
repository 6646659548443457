// fx2mlx C++ runtime: special functions and extra elementwise math (fx2mlx/runtime/special.py, elementwise.py).
// Included at the end of fx2mlx_runtime.h (uses its helpers: fx::scalar, fx::where, ...).
#pragma once

#include "fx2mlx_runtime.h"

namespace fx {

}  // namespace fx
