#include "model/inspect/runtime.h"

#include <torch/torch.h>

namespace smx::inspect {

std::string default_device() { return torch::cuda::is_available() ? "cuda" : "cpu"; }

std::string libtorch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

std::string runtime_description() {
  return "LibTorch " + libtorch_version() + ", CUDA " + (default_device() == "cuda" ? "available" : "not available");
}

}  // namespace smx::inspect
