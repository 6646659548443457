// fx2mlx C++ runtime: copies, shape ops and creation (fx2mlx/runtime/tensor_ops.py, creation.py).
// Included at the end of fx2mlx_runtime.h (uses its helpers: fx::scalar, fx::where, ...).
#pragma once

#include "fx2mlx_runtime.h"

namespace fx {

}  // namespace fx
