// What LibTorch this build runs on and which devices it sees: for --version,
// the About dialog, the launcher's device choice and device defaults. No
// LibTorch in this header, and built without the training libraries too (the
// GPU machine's engine-only build).
#pragma once

#include <string>
#include <vector>

namespace smx::inspect {

/// "cuda" when LibTorch sees a CUDA device, else "cpu".
std::string default_device();
/// The LibTorch version, e.g. "1.13.0".
std::string libtorch_version();
/// "LibTorch 1.13.0, CUDA available" (or "not available"): what --version and
/// the About dialog say. Asks CUDA, so call it when it is shown, not at start-up.
std::string runtime_description();

/// A place a run can train on.
struct DeviceInfo {
  std::string id;            ///< what a run config's device field takes: "cpu", "cuda:0", "cuda:1", ...
  std::string name;          ///< "Intel(R) Xeon(R) ...", "NVIDIA H200"; empty when unknown
  double memory_bytes = 0;   ///< the machine's memory (CPU) or the GPU's; 0 when unknown
};
/// The CPU first, then every CUDA device LibTorch sees (none in a CPU-only build
/// or on a machine without a GPU).
std::vector<DeviceInfo> list_devices();
/// "cuda:0 · NVIDIA H200 · 139.8 GiB": one line for a device chooser.
std::string describe_device(const DeviceInfo& device);

/// The device a run config's device field names on this machine: "auto" is
/// the first GPU when there is one, else the CPU; "cuda" is cuda:0. Returns
/// "cpu" or "cuda:N"; throws ConfigError naming what this machine has when
/// the field asks for a GPU it does not have, or is not a device at all.
std::string resolve_device(const std::string& field);

}  // namespace smx::inspect
