// fx2mlx C++ runtime: unique, searchsorted, histograms, bincount, sort-based reductions (fx2mlx/runtime/setops.py, sorting.py).
// Included at the end of fx2mlx_runtime.h (uses its helpers: fx::scalar, fx::where, ...).
#pragma once

#include "fx2mlx_runtime.h"

namespace fx {

}  // namespace fx
