// What LibTorch this build runs on and whether it sees a GPU: for --version,
// the About dialog and device defaults. No LibTorch in this header, and built
// without the training libraries too (the GPU machine's engine-only build).
#pragma once

#include <string>

namespace smx::inspect {

/// "cuda" when LibTorch sees a CUDA device, else "cpu".
std::string default_device();
/// The LibTorch version, e.g. "1.13.0".
std::string libtorch_version();
/// "LibTorch 1.13.0, CUDA available" (or "not available"): what --version and
/// the About dialog say. Asks CUDA, so call it when it is shown, not at start-up.
std::string runtime_description();

}  // namespace smx::inspect
