// fx2mlx C++ runtime: resampling, FFT, im2col/col2im, grid sampling (fx2mlx/runtime/resample.py, spectral.py).
// Included at the end of fx2mlx_runtime.h (uses its helpers: fx::scalar, fx::where, ...).
#pragma once

#include "fx2mlx_runtime.h"

namespace fx {

}  // namespace fx
