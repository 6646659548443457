// fx2mlx C++ runtime: scatter / index_put family (fx2mlx/runtime/scatter.py).
// Included at the end of fx2mlx_runtime.h (uses its helpers: fx::scalar, fx::where, ...).
#pragma once

#include "fx2mlx_runtime.h"

namespace fx {

}  // namespace fx
