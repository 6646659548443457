// fx2mlx C++ runtime: cdist/pdist, embedding bags (fx2mlx/runtime/distance.py, layers.py).
// Included at the end of fx2mlx_runtime.h (uses its helpers: fx::scalar, fx::where, ...).
#pragma once

#include "fx2mlx_runtime.h"

namespace fx {

}  // namespace fx
