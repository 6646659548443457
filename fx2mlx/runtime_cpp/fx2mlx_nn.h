// fx2mlx C++ runtime: cdist/pdist, embedding bags, pooling, normalisation (fx2mlx/runtime/distance.py, layers.py, pooling.py, norms.py).
// Included at the end of fx2mlx_runtime.h (uses its helpers: fx::scalar, fx::where, ...).
#pragma once

#include "fx2mlx_runtime.h"

namespace fx {

}  // namespace fx
